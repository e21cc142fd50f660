//! The round-trip table, measured exactly: each preset over a netsim stream
//! link in virtual time, from `dial` to the first byte of the response to a
//! request on a fresh stream.

use std::{net::Ipv4Addr, time::Duration};

use futures_util::StreamExt;
use libp2p_identity::Keypair;
use onetrip_netsim::{LinkConfig, Network, Recording};
use onetrip_stack::{Config, Endpoint, Layering, Protocol, tcp_multiaddr};
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

/// What one dial measured.
struct Measurement {
    /// From `dial` to the first response byte.
    ttfb: Duration,
    /// The link's record up to then.
    recording: Recording,
    /// Whether the muxer was chosen inside the handshake.
    early_muxer: bool,
}

/// Dials a listener of the same layering across a link of one-way delay
/// `delay`, opens a stream, sends a request and waits for the echo's first
/// byte.
async fn measure(layering: Layering, delay: Duration) -> Measurement {
    let network = Network::new(LinkConfig::with_delay(delay)).unwrap();
    let config = |layering| {
        Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_layering(layering)
            .unwrap()
            .with_protocols([ping()])
    };
    let server = Endpoint::new(config(layering));
    let server_id = server.local_peer_id();
    let sim_listener = network.host(SERVER).listen(4001).unwrap();
    let server_addr = sim_listener.local_addr();
    let incoming = futures_util::stream::unfold(sim_listener, |mut listener| async move {
        let accepted = listener
            .accept()
            .await
            .map(|(io, peer)| (io, tcp_multiaddr(peer)));
        Some((accepted, listener))
    });
    let mut listener = server.listen_on(incoming.boxed(), tcp_multiaddr(server_addr));
    let serve = tokio::spawn(async move {
        let mut connection = listener.accept().await.unwrap();
        let (_, mut stream) = connection.accept_stream().await.unwrap();
        let mut request = [0; REQUEST_LEN];
        stream.read_exact(&mut request).await.unwrap();
        stream.write_all(&request).await.unwrap();
        stream.flush().await.unwrap();
        // Keep the connection until the client is done.
        let _ = connection.accept_stream().await;
    });

    let client = Endpoint::new(config(layering));
    let start = Instant::now();
    let io = network.host(CLIENT).connect(server_addr).await.unwrap();
    let connection = client
        .dial_io(io, tcp_multiaddr(server_addr), Some(server_id))
        .await
        .unwrap();
    let mut stream = connection.open_stream(ping()).await.unwrap();
    stream.write_all(&[7; REQUEST_LEN]).await.unwrap();
    stream.flush().await.unwrap();
    let mut first = [0; 1];
    stream.read_exact(&mut first).await.unwrap();
    let ttfb = start.elapsed();
    assert_eq!(first, [7]);

    let measurement = Measurement {
        ttfb,
        recording: network.recorder().recording().until(ttfb),
        early_muxer: connection.early_muxer(),
    };
    connection.close().await.unwrap();
    serve.await.unwrap();
    measurement
}

const TABLE: [(&str, u32, bool); 5] = [
    ("tcp-classic", 6, false),
    ("tcp-optimistic-app", 5, false),
    ("tcp-libp2p-default", 4, false),
    ("tcp-early-muxer", 4, true),
    ("tcp-onetrip", 3, true),
];

async fn check_table(delay: Duration) {
    let rtt = 2 * delay;
    for (name, round_trips, early) in TABLE {
        let layering: Layering = name.parse().unwrap();
        let measured = measure(layering, delay).await;
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
        assert_eq!(measured.early_muxer, early, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn round_trips_at_10_ms() {
    check_table(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn round_trips_at_50_ms() {
    check_table(Duration::from_millis(50)).await;
}
