//! Group `netsim`: the emulator's own cost in real time, so that later
//! benches know what the instrument adds. Zero delay, no bandwidth limit:
//! what is measured is the links' bookkeeping, not emulated time.

use std::{io::IoSliceMut, sync::Arc, time::Duration};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use onetrip_netsim::{LinkConfig, Network, SimUdpSocket};
use quinn::{
    AsyncUdpSocket,
    udp::{RecvMeta, Transmit},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STREAM_BYTES: usize = 4 << 20;
const CHUNK: usize = 16 << 10;
const DATAGRAMS: usize = 1000;
const DATAGRAM: usize = 1200;

/// Pushes `STREAM_BYTES` through a stream link in `CHUNK` writes.
async fn stream_transfer() {
    let net = Network::new(LinkConfig::default()).unwrap();
    let mut listener = net.host([127, 0, 0, 2]).listen(1).unwrap();
    let mut client = net
        .host([127, 0, 0, 1])
        .connect(listener.local_addr())
        .await
        .unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let writer = async {
        let chunk = vec![7u8; CHUNK];
        for _ in 0..STREAM_BYTES / CHUNK {
            client.write_all(&chunk).await.unwrap();
        }
        client.shutdown().await.unwrap();
    };
    let reader = async {
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0;
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, STREAM_BYTES);
    };
    tokio::join!(writer, reader);
}

/// Sends `DATAGRAMS` datagrams and receives them all.
async fn datagram_transfer(a: &Arc<SimUdpSocket>, b: &Arc<SimUdpSocket>) {
    let to = b.local_addr().unwrap();
    let payload = [9u8; DATAGRAM];
    for _ in 0..DATAGRAMS {
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents: &payload,
            segment_size: None,
            src_ip: None,
        };
        a.try_send(&transmit).unwrap();
    }
    let mut buf = [0u8; 2048];
    let mut meta = [RecvMeta::default()];
    for _ in 0..DATAGRAMS {
        std::future::poll_fn(|cx| b.poll_recv(cx, &mut [IoSliceMut::new(&mut buf)], &mut meta))
            .await
            .unwrap();
    }
}

fn netsim(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("netsim");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.throughput(Throughput::Bytes(STREAM_BYTES as u64));
    group.bench_function("stream link", |b| b.to_async(&rt).iter(stream_transfer));

    let (a, b) = rt.block_on(async {
        let net = Network::builder()
            .default_link(LinkConfig::default())
            .record_capacity(0)
            .build()
            .unwrap();
        let a = net.host([127, 0, 0, 1]).bind_udp(0).unwrap();
        let b = net.host([127, 0, 0, 2]).bind_udp(1).unwrap();
        (a, b)
    });
    group.throughput(Throughput::Elements(DATAGRAMS as u64));
    group.bench_function("datagram link", |bench| {
        bench.to_async(&rt).iter(|| datagram_transfer(&a, &b))
    });
    group.finish();
}

criterion_group!(benches, netsim);
criterion_main!(benches);
