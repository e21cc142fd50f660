//! Every stack side by side: onetrip's eight presets and rust-libp2p's TCP
//! (tcp + noise or tls + yamux as its SwarmBuilder composes them, the
//! security upgrade made once per identity, streams negotiated with `V1`,
//! its default, or `V1Lazy`) and QUIC (libp2p-quic, `V1` or `V1Lazy`).
//!
//! - `handshake-loopback`: dial to first response byte of a 32-byte
//!   request on a fresh stream, real loopback sockets: the layering's CPU
//!   cost.
//! - `handshake-virtual-time-rtt50ms`: the same on a netsim link at RTT
//!   50 ms in virtual time, reported through `iter_custom`: the figure is
//!   round trips × 50 ms (libp2p-quic cannot run on netsim).
//! - `streams`: a new stream and a 1-byte perf round trip on an open
//!   connection (the Kademlia case).
//! - `handshakes-per-second`: the perf spec's connections per second, 64
//!   fresh connections at once, each with a one-byte request.
//! - `throughput-download-64MiB`, `throughput-upload-64MiB`: one perf
//!   transfer; with raw TCP (no security, no muxer) and the ciphers
//!   (ChaCha20-Poly1305 and AES-256-GCM sealing on one core) as ceilings.
//!
//! The servers run on a thread and runtime of their own, as remote peers
//! would, so that a transfer seals on one core and opens on the other; the
//! clients run on the bench's.
//!
//! Ends by writing `target/onetrip-bench/summary.{md,json}`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput};
use libp2p_identity::{Keypair, PeerId};
use multistream_select::Version;
use onetrip_bench::{
    baseline::{self, Libp2pConnection, Security},
    fixtures::{self, OnetripServer},
    summary::{
        self, HANDSHAKES, LIBP2P_QUIC, LIBP2P_QUIC_LAZY, RUST_LIBP2P_TCP, TRANSFER, bound, group,
    },
    swarm::{self, Libp2pTcp},
};
use onetrip_perf::{Progress, RunParams};
use onetrip_quic::TicketStore;
use onetrip_stack::{
    Connection, Endpoint, Preset,
    measure::{self, ZeroRttServer},
};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use tokio::runtime::Runtime;

/// The virtual RTT's one-way delay: RTT 50 ms.
const VIRTUAL_DELAY: Duration = Duration::from_millis(25);

const ONE_BYTE: RunParams = RunParams {
    upload: 1,
    download: 1,
};
const DOWNLOAD: RunParams = RunParams {
    upload: 0,
    download: TRANSFER,
};
const UPLOAD: RunParams = RunParams {
    upload: TRANSFER,
    download: 0,
};

struct Fixture {
    rt: Runtime,
    server: OnetripServer,
    clients: Vec<(&'static str, Preset, Endpoint)>,
    /// Each rust-libp2p TCP configuration: its server, and the client's
    /// security upgrade (made once, as for a Swarm's identity).
    libp2p_tcp: Vec<(Libp2pTcp, std::net::SocketAddr, Security)>,
    libp2p_quic: libp2p_core::Multiaddr,
    libp2p_quic_client: baseline::QuicTransport,
    /// A plain TCP perf server.
    raw_tcp: std::net::SocketAddr,
}

/// libp2p-quic's two ways of negotiating streams.
const LIBP2P_QUIC_SUBSTREAMS: [(&str, Version); 2] = [
    (LIBP2P_QUIC, Version::V1),
    (LIBP2P_QUIC_LAZY, Version::V1Lazy),
];

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The servers run on a thread of their own, as remote peers would.
    let (server, libp2p_tcp_servers, libp2p_quic, raw_tcp) = fixtures::on_server_thread(|| async {
        let mut libp2p_tcp = Vec::new();
        for stack in Libp2pTcp::ALL {
            let server = stack.security(&Keypair::generate_ed25519()).unwrap();
            libp2p_tcp.push((stack, baseline::tcp_server(server).await.unwrap()));
        }
        (
            OnetripServer::start().await.unwrap(),
            libp2p_tcp,
            baseline::quic_server().await.unwrap(),
            fixtures::raw_tcp_server().await.unwrap(),
        )
    });
    let libp2p_tcp = libp2p_tcp_servers
        .into_iter()
        .map(|(stack, addr)| {
            let client = stack.security(&Keypair::generate_ed25519()).unwrap();
            (stack, addr, client)
        })
        .collect();
    let clients: Vec<_> = Preset::all()
        .map(|(name, preset)| (name, preset, fixtures::client(preset).unwrap()))
        .collect();
    let libp2p_quic_client = {
        let _guard = rt.enter();
        baseline::QuicTransport::new(libp2p_quic::Config::new(&Keypair::generate_ed25519()))
    };
    // A first connection per client leaves session tickets (for 0-RTT).
    rt.block_on(async {
        for (_, preset, client) in &clients {
            let connection = client
                .dial(server.addr(*preset), Some(server.peer))
                .await
                .unwrap();
            measure::request(&connection).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            connection.close().await.unwrap();
        }
    });
    Fixture {
        rt,
        server,
        clients,
        libp2p_tcp,
        libp2p_quic,
        libp2p_quic_client,
        raw_tcp,
    }
}

