//! onetrip-perf against rust-libp2p's libp2p-perf 0.3 (libp2p 0.53): its
//! client against our server and ours against its server, over TCP and
//! QUIC, with exact byte counts.

use std::time::Duration;

use libp2p::{
    Multiaddr, Swarm, SwarmBuilder, futures::StreamExt, noise, swarm::SwarmEvent, tcp, yamux,
};
use libp2p_perf::{RunParams as TheirParams, RunUpdate, client, server};
use onetrip_perf::{
    Progress, RunParams, ServerLimits,
    runner::{self, Target},
};
use onetrip_stack::{Config, Endpoint, Layering, Preset, QuicLayering};

/// A hang fails the test instead of stalling CI.
const DEADLINE: Duration = Duration::from_secs(60);

const UPLOAD: usize = 1_234_567;
const DOWNLOAD: usize = 7_654_321;

async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {DEADLINE:?}"))
}

fn swarm<B: libp2p::swarm::NetworkBehaviour + Default>() -> Swarm<B> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_quic()
        .with_behaviour(|_| B::default())
        .unwrap()
        .with_swarm_config(|config| config.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Their peer id in our libp2p-identity's type.
fn ours(peer: libp2p::PeerId) -> libp2p_identity::PeerId {
    libp2p_identity::PeerId::from_bytes(&peer.to_bytes()).unwrap()
}

fn theirs(peer: libp2p_identity::PeerId) -> libp2p::PeerId {
    libp2p::PeerId::from_bytes(&peer.to_bytes()).unwrap()
}

const TRANSPORTS: [(&str, Preset); 3] = [
    ("/ip4/127.0.0.1/tcp/0", Preset::Tcp(Layering::TCP_ONETRIP)),
    ("/ip4/127.0.0.1/tcp/0", Preset::Tcp(Layering::TCP_CLASSIC)),
    (
        "/ip4/127.0.0.1/udp/0/quic-v1",
        Preset::Quic(QuicLayering::QUIC_OPTIMISTIC),
    ),
];

#[tokio::test]
async fn their_client_against_our_server() {
    for (listen, preset) in TRANSPORTS {
        let config = Config::new(libp2p_identity::Keypair::generate_ed25519())
            .unwrap()
            .with_preset(preset)
            .unwrap()
            .with_protocols([runner::perf_protocol()]);
        let endpoint = Endpoint::new(config);
        let mut listener = endpoint.listen(&listen.parse().unwrap()).await.unwrap();
        let addr: Multiaddr = listener.local_addr().to_string().parse().unwrap();
        let server_id = theirs(endpoint.local_peer_id());
        // Serve one run and report what it moved.
        let serving = tokio::spawn(async move {
            let mut connection = listener.accept().await.unwrap();
            let (_, stream) = connection.accept_stream().await.unwrap();
            let served = onetrip_perf::serve(stream, ServerLimits::default()).await;
            (served, connection)
        });

        let mut client = swarm::<client::Behaviour>();
        client.dial(addr).unwrap();
        bounded("their client's run", async {
            loop {
                match client.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        assert_eq!(peer_id, server_id);
                        client
                            .behaviour_mut()
                            .perf(
                                peer_id,
                                TheirParams {
                                    to_send: UPLOAD,
                                    to_receive: DOWNLOAD,
                                },
                            )
                            .unwrap();
                    }
                    SwarmEvent::Behaviour(client::Event { result, .. }) => match result {
                        Ok(RunUpdate::Final(_)) => return,
                        Ok(RunUpdate::Intermediate(_)) => {}
                        Err(err) => panic!("{preset}: their run failed: {err:?}"),
                    },
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        panic!("{preset}: dial failed: {error}")
                    }
                    _ => {}
                }
            }
        })
        .await;
        let (served, _connection) = bounded("our server's run", serving).await.unwrap();
        let served = served.unwrap_or_else(|err| panic!("{preset}: {err}"));
        assert_eq!(
            (served.uploaded, served.downloaded),
            (UPLOAD as u64, DOWNLOAD as u64),
            "{preset}"
        );
    }
}

#[tokio::test]
async fn our_client_against_their_server() {
    for (listen, preset) in TRANSPORTS {
        let mut server = swarm::<server::Behaviour>();
        server.listen_on(listen.parse().unwrap()).unwrap();
        let addr = bounded("their server listening", async {
            loop {
                if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
                    return address;
                }
            }
        })
        .await;
        let server_id = ours(*server.local_peer_id());
        let driver = tokio::spawn(async move {
            loop {
                server.select_next_some().await;
            }
        });

        let config = Config::new(libp2p_identity::Keypair::generate_ed25519())
            .unwrap()
            .with_preset(preset)
            .unwrap();
        let target = Target {
            endpoint: Endpoint::new(config),
            addr: addr.to_string().parse().unwrap(),
            peer: Some(server_id),
        };
        let progress = Progress::default();
        bounded("our run", async {
            let connection = target.connect().await.unwrap();
            let params = RunParams {
                upload: UPLOAD as u64,
                download: DOWNLOAD as u64,
            };
            runner::request(&connection, params, &progress)
                .await
                .unwrap_or_else(|err| panic!("{preset}: {err}"));
            connection.close().await.unwrap();
        })
        .await;
        assert_eq!(
            (progress.uploaded(), progress.downloaded()),
            (UPLOAD as u64, DOWNLOAD as u64)
        );
        driver.abort();
    }
}
