//! The crate's one error type.

use std::{io, sync::Arc};

use multiaddr::Multiaddr;

/// Everything that can go wrong setting up or using a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The byte stream failed (connect, read, write).
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// The connection was not established within the handshake timeout.
    #[error("connection handshake timed out")]
    Timeout,
    /// multistream-select for the security protocol failed (garbage
    /// instead of a header, `/noise` refused, …).
    #[error("security protocol negotiation failed: {0}")]
    SecurityNegotiation(onetrip_multistream::Error),
    /// The Noise handshake failed (bad signature, wrong peer id, …).
    #[error("noise handshake failed: {0}")]
    Noise(#[from] onetrip_noise::Error),
    /// multistream-select for the stream muxer failed.
    #[error("muxer negotiation failed: {0}")]
    MuxerNegotiation(onetrip_multistream::Error),
    /// multistream-select for a stream's protocol failed.
    #[error("stream protocol negotiation failed: {0}")]
    StreamNegotiation(onetrip_multistream::Error),
    /// The QUIC transport failed (handshake, certificate, peer id, …).
    #[error("QUIC: {0}")]
    Quic(#[from] onetrip_quic::Error),
    /// The connection's stream limit is reached.
    #[error("stream limit reached")]
    StreamLimit,
    /// The yamux session failed.
    #[error("yamux: {0}")]
    Yamux(Arc<yamux::ConnectionError>),
    /// The connection is closed (locally, by the peer, or after an error).
    #[error("connection closed")]
    ConnectionClosed,
    /// The listener is at its connection limit; the connection was dropped.
    #[error("connection limit reached")]
    ConnectionLimit,
    /// An address this transport cannot dial or listen on.
    #[error(
        "unsupported address {0}: expected /ip4|ip6/…/tcp/… or /ip4|ip6/…/udp/…/quic-v1, with an optional /p2p/…"
    )]
    UnsupportedAddress(Multiaddr),
    /// No preset has this name.
    #[error("unknown layering preset {0:?}")]
    UnknownPreset(String),
    /// An invalid configuration value.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(Arc::new(err))
    }
}

impl From<yamux::ConnectionError> for Error {
    fn from(err: yamux::ConnectionError) -> Self {
        match err {
            yamux::ConnectionError::Closed => Error::ConnectionClosed,
            err => Error::Yamux(Arc::new(err)),
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Io(inner) => io::Error::new(inner.kind(), Error::Io(inner)),
            Error::Timeout => io::Error::new(io::ErrorKind::TimedOut, err),
            Error::ConnectionClosed => io::Error::new(io::ErrorKind::NotConnected, err),
            err => io::Error::other(err),
        }
    }
}
