//! TCP Fast Open's first flight duplicated by the network (RFC 7413
//! §6.3.1), on a netsim link in virtual time: the listener gets the SYN's
//! data a second time, on a connection of its own whose dialer is gone. No
//! copy reaches the application: a Noise message 1 gets no further than
//! the listener's message 2, and TLS early data meets a spent ticket, so a
//! full handshake the copy cannot finish.

use std::time::Duration;

use libp2p_identity::Keypair;
use onetrip_netsim::{LinkConfig, Network};
use onetrip_stack::{
    Config, Endpoint, Layering,
    measure::{listen_on_netsim, ping},
    tcp_multiaddr,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DELAY: Duration = Duration::from_millis(10);
/// When the copy of a SYN with data arrives: after the original connection
/// is done.
const COPY_AFTER: Duration = Duration::from_millis(500);

fn config(layering: Layering) -> Config {
    Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_layering(layering)
        .unwrap()
        .with_protocols([ping()])
        .with_handshake_timeout(Duration::from_secs(5))
}

/// Dials twice (the second dial's first flight rides in the SYN, which the
/// network duplicates), each time one request on a fresh stream that the
/// listener serves; returns whether each served stream came as early data,
/// and the listener's error on the copy (`None` if the copy became a
/// connection).
async fn reconnect_then_copy(layering: Layering) -> (Vec<bool>, Option<String>) {
    let link = LinkConfig::with_delay(DELAY).duplicate_syn_data(COPY_AFTER);
    let network = Network::new(link).unwrap();
    let server = Endpoint::new(config(layering).with_accept_0rtt(true));
    let sim_listener = network.host([10, 0, 0, 2]).listen_fast_open(4001).unwrap();
    let addr = sim_listener.local_addr();
    let mut listener = listen_on_netsim(&server, sim_listener);
    let client = Endpoint::new(config(layering));
    let mut early = Vec::new();
    for _ in 0..2 {
        let io = network
            .host([10, 0, 0, 1])
            .connect_fast_open(addr)
            .await
            .unwrap();
        let dial = client.dial_io(io, tcp_multiaddr(addr), Some(server.local_peer_id()));
        let request = async {
            let dialed = dial.await.unwrap();
            let mut stream = dialed.open_stream(ping()).await.unwrap();
            stream.write_all(&[7; 32]).await.unwrap();
            stream.flush().await.unwrap();
            let mut echo = [0; 32];
            stream.read_exact(&mut echo).await.unwrap();
            dialed
        };
        let serve = async {
            let mut accepted = listener.accept().await.unwrap();
            let (_, mut stream) = accepted.accept_stream().await.unwrap();
            early.push(stream.is_early());
            let mut request = [0; 32];
            stream.read_exact(&mut request).await.unwrap();
            stream.write_all(&request).await.unwrap();
            stream.shutdown().await.unwrap();
            accepted
        };
        let (dialed, _accepted) = tokio::join!(request, serve);
        // Session tickets follow the handshake.
        tokio::time::sleep(Duration::from_millis(100)).await;
        dialed.close().await.unwrap();
    }
    let copy = tokio::time::timeout(Duration::from_secs(30), listener.next())
        .await
        .expect("the listener settles the copy by its setup timeout")
        .expect("the listener goes on");
    (early, copy.err().map(|err| err.to_string()))
}

#[tokio::test(start_paused = true)]
async fn a_copied_noise_first_flight_gets_no_further_than_message_2() {
    let (early, copy) = reconnect_then_copy(Layering::TCP_ONETRIP_TFO).await;
    assert_eq!(early, [false, false]);
    let copy = copy.expect("the copy must not become a connection");
    assert!(copy.contains("noise"), "the copy fails in Noise: {copy}");
}

#[tokio::test(start_paused = true)]
async fn a_copied_tls_first_flight_meets_a_spent_ticket() {
    let (early, copy) = reconnect_then_copy(Layering::TCP_TLS_0RTT_TFO).await;
    // The reconnect's request came as early data, once.
    assert_eq!(early, [false, true]);
    // Had the listener taken the copy's early data, it would have handed
    // the connection over at once; it ran a full handshake instead, which
    // the copy could not finish.
    assert!(copy.is_some(), "the copy must not become a connection");
}
