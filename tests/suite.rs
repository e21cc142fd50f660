//! The interoperability suite run against each stock libp2p node of another
//! implementation (`onetrip_testkit::peer`): both roles, every TCP (Noise
//! and TLS) and QUIC preset, perf from 0 bytes to 16 MiB each way, many
//! streams on one connection, ping, Identify (the listener speaks first),
//! the muxer chosen inside the Noise handshake and in TLS ALPN, and 0-RTT
//! falling back. What differs between implementations is in [`Known`],
//! each difference with the reason for it.

use libp2p_identity::Keypair;
use multiaddr::Multiaddr;
use onetrip_perf::{Progress, RunParams, ServerLimits, run_client, runner::perf_protocol};
use onetrip_stack::{Config, Endpoint, Layering, Preset, Protocol, QuicLayering, Security};
use onetrip_testkit::peer::{Implementation, Peer, bounded};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Request sizes, each way.
pub(crate) const SIZES: [u64; 5] = [0, 1, 100, 64 * 1024, 16 * 1024 * 1024];

/// What each implementation is known to do differently, asserted by the
/// suite.
struct Known {
    /// The muxer it reports for a QUIC connection (QUIC multiplexes
    /// streams itself): js-libp2p says `quic`, go-libp2p none.
    quic_muxer: Value,
    /// Whether its QUIC listener issues session tickets. js-libp2p's do not
    /// allow early data; go-libp2p issues none (`SessionTicketsDisabled`
    /// in its TLS and QUIC configurations). Either way no 0-RTT data is
    /// ever sent to it: a reconnect resumes the session in a 1-RTT
    /// handshake (js-libp2p), or is a full handshake (go-libp2p).
    quic_tickets: bool,
    /// Whether its TLS-on-TCP listener issues session tickets (go-libp2p
    /// does not; js-libp2p's node:tls does, without early data).
    tls_tickets: bool,
    /// Part of its error when onetrip refuses a stream protocol.
    refused: &'static str,
}

fn known(implementation: Implementation) -> Known {
    match implementation {
        Implementation::Js => Known {
            quic_muxer: json!("quic"),
            quic_tickets: true,
            tls_tickets: true,
            refused: "could not negotiate /ipfs/ping/1.0.0",
        },
        Implementation::Go => Known {
            quic_muxer: Value::Null,
            quic_tickets: false,
            tls_tickets: false,
            refused: "protocols not supported",
        },
    }
}

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

/// Every TCP preset, Noise and TLS.
pub(crate) fn tcp_presets() -> impl Iterator<Item = (&'static str, Preset)> {
    Preset::all().filter(|(_, p)| matches!(p, Preset::Tcp(_)))
}

/// Every QUIC preset.
pub(crate) fn quic_presets() -> impl Iterator<Item = (&'static str, Preset)> {
    Preset::all().filter(|(_, p)| matches!(p, Preset::Quic(_)))
}

fn address(peer: &Peer, preset: Preset) -> Multiaddr {
    match preset {
        Preset::Tcp(_) => peer.tcp.clone(),
        Preset::Quic(_) => peer.quic.clone(),
    }
}

