//! The secure stream: framing, large transfers, half-close, tampering.

use std::time::Duration;

use libp2p_identity::Keypair;
use onetrip_common::Deadline;
use onetrip_noise::{
    Config, Error, MAX_FRAME_LEN, MAX_PLAINTEXT_LEN, NoiseStream, TAG_LEN, frame::Frames,
    upgrade_inbound, upgrade_outbound,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, duplex};

use onetrip_testkit::Recorded;

fn config() -> Config {
    Config::new(&Keypair::generate_ed25519()).unwrap()
}

/// A secured pair over `a` and `b`.
async fn secure<A, B>(a: A, b: B) -> (NoiseStream<A>, NoiseStream<B>)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (d, l) = (config(), config());
    let (x, y) = tokio::join!(
        upgrade_outbound(a, &d, None, Deadline::NONE),
        upgrade_inbound(b, &l, Deadline::NONE)
    );
    (x.unwrap().1, y.unwrap().1)
}

#[tokio::test(start_paused = true)]
async fn large_transfer_both_ways_with_half_close() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let (a, b) = duplex(1 << 16);
    let (mut d, mut l) = secure(a, b).await;
    let expected = data.clone();
    let sender = async {
        for chunk in data.chunks(64 << 10) {
            d.write_all(chunk).await.unwrap();
        }
        d.shutdown().await.unwrap();
        let mut back = Vec::new();
        d.read_to_end(&mut back).await.unwrap();
        back
    };
    let receiver = async {
        let mut got = Vec::new();
        l.read_to_end(&mut got).await.unwrap();
        l.write_all(&got[..1000]).await.unwrap();
        l.shutdown().await.unwrap();
        got
    };
    let both = async { tokio::join!(sender, receiver) };
    let (back, got) = tokio::time::timeout(Duration::from_secs(60), both)
        .await
        .unwrap();
    assert!(got == expected, "payload corrupted");
    assert_eq!(back, expected[..1000]);
}

/// The body lengths of the frames that make up `bytes`. Panics on a
/// partial frame.
fn frames(bytes: &[u8]) -> Vec<usize> {
    let mut frames = Frames::new(bytes);
    let lens = frames.by_ref().map(<[u8]>::len).collect();
    assert!(frames.remainder().is_empty(), "a partial frame");
    lens
}

/// A 64 KiB write fills one whole frame, which leaves at once, and reports
/// that much written; small writes are gathered into one frame, which
/// leaves at the flush.
#[tokio::test(start_paused = true)]
async fn full_frames_leave_at_once_small_writes_at_the_flush() {
    let (a, b) = duplex(1 << 20);
    let (a, sent) = Recorded::new(a);
    let (mut sender, mut receiver) = secure(a, b).await;
    sent.clear();
    assert_eq!(
        sender.write(&vec![1; 64 << 10]).await.unwrap(),
        MAX_PLAINTEXT_LEN
    );
    assert_eq!(frames(&sent.bytes()), [MAX_FRAME_LEN]);
    assert_eq!(sender.write(&[2; 10]).await.unwrap(), 10);
    assert_eq!(sender.write(&[3; 5]).await.unwrap(), 5);
    assert_eq!(frames(&sent.bytes()), [MAX_FRAME_LEN], "gathered");
    sender.flush().await.unwrap();
    assert_eq!(
        frames(&sent.bytes()),
        [MAX_FRAME_LEN, 15 + TAG_LEN],
        "one frame for both, at the flush"
    );
    let mut got = vec![0; MAX_PLAINTEXT_LEN + 15];
    receiver.read_exact(&mut got).await.unwrap();
    assert!(got[..MAX_PLAINTEXT_LEN].iter().all(|&b| b == 1));
    assert_eq!(
        got[MAX_PLAINTEXT_LEN..],
        [[2; 10].as_slice(), &[3; 5]].concat()
    );
}

async fn forged(bytes: &[u8]) -> std::io::Error {
    let (a, b) = duplex(1 << 16);
    let (mut d, mut l): (NoiseStream<DuplexStream>, _) = secure(a, b).await;
    d.write_all(b"genuine").await.unwrap();
    d.flush().await.unwrap();
    let mut buf = [0; 7];
    l.read_exact(&mut buf).await.unwrap();
    // Under the secure stream: raw bytes where a frame belongs.
    d.get_mut().write_all(bytes).await.unwrap();
    drop(d);
    let err = l.read(&mut [0; 4]).await.unwrap_err();
    // A failed stream stays failed.
    assert!(l.read(&mut [0; 4]).await.is_err());
    err
}

#[tokio::test(start_paused = true)]
async fn forged_frame_fails_to_decrypt() {
    let frame: Vec<u8> = [&[0x00, 0x14][..], &[7; 20]].concat();
    let err = forged(&frame).await;
    assert!(
        matches!(Error::from_io(&err), Some(Error::Decrypt)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn truncated_frame_is_unexpected_eof() {
    let err = forged(&[0x00, 0x30, 1, 2, 3]).await;
    assert!(
        matches!(Error::from_io(&err), Some(Error::UnexpectedEof)),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn frame_shorter_than_its_tag_is_invalid() {
    let err = forged(&[0x00, 0x05, 1, 2, 3, 4, 5]).await;
    assert!(
        matches!(Error::from_io(&err), Some(Error::InvalidFrame(_))),
        "{err:?}"
    );
}

mod fuzz_drivers {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn frame_reader_never_panics(data in prop::collection::vec(any::<u8>(), 0..3000)) {
            onetrip_noise::fuzzing::frames(&data);
            let mut sealed = data.clone();
            sealed.insert(0, 1);
            onetrip_noise::fuzzing::frames(&sealed);
        }

    }

    proptest! {
        // Each case runs real X25519 operations, slow in debug builds; the
        // fuzz target gives this driver its depth.
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn handshake_and_payload_parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
            onetrip_noise::fuzzing::handshake(&data);
            onetrip_noise::fuzzing::payload(&data);
        }
    }
}
