//! Handshakes between two onetrip peers: identities, the early muxer choice
//! in every case, the wire shape, and each kind of bad input.

use std::time::Duration;

use libp2p_identity::{Keypair, PeerId};
use onetrip_common::Deadline;
use onetrip_multistream::Protocol;
use onetrip_noise::{
    Config, Error, Handshake, Misuse, MuxerPolicy, NoiseStream, Output, frame::Frames, payload,
    upgrade_inbound, upgrade_outbound,
};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use onetrip_testkit::Recorded;

const YAMUX: &str = "/yamux/1.0.0";
const MPLEX: &str = "/mplex/6.7.0";

fn p(name: &str) -> Protocol {
    Protocol::new(name).unwrap()
}

fn config(muxers: &[&str]) -> Config {
    Config::new(&Keypair::generate_ed25519())
        .unwrap()
        .with_muxers(muxers.iter().map(|m| p(m)))
        .unwrap()
}

type Secured = (Output, NoiseStream<DuplexStream>);

/// The body lengths of the frames that make up `bytes`. Panics on a
/// partial frame.
fn frames(bytes: &[u8]) -> Vec<usize> {
    let mut frames = Frames::new(bytes);
    let lens = frames.by_ref().map(<[u8]>::len).collect();
    assert!(frames.remainder().is_empty(), "a partial frame");
    lens
}

/// Runs both sides of a handshake; fails the test on a deadlock.
async fn handshake(
    dialer: &Config,
    listener: &Config,
) -> (Result<Secured, Error>, Result<Secured, Error>) {
    let (a, b) = duplex(1 << 20);
    let both = async {
        tokio::join!(
            upgrade_outbound(a, dialer, Some(listener.peer_id()), Deadline::NONE),
            upgrade_inbound(b, listener, Deadline::NONE)
        )
    };
    tokio::time::timeout(Duration::from_secs(60), both)
        .await
        .expect("handshake deadlocked")
}

async fn chosen(
    dialer: &[&str],
    listener: &[&str],
    policy: MuxerPolicy,
) -> Result<(Option<Protocol>, Option<Protocol>), Error> {
    let (d, l) = handshake(
        &config(dialer).with_policy(policy),
        &config(listener).with_policy(policy),
    )
    .await;
    Ok((d?.0.muxer, l?.0.muxer))
}

#[tokio::test(start_paused = true)]
async fn peers_authenticate_and_exchange_data_both_ways() {
    let (dialer, listener) = (config(&[]), config(&[]));
    let (d, l) = handshake(&dialer, &listener).await;
    let ((d_out, mut d_stream), (l_out, mut l_stream)) = (d.unwrap(), l.unwrap());
    assert_eq!(d_out.remote_peer_id, listener.peer_id());
    assert_eq!(l_out.remote_peer_id, dialer.peer_id());
    assert_eq!((d_out.muxer, l_out.muxer), (None, None));
    d_stream.write_all(b"to the listener").await.unwrap();
    d_stream.flush().await.unwrap();
    let mut buf = [0; 15];
    l_stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"to the listener");
    l_stream.write_all(b"to the dialer").await.unwrap();
    l_stream.flush().await.unwrap();
    let mut buf = [0; 13];
    d_stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"to the dialer");
}

#[tokio::test(start_paused = true)]
async fn early_muxer_choice() {
    let both = |m: &str| (Some(p(m)), Some(p(m)));
    // Overlap: the initiator's first entry the responder supports.
    assert_eq!(
        chosen(&[YAMUX, MPLEX], &[MPLEX, YAMUX], MuxerPolicy::Fallback)
            .await
            .unwrap(),
        both(YAMUX)
    );
    // Preference order is the initiator's.
    assert_eq!(
        chosen(&[MPLEX, YAMUX], &[YAMUX, MPLEX], MuxerPolicy::Fallback)
            .await
            .unwrap(),
        both(MPLEX)
    );
    assert_eq!(
        chosen(&["/a", YAMUX], &[YAMUX], MuxerPolicy::Fallback)
            .await
            .unwrap(),
        both(YAMUX)
    );
    // One side sends no list: no early choice, whatever the policy.
    for policy in [MuxerPolicy::Fallback, MuxerPolicy::Strict] {
        assert_eq!(chosen(&[], &[YAMUX], policy).await.unwrap(), (None, None));
        assert_eq!(chosen(&[YAMUX], &[], policy).await.unwrap(), (None, None));
    }
    // No overlap: fall back, or fail under the strict policy.
    assert_eq!(
        chosen(&[YAMUX], &[MPLEX], MuxerPolicy::Fallback)
            .await
            .unwrap(),
        (None, None)
    );
    assert!(matches!(
        chosen(&[YAMUX], &[MPLEX], MuxerPolicy::Strict).await,
        Err(Error::NoCommonMuxer)
    ));
}

