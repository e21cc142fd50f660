//! Misbehaving peers at each stage: each gets a typed error, and the
//! listener goes on serving the next connection.

use std::{net::Ipv4Addr, time::Duration};

use libp2p_identity::{Keypair, PeerId};
use multiaddr::Multiaddr;
use onetrip_netsim::{LinkConfig, Network};
use onetrip_stack::{Config, Endpoint, Error, Layering, Listener, Mode, Protocol, tcp_multiaddr};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Every wait ends by then: a hang fails the test instead of stalling CI.
const DEADLINE: Duration = Duration::from_secs(30);

async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {DEADLINE:?}"))
}

fn echo() -> Protocol {
    Protocol::new("/echo/1.0.0").unwrap()
}

fn config(layering: Layering) -> Config {
    Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_layering(layering)
        .unwrap()
        .with_protocols([echo()])
}

async fn tcp_listener(endpoint: &Endpoint) -> (Listener, Multiaddr) {
    let listener = endpoint
        .listen(&"/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    (listener, addr)
}

fn socket_addr(addr: &Multiaddr) -> std::net::SocketAddr {
    onetrip_stack::tcp_socket_addr(addr).unwrap().0
}

/// The listener's next connection or why it failed.
async fn next(listener: &mut Listener) -> Result<onetrip_stack::Connection, Error> {
    listener.next().await.expect("the listener ended")
}

/// A good dialer gets through `listener`, and a stream round trip works.
async fn serves_a_good_dialer(listener: &mut Listener, addr: &Multiaddr) {
    let dialer = Endpoint::new(config(Layering::TCP_ONETRIP));
    let (accepted, dialed) = bounded("a good connection", async {
        tokio::join!(next(listener), dialer.dial(addr, None))
    })
    .await;
    let (mut accepted, dialed) = (accepted.unwrap(), dialed.unwrap());
    assert_eq!(accepted.remote_peer_id(), dialer.local_peer_id());
    let mut stream = dialed.open_stream(echo()).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    stream.flush().await.unwrap();
    let (protocol, mut inbound) = bounded("accept_stream", accepted.accept_stream())
        .await
        .unwrap();
    assert_eq!(protocol, echo());
    let mut buf = [0; 4];
    inbound.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    dialed.close().await.unwrap();
}

#[tokio::test]
async fn garbage_instead_of_the_multistream_header() {
    let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP));
    let (mut listener, addr) = tcp_listener(&endpoint).await;
    let mut garbage = TcpStream::connect(socket_addr(&addr)).await.unwrap();
    // The start of a TLS ClientHello: read as a 22-byte multistream
    // message that does not end in a newline.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    hello.resize(256, 0x5a);
    garbage.write_all(&hello).await.unwrap();
    let err = bounded("accept", next(&mut listener)).await.unwrap_err();
    assert!(matches!(err, Error::SecurityNegotiation(_)), "{err:?}");
    serves_a_good_dialer(&mut listener, &addr).await;
}

#[tokio::test]
async fn garbage_instead_of_noise_message_1() {
    let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP));
    let (mut listener, addr) = tcp_listener(&endpoint).await;
    let mut peer = TcpStream::connect(socket_addr(&addr)).await.unwrap();
    // A correct `/noise` proposal, then a frame that is no Noise message.
    let mut bytes = b"\x13/multistream/1.0.0\n\x07/noise\n".to_vec();
    bytes.extend_from_slice(&[0, 5, 1, 2, 3, 4, 5]);
    peer.write_all(&bytes).await.unwrap();
    let err = bounded("accept", next(&mut listener)).await.unwrap_err();
    assert!(matches!(err, Error::Noise(_)), "{err:?}");
    serves_a_good_dialer(&mut listener, &addr).await;
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello() {
    let endpoint = Endpoint::new(config(Layering::TCP_TLS_ONETRIP));
    let (mut listener, addr) = tcp_listener(&endpoint).await;
    let mut peer = TcpStream::connect(socket_addr(&addr)).await.unwrap();
    // A correct `/tls/1.0.0` proposal, then a record of no TLS content
    // type.
    let mut bytes = b"\x13/multistream/1.0.0\n\x0b/tls/1.0.0\n".to_vec();
    bytes.extend_from_slice(&[0x99, 3, 3, 0, 4, 1, 2, 3, 4]);
    peer.write_all(&bytes).await.unwrap();
    let err = bounded("accept", next(&mut listener)).await.unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    serves_a_good_dialer(&mut listener, &addr).await;
}

