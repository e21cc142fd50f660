//! Certificates for libp2p TLS tests (feature `certificates`): self-signed,
//! carrying a libp2p Public Key Extension that is valid, made up, or absent.
//! The wire format is written out here, apart from the code under test.

use libp2p_identity::Keypair;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The libp2p Public Key Extension's OID.
///
/// libp2p specs: tls/tls.md ("libp2p Public Key Extension").
pub const EXTENSION_OID: [u64; 9] = [1, 3, 6, 1, 4, 1, 53594, 1, 1];

/// What a certificate carries under [`EXTENSION_OID`].
#[derive(Debug)]
pub enum Extension<'a> {
    /// No extension.
    None,
    /// These bytes, whatever they are.
    Raw(Vec<u8>),
    /// A correct `SignedKey` of this identity for the certificate's key.
    Valid(&'a Keypair),
}

/// A self-signed certificate (ECDSA P-256) and its private key.
pub fn self_signed(extension: Extension<'_>) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = rcgen::KeyPair::generate().expect("a P-256 key");
    let content = match extension {
        Extension::None => None,
        Extension::Raw(content) => Some(content),
        Extension::Valid(identity) => {
            // libp2p specs: tls/tls.md: the identity key signs
            // "libp2p-tls-handshake:" || SubjectPublicKeyInfo.
            let mut message = b"libp2p-tls-handshake:".to_vec();
            message.extend_from_slice(&rcgen::PublicKeyData::subject_public_key_info(&key));
            let signature = identity.sign(&message).expect("an identity key that signs");
            Some(signed_key(&identity.public().encode_protobuf(), &signature))
        }
    };
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("no subject names");
    if let Some(content) = content {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &EXTENSION_OID,
                content,
            ));
    }
    let certificate = params.self_signed(&key).expect("a self-signed certificate");
    let private_key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (certificate.der().clone(), private_key)
}

/// The extension's content, `SignedKey ::= SEQUENCE { publicKey OCTET
/// STRING, signature OCTET STRING }`.
pub fn signed_key(public_key: &[u8], signature: &[u8]) -> Vec<u8> {
    yasna::construct_der(|writer| {
        writer.write_sequence(|writer| {
            writer.next().write_bytes(public_key);
            writer.next().write_bytes(signature);
        });
    })
}
