//! The transport phase, sans I/O: frames sealed on the way out, opened in
//! place on the way in.

use crate::{
    Error, InvalidFrame, Misuse,
    cipher::{CipherState, TAG_LEN},
    frame::{self, Frames, InputBuffer, MAX_FRAME_LEN, PREFIX_LEN},
};

/// The most plaintext one frame carries (the frame holds the tag too).
pub const MAX_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - TAG_LEN;

/// The transport phase of a finished handshake, from
/// [`Handshake::finish`](crate::Handshake::finish): one cipher state per
/// direction and the frames received but not yet read.
///
/// It performs no I/O. Outgoing: [`Transport::seal`] appends one frame to
/// the caller's buffer. Incoming: give it bytes ([`Transport::handle_input`],
/// or read straight into [`Transport::input_buffer`] and report
/// [`Transport::input_filled`]), then take the plaintext of each frame from
/// [`Transport::plaintext`] and [`Transport::consume`] it. Frames are
/// decrypted in place in a buffer that holds one frame at most; nothing is
/// allocated per frame. After an error it reports the same error on every
/// call.
#[derive(Debug)]
pub struct Transport {
    send: CipherState,
    recv: CipherState,
    input: InputBuffer,
    /// Once the frame at the front of `input` is open: its plaintext not
    /// yet consumed is `input[pos..plain_end]`, and it ends at `frame_end`
    /// (0 while no frame is open).
    pos: usize,
    plain_end: usize,
    frame_end: usize,
    failed: Option<Error>,
}

impl Transport {
    /// A transport phase with the keys of a finished handshake and the
    /// bytes received after its last message.
    pub(crate) fn new(send: CipherState, recv: CipherState, input: InputBuffer) -> Self {
        Transport {
            send,
            recv,
            input,
            pos: 0,
            plain_end: 0,
            frame_end: 0,
            failed: None,
        }
    }

