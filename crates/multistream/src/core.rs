//! What the dialer and the listener state machines share: the header
//! exchange, framing, and the output buffer.

use crate::{
    Error, Protocol,
    message::{FrameReader, HEADER_NAME, Message},
};

/// Where a negotiation stands, as reported by
/// [`Dialer::status`](crate::Dialer::status) and
/// [`Listener::status`](crate::Listener::status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Still negotiating: send the pending output, then feed the peer's bytes.
    Negotiating,
    /// Dialer only: the protocol was selected optimistically. The
    /// application may write right after the pending output, but the
    /// listener's header and echo must still be fed in before the
    /// application reads, and the listener may yet refuse.
    Optimistic(Protocol),
    /// Both sides agree on the protocol. Input after the bytes consumed so
    /// far belongs to the application.
    Selected(Protocol),
}

impl Status {
    /// The verdict on an end of stream in this state.
    pub(crate) fn check_eof(&self) -> Result<(), Error> {
        match self {
            Status::Selected(_) => Ok(()),
            _ => Err(Error::UnexpectedEof),
        }
    }
}

/// How the dialer settles on its last remaining candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Wait for the listener's echo of each proposal before the application
    /// may send: one round trip per negotiation (the header and the first
    /// proposal are pipelined, as every libp2p implementation does).
    #[default]
    Interactive,
    /// When a single candidate remains, treat it as selected at once: its
    /// proposal and the application's first bytes leave in the same write,
    /// and the echo is consumed by the application's first read. Zero round
    /// trips; a refusal surfaces as [`Error::OptimisticRejected`].
    Optimistic,
}

/// The framing and header state of one side of a negotiation.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    reader: FrameReader,
    header_received: bool,
    out: Vec<u8>,
}

impl Wire {
    /// A wire whose output starts with our header.
    pub(crate) fn new() -> Self {
        let mut wire = Wire::default();
        wire.send(&Message::Header);
        wire
    }

    pub(crate) fn send(&mut self, message: &Message) {
        message.encode(&mut self.out);
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub(crate) fn take_output(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
    }

    /// Feeds `input` and calls `on_message` for each message after the
    /// peer's header, until it returns `Ok(true)` (negotiation finished) or
    /// the input runs out. Returns how many bytes were consumed.
    pub(crate) fn handle_input(
        &mut self,
        input: &[u8],
        mut on_message: impl FnMut(&mut Wire, Message) -> Result<bool, Error>,
    ) -> Result<usize, Error> {
        let mut consumed = 0;
        loop {
            let rest = &input[consumed..];
            if self.header_received {
                let read = self.reader.read(rest, Message::decode)?;
                consumed += read.consumed;
                let Some(message) = read.frame else { break };
                if on_message(self, message)? {
                    break;
                }
            } else {
                let read = self.reader.read(rest, check_header)?;
                consumed += read.consumed;
                match read.frame {
                    Some(()) => self.header_received = true,
                    None => break,
                }
            }
        }
        Ok(consumed)
    }
}

fn check_header(payload: &[u8]) -> Result<(), Error> {
    match payload.strip_suffix(b"\n") {
        None => Err(Error::MissingNewline),
        Some(line) if line == HEADER_NAME.as_bytes() => Ok(()),
        Some(_) => Err(Error::UnexpectedHeader {
            got: Error::excerpt(payload),
        }),
    }
}
