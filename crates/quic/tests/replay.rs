//! 0-RTT under attack: a client's 0-RTT flight, recorded on a netsim link,
//! is injected again (at once, after the connection is gone, to a second
//! server, after a restart) and the server application reports what it
//! was handed. Virtual time throughout.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use libp2p_identity::{Keypair, PeerId};
use onetrip_common::Deadline;
use onetrip_netsim::{LinkConfig, Network, Record};
use onetrip_quic::{Config, Connection, Endpoint};
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
/// the server's answers are lost.
const ATTACKER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66)), 6666);
const PORT: u16 = 4433;
/// What the server gives a connection to complete its handshake.
const ESTABLISH: Duration = Duration::from_secs(2);
/// Long enough for a connection to close and be forgotten, and for a
/// replayed handshake to give up.
const SETTLE: Duration = Duration::from_secs(10);

/// The request the client sends as 0-RTT data.
const REQUEST: &[u8] = b"transfer 100 to bob";

/// What the server application was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    remote: PeerId,
    data: String,
}

/// A server application: completes each connection (until [`ESTABLISH`]),
/// reads each stream to its end, reports it, and answers `ok`.
fn serve(endpoint: Endpoint) -> mpsc::UnboundedReceiver<Served> {
    let (report, served) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(accepting) = endpoint.accept().await {
            let report = report.clone();
            tokio::spawn(async move {
                let Ok(connection) = accepting.establish(Deadline::after(ESTABLISH)).await else {
                    return;
                };
                while let Ok(mut stream) = connection.accept_bi().await {
                    let report = report.clone();
                    let remote = connection.remote_peer_id();
                    tokio::spawn(async move {
                        let mut data = Vec::new();
                        if stream.read_to_end(&mut data).await.is_ok() {
                            let data = String::from_utf8_lossy(&data).into_owned();
                            let _ = report.send(Served { remote, data });
                            let _ = stream.write_all(b"ok").await;
                            let _ = stream.shutdown().await;
                        }
                    });
                }
            });
        }
    });
    served
}

/// Everything the application has been handed so far.
fn drain(served: &mut mpsc::UnboundedReceiver<Served>) -> Vec<Served> {
    std::iter::from_fn(|| served.try_recv().ok()).collect()
}

/// A request on a new stream, and its answer.
async fn request(connection: &Connection, data: &[u8]) {
    let mut stream = connection.open_bi().await.unwrap();
    stream.write_all(data).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"ok");
}

/// A client, a server that accepts 0-RTT, and the link between them, which
/// records every datagram's bytes.
struct Lab {
    network: Network,
    server_key: Keypair,
    server_config: Config,
    /// `None` only while it restarts.
    server: Option<Endpoint>,
    served: mpsc::UnboundedReceiver<Served>,
    client: Endpoint,
}

impl Lab {
    fn new(server_config: Config) -> Self {
        let network = Network::builder()
            .default_link(LinkConfig::with_delay(D))
            .payload_capacity(1 << 20)
            .build()
            .unwrap();
        let server = Endpoint::with_socket(
            network.host(SERVER).bind_udp(PORT).unwrap(),
            server_config.clone(),
        )
        .unwrap();
        let served = serve(server.clone());
        let client_config = Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_0rtt(true);
        let client =
            Endpoint::with_socket(network.host(CLIENT).bind_udp(0).unwrap(), client_config)
                .unwrap();
        Lab {
            network,
            server_key: server_config.keypair().clone(),
            server_config,
            server: Some(server),
            served,
            client,
        }
    }

    fn server_addr(&self) -> SocketAddr {
        (SERVER, PORT).into()
    }

    fn server_id(&self) -> PeerId {
        self.server_key.public().to_peer_id()
    }

    fn client_id(&self) -> PeerId {
        self.client.config().peer_id()
    }

    async fn dial(&self) -> Connection {
        self.client
            .connect(self.server_addr(), Some(self.server_id()), Deadline::NONE)
            .await
            .unwrap()
    }

