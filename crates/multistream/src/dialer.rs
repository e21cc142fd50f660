//! The dialer (initiator) side of a negotiation, sans I/O.

use crate::{Error, MAX_PROPOSALS, Message, Misuse, Mode, Protocol, Status, core::Wire};

/// The dialer's state machine: proposes protocols in order of preference
/// until the listener echoes one.
///
/// It performs no I/O: send what [`Dialer::take_output`] yields, feed what
/// the listener sends to [`Dialer::handle_input`], and watch
/// [`Dialer::status`]. After an error the machine must be dropped.
///
/// ```
/// use onetrip_multistream::{Dialer, Listener, Mode, Protocol, Status};
///
/// let yamux = Protocol::new("/yamux/1.0.0")?;
/// let mut dialer = Dialer::new([yamux.clone()], Mode::Optimistic)?;
/// // A single candidate in optimistic mode is selected before any I/O.
/// assert_eq!(dialer.status(), &Status::Optimistic(yamux.clone()));
///
/// let mut listener = Listener::new(vec![yamux.clone()]);
/// let mut wire = Vec::new();
/// dialer.take_output(&mut wire);
/// wire.extend_from_slice(b"app data");
/// let used = listener.handle_input(&wire)?;
/// assert_eq!(listener.status(), &Status::Selected(yamux.clone()));
/// assert_eq!(&wire[used..], b"app data");
///
/// let mut reply = Vec::new();
/// listener.take_output(&mut reply);
/// assert_eq!(dialer.handle_input(&reply)?, reply.len());
/// assert_eq!(dialer.status(), &Status::Selected(yamux));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Dialer {
    protocols: Vec<Protocol>,
    /// Index of the proposal awaiting an answer.
    current: usize,
    mode: Mode,
    wire: Wire,
    status: Status,
}

impl Dialer {
    /// Starts a negotiation for `protocols`, most preferred first. The
    /// header and the first proposal are queued at once.
    ///
    /// # Errors
    /// [`Misuse::NoProtocols`] for an empty list;
    /// [`Misuse::TooManyProtocols`] for more than [`MAX_PROPOSALS`], which a
    /// listener would refuse.
    pub fn new(protocols: impl IntoIterator<Item = Protocol>, mode: Mode) -> Result<Self, Misuse> {
        let protocols: Vec<Protocol> = protocols.into_iter().take(MAX_PROPOSALS + 1).collect();
        if protocols.is_empty() {
            return Err(Misuse::NoProtocols);
        }
        if protocols.len() > MAX_PROPOSALS {
            return Err(Misuse::TooManyProtocols { max: MAX_PROPOSALS });
        }
        let mut dialer = Dialer {
            protocols,
            current: 0,
            mode,
            wire: Wire::new(),
            status: Status::Negotiating,
        };
        dialer.propose();
        Ok(dialer)
    }

    /// Where the negotiation stands.
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

    /// Feeds bytes received from the listener. Returns how many were
    /// consumed: once the status is [`Status::Selected`], the rest belong to
    /// the application. A partial message is buffered (at most
    /// [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN) bytes).
    ///
    /// # Errors
    /// A framing error, [`Error::UnexpectedHeader`],
    /// [`Error::UnexpectedMessage`], [`Error::NoProtocolInCommon`] or
    /// [`Error::OptimisticRejected`].
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, Error> {
        let Dialer {
            protocols,
            current,
            mode,
            wire,
            status,
        } = self;
        if let Status::Selected(_) = status {
            return Ok(0);
        }
        wire.handle_input(input, |wire, message| {
            let proposed = &protocols[*current];
            match message {
                Message::Protocol(p) if p == *proposed => {
                    tracing::trace!(protocol = %p, "multistream-select: dialer selected");
                    *status = Status::Selected(p);
                    return Ok(true);
                }
                Message::NotAvailable if *current + 1 < protocols.len() => {
                    *current += 1;
                    propose_next(wire, &protocols[*current..], *mode, status);
                }
                Message::NotAvailable => {
                    return Err(match status {
                        Status::Optimistic(protocol) => Error::OptimisticRejected {
                            protocol: protocol.clone(),
                        },
                        _ => Error::NoProtocolInCommon,
                    });
                }
                other => return Err(Error::unexpected("the echo of the proposal or na", &other)),
            }
            Ok(false)
        })
    }

    /// Reports the end of the listener's stream.
    ///
    /// # Errors
    /// [`Error::UnexpectedEof`] unless the negotiation has finished.
    pub fn handle_eof(&self) -> Result<(), Error> {
        self.status.check_eof()
    }

    fn propose(&mut self) {
        propose_next(
            &mut self.wire,
            &self.protocols[self.current..],
            self.mode,
            &mut self.status,
        );
    }
}

/// Queues the proposal of `remaining[0]`, selecting it optimistically when
/// it is the last candidate and the mode allows.
fn propose_next(wire: &mut Wire, remaining: &[Protocol], mode: Mode, status: &mut Status) {
    let protocol = &remaining[0];
    wire.send(&Message::Protocol(protocol.clone()));
    if mode == Mode::Optimistic && remaining.len() == 1 {
        *status = Status::Optimistic(protocol.clone());
    }
}
