//! The crate's one error type.

use std::{io, sync::Arc};

use multiaddr::Multiaddr;
use onetrip_common::{IoError, PeerIdMismatch, io_error_conversions};

use crate::config::MAX_STREAMS_LIMIT;

/// Everything that can go wrong setting up or using a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The byte stream failed (connect, read, write).
    #[error(transparent)]
    Io(#[from] IoError),
    /// The setup deadline passed (connect, negotiations and handshake
    /// together), or closing the connection took as long.
    #[error("connection handshake timed out")]
    Timeout,
    /// The remote proved another identity than the one dialed, whichever
    /// layer found out (Noise, TLS on QUIC, or the stack's own check).
    #[error(transparent)]
    PeerIdMismatch(Box<PeerIdMismatch>),
    /// multistream-select for the security protocol failed (garbage
    /// instead of a header, `/noise` refused, …).
    #[error("security protocol negotiation failed: {0}")]
    SecurityNegotiation(onetrip_multistream::Error),
    /// The Noise handshake failed (bad signature, a frame that does not
    /// decrypt, …; a wrong peer is [`Error::PeerIdMismatch`]).
    #[error("noise handshake failed: {0}")]
    Noise(onetrip_noise::Error),
    /// The TLS handshake on TCP failed (a certificate that breaks libp2p
    /// TLS, a bad record, an alert; a wrong peer is
    /// [`Error::PeerIdMismatch`]).
    #[error("TLS handshake failed: {0}")]
    Tls(onetrip_tls::Error),
    /// multistream-select for the stream muxer failed.
    #[error("muxer negotiation failed: {0}")]
    MuxerNegotiation(onetrip_multistream::Error),
    /// multistream-select for a stream's protocol failed.
    #[error("stream protocol negotiation failed: {0}")]
    StreamNegotiation(onetrip_multistream::Error),
    /// The QUIC transport failed (handshake, certificate, …; a wrong peer
    /// is [`Error::PeerIdMismatch`]).
    #[error("QUIC: {0}")]
    Quic(onetrip_quic::Error),
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
    Config(#[from] ConfigError),
    /// The kernel does not let TCP Fast Open work on this side: its
    /// `net.ipv4.tcp_fastopen` (`None` if unreadable) lacks the bit for it
    /// (0x1 to dial, 0x2 to listen). Connections fall back to a plain
    /// handshake; this is a report, not a failure of any connection.
    #[error(
        "TCP Fast Open is off for the {side}: net.ipv4.tcp_fastopen is {}, needs {}",
        sysctl.map_or("unreadable".into(), |v| format!("{v:#x}")),
        if *side == "listener" { "0x2" } else { "0x1" }
    )]
    FastOpenUnavailable {
        /// `dialer` or `listener`.
        side: &'static str,
        /// The sysctl's value, if it could be read.
        sysctl: Option<u32>,
    },
}

/// A configuration value out of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit was set to zero.
    #[error("{limit} must be at least 1")]
    ZeroLimit {
        /// The limit's name.
        limit: &'static str,
    },
    /// More streams per connection than this crate allows.
    #[error("{requested} streams per connection is more than the {max} allowed")]
    TooManyStreams {
        /// What was asked for.
        requested: usize,
        /// The limit, [`MAX_STREAMS_LIMIT`].
        max: usize,
    },
    /// A yamux window outside what yamux takes.
    #[error("a yamux window of {requested} bytes is outside 256 KiB ..= 1 GiB")]
    YamuxWindow {
        /// The window asked for.
        requested: usize,
    },
}

impl ConfigError {
    /// A [`ConfigError::TooManyStreams`] for `requested`.
    pub(crate) fn too_many_streams(requested: usize) -> Self {
        ConfigError::TooManyStreams {
            requested,
            max: MAX_STREAMS_LIMIT,
        }
    }
}

/// `From` a layer's error: its wrong-peer variant becomes
/// [`Error::PeerIdMismatch`], as from every layer; anything else is wrapped
/// in `$variant`.
macro_rules! from_layer {
    ($($layer:ident => $variant:ident),+ $(,)?) => {$(
        impl From<$layer::Error> for Error {
            fn from(err: $layer::Error) -> Self {
                match err {
                    $layer::Error::PeerIdMismatch(mismatch) => Error::PeerIdMismatch(mismatch),
                    err => Error::$variant(err),
                }
            }
        }
    )+};
}

from_layer!(onetrip_noise => Noise, onetrip_tls => Tls, onetrip_quic => Quic);

impl From<yamux::ConnectionError> for Error {
    fn from(err: yamux::ConnectionError) -> Self {
        match err {
            yamux::ConnectionError::Closed => Error::ConnectionClosed,
            err => Error::Yamux(Arc::new(err)),
        }
    }
}

/// How a connection error surfaces through a stream's `AsyncRead` /
/// `AsyncWrite`.
fn io_kind(err: &Error) -> io::ErrorKind {
    match err {
        Error::Io(err) => err.kind(),
        Error::Timeout => io::ErrorKind::TimedOut,
        Error::ConnectionClosed => io::ErrorKind::NotConnected,
        Error::PeerIdMismatch(_) => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    }
}

io_error_conversions!(Error, io_kind);
