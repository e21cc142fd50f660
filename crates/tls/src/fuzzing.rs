//! Drivers for the fuzz targets: untrusted certificates.

use rustls::pki_types::CertificateDer;

/// Checks `data` as a peer's certificate, as both verifiers do: it yields
/// a peer id or a [`CertificateError`](crate::CertificateError), never a
/// panic.
pub fn certificate(data: &[u8]) {
    let certificate = CertificateDer::from(data);
    let _ = crate::certificate::peer_id(&certificate, &[]);
    let _ = crate::certificate::verified_peer_id(&certificate, &[]);
}