/// Over Noise the payload proves the wrong peer before our identity leaves;
/// over TLS the certificate does, inside the handshake. Both are refused
/// the same way.
#[tokio::test]
async fn a_wrong_peer_id_is_refused_by_the_dialer() {
    for layering in [Layering::TCP_ONETRIP, Layering::TCP_TLS_ONETRIP] {
        refuses_a_wrong_peer(layering).await;
    }
}

/// `dialed` failed because the remote proved `actual`, not `expected`.
fn assert_mismatch<T: std::fmt::Debug>(dialed: Result<T, Error>, expected: PeerId, actual: PeerId) {
    match dialed {
        Err(Error::PeerIdMismatch(mismatch)) => {
            assert_eq!(mismatch.expected, expected);
            assert_eq!(mismatch.actual, actual);
        }
        other => panic!("expected a peer id mismatch, got {other:?}"),
    }
}

async fn refuses_a_wrong_peer(layering: Layering) {
    let endpoint = Endpoint::new(config(layering));
    let (mut listener, addr) = tcp_listener(&endpoint).await;
    let dialer = Endpoint::new(config(layering));
    let impostor = PeerId::random();
    let (accepted, dialed) = bounded("dial", async {
        tokio::join!(next(&mut listener), dialer.dial(&addr, Some(impostor)))
    })
    .await;
    assert_mismatch(dialed, impostor, endpoint.local_peer_id());
    // The dialer hung up mid-handshake: the listener's side fails too.
    assert!(accepted.is_err(), "{layering}");
    // A /p2p/ component names the expected peer as well.
    let named = addr.clone().with_p2p(impostor).unwrap();
    let (accepted, dialed) = bounded("dial", async {
        tokio::join!(next(&mut listener), dialer.dial(&named, None))
    })
    .await;
    assert!(matches!(dialed.unwrap_err(), Error::PeerIdMismatch(_)));
    assert!(accepted.is_err());
    serves_a_good_dialer(&mut listener, &addr).await;
}

/// Over QUIC the certificate proves the wrong peer, not the Noise payload;
/// the caller matches the same error.
#[tokio::test]
async fn a_wrong_peer_id_is_the_same_error_over_quic() {
    let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP));
    let mut listener = endpoint
        .listen(&"/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let dialer = Endpoint::new(config(Layering::TCP_ONETRIP));
    let impostor = PeerId::random();
    let (_, dialed) = bounded("dial", async {
        tokio::join!(next(&mut listener), dialer.dial(&addr, Some(impostor)))
    })
    .await;
    assert_mismatch(dialed, impostor, endpoint.local_peer_id());
    let (accepted, dialed) = bounded("dial", async {
        tokio::join!(next(&mut listener), dialer.dial(&addr, None))
    })
    .await;
    assert!(accepted.is_ok() && dialed.is_ok());
}

#[tokio::test]
async fn a_peer_that_resets_mid_handshake() {
    let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP));
    let (mut listener, addr) = tcp_listener(&endpoint).await;
    let peer = TcpStream::connect(socket_addr(&addr)).await.unwrap();
    let mut peer = peer;
    peer.write_all(b"\x13/multistream/1.0.0\n\x07/noise\n")
        .await
        .unwrap();
    // Abort with a RST rather than a FIN.
    peer.set_zero_linger().unwrap();
    drop(peer);
    let err = bounded("accept", next(&mut listener)).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::SecurityNegotiation(onetrip_multistream::Error::Io(_))
                | Error::Noise(onetrip_noise::Error::Io(_) | onetrip_noise::Error::UnexpectedEof)
                | Error::Io(_)
        ),
        "expected an I/O failure in the handshake, got {err:?}"
    );
    serves_a_good_dialer(&mut listener, &addr).await;
}

#[tokio::test]
async fn dialing_a_listener_that_speaks_garbage() {
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp_multiaddr(fake.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = fake.accept().await.unwrap();
        // A banner and binary packets: `S` reads as an 83-byte message
        // that does not end in a newline.
        let mut banner = b"SSH-2.0-OpenSSH_9.6\r\n".to_vec();
        banner.resize(512, 0xab);
        let _ = socket.write_all(&banner).await;
        let mut sink = Vec::new();
        let _ = socket.read_to_end(&mut sink).await;
    });
    let dialer = Endpoint::new(config(Layering::TCP_CLASSIC));
    let err = bounded("dial", dialer.dial(&addr, None)).await.unwrap_err();
    assert!(matches!(err, Error::SecurityNegotiation(_)), "{err:?}");
}

