//! Streams on one connection: many, one after another, each kept open
//! while the next is opened and used.

use libp2p_identity::Keypair;
use onetrip_stack::{Config, Endpoint, Layering, Mode, Preset, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn echo() -> Protocol {
    Protocol::new("/echo/1.0.0").unwrap()
}

fn config() -> Config {
    Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_layering(Layering::TCP_ONETRIP)
        .unwrap()
        .with_protocols([echo()])
}

#[tokio::test]
async fn sequential_streams_each_kept_open() {
    let server = Endpoint::new(config());
    let mut listener = server
        .listen(&"/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let client = Endpoint::new(config());
    let (accepted, dialed) = tokio::join!(listener.accept(), client.dial(&addr, None));
    let (mut accepted, dialed) = (accepted.unwrap(), dialed.unwrap());
    let mut kept = Vec::new();
    for i in 0..20u8 {
        let mode = if i % 2 == 0 {
            Mode::Optimistic
        } else {
            Mode::Interactive
        };
        let mut stream = dialed.open_stream_with(echo(), mode).await.unwrap();
        stream.write_all(&[i]).await.unwrap();
        stream.flush().await.unwrap();
        let (protocol, mut inbound) =
            tokio::time::timeout(std::time::Duration::from_secs(30), accepted.accept_stream())
                .await
                .unwrap_or_else(|_| panic!("stream {i} never arrived"))
                .unwrap();
        assert_eq!(protocol, echo());
        let mut byte = [0; 1];
        inbound.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte, [i]);
        kept.push((stream, inbound));
    }
    // Every stream still works both ways.
    for (i, (stream, inbound)) in kept.iter_mut().enumerate() {
        inbound.write_all(&[i as u8]).await.unwrap();
        inbound.flush().await.unwrap();
        let mut byte = [0; 1];
        stream.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte, [i as u8]);
    }
    dialed.close().await.unwrap();
}

/// 10,000 request/response streams, one after another, on one QUIC
/// connection. The peer allows 100 concurrent streams and each side caps
/// its own at 512: a stream or a slot that leaked would stall the loop.
#[tokio::test]
async fn ten_thousand_sequential_quic_streams() {
    const STREAMS: u32 = 10_000;
    let server = Endpoint::new(config());
    let mut listener = server
        .listen(&"/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let serve = tokio::spawn(async move {
        let mut connection = listener.accept().await.unwrap();
        let mut served = 0u32;
        while let Ok((_, mut stream)) = connection.accept_stream().await {
            let mut request = Vec::new();
            stream.read_to_end(&mut request).await.unwrap();
            stream.write_all(&request).await.unwrap();
            stream.shutdown().await.unwrap();
            served += 1;
        }
        served
    });
    let client =
        Endpoint::new(config().with_quic_layering(onetrip_stack::QuicLayering::QUIC_OPTIMISTIC));
    let connection = client
        .dial(&addr, Some(server.local_peer_id()))
        .await
        .unwrap();
    let run = async {
        for i in 0..STREAMS {
            let mut stream = connection.open_stream(echo()).await.unwrap();
            stream.write_all(&i.to_be_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.unwrap();
            assert_eq!(response, i.to_be_bytes());
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(240), run)
        .await
        .expect("the streams stalled");
    // The server counted each stream before its response could arrive.
    connection.close().await.unwrap();
    let served = tokio::time::timeout(std::time::Duration::from_secs(30), serve)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served, STREAMS);
}

