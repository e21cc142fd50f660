//! The crate's error type.

use std::{io, sync::Arc};

use libp2p_identity::PeerId;

/// Everything that can go wrong in a Noise handshake or on a secure stream.
/// Each variant says what the peer (or the caller) did wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying transport failed.
    #[error(transparent)]
    Io(Arc<io::Error>),
    /// The handshake did not finish within the configured time.
    #[error("Noise handshake timed out")]
    Timeout,
    /// The stream ended in the middle of a frame or of the handshake.
    #[error("stream ended inside a Noise frame or handshake")]
    UnexpectedEof,
    /// A handshake message could not be processed: for message 1, typically
    /// because the peer sent something other than Noise (garbage, or a
    /// different protocol); for 2 and 3, a failed decryption or a wrong size.
    #[error("Noise handshake message {message} rejected: {reason}")]
    BadMessage {
        /// Which of the three XX messages (1, 2 or 3).
        message: u8,
        /// What snow reported.
        reason: String,
    },
    /// A frame announced a length of 0 where content is required, or a
    /// frame exceeds what its role allows.
    #[error("invalid Noise frame: {0}")]
    InvalidFrame(&'static str),
    /// The handshake payload is not a valid `NoiseHandshakePayload` protobuf.
    #[error("handshake payload is not valid protobuf: {0}")]
    InvalidPayload(String),
    /// The payload carries no identity key or no signature.
    #[error("handshake payload lacks an identity key or signature")]
    MissingIdentity,
    /// The identity key cannot be decoded (unknown or malformed key type).
    #[error("cannot decode the peer's identity key: {0}")]
    InvalidIdentityKey(String),
    /// The identity signature over the Noise static key does not verify.
    #[error("the peer's signature over its Noise static key is invalid")]
    InvalidSignature,
    /// The peer is not the one the dialer expected.
    #[error("expected peer {}, but the remote is {}", .0.expected, .0.actual)]
    PeerIdMismatch(Box<PeerMismatch>),
    /// The peer's stream-muxer list breaks a bound.
    #[error("invalid stream-muxer list: {0}")]
    InvalidMuxerList(&'static str),
    /// Both peers sent muxer lists without a common entry, and the strict
    /// policy is in force.
    #[error("no stream muxer in common (strict policy)")]
    NoCommonMuxer,
    /// Decrypting a transport frame failed: the frame was forged, altered
    /// or reordered.
    #[error("Noise transport frame failed to decrypt")]
    Decrypt,
    /// 2^64 - 1 messages were sent or received on one key; the Noise spec
    /// forbids more.
    #[error("Noise nonce space exhausted")]
    NonceExhausted,
    /// The local configuration is invalid (our own muxer list, say).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}

/// The two peer ids of an [`Error::PeerIdMismatch`] (boxed: peer ids are
/// large, and errors travel in every `Result`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMismatch {
    /// Whom the dialer meant to reach.
    pub expected: PeerId,
    /// Who answered.
    pub actual: PeerId,
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        Error::Io(Arc::new(err))
    }
}

impl From<Error> for io::Error {
    /// Transport errors pass through unchanged; others are wrapped, with a
    /// fitting [`io::ErrorKind`].
    fn from(err: Error) -> io::Error {
        let kind = match err {
            Error::Io(e) => {
                return Arc::try_unwrap(e)
                    .unwrap_or_else(|e| io::Error::new(e.kind(), Error::Io(e)));
            }
            Error::Timeout => io::ErrorKind::TimedOut,
            Error::UnexpectedEof => io::ErrorKind::UnexpectedEof,
            Error::PeerIdMismatch(_) | Error::InvalidSignature => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, err)
    }
}

impl Error {
    /// The Noise error carried by an [`io::Error`] from a
    /// [`NoiseStream`](crate::NoiseStream), if any.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref()
    }
}
