//! The listener (responder) side of a negotiation, sans I/O.

use std::sync::Arc;

use crate::{
    Error, MAX_MESSAGE_LEN, MAX_PROPOSALS, Message, Protocol, Status, core::Wire,
    message::framed_line_len,
};

/// The listener's state machine: answers `ls`, refuses unknown protocols
/// with `na`, and echoes the first supported proposal.
///
/// Its header is queued at construction, so it leaves without waiting for
/// the dialer's. It consumes input only up to the end of the accepted
/// proposal: whatever the dialer pipelined after it (optimistic application
/// data) is left to the caller, never dropped. After an error the machine
/// must be dropped.
#[derive(Debug)]
pub struct Listener {
    supported: Arc<[Protocol]>,
    proposals: usize,
    wire: Wire,
    status: Status,
}

impl Listener {
    /// Starts a negotiation offering `supported` (shared, so that every
    /// inbound stream can reuse one list).
    pub fn new(supported: impl Into<Arc<[Protocol]>>) -> Self {
        Listener {
            supported: supported.into(),
            proposals: 0,
            wire: Wire::new(),
            status: Status::Negotiating,
        }
    }

    /// Where the negotiation stands: [`Status::Negotiating`] or
    /// [`Status::Selected`].
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Whether bytes are waiting to be sent.
    pub fn has_output(&self) -> bool {
        self.wire.has_output()
    }

    /// Moves the bytes waiting to be sent to the end of `out`.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        self.wire.take_output(out);
    }

    /// Feeds bytes received from the dialer. Returns how many were
    /// consumed: once the status is [`Status::Selected`], the rest belong to
    /// the application.
    ///
    /// # Errors
    /// A framing error, [`Error::UnexpectedHeader`],
    /// [`Error::UnexpectedMessage`] (including a second header: see
    /// go-multistream#20) or [`Error::TooManyProposals`].
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, Error> {
        let Listener {
            supported,
            proposals,
            wire,
            status,
        } = self;
        if let Status::Selected(_) = status {
            return Ok(0);
        }
        wire.handle_input(input, |wire, message| {
            match message {
                Message::Protocol(_) | Message::ListProtocols => {
                    *proposals += 1;
                    if *proposals > MAX_PROPOSALS {
                        return Err(Error::TooManyProposals { max: MAX_PROPOSALS });
                    }
                }
                // A header after the negotiation began is how a nested
                // negotiation starts: the dialer went on optimistically
                // after a proposal we refused. Treating what follows as
                // fresh proposals would let the inner protocol be
                // selected on the outer stream (go-multistream#20).
                other => return Err(Error::unexpected("a proposal or ls", &other)),
            }
            match message {
                Message::Protocol(p) if supported.contains(&p) => {
                    tracing::trace!(protocol = %p, "multistream-select: listener selected");
                    wire.send(&Message::Protocol(p.clone()));
                    *status = Status::Selected(p);
                    return Ok(true);
                }
                Message::Protocol(_) => wire.send(&Message::NotAvailable),
                _ => wire.send(&Message::Protocols(listable(supported))),
            }
            Ok(false)
        })
    }

    /// Reports the end of the dialer's stream.
    ///
    /// # Errors
    /// [`Error::UnexpectedEof`] unless the negotiation has finished.
    pub fn handle_eof(&self) -> Result<(), Error> {
        self.status.check_eof()
    }
}

/// The leading protocols whose `ls` response fits in one message: peers
/// refuse larger messages, so a longer list is cut rather than sent whole.
fn listable(supported: &[Protocol]) -> Vec<Protocol> {
    let mut len = 1; // the final `\n`
    supported
        .iter()
        .take_while(|p| {
            len += framed_line_len(p.as_str().len());
            len <= MAX_MESSAGE_LEN
        })
        .cloned()
        .collect()
}