/// A protocol in which the listener speaks first (Identify, say): the
/// dialer opens the stream and reads before it writes anything. On every
/// preset, the optimistic ones included, its proposal must leave with that
/// read, or both sides wait for each other.
#[tokio::test]
async fn listener_speaks_first_on_every_preset() {
    const GREETING: &[u8] = b"hello from the listener";
    for (name, preset) in Preset::all() {
        let config = || {
            Config::new(Keypair::generate_ed25519())
                .unwrap()
                .with_preset(preset)
                .unwrap()
                .with_protocols([echo()])
        };
        let server = Endpoint::new(config());
        let listen = match preset {
            Preset::Tcp(_) => "/ip4/127.0.0.1/tcp/0",
            Preset::Quic(_) => "/ip4/127.0.0.1/udp/0/quic-v1",
        };
        let mut listener = server.listen(&listen.parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().clone();
        let serve = tokio::spawn(async move {
            let mut connection = listener.accept().await.unwrap();
            let (_, mut stream) = connection.accept_stream().await.unwrap();
            stream.write_all(GREETING).await.unwrap();
            stream.shutdown().await.unwrap();
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            connection
        });
        let client = Endpoint::new(config());
        let run = async {
            let dialed = client
                .dial(&addr, Some(server.local_peer_id()))
                .await
                .unwrap();
            let mut stream = dialed.open_stream(echo()).await.unwrap();
            let mut greeting = vec![0; GREETING.len()];
            stream.read_exact(&mut greeting).await.unwrap();
            stream.shutdown().await.unwrap();
            (greeting, dialed)
        };
        let (greeting, _dialed) = tokio::time::timeout(std::time::Duration::from_secs(10), run)
            .await
            .unwrap_or_else(|_| panic!("{name}: the dialer reading first hangs"));
        assert_eq!(greeting, GREETING, "{name}");
        serve.await.unwrap();
    }
}

/// Reads the connection's next inbound stream to its end, which must be the
/// one byte `n`; says whether the stream came as early data.
async fn receive_byte(connection: &mut onetrip_stack::Connection, n: u8) -> bool {
    let (_, mut inbound) = connection.accept_stream().await.unwrap();
    let early = inbound.is_early();
    let mut byte = Vec::new();
    inbound.read_to_end(&mut byte).await.unwrap();
    assert_eq!(byte, [n]);
    early
}

/// Over QUIC with 0-RTT, the listener's stream that came as 0-RTT data
/// says so (as does the dialer's), and a stream opened after the
/// handshake does not: what a protocol reads to refuse a request that is
/// not idempotent. Virtual time on a netsim link.
#[tokio::test(start_paused = true)]
async fn a_quic_stream_that_came_as_0rtt_data_is_early() {
    use std::time::Duration;

    use onetrip_netsim::{LinkConfig, Network};
    use onetrip_stack::QuicLayering;

    let network = Network::new(LinkConfig::with_delay(Duration::from_millis(10))).unwrap();
    let zero_rtt = || config().with_quic_layering(QuicLayering::QUIC_0RTT);
    let server = Endpoint::new(zero_rtt().with_accept_0rtt(true));
    let server_quic = server
        .quic_endpoint(network.host([10, 0, 0, 2]).bind_udp(4433).unwrap())
        .unwrap();
    let addr = server_quic.local_addr().unwrap();
    let mut listener = server.listen_quic(server_quic).unwrap();
    let client = Endpoint::new(zero_rtt());
    let client_quic = client
        .quic_endpoint(network.host([10, 0, 0, 1]).bind_udp(0).unwrap())
        .unwrap();
    for reconnect in [false, true] {
        let (dialed, accepted) = tokio::join!(
            client.dial_quic(&client_quic, addr, Some(server.local_peer_id())),
            listener.accept()
        );
        let (dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        for (n, early) in [(0u8, reconnect), (1, false)] {
            let mut stream = dialed.open_stream(echo()).await.unwrap();
            assert_eq!(stream.is_early(), early, "dialer, stream {n}");
            stream.write_all(&[n]).await.unwrap();
            stream.shutdown().await.unwrap();
            let inbound_early = receive_byte(&mut accepted, n).await;
            assert_eq!(inbound_early, early, "listener, stream {n}");
        }
        // The session tickets follow the handshake.
        tokio::time::sleep(Duration::from_millis(100)).await;
        dialed.close().await.unwrap();
    }
}

/// TLS 1.3 early data on TCP, on a netsim link in virtual time: on a
/// reconnect the listener's first stream came as early data and says so,
/// a stream opened after the handshake does not; and the client's first
/// flight, captured and sent again by someone else, never reaches the
/// application a second time (the ticket is spent: the copy meets a full
/// handshake it cannot finish).
#[tokio::test(start_paused = true)]
async fn tls_early_data_is_flagged_and_its_replay_refused() {
    use std::time::Duration;

    use onetrip_netsim::{LinkConfig, Network};
    use onetrip_stack::{Error, tcp_multiaddr};
    use onetrip_testkit::Recorded;

    let network = Network::new(LinkConfig::with_delay(Duration::from_millis(10))).unwrap();
    let early = || {
        config()
            .with_layering(Layering::TCP_TLS_0RTT)
            .unwrap()
            .with_handshake_timeout(Duration::from_secs(5))
    };
    let server = Endpoint::new(early().with_accept_0rtt(true));
    let sim_listener = network.host([10, 0, 0, 2]).listen(4001).unwrap();
    let addr = sim_listener.local_addr();
    let mut listener = onetrip_stack::measure::listen_on_netsim(&server, sim_listener);
    let client = Endpoint::new(early());
    let mut first_flight = Vec::new();
    for reconnect in [false, true] {
        let io = network.host([10, 0, 0, 1]).connect(addr).await.unwrap();
        let (io, log) = Recorded::new(io);
        let (dialed, accepted) = tokio::join!(
            client.dial_io(io, tcp_multiaddr(addr), Some(server.local_peer_id())),
            listener.accept()
        );
        let (dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        for (n, early) in [(0u8, reconnect), (1, false)] {
            let mut stream = dialed.open_stream(echo()).await.unwrap();
            stream.write_all(&[n]).await.unwrap();
            stream.flush().await.unwrap();
            if reconnect && n == 0 {
                // ClientHello and early data: all the client sent so far.
                first_flight = log.bytes();
            }
            stream.shutdown().await.unwrap();
            let inbound_early = receive_byte(&mut accepted, n).await;
            assert_eq!(inbound_early, early, "listener, stream {n}");
        }
        // The session ticket follows the handshake.
        tokio::time::sleep(Duration::from_millis(100)).await;
        dialed.close().await.unwrap();
    }

    // The replay: the same bytes from another host.
    assert!(!first_flight.is_empty());
    let mut attacker = network.host([10, 0, 0, 3]).connect(addr).await.unwrap();
    attacker.write_all(&first_flight).await.unwrap();
    let replayed = tokio::time::timeout(Duration::from_secs(30), listener.next())
        .await
        .expect("the listener gives up on the copy at its setup timeout")
        .expect("the listener goes on");
    assert!(
        matches!(replayed, Err(Error::Timeout)),
        "the copy must not get through: {replayed:?}"
    );
    drop(attacker);
}

/// A reconnect whose ticket the server no longer knows (it restarted, or
/// evicted the session): the early data is rejected, the server runs a
/// full handshake (the dialer still checks the certificate against the
/// peer it expects), and the same bytes follow it: the request is served
/// once, and not as early data.
#[tokio::test(start_paused = true)]
async fn tls_early_data_to_a_server_that_forgot_the_ticket_is_sent_again() {
    use std::time::Duration;

    use onetrip_netsim::{LinkConfig, Network};
    use onetrip_stack::tcp_multiaddr;

    let network = Network::new(LinkConfig::with_delay(Duration::from_millis(10))).unwrap();
    let keypair = Keypair::generate_ed25519();
    let early = |keypair: Keypair| {
        Config::new(keypair)
            .unwrap()
            .with_layering(Layering::TCP_TLS_0RTT)
            .unwrap()
            .with_protocols([echo()])
    };
    let client = Endpoint::new(early(Keypair::generate_ed25519()));
    for port in [4001, 4002] {
        // The second server has the same identity and a new session store.
        let server = Endpoint::new(early(keypair.clone()).with_accept_0rtt(true));
        let sim_listener = network.host([10, 0, 0, 2]).listen(port).unwrap();
        let addr = sim_listener.local_addr();
        let mut listener = onetrip_stack::measure::listen_on_netsim(&server, sim_listener);
        let io = network.host([10, 0, 0, 1]).connect(addr).await.unwrap();
        let (dialed, accepted) = tokio::join!(
            client.dial_io(io, tcp_multiaddr(addr), Some(server.local_peer_id())),
            listener.accept()
        );
        let (dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
        let mut stream = dialed.open_stream(echo()).await.unwrap();
        stream.write_all(&[port as u8]).await.unwrap();
        stream.shutdown().await.unwrap();
        let inbound_early = receive_byte(&mut accepted, port as u8).await;
        assert!(!inbound_early, "port {port}");
        // The session ticket follows the handshake.
        tokio::time::sleep(Duration::from_millis(100)).await;
        dialed.close().await.unwrap();
    }
}
