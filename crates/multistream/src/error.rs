//! The crate's error type.

use std::io;

use onetrip_common::{IoError, io_error_conversions};

use crate::{MAX_PROTOCOL_LEN, Protocol, message::HEADER_NAME};

/// How many bytes of untrusted input an error quotes.
const EXCERPT_LEN: usize = 64;

/// Everything that can go wrong while negotiating.
///
/// Each variant says what the peer did wrong, except [`Error::Misuse`] (the
/// caller's mistake: nothing was sent) and the transport's own failures
/// ([`Error::Io`], [`Error::Timeout`]). Errors that
/// surface through [`Negotiated`](crate::Negotiated)'s `AsyncRead` /
/// `AsyncWrite` are wrapped in an [`io::Error`]; get them back with
/// [`Error::from_io`].
///
/// It is cheap to clone, so that a broken [`Negotiated`](crate::Negotiated)
/// can report the same error on every later call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying transport failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The caller's deadline passed before the negotiation finished.
    #[error("multistream-select negotiation timed out")]
    Timeout,
    /// The caller asked for something the protocol does not allow; nothing
    /// was sent.
    #[error(transparent)]
    Misuse(#[from] Misuse),
    /// The stream ended before negotiation finished.
    #[error("stream ended during multistream-select negotiation")]
    UnexpectedEof,
    /// The length prefix is not a valid minimal unsigned varint.
    #[error("invalid varint length prefix")]
    InvalidVarint,
    /// The length prefix announces more than the message limit,
    /// [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN).
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge {
        /// The announced length.
        len: usize,
        /// The limit, [`MAX_MESSAGE_LEN`](crate::MAX_MESSAGE_LEN).
        max: usize,
    },
    /// A message does not end with `\n`.
    #[error("message does not end with a newline")]
    MissingNewline,
    /// A protocol name received from the peer is not UTF-8.
    #[error("protocol name is not valid UTF-8")]
    InvalidUtf8,
    /// A protocol name the peer sent is malformed.
    #[error("the peer sent an invalid protocol name: {0}")]
    InvalidProtocol(InvalidName),
    /// A message is none of those multistream-select defines.
    #[error("not a multistream-select message: {got:?}")]
    UnknownMessage {
        /// The start of what arrived (at most 64 bytes, lossy UTF-8).
        got: String,
    },
    /// The first message was not the `/multistream/1.0.0` header.
    #[error("peer does not speak multistream-select 1.0 (first message: {got:?})")]
    UnexpectedHeader {
        /// The start of what the peer sent instead (at most 64 bytes, lossy UTF-8).
        got: String,
    },
    /// A well-formed message arrived where the protocol does not allow it.
    #[error("unexpected message {got:?} (expected {expected})")]
    UnexpectedMessage {
        /// What this side was waiting for.
        expected: &'static str,
        /// The start of what arrived (at most 64 bytes, lossy UTF-8).
        got: String,
    },
    /// The dialer sent more proposals (or `ls` requests) than allowed.
    #[error("peer sent more than {max} proposals")]
    TooManyProposals {
        /// The limit, [`MAX_PROPOSALS`](crate::MAX_PROPOSALS).
        max: usize,
    },
    /// The listener rejected every protocol the dialer proposed.
    #[error("the listener supports none of the proposed protocols")]
    NoProtocolInCommon,
    /// The listener rejected the protocol the dialer had selected
    /// optimistically: the application bytes written after it were not
    /// processed by the listener (it read them as negotiation messages).
    #[error(
        "listener rejected optimistically selected protocol {protocol}: \
         the data written after the proposal was not processed"
    )]
    OptimisticRejected {
        /// The rejected protocol.
        protocol: Protocol,
    },
}

impl Error {
    /// The negotiation error carried by an [`io::Error`] returned from
    /// [`Negotiated`](crate::Negotiated), if any.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref()
    }

    /// A short, bounded, printable excerpt of untrusted bytes.
    pub(crate) fn excerpt(bytes: &[u8]) -> String {
        String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_LEN)]).into_owned()
    }

    /// An [`Error::UnexpectedMessage`] naming what arrived.
    pub(crate) fn unexpected(expected: &'static str, got: &crate::Message) -> Error {
        let mut got = format!("{got:?}");
        if got.len() > EXCERPT_LEN {
            let mut end = EXCERPT_LEN;
            while !got.is_char_boundary(end) {
                end -= 1;
            }
            got.truncate(end);
        }
        Error::UnexpectedMessage { expected, got }
    }
}

/// A mistake of the caller's, kept apart from the peer's faults: the
/// negotiation never started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// The list of protocols to propose is empty.
    #[error("no protocols to propose")]
    NoProtocols,
    /// The list of protocols to propose is longer than a listener answers.
    #[error("more than {max} protocols to propose")]
    TooManyProtocols {
        /// The limit, [`MAX_PROPOSALS`](crate::MAX_PROPOSALS).
        max: usize,
    },
}

/// Which rule of libp2p protocol names (libp2p specs: connections/README.md)
/// a name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidName {
    /// The name does not start with `/`.
    #[error("it must start with '/'")]
    NoLeadingSlash,
    /// The name contains `\n`, which ends a multistream-select message.
    #[error("it must not contain '\\n'")]
    ContainsNewline,
    /// The name does not fit in one message.
    #[error("{len} bytes is longer than the {max}-byte limit")]
    TooLong {
        /// The name's length.
        len: usize,
        /// The limit, [`MAX_PROTOCOL_LEN`].
        max: usize,
    },
    /// The name is the multistream header, which would make a nested
    /// negotiation indistinguishable from a proposal.
    #[error("the header {HEADER_NAME} is reserved")]
    ReservedHeader,
}

impl InvalidName {
    /// The rule `name` breaks, if any.
    pub(crate) fn check(name: &[u8]) -> Result<(), InvalidName> {
        if name.first() != Some(&b'/') {
            Err(InvalidName::NoLeadingSlash)
        } else if name.contains(&b'\n') {
            Err(InvalidName::ContainsNewline)
        } else if name.len() > MAX_PROTOCOL_LEN {
            Err(InvalidName::TooLong {
                len: name.len(),
                max: MAX_PROTOCOL_LEN,
            })
        } else if name == HEADER_NAME.as_bytes() {
            Err(InvalidName::ReservedHeader)
        } else {
            Ok(())
        }
    }
}

/// How a negotiation error surfaces through `AsyncRead`/`AsyncWrite`.
fn io_kind(err: &Error) -> io::ErrorKind {
    match err {
        Error::Io(err) => err.kind(),
        Error::UnexpectedEof => io::ErrorKind::UnexpectedEof,
        Error::Timeout => io::ErrorKind::TimedOut,
        Error::Misuse(_) => io::ErrorKind::InvalidInput,
        Error::NoProtocolInCommon | Error::OptimisticRejected { .. } => io::ErrorKind::Unsupported,
        _ => io::ErrorKind::InvalidData,
    }
}

io_error_conversions!(Error, io_kind);
