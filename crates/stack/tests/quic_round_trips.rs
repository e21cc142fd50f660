//! The QUIC rows of the round-trip table, measured exactly: each preset
//! over a netsim datagram link in virtual time, from `dial` to the first
//! byte of the response to a request on a fresh stream.

use std::{net::Ipv4Addr, time::Duration};

use libp2p_identity::Keypair;
use onetrip_netsim::{LinkConfig, Network, Recording};
use onetrip_stack::{Config, Endpoint, Protocol, QuicLayering};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const REQUEST_LEN: usize = 32;

fn ping() -> Protocol {
    Protocol::new("/ipfs/ping/1.0.0").unwrap()
}

/// What the server does about 0-RTT.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Server {
    /// Accepts 0-RTT data throughout.
    Accepts,
    /// Never accepts it: its tickets allow none, so clients do not try.
    Refuses,
    /// Accepted it when it issued the ticket, refuses it on the reconnect
    /// (its configuration changed): the client tries and is rejected.
    Rejects,
}

struct Measurement {
    ttfb: Duration,
    recording: Recording,
    zero_rtt: Option<bool>,
}

async fn exchange(connection: &onetrip_stack::Connection) {
    let mut stream = connection.open_stream(ping()).await.unwrap();
    stream.write_all(&[7; REQUEST_LEN]).await.unwrap();
    stream.flush().await.unwrap();
    let mut first = [0; 1];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(first, [7]);
}

/// Dials a server across a link of one-way delay `delay` (a second time,
/// with `reconnect`), opens a stream, sends a request and waits for the
/// echo's first byte.
async fn measure(
    layering: QuicLayering,
    delay: Duration,
    server: Server,
    reconnect: bool,
) -> Measurement {
    let network = Network::new(LinkConfig::with_delay(delay)).unwrap();
    let server_config = Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_quic_layering(layering)
        .with_accept_0rtt(server != Server::Refuses)
        .with_protocols([ping()]);
    let server = (Endpoint::new(server_config), server);
    let server_id = server.0.local_peer_id();
    let server_socket = network.host(SERVER).bind_udp(4433).unwrap();
    let server_quic = server.0.quic_endpoint(server_socket).unwrap();
    let server_addr = server_quic.local_addr().unwrap();
    let mut listener = server.0.listen_quic(server_quic.clone()).unwrap();
    tokio::spawn(async move {
        while let Ok(mut connection) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok((_, mut stream)) = connection.accept_stream().await {
                    tokio::spawn(async move {
                        let mut request = [0; REQUEST_LEN];
                        if stream.read_exact(&mut request).await.is_ok() {
                            let _ = stream.write_all(&request).await;
                            let _ = stream.shutdown().await;
                        }
                    });
                }
            });
        }
    });

    let client = Endpoint::new(
        Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_quic_layering(layering)
            .with_protocols([ping()]),
    );
    let client_quic = client
        .quic_endpoint(network.host(CLIENT).bind_udp(0).unwrap())
        .unwrap();
    if reconnect {
        let first = client
            .dial_quic(&client_quic, server_addr, Some(server_id))
            .await
            .unwrap();
        exchange(&first).await;
        // The session tickets follow the handshake; let them land.
        tokio::time::sleep(4 * delay).await;
        assert!(client.config().quic().ticket_store().tickets(&server_id) > 0);
        first.close().await.unwrap();
        if server.1 == Server::Rejects {
            server_quic.set_accept_0rtt(false).unwrap();
        }
        tokio::time::sleep(4 * delay).await;
    }

    let offset = network.elapsed();
    let start = Instant::now();
    let connection = client
        .dial_quic(&client_quic, server_addr, Some(server_id))
        .await
        .unwrap();
    exchange(&connection).await;
    let ttfb = start.elapsed();
    assert_eq!(connection.remote_peer_id(), server_id);
    let zero_rtt = connection.quic().unwrap().zero_rtt_accepted().await;
    let recording = network.recorder().recording();
    let recording = recording.since(offset).until(offset + ttfb);
    Measurement {
        ttfb,
        recording,
        zero_rtt,
    }
}

async fn check(delay: Duration) {
    let rtt = 2 * delay;
    let cases = [
        ("quic", QuicLayering::QUIC, Server::Accepts, false, 3, None),
        (
            "quic-optimistic",
            QuicLayering::QUIC_OPTIMISTIC,
            Server::Accepts,
            false,
            2,
            None,
        ),
        (
            "quic-0rtt, first connection",
            QuicLayering::QUIC_0RTT,
            Server::Accepts,
            false,
            2,
            None,
        ),
        (
            "quic-0rtt, reconnect",
            QuicLayering::QUIC_0RTT,
            Server::Accepts,
            true,
            1,
            Some(true),
        ),
        (
            "quic-0rtt, server refuses 0-RTT",
            QuicLayering::QUIC_0RTT,
            Server::Refuses,
            true,
            2,
            None,
        ),
        (
            "quic-0rtt, server rejects 0-RTT",
            QuicLayering::QUIC_0RTT,
            Server::Rejects,
            true,
            2,
            Some(false),
        ),
    ];
    for (name, layering, server, reconnect, round_trips, zero_rtt) in cases {
        let measured = measure(layering, delay, server, reconnect).await;
        assert_eq!(
            measured.ttfb,
            round_trips * rtt,
            "{name} at RTT {rtt:?}:\n{}",
            measured.recording.ladder_text()
        );
        assert_eq!(
            measured.recording.round_trips(),
            round_trips as usize,
            "{name}: flights on the critical path:\n{}",
            measured.recording.ladder_text()
        );
        assert_eq!(measured.zero_rtt, zero_rtt, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn quic_round_trips_at_10_ms() {
    check(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn quic_round_trips_at_50_ms() {
    check(Duration::from_millis(50)).await;
}
