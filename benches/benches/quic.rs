//! Group `quic`, in one run on loopback UDP: a fresh connection plus a
//! 1-byte request and response (onetrip 1-RTT, onetrip 0-RTT on a resumed
//! session, rust-libp2p's libp2p-quic), and throughput of one stream
//! carrying 16 MiB (onetrip, libp2p-quic).
//!
//! Both run on quinn; libp2p-quic's TLS uses aws-lc-rs with the
//! X25519MLKEM768 key exchange first, onetrip's uses ring with X25519. No
//! stream protocol is negotiated on either side.

use std::{net::Ipv4Addr, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::{AsyncReadExt as _, AsyncWriteExt as _, FutureExt, future::poll_fn};
use libp2p_core::{
    Multiaddr,
    muxing::{StreamMuxerBox, StreamMuxerExt, SubstreamBox},
};
use libp2p_identity::Keypair;
use onetrip_bench::baseline;
use onetrip_common::Deadline;
use onetrip_quic::{Config, Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TRANSFER: usize = 16 << 20;
const CHUNK: usize = 64 << 10;

fn loopback() -> std::net::SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

/// An onetrip server answering each stream: a 1-byte request gets it
/// back; a longer upload is read to its end; then it ends its side.
fn onetrip_server(accept_0rtt: bool) -> Endpoint {
    let config = Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_accept_0rtt(accept_0rtt);
    let server = Endpoint::bind(loopback(), config).unwrap();
    let serving = server.clone();
    tokio::spawn(async move {
        while let Some(accepting) = serving.accept().await {
            tokio::spawn(async move {
                let Ok(connection) = accepting.establish(Deadline::NONE).await else {
                    return;
                };
                while let Ok(mut stream) = connection.accept_bi().await {
                    tokio::spawn(async move {
                        let mut data = Vec::new();
                        if stream.read_to_end(&mut data).await.is_ok() {
                            if data.len() == 1 {
                                let _ = stream.write_all(&data).await;
                            }
                            let _ = stream.shutdown().await;
                        }
                    });
                }
            });
        }
    });
    server
}

/// One fresh connection and a 1-byte request and response.
async fn onetrip_request(client: &Endpoint, server: &Endpoint) {
    let addr = server.local_addr().unwrap();
    let peer = server.config().peer_id();
    let connection = client
        .connect(addr, Some(peer), Deadline::NONE)
        .await
        .unwrap();
    let mut stream = connection.open_bi().await.unwrap();
    stream.write_all(&[1]).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut response = [0; 1];
    stream.read_exact(&mut response).await.unwrap();
    connection.close();
}

type Libp2pQuic = baseline::QuicTransport;

/// A libp2p-quic listener serving like `onetrip_server`; its address.
async fn libp2p_server() -> Multiaddr {
    baseline::quic_server_with(|stream| serve_raw(stream).boxed())
        .await
        .unwrap()
}

/// A 1-byte request gets it back; a longer upload is read to its end;
/// then the server ends its side (no protocol negotiation).
async fn serve_raw(mut stream: SubstreamBox) {
    let mut data = Vec::new();
    if stream.read_to_end(&mut data).await.is_ok() {
        if data.len() == 1 {
            let _ = stream.write_all(&data).await;
        }
        let _ = stream.close().await;
    }
}

async fn libp2p_connect(client: &mut Libp2pQuic, addr: &Multiaddr) -> StreamMuxerBox {
    baseline::quic_dial(client, addr).await.unwrap()
}

async fn libp2p_request(client: &mut Libp2pQuic, addr: &Multiaddr) {
    let mut connection = libp2p_connect(client, addr).await;
    let mut stream = poll_fn(|cx| connection.poll_outbound_unpin(cx))
        .await
        .unwrap();
    stream.write_all(&[1]).await.unwrap();
    stream.close().await.unwrap();
    let mut response = [0; 1];
    stream.read_exact(&mut response).await.unwrap();
    let _ = poll_fn(|cx| connection.poll_close_unpin(cx)).await;
}

fn quic(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let server = onetrip_server(true);
    let fresh = Endpoint::bind(
        loopback(),
        Config::new(Keypair::generate_ed25519()).unwrap(),
    )
    .unwrap();
    let resuming = Endpoint::bind(
        loopback(),
        Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_0rtt(true),
    )
    .unwrap();
    // A first connection leaves the session tickets every later one uses
    // (each connection brings new ones).
    rt.block_on(onetrip_request(&resuming, &server));
    rt.block_on(tokio::time::sleep(Duration::from_millis(50)));
    let libp2p_addr = rt.block_on(libp2p_server());
    let mut libp2p_client = Libp2pQuic::new(libp2p_quic::Config::new(&Keypair::generate_ed25519()));

    let mut group = c.benchmark_group("quic");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("connect+request/onetrip-1rtt", |b| {
        b.to_async(&rt).iter(|| onetrip_request(&fresh, &server));
    });
    group.bench_function("connect+request/onetrip-0rtt", |b| {
        b.to_async(&rt).iter(|| onetrip_request(&resuming, &server));
    });
    group.bench_function("connect+request/libp2p-quic", |b| {
        // The client needs `&mut`: drive each batch inside the closure.
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    libp2p_request(&mut libp2p_client, &libp2p_addr).await;
                }
                start.elapsed()
            })
        });
    });

    group.throughput(Throughput::Bytes(TRANSFER as u64));
    group.sample_size(10);
    let chunk = vec![0x5a; CHUNK];
    let connection = rt
        .block_on(fresh.connect(
            server.local_addr().unwrap(),
            Some(server.config().peer_id()),
            Deadline::NONE,
        ))
        .unwrap();
    group.bench_function("throughput-16MiB/onetrip", |b| {
        b.to_async(&rt).iter(|| async {
            let mut stream = connection.open_bi().await.unwrap();
            for _ in 0..TRANSFER / CHUNK {
                stream.write_all(&chunk).await.unwrap();
            }
            stream.shutdown().await.unwrap();
            // The server reads to the end, then ends its side.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
        });
    });
    let mut libp2p_connection = rt.block_on(libp2p_connect(&mut libp2p_client, &libp2p_addr));
    group.bench_function("throughput-16MiB/libp2p-quic", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let mut stream = poll_fn(|cx| libp2p_connection.poll_outbound_unpin(cx))
                        .await
                        .unwrap();
                    for _ in 0..TRANSFER / CHUNK {
                        stream.write_all(&chunk).await.unwrap();
                    }
                    stream.close().await.unwrap();
                    let mut rest = Vec::new();
                    stream.read_to_end(&mut rest).await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, quic);
criterion_main!(benches);
