//! onetrip-tls without a transport: rustls handshakes in memory between
//! libp2p identities, certificates that break the spec, tickets per peer,
//! and the fuzz driver.

use std::sync::Arc;

use libp2p_identity::{Keypair, PeerId};
use onetrip_testkit::certificates::{Extension, self_signed, signed_key};
use onetrip_tls::{
    ALPN, CertificateError, Dial, Error, Identity, ServerSessions, TicketStore, alpn,
};
use rustls::{
    ClientConnection, HandshakeKind, ServerConnection,
    pki_types::{CertificateDer, ServerName},
};

fn identity() -> Identity {
    Identity::new(&Keypair::generate_ed25519()).unwrap()
}

fn libp2p() -> Vec<Vec<u8>> {
    vec![ALPN.to_vec()]
}

/// Moves every pending record from one side to the other.
fn deliver(
    from: &mut rustls::Connection,
    to: &mut rustls::Connection,
) -> Result<bool, rustls::Error> {
    let mut flight = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut flight).unwrap();
    }
    let mut rest = &flight[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
        to.process_new_packets()?;
    }
    Ok(!flight.is_empty())
}

/// Runs a handshake (and the tickets after it) to its end, or to the first
/// error either side raises.
fn handshake(
    client: ClientConnection,
    server: ServerConnection,
) -> Result<(rustls::Connection, rustls::Connection), rustls::Error> {
    let (mut client, mut server) = (client.into(), server.into());
    loop {
        let sent = deliver(&mut client, &mut server)?;
        let answered = deliver(&mut server, &mut client)?;
        if !sent && !answered {
            return Ok((client, server));
        }
    }
}

struct Peers {
    client: Identity,
    server: Identity,
    server_config: Arc<rustls::ServerConfig>,
    sessions: Arc<ServerSessions>,
    tickets: Arc<TicketStore>,
}

impl Peers {
    fn new() -> Self {
        Self::with_sessions(ServerSessions::default(), 0)
    }

    /// A server keeping its sessions in `sessions` and accepting up to
    /// `max_early_data` bytes of early data.
    fn with_sessions(sessions: ServerSessions, max_early_data: u32) -> Self {
        let server = identity();
        let sessions = Arc::new(sessions);
        let mut server_config = server.server_config(libp2p(), sessions.clone()).unwrap();
        server_config.max_early_data_size = max_early_data;
        Peers {
            client: identity(),
            server_config: Arc::new(server_config),
            server,
            sessions,
            tickets: Arc::new(TicketStore::default()),
        }
    }

    /// One dial from the client to the server.
    fn dial(
        &self,
        expected: Option<PeerId>,
    ) -> (
        Dial,
        Result<(rustls::Connection, rustls::Connection), rustls::Error>,
    ) {
        let (config, dial) = self
            .client
            .client_config(libp2p(), self.tickets.clone(), expected)
            .unwrap();
        let name = ServerName::try_from(dial.server_name().to_owned()).unwrap();
        let client = ClientConnection::new(Arc::new(config), name).unwrap();
        let server = ServerConnection::new(self.server_config.clone()).unwrap();
        (dial, handshake(client, server))
    }
}

#[test]
fn both_sides_learn_each_others_peer_id() {
    let peers = Peers::new();
    let (dial, result) = peers.dial(None);
    let (client, server) = result.unwrap();
    assert_eq!(dial.peer_id(), Some(peers.server.peer_id()));
    assert!(dial.refusal().is_none());
    let chain = server.peer_certificates().unwrap();
    assert_eq!(
        onetrip_tls::peer_id(&chain[0], &chain[1..]),
        Ok(peers.client.peer_id())
    );
    assert_eq!(client.alpn_protocol(), Some(ALPN));
}

#[test]
fn another_peer_than_the_one_dialed_is_refused() {
    let peers = Peers::new();
    let impostor = PeerId::random();
    let (dial, result) = peers.dial(Some(impostor));
    assert!(result.is_err());
    assert_eq!(dial.peer_id(), None);
    match dial.refusal() {
        Some(Error::PeerIdMismatch(mismatch)) => {
            assert_eq!(mismatch.expected, impostor);
            assert_eq!(mismatch.actual, peers.server.peer_id());
        }
        other => panic!("expected a peer id mismatch, got {other:?}"),
    }
    // Nothing was filed for either peer.
    assert_eq!(peers.tickets.tickets(&peers.server.peer_id()), 0);
}