#[tokio::test]
async fn unsupported_addresses_are_refused() {
    let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP));
    let draft: Multiaddr = "/ip4/127.0.0.1/udp/1/quic".parse().unwrap();
    assert!(matches!(
        endpoint.dial(&draft, None).await,
        Err(Error::UnsupportedAddress(a)) if a == draft
    ));
    let dns: Multiaddr = "/dns4/localhost/tcp/1".parse().unwrap();
    assert!(matches!(
        endpoint.listen(&dns).await,
        Err(Error::UnsupportedAddress(_))
    ));
}

#[tokio::test]
async fn the_connection_limit_drops_extra_connections() {
    let endpoint = Endpoint::new(
        config(Layering::TCP_ONETRIP)
            .with_max_connections(1)
            .unwrap(),
    );
    let (mut listener, addr) = tcp_listener(&endpoint).await;
    let dialer = Endpoint::new(config(Layering::TCP_ONETRIP));
    let (first, dialed) = bounded("first", async {
        tokio::join!(next(&mut listener), dialer.dial(&addr, None))
    })
    .await;
    let (first, dialed) = (first.unwrap(), dialed.unwrap());
    let (second, refused) = bounded("second", async {
        tokio::join!(next(&mut listener), dialer.dial(&addr, None))
    })
    .await;
    assert!(matches!(second, Err(Error::ConnectionLimit)), "{second:?}");
    assert!(refused.is_err());
    // Closing the first frees its slot.
    dialed.close().await.unwrap();
    drop(first);
    bounded("slot freed", async {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let (accepted, dialed) = tokio::join!(next(&mut listener), dialer.dial(&addr, None));
            if let (Ok(_), Ok(_)) = (accepted, dialed) {
                return;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused_and_the_connection_goes_on() {
    let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP).with_max_streams(2).unwrap());
    let (mut listener, addr) = tcp_listener(&endpoint).await;
    let dialer = Endpoint::new(config(Layering::TCP_ONETRIP).with_max_streams(2).unwrap());
    let (accepted, dialed) = bounded("connect", async {
        tokio::join!(next(&mut listener), dialer.dial(&addr, None))
    })
    .await;
    let (mut accepted, dialed) = (accepted.unwrap(), dialed.unwrap());
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = bounded("open", dialed.open_stream_with(echo(), Mode::Interactive))
            .await
            .unwrap();
        stream.write_all(b"x").await.unwrap();
        stream.flush().await.unwrap();
        let (_, inbound) = bounded("accept_stream", accepted.accept_stream())
            .await
            .unwrap();
        open.push((stream, inbound));
    }
    // Our own third stream is refused locally.
    let third = dialed.open_stream(echo()).await;
    assert!(matches!(third, Err(Error::StreamLimit)), "{third:?}");
    // The listener refuses a third from a peer with a higher limit.
    let greedy = Endpoint::new(config(Layering::TCP_ONETRIP));
    let (accepted_greedy, greedy_dialed) = bounded("connect", async {
        tokio::join!(next(&mut listener), greedy.dial(&addr, None))
    })
    .await;
    let (mut accepted_greedy, greedy_dialed) = (accepted_greedy.unwrap(), greedy_dialed.unwrap());
    let mut kept = Vec::new();
    for _ in 0..2 {
        let mut stream = greedy_dialed.open_stream(echo()).await.unwrap();
        stream.write_all(b"x").await.unwrap();
        stream.flush().await.unwrap();
        kept.push(stream);
        kept.push(
            bounded("accept_stream", accepted_greedy.accept_stream())
                .await
                .unwrap()
                .1,
        );
    }
    let refused = bounded(
        "refused stream",
        greedy_dialed.open_stream_with(echo(), Mode::Interactive),
    )
    .await;
    assert!(
        matches!(refused, Err(Error::StreamNegotiation(_))),
        "{refused:?}"
    );
    // Both connections still carry their streams both ways.
    for (stream, inbound) in &mut open {
        let mut byte = [0; 1];
        inbound.read_exact(&mut byte).await.unwrap();
        inbound.write_all(b"y").await.unwrap();
        inbound.flush().await.unwrap();
        stream.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"y");
    }
    let mut fresh = greedy_dialed.open_stream(echo()).await;
    assert!(fresh.is_ok() || matches!(fresh, Err(Error::StreamLimit)));
    if let Ok(stream) = &mut fresh {
        stream.write_all(b"z").await.unwrap();
    }
    assert!(!greedy_dialed.is_closed());
}