#[tokio::test(start_paused = true)]
async fn remote_muxers_are_reported() {
    let (d, l) = handshake(&config(&[YAMUX, MPLEX]), &config(&[YAMUX])).await;
    assert_eq!(d.unwrap().0.remote_muxers, Some(vec![p(YAMUX)]));
    assert_eq!(l.unwrap().0.remote_muxers, Some(vec![p(YAMUX), p(MPLEX)]));
}

#[test]
fn own_muxer_list_is_bounded() {
    let many: Vec<Protocol> = (0..=onetrip_noise::MAX_MUXERS)
        .map(|i| p(&format!("/m/{i}")))
        .collect();
    assert!(matches!(
        Config::new(&Keypair::generate_ed25519())
            .unwrap()
            .with_muxers(many),
        Err(Error::Config(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn wrong_peer_id_is_refused_before_message_3() {
    let (dialer, listener) = (config(&[]), config(&[]));
    let (a, b) = duplex(1 << 16);
    let stranger = PeerId::random();
    let (d, l) = tokio::join!(
        upgrade_outbound(a, &dialer, Some(stranger), Deadline::NONE),
        upgrade_inbound(b, &listener, Deadline::NONE)
    );
    match d {
        Err(Error::PeerIdMismatch(mismatch)) => {
            assert_eq!(
                (mismatch.expected, mismatch.actual),
                (stranger, listener.peer_id())
            );
        }
        other => panic!("{:?}", other.map(|(o, _)| o)),
    }
    // The dialer hung up without sending message 3.
    assert!(
        matches!(l, Err(Error::UnexpectedEof)),
        "{:?}",
        l.map(|(o, _)| o)
    );
}

/// Every key type rust-libp2p accepts authenticates.
#[tokio::test(start_paused = true)]
async fn every_key_type() {
    for keypair in [
        Keypair::generate_ed25519(),
        Keypair::generate_secp256k1(),
        Keypair::generate_ecdsa(),
    ] {
        let dialer = Config::new(&keypair).unwrap();
        let (_, l) = handshake(&dialer, &config(&[])).await;
        assert_eq!(l.unwrap().0.remote_peer_id, keypair.public().to_peer_id());
    }
}

/// Exactly three messages cross the wire, and the muxer choice travels
/// inside messages 2 and 3: no other bytes, no multistream-select frame,
/// and no muxer name in the clear.
#[tokio::test(start_paused = true)]
async fn three_messages_carry_the_muxer_choice() {
    let (up, down, muxers) = on_the_wire(&config(&[YAMUX]), &config(&[YAMUX])).await;
    assert_eq!(muxers, (Some(p(YAMUX)), Some(p(YAMUX))));
    let (up_frames, down_frames) = (frames(&up), frames(&down));
    assert_eq!(up_frames.len(), 2, "dialer sends messages 1 and 3");
    assert_eq!(down_frames.len(), 1, "listener sends message 2");
    assert_eq!(up_frames[0], 32, "message 1 is the ephemeral key alone");
    for wire in [&up, &down] {
        for needle in [b"/multistream/1.0.0".as_slice(), YAMUX.as_bytes()] {
            assert!(
                !wire.windows(needle.len()).any(|w| w == needle),
                "cleartext on the wire"
            );
        }
    }
    // Messages 2 and 3 are larger than without lists by exactly the
    // encoded extension.
    let (up_plain, down_plain, _) = on_the_wire(&config(&[]), &config(&[])).await;
    let extension = payload::NoiseExtensions {
        webtransport_certhashes: vec![],
        stream_muxers: vec![YAMUX.into()],
    };
    let extra = payload::NoiseHandshakePayload {
        identity_key: None,
        identity_sig: None,
        extensions: Some(extension),
    }
    .encoded_len();
    assert_eq!(down_frames[0], frames(&down_plain)[0] + extra);
    assert_eq!(up_frames[1], frames(&up_plain)[1] + extra);
}

/// Runs a handshake over recording transports: the bytes each side sent,
/// and the muxer each side settled on.
async fn on_the_wire(
    dialer: &Config,
    listener: &Config,
) -> (Vec<u8>, Vec<u8>, (Option<Protocol>, Option<Protocol>)) {
    let (a, b) = duplex(1 << 16);
    let ((a, up), (b, down)) = (Recorded::new(a), Recorded::new(b));
    let (d, l) = tokio::join!(
        upgrade_outbound(a, dialer, None, Deadline::NONE),
        upgrade_inbound(b, listener, Deadline::NONE)
    );
    let muxers = (d.unwrap().0.muxer, l.unwrap().0.muxer);
    (up.bytes(), down.bytes(), muxers)
}

#[tokio::test(start_paused = true)]
async fn garbage_instead_of_message_1() {
    let listener = config(&[]);
    for garbage in [
        b"\x00\x0ahelloworld".as_slice(),
        b"\x00\x00",
        b"\x13/multistream/1.0.0\n",
    ] {
        let (mut a, b) = duplex(1 << 16);
        a.write_all(garbage).await.unwrap();
        a.shutdown().await.unwrap();
        let result = upgrade_inbound(b, &listener, Deadline::NONE)
            .await
            .map(|(o, _)| o);
        assert!(
            matches!(
                result,
                Err(Error::BadMessage { message: 1, .. }
                    | Error::InvalidFrame(_)
                    | Error::UnexpectedEof)
            ),
            "{garbage:?}: {result:?}"
        );
    }
    // Ten bytes cannot be an X25519 key: snow refuses message 1.
    let (mut a, b) = duplex(1 << 16);
    a.write_all(b"\x00\x0ahelloworld").await.unwrap();
    assert!(matches!(
        upgrade_inbound(b, &listener, Deadline::NONE).await,
        Err(Error::BadMessage { message: 1, .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn stalled_peer_times_out() {
    let listener = config(&[]);
    let (_a, b) = duplex(1 << 16);
    let start = tokio::time::Instant::now();
    assert!(matches!(
        upgrade_inbound(b, &listener, Deadline::after(Duration::from_secs(3))).await,
        Err(Error::Timeout)
    ));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

/// The dialer's handshake, by a deadline `deadline` from now, against a
/// responder that answers message 1 after 15 s; and when it ended.
async fn against_a_slow_responder(deadline: Duration) -> (Result<Output, Error>, Duration) {
    let (dialer, listener) = (config(&[]), config(&[]));
    let (a, b) = duplex(1 << 16);
    let start = tokio::time::Instant::now();
    let dial = async {
        let result = upgrade_outbound(a, &dialer, None, Deadline::after(deadline)).await;
        (result.map(|(output, _)| output), start.elapsed())
    };
    let slow = async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let _ = upgrade_inbound(b, &listener, Deadline::NONE).await;
        std::future::pending().await
    };
    tokio::select! {
        dialed = dial => dialed,
        never = slow => never,
    }
}

/// The deadline is the caller's: a slow step may use all of it, and the
/// handshake fails when it passes, not before.
#[tokio::test(start_paused = true)]
async fn the_callers_deadline_bounds_the_handshake() {
    let (result, elapsed) = against_a_slow_responder(Duration::from_secs(30)).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(elapsed, Duration::from_secs(15));
    let (result, elapsed) = against_a_slow_responder(Duration::from_secs(5)).await;
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert_eq!(elapsed, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn truncated_message_is_unexpected_eof() {
    let listener = config(&[]);
    let (mut a, b) = duplex(1 << 16);
    a.write_all(&[0x00, 0x20, 1, 2, 3]).await.unwrap();
    drop(a);
    assert!(matches!(
        upgrade_inbound(b, &listener, Deadline::NONE).await,
        Err(Error::UnexpectedEof)
    ));
}

/// A payload whose fields are signed correctly but say something wrong.
fn signed_payload(
    keypair: &Keypair,
    static_key: &[u8],
    muxers: Vec<String>,
) -> payload::NoiseHandshakePayload {
    let message = [payload::STATIC_KEY_DOMAIN, static_key].concat();
    payload::NoiseHandshakePayload {
        identity_key: Some(keypair.public().encode_protobuf()),
        identity_sig: Some(keypair.sign(&message).unwrap()),
        extensions: Some(payload::NoiseExtensions {
            webtransport_certhashes: vec![],
            stream_muxers: muxers,
        }),
    }
}

#[test]
fn bad_payloads_get_typed_errors() {
    let keypair = Keypair::generate_ed25519();
    let static_key = [9u8; 32];
    let check = |payload: &payload::NoiseHandshakePayload| {
        onetrip_noise::fuzzing::verify(&payload.encode_to_vec(), &static_key)
    };
    assert!(check(&signed_payload(&keypair, &static_key, vec![YAMUX.into()])).is_ok());
    // Signature over another static key.
    assert!(matches!(
        check(&signed_payload(&keypair, &[8u8; 32], vec![])),
        Err(Error::InvalidSignature)
    ));
    // Unknown key type.
    let mut unknown = signed_payload(&keypair, &static_key, vec![]);
    unknown.identity_key = Some(vec![0x08, 0x63, 0x12, 0x01, 0x00]);
    assert!(matches!(check(&unknown), Err(Error::InvalidIdentityKey(_))));
    // No identity.
    let mut anonymous = signed_payload(&keypair, &static_key, vec![]);
    anonymous.identity_sig = None;
    assert!(matches!(check(&anonymous), Err(Error::MissingIdentity)));
    // Oversized and invalid muxer lists.
    let many = (0..101).map(|i| format!("/m/{i}")).collect();
    assert!(matches!(
        check(&signed_payload(&keypair, &static_key, many)),
        Err(Error::InvalidMuxerList(_))
    ));
    assert!(matches!(
        check(&signed_payload(&keypair, &static_key, vec!["yamux".into()])),
        Err(Error::InvalidMuxerList(_))
    ));
    // Not protobuf.
    assert!(matches!(
        onetrip_noise::fuzzing::verify(&[0xff; 8], &static_key),
        Err(Error::InvalidPayload(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_bogus_message_2_is_refused_and_the_handshake_cannot_finish() {
    let mut initiator = Handshake::initiator(&config(&[]), None).unwrap();
    assert!(!initiator.is_finished());
    assert!(
        initiator
            .handle_input(&[&[0, 32], &[0; 32][..]].concat())
            .is_err()
    );
    assert!(initiator.finish().is_err());
}

/// Finishing early is the caller's mistake, not the peer's: it is kept
/// apart from the wire errors.
#[test]
fn finishing_early_is_a_misuse() {
    let initiator = Handshake::initiator(&config(&[]), None).unwrap();
    assert!(matches!(
        initiator.finish(),
        Err(Error::Misuse(Misuse::HandshakeNotFinished))
    ));
}

/// The core takes the peer's bytes cut anywhere: message 1 one byte at a
/// time; message 3 and a transport frame in one piece, the frame kept for
/// the transport phase.
#[test]
fn the_core_takes_bytes_cut_anywhere() {
    let (a, b) = (config(&[YAMUX]), config(&[YAMUX]));
    let mut initiator = Handshake::initiator(&a, Some(b.peer_id())).unwrap();
    let mut responder = Handshake::responder(&b).unwrap();
    let mut wire = Vec::new();
    initiator.take_output(&mut wire);
    for byte in wire.chunks(1) {
        assert_eq!(responder.handle_input(byte).unwrap(), 1);
    }
    wire.clear();
    responder.take_output(&mut wire);
    assert_eq!(initiator.handle_input(&wire).unwrap(), wire.len());
    assert!(initiator.is_finished() && initiator.has_output());
    wire.clear();
    initiator.take_output(&mut wire);
    let (output, mut sender) = initiator.finish().unwrap();
    assert_eq!(output.muxer, Some(p(YAMUX)));
    assert_eq!(sender.seal(b"early", &mut wire).unwrap(), 5);
    assert_eq!(responder.handle_input(&wire).unwrap(), wire.len());
    let (output, mut receiver) = responder.finish().unwrap();
    assert_eq!(output.remote_peer_id, a.peer_id());
    assert_eq!(receiver.plaintext().unwrap(), b"early");
}
