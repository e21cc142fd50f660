//! Drivers for the fuzz targets: untrusted handshake messages and frames.

use std::{
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll, Waker},
};

use libp2p_identity::Keypair;
use onetrip_multistream::Protocol;
use tokio::io::{AsyncRead, ReadBuf};

use crate::{Config, Error, Handshake, NoiseStream, TransportKeys, cipher::CipherState, payload};

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

/// Feeds `data` to a secure stream's frame reader. If the first byte is odd,
/// the rest is first cut into chunks that are sealed as genuine frames (so
/// that decryption succeeds and frame boundaries are exercised); otherwise
/// the bytes are raw, as from a forger. Reads until the stream ends or fails.
pub fn frames(data: &[u8]) {
    let key = [3u8; 32];
    let (sealed, rest) = match data.split_first() {
        Some((&b, rest)) => (b % 2 == 1, rest),
        None => (false, data),
    };
    let wire = if sealed {
        let mut sender = CipherState::new(&key);
        let mut wire = Vec::new();
        let mut rest = rest;
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            let mut body = tail[..n].to_vec();
            let Ok(tag) = sender.seal(&mut body) else {
                return;
            };
            body.extend_from_slice(tag.as_ref());
            wire.extend_from_slice(&u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
            wire.extend_from_slice(&body);
            rest = &tail[n..];
        }
        wire
    } else {
        rest.to_vec()
    };
    let keys = TransportKeys {
        send: CipherState::new(&key),
        recv: CipherState::new(&key),
    };
    let mut stream = NoiseStream::new(wire.as_slice(), keys, &[]);
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = [0u8; 100];
    loop {
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut stream).poll_read(&mut cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => return,
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return,
            Poll::Pending => panic!("an in-memory reader never waits"),
        }
    }
}
