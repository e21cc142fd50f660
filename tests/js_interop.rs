//! onetrip against a stock js-libp2p 3 node (`tests/js-peer`: libp2p,
//! @libp2p/tcp, @chainsafe/libp2p-noise, @libp2p/tls,
//! @chainsafe/libp2p-yamux, @chainsafe/libp2p-quic, identify, ping), in both
//! roles: every TCP (Noise and TLS) and QUIC preset, perf from 0 bytes to
//! 16 MiB each way, many streams on one connection, ping, Identify (the
//! listener speaks first), the muxer chosen inside the Noise handshake and
//! in TLS ALPN, and 0-RTT falling back.
//!
//! The node runs on the Node.js 22 that its package pins; install it with
//! `npm ci --prefix tests/js-peer` (`.ci/run` does).

use libp2p_identity::Keypair;
use multiaddr::Multiaddr;
use onetrip_perf::{Progress, RunParams, ServerLimits, run_client, runner::perf_protocol};
use onetrip_stack::{Config, Endpoint, Layering, Preset, Protocol, QuicLayering, Security};
use onetrip_testkit::js_peer::{Encryption, JsPeer, PerfHandler, bounded};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Request sizes, each way.
const SIZES: [u64; 5] = [0, 1, 100, 64 * 1024, 16 * 1024 * 1024];

fn config_for(preset: Preset) -> Config {
    Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_preset(preset)
        .unwrap()
        .with_protocols([perf_protocol()])
}

/// Whether the dialer offers muxers inside the security handshake.
fn early(preset: Preset) -> bool {
    matches!(preset, Preset::Tcp(layering) if layering.early_muxer())
}

fn tcp_presets() -> impl Iterator<Item = (&'static str, Preset)> {
    Preset::all().filter(|(_, p)| matches!(p, Preset::Tcp(_)))
}

fn quic_presets() -> impl Iterator<Item = (&'static str, Preset)> {
    Preset::all().filter(|(_, p)| matches!(p, Preset::Quic(_)))
}

/// What js-libp2p's security handshake of the connection just made chose:
/// the preset's security protocol; and js-libp2p always offers its muxers,
/// so the choice is made inside the handshake exactly when onetrip's
/// layering lists its own (Noise: in message 2 as the listener, 3 as the
/// dialer; TLS: in ALPN). QUIC has no such handshake.
async fn assert_js_muxer_choice(js: &mut JsPeer, name: &str, preset: Preset) {
    if let Preset::Tcp(layering) = preset {
        let secured = js.events_of("secured", 1).await;
        assert_eq!(
            secured[0]["encryption"],
            layering.security_protocol.protocol_id(),
            "{name}: {secured:?}"
        );
        let chosen = &secured[0]["early_muxer"];
        if early(preset) {
            assert_eq!(chosen, "/yamux/1.0.0", "{name}: {secured:?}");
        } else {
            assert!(chosen.is_null(), "{name}: {secured:?}");
        }
    }
}

/// One perf run on a fresh stream of `connection`, checked byte for byte.
async fn perf(connection: &onetrip_stack::Connection, size: u64) {
    let stream = connection.open_stream(perf_protocol()).await.unwrap();
    let params = RunParams {
        upload: size,
        download: size,
    };
    let progress = Progress::default();
    run_client(stream, params, &progress)
        .await
        .unwrap_or_else(|err| panic!("perf {size} B: {err}"));
    assert_eq!(progress.downloaded(), size);
}

