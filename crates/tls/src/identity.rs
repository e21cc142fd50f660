//! A local identity's certificate, and the rustls configurations made
//! from it.

use std::sync::Arc;

use libp2p_identity::{Keypair, PeerId};
use rustls::{SignatureScheme, client::Resumption, crypto::CryptoProvider, sign::CertifiedKey};

use crate::{
    dial::{Dial, Dials},
    error::Error,
    sessions::ServerSessions,
    tickets::{DialTickets, TicketStore},
    verifier::{ClientVerifier, ServerVerifier},
};

/// A local libp2p TLS identity: a self-signed certificate carrying the
/// libp2p Public Key Extension for the key (libp2p specs: tls/tls.md), made
/// once, and the configurations that present it: TLS 1.3 only, client
/// certificates required, no SNI.
///
/// rustls resumes a session only with the very certificate verifier and
/// client certificate resolver instances that made it. Both are made once
/// here and shared by every client configuration of this identity and its
/// clones; a configuration from another `Identity` never resumes this one's
/// sessions.
#[derive(Debug, Clone)]
pub struct Identity {
    peer_id: PeerId,
    provider: Arc<CryptoProvider>,
    resolver: Arc<AlwaysResolves>,
    verifier: Arc<ServerVerifier>,
}

impl Identity {
    /// Makes the certificate for `keypair`, with rustls' `ring` crypto
    /// restricted to TLS 1.3 suites (in ring's order).
    ///
    /// # Errors
    /// [`Error::Generate`] if no certificate can be made for the key,
    /// [`Error::Rustls`] if rustls refuses its key.
    pub fn new(keypair: &Keypair) -> Result<Self, Error> {
        let mut provider = rustls::crypto::ring::default_provider();
        provider
            .cipher_suites
            .retain(|suite| suite.version() == &rustls::version::TLS13);
        let (certificate, private_key) = libp2p_tls::certificate::generate(keypair)
            .map_err(|err| Error::Generate(Arc::new(err)))?;
        let signing_key = provider.key_provider.load_private_key(private_key)?;
        let key = Arc::new(CertifiedKey::new(vec![certificate], signing_key));
        Ok(Identity {
            peer_id: keypair.public().to_peer_id(),
            provider: Arc::new(provider),
            resolver: Arc::new(AlwaysResolves(key)),
            verifier: Arc::new(ServerVerifier {
                dials: Arc::new(Dials::default()),
            }),
        })
    }

    /// The local peer id, which the certificate proves.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// A server configuration offering the `alpn` protocols (see
    /// [`ALPN`](crate::ALPN), [`protocols`](crate::alpn::protocols)), whose
    /// tickets resume the sessions kept in `sessions` (stateful tickets:
    /// single use unless the store is
    /// [`dangerous_reusable`](ServerSessions::dangerous_reusable)). It
    /// accepts no early data: a caller that does sets
    /// `max_early_data_size`, knowing early data can be replayed, and
    /// leaves the sessions where the tickets are single use.
    ///
    /// # Errors
    /// [`Error::Rustls`] if rustls refuses the configuration.
    pub fn server_config(
        &self,
        alpn: Vec<Vec<u8>>,
        sessions: Arc<ServerSessions>,
    ) -> Result<rustls::ServerConfig, Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(ClientVerifier))
            .with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = alpn;
        config.max_early_data_size = 0;
        // No stateless ticketer (rustls' default): a ticket names a
        // session in the store, which is what makes it single use.
        config.session_storage = sessions;
        Ok(config)
    }

    /// A client configuration for one dial, offering the `alpn` protocols:
    /// it refuses any server but `expected` (when given), resumes only
    /// sessions of `expected` from `tickets`, and files the tickets it
    /// receives there under the server's peer id. Start the TLS client
    /// with [`Dial::server_name`], and keep the [`Dial`] until the handshake
    /// completes: it says who the server is, or why it was refused.
    ///
    /// Early data is off; a caller that sends it sets `enable_early_data`.
    ///
    /// # Errors
    /// [`Error::Rustls`] if rustls refuses the configuration.
    pub fn client_config(
        &self,
        alpn: Vec<Vec<u8>>,
        tickets: Arc<TicketStore>,
        expected: Option<PeerId>,
    ) -> Result<(rustls::ClientConfig, Dial), Error> {
        let dial = self.verifier.dials.register(expected);
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier.clone())
            .with_client_cert_resolver(self.resolver.clone());
        config.alpn_protocols = alpn;
        // Peers are known by their peer id, not by a name.
        config.enable_sni = false;
        config.resumption = Resumption::store(Arc::new(DialTickets {
            store: tickets,
            dial: dial.state().clone(),
        }));
        Ok((config, dial))
    }
}

/// Presents our one certificate, client or server side.
#[derive(Debug)]
struct AlwaysResolves(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for AlwaysResolves {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl rustls::client::ResolvesClientCert for AlwaysResolves {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
