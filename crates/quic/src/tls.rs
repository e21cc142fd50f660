//! libp2p TLS (libp2p specs: tls/tls.md) for QUIC: certificates from
//! `libp2p-tls`, verifiers that derive the remote [`PeerId`] and say why a
//! certificate is refused, and session tickets kept per server peer id.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use libp2p_identity::{Keypair, PeerId, PublicKey};
use rustls::{
    CertificateError as RustlsCertificateError, DigitallySignedStruct, DistinguishedName,
    NamedGroup, SignatureScheme,
    client::{
        ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    sign::CertifiedKey,
};

use crate::{CertificateError, Error, PeerIdMismatch};

/// The ALPN protocol id (libp2p specs: tls/tls.md, "ALPN").
pub const ALPN: &[u8] = b"libp2p";

/// The libp2p Public Key Extension's OID (libp2p specs: tls/tls.md).
pub const EXTENSION_OID: [u64; 9] = [1, 3, 6, 1, 4, 1, 53594, 1, 1];

/// Prefixed to the certificate's SubjectPublicKeyInfo in the extension's
/// signature (libp2p specs: tls/tls.md).
pub const SIGNATURE_PREFIX: &[u8] = b"libp2p-tls-handshake:";

/// Session tickets kept per server peer id (rustls servers send two per
/// connection by default).
const TICKETS_PER_PEER: usize = 4;

/// Our certificate and key, made once per identity, with the pieces a
/// client configuration must share across dials: rustls resumes a session
/// only with the very verifier and certificate resolver that made it.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    key: Arc<CertifiedKey>,
    resolver: Arc<AlwaysResolves>,
    dials: Arc<Dials>,
    verifier: Arc<ServerVerifier>,
}

impl Identity {
    pub(crate) fn new(keypair: &Keypair, provider: &CryptoProvider) -> Result<Self, Error> {
        let (certificate, private_key) = libp2p_tls::certificate::generate(keypair)
            .map_err(|err| Error::Config(format!("certificate generation: {err}")))?;
        let signing_key = provider
            .key_provider
            .load_private_key(private_key)
            .map_err(|err| Error::Config(format!("certificate key: {err}")))?;
        let key = Arc::new(CertifiedKey::new(vec![certificate], signing_key));
        let dials = Arc::new(Dials::default());
        Ok(Identity {
            resolver: Arc::new(AlwaysResolves(key.clone())),
            verifier: Arc::new(ServerVerifier {
                dials: dials.clone(),
            }),
            key,
            dials,
        })
    }
}

/// rustls' crypto with `ring`, TLS 1.3 suites only.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| suite.version() == &rustls::version::TLS13);
    Arc::new(provider)
}

/// A server configuration: client certificates required, ALPN `libp2p`,
/// TLS 1.3 only; early data accepted only when `accept_0rtt`.
pub(crate) fn server_config(
    identity: &Identity,
    provider: Arc<CryptoProvider>,
    accept_0rtt: bool,
) -> Result<rustls::ServerConfig, Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(Error::Tls)?
        .with_client_cert_verifier(Arc::new(ClientVerifier))
        .with_cert_resolver(Arc::new(AlwaysResolves(identity.key.clone())));
    config.alpn_protocols = vec![ALPN.to_vec()];
    // QUIC allows either none or unlimited early data (RFC 9001, 4.6.1).
    config.max_early_data_size = if accept_0rtt { u32::MAX } else { 0 };
    Ok(config)
}

