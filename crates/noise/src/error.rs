//! The crate's error type.

use std::{io, sync::Arc};

use onetrip_common::{IoError, PeerIdMismatch, io_error_conversions};

use crate::{MAX_MUXERS, TAG_LEN};

/// Everything that can go wrong in a Noise handshake or on a secure stream.
///
/// Each variant says who did what wrong: the transport ([`Error::Io`]),
/// the clock ([`Error::Timeout`]), the caller ([`Error::Misuse`],
/// [`Error::Config`]) or, for all the others, the peer. Causes from other
/// crates (snow, prost, libp2p-identity) are kept as error objects, reached
/// with [`std::error::Error::source`]. Errors that surface through
/// [`NoiseStream`](crate::NoiseStream)'s `AsyncRead` / `AsyncWrite` are
/// wrapped in an [`io::Error`]; get them back with [`Error::from_io`].
///
/// It is cheap to clone: a broken core reports the same error on every
/// later call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The underlying transport failed.
    #[error(transparent)]
    Io(IoError),
    /// The caller's deadline passed before the handshake finished.
    #[error("Noise handshake timed out")]
    Timeout,
    /// The stream ended in the middle of a frame or of the handshake.
    #[error("stream ended inside a Noise frame or handshake")]
    UnexpectedEof,
    /// snow rejected a handshake message: for message 1, typically because
    /// the peer sent something other than Noise (garbage, or a different
    /// protocol); for 2 and 3, a failed decryption or a wrong size.
    #[error("Noise handshake message {message} rejected")]
    BadMessage {
        /// Which of the three XX messages (1, 2 or 3).
        message: u8,
        /// What snow reported.
        source: Arc<snow::Error>,
    },
    /// A frame's length breaks what its role allows.
    #[error(transparent)]
    InvalidFrame(#[from] InvalidFrame),
    /// The handshake payload is not a valid `NoiseHandshakePayload` protobuf.
    #[error("handshake payload is not valid protobuf")]
    InvalidPayload(#[source] prost::DecodeError),
    /// The payload carries no identity key or no signature.
    #[error("handshake payload lacks an identity key or signature")]
    MissingIdentity,
    /// The identity key cannot be decoded (unknown or malformed key type).
    #[error("cannot decode the peer's identity key")]
    InvalidIdentityKey(#[source] Arc<libp2p_identity::DecodingError>),
    /// The identity signature over the Noise static key does not verify.
    #[error("the peer's signature over its Noise static key is invalid")]
    InvalidSignature,
    /// The peer is not the one the dialer expected.
    #[error(transparent)]
    PeerIdMismatch(Box<PeerIdMismatch>),
    /// The peer's stream-muxer list breaks a bound.
    #[error(transparent)]
    InvalidMuxerList(#[from] InvalidMuxerList),
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
    /// The local configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The caller used the API out of order; the peer did nothing wrong.
    #[error(transparent)]
    Misuse(#[from] Misuse),
}

/// A frame whose length its role does not allow (libp2p specs,
/// noise/README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidFrame {
    /// A handshake message of length 0: every XX message carries at least
    /// a key.
    #[error("empty Noise handshake message")]
    EmptyHandshakeMessage,
    /// A transport frame too short to hold its authentication tag.
    #[error("Noise transport frame of {len} bytes, shorter than its {TAG_LEN}-byte tag")]
    ShorterThanTag {
        /// The announced length.
        len: usize,
    },
}

/// How a peer's stream-muxer list breaks a bound.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMuxerList {
    /// More entries than [`MAX_MUXERS`].
    #[error("the peer lists {len} stream muxers, more than the {MAX_MUXERS} allowed")]
    TooMany {
        /// How many the peer listed.
        len: usize,
    },
    /// An entry is not a valid protocol name.
    #[error("the peer lists a stream muxer that is not a valid protocol name")]
    InvalidName(#[source] onetrip_multistream::InvalidName),
}

/// A local configuration that cannot work.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// More stream muxers to announce than [`MAX_MUXERS`].
    #[error("{len} stream muxers to announce, more than the {MAX_MUXERS} a peer accepts")]
    TooManyMuxers {
        /// How many were given.
        len: usize,
    },
    /// The identity key cannot sign the Noise static key.
    #[error("the identity key cannot sign")]
    Sign(#[source] Arc<libp2p_identity::SigningError>),
    /// snow cannot set up the static key or the handshake.
    #[error("snow cannot set up the Noise handshake")]
    Snow(#[source] Arc<snow::Error>),
}

/// A call the state it was made in does not allow: a mistake of the
/// caller's, kept apart from the peer's faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misuse {
    /// [`Handshake::finish`](crate::Handshake::finish) before the three
    /// messages were exchanged.
    #[error("the Noise handshake is not finished")]
    HandshakeNotFinished,
    /// More bytes reported received than the input buffer offered.
    #[error("{filled} bytes reported received into a buffer of {room}")]
    InputOverrun {
        /// The bytes reported.
        filled: usize,
        /// The room the buffer offered.
        room: usize,
    },
    /// A frame given to
    /// [`Transport::seal_in_place`](crate::Transport::seal_in_place) with
    /// more plaintext than one frame carries, or no room for its length.
    #[error("{len} bytes of plaintext do not make one frame")]
    FrameTooLong {
        /// The plaintext bytes.
        len: usize,
    },
}

/// The [`io::ErrorKind`] of an error that surfaces through `AsyncRead` /
/// `AsyncWrite`.
fn kind(err: &Error) -> io::ErrorKind {
    match err {
        Error::Io(err) => err.kind(),
        Error::Timeout => io::ErrorKind::TimedOut,
        Error::UnexpectedEof => io::ErrorKind::UnexpectedEof,
        Error::PeerIdMismatch(_) | Error::InvalidSignature => io::ErrorKind::PermissionDenied,
        Error::Config(_) | Error::Misuse(_) => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::InvalidData,
    }
}

io_error_conversions!(Error, kind);

impl Error {
    /// The Noise error carried by an [`io::Error`] from a
    /// [`NoiseStream`](crate::NoiseStream), if any.
    pub fn from_io(err: &io::Error) -> Option<&Error> {
        err.get_ref()?.downcast_ref()
    }

    /// A snow error while processing message `message`.
    pub(crate) fn snow(message: u8, err: snow::Error) -> Self {
        Error::BadMessage {
            message,
            source: Arc::new(err),
        }
    }
}
