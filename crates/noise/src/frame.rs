//! The framing of every Noise message on the wire, handshake or transport,
//! written once: a 2-byte big-endian length, then that many bytes.
//!
//! The cores ([`Handshake`](crate::Handshake),
//! [`Transport`](crate::Transport)) frame what they send and parse what
//! they receive with this module's crate-private parts: an input buffer
//! bounded to one whole frame, and a prefix written around a body built in
//! place. [`split`] and [`Frames`] parse a byte string at hand, such as
//! the bytes a test recorded on the wire.

use crate::{Error, Misuse};

/// libp2p specs, noise/README.md: each Noise message is preceded by its
/// length, a 2-byte big-endian unsigned integer.
pub const PREFIX_LEN: usize = 2;

/// libp2p specs, noise/README.md: what a 2-byte length can say, so at most
/// 65535 bytes per Noise message (the Noise spec's own limit too).
pub const MAX_FRAME_LEN: usize = u16::MAX as usize;

/// The least an [`InputBuffer`] offers to read into while it waits for a
/// frame's length: enough for several small frames at once.
const MIN_READ: usize = 4096;

/// The most an [`InputBuffer`] holds: one whole frame of the largest size.
const CAPACITY: usize = PREFIX_LEN + MAX_FRAME_LEN;

/// The body length announced by the prefix at the start of `bytes`, once
/// the whole prefix is there.
fn announced(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [high, low, ..] => Some(usize::from(u16::from_be_bytes([*high, *low]))),
        _ => None,
    }
}

/// Splits the first frame off `bytes`: its body and what follows it.
/// `None` while the frame is incomplete.
pub fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = PREFIX_LEN + announced(bytes)?;
    let frame = bytes.get(..end)?;
    Some((&frame[PREFIX_LEN..], &bytes[end..]))
}

/// The bodies of the whole frames at the start of a byte string, in order;
/// what follows them (a partial frame, or nothing) is
/// [`Frames::remainder`].
///
/// ```
/// use onetrip_noise::frame::Frames;
///
/// let mut frames = Frames::new(b"\x00\x01a\x00\x02bc\x00\x05de");
/// assert_eq!(frames.by_ref().collect::<Vec<_>>(), [b"a".as_slice(), b"bc"]);
/// assert_eq!(frames.remainder(), b"\x00\x05de");
/// ```
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Frames<'a> {
    /// The frames of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Frames { rest: bytes }
    }

    /// The bytes after the frames yielded so far.
    pub fn remainder(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (body, rest) = split(self.rest)?;
        self.rest = rest;
        Some(body)
    }
}

/// Starts a frame at the end of `out` (its prefix, still zero); returns
/// where it starts, for [`end`].
pub(crate) fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; PREFIX_LEN]);
    start
}

