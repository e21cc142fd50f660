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

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use libp2p_identity::Keypair;
use onetrip_bench::{baseline, fixtures, fixtures::OnetripServer, relay};
use onetrip_stack::{
    Preset, TransportKind,
    measure::{self, ZeroRttServer},
    multiaddr, parse_addr,
};
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
    let (kind, target, _) = parse_addr(server.addr(preset)).unwrap();
    let relayed: SocketAddr = match kind {
        TransportKind::Tcp => relay::tcp(target, delay).await.unwrap(),
        TransportKind::Quic => relay::udp(target, delay).await.unwrap(),
    };
    let addr = multiaddr(kind, relayed);
    let client = fixtures::client(preset).unwrap();
    if let Preset::Quic(layering) = preset
        && layering.zero_rtt
    {
        // A first connection leaves the tickets the measured ones use.
        let first = client.dial(&addr, Some(server.peer)).await.unwrap();
        measure::request(&first).await.unwrap();
        tokio::time::sleep(4 * delay).await;
        first.close().await.unwrap();
    }
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let connection = client.dial(&addr, Some(server.peer)).await.unwrap();
        measure::request(&connection).await.unwrap();
        samples.push(start.elapsed());
        tokio::time::sleep(4 * delay).await;
        connection.close().await.unwrap();
    }
    median(samples)
}

async fn libp2p_tcp_real(delay: Duration) -> Duration {
    let server = baseline::tcp_server().await.unwrap();
    let relayed = relay::tcp(server, delay).await.unwrap();
    let key = Keypair::generate_ed25519();
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let connection = baseline::tcp_connect(relayed, &key).await.unwrap();
        baseline::ping(&connection).await.unwrap();
        samples.push(start.elapsed());
    }
    median(samples)
}

async fn libp2p_quic_real(delay: Duration) -> Duration {
    let server = baseline::quic_server().await.unwrap();
    let (_, target, _) = parse_addr(&server.to_string().parse().unwrap()).unwrap();
    let relayed = relay::udp(target, delay).await.unwrap();
    let addr = multiaddr(TransportKind::Quic, relayed)
        .to_string()
        .parse()
        .unwrap();
    let mut transport =
        baseline::QuicTransport::new(libp2p_quic::Config::new(&Keypair::generate_ed25519()));
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let connection = baseline::quic_connect(&mut transport, &addr).await.unwrap();
        baseline::ping(&connection).await.unwrap();
        samples.push(start.elapsed());
    }
    median(samples)
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
        let real = runtime.block_on(libp2p_tcp_real(delay));
        let virtual_count = measure::paused_runtime()
            .block_on(baseline::libp2p_tcp(delay))
            .expect("a netsim measurement")
            .ttfb_rtts();
        rows.push((
            "rust-libp2p-tcp".into(),
            rtts(real, rtt) + 1.0,
            Some(virtual_count),
        ));
        let real = runtime.block_on(libp2p_quic_real(delay));
        rows.push(("libp2p-quic".into(), rtts(real, rtt), None));
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
    if agree {
        println!("the two methods agree: real sockets are 0 to {TOLERANCE:?} slower");
        ExitCode::SUCCESS
    } else {
        println!("the two methods disagree: a difference is outside 0 to {TOLERANCE:?}");
        ExitCode::FAILURE
    }
}
