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
//! Each figure is the median of five dials. Neither can the relay take
//! TCP Fast Open: the `-tfo` presets run through it with a plain
//! handshake and are compared with their count without Fast Open (their
//! saving is checked on the real kernel by
//! `crates/stack/tests/fast_open_kernel.rs`).
//!
//! Real sockets can only be slower than virtual time, by the CPU time the
//! stacks and the relay spend (a dial and request cost about a millisecond
//! on loopback: the `handshake-loopback` bench), which does not grow with
//! the RTT. So the two methods agree when the real TTFB exceeds the
//! virtual one by 0 to 5 ms at both RTTs: well under a round trip at
//! 20 ms. The exit status says whether they did.
//!
//! Then, across libp2p implementations at RTT 50 ms: onetrip, rust-libp2p,
//! a stock js-libp2p node (`tests/js-peer`, installed with `npm ci --prefix
//! tests/js-peer`) and a stock go-libp2p node (`tests/go-peer`, built with
//! `go build -C tests/go-peer -o go-peer .`), each dialing itself and
//! onetrip, and onetrip dialing each, in whole round trips, with ladders
//! of go-libp2p's TCP dials as the relay saw them. Those rows go into their
//! own section of `spec/round-trips.md`, which this program rewrites
//! (netsim cannot run js-libp2p or go-libp2p, so nothing checks them
//! against virtual time).

use std::{fmt::Write, path::PathBuf, process::ExitCode, time::Duration};