    /// A transport phase that seals and opens with one `key` both ways:
    /// two of them talk to each other, for tests and fuzzing.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn with_one_key(key: &[u8; 32]) -> Self {
        Self::new(
            CipherState::new(key),
            CipherState::new(key),
            InputBuffer::default(),
        )
    }

    fn check(&self) -> Result<(), Error> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    fn fail(&mut self, err: Error) -> Error {
        self.failed = Some(err.clone());
        err
    }

    /// Seals the first [`MAX_PLAINTEXT_LEN`] bytes of `plaintext` (or all
    /// of it, if shorter) into one frame appended to `out`; returns how many
    /// bytes it took. An empty `plaintext` makes a frame of its tag alone,
    /// which the peer reads as nothing.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`] after 2^64 - 1 frames; an earlier error.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<usize, Error> {
        self.check()?;
        let n = plaintext.len().min(MAX_PLAINTEXT_LEN);
        let start = frame::begin(out);
        out.extend_from_slice(&plaintext[..n]);
        self.seal_in_place(out, start)?;
        Ok(n)
    }

    /// Seals a frame built in place, without copying its plaintext: the
    /// frame starts at `start` with [`PREFIX_LEN`] bytes of room for its
    /// length, and its plaintext runs from there to the end of `frame`.
    /// Writes the length and appends the tag. On error the frame is
    /// removed (`frame` is cut back to `start`).
    ///
    /// # Errors
    /// [`Misuse::FrameTooLong`](crate::Misuse::FrameTooLong) for more than
    /// [`MAX_PLAINTEXT_LEN`] bytes of plaintext, or no room for the
    /// length; [`Error::NonceExhausted`] after 2^64 - 1 frames; an
    /// earlier error.
    pub fn seal_in_place(&mut self, frame: &mut Vec<u8>, start: usize) -> Result<(), Error> {
        self.check()?;
        let plaintext = frame.len().saturating_sub(start + PREFIX_LEN);
        if frame.len() < start + PREFIX_LEN || plaintext > MAX_PLAINTEXT_LEN {
            frame.truncate(start);
            return Err(Misuse::FrameTooLong { len: plaintext }.into());
        }
        match self.send.seal(&mut frame[start + PREFIX_LEN..]) {
            Ok(tag) => frame.extend_from_slice(tag.as_ref()),
            Err(err) => {
                frame.truncate(start);
                return Err(self.fail(err));
            }
        }
        frame::end(frame, start);
        Ok(())
    }

    /// Copies in as much of `input` as the input buffer takes (it holds one
    /// frame at most); returns how much that was. Read the plaintext before
    /// feeding the rest.
    pub fn handle_input(&mut self, input: &[u8]) -> usize {
        self.input.extend(input)
    }

    /// Room to receive the peer's bytes into, without a copy: the rest of
    /// the frame being received, or more. Report what was written with
    /// [`Transport::input_filled`].
    pub fn input_buffer(&mut self) -> &mut [u8] {
        self.input.spare()
    }

    /// Frees the input buffer if it holds no bytes (no frame begun, no
    /// plaintext unread): for a caller whose read found nothing, so that an
    /// idle connection holds no buffer. [`Transport::input_buffer`]
    /// allocates again.
    pub fn release_input(&mut self) {
        if self.frame_end == 0 {
            self.input.release_if_empty();
        }
    }

    /// Takes in the `n` bytes just written to the front of
    /// [`Transport::input_buffer`].
    ///
    /// # Errors
    /// [`Misuse::InputOverrun`](crate::Misuse::InputOverrun) if `n` is more
    /// than it offered.
    pub fn input_filled(&mut self, n: usize) -> Result<(), Error> {
        self.input.filled(n)
    }

    /// The plaintext of the next frame, decrypted in place once the whole
    /// frame is in; empty when more input is needed.
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for a frame shorter than its tag;
    /// [`Error::Decrypt`] for one that does not authenticate;
    /// [`Error::NonceExhausted`]; an earlier error.
    pub fn plaintext(&mut self) -> Result<&[u8], Error> {
        self.check()?;
        while self.pos == self.plain_end {
            if self.frame_end > 0 {
                // An empty frame: nothing to hand out.
                self.discard_front();
            }
            match self.open_front() {
                Ok(true) => {}
                Ok(false) => return Ok(&[]),
                Err(err) => return Err(self.fail(err)),
            }
        }
        Ok(&self.input.bytes()[self.pos..self.plain_end])
    }

    /// Marks `n` bytes of [`Transport::plaintext`] as read (at most as many
    /// as it holds).
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.plain_end);
        if self.pos == self.plain_end && self.frame_end > 0 {
            self.discard_front();
        }
    }

    /// Reports the end of the peer's stream.
    ///
    /// # Errors
    /// [`Error::UnexpectedEof`] if it ends inside a frame; an earlier
    /// error.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        self.check()?;
        let unopened = &self.input.bytes()[self.frame_end..];
        let mut frames = Frames::new(unopened);
        frames.by_ref().for_each(drop);
        if frames.remainder().is_empty() {
            Ok(())
        } else {
            Err(self.fail(Error::UnexpectedEof))
        }
    }

    /// Decrypts the frame at the front of the input if it is whole.
    fn open_front(&mut self) -> Result<bool, Error> {
        match self.input.front_len() {
            Some(len) if len < TAG_LEN => return Err(InvalidFrame::ShorterThanTag { len }.into()),
            Some(_) => {}
            None => return Ok(false),
        }
        let Some(body) = self.input.front_mut() else {
            return Ok(false);
        };
        let len = body.len();
        let plain = self.recv.open(body)?;
        self.pos = PREFIX_LEN;
        self.plain_end = PREFIX_LEN + plain;
        self.frame_end = PREFIX_LEN + len;
        Ok(true)
    }

    /// Drops the open frame, keeping the bytes received after it.
    fn discard_front(&mut self) {
        self.input.discard(self.frame_end);
        self.pos = 0;
        self.plain_end = 0;
        self.frame_end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Transport, Transport) {
        let key = [5u8; 32];
        (Transport::with_one_key(&key), Transport::with_one_key(&key))
    }

    /// Whole frames, an empty one among them, through bounded input.
    #[test]
    fn plaintext_crosses_in_frames_through_a_bounded_buffer() {
        let (mut sender, mut receiver) = pair();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            rest = &rest[sender.seal(rest, &mut wire).unwrap()..];
        }
        assert_eq!(sender.seal(&[], &mut wire).unwrap(), 0);
        let mut wire = wire.as_slice();
        let mut got = Vec::new();
        loop {
            let plaintext = receiver.plaintext().unwrap();
            if !plaintext.is_empty() {
                got.extend_from_slice(plaintext);
                let n = plaintext.len();
                receiver.consume(n);
            } else if wire.is_empty() {
                break;
            } else {
                let n = receiver.handle_input(wire);
                assert!(0 < n && n <= PREFIX_LEN + MAX_FRAME_LEN);
                wire = &wire[n..];
            }
        }
        receiver.handle_eof().unwrap();
        assert!(got == data, "plaintext corrupted");
    }

    #[test]
    fn an_end_inside_a_frame_is_unexpected_and_final() {
        let (mut sender, mut receiver) = pair();
        let mut wire = Vec::new();
        sender.seal(b"hello", &mut wire).unwrap();
        receiver.handle_input(&wire[..wire.len() - 1]);
        assert_eq!(receiver.plaintext().unwrap(), b"");
        assert!(matches!(receiver.handle_eof(), Err(Error::UnexpectedEof)));
        assert!(matches!(receiver.plaintext(), Err(Error::UnexpectedEof)));
    }
}