    /// A first connection, which leaves session tickets, then a 0-RTT
    /// reconnect whose request the server takes as 0-RTT data. Returns the
    /// reconnect's first flight, recorded on the link, with the copies the
    /// attacker injected `at_once` (1 ms after it left, while the
    /// handshake runs) to each of these addresses.
    async fn reconnect_and_capture(&mut self, at_once: &[SocketAddr]) -> Vec<Record> {
        let first = self.dial().await;
        assert!(!first.is_early(), "no ticket yet: a full handshake");
        request(&first, b"hello").await;
        // The tickets follow the handshake.
        tokio::time::sleep(4 * D).await;
        first.close();
        tokio::time::sleep(4 * D).await;

        let since = self.network.elapsed();
        let second = self.dial().await;
        assert!(second.is_early(), "no 0-RTT reconnect");
        let exchange = tokio::spawn(async move {
            request(&second, REQUEST).await;
            assert_eq!(second.zero_rtt_accepted().await, Some(true));
            second.close();
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let flight = self.client_flight(since);
        for &to in at_once {
            replay(&self.network, &flight, to);
        }
        exchange.await.unwrap();
        assert_eq!(
            drain(&mut self.served),
            [self.served(b"hello"), self.served(REQUEST)],
            "the legitimate exchanges, each once"
        );
        flight
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

    fn served(&self, data: &[u8]) -> Served {
        Served {
            remote: self.client_id(),
            data: String::from_utf8_lossy(data).into_owned(),
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
        self.server_config = Config::new(self.server_key.clone())
            .unwrap()
            .with_accept_0rtt(true);
        let server = Endpoint::with_socket(socket, self.server_config.clone()).unwrap();
        self.served = serve(server.clone());
        self.server = Some(server);
    }
}

/// Injects each recorded datagram again, from the attacker, to `to`.
fn replay(network: &Network, flight: &[Record], to: SocketAddr) {
    for record in flight {
        let payload = record.payload.as_deref().expect("recorded bytes");
        network.inject_datagram(ATTACKER, to, payload);
    }
}

fn accepting() -> Config {
    Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_accept_0rtt(true)
}

/// Replays to the one server: at once (while the connection lives), then
/// after it is closed and forgotten, then a minute later. The request
/// reaches the application once, from the legitimate client.
#[tokio::test(start_paused = true)]
async fn a_replayed_0rtt_flight_is_served_once() {
    let mut lab = Lab::new(accepting());
    let flight = lab.reconnect_and_capture(&[lab.server_addr()]).await;
    for wait in [SETTLE, Duration::from_secs(60)] {
        tokio::time::sleep(wait).await;
        replay(&lab.network, &flight, lab.server_addr());
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(drain(&mut lab.served), []);
}

/// Replays at once to a second server built from the same configuration
/// (which shares its session state), and to one with the same key only
/// (another process).
#[tokio::test(start_paused = true)]
async fn a_replay_to_another_server_is_not_served() {
    let config = accepting();
    let mut lab = Lab::new(config.clone());
    let shared: SocketAddr = (SECOND_SERVER, PORT).into();
    let apart: SocketAddr = (SECOND_SERVER, PORT + 1).into();
    let twin = Endpoint::with_socket(
        lab.network.host(SECOND_SERVER).bind_udp(PORT).unwrap(),
        config,
    )
    .unwrap();
    let other = Endpoint::with_socket(
        lab.network.host(SECOND_SERVER).bind_udp(PORT + 1).unwrap(),
        Config::new(lab.server_key.clone())
            .unwrap()
            .with_accept_0rtt(true),
    )
    .unwrap();
    let (mut twin_served, mut other_served) = (serve(twin), serve(other));
    let flight = lab.reconnect_and_capture(&[shared, apart]).await;
    tokio::time::sleep(SETTLE).await;
    for to in [shared, apart] {
        replay(&lab.network, &flight, to);
    }
    tokio::time::sleep(SETTLE).await;
    assert_eq!(drain(&mut twin_served), []);
    assert_eq!(drain(&mut other_served), []);
    assert_eq!(drain(&mut lab.served), []);
}

/// Replays to the server after it restarted: its session state died with
/// it.
#[tokio::test(start_paused = true)]
async fn a_replay_after_a_restart_is_not_served() {
    let mut lab = Lab::new(accepting());
    let flight = lab.reconnect_and_capture(&[]).await;
    lab.restart_server().await;
    replay(&lab.network, &flight, lab.server_addr());
    tokio::time::sleep(SETTLE).await;
    assert_eq!(drain(&mut lab.served), []);
    // The client's own tickets died too: its next request is not early,
    // and arrives once.
    let again = lab.dial().await;
    request(&again, b"after the restart").await;
    assert_eq!(again.zero_rtt_accepted().await, Some(false));
    assert_eq!(drain(&mut lab.served), [lab.served(b"after the restart")]);
}
