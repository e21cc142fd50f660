//! Drivers for the fuzz targets: untrusted handshake messages and frames.

use libp2p_identity::Keypair;
use onetrip_multistream::Protocol;

use crate::{Config, Error, Handshake, payload};

fn config() -> Config {
    let keypair = Keypair::ed25519_from_bytes([7u8; 32]).expect("a valid ed25519 seed");
    Config::new(&keypair)
        .and_then(|c| c.with_muxers([Protocol::new("/yamux/1.0.0").expect("valid")]))
        .expect("a valid configuration")
}

/// Feeds `data`, cut into length-prefixed messages, to a responder (as
/// messages 1 and 3) and an initiator (as message 2). Panics only on a bug.
pub fn handshake(data: &[u8]) {
    let config = config();
    let messages: Vec<&[u8]> = split_frames(data);
    if let Ok(mut responder) = Handshake::responder(&config) {
        for message in &messages {
            if responder.read_message(message).is_err() {
                break;
            }
        }
        if responder.is_finished() {
            let _ = responder.finish();
        }
    }
    if let (Ok(mut initiator), Some(message)) =
        (Handshake::initiator(&config, None), messages.first())
    {
        let _ = initiator.read_message(message);
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

fn split_frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let end = (2 + len).min(data.len());
        frames.push(&data[2..end]);
        data = &data[end..];
    }
    frames
}
