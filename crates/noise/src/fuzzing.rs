//! Drivers for the fuzz targets: untrusted handshake messages and frames,
//! fed to the sans-IO cores.

use std::sync::OnceLock;

use libp2p_identity::Keypair;
use onetrip_multistream::Protocol;

use crate::{Config, Error, Handshake, Transport, payload};

/// One configuration for every run: building it signs and generates keys.
fn config() -> Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let keypair = Keypair::ed25519_from_bytes([7u8; 32]).expect("a valid ed25519 seed");
            Config::new(&keypair)
                .and_then(|c| c.with_muxers([Protocol::new("/yamux/1.0.0").expect("valid")]))
                .expect("a valid configuration")
        })
        .clone()
}

/// How much of its input a driver hands over at a time: a size that
/// straddles frame boundaries.
const PIECE: usize = 997;

/// Feeds `data`, as the bytes of a stream, to a responder at once (its
/// frames are then messages 1 and 3) and to an initiator in pieces (its
/// first frame is then message 2). Panics only on a bug.
pub fn handshake(data: &[u8]) {
    let config = config();
    if let Ok(mut responder) = Handshake::responder(&config)
        && responder.handle_input(data).is_ok()
        && responder.is_finished()
    {
        let _ = responder.finish();
    }
    if let Ok(mut initiator) = Handshake::initiator(&config, None) {
        for piece in data.chunks(PIECE) {
            if initiator.handle_input(piece).is_err() || initiator.is_finished() {
                break;
            }
        }
    }
}

/// Checks a peer's handshake payload against its Noise static key, as a
/// handshake does with messages 2 and 3.
pub fn verify(payload: &[u8], static_key: &[u8]) -> Result<(), Error> {
    payload::verify(payload, static_key).map(drop)
}

/// Decodes `data` as a handshake payload against a fixed static key.
pub fn payload(data: &[u8]) {
    let _ = verify(data, &[0u8; 32]);
}

/// Feeds `data` to a transport phase's frame reader. If the first byte is
/// odd, the rest is first cut into chunks (each byte saying how many of the
/// following bytes the next chunk takes) that are sealed as genuine frames,
/// so that decryption succeeds and frame boundaries are exercised;
/// otherwise the bytes are raw, as from a forger. Reads in pieces until the
/// input ends or the reader fails. Panics only on a bug.
pub fn frames(data: &[u8]) {
    let key = [3u8; 32];
    let (sealed, rest) = match data.split_first() {
        Some((&b, rest)) => (b % 2 == 1, rest),
        None => (false, data),
    };
    let wire = if sealed {
        let mut sender = Transport::with_one_key(&key);
        let mut wire = Vec::new();
        let mut rest = rest;
        while let Some((&len, tail)) = rest.split_first() {
            let (chunk, tail) = tail.split_at(usize::from(len).min(tail.len()));
            if sender.seal(chunk, &mut wire).is_err() {
                return;
            }
            rest = tail;
        }
        wire
    } else {
        rest.to_vec()
    };
    let mut receiver = Transport::with_one_key(&key);
    let mut wire = wire.as_slice();
    loop {
        match receiver.plaintext() {
            Ok([]) => {}
            Ok(plaintext) => {
                let n = plaintext.len().min(100);
                receiver.consume(n);
                continue;
            }
            Err(_) => return,
        }
        if wire.is_empty() {
            let _ = receiver.handle_eof();
            return;
        }
        let spare = receiver.input_buffer();
        assert!(!spare.is_empty(), "a reader short of a frame takes input");
        let n = spare.len().min(wire.len()).min(PIECE);
        spare[..n].copy_from_slice(&wire[..n]);
        receiver
            .input_filled(n)
            .expect("what fits the buffer is taken");
        wire = &wire[n..];
    }
}
