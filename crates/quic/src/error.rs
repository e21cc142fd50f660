//! The crate's one error type.

use std::io;

use onetrip_common::{IoError, PeerIdMismatch, io_error_conversions};
use onetrip_tls::CertificateError;

/// Everything that can go wrong with a QUIC endpoint or connection.
///
/// The caller's side: [`Error::Io`], [`Error::Connect`],
/// [`Error::IdleTimeout`], [`Error::Tls`] and [`Error::InitialCipherSuite`]
/// (setting up an endpoint or a dial), and [`Error::Timeout`] (the
/// caller's deadline passed). The peer's or the network's:
/// [`Error::Connection`], [`Error::Certificate`], [`Error::PeerIdMismatch`]
/// and [`Error::NoIdentity`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The UDP socket failed.
    #[error("I/O error: {0}")]
    Io(IoError),
    /// quinn refused to start the connection (an invalid remote address,
    /// the endpoint stopping, …).
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The idle timeout is longer than QUIC can express.
    #[error("the idle timeout exceeds QUIC's limit of {} ms", quinn::VarInt::MAX)]
    IdleTimeout(#[source] quinn::VarIntBoundsExceeded),
    /// libp2p TLS could not be set up: no certificate for the local key,
    /// or rustls refused it or the configuration. (The peer's faults are
    /// [`Error::Certificate`] and [`Error::PeerIdMismatch`].)
    #[error("libp2p TLS: {0}")]
    Tls(#[source] onetrip_tls::Error),
    /// The TLS configuration offers no cipher suite QUIC can protect its
    /// first packets with.
    #[error("TLS configuration unusable for QUIC: {0}")]
    InitialCipherSuite(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
    /// The caller's deadline passed before the handshake completed.
    #[error("the QUIC handshake did not complete before the deadline")]
    Timeout,
    /// The connection failed or was closed.
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The remote certificate breaks libp2p TLS.
    #[error("remote certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    /// The remote is not the peer we dialed.
    #[error(transparent)]
    PeerIdMismatch(Box<PeerIdMismatch>),
    /// The peer presented no usable identity.
    #[error("the remote presented no certificate")]
    NoIdentity,
}

impl From<onetrip_tls::Error> for Error {
    /// The peer's faults keep their own variants; the rest is local.
    fn from(err: onetrip_tls::Error) -> Self {
        match err {
            onetrip_tls::Error::Certificate(err) => Error::Certificate(err),
            onetrip_tls::Error::PeerIdMismatch(mismatch) => Error::PeerIdMismatch(mismatch),
            err => Error::Tls(err),
        }
    }
}

/// The [`io::ErrorKind`] a stream's read or write reports for `err`.
fn io_kind(err: &Error) -> io::ErrorKind {
    match err {
        Error::Io(err) => err.kind(),
        Error::Connection(err) => io::Error::from(err.clone()).kind(),
        Error::Timeout => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    }
}

io_error_conversions!(Error, io_kind);