/// A client configuration for one dial to `expected` (if known): it
/// refuses any other server, records why a certificate was refused, and
/// resumes only sessions of `expected`. The dial is known to the shared
/// verifier and ticket store by the returned server name, unique per dial,
/// registered as long as the [`Dial`] lives.
pub(crate) fn client_config(
    identity: &Identity,
    provider: Arc<CryptoProvider>,
    tickets: Arc<TicketStore>,
    expected: Option<PeerId>,
    early_data: bool,
) -> Result<(rustls::ClientConfig, Arc<Dial>), Error> {
    let dial = identity.dials.register(expected);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(Error::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(identity.verifier.clone())
        .with_client_cert_resolver(identity.resolver.clone());
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_sni = false;
    config.enable_early_data = early_data;
    config.resumption = Resumption::store(Arc::new(PeerTickets {
        store: tickets,
        dials: identity.dials.clone(),
    }));
    Ok((config, dial))
}

/// The dials in progress or alive, by the server name each uses.
#[derive(Debug, Default)]
pub(crate) struct Dials {
    next: AtomicU64,
    active: Mutex<HashMap<String, Weak<Dial>>>,
}

/// One dial: whom it expects, and what the verifier concluded.
#[derive(Debug)]
pub(crate) struct Dial {
    name: String,
    expected: Option<PeerId>,
    verdict: Verdict,
    dials: Weak<Dials>,
}

impl Dials {
    fn register(self: &Arc<Self>, expected: Option<PeerId>) -> Arc<Dial> {
        let name = format!("c{}.libp2p", self.next.fetch_add(1, Ordering::Relaxed));
        let dial = Arc::new(Dial {
            name: name.clone(),
            expected,
            verdict: Verdict::default(),
            dials: Arc::downgrade(self),
        });
        lock(&self.active).insert(name, Arc::downgrade(&dial));
        dial
    }

    fn get(&self, server_name: &ServerName<'_>) -> Option<Arc<Dial>> {
        let ServerName::DnsName(name) = server_name else {
            return None;
        };
        lock(&self.active)
            .get(name.as_ref())
            .and_then(Weak::upgrade)
    }
}

impl Dial {
    /// The server name to connect with.
    pub(crate) fn server_name(&self) -> &str {
        &self.name
    }

    /// What the verifier concluded.
    pub(crate) fn verdict(&self) -> &Verdict {
        &self.verdict
    }
}

impl Drop for Dial {
    fn drop(&mut self) {
        if let Some(dials) = self.dials.upgrade() {
            lock(&dials.active).remove(&self.name);
        }
    }
}

/// The peer id of a certificate chain, checked as libp2p TLS requires:
/// exactly one self-signed certificate carrying a valid extension.
pub(crate) fn verify_chain(
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

/// Why `libp2p-tls` refused a certificate: finds the first rule of the
/// libp2p TLS spec it breaks.
fn diagnose(der: &CertificateDer<'_>) -> CertificateError {
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return CertificateError::Malformed;
    };
    let Ok(oid) = x509_parser::der_parser::oid::Oid::from(&EXTENSION_OID) else {
        return CertificateError::Malformed;
    };
    let Some(extension) = certificate
        .extensions()
        .iter()
        .find(|extension| extension.oid == oid)
    else {
        return CertificateError::MissingExtension;
    };
    // SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }
    let Ok((public_key, signature)) = yasna::decode_der::<(Vec<u8>, Vec<u8>)>(extension.value)
    else {
        return CertificateError::InvalidExtension;
    };
    let Ok(public_key) = PublicKey::try_decode_protobuf(&public_key) else {
        return CertificateError::InvalidExtension;
    };
    let mut signed = SIGNATURE_PREFIX.to_vec();
    signed.extend_from_slice(certificate.public_key().raw);
    if !public_key.verify(&signed, &signature) {
        return CertificateError::BadExtensionSignature;
    }
    // Extension fine: the certificate itself is at fault (validity period,
    // its self-signature, an unknown critical extension).
    CertificateError::Invalid
}

/// The handshake signature, checked against the certificate's key.
fn verify_signature(
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
fn schemes() -> Vec<SignatureScheme> {
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

/// What the client's verifier concluded about the server: its peer id, or
/// why it was refused.
#[derive(Debug, Default)]
pub(crate) struct Verdict(Mutex<Option<Result<PeerId, Error>>>);

impl Verdict {
    fn set(&self, verdict: Result<PeerId, Error>) {
        *lock(&self.0) = Some(verdict);
    }

    /// The verified peer id, if verification succeeded.
    pub(crate) fn peer_id(&self) -> Option<PeerId> {
        lock(&self.0)
            .as_ref()
            .and_then(|v| v.as_ref().ok().copied())
    }

    /// Why the server was refused, if it was.
    pub(crate) fn refusal(&self) -> Option<Error> {
        lock(&self.0)
            .as_ref()
            .and_then(|v| v.as_ref().err().cloned())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug)]
struct ServerVerifier {
    dials: Arc<Dials>,
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
        let verdict = verify_chain(end_entity, intermediates)
            .map_err(Error::Certificate)
            .and_then(|actual| match dial.expected {
                Some(expected) if expected != actual => {
                    Err(Error::PeerIdMismatch(Box::new(PeerIdMismatch {
                        expected,
                        actual,
                    })))
                }
                _ => Ok(actual),
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
        dial.verdict.set(verdict);
        result
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
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
}

#[derive(Debug)]
struct ClientVerifier;

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
        match verify_chain(end_entity, intermediates) {
            Ok(_) => Ok(ClientCertVerified::assertion()),
            Err(err) => {
                tracing::debug!(%err, "client certificate refused");
                Err(rustls::Error::InvalidCertificate(
                    RustlsCertificateError::BadEncoding,
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
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

/// TLS 1.3 session tickets by server peer id, bounded in peers and in
/// tickets per peer; the least recently used peer goes first. Each ticket
/// is used once.
#[derive(Debug)]
pub struct TicketStore {
    capacity: usize,
    inner: Mutex<Tickets>,
}

#[derive(Debug, Default)]
struct Tickets {
    clock: u64,
    peers: HashMap<PeerId, (u64, VecDeque<Tls13ClientSessionValue>)>,
}

impl TicketStore {
    /// A store for up to `capacity` peers.
    pub fn new(capacity: usize) -> Self {
        TicketStore {
            capacity,
            inner: Mutex::new(Tickets::default()),
        }
    }

    /// How many tickets are stored for `peer`.
    pub fn tickets(&self, peer: &PeerId) -> usize {
        lock(&self.inner)
            .peers
            .get(peer)
            .map_or(0, |(_, tickets)| tickets.len())
    }

    /// Forgets every ticket.
    pub fn clear(&self) {
        lock(&self.inner).peers.clear();
    }

    fn insert(&self, peer: PeerId, ticket: Tls13ClientSessionValue) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let now = inner.clock;
        if !inner.peers.contains_key(&peer) && inner.peers.len() >= self.capacity {
            let oldest = inner
                .peers
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(peer, _)| *peer);
            if let Some(oldest) = oldest {
                inner.peers.remove(&oldest);
            }
        }
        let (used, tickets) = inner.peers.entry(peer).or_default();
        *used = now;
        if tickets.len() == TICKETS_PER_PEER {
            tickets.pop_front();
        }
        tickets.push_back(ticket);
    }

    fn take(&self, peer: &PeerId) -> Option<Tls13ClientSessionValue> {
        let mut inner = lock(&self.inner);
        inner.clock += 1;
        let now = inner.clock;
        let (used, tickets) = inner.peers.get_mut(peer)?;
        *used = now;
        // The newest ticket first: it carries the freshest parameters.
        let ticket = tickets.pop_back();
        if tickets.is_empty() {
            inner.peers.remove(peer);
        }
        ticket
    }
}

/// The [`TicketStore`] as rustls sees it: a dial resumes only sessions of
/// the peer it expects, and files new tickets under the peer the verifier
/// accepted. rustls' own store is keyed by server name, which libp2p does
/// not use.
#[derive(Debug)]
struct PeerTickets {
    store: Arc<TicketStore>,
    dials: Arc<Dials>,
}

impl ClientSessionStore for PeerTickets {
    fn set_kx_hint(&self, _server_name: ServerName<'static>, _group: NamedGroup) {}

    fn kx_hint(&self, _server_name: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(
        &self,
        _server_name: ServerName<'static>,
        _value: Tls12ClientSessionValue,
    ) {
    }

    fn tls12_session(&self, _server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _server_name: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let Some(dial) = self.dials.get(&server_name) else {
            return;
        };
        // A resumed session was not verified again: it is the peer whose
        // session we resumed.
        if let Some(peer) = dial.verdict.peer_id().or(dial.expected) {
            self.store.insert(peer, value);
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let expected = self.dials.get(server_name)?.expected?;
        self.store.take(&expected)
    }
}
