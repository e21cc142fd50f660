//! The certificate verifiers: each derives the remote peer id from its
//! certificate (libp2p specs: tls/tls.md); the server verifier (on the
//! client) also refuses any peer but the one dialed.

use std::sync::Arc;

use onetrip_common::PeerIdMismatch;
use rustls::{
    CertificateError as RustlsCertificateError, DigitallySignedStruct, DistinguishedName,
    PeerIncompatible, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
};

use crate::{
    certificate::{peer_id, schemes, verify_signature},
    dial::Dials,
    error::Error,
};

/// The handshake signature checks, the same for both verifiers: TLS 1.3
/// only, against the key of the certificate the peer presented.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            // libp2p TLS is TLS 1.3 only (libp2p specs: tls/tls.md); the
            // configurations offer nothing older, so this is never reached.
            Err(rustls::Error::PeerIncompatible(
                PeerIncompatible::Tls12NotOfferedOrEnabled,
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_signature(cert, message, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            schemes()
        }
    };
}

/// Verifies servers for every dial of one identity, and records its
/// verdict with the dial.
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    pub(crate) dials: Arc<Dials>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Every dial registers its name; an unknown one cannot be ours.
        let Some(dial) = self.dials.get(server_name) else {
            return Err(rustls::Error::General("unknown dial".into()));
        };
        let verdict = peer_id(end_entity, intermediates)
            .map_err(Error::from)
            .and_then(|actual| {
                PeerIdMismatch::check(dial.expected(), actual)?;
                Ok(actual)
            });
        let result = match &verdict {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            Err(Error::PeerIdMismatch(_)) => Err(rustls::Error::InvalidCertificate(
                RustlsCertificateError::ApplicationVerificationFailure,
            )),
            Err(_) => Err(rustls::Error::InvalidCertificate(
                RustlsCertificateError::BadEncoding,
            )),
        };
        dial.set_verdict(verdict);
        result
    }

    handshake_signatures!();
}

/// Verifies clients: a certificate is required, and any valid libp2p
/// certificate is accepted (a server expects no particular peer).
#[derive(Debug)]
pub(crate) struct ClientVerifier;

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match peer_id(end_entity, intermediates) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(err) => {
                tracing::debug!(%err, "client certificate refused");
                Err(rustls::Error::InvalidCertificate(
                    RustlsCertificateError::BadEncoding,
                ))
            }
        }
    }

    handshake_signatures!();
}
