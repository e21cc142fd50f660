//! 0-RTT under attack: a client's 0-RTT flight, recorded on a netsim link,
//! is injected again (at once, after the connection is gone, to a second
//! server, after a restart, to a server that stopped accepting 0-RTT,
//! ahead of the original) and the server application reports what it was
//! handed, and which streams came as 0-RTT data. And tickets counted per
//! peer on both sides. Virtual time throughout.
//!
//! Each refusal is checked against the server's session counts too: a
//! replay that reached the server after its connection was gone is
//! counted as a spent (or unknown) ticket, so a test cannot pass because
//! the copies went nowhere. With reusable tickets
//! (`ServerSessions::dangerous_reusable`) the same replay is served again:
//! the last tests show the harness sees the attack.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use libp2p_identity::{Keypair, PeerId};
use onetrip_common::Deadline;
use onetrip_netsim::{LinkConfig, Network, NetworkBuilder, Record};
use onetrip_quic::{
    Config, Connection, Endpoint, ServerSessions, SessionStats, TICKETS_PER_PEER, TicketStats,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

/// One-way delay.
const D: Duration = Duration::from_millis(10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const SECOND_SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
/// Where the attacker sends its copies from; nothing listens there, so
/// the server's answers are lost (the attacker holds no keys anyway).
const ATTACKER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66)), 6666);
const PORT: u16 = 4433;
/// What the server gives a connection to complete its handshake.
const ESTABLISH: Duration = Duration::from_secs(2);
/// Long enough for a connection to close and be forgotten, and for a
/// replayed handshake to give up.
const SETTLE: Duration = Duration::from_secs(10);

/// The request the client sends as 0-RTT data: not idempotent.
const REQUEST: &str = "transfer 100 to bob";

/// A stream the server application was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    remote: PeerId,
    data: String,
    /// What [`onetrip_quic::Stream::is_early`] said.
    early: bool,
}

/// A server application: completes each connection (until [`ESTABLISH`]),
/// reads each stream to its end, reports it, and answers `ok`.
struct App {
    served: mpsc::UnboundedReceiver<Served>,
    /// Connection attempts the endpoint reported.
    attempts: Arc<AtomicUsize>,
    /// Connections handed to the application.
    connections: Arc<AtomicUsize>,
}

impl App {
    fn serve(endpoint: Endpoint) -> Self {
        let (report, served) = mpsc::unbounded_channel();
        let attempts = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let app = App {
            served,
            attempts: attempts.clone(),
            connections: connections.clone(),
        };
        tokio::spawn(async move {
            while let Some(accepting) = endpoint.accept().await {
                attempts.fetch_add(1, Ordering::Relaxed);
                let (report, connections) = (report.clone(), connections.clone());
                tokio::spawn(async move {
                    let deadline = Deadline::after(ESTABLISH);
                    let Ok(connection) = accepting.establish(deadline).await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::Relaxed);
                    while let Ok(stream) = connection.accept_bi().await {
                        let remote = connection.remote_peer_id();
                        tokio::spawn(answer(stream, remote, report.clone()));
                    }
                });
            }
        });
        app
    }

    /// The streams handed over since last asked.
    fn drain(&mut self) -> Vec<Served> {
        std::iter::from_fn(|| self.served.try_recv().ok()).collect()
    }

    /// (attempts, connections) so far.
    fn counts(&self) -> (usize, usize) {
        (
            self.attempts.load(Ordering::Relaxed),
            self.connections.load(Ordering::Relaxed),
        )
    }
}

async fn answer(
    mut stream: onetrip_quic::Stream,
    remote: PeerId,
    report: mpsc::UnboundedSender<Served>,
) {
    let early = stream.is_early();
    let mut data = Vec::new();
    if stream.read_to_end(&mut data).await.is_ok() {
        let data = String::from_utf8_lossy(&data).into_owned();
        let _ = report.send(Served {
            remote,
            data,
            early,
        });
        let _ = stream.write_all(b"ok").await;
        let _ = stream.shutdown().await;
    }
}

/// A request on a new stream, and its answer; whether the stream was
/// opened as 0-RTT data.
async fn request(connection: &Connection, data: &str) -> bool {
    let mut stream = connection.open_bi().await.unwrap();
    let early = stream.is_early();
    stream.write_all(data.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"ok");
    early
}