#[test]
fn a_reconnect_resumes_a_ticket_of_the_expected_peer() {
    let peers = Peers::new();
    let server_id = peers.server.peer_id();
    let (_, first) = peers.dial(None);
    let (client, _) = first.unwrap();
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full));
    let stored = peers.tickets.tickets(&server_id);
    assert!(stored > 0, "no ticket filed under the server's peer id");

    let (dial, second) = peers.dial(Some(server_id));
    let (client, _) = second.unwrap();
    assert_eq!(client.handshake_kind(), Some(HandshakeKind::Resumed));
    // No certificate came: the server is the peer whose session resumed.
    assert_eq!(dial.peer_id(), Some(server_id));
    // One ticket was taken, and resumed once; the resumed session brought
    // new ones.
    let client = peers.tickets.stats(&server_id);
    assert_eq!((client.received, client.used), (stored as u64 + 2, 1));
    assert_eq!(peers.sessions.stats().resumed, 1);

    // A dial that names no peer never resumes.
    let (_, third) = peers.dial(None);
    assert_eq!(third.unwrap().0.handshake_kind(), Some(HandshakeKind::Full));
}

impl Peers {
    /// A resuming client's first flight: ClientHello and [`EARLY`] as early
    /// data (TLS 1.3 over any transport: TCP's `/tls/1.0.0`, here in
    /// memory).
    fn early_flight(&self) -> Vec<u8> {
        let (mut config, dial) = self
            .client
            .client_config(libp2p(), self.tickets.clone(), Some(self.server.peer_id()))
            .unwrap();
        config.enable_early_data = true;
        let name = ServerName::try_from(dial.server_name().to_owned()).unwrap();
        let mut client = ClientConnection::new(Arc::new(config), name).unwrap();
        let mut early = client.early_data().expect("a ticket allowing early data");
        std::io::Write::write_all(&mut early, EARLY.as_bytes()).unwrap();
        let mut flight = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut flight).unwrap();
        }
        flight
    }

    /// Feeds `flight` to a new server connection: the early data it hands
    /// its application, if it accepted any.
    fn serve(&self, flight: &[u8]) -> Option<String> {
        let mut server = ServerConnection::new(self.server_config.clone()).unwrap();
        let mut rest = flight;
        while !rest.is_empty() {
            server.read_tls(&mut rest).unwrap();
            server.process_new_packets().unwrap();
        }
        let mut data = String::new();
        std::io::Read::read_to_string(&mut server.early_data()?, &mut data).unwrap();
        Some(data)
    }

    /// A full handshake with a server accepting early data, then a
    /// resuming client's first flight.
    fn capture_early_flight(&self) -> Vec<u8> {
        self.dial(None).1.unwrap();
        self.early_flight()
    }
}

/// The request a client sends as TLS early data.
const EARLY: &str = "transfer 100 to bob";

const MAX_EARLY_DATA: u32 = 16 * 1024;

#[test]
fn replayed_tls_early_data_is_refused() {
    let peers = Peers::with_sessions(ServerSessions::default(), MAX_EARLY_DATA);
    let flight = peers.capture_early_flight();
    assert_eq!(peers.serve(&flight).as_deref(), Some(EARLY));
    // The same bytes again, as often as an attacker likes: the ticket is
    // spent, the early data refused.
    for _ in 0..3 {
        assert_eq!(peers.serve(&flight), None);
    }
    let stats = peers.sessions.stats();
    assert_eq!((stats.resumed, stats.reused, stats.spent), (1, 0, 3));
}

#[test]
fn with_reusable_sessions_replayed_tls_early_data_is_served_again() {
    // What the test above would see if tickets were not single use: the
    // replay is served.
    let peers = Peers::with_sessions(ServerSessions::dangerous_reusable(16), MAX_EARLY_DATA);
    let flight = peers.capture_early_flight();
    for _ in 0..3 {
        assert_eq!(peers.serve(&flight).as_deref(), Some(EARLY));
    }
    let stats = peers.sessions.stats();
    assert_eq!((stats.resumed, stats.reused, stats.spent), (1, 2, 0));
}

#[test]
fn a_server_that_accepts_no_early_data_hands_none_over() {
    // Even with reusable sessions: a server configured without early data
    // never hands it to its application.
    let mut peers = Peers::with_sessions(ServerSessions::dangerous_reusable(16), MAX_EARLY_DATA);
    let flight = peers.capture_early_flight();
    let mut refusing = Arc::unwrap_or_clone(peers.server_config.clone());
    refusing.max_early_data_size = 0;
    peers.server_config = Arc::new(refusing);
    for _ in 0..2 {
        assert_eq!(peers.serve(&flight), None);
    }
    // It resumed the session, without the early data.
    let stats = peers.sessions.stats();
    assert_eq!((stats.resumed, stats.reused), (1, 1));
}