/// onetrip dials the js node with every preset of `presets` and runs perf
/// for every size, each on a fresh connection; the js node must have
/// served each run whole.
async fn onetrip_dials_js(js: &mut JsPeer, presets: impl Iterator<Item = (&'static str, Preset)>) {
    for (name, preset) in presets {
        let endpoint = Endpoint::new(config_for(preset));
        let addr = match preset {
            Preset::Tcp(_) => js.tcp.clone(),
            Preset::Quic(_) => js.quic.clone(),
        };
        for size in SIZES {
            let connection = bounded(&format!("{name}: dial"), endpoint.dial(&addr, None))
                .await
                .unwrap_or_else(|err| panic!("{name}: dial: {err}"));
            assert_eq!(connection.remote_peer_id(), js.peer_id);
            assert_eq!(
                connection.early_muxer(),
                early(preset),
                "{name}: js-libp2p offers its muxers in the security handshake"
            );
            bounded(&format!("{name}: perf {size} B"), perf(&connection, size)).await;
            if let (Some(quic), Preset::Quic(layering)) = (connection.quic(), preset)
                && layering.zero_rtt
            {
                // js-libp2p's QUIC issues session tickets that allow no
                // early data: every reconnect resumes the session in a
                // 1-RTT handshake, and no 0-RTT data is ever sent.
                let tickets = endpoint.config().quic().ticket_store().tickets(&js.peer_id);
                assert!(tickets > 0, "{name}: js-libp2p sent no session ticket");
                assert_eq!(quic.zero_rtt_accepted().await, None, "{name} {size} B");
            }
            connection.close().await.unwrap();
            let served = js.events_of("perf-served", 1).await;
            assert_eq!(served[0]["uploaded"], size, "{name}");
            assert_eq!(served[0]["download"], size, "{name}");
            assert_js_muxer_choice(js, name, preset).await;
        }
        eprintln!("onetrip {name} -> js-libp2p: perf ok for {SIZES:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onetrip_dials_js_over_tcp() {
    // The stock handler: what a js-libp2p perf server runs.
    let mut js = JsPeer::start(PerfHandler::Stock).await;
    onetrip_dials_js(&mut js, tcp_presets()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onetrip_dials_js_over_quic() {
    // See spec/multistream-select.md: over QUIC, js-libp2p's stream
    // iterator can miss the end of a request from any dialer on loopback.
    let mut js = JsPeer::start(PerfHandler::Checked).await;
    onetrip_dials_js(&mut js, quic_presets()).await;
}

/// A listening onetrip endpoint serving perf, for the js node to dial.
async fn onetrip_perf_server(preset: Preset) -> (Endpoint, Multiaddr) {
    let endpoint = Endpoint::new(config_for(preset).with_accept_0rtt(true));
    let listen = match preset {
        Preset::Tcp(_) => "/ip4/127.0.0.1/tcp/0",
        Preset::Quic(_) => "/ip4/127.0.0.1/udp/0/quic-v1",
    };
    let listener = endpoint.listen(&listen.parse().unwrap()).await.unwrap();
    let addr = listener
        .local_addr()
        .clone()
        .with(multiaddr::Protocol::P2p(endpoint.local_peer_id()));
    tokio::spawn(onetrip_perf::runner::serve(
        listener,
        ServerLimits::default(),
    ));
    (endpoint, addr)
}

/// The js node dials onetrip listening with every preset, and runs perf for
/// every size, negotiating the stream protocol interactively and
/// optimistically (`negotiateFully: false`); for a TLS preset, a js node
/// that proposes TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_dials_onetrip() {
    let mut js_noise = JsPeer::start(PerfHandler::Stock).await;
    let mut js_tls = JsPeer::start_proposing(PerfHandler::Stock, Encryption::Tls).await;
    for (name, preset) in Preset::all() {
        let js = match preset {
            Preset::Tcp(layering) if layering.security_protocol == Security::Tls => &mut js_tls,
            _ => &mut js_noise,
        };
        let (_endpoint, addr) = onetrip_perf_server(preset).await;
        for size in SIZES {
            for optimistic in [false, true] {
                let result = js
                    .call(json!({
                        "op": "perf", "addr": addr.to_string(),
                        "upload": size, "download": size, "optimistic": optimistic,
                    }))
                    .await;
                assert_eq!(result["downloaded"], json!([size]), "{name}");
                assert_eq!(result["muxer"], json!(js_muxer(preset)), "{name}");
                assert_js_muxer_choice(js, name, preset).await;
            }
        }
        eprintln!("js-libp2p -> onetrip {name}: perf ok for {SIZES:?}, both negotiation modes");
    }
}

/// The muxer js-libp2p reports for a connection: yamux over TCP; QUIC
/// multiplexes streams itself.
fn js_muxer(preset: Preset) -> &'static str {
    match preset {
        Preset::Tcp(_) => "/yamux/1.0.0",
        Preset::Quic(_) => "quic",
    }
}

/// Many streams at once on one connection, both ways, over TCP and QUIC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_on_one_connection() {
    const STREAMS: usize = 64;
    const SIZE: u64 = 10_000;
    let mut js = JsPeer::start(PerfHandler::Checked).await;
    for preset in [
        Preset::Tcp(Layering::TCP_ONETRIP),
        Preset::Quic(QuicLayering::QUIC_OPTIMISTIC),
    ] {
        let endpoint = Endpoint::new(config_for(preset));
        let addr = match preset {
            Preset::Tcp(_) => js.tcp.clone(),
            Preset::Quic(_) => js.quic.clone(),
        };
        let connection = endpoint.dial(&addr, None).await.unwrap();
        // js-libp2p aborts a connection on which the peer opens more than
        // ten streams before its own setup of the connection has finished
        // (`maxEarlyStreams`, spec/tcp-stack.md): one exchange first.
        bounded("the first stream", perf(&connection, SIZE)).await;
        let runs = (0..STREAMS).map(|_| perf(&connection, SIZE));
        bounded("onetrip's streams", futures::future::join_all(runs)).await;
        assert_eq!(
            js.events_of("perf-served", STREAMS + 1).await.len(),
            STREAMS + 1
        );

        let (_server, addr) = onetrip_perf_server(preset).await;
        let result = js
            .call(json!({
                "op": "perf", "addr": addr.to_string(), "upload": SIZE,
                "download": SIZE, "optimistic": true, "streams": STREAMS,
            }))
            .await;
        assert_eq!(result["downloaded"], json!(vec![SIZE; STREAMS]));
    }
}

/// Ping both ways, and Identify, a protocol in which the listener speaks
/// first: onetrip's optimistic dialer reads before it writes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_identify() {
    let mut js = JsPeer::start(PerfHandler::Stock).await;
    let ping = Protocol::new("/ipfs/ping/1.0.0").unwrap();
    let identify = Protocol::new("/ipfs/id/1.0.0").unwrap();
    for (name, preset) in Preset::all() {
        let endpoint = Endpoint::new(config_for(preset));
        let addr = match preset {
            Preset::Tcp(_) => js.tcp.clone(),
            Preset::Quic(_) => js.quic.clone(),
        };
        let connection = endpoint.dial(&addr, None).await.unwrap();
        bounded(&format!("{name}: ping and identify"), async {
            let mut stream = connection.open_stream(ping.clone()).await.unwrap();
            let payload: Vec<u8> = (0..32).collect();
            stream.write_all(&payload).await.unwrap();
            let mut echo = vec![0; 32];
            stream.read_exact(&mut echo).await.unwrap();
            assert_eq!(echo, payload, "{name}: ping");

            let mut stream = connection.open_stream(identify.clone()).await.unwrap();
            let mut message = Vec::new();
            stream.read_to_end(&mut message).await.unwrap();
            let (len, body) = unsigned_varint::decode::usize(&message).unwrap();
            assert!(
                len > 0 && body.len() == len,
                "{name}: identify: {message:?}"
            );
        })
        .await;
    }

    // js pings onetrip, which does not serve ping: a clean `na`, and the
    // connection lives on and serves perf (js-libp2p's Identify streams are
    // refused the same way on every connection).
    for preset in [
        Preset::Tcp(Layering::TCP_ONETRIP),
        Preset::Quic(QuicLayering::QUIC_OPTIMISTIC),
    ] {
        let (_server, addr) = onetrip_perf_server(preset).await;
        let probed = js
            .call(json!({ "op": "probe", "addr": addr.to_string() }))
            .await;
        let refused = probed["ping"].as_str().unwrap();
        assert!(
            refused.contains("could not negotiate /ipfs/ping/1.0.0"),
            "{probed}"
        );
        assert_eq!(probed["downloaded"], 100, "{probed}");
    }
}
