//! The crate's one error type.

use std::sync::Arc;

use onetrip_common::PeerIdMismatch;

/// Everything that can go wrong with libp2p TLS: the peer's faults
/// ([`Error::Certificate`], [`Error::PeerIdMismatch`]) apart from the local
/// ones ([`Error::Generate`], [`Error::Rustls`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer's certificate breaks libp2p TLS.
    #[error("remote certificate refused: {0}")]
    Certificate(#[from] CertificateError),
    /// The peer proved another identity than the one dialed.
    #[error(transparent)]
    PeerIdMismatch(Box<PeerIdMismatch>),
    /// No certificate could be made for the local key.
    #[error("cannot make a certificate for the local key: {0}")]
    Generate(#[source] Arc<libp2p_tls::certificate::GenError>),
    /// rustls refused the local key or the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl From<Box<PeerIdMismatch>> for Error {
    fn from(mismatch: Box<PeerIdMismatch>) -> Self {
        Error::PeerIdMismatch(mismatch)
    }
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