#[test]
fn tickets_are_counted_per_peer_and_never_accepted_twice() {
    let peers = Peers::new();
    let server_id = peers.server.peer_id();
    let (_, first) = peers.dial(None);
    first.unwrap();
    const RECONNECTS: u64 = 6;
    for _ in 0..RECONNECTS {
        let (_, again) = peers.dial(Some(server_id));
        let (client, _) = again.unwrap();
        assert_eq!(client.handshake_kind(), Some(HandshakeKind::Resumed));
    }
    // rustls servers issue two tickets per handshake; the client keeps
    // four per peer, and takes one per reconnect.
    let client = peers.tickets.stats(&server_id);
    let server = peers.sessions.stats();
    assert_eq!(client.received, 2 * (RECONNECTS + 1));
    assert_eq!(client.used, RECONNECTS);
    assert_eq!(
        client.received,
        client.stored + client.used + client.dropped
    );
    assert_eq!(server.issued, client.received);
    assert_eq!(server.resumed, client.used, "{server:?}");
    assert_eq!((server.reused, server.spent, server.unknown), (0, 0, 0));
    assert_eq!(
        peers.tickets.stats(&PeerId::random()),
        onetrip_tls::TicketStats::default()
    );
}

#[test]
fn the_muxer_is_chosen_in_alpn() {
    let client = identity();
    let server = identity();
    let muxers = alpn::protocols(["/yamux/1.0.0"]);
    let server_config = server
        .server_config(muxers.clone(), Arc::new(ServerSessions::default()))
        .unwrap();
    let (config, dial) = client
        .client_config(muxers, Arc::new(TicketStore::default()), None)
        .unwrap();
    let name = ServerName::try_from(dial.server_name().to_owned()).unwrap();
    let (client, _) = handshake(
        ClientConnection::new(Arc::new(config), name).unwrap(),
        ServerConnection::new(Arc::new(server_config)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        alpn::chosen_muxer(client.alpn_protocol()),
        Some(&b"/yamux/1.0.0"[..])
    );
}

#[test]
fn each_broken_rule_has_its_error() {
    let (plain, _) = self_signed(Extension::None);
    assert_eq!(
        onetrip_tls::peer_id(&plain, &[]),
        Err(CertificateError::MissingExtension)
    );
    let (garbled, _) = self_signed(Extension::Raw(vec![0x30, 0x03, 0x01, 0x02, 0x03]));
    assert_eq!(
        onetrip_tls::peer_id(&garbled, &[]),
        Err(CertificateError::InvalidExtension)
    );
    let identity = Keypair::generate_ed25519();
    let wrong = identity.sign(b"libp2p-tls-handshake:not this key").unwrap();
    let (forged, _) = self_signed(Extension::Raw(signed_key(
        &identity.public().encode_protobuf(),
        &wrong,
    )));
    assert_eq!(
        onetrip_tls::peer_id(&forged, &[]),
        Err(CertificateError::BadExtensionSignature)
    );
    assert_eq!(
        onetrip_tls::peer_id(&CertificateDer::from(&b"junk"[..]), &[]),
        Err(CertificateError::Malformed)
    );
    assert_eq!(
        onetrip_tls::peer_id(&plain, std::slice::from_ref(&plain)),
        Err(CertificateError::NotSingle)
    );
}

#[test]
fn a_valid_extension_made_by_hand_proves_its_peer() {
    // Built apart from the code under test: proof that the refusals above
    // are about what they say.
    let identity = Keypair::generate_ed25519();
    let (certificate, _) = self_signed(Extension::Valid(&identity));
    assert_eq!(
        onetrip_tls::peer_id(&certificate, &[]),
        Ok(identity.public().to_peer_id())
    );
}

/// The certificate fuzz target's driver, on random and on mutated
/// certificates.
mod fuzz_driver {
    use onetrip_testkit::certificates::{Extension, self_signed, signed_key};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            onetrip_tls::fuzzing::certificate(&data);
        }

        #[test]
        fn mutated_certificates(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let (certificate, _) = self_signed(Extension::Raw(signed_key(&[8, 1, 18, 0], &[1, 2])));
            let mut der = certificate.to_vec();
            let i = index.index(der.len());
            der[i] = byte;
            onetrip_tls::fuzzing::certificate(&der);
        }
    }
}
