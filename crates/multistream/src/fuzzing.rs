//! Drivers that feed untrusted bytes to the state machines and check their
//! invariants, shared by the fuzz targets (`fuzz/`) and the property tests.
//!
//! The first input byte chooses how the rest is cut into chunks (1 to 256
//! bytes), so that message boundaries fall everywhere.

use crate::{Dialer, Error, Listener, MAX_MESSAGE_LEN, Message, Mode, Protocol, Status};

/// The most a listener may queue in response to one chunk of input: one
/// answer (at most one message) per proposal, plus its header.
const MAX_OUTPUT_PER_BYTE: usize = 2 + MAX_MESSAGE_LEN;

fn split(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&first, rest)) => (usize::from(first) + 1, rest),
        None => (1, data),
    }
}

fn protocols() -> Vec<Protocol> {
    ["/a", "/b/1.0.0", "/yamux/1.0.0"]
        .into_iter()
        .map(|name| Protocol::new(name).expect("valid name"))
        .collect()
}

/// Feeds `data` to a [`Listener`] as the dialer's bytes. Panics only if an
/// invariant breaks; protocol errors are returned.
pub fn listener(data: &[u8]) -> Result<Status, Error> {
    let (chunk, data) = split(data);
    let mut listener = Listener::new(protocols());
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        let used = listener.handle_input(piece)?;
        listener.take_output(&mut out);
        assert!(out.len() <= MAX_OUTPUT_PER_BYTE * (piece.len() + 1));
        out.clear();
        match listener.status() {
            Status::Selected(_) => return Ok(listener.status().clone()),
            Status::Negotiating => assert_eq!(used, piece.len(), "input left unconsumed"),
            Status::Optimistic(_) => panic!("a listener is never optimistic"),
        }
    }
    listener.handle_eof()?;
    Ok(listener.status().clone())
}

/// Feeds `data` to a [`Dialer`] as the listener's bytes; the second byte
/// chooses the mode. Panics only if an invariant breaks.
pub fn dialer(data: &[u8]) -> Result<Status, Error> {
    let (mode, data) = match data.split_first() {
        Some((&b, rest)) if b % 2 == 1 => (Mode::Optimistic, rest),
        Some((_, rest)) => (Mode::Interactive, rest),
        None => (Mode::Interactive, data),
    };
    let (chunk, data) = split(data);
    let mut dialer = Dialer::new(protocols(), mode)?;
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        let used = dialer.handle_input(piece)?;
        dialer.take_output(&mut out);
        out.clear();
        match dialer.status() {
            Status::Selected(p) => {
                assert!(protocols().contains(p));
                return Ok(dialer.status().clone());
            }
            _ => assert_eq!(used, piece.len(), "input left unconsumed"),
        }
    }
    dialer.handle_eof()?;
    Ok(dialer.status().clone())
}

/// Decodes `data` as a payload in both contexts; whatever decodes must
/// encode back to the same payload.
pub fn message(data: &[u8]) {
    let reencode = |message: &Message| {
        let mut out = Vec::new();
        message.encode(&mut out);
        let (len, payload) = unsigned_varint::decode::usize(&out).expect("own prefix");
        assert_eq!(len, payload.len());
        payload.to_vec()
    };
    if let Ok(message) = Message::decode(data) {
        assert_eq!(reencode(&message), data);
    }
    if let Ok(list) = Message::decode_protocols(data) {
        let payload = reencode(&Message::Protocols(list.clone()));
        assert_eq!(Message::decode_protocols(&payload).expect("own list"), list);
    }
}
