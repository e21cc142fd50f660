//! Interoperability with rust-libp2p's `libp2p-noise` (the release the
//! workspace's `libp2p` uses), both roles, data both ways, with and without
//! our muxer list: rust-libp2p sends none, so there is no early muxer.

use std::time::Duration;

use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p_identity::Keypair;
use onetrip_common::Deadline;
use onetrip_multistream::Protocol;
use onetrip_noise::{Config, upgrade_inbound, upgrade_outbound};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio_util::compat::TokioAsyncReadCompatExt;

fn ours(with_muxers: bool) -> Config {
    let config = Config::new(&Keypair::generate_ed25519()).unwrap();
    if with_muxers {
        config
            .with_muxers([Protocol::new("/yamux/1.0.0").unwrap()])
            .unwrap()
    } else {
        config
    }
}

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("deadlocked")
}

const LARGE: usize = 200_000;

fn data() -> Vec<u8> {
    (0..LARGE).map(|i| (i % 253) as u8).collect()
}

#[tokio::test(start_paused = true)]
async fn onetrip_dials_libp2p_noise() {
    for with_muxers in [false, true] {
        let (ours, theirs_key) = (ours(with_muxers), Keypair::generate_ed25519());
        let theirs = libp2p_noise::Config::new(&theirs_key).unwrap();
        let (a, b) = duplex(1 << 16);
        let dialer = async {
            let (output, mut stream) = upgrade_outbound(
                a,
                &ours,
                Some(theirs_key.public().to_peer_id()),
                Deadline::NONE,
            )
            .await
            .unwrap();
            assert_eq!(output.muxer, None, "rust-libp2p sends no muxer list");
            assert_eq!(output.remote_muxers, None);
            stream.write_all(&data()).await.unwrap();
            stream.flush().await.unwrap();
            let mut reply = vec![0; LARGE];
            stream.read_exact(&mut reply).await.unwrap();
            assert_eq!(reply, data());
            output.remote_peer_id
        };
        let listener = async {
            let (peer, mut stream) = theirs.upgrade_inbound(b.compat(), "/noise").await.unwrap();
            let mut request = vec![0; LARGE];
            stream.read_exact(&mut request).await.unwrap();
            stream.write_all(&request).await.unwrap();
            stream.flush().await.unwrap();
            peer
        };
        let (remote, their_view) = bounded(async { tokio::join!(dialer, listener) }).await;
        assert_eq!(remote, theirs_key.public().to_peer_id());
        assert_eq!(their_view, ours.peer_id());
    }
}

#[tokio::test(start_paused = true)]
async fn libp2p_noise_dials_onetrip() {
    for with_muxers in [false, true] {
        let (ours, theirs_key) = (ours(with_muxers), Keypair::generate_ed25519());
        let theirs = libp2p_noise::Config::new(&theirs_key).unwrap();
        let (a, b) = duplex(1 << 16);
        let dialer = async {
            let (peer, mut stream) = theirs.upgrade_outbound(a.compat(), "/noise").await.unwrap();
            stream.write_all(&data()).await.unwrap();
            stream.flush().await.unwrap();
            let mut reply = vec![0; LARGE];
            stream.read_exact(&mut reply).await.unwrap();
            assert_eq!(reply, data());
            peer
        };
        let listener = async {
            let (output, mut stream) = upgrade_inbound(b, &ours, Deadline::NONE).await.unwrap();
            assert_eq!(output.muxer, None, "rust-libp2p sends no muxer list");
            let mut request = vec![0; LARGE];
            stream.read_exact(&mut request).await.unwrap();
            stream.write_all(&request).await.unwrap();
            stream.flush().await.unwrap();
            output.remote_peer_id
        };
        let (their_view, remote) = bounded(async { tokio::join!(dialer, listener) }).await;
        assert_eq!(remote, theirs_key.public().to_peer_id());
        assert_eq!(their_view, ours.peer_id());
    }
}