/// A client, a server that accepts 0-RTT, and the link between them, which
/// records every datagram's bytes.
struct Lab {
    network: Network,
    server_config: Config,
    /// `None` only while it restarts.
    server: Option<Endpoint>,
    app: App,
    client: Endpoint,
}

impl Lab {
    fn new(server_config: Config) -> Self {
        Self::with_links(server_config, Network::builder())
    }

    /// A lab on a network with these links, and the default one for the
    /// rest.
    fn with_links(server_config: Config, links: NetworkBuilder) -> Self {
        let network = links
            .default_link(LinkConfig::with_delay(D))
            .payload_capacity(1 << 20)
            .build()
            .unwrap();
        let server = Endpoint::with_socket(
            network.host(SERVER).bind_udp(PORT).unwrap(),
            server_config.clone(),
        )
        .unwrap();
        let app = App::serve(server.clone());
        let client_config = Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_0rtt(true);
        let client =
            Endpoint::with_socket(network.host(CLIENT).bind_udp(0).unwrap(), client_config)
                .unwrap();
        Lab {
            network,
            server_config,
            server: Some(server),
            app,
            client,
        }
    }

    fn server_addr(&self) -> SocketAddr {
        (SERVER, PORT).into()
    }

    fn server_id(&self) -> PeerId {
        self.server_config.peer_id()
    }

    fn sessions(&self) -> SessionStats {
        self.server_config.server_sessions().stats()
    }

    async fn dial(&self) -> Connection {
        self.dial_to(self.server_addr(), self.server_id()).await
    }

    async fn dial_to(&self, addr: SocketAddr, peer: PeerId) -> Connection {
        self.client
            .connect(addr, Some(peer), Deadline::NONE)
            .await
            .unwrap()
    }

    /// A first connection, which leaves session tickets, then a 0-RTT
    /// reconnect whose request the server takes as 0-RTT data. Returns the
    /// reconnect's first flight, recorded on the link, and injects copies
    /// of it `at_once` (1 ms after it left, while the handshake runs) to
    /// each of these addresses.
    async fn reconnect_and_capture(&mut self, at_once: &[SocketAddr]) -> Vec<Record> {
        let (flight, accepted) = self.reconnect(at_once).await;
        assert!(accepted, "the 0-RTT data was rejected");
        assert_eq!(
            self.app.drain(),
            [self.served("hello", false), self.served(REQUEST, true)],
            "the legitimate exchanges, each once, the reconnect's as 0-RTT data"
        );
        let sessions = self.sessions();
        assert_eq!((sessions.resumed, sessions.reused), (1, 0), "{sessions:?}");
        flight
    }

