//! Group `multistream`: the CPU cost of one negotiation followed by a
//! 1-byte request and a 1-byte response, over an in-memory duplex, for
//! onetrip's Interactive and Optimistic modes and rust-libp2p's V1 and
//! V1Lazy, in the same run. Round trips do not show here (the duplex has no
//! delay); they are counted in virtual time elsewhere.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use multistream_select::{Version, dialer_select_proto, listener_select_proto};
use onetrip_multistream::{Deadline, Mode, Protocol, dialer_select, listener_select};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio_util::compat::TokioAsyncReadCompatExt;

const PROTOCOL: &str = "/ipfs/ping/1.0.0";
/// The listener also offers a few protocols the dialer does not ask for, as
/// a real node does.
const SUPPORTED: [&str; 4] = [
    "/ipfs/id/1.0.0",
    "/ipfs/kad/1.0.0",
    "/meshsub/1.1.0",
    PROTOCOL,
];

async fn onetrip(mode: Mode, supported: &std::sync::Arc<[Protocol]>, protocol: &Protocol) {
    let (a, b) = duplex(4096);
    let dialer = async {
        let (_, mut io) = dialer_select(a, [protocol.clone()], mode, Deadline::NONE)
            .await
            .unwrap();
        io.write_all(b"?").await.unwrap();
        io.flush().await.unwrap();
        let mut reply = [0u8; 1];
        io.read_exact(&mut reply).await.unwrap();
    };
    let listener = async {
        let (_, mut io) = listener_select(b, supported.clone(), Deadline::NONE)
            .await
            .unwrap();
        let mut request = [0u8; 1];
        io.read_exact(&mut request).await.unwrap();
        io.write_all(b"!").await.unwrap();
        io.flush().await.unwrap();
    };
    black_box(tokio::join!(dialer, listener));
}

async fn rust_libp2p(version: Version) {
    let (a, b) = duplex(4096);
    let dialer = async {
        let (_, mut io) = dialer_select_proto(a.compat(), [PROTOCOL], version)
            .await
            .unwrap();
        io.write_all(b"?").await.unwrap();
        io.flush().await.unwrap();
        let mut reply = [0u8; 1];
        io.read_exact(&mut reply).await.unwrap();
    };
    let listener = async {
        let (_, mut io) = listener_select_proto(b.compat(), SUPPORTED).await.unwrap();
        let mut request = [0u8; 1];
        io.read_exact(&mut request).await.unwrap();
        io.write_all(b"!").await.unwrap();
        io.flush().await.unwrap();
    };
    black_box(tokio::join!(dialer, listener));
}

fn multistream(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let supported: std::sync::Arc<[Protocol]> = SUPPORTED
        .iter()
        .map(|n| Protocol::new(n).unwrap())
        .collect();
    let protocol = Protocol::new(PROTOCOL).unwrap();

    let mut group = c.benchmark_group("multistream");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("onetrip/interactive", |b| {
        b.to_async(&rt)
            .iter(|| onetrip(Mode::Interactive, &supported, &protocol))
    });
    group.bench_function("onetrip/optimistic", |b| {
        b.to_async(&rt)
            .iter(|| onetrip(Mode::Optimistic, &supported, &protocol))
    });
    group.bench_function("rust-libp2p/V1", |b| {
        b.to_async(&rt).iter(|| rust_libp2p(Version::V1))
    });
    group.bench_function("rust-libp2p/V1Lazy", |b| {
        b.to_async(&rt).iter(|| rust_libp2p(Version::V1Lazy))
    });
    group.finish();
}

criterion_group!(benches, multistream);
criterion_main!(benches);
