//! Drivers for the fuzz targets: untrusted certificates.

use rustls::pki_types::CertificateDer;

use crate::tls::verify_chain;

/// Checks `data` as a peer's certificate, as both verifiers do: it yields
/// a peer id or a [`CertificateError`](crate::CertificateError), never a
/// panic.
pub fn certificate(data: &[u8]) {
    let certificate = CertificateDer::from(data);
    let _ = verify_chain(&certificate, &[]);
}
