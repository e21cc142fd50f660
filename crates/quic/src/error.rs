//! The crate's one error type.

use std::{io, sync::Arc};

use onetrip_common::PeerIdMismatch;
use onetrip_tls::CertificateError;

/// Everything that can go wrong with a QUIC connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The UDP socket failed.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// quinn refused to start the connection (bad address, endpoint
    /// stopping, …).
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was closed.
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// The remote certificate breaks libp2p TLS.
    #[error("remote certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    /// The remote is not the peer we dialed.
    #[error(transparent)]
    PeerIdMismatch(Box<PeerIdMismatch>),
    /// The handshake did not finish within the timeout.
    #[error("QUIC handshake timed out")]
    Timeout,
    /// The peer presented no usable identity.
    #[error("the remote presented no certificate")]
    NoIdentity,
    /// libp2p TLS could not be set up: no certificate for the local key,
    /// or rustls refused it or the configuration. (The peer's faults are
    /// [`Error::Certificate`] and [`Error::PeerIdMismatch`].)
    #[error("libp2p TLS: {0}")]
    Tls(#[source] onetrip_tls::Error),
    /// An invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl From<onetrip_tls::Error> for Error {
    fn from(err: onetrip_tls::Error) -> Self {
        match err {
            onetrip_tls::Error::Certificate(err) => Error::Certificate(err),
            onetrip_tls::Error::PeerIdMismatch(mismatch) => Error::PeerIdMismatch(mismatch),
            err => Error::Tls(err),
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(Arc::new(err))
    }
}