/// Ends the frame that starts at `start` and runs to the end of `out`:
/// writes its body length into its prefix.
///
/// The callers bound their bodies (snow writes at most the
/// [`MAX_FRAME_LEN`] bytes it is given room for; a transport frame carries
/// at most [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN) bytes and a tag),
/// so a longer one is a bug here, not something a peer can cause.
pub(crate) fn end(out: &mut [u8], start: usize) {
    let len = u16::try_from(out.len() - start - PREFIX_LEN)
        .expect("every frame body is bounded by MAX_FRAME_LEN");
    out[start..start + PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
}

/// Received bytes not yet consumed, held by a core that parses them.
///
/// It holds [`CAPACITY`] bytes (one whole frame of the largest size) at
/// most, whatever a peer announces, and grows only as far as the input
/// needs, so a connection that only saw small frames holds little. Input
/// is taken either by copy ([`InputBuffer::extend`]) or, without a copy, by
/// reading straight into [`InputBuffer::spare`].
#[derive(Default)]
pub(crate) struct InputBuffer {
    buf: Vec<u8>,
    len: usize,
}

impl std::fmt::Debug for InputBuffer {
    /// The length only: the bytes may be decrypted plaintext.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputBuffer")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl InputBuffer {
    /// The bytes received and not yet discarded.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The body length the frame at the front announces, once its prefix
    /// is in.
    pub(crate) fn front_len(&self) -> Option<usize> {
        announced(self.bytes())
    }

    /// The body of the frame at the front, once it is whole (mutable, to be
    /// decrypted in place).
    pub(crate) fn front_mut(&mut self) -> Option<&mut [u8]> {
        let end = PREFIX_LEN + self.front_len()?;
        self.buf[..self.len].get_mut(PREFIX_LEN..end)
    }

    /// Drops the first `n` bytes, keeping those received after them.
    pub(crate) fn discard(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Room to receive into: the rest of the frame at the front, or more
    /// (at least [`MIN_READ`] bytes in all), within [`CAPACITY`]. Empty only
    /// when the buffer is full, which it cannot be while the frame at its
    /// front is incomplete.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let needed = PREFIX_LEN + self.front_len().unwrap_or(0);
        let target = needed.max(MIN_READ).max(self.len + 1).min(CAPACITY);
        if self.buf.len() < target {
            self.buf.resize(target, 0);
        }
        &mut self.buf[self.len..]
    }

    /// Frees the buffer if it holds no bytes; [`InputBuffer::spare`]
    /// allocates again.
    pub(crate) fn release_if_empty(&mut self) {
        if self.len == 0 {
            self.buf = Vec::new();
        }
    }

    /// Takes in the `n` bytes just written to the front of
    /// [`InputBuffer::spare`].
    ///
    /// # Errors
    /// [`Misuse::InputOverrun`] if `n` is more than `spare` offered.
    pub(crate) fn filled(&mut self, n: usize) -> Result<(), Error> {
        let room = self.buf.len() - self.len;
        if n > room {
            return Err(Misuse::InputOverrun { filled: n, room }.into());
        }
        self.len += n;
        Ok(())
    }

    /// Copies in as much of `input` as fits within [`CAPACITY`]; returns
    /// how much that was.
    pub(crate) fn extend(&mut self, input: &[u8]) -> usize {
        let n = input.len().min(CAPACITY - self.len);
        self.buf.truncate(self.len);
        self.buf.extend_from_slice(&input[..n]);
        self.len += n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut wire = Vec::new();
        for body in [&b""[..], b"a", &[7; MAX_FRAME_LEN]] {
            let start = begin(&mut wire);
            wire.extend_from_slice(body);
            end(&mut wire, start);
        }
        let mut frames = Frames::new(&wire);
        let lens: Vec<usize> = frames.by_ref().map(<[u8]>::len).collect();
        assert_eq!(lens, [0, 1, MAX_FRAME_LEN]);
        assert!(frames.remainder().is_empty());
        assert_eq!(split(&wire[..1]), None);
        assert_eq!(split(&wire[3..6]), None, "a frame cut short");
    }

    #[test]
    fn input_grows_with_the_front_frame_to_one_frame_at_most() {
        let mut input = InputBuffer::default();
        assert_eq!(input.spare().len(), MIN_READ);
        assert_eq!(input.extend(&[0xff, 0xff]), 2);
        assert_eq!(input.front_len(), Some(MAX_FRAME_LEN));
        assert_eq!(input.spare().len(), MAX_FRAME_LEN, "the rest of the frame");
        assert_eq!(input.extend(&vec![1; 2 * MAX_FRAME_LEN]), MAX_FRAME_LEN);
        assert!(input.spare().is_empty(), "full: one whole frame");
        assert_eq!(
            input.front_mut().map(|body| body.len()),
            Some(MAX_FRAME_LEN)
        );
        input.discard(PREFIX_LEN + MAX_FRAME_LEN);
        assert!(input.bytes().is_empty());
        input.release_if_empty();
        assert_eq!(input.buf.capacity(), 0, "an empty buffer is freed");
        assert_eq!(input.spare().len(), MIN_READ);
        input.filled(1).unwrap();
        input.release_if_empty();
        assert_eq!(input.bytes().len(), 1, "a buffer holding bytes is kept");
        assert!(matches!(
            input.filled(PREFIX_LEN + MAX_FRAME_LEN + 1),
            Err(Error::Misuse(Misuse::InputOverrun { .. }))
        ));
    }
}
