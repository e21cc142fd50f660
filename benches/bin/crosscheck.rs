//! The real-socket cross-check of the round-trip table: every preset, and
//! rust-libp2p's TCP and QUIC stacks, over loopback sockets through a
//! userspace delay relay at RTT 20 ms and 100 ms, next to the count
//! measured in netsim virtual time.
//!
//! `cargo run --release -p onetrip-bench --bin crosscheck`
//!
//! TCP through the relay: the kernel's SYN and SYN-ACK with the relay are
//! not delayed, so one RTT is added to each TCP measurement (the one netsim
//! charges for `connect`). The relay holds each hop to the microsecond.
//! Each figure is the median of five dials.
//!
//! Real sockets can only be slower than virtual time, by the CPU time the
//! stacks and the relay spend (a dial and request cost about a millisecond
//! on loopback: the `handshake-loopback` bench), which does not grow with
//! the RTT. So the two methods agree when the real TTFB exceeds the
//! virtual one by 0 to 5 ms at both RTTs: well under a round trip at
//! 20 ms. The exit status says whether they did.
//!
//! Then, against a stock js-libp2p node (`tests/js-peer`, installed with
//! `npm ci --prefix tests/js-peer`), at RTT 50 ms: onetrip dialing it and it
//! dialing onetrip, in whole round trips. Those rows go into their own
//! section of `spec/round-trips.md`, which this program rewrites (netsim
//! cannot run js-libp2p, so nothing checks them against virtual time).

use std::{fmt::Write, path::PathBuf, process::ExitCode, time::Duration};

use libp2p_identity::Keypair;
use multiaddr::Multiaddr;
use multistream_select::Version;
use onetrip_bench::{
    baseline, fixtures,
    fixtures::OnetripServer,
    relay, spec,
    swarm::{self, Libp2pTcp},
};
use onetrip_stack::{
    Preset, TransportKind,
    measure::{self, ZeroRttServer},
    multiaddr, parse_addr,
};
use onetrip_testkit::peer::{Encryption, Peer, PerfHandler};
use serde_json::json;
use tokio::time::Instant;

/// How much slower real sockets may be than virtual time: CPU time.
const TOLERANCE: Duration = Duration::from_millis(5);
const RUNS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn rtts(ttfb: Duration, rtt: Duration) -> f64 {
    ttfb.as_secs_f64() / rtt.as_secs_f64()
}

/// The netsim count for `preset` at one-way `delay`.
fn virtual_rtts(preset: Preset, delay: Duration) -> f64 {
    measure::paused_runtime().block_on(async {
        let measured = match preset {
            Preset::Tcp(layering) => measure::tcp(layering, delay).await,
            Preset::Quic(layering) => {
                let reconnect = layering.zero_rtt;
                measure::quic(layering, delay, ZeroRttServer::Accepts, reconnect).await
            }
        };
        measured.expect("a netsim measurement").ttfb_rtts()
    })
}

async fn onetrip_real(server: &OnetripServer, preset: Preset, delay: Duration) -> Duration {
    let addr = relayed(server.addr(preset), delay).await;
    // For 0-RTT, a first connection leaves the tickets the measured ones use.
    let warm_up = matches!(preset, Preset::Quic(layering) if layering.zero_rtt);
    onetrip_ttfb(preset, &addr, server.peer, delay, warm_up).await
}

/// onetrip with `preset` dials `peer` at `addr`: the median TTFB of a ping
/// request over [`RUNS`] dials, after one unmeasured dial if `warm_up`.
async fn onetrip_ttfb(
    preset: Preset,
    addr: &Multiaddr,
    peer: libp2p_identity::PeerId,
    delay: Duration,
    warm_up: bool,
) -> Duration {
    let client = fixtures::client(preset).unwrap();
    let mut samples = Vec::new();
    for run in usize::from(!warm_up)..=RUNS {
        let start = Instant::now();
        let connection = client.dial(addr, Some(peer)).await.unwrap();
        measure::request(&connection).await.unwrap();
        if run > 0 {
            samples.push(start.elapsed());
        }
        tokio::time::sleep(4 * delay).await;
        connection.close().await.unwrap();
    }
    median(samples)
}

async fn libp2p_tcp_real(stack: Libp2pTcp, delay: Duration) -> Duration {
    let server = baseline::tcp_server(stack.security(&Keypair::generate_ed25519()).unwrap())
        .await
        .unwrap();
    let relayed = relay::tcp(server, delay).await.unwrap();
    let security = stack.security(&Keypair::generate_ed25519()).unwrap();
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let connection = baseline::tcp_connect(relayed, &security)
            .await
            .unwrap()
            .with_substreams(stack.substreams());
        baseline::ping(&connection).await.unwrap();
        samples.push(start.elapsed());
    }
    median(samples)
}

