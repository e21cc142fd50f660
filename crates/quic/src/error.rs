//! The crate's one error type.

use std::{fmt, io, sync::Arc};

use libp2p_identity::PeerId;

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
    #[error("{0}")]
    PeerIdMismatch(Box<PeerIdMismatch>),
    /// The handshake did not finish within the timeout.
    #[error("QUIC handshake timed out")]
    Timeout,
    /// The peer presented no usable identity.
    #[error("the remote presented no certificate")]
    NoIdentity,
    /// A TLS configuration error.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// An invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// How a certificate breaks libp2p TLS (libp2p specs: tls/tls.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// More than one certificate was presented.
    #[error("a chain instead of a single certificate")]
    NotSingle,
    /// Not a parsable X.509 certificate.
    #[error("not a valid X.509 certificate")]
    Malformed,
    /// The libp2p Public Key Extension (`1.3.6.1.4.1.53594.1.1`) is missing.
    #[error("no libp2p public key extension")]
    MissingExtension,
    /// The extension is not a `SignedKey` with a known public key.
    #[error("the libp2p public key extension cannot be decoded")]
    InvalidExtension,
    /// The extension's signature over the certificate key is wrong.
    #[error("the libp2p public key extension's signature does not verify")]
    BadExtensionSignature,
    /// The certificate is invalid otherwise (expired, bad self-signature,
    /// an unknown critical extension).
    #[error("invalid certificate")]
    Invalid,
}

/// Who was dialed and who answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdMismatch {
    /// The peer id dialed.
    pub expected: PeerId,
    /// The peer id the certificate proves.
    pub actual: PeerId,
}

impl fmt::Display for PeerIdMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer id mismatch: dialed {}, reached {}",
            self.expected, self.actual
        )
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(Arc::new(err))
    }
}
