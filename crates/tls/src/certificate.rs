//! The libp2p certificate: made and checked by `libp2p-tls`, and when it is
//! refused, the rule of the spec it breaks.

use libp2p_identity::{PeerId, PublicKey};
use rustls::{
    CertificateError as RustlsCertificateError, DigitallySignedStruct, SignatureScheme,
    client::danger::HandshakeSignatureValid, pki_types::CertificateDer,
};

use crate::error::CertificateError;

/// The libp2p Public Key Extension's OID, `1.3.6.1.4.1.53594.1.1`.
///
/// libp2p specs: tls/tls.md ("libp2p Public Key Extension").
pub const EXTENSION_OID: [u64; 9] = [1, 3, 6, 1, 4, 1, 53594, 1, 1];

/// Prefixed to the certificate's SubjectPublicKeyInfo (DER) in the
/// message the extension's signature covers.
///
/// libp2p specs: tls/tls.md ("libp2p Public Key Extension").
pub const SIGNATURE_PREFIX: &[u8] = b"libp2p-tls-handshake:";

/// The peer id a certificate chain proves, checked as libp2p TLS requires:
/// exactly one self-signed certificate, valid now, carrying a valid
/// extension.
///
/// # Errors
/// The first rule of the spec the chain breaks.
pub fn peer_id(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<PeerId, CertificateError> {
    if !intermediates.is_empty() {
        return Err(CertificateError::NotSingle);
    }
    match libp2p_tls::certificate::parse(end_entity) {
        Ok(certificate) => Ok(certificate.peer_id()),
        Err(_) => Err(diagnose(end_entity)),
    }
}

/// The peer id of a certificate chain that a verifier of ours has
/// accepted: in this connection's handshake, or in the handshake whose
/// session it resumes (the server keeps the chain in its ticket). It is
/// read from the extension without checking the certificate's and the
/// extension's signatures again: [`peer_id`] would spend an ECDSA and an
/// Ed25519 verification on every connection, resumed ones included.
///
/// # Errors
/// [`CertificateError::NotSingle`], [`CertificateError::Malformed`],
/// [`CertificateError::MissingExtension`],
/// [`CertificateError::InvalidExtension`]: none for a chain a verifier
/// accepted.
pub fn verified_peer_id(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<PeerId, CertificateError> {
    if !intermediates.is_empty() {
        return Err(CertificateError::NotSingle);
    }
    let (_, extension) = extension(end_entity)?;
    Ok(extension.public_key.to_peer_id())
}

/// The libp2p Public Key Extension of a certificate, decoded, unchecked.
struct SignedKey {
    public_key: PublicKey,
    signature: Vec<u8>,
}

/// Parses a certificate and decodes its libp2p extension, checking no
/// signature.
fn extension<'a>(
    der: &'a CertificateDer<'_>,
) -> Result<(x509_parser::certificate::X509Certificate<'a>, SignedKey), CertificateError> {
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Err(CertificateError::Malformed);
    };
    let Ok(oid) = x509_parser::der_parser::oid::Oid::from(&EXTENSION_OID) else {
        return Err(CertificateError::Malformed);
    };
    let Some(extension) = certificate
        .extensions()
        .iter()
        .find(|extension| extension.oid == oid)
    else {
        return Err(CertificateError::MissingExtension);
    };
    // SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }
    let Ok((public_key, signature)) = yasna::decode_der::<(Vec<u8>, Vec<u8>)>(extension.value)
    else {
        return Err(CertificateError::InvalidExtension);
    };
    let Ok(public_key) = PublicKey::try_decode_protobuf(&public_key) else {
        return Err(CertificateError::InvalidExtension);
    };
    Ok((
        certificate,
        SignedKey {
            public_key,
            signature,
        },
    ))
}

/// Why `libp2p-tls` refused a certificate: finds the first rule of the
/// libp2p TLS spec it breaks.
fn diagnose(der: &CertificateDer<'_>) -> CertificateError {
    let (certificate, extension) = match extension(der) {
        Ok(parsed) => parsed,
        Err(err) => return err,
    };
    let mut signed = SIGNATURE_PREFIX.to_vec();
    signed.extend_from_slice(certificate.public_key().raw);
    if !extension.public_key.verify(&signed, &extension.signature) {
        return CertificateError::BadExtensionSignature;
    }
    // Extension fine: the certificate itself is at fault (validity period,
    // its self-signature, an unknown critical extension).
    CertificateError::Invalid
}

/// The TLS 1.3 handshake signature, checked against the certificate's key.
pub(crate) fn verify_signature(
    certificate: &CertificateDer<'_>,
    message: &[u8],
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let parsed = libp2p_tls::certificate::parse(certificate)
        .map_err(|_| rustls::Error::InvalidCertificate(RustlsCertificateError::BadEncoding))?;
    parsed
        .verify_signature(dss.scheme, message, dss.signature())
        .map_err(|_| rustls::Error::InvalidCertificate(RustlsCertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

/// The signature schemes libp2p certificates use.
pub(crate) fn schemes() -> Vec<SignatureScheme> {
    vec![
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::ED25519,
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PSS_SHA384,
        SignatureScheme::RSA_PSS_SHA512,
        SignatureScheme::RSA_PKCS1_SHA256,
        SignatureScheme::RSA_PKCS1_SHA384,
        SignatureScheme::RSA_PKCS1_SHA512,
    ]
}

#[cfg(test)]
mod tests {
    use libp2p_identity::Keypair;

    use super::*;

    /// A verified chain's peer id is the one the full check finds.
    #[test]
    fn a_verified_chain_names_the_same_peer() {
        let keypair = Keypair::generate_ed25519();
        let (certificate, _) = libp2p_tls::certificate::generate(&keypair).unwrap();
        assert_eq!(
            verified_peer_id(&certificate, &[]).unwrap(),
            keypair.public().to_peer_id()
        );
        assert_eq!(
            peer_id(&certificate, &[]).unwrap(),
            keypair.public().to_peer_id()
        );
        assert!(matches!(
            verified_peer_id(&certificate, std::slice::from_ref(&certificate)),
            Err(CertificateError::NotSingle)
        ));
        assert!(matches!(
            verified_peer_id(&CertificateDer::from(vec![0x30, 0x03, 1, 2, 3]), &[]),
            Err(CertificateError::Malformed)
        ));
    }
}