async fn libp2p_quic_real(delay: Duration, substreams: Version) -> Duration {
    let server = baseline::quic_server().await.unwrap();
    let addr = relayed(&server, delay).await;
    let mut transport =
        baseline::QuicTransport::new(libp2p_quic::Config::new(&Keypair::generate_ed25519()));
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let connection = baseline::quic_connect(&mut transport, &addr)
            .await
            .unwrap()
            .with_substreams(substreams);
        baseline::ping(&connection).await.unwrap();
        samples.push(start.elapsed());
    }
    median(samples)
}

/// The one-way delay of the js-libp2p rows: RTT 50 ms.
const JS_DELAY: Duration = Duration::from_millis(25);

/// Through a relay to `target` (TCP or QUIC, from the address's kind).
async fn relayed(target: &Multiaddr, delay: Duration) -> Multiaddr {
    let (kind, socket, _) = parse_addr(target).unwrap();
    let relayed = match kind {
        TransportKind::Tcp => relay::tcp(socket, delay).await.unwrap(),
        TransportKind::Quic => relay::udp(socket, delay).await.unwrap(),
    };
    multiaddr(kind, relayed)
}

/// onetrip with `preset` dials the js node through the relay: the median
/// TTFB of a ping request, after one warm-up dial.
async fn onetrip_dials_js(js: &Peer, preset: Preset, delay: Duration) -> Duration {
    let target = match preset {
        Preset::Tcp(_) => &js.tcp,
        Preset::Quic(_) => &js.quic,
    };
    let addr = relayed(target, delay).await;
    onetrip_ttfb(preset, &addr, js.peer_id, delay, true).await
}

/// The js node dials onetrip through the relay and measures its own TTFB
/// of a ping request; the median after one warm-up dial.
async fn js_dials_onetrip(js: &mut Peer, target: &Multiaddr, optimistic: bool) -> Duration {
    let mut samples = Vec::new();
    for run in 0..=RUNS {
        let answer = js
            .call(json!({ "op": "ttfb", "addr": target.to_string(), "optimistic": optimistic }))
            .await;
        let millis = answer["millis"]
            .as_f64()
            .expect("the js peer answers millis");
        if run > 0 {
            samples.push(Duration::from_secs_f64(millis / 1e3));
        }
        tokio::time::sleep(4 * JS_DELAY).await;
    }
    median(samples)
}