use libp2p_identity::{Keypair, PeerId};
use multiaddr::Multiaddr;
use multistream_select::Version;
use onetrip_bench::{
    baseline, fixtures,
    fixtures::OnetripServer,
    relay, spec,
    swarm::{self, Libp2pTcp},
};
use onetrip_stack::{
    Layering, Preset, TransportKind,
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

/// The netsim count for `preset` at one-way `delay`: of a reconnect for a
/// preset that sends early data, as the real-socket measurement (which
/// warms up first).
///
/// The relay's TCP is plain (it can neither take nor delay a SYN), so a
/// TCP Fast Open layering runs through it without Fast Open, and is
/// compared with its count without it.
fn virtual_rtts(preset: Preset, delay: Duration) -> f64 {
    let preset = match preset {
        Preset::Tcp(layering) => Preset::Tcp(Layering {
            fast_open: false,
            ..layering
        }),
        quic => quic,
    };
    measure::paused_runtime().block_on(async {
        let accepts = ZeroRttServer::Accepts;
        let measured = match preset {
            Preset::Tcp(layering) if layering.early_data => {
                measure::tcp_resumed(layering, delay, accepts, true).await
            }
            Preset::Tcp(layering) => measure::tcp(layering, delay).await,
            Preset::Quic(layering) => {
                measure::quic(layering, delay, accepts, layering.zero_rtt).await
            }
        };
        measured.expect("a netsim measurement").ttfb_rtts()
    })
}

async fn onetrip_real(server: &OnetripServer, preset: Preset, delay: Duration) -> Duration {
    let addr = relayed(server.addr(preset), delay).await;
    // For early data, a first connection leaves the tickets the measured
    // ones use.
    let warm_up = preset.sends_early_data();
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

/// The one-way delay of the rows across implementations: RTT 50 ms.
const PEERS_DELAY: Duration = Duration::from_millis(25);

/// Through a relay to `target` (TCP or QUIC, from the address's kind).
async fn relayed(target: &Multiaddr, delay: Duration) -> Multiaddr {
    let (kind, socket, _) = parse_addr(target).unwrap();
    let relayed = match kind {
        TransportKind::Tcp => relay::tcp(socket, delay).await.unwrap(),
        TransportKind::Quic => relay::udp(socket, delay).await.unwrap(),
    };
    multiaddr(kind, relayed)
}

/// `addr` with `/p2p/{peer}`.
fn with_peer(addr: Multiaddr, peer: PeerId) -> Multiaddr {
    addr.with(multiaddr::Protocol::P2p(peer))
}

/// onetrip with `preset` dials the peer through the relay: the median
/// TTFB of a ping request, after one warm-up dial.
async fn onetrip_dials_peer(peer: &Peer, preset: Preset, delay: Duration) -> Duration {
    let target = match preset {
        Preset::Tcp(_) => &peer.tcp,
        Preset::Quic(_) => &peer.quic,
    };
    let addr = relayed(target, delay).await;
    onetrip_ttfb(preset, &addr, peer.peer_id, delay, true).await
}

/// The peer dials `target` (with `/p2p`) and measures its own TTFB of a
/// ping request, in milliseconds.
async fn peer_ttfb_once(peer: &mut Peer, target: &Multiaddr, optimistic: bool) -> Duration {
    let answer = peer
        .call(json!({ "op": "ttfb", "addr": target.to_string(), "optimistic": optimistic }))
        .await;
    let millis = answer["millis"].as_f64().expect("the peer answers millis");
    Duration::from_secs_f64(millis / 1e3)
}

/// [`peer_ttfb_once`]: the median of [`RUNS`] dials after a warm-up.
async fn peer_ttfb(peer: &mut Peer, target: &Multiaddr, optimistic: bool) -> Duration {
    let mut samples = Vec::new();
    for run in 0..=RUNS {
        let ttfb = peer_ttfb_once(peer, target, optimistic).await;
        if run > 0 {
            samples.push(ttfb);
        }
        tokio::time::sleep(4 * PEERS_DELAY).await;
    }
    median(samples)
}

/// Who dials in a ladder.
enum LadderDialer<'a> {
    Onetrip(Preset),
    Peer(&'a mut Peer, bool),
}

/// One TCP dial through a relay that logs it: the ladder of what crossed
/// the relay until the first response byte, and the round trips it spans
/// (the SYN's added).
async fn tcp_ladder(dialer: LadderDialer<'_>, target: &Multiaddr, peer: PeerId) -> (String, usize) {
    let (_, socket, _) = parse_addr(target).unwrap();
    let log = relay::FlightLog::default();
    let relayed = relay::tcp_logged(socket, PEERS_DELAY, log.clone())
        .await
        .unwrap();
    let addr = with_peer(multiaddr(TransportKind::Tcp, relayed), peer);
    let start = Instant::now();
    let ttfb = match dialer {
        LadderDialer::Onetrip(preset) => {
            let client = fixtures::client(preset).unwrap();
            let connection = client.dial(&addr, Some(peer)).await.unwrap();
            measure::request(&connection).await.unwrap();
            let ttfb = start.elapsed();
            tokio::time::sleep(4 * PEERS_DELAY).await;
            connection.close().await.unwrap();
            ttfb
        }
        LadderDialer::Peer(dialer, optimistic) => peer_ttfb_once(dialer, &addr, optimistic).await,
    };
    // The relay read the response's first byte one delay before the
    // dialer did.
    let (ladder, round_trips) = log.ladder(start + ttfb - PEERS_DELAY + Duration::from_millis(2));
    (ladder, round_trips + 1)
}

/// A transport of the section, and the round trips the relay cannot delay
/// (TCP's SYN and SYN-ACK).
#[derive(Debug, Clone, Copy)]
struct Path {
    name: &'static str,
    undelayed: f64,
}

const TCP: Path = Path {
    name: "TCP",
    undelayed: 1.0,
};
const QUIC: Path = Path {
    name: "QUIC",
    undelayed: 0.0,
};

fn path_of(preset: Preset) -> Path {
    match preset {
        Preset::Tcp(_) => TCP,
        Preset::Quic(_) => QUIC,
    }
}

/// A row of the section.
struct PeerRow {
    dialer: String,
    listener: &'static str,
    path: Path,
    /// The measured TTFB in RTTs, the undelayed round trips added.
    rtts: f64,
    /// The netsim count of the same onetrip layering, onetrip to onetrip.
    netsim: Option<f64>,
}

impl PeerRow {
    fn new(
        dialer: impl Into<String>,
        listener: &'static str,
        path: Path,
        ttfb: Duration,
        netsim: Option<f64>,
    ) -> Self {
        PeerRow {
            dialer: dialer.into(),
            listener,
            path,
            rtts: rtts(ttfb, 2 * PEERS_DELAY) + path.undelayed,
            netsim,
        }
    }
}

/// The netsim count of `preset` at [`PEERS_DELAY`], off the async runtime.
async fn netsim_count(preset: Preset) -> Option<f64> {
    let count = tokio::task::spawn_blocking(move || virtual_rtts(preset, PEERS_DELAY));
    Some(count.await.unwrap())
}

/// Measures across implementations (onetrip, rust-libp2p, js-libp2p,
/// go-libp2p) and renders the section of `spec/round-trips.md`.
async fn peers_section(server: &OnetripServer) -> String {
    let mut js = Peer::js(PerfHandler::Stock, Encryption::Noise).await;
    let js_listener = Peer::js(PerfHandler::Stock, Encryption::Noise).await;
    let mut go = Peer::go(Encryption::Noise).await;
    let mut go_tls = Peer::go(Encryption::Tls).await;
    let go_listener = Peer::go(Encryption::Noise).await;
    let mut rows: Vec<PeerRow> = Vec::new();

    // Each implementation dialing itself.
    for name in [
        "tcp-onetrip",
        "tcp-tls-onetrip",
        "tcp-tls-0rtt",
        "quic-optimistic",
        "quic-0rtt",
    ] {
        let preset: Preset = name.parse().unwrap();
        let real = onetrip_real(server, preset, PEERS_DELAY).await;
        let dialer = if preset.sends_early_data() {
            format!("onetrip `{name}`, reconnect")
        } else {
            format!("onetrip `{name}`")
        };
        let netsim = netsim_count(preset).await;
        rows.push(PeerRow::new(
            dialer,
            "onetrip",
            path_of(preset),
            real,
            netsim,
        ));
    }
    for stack in [Libp2pTcp::Defaults, Libp2pTcp::TlsLazySubstreams] {
        let real = libp2p_tcp_real(stack, PEERS_DELAY).await;
        rows.push(PeerRow::new(
            stack.to_string(),
            "rust-libp2p",
            TCP,
            real,
            None,
        ));
    }
    for (name, substreams) in [("`V1`", Version::V1), ("`V1Lazy`", Version::V1Lazy)] {
        let real = libp2p_quic_real(PEERS_DELAY, substreams).await;
        let dialer = format!("rust-libp2p 0.57 libp2p-quic, {name} substreams");
        rows.push(PeerRow::new(dialer, "rust-libp2p", QUIC, real, None));
    }
    for (path, target) in [(TCP, &go_listener.tcp), (QUIC, &go_listener.quic)] {
        let addr = with_peer(relayed(target, PEERS_DELAY).await, go_listener.peer_id);
        let real = peer_ttfb(&mut go, &addr, false).await;
        rows.push(PeerRow::new(
            "go-libp2p, Noise",
            "go-libp2p",
            path,
            real,
            None,
        ));
        if path.name == TCP.name {
            let real = peer_ttfb(&mut go_tls, &addr, false).await;
            rows.push(PeerRow::new(
                "go-libp2p, TLS",
                "go-libp2p",
                path,
                real,
                None,
            ));
        }
    }
    for (path, target) in [(TCP, &js_listener.tcp), (QUIC, &js_listener.quic)] {
        let addr = with_peer(relayed(target, PEERS_DELAY).await, js_listener.peer_id);
        for (optimistic, mode) in [(false, "default"), (true, "`negotiateFully: false`")] {
            let real = peer_ttfb(&mut js, &addr, optimistic).await;
            let dialer = format!("js-libp2p, {mode}");
            rows.push(PeerRow::new(dialer, "js-libp2p", path, real, None));
        }
    }

    // onetrip dialing the others; then its 0-RTT presets, which fall back:
    // neither sends tickets that allow early data, so a reconnect is a
    // full handshake (go-libp2p) or a resumed one (js-libp2p).
    let presets = [
        "tcp-classic",
        "tcp-onetrip",
        "tcp-tls-onetrip",
        "quic",
        "quic-optimistic",
    ];
    for name in presets.into_iter().chain(["tcp-tls-0rtt", "quic-0rtt"]) {
        let preset: Preset = name.parse().unwrap();
        let (dialer, netsim) = if preset.sends_early_data() {
            (format!("onetrip `{name}`, reconnect"), None)
        } else {
            (format!("onetrip `{name}`"), netsim_count(preset).await)
        };
        for (listener, peer) in [("js-libp2p", &js_listener), ("go-libp2p", &go_listener)] {
            let real = onetrip_dials_peer(peer, preset, PEERS_DELAY).await;
            rows.push(PeerRow::new(
                dialer.clone(),
                listener,
                path_of(preset),
                real,
                netsim,
            ));
        }
    }

    // The others dialing onetrip (listening with its defaults).
    for (path, target) in [(TCP, &server.tcp), (QUIC, &server.quic)] {
        let addr = with_peer(relayed(target, PEERS_DELAY).await, server.peer);
        let modes = [
            ("js-libp2p, default", false),
            ("js-libp2p, `negotiateFully: false`", true),
            ("go-libp2p, stock", false),
            ("go-libp2p, ping known to its peer store", true),
        ];
        for (name, optimistic) in modes {
            let dialer = if name.starts_with("js") {
                &mut js
            } else {
                &mut go
            };
            let real = peer_ttfb(dialer, &addr, optimistic).await;
            rows.push(PeerRow::new(name, "onetrip", path, real, None));
        }
    }

    // Ladders of go-libp2p's TCP dials, and of onetrip's for comparison.
    let go_tcp = go_listener.tcp.clone();
    let go_peer = go_listener.peer_id;
    let onetrip_tcp = server.tcp.clone();
    let ladders = [
        (
            "go-libp2p dials go-libp2p",
            tcp_ladder(LadderDialer::Peer(&mut go, false), &go_tcp, go_peer).await,
        ),
        (
            "go-libp2p dials onetrip (stock)",
            tcp_ladder(
                LadderDialer::Peer(&mut go, false),
                &onetrip_tcp,
                server.peer,
            )
            .await,
        ),
        (
            "onetrip `tcp-onetrip` dials go-libp2p",
            tcp_ladder(
                LadderDialer::Onetrip("tcp-onetrip".parse().unwrap()),
                &go_tcp,
                go_peer,
            )
            .await,
        ),
    ];
    render_peers_section(&rows, &ladders)
}

fn render_peers_section(rows: &[PeerRow], ladders: &[(&str, (String, usize))]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", spec::PEERS_SECTION_BEGIN);
    let _ = write!(
        out,
        "## Across libp2p implementations over real sockets (a cross-check)

Not from netsim and not checked by a test: measured by `cargo run --release -p
onetrip-bench --bin crosscheck` over loopback sockets through the userspace
delay relay at RTT {} ms, against rust-libp2p 0.57 (composed from its
crates, as in the benches), the stock js-libp2p node of `tests/js-peer`
(libp2p 3.3.11, @chainsafe/libp2p-noise 17, @chainsafe/libp2p-yamux 8,
@chainsafe/libp2p-quic 2.1) and the stock go-libp2p node of `tests/go-peer`
(go-libp2p 0.51). All of them, and onetrip, measured the same way: TTFB as
above, from the dial to the first byte of the echo of a 32-byte ping on a
fresh stream; the median of {RUNS} dials after a warm-up. Over TCP one round
trip is added for the SYN and SYN-ACK, which the relay cannot delay. Whole
round trips are the measured figure rounded down: the rest is CPU time
(mostly the peer's), well under a round trip at this RTT. onetrip listens
with its defaults (`tcp-onetrip`, which answers every layering and lists
its muxer in the Noise handshake). The last column is what the same onetrip
layering measures against onetrip in virtual time.

js-libp2p's `negotiateFully: false` proposes the stream protocol
optimistically. go-libp2p's `NewStream` first waits for the connection's
Identify exchange, then proposes the protocol optimistically if its peer
store says the peer speaks it (as Identify does, from a js-libp2p or
go-libp2p listener), and interactively otherwise; \"ping known to its peer
store\" stands for a peer it met before.

| dialer | listener | transport | TTFB, real sockets | whole round trips | netsim, onetrip to onetrip |
|---|---|---|---|---|---|
",
        (2 * PEERS_DELAY).as_millis()
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} RTT | {} | {} |",
            row.dialer,
            row.listener,
            row.path.name,
            row.rtts,
            (row.rtts + 0.05).floor(),
            row.netsim
                .map_or("—".into(), |v| format!("{} RTT", spec::fmt_rtts(v))),
        );
    }
    let _ = write!(
        out,
        "
### Ladders through the relay

What the relay forwarded on one TCP dial, until it read the first byte of
the response: the time it read each chunk (from the first), its direction
(`→` from the dialer), its size, and the protocol names it carries in the
clear (multistream-select, before the security handshake). The SYN and
SYN-ACK come before the first line and count one round trip of the total.
"
    );
    for (title, (ladder, round_trips)) in ladders {
        let _ = write!(
            out,
            "\n#### {title}: {round_trips} round trips\n\n```\n{ladder}```\n"
        );
    }
    let _ = write!(out, "{}", spec::PEERS_SECTION_END);
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
    let section = runtime.block_on(peers_section(&server));
    println!("\n{section}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/round-trips.md");
    let doc = std::fs::read_to_string(&path).expect("spec/round-trips.md exists");
    std::fs::write(&path, spec::with_peers_section(&doc, &section)).expect("writing the spec");
    println!(
        "wrote the cross-implementation section of {}",
        path.display()
    );
    if agree {
        println!("the two methods agree: real sockets are 0 to {TOLERANCE:?} slower");
        ExitCode::SUCCESS
    } else {
        println!("the two methods disagree: a difference is outside 0 to {TOLERANCE:?}");
        ExitCode::FAILURE
    }
}
