//! The crate's error type.

use std::{io, sync::Arc};

use crate::Protocol;

/// How many bytes of untrusted input an error quotes.
const EXCERPT_LEN: usize = 64;

/// Everything that can go wrong while negotiating.
///
/// Each variant says what the peer (or the caller) did wrong. Errors that
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
    Io(Arc<io::Error>),
    /// The stream ended before negotiation finished.
    #[error("stream ended during multistream-select negotiation")]
    UnexpectedEof,
    /// Negotiation did not finish within the configured time.
    #[error("multistream-select negotiation timed out")]
    Timeout,
    /// The length prefix is not a valid minimal unsigned varint.
    #[error("invalid varint length prefix")]
    InvalidVarint,
    /// The length prefix announces more than the 1024-byte message limit.
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
    /// A protocol name is malformed.
    #[error("invalid protocol name: {reason}")]
    InvalidProtocol {
        /// Which rule the name breaks.
        reason: &'static str,
    },
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
    /// The caller asked to negotiate an empty list of protocols.
    #[error("no protocols to propose")]
    NoProtocols,
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

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(Arc::new(err))
    }
}

impl From<Error> for io::Error {
    /// Transport errors pass through unchanged; negotiation errors are
    /// wrapped, with a fitting [`io::ErrorKind`].
    fn from(err: Error) -> io::Error {
        let kind = match err {
            Error::Io(e) => {
                return Arc::try_unwrap(e)
                    .unwrap_or_else(|e| io::Error::new(e.kind(), Error::Io(e)));
            }
            Error::UnexpectedEof => io::ErrorKind::UnexpectedEof,
            Error::Timeout => io::ErrorKind::TimedOut,
            Error::NoProtocols | Error::InvalidProtocol { .. } => io::ErrorKind::InvalidInput,
            Error::NoProtocolInCommon | Error::OptimisticRejected { .. } => {
                io::ErrorKind::Unsupported
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}