/// Measures against js-libp2p and renders the section of
/// `spec/round-trips.md`.
async fn js_section(server: &OnetripServer) -> String {
    let mut js = Peer::js(PerfHandler::Stock, Encryption::Noise).await;
    let rtt = 2 * JS_DELAY;
    // (dialer, listener, transport, measured RTTs, netsim count)
    let mut rows: Vec<(String, String, &str, f64, Option<f64>)> = Vec::new();
    for name in ["tcp-classic", "tcp-onetrip", "quic", "quic-optimistic"] {
        let preset: Preset = name.parse().unwrap();
        let real = onetrip_dials_js(&js, preset, JS_DELAY).await;
        let (transport, handshake) = match preset {
            Preset::Tcp(_) => ("TCP", 1.0),
            Preset::Quic(_) => ("QUIC", 0.0),
        };
        rows.push((
            format!("onetrip `{name}`"),
            "js-libp2p".into(),
            transport,
            rtts(real, rtt) + handshake,
            Some(
                tokio::task::spawn_blocking(move || virtual_rtts(preset, JS_DELAY))
                    .await
                    .unwrap(),
            ),
        ));
    }
    let with_peer = |addr: &Multiaddr| addr.clone().with(multiaddr::Protocol::P2p(server.peer));
    for (transport, target, handshake) in [("TCP", &server.tcp, 1.0), ("QUIC", &server.quic, 0.0)] {
        let addr = with_peer(&relayed(target, JS_DELAY).await);
        for optimistic in [false, true] {
            let real = js_dials_onetrip(&mut js, &addr, optimistic).await;
            let mode = if optimistic {
                "`negotiateFully: false`"
            } else {
                "default (`negotiateFully: true`)"
            };
            rows.push((
                format!("js-libp2p, {mode}"),
                "onetrip".into(),
                transport,
                rtts(real, rtt) + handshake,
                None,
            ));
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}", spec::JS_SECTION_BEGIN);
    let _ = write!(
        out,
        "## Against js-libp2p over real sockets (a cross-check)

Not from netsim and not checked by a test: measured by `cargo run --release -p
onetrip-bench --bin crosscheck` over loopback sockets through the userspace
delay relay at RTT {} ms, against the stock js-libp2p node of `tests/js-peer`
(libp2p 3.3.11, @chainsafe/libp2p-noise 17, @chainsafe/libp2p-yamux 8,
@chainsafe/libp2p-quic 2.1; it offers its muxers inside the Noise
handshake). TTFB as above, a 32-byte ping on a fresh stream; the median of
{RUNS} dials after a warm-up. Over TCP one round trip is added for the SYN and
SYN-ACK, which the relay cannot delay. Whole round trips are the measured
figure rounded down: the rest is CPU time (mostly js-libp2p's), well under a
round trip at this RTT. onetrip listens with its defaults (`tcp-onetrip`,
which answers every layering and lists its muxer in the Noise handshake).
The last column is what the same dialer layering measures against onetrip in
virtual time.

| dialer | listener | transport | TTFB, real sockets | whole round trips | netsim, onetrip to onetrip |
|---|---|---|---|---|---|
",
        rtt.as_millis()
    );
    for (dialer, listener, transport, real, virtual_count) in rows {
        let _ = writeln!(
            out,
            "| {dialer} | {listener} | {transport} | {real:.2} RTT | {} | {} |",
            (real + 0.05).floor(),
            virtual_count.map_or("—".into(), |v| format!("{} RTT", spec::fmt_rtts(v))),
        );
    }
    let _ = write!(out, "{}", spec::JS_SECTION_END);
    out
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(OnetripServer::start()).unwrap();
    let mut agree = true;
    println!(
        "{:<22} {:>7} {:>14} {:>14} {:>9}",
        "stack", "RTT", "real sockets", "netsim", "real - netsim"
    );
    for delay in [Duration::from_millis(10), Duration::from_millis(50)] {
        let rtt = 2 * delay;
        let mut rows = Vec::new();
        for (name, preset) in Preset::all() {
            let real = runtime.block_on(onetrip_real(&server, preset, delay));
            // The relay does not delay TCP's SYN and SYN-ACK: add their RTT.
            let handshake = if matches!(preset, Preset::Tcp(_)) {
                1.0
            } else {
                0.0
            };
            rows.push((
                name.to_string(),
                rtts(real, rtt) + handshake,
                Some(virtual_rtts(preset, delay)),
            ));
        }
        for stack in Libp2pTcp::ALL {
            let real = runtime.block_on(libp2p_tcp_real(stack, delay));
            let virtual_count = measure::paused_runtime()
                .block_on(swarm::libp2p_tcp(stack, delay))
                .expect("a netsim measurement")
                .ttfb_rtts();
            rows.push((
                stack.bench_name().into(),
                rtts(real, rtt) + 1.0,
                Some(virtual_count),
            ));
        }
        for (name, substreams) in [
            ("libp2p-quic, V1", Version::V1),
            ("libp2p-quic, V1Lazy", Version::V1Lazy),
        ] {
            let real = runtime.block_on(libp2p_quic_real(delay, substreams));
            rows.push((name.into(), rtts(real, rtt), None));
        }
        for (name, real, virtual_count) in rows {
            // The difference in milliseconds.
            let diff = virtual_count.map(|v| (real - v) * rtt.as_secs_f64() * 1e3);
            if diff.is_some_and(|d| !(0.0..=TOLERANCE.as_secs_f64() * 1e3).contains(&d)) {
                agree = false;
            }
            println!(
                "{name:<22} {:>5}ms {:>10.2} RTT {:>14} {:>9}",
                rtt.as_millis(),
                real,
                virtual_count.map_or("—".into(), |v| format!("{v:.2} RTT")),
                diff.map_or("—".into(), |d| format!("{d:+.1} ms")),
            );
        }
    }
    let section = runtime.block_on(js_section(&server));
    println!("\n{section}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/round-trips.md");
    let doc = std::fs::read_to_string(&path).expect("spec/round-trips.md exists");
    std::fs::write(&path, spec::with_js_section(&doc, &section)).expect("writing the spec");
    println!("wrote the js-libp2p section of {}", path.display());
    if agree {
        println!("the two methods agree: real sockets are 0 to {TOLERANCE:?} slower");
        ExitCode::SUCCESS
    } else {
        println!("the two methods disagree: a difference is outside 0 to {TOLERANCE:?}");
        ExitCode::FAILURE
    }
}