    /// [`Lab::reconnect_and_capture`], without the checks: the flight, and
    /// whether the server took the reconnect's 0-RTT data.
    async fn reconnect(&mut self, at_once: &[SocketAddr]) -> (Vec<Record>, bool) {
        let first = self.dial().await;
        assert!(!first.is_early(), "no ticket yet: a full handshake");
        assert!(!request(&first, "hello").await);
        // The tickets follow the handshake.
        tokio::time::sleep(4 * D).await;
        first.close();
        tokio::time::sleep(4 * D).await;

        let since = self.network.elapsed();
        let second = self.dial().await;
        assert!(second.is_early(), "no 0-RTT reconnect");
        let exchange = tokio::spawn(async move {
            assert!(request(&second, REQUEST).await, "opened as 0-RTT data");
            let accepted = second.zero_rtt_accepted().await;
            second.close();
            accepted == Some(true)
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let flight = self.client_flight(since);
        for &to in at_once {
            replay(&self.network, &flight, to);
        }
        (flight, exchange.await.unwrap())
    }

    /// What the client sent the server since `since`.
    fn client_flight(&self, since: Duration) -> Vec<Record> {
        let client = self.client.local_addr().unwrap();
        let flight: Vec<Record> = self
            .network
            .recorder()
            .recording()
            .since(since)
            .records
            .into_iter()
            .filter(|record| record.from == client && record.to == self.server_addr())
            .collect();
        assert!(!flight.is_empty(), "nothing recorded");
        assert!(flight.iter().all(|record| record.payload.is_some()));
        flight
    }

    /// A stream from the client.
    fn served(&self, data: &str, early: bool) -> Served {
        Served {
            remote: self.client.config().peer_id(),
            data: data.to_owned(),
            early,
        }
    }

    /// Stops the server and starts it again on the same address, with the
    /// same key and a configuration made anew, as a new process would.
    async fn restart_server(&mut self) {
        let old = self.server.take().expect("a server");
        old.close();
        old.wait_idle().await;
        drop(old);
        // The old endpoint's driver lets go of the socket as it ends.
        let host = self.network.host(SERVER);
        let socket = loop {
            match host.bind_udp(PORT) {
                Ok(socket) => break socket,
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        self.server_config = self.same_key();
        let server = Endpoint::with_socket(socket, self.server_config.clone()).unwrap();
        self.app = App::serve(server.clone());
        self.server = Some(server);
    }

    /// A configuration with the server's key and nothing else of its own,
    /// as another process (or the server restarted) would have.
    fn same_key(&self) -> Config {
        Config::new(self.server_config.keypair().clone())
            .unwrap()
            .with_accept_0rtt(true)
    }

    /// Another server, on the second host at `port`, and its application.
    fn another_server(&self, port: u16, config: Config) -> (SocketAddr, App) {
        let socket = self.network.host(SECOND_SERVER).bind_udp(port).unwrap();
        let endpoint = Endpoint::with_socket(socket, config).unwrap();
        ((SECOND_SERVER, port).into(), App::serve(endpoint))
    }
}

/// Injects each recorded datagram again, from the attacker, to `to`.
fn replay(network: &Network, flight: &[Record], to: SocketAddr) {
    for record in flight {
        let payload = record.payload.as_deref().expect("recorded bytes");
        network.inject_datagram(ATTACKER, to, payload);
    }
}

fn accepting(sessions: ServerSessions) -> Config {
    Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_accept_0rtt(true)
        .with_server_sessions(Arc::new(sessions))
}

/// What replays to the one server achieved: at once (while the connection
/// lives), then after it is closed and forgotten, then a minute later.
struct SameServer {
    /// Streams handed to the application after the legitimate exchange.
    served: Vec<Served>,
    /// Connection attempts, and connections handed to the application,
    /// after it.
    attempts: usize,
    connections: usize,
    sessions: SessionStats,
}

async fn replay_to_the_same_server(sessions: ServerSessions) -> SameServer {
    let mut lab = Lab::new(accepting(sessions));
    let flight = lab.reconnect_and_capture(&[lab.server_addr()]).await;
    let (attempts, connections) = lab.app.counts();
    assert_eq!(
        (attempts, connections),
        (2, 2),
        "the copy injected at once joins the live connection, which drops it"
    );
    for wait in [SETTLE, Duration::from_secs(60)] {
        tokio::time::sleep(wait).await;
        replay(&lab.network, &flight, lab.server_addr());
    }
    tokio::time::sleep(SETTLE).await;
    let (attempts_now, connections_now) = lab.app.counts();
    SameServer {
        served: lab.app.drain(),
        attempts: attempts_now - attempts,
        connections: connections_now - connections,
        sessions: lab.sessions(),
    }
}

/// The copy injected at once joins the live connection, which drops it;
/// the two later ones each start a handshake whose ticket is spent: no
/// resumption, no 0-RTT, and the attacker cannot finish a full handshake.
#[tokio::test(start_paused = true)]
async fn a_replayed_0rtt_flight_is_served_once() {
    let attack = replay_to_the_same_server(ServerSessions::default()).await;
    assert_eq!(attack.served, [], "a replay reached the application");
    assert_eq!(attack.connections, 0);
    assert_eq!(attack.attempts, 2, "the later replays reach the server");
    let sessions = attack.sessions;
    assert_eq!(sessions.reused, 0, "a ticket was accepted twice");
    assert_eq!((sessions.resumed, sessions.spent), (1, 2), "{sessions:?}");
}

/// The harness sees the attack: with reusable tickets the same replays
/// are served, as 0-RTT data, once each.
#[tokio::test(start_paused = true)]
async fn with_reusable_tickets_the_replay_is_served_again() {
    let attack = replay_to_the_same_server(ServerSessions::dangerous_reusable(64)).await;
    assert_eq!(attack.attempts, 2);
    assert_eq!(attack.connections, 2);
    assert_eq!(attack.served.len(), 2, "{:?}", attack.served);
    assert!(
        attack
            .served
            .iter()
            .all(|served| served.data == REQUEST && served.early),
        "{:?}",
        attack.served
    );
    assert_eq!(attack.sessions.reused, 2, "{:?}", attack.sessions);
}

/// Replays at once to a second server built from the same configuration
/// (which shares its session store: the ticket is spent there too), and to
/// one with the same key only (another process: the ticket is unknown).
#[tokio::test(start_paused = true)]
async fn a_replay_to_another_server_is_not_served() {
    let config = accepting(ServerSessions::default());
    let mut lab = Lab::new(config.clone());
    let (shared, mut twin_app) = lab.another_server(PORT, config);
    let other_config = lab.same_key();
    let (apart, mut other_app) = lab.another_server(PORT + 1, other_config.clone());
    let flight = lab.reconnect_and_capture(&[shared, apart]).await;
    tokio::time::sleep(SETTLE).await;
    for to in [shared, apart] {
        replay(&lab.network, &flight, to);
    }
    tokio::time::sleep(SETTLE).await;
    for app in [&mut twin_app, &mut other_app] {
        assert_eq!(app.drain(), []);
        assert_eq!(app.counts(), (2, 0), "two attempts, no connection");
    }
    assert_eq!(lab.app.drain(), []);
    let (shared, apart) = (lab.sessions(), other_config.server_sessions().stats());
    assert_eq!((shared.resumed, shared.reused, shared.spent), (1, 0, 2));
    assert_eq!((apart.resumed, apart.unknown), (0, 2));
}

/// Tickets counted on both sides, per server peer: each reconnect takes a
/// ticket of the peer it dials, that server resumes it once, and none is
/// accepted twice. Streams opened while the reconnect's handshake runs
/// are early on both sides; one opened after it is not.
#[tokio::test(start_paused = true)]
async fn tickets_are_counted_per_peer_and_never_accepted_twice() {
    const RECONNECTS: u64 = 5;
    let mut lab = Lab::new(accepting(ServerSessions::default()));
    let other_config = accepting(ServerSessions::default());
    let (other_addr, mut other_app) = lab.another_server(PORT, other_config.clone());
    let servers = [
        (lab.server_addr(), lab.server_config.clone()),
        (other_addr, other_config),
    ];
    for (addr, config) in &servers {
        let peer = config.peer_id();
        for n in 0..=RECONNECTS {
            let resumed = n > 0;
            let connection = lab.dial_to(*addr, peer).await;
            assert_eq!(connection.is_early(), resumed);
            assert_eq!(request(&connection, "early").await, resumed);
            if resumed {
                assert_eq!(connection.zero_rtt_accepted().await, Some(true));
            }
            assert!(!request(&connection, "late").await);
            // The tickets follow the handshake.
            tokio::time::sleep(4 * D).await;
            connection.close();
        }
    }
    // The first stream of each reconnect came as 0-RTT data.
    let expected: Vec<Served> = (0..=RECONNECTS)
        .flat_map(|n| [lab.served("early", n > 0), lab.served("late", false)])
        .collect();
    assert_eq!(lab.app.drain(), expected);
    assert_eq!(other_app.drain(), expected);

    let tickets = lab.client.config().ticket_store();
    for (_, config) in &servers {
        let client = tickets.stats(&config.peer_id());
        let server = config.server_sessions().stats();
        // rustls servers issue two tickets per handshake.
        assert_eq!(client.received, 2 * (RECONNECTS + 1), "{client:?}");
        assert_eq!(client.used, RECONNECTS, "{client:?}");
        assert_eq!(client.stored, TICKETS_PER_PEER as u64, "{client:?}");
        assert_eq!(
            client.received,
            client.stored + client.used + client.dropped
        );
        assert_eq!(server.issued, client.received, "{server:?}");
        assert_eq!(server.resumed, client.used, "{server:?}");
        assert_eq!(server.reused, 0, "a ticket was accepted twice: {server:?}");
        assert_eq!((server.spent, server.unknown), (0, 0), "{server:?}");
    }
    assert_eq!(tickets.stats(&PeerId::random()), TicketStats::default());
}

/// The limit of single-use tickets: an attacker who delivers the flight
/// to a second server sharing the store before the original arrives wins
/// the ticket. The legitimate handshake then finds it spent, its 0-RTT data
/// is rejected, and the client sends the request again after the
/// handshake: the request is served twice, once as early data (the copy)
/// and once not. Only the early flag tells them apart, which is why a
/// protocol must refuse a request that is not idempotent on an early
/// stream: then the request is carried out once.
#[tokio::test(start_paused = true)]
async fn a_replay_that_wins_the_race_is_served_as_early_data_only() {
    let config = accepting(ServerSessions::default());
    // The attacker is 1 ms from the second server; the client 10 ms from
    // the first.
    let fast = Network::builder().link(
        ATTACKER.ip(),
        SECOND_SERVER.into(),
        LinkConfig::with_delay(Duration::from_millis(1)),
    );
    let mut lab = Lab::with_links(config.clone(), fast);
    let (twin_addr, mut twin_app) = lab.another_server(PORT, config);
    let (_, accepted) = lab.reconnect(&[twin_addr]).await;
    tokio::time::sleep(SETTLE).await;
    assert!(!accepted, "the legitimate 0-RTT data lost the ticket");
    let copy = twin_app.drain();
    let legitimate = lab.app.drain();
    assert_eq!(copy, [lab.served(REQUEST, true)]);
    assert_eq!(
        legitimate,
        [lab.served("hello", false), lab.served(REQUEST, false)]
    );
    let sessions = lab.sessions();
    assert_eq!((sessions.resumed, sessions.reused), (1, 0), "{sessions:?}");
    assert_eq!(sessions.spent, 1, "{sessions:?}");
    // Served once where it is not early.
    let not_early = copy
        .iter()
        .chain(&legitimate)
        .filter(|served| served.data == REQUEST && !served.early)
        .count();
    assert_eq!(not_early, 1);
}

/// Replays to the server after it restarted: its sessions died with it,
/// and the ticket is unknown.
#[tokio::test(start_paused = true)]
async fn a_replay_after_a_restart_is_not_served() {
    let mut lab = Lab::new(accepting(ServerSessions::default()));
    let flight = lab.reconnect_and_capture(&[]).await;
    lab.restart_server().await;
    replay(&lab.network, &flight, lab.server_addr());
    tokio::time::sleep(SETTLE).await;
    assert_eq!(lab.app.drain(), []);
    assert_eq!(lab.app.counts(), (1, 0));
    let sessions = lab.sessions();
    assert_eq!((sessions.resumed, sessions.unknown), (0, 1));
    // The client's own tickets died too: its next request is rejected as
    // 0-RTT data, sent again after the handshake, and served once, not
    // early.
    let again = lab.dial().await;
    request(&again, "after the restart").await;
    assert_eq!(again.zero_rtt_accepted().await, Some(false));
    assert_eq!(lab.app.drain(), [lab.served("after the restart", false)]);
}

/// A server that stops accepting 0-RTT hands no early data to its
/// application, even when its tickets are reusable and a replay resumes
/// the session: rustls discards the 0-RTT data, and the connection waits
/// for a handshake the attacker cannot finish.
#[tokio::test(start_paused = true)]
async fn a_server_that_refuses_0rtt_hands_no_early_data_over() {
    let mut lab = Lab::new(accepting(ServerSessions::dangerous_reusable(64)));
    let flight = lab.reconnect_and_capture(&[]).await;
    let server = lab.server.clone().expect("a server");
    server.set_accept_0rtt(false).unwrap();
    tokio::time::sleep(SETTLE).await;
    replay(&lab.network, &flight, lab.server_addr());
    tokio::time::sleep(SETTLE).await;
    assert_eq!(lab.app.drain(), []);
    let sessions = lab.sessions();
    assert_eq!(sessions.reused, 1, "the replay resumed: {sessions:?}");
    // The client's next 0-RTT request is rejected, sent again after the
    // handshake, and served once, not early.
    let again = lab.dial().await;
    assert!(again.is_early());
    request(&again, "refused early").await;
    assert_eq!(again.zero_rtt_accepted().await, Some(false));
    assert_eq!(lab.app.drain(), [lab.served("refused early", false)]);
}