/// What the peer's security handshake of the connection just made chose:
/// the preset's security protocol; and the peer always offers its muxers,
/// so the choice is made inside the handshake exactly when onetrip's
/// layering lists its own (Noise: in message 2 as the listener, 3 as the
/// dialer; TLS: in ALPN). QUIC has no such handshake.
async fn assert_muxer_choice(peer: &mut Peer, name: &str, preset: Preset) {
    if let Preset::Tcp(layering) = preset {
        let secured = peer.events_of("secured", 1).await;
        assert_eq!(secured.len(), 1, "{name}: {secured:?}");
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

/// The session tickets a 0-RTT preset keeps for `peer` after a
/// connection, and what became of its early data: none is ever sent, as
/// [`Known`] says.
async fn assert_no_early_data(
    endpoint: &Endpoint,
    connection: &onetrip_stack::Connection,
    peer: &Peer,
    name: &str,
    preset: Preset,
) {
    let known = known(peer.implementation);
    let config = endpoint.config();
    match preset {
        Preset::Quic(layering) if layering.zero_rtt => {
            let received = config.quic().ticket_store().stats(&peer.peer_id).received;
            assert_eq!(
                received > 0,
                known.quic_tickets,
                "{name}: {received} tickets"
            );
            let quic = connection.quic().expect("a QUIC connection");
            assert_eq!(quic.zero_rtt_accepted().await, None, "{name}");
        }
        Preset::Tcp(layering) if layering.early_data => {
            let received = config.tls_ticket_store().stats(&peer.peer_id).received;
            assert_eq!(
                received > 0,
                known.tls_tickets,
                "{name}: {received} tickets"
            );
        }
        _ => {}
    }
}

/// onetrip dials the peer with every preset of `presets` and runs perf for
/// every size, each on a fresh connection; the peer must have served each
/// run whole.
pub(crate) async fn onetrip_dials(
    peer: &mut Peer,
    presets: impl Iterator<Item = (&'static str, Preset)>,
) {
    let who = peer.implementation;
    for (name, preset) in presets {
        let endpoint = Endpoint::new(config_for(preset));
        let addr = address(peer, preset);
        for size in SIZES {
            let connection = bounded(&format!("{name}: dial"), endpoint.dial(&addr, None))
                .await
                .unwrap_or_else(|err| panic!("{name}: dial: {err}"));
            assert_eq!(connection.remote_peer_id(), peer.peer_id);
            assert_eq!(
                connection.early_muxer(),
                early(preset),
                "{name}: {who:?} offers its muxers in the security handshake"
            );
            bounded(&format!("{name}: perf {size} B"), perf(&connection, size)).await;
            assert_no_early_data(&endpoint, &connection, peer, name, preset).await;
            connection.close().await.unwrap();
            let served = peer.events_of("perf-served", 1).await;
            assert_eq!(served[0]["uploaded"], size, "{name}");
            assert_eq!(served[0]["download"], size, "{name}");
            assert_muxer_choice(peer, name, preset).await;
        }
        eprintln!("onetrip {name} -> {who:?}: perf ok for {SIZES:?}");
    }
}

/// A listening onetrip endpoint serving perf, for the peer to dial.
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

/// The peers dial onetrip listening with every preset, and run perf for
/// every size, with the stream protocol negotiated interactively and
/// optimistically; a TLS preset is dialed by `tls`, a peer that proposes
/// TLS first, the others by `noise`.
pub(crate) async fn dials_onetrip(noise: &mut Peer, tls: &mut Peer) {
    for (name, preset) in Preset::all() {
        let peer = match preset {
            Preset::Tcp(layering) if layering.security_protocol == Security::Tls => &mut *tls,
            _ => &mut *noise,
        };
        let who = peer.implementation;
        let (_endpoint, addr) = onetrip_perf_server(preset).await;
        for size in SIZES {
            for optimistic in [false, true] {
                let result = peer
                    .call(json!({
                        "op": "perf", "addr": addr.to_string(),
                        "upload": size, "download": size, "optimistic": optimistic,
                    }))
                    .await;
                assert_eq!(result["downloaded"], json!([size]), "{name}");
                assert_eq!(result["protocols"], json!(["/perf/1.0.0"]), "{name}");
                let muxer = match preset {
                    Preset::Tcp(_) => json!("/yamux/1.0.0"),
                    Preset::Quic(_) => known(who).quic_muxer,
                };
                assert_eq!(result["muxer"], muxer, "{name}");
                assert_muxer_choice(peer, name, preset).await;
            }
        }
        eprintln!("{who:?} -> onetrip {name}: perf ok for {SIZES:?}, both negotiation modes");
    }
}

/// Many streams at once on one connection, both ways, over TCP and QUIC.
pub(crate) async fn many_streams_on_one_connection(peer: &mut Peer) {
    const STREAMS: usize = 64;
    const SIZE: u64 = 10_000;
    for preset in [
        Preset::Tcp(Layering::TCP_ONETRIP),
        Preset::Quic(QuicLayering::QUIC_OPTIMISTIC),
    ] {
        let endpoint = Endpoint::new(config_for(preset));
        let connection = endpoint.dial(&address(peer, preset), None).await.unwrap();
        // js-libp2p aborts a connection on which the peer opens more than
        // ten streams before its own setup of the connection has finished
        // (`maxEarlyStreams`, spec/tcp-stack.md): one exchange first.
        bounded("the first stream", perf(&connection, SIZE)).await;
        let runs = (0..STREAMS).map(|_| perf(&connection, SIZE));
        bounded("onetrip's streams", futures::future::join_all(runs)).await;
        assert_eq!(
            peer.events_of("perf-served", STREAMS + 1).await.len(),
            STREAMS + 1
        );

        let (_server, addr) = onetrip_perf_server(preset).await;
        let result = peer
            .call(json!({
                "op": "perf", "addr": addr.to_string(), "upload": SIZE,
                "download": SIZE, "optimistic": true, "streams": STREAMS,
            }))
            .await;
        assert_eq!(result["downloaded"], json!(vec![SIZE; STREAMS]));
        assert_eq!(result["protocols"], json!(vec!["/perf/1.0.0"; STREAMS]));
    }
}

/// Ping both ways, and Identify, a protocol in which the listener speaks
/// first: onetrip's optimistic dialer reads before it writes anything.
pub(crate) async fn ping_and_identify(peer: &mut Peer) {
    let ping = Protocol::new("/ipfs/ping/1.0.0").unwrap();
    let identify = Protocol::new("/ipfs/id/1.0.0").unwrap();
    for (name, preset) in Preset::all() {
        let endpoint = Endpoint::new(config_for(preset));
        let connection = endpoint.dial(&address(peer, preset), None).await.unwrap();
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

    // The peer pings onetrip, which does not serve ping: a clean `na`, and
    // the connection lives on and serves perf (the peer's Identify streams
    // are refused the same way on every connection).
    for preset in [
        Preset::Tcp(Layering::TCP_ONETRIP),
        Preset::Quic(QuicLayering::QUIC_OPTIMISTIC),
    ] {
        let (_server, addr) = onetrip_perf_server(preset).await;
        let probed = peer
            .call(json!({ "op": "probe", "addr": addr.to_string() }))
            .await;
        let refused = probed["ping"].as_str().unwrap();
        assert!(
            refused.contains(known(peer.implementation).refused),
            "{probed}"
        );
        assert_eq!(probed["downloaded"], 100, "{probed}");
    }
}
