//! onetrip-tls without a transport: rustls handshakes in memory between
//! libp2p identities, certificates that break the spec, tickets per peer,
//! and the fuzz driver.

use std::sync::Arc;

use libp2p_identity::{Keypair, PeerId};
use onetrip_testkit::certificates::{Extension, self_signed, signed_key};
use onetrip_tls::{ALPN, CertificateError, Dial, Error, Identity, TicketStore, alpn};
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
    tickets: Arc<TicketStore>,
}

impl Peers {
    fn new() -> Self {
        let server = identity();
        Peers {
            client: identity(),
            server_config: Arc::new(server.server_config(libp2p()).unwrap()),
            server,
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
    // The ticket was taken; the resumed session brought new ones.
    assert!(peers.tickets.tickets(&server_id) <= stored - 1 + 2);

    // A dial that names no peer never resumes.
    let (_, third) = peers.dial(None);
    assert_eq!(third.unwrap().0.handshake_kind(), Some(HandshakeKind::Full));
}

#[test]
fn the_muxer_is_chosen_in_alpn() {
    let client = identity();
    let server = identity();
    let muxers = alpn::protocols(["/yamux/1.0.0"]);
    let server_config = server.server_config(muxers.clone()).unwrap();
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