fn handshake_loopback(c: &mut Criterion, f: &mut Fixture) {
    let mut group = c.benchmark_group(group::HANDSHAKE_LOOPBACK);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, preset, client) in &f.clients {
        let (server, preset) = (&f.server, *preset);
        let tickets = early_data_tickets(client, preset);
        group.bench_function(*name, |b| {
            b.to_async(&f.rt).iter_custom(|iters| {
                let tickets = tickets.clone();
                async move {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let connection = client
                            .dial(server.addr(preset), Some(server.peer))
                            .await
                            .unwrap();
                        measure::request(&connection).await.unwrap();
                        timed += start.elapsed();
                        if let Some(tickets) = &tickets {
                            ticket_landed(tickets, &server.peer).await;
                        }
                        connection.close().await.unwrap();
                    }
                    timed
                }
            });
        });
    }
    for (stack, addr, security) in &f.libp2p_tcp {
        let (stack, addr) = (*stack, *addr);
        group.bench_function(stack.bench_name(), |b| {
            b.to_async(&f.rt).iter(|| async move {
                let connection = baseline::tcp_connect(addr, security)
                    .await
                    .unwrap()
                    .with_substreams(stack.substreams());
                baseline::ping(&connection).await.unwrap();
            });
        });
    }
    for (name, substreams) in LIBP2P_QUIC_SUBSTREAMS {
        let (rt, transport, addr) = (&f.rt, &mut f.libp2p_quic_client, &f.libp2p_quic);
        group.bench_function(name, |b| {
            // The transport needs `&mut`: drive each batch inside the closure.
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let connection = baseline::quic_connect(transport, addr)
                            .await
                            .unwrap()
                            .with_substreams(substreams);
                        baseline::ping(&connection).await.unwrap();
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// The session tickets `client` keeps for its dials of `preset`, if those
/// send early data on a ticket (TLS 1.3 early data, QUIC 0-RTT); TCP Fast
/// Open alone needs no ticket of ours.
fn early_data_tickets(client: &Endpoint, preset: Preset) -> Option<Arc<TicketStore>> {
    match preset {
        Preset::Tcp(layering) if layering.early_data => {
            Some(client.config().tls_ticket_store().clone())
        }
        Preset::Quic(layering) if layering.zero_rtt => {
            Some(client.config().quic().ticket_store().clone())
        }
        _ => None,
    }
}

/// Waits (up to [`TICKET_WAIT`]) until `tickets` holds one for `peer`.
///
/// A server sends its tickets once it has the client's Finished, which on
/// a connection resumed with early data is after its answer: a client that
/// closed at the answer would spend a ticket and get none, and the next
/// dial would be a full handshake. A node that keeps a connection until
/// it idles gets them; so does the benchmark, outside the timed part.
async fn ticket_landed(tickets: &TicketStore, peer: &PeerId) {
    let deadline = Instant::now() + TICKET_WAIT;
    while tickets.tickets(peer) == 0 {
        if Instant::now() >= deadline {
            eprintln!(
                "no session ticket within {TICKET_WAIT:?}: the next dial is a full handshake"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// How long a 0-RTT benchmark waits for the next session ticket.
const TICKET_WAIT: Duration = Duration::from_millis(200);

/// Connections per second (the perf spec's handshakes per second): each
/// iteration sets up [`HANDSHAKES`] fresh connections at once, each with a
/// one-byte request.
fn handshakes(c: &mut Criterion, f: &mut Fixture) {
    let mut group = c.benchmark_group(group::HANDSHAKES);
    group
        .throughput(Throughput::Elements(HANDSHAKES as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, preset, client) in &f.clients {
        let (server, preset) = (&f.server, *preset);
        group.bench_function(*name, |b| {
            b.to_async(&f.rt).iter(|| async move {
                let dials = (0..HANDSHAKES).map(|_| async move {
                    let connection = client
                        .dial(server.addr(preset), Some(server.peer))
                        .await
                        .unwrap();
                    fixtures::perf_once(&connection, ONE_BYTE).await.unwrap();
                    connection.close().await.unwrap();
                });
                futures::future::join_all(dials).await;
            });
        });
    }
    for (stack, addr, security) in &f.libp2p_tcp {
        let (stack, addr) = (*stack, *addr);
        group.bench_function(stack.bench_name(), |b| {
            b.to_async(&f.rt).iter(|| async move {
                let dials = (0..HANDSHAKES).map(|_| async move {
                    let connection = baseline::tcp_connect(addr, security)
                        .await
                        .unwrap()
                        .with_substreams(stack.substreams());
                    fixtures::libp2p_perf_once(&connection, ONE_BYTE)
                        .await
                        .unwrap();
                });
                futures::future::join_all(dials).await;
            });
        });
    }
    for (name, substreams) in LIBP2P_QUIC_SUBSTREAMS {
        let (rt, transport, addr) = (&f.rt, &mut f.libp2p_quic_client, &f.libp2p_quic);
        group.bench_function(name, |b| {
            // Dials start with `&mut` to the transport, then run at once.
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let dials: Vec<_> = (0..HANDSHAKES)
                            .map(|_| baseline::quic_dial_start(transport, addr).unwrap())
                            .collect();
                        let runs = dials.into_iter().map(|dial| async move {
                            let connection = Libp2pConnection::spawn(dial.await.unwrap())
                                .with_substreams(substreams);
                            fixtures::libp2p_perf_once(&connection, ONE_BYTE)
                                .await
                                .unwrap();
                        });
                        futures::future::join_all(runs).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

fn handshake_virtual(c: &mut Criterion) {
    let mut group = c.benchmark_group(group::HANDSHAKE_VIRTUAL);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    for (name, preset) in Preset::all() {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                measure::paused_runtime().block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // Early data (TLS, data in the SYN, QUIC 0-RTT)
                        // shows on a reconnect.
                        let server = ZeroRttServer::Accepts;
                        let reconnect = preset.sends_early_data();
                        let measured = match preset {
                            Preset::Tcp(layering) => {
                                measure::tcp_resumed(layering, VIRTUAL_DELAY, server, reconnect)
                                    .await
                            }
                            Preset::Quic(layering) => {
                                measure::quic(layering, VIRTUAL_DELAY, server, reconnect).await
                            }
                        };
                        total += measured.unwrap().ttfb;
                    }
                    total
                })
            });
        });
    }
    for stack in Libp2pTcp::ALL {
        group.bench_function(stack.bench_name(), |b| {
            b.iter_custom(|iters| {
                measure::paused_runtime().block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += swarm::libp2p_tcp(stack, VIRTUAL_DELAY).await.unwrap().ttfb;
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

/// Open connections of the stacks compared per stream and throughput.
struct Open {
    onetrip: Vec<(&'static str, Connection)>,
    /// rust-libp2p's: TCP and QUIC, each with `V1` and `V1Lazy` streams.
    libp2p: Vec<(&'static str, Libp2pConnection)>,
}

fn open(f: &mut Fixture, presets: &[&str]) -> Open {
    let onetrip = f.rt.block_on(async {
        let mut open = Vec::new();
        for (name, preset, client) in &f.clients {
            if presets.contains(name) {
                let connection = client
                    .dial(f.server.addr(*preset), Some(f.server.peer))
                    .await
                    .unwrap();
                open.push((*name, connection));
            }
        }
        open
    });
    let libp2p = f.rt.block_on(async {
        let mut libp2p = Vec::new();
        for (stack, addr, security) in &f.libp2p_tcp {
            if *stack != Libp2pTcp::TlsLazySubstreams {
                let connection = baseline::tcp_connect(*addr, security).await.unwrap();
                libp2p.push((
                    stack.bench_name(),
                    connection.with_substreams(stack.substreams()),
                ));
            }
        }
        for (name, substreams) in LIBP2P_QUIC_SUBSTREAMS {
            let connection = baseline::quic_connect(&mut f.libp2p_quic_client, &f.libp2p_quic)
                .await
                .unwrap();
            libp2p.push((name, connection.with_substreams(substreams)));
        }
        libp2p
    });
    Open { onetrip, libp2p }
}

fn streams(c: &mut Criterion, f: &mut Fixture) {
    let open = open(
        f,
        &[
            "tcp-classic",
            "tcp-onetrip",
            "tcp-tls-onetrip",
            "quic",
            "quic-optimistic",
        ],
    );
    let mut group = c.benchmark_group(group::STREAMS);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, connection) in &open.onetrip {
        group.bench_function(*name, |b| {
            b.to_async(&f.rt)
                .iter(|| async { fixtures::perf_once(connection, ONE_BYTE).await.unwrap() });
        });
    }
    for (name, connection) in &open.libp2p {
        group.bench_function(*name, |b| {
            b.to_async(&f.rt).iter(|| async {
                fixtures::libp2p_perf_once(connection, ONE_BYTE)
                    .await
                    .unwrap()
            });
        });
    }
    group.finish();
}

fn throughput(c: &mut Criterion, f: &mut Fixture) {
    let raw = f.raw_tcp;
    for (group_name, params) in [(group::DOWNLOAD, DOWNLOAD), (group::UPLOAD, UPLOAD)] {
        // Fresh connections for each group: one left idle through a whole
        // group of other stacks' transfers can outlast QUIC's idle timeout.
        let open = open(f, &["tcp-onetrip", "tcp-tls-onetrip", "quic"]);
        let mut group = c.benchmark_group(group_name);
        group
            .throughput(Throughput::Bytes(TRANSFER))
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(4));
        for (name, connection) in &open.onetrip {
            group.bench_function(*name, |b| {
                b.to_async(&f.rt)
                    .iter(|| async { fixtures::perf_once(connection, params).await.unwrap() });
            });
        }
        // Stream negotiation does not matter for one long transfer: the
        // defaults only.
        let defaults = open
            .libp2p
            .iter()
            .filter(|(name, _)| [RUST_LIBP2P_TCP, LIBP2P_QUIC].contains(name));
        for (name, connection) in defaults {
            group.bench_function(*name, |b| {
                b.to_async(&f.rt).iter(|| async {
                    fixtures::libp2p_perf_once(connection, params)
                        .await
                        .unwrap()
                });
            });
        }
        group.bench_function("raw-tcp", |b| {
            b.to_async(&f.rt).iter(|| async {
                fixtures::raw_tcp_perf(raw, params, &Progress::default())
                    .await
                    .unwrap()
            });
        });
        group.finish();
    }
    // The ciphers the stacks run (summary::suite), sealing as many bytes
    // in 64 KiB frames: the ceiling of one core.
    let mut group = c.benchmark_group(group::DOWNLOAD);
    group
        .throughput(Throughput::Bytes(TRANSFER))
        .sample_size(10);
    for (name, algorithm) in [
        (bound::CHACHA20_POLY1305, &CHACHA20_POLY1305),
        (bound::AES_256_GCM, &AES_256_GCM),
    ] {
        let key = LessSafeKey::new(UnboundKey::new(algorithm, &[7; 32]).unwrap());
        let mut frame = vec![0x5a; 64 << 10];
        group.bench_function(name, |b| {
            b.iter(|| {
                for n in 0..TRANSFER / (64 << 10) {
                    let mut nonce = [0; 12];
                    nonce[4..].copy_from_slice(&n.to_le_bytes());
                    let tag = key
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::empty(),
                            &mut frame,
                        )
                        .unwrap();
                    let _ = std::hint::black_box(tag);
                }
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let mut fixture = fixture();
    handshake_loopback(&mut criterion, &mut fixture);
    // Virtual time makes every sample of this group identical, which
    // criterion's density plots cannot draw: measure it without them.
    let mut exact = Criterion::default().configure_from_args().without_plots();
    handshake_virtual(&mut exact);
    streams(&mut criterion, &mut fixture);
    handshakes(&mut criterion, &mut fixture);
    throughput(&mut criterion, &mut fixture);
    criterion.final_summary();
    summary::write();
}