/// A read waiting on a stream ends when its connection is closed or
/// dropped, instead of waiting forever.
#[tokio::test]
async fn waiting_reads_end_when_the_connection_closes() {
    for close in [true, false] {
        let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP));
        let (mut listener, addr) = tcp_listener(&endpoint).await;
        let dialer = Endpoint::new(config(Layering::TCP_ONETRIP));
        let (accepted, dialed) = bounded("connect", async {
            tokio::join!(next(&mut listener), dialer.dial(&addr, None))
        })
        .await;
        let (_accepted, dialed) = (accepted.unwrap(), dialed.unwrap());
        let mut stream = dialed.open_stream(echo()).await.unwrap();
        stream.write_all(b"x").await.unwrap();
        let reader = tokio::spawn(async move {
            let mut buf = [0; 1];
            stream.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        if close {
            bounded("close", dialed.close()).await.unwrap();
        } else {
            drop(dialed);
        }
        let read = bounded("the waiting read", reader).await.unwrap();
        assert!(read.is_err() || matches!(read, Ok(0)), "{read:?}");
    }
}

/// A peer that sends the `/noise` proposal and then nothing is dropped at
/// the handshake timeout, while others are served meanwhile. Virtual time
/// makes the timing exact.
#[tokio::test(start_paused = true)]
async fn a_peer_that_stalls_is_dropped_at_the_timeout() {
    const TIMEOUT: Duration = Duration::from_secs(3);
    let network = Network::new(LinkConfig::with_delay(Duration::from_millis(5))).unwrap();
    let server_host = network.host(Ipv4Addr::new(10, 0, 0, 2));
    let sim_listener = server_host.listen(4001).unwrap();
    let server_addr = sim_listener.local_addr();
    let endpoint = Endpoint::new(config(Layering::TCP_ONETRIP).with_handshake_timeout(TIMEOUT));
    let mut listener = onetrip_stack::measure::listen_on_netsim(&endpoint, sim_listener);
    let start = tokio::time::Instant::now();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let result = next(&mut listener).await;
            let done = accepted_tx.send((result, start.elapsed())).is_err();
            if done {
                return;
            }
        }
    });

    let mut staller = network
        .host(Ipv4Addr::new(10, 0, 0, 3))
        .connect(server_addr)
        .await
        .unwrap();
    staller
        .write_all(b"\x13/multistream/1.0.0\n\x07/noise\n")
        .await
        .unwrap();

    let dialer = Endpoint::new(config(Layering::TCP_ONETRIP));
    let io = network
        .host(Ipv4Addr::new(10, 0, 0, 1))
        .connect(server_addr)
        .await
        .unwrap();
    let dialed = dialer.dial_io(io, tcp_multiaddr(server_addr), None).await;
    assert!(dialed.is_ok());
    let (first, at) = accepted.recv().await.unwrap();
    assert!(first.is_ok(), "{first:?}");
    assert!(at < TIMEOUT);

    let (second, at) = accepted.recv().await.unwrap();
    assert!(matches!(second, Err(Error::Timeout)), "{second:?}");
    // The staller's connect took one RTT (10 ms) and its first bytes
    // arrived 5 ms later, when the listener took it.
    assert_eq!(at, Duration::from_millis(15) + TIMEOUT);
    drop(staller);
}

/// One deadline, the caller's, bounds the whole setup: a listener that takes
/// 15 s to answer the security proposal is waited for under a 30 s
/// deadline (no step has a shorter timer of its own), and given up on at
/// exactly 5 s under a 5 s deadline.
#[tokio::test(start_paused = true)]
async fn the_setup_deadline_alone_bounds_a_slow_step() {
    const SLOW_STEP: Duration = Duration::from_secs(15);
    for (limit, succeeds) in [(30, true), (5, false)] {
        let limit = Duration::from_secs(limit);
        let (dialer_io, listener_io) = tokio::io::duplex(64 * 1024);
        let listener = Endpoint::new(config(Layering::TCP_CLASSIC));
        let server = tokio::spawn(async move {
            // The listener sees the connection 15 s late: the dialer's
            // interactive `/noise` proposal waits that long for its answer.
            tokio::time::sleep(SLOW_STEP).await;
            let incoming = futures_util::stream::iter([Ok((listener_io, Multiaddr::empty()))]);
            let mut listener = listener.listen_on(incoming, Multiaddr::empty());
            next(&mut listener).await
        });
        let dialer = Endpoint::new(config(Layering::TCP_CLASSIC).with_handshake_timeout(limit));
        let start = tokio::time::Instant::now();
        let dialed = dialer.dial_io(dialer_io, Multiaddr::empty(), None).await;
        if succeeds {
            let connection = dialed.expect("a setup within the deadline");
            assert!(start.elapsed() >= SLOW_STEP);
            assert!(start.elapsed() < limit);
            assert!(server.await.unwrap().is_ok());
            drop(connection);
        } else {
            assert!(matches!(dialed, Err(Error::Timeout)), "{dialed:?}");
            assert_eq!(start.elapsed(), limit);
            server.abort();
        }
    }
}
