//! Group `noise`, in one run: the handshake's CPU cost (onetrip vs
//! rust-libp2p's libp2p-noise), secure-stream throughput over an in-memory
//! duplex with 64 KiB writes (both), and the bound: ring's
//! ChaCha20-Poly1305 sealing 64 KiB in place, the cipher onetrip's stream
//! uses.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p_identity::Keypair;
use onetrip_common::Deadline;
use onetrip_noise::{Config, upgrade_inbound, upgrade_outbound};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, duplex};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

const WRITE: usize = 64 << 10;
const TRANSFER: usize = 16 << 20;
const DUPLEX: usize = 256 << 10;

/// Sends `TRANSFER` bytes from `tx` to `rx` in `WRITE`-byte writes.
async fn pump(mut tx: impl AsyncWrite + Unpin, mut rx: impl AsyncRead + Unpin) {
    let chunk = vec![0x5a; WRITE];
    let send = async {
        for _ in 0..TRANSFER / WRITE {
            tx.write_all(&chunk).await.unwrap();
        }
        tx.flush().await.unwrap();
    };
    let recv = async {
        let mut buf = vec![0; WRITE];
        for _ in 0..TRANSFER / WRITE {
            rx.read_exact(&mut buf).await.unwrap();
        }
    };
    tokio::join!(send, recv);
}

fn noise(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (dialer_key, listener_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (ours_d, ours_l) = (
        Config::new(&dialer_key).unwrap(),
        Config::new(&listener_key).unwrap(),
    );
    let (theirs_d, theirs_l) = (
        libp2p_noise::Config::new(&dialer_key).unwrap(),
        libp2p_noise::Config::new(&listener_key).unwrap(),
    );

    let mut group = c.benchmark_group("noise");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("handshake/onetrip", |b| {
        b.to_async(&rt).iter(|| async {
            let (a, z) = duplex(DUPLEX);
            let (x, y) = tokio::join!(
                upgrade_outbound(a, &ours_d, None, Deadline::NONE),
                upgrade_inbound(z, &ours_l, Deadline::NONE)
            );
            (x.unwrap(), y.unwrap())
        })
    });
    group.bench_function("handshake/libp2p-noise", |b| {
        b.to_async(&rt).iter(|| async {
            let (a, z) = duplex(DUPLEX);
            let (x, y) = tokio::join!(
                theirs_d.clone().upgrade_outbound(a.compat(), "/noise"),
                theirs_l.clone().upgrade_inbound(z.compat(), "/noise")
            );
            (x.unwrap(), y.unwrap())
        })
    });

    group.throughput(Throughput::Bytes(TRANSFER as u64));
    group.sample_size(20);
    group.bench_function("stream 64 KiB writes/onetrip", |b| {
        b.to_async(&rt).iter(|| async {
            let (a, z) = duplex(DUPLEX);
            let (x, y) = tokio::join!(
                upgrade_outbound(a, &ours_d, None, Deadline::NONE),
                upgrade_inbound(z, &ours_l, Deadline::NONE)
            );
            pump(x.unwrap().1, y.unwrap().1).await;
        })
    });
    group.bench_function("stream 64 KiB writes/libp2p-noise", |b| {
        b.to_async(&rt).iter(|| async {
            let (a, z) = duplex(DUPLEX);
            let (x, y) = tokio::join!(
                theirs_d.clone().upgrade_outbound(a.compat(), "/noise"),
                theirs_l.clone().upgrade_inbound(z.compat(), "/noise")
            );
            pump(x.unwrap().1.compat(), y.unwrap().1.compat()).await;
        })
    });
    group.bench_function("cipher bound/ring ChaCha20-Poly1305 seal", |b| {
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7; 32]).unwrap());
        let mut buf = vec![0x5a; WRITE];
        let mut counter = 0u64;
        b.iter(|| {
            for _ in 0..TRANSFER / WRITE {
                let mut nonce = [0u8; 12];
                nonce[4..].copy_from_slice(&counter.to_le_bytes());
                counter += 1;
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::empty(),
                        &mut buf,
                    )
                    .unwrap();
                std::hint::black_box(&tag);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, noise);
criterion_main!(benches);
