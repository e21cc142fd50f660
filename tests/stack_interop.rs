//! onetrip's stack against rust-libp2p (`libp2p` with tcp + noise or tls +
//! yamux, and libp2p-quic), every preset in both roles, and onetrip's
//! `Transport` inside a rust-libp2p Swarm, TCP and QUIC: ping
//! (`/ipfs/ping/1.0.0`: 32 bytes, echoed) and request-response.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, ping, request_response,
    swarm::{
        ConnectionId, NetworkBehaviour, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, tls, yamux,
};
use libp2p_identity::Keypair;
use onetrip_stack::{
    Config, Endpoint, Error, Layering, MuxerPolicy, Preset, Protocol, QuicLayering, Security,
    TransportKind, multiaddr,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every wait in these tests ends by then: a hang is a failure, not a
/// stuck CI run.
const DEADLINE: Duration = Duration::from_secs(30);

const PING_LEN: usize = 32;

fn ping_protocol() -> Protocol {
    Protocol::new("/ipfs/ping/1.0.0").unwrap()
}

async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {DEADLINE:?}"))
}

fn swarm_config(config: libp2p::swarm::Config) -> libp2p::swarm::Config {
    config.with_idle_connection_timeout(Duration::from_secs(60))
}

/// A stock rust-libp2p Swarm: SwarmBuilder's tcp + noise + yamux and
/// libp2p-quic, ping; it answers `/tls/1.0.0` too.
fn stock_swarm() -> Swarm<ping::Behaviour> {
    stock_swarm_dialing(Security::Noise)
}

/// A stock Swarm that proposes `security` first when it dials, and answers
/// both `/noise` and `/tls/1.0.0` (libp2p-tls: ALPN `libp2p` only); ping.
fn stock_swarm_dialing(security: Security) -> Swarm<ping::Behaviour> {
    stock_swarm_with(security, ping::Behaviour::default())
}

/// A stock Swarm as [`stock_swarm_dialing`] makes it, with `behaviour`.
fn stock_swarm_with<B: NetworkBehaviour>(security: Security, behaviour: B) -> Swarm<B> {
    // The builder's type names the upgrades: one expansion per order.
    macro_rules! stock {
        ($first:expr, $second:expr) => {
            SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    ($first, $second),
                    yamux::Config::default,
                )
                .unwrap()
                .with_quic()
                .with_behaviour(|_| behaviour)
                .unwrap()
                .with_swarm_config(swarm_config)
                .build()
        };
    }
    match security {
        Security::Noise => stock!(noise::Config::new, tls::Config::new),
        Security::Tls => stock!(tls::Config::new, noise::Config::new),
    }
}

/// A stock Swarm listening on loopback TCP, driven by its own task: its
/// peer id, its address and the task.
async fn stock_swarm_listening() -> (PeerId, Multiaddr, tokio::task::JoinHandle<()>) {
    let mut swarm = stock_swarm();
    let swarm_id = *swarm.local_peer_id();
    let addr = listen(&mut swarm).await;
    let driver = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (swarm_id, addr, driver)
}

/// A rust-libp2p Swarm on onetrip's transport, accepting 0-RTT data; ping.
fn onetrip_swarm(preset: Preset) -> Swarm<ping::Behaviour> {
    onetrip_swarm_with(preset, ping::Behaviour::default())
}

/// A rust-libp2p Swarm on onetrip's transport, accepting 0-RTT data, with
/// `behaviour`.
fn onetrip_swarm_with<B: NetworkBehaviour>(preset: Preset, behaviour: B) -> Swarm<B> {
    let keypair = Keypair::generate_ed25519();
    let config = Config::new(keypair.clone())
        .unwrap()
        .with_preset(preset)
        .unwrap()
        .with_accept_0rtt(true);
    let transport = onetrip_stack::libp2p::Transport::new(config);
    SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_other_transport(|_| transport)
        .unwrap()
        .with_behaviour(|_| behaviour)
        .unwrap()
        .with_swarm_config(swarm_config)
        .build()
}

/// A loopback address on `transport`, any free port.
fn loopback(transport: TransportKind) -> Multiaddr {
    multiaddr(transport, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
}

async fn listen(swarm: &mut Swarm<ping::Behaviour>) -> Multiaddr {
    listen_on(swarm, loopback(TransportKind::Tcp)).await
}

async fn listen_on<B: NetworkBehaviour>(swarm: &mut Swarm<B>, addr: Multiaddr) -> Multiaddr {
    swarm.listen_on(addr).unwrap();
    bounded("listening", async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await
}

/// Drives `swarm` until a ping with `peer` succeeds, on `connection` if
/// given.
async fn ping_succeeds(
    swarm: &mut Swarm<ping::Behaviour>,
    peer: PeerId,
    connection: Option<ConnectionId>,
) {
    bounded("a successful ping", async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(ping::Event {
                    peer: from,
                    connection: on,
                    result: Ok(_),
                }) if from == peer && connection.is_none_or(|id| id == on) => return,
                SwarmEvent::Behaviour(ping::Event {
                    result: Err(err), ..
                }) => panic!("ping failed: {err}"),
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial failed: {error}"),
                SwarmEvent::IncomingConnectionError { error, .. } => {
                    panic!("inbound connection failed: {error}")
                }
                _ => {}
            }
        }
    })
    .await;
}

fn endpoint(layering: Layering) -> Endpoint {
    endpoint_with(Preset::Tcp(layering))
}

fn endpoint_with(preset: Preset) -> Endpoint {
    let config = Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_preset(preset)
        .unwrap()
        .with_protocols([ping_protocol()]);
    Endpoint::new(config)
}

/// One `/ipfs/ping/1.0.0` exchange on a fresh stream.
async fn ping_over(connection: &onetrip_stack::Connection, name: &str) {
    let mut stream = connection.open_stream(ping_protocol()).await.unwrap();
    let payload: [u8; PING_LEN] = std::array::from_fn(|i| (i * 7) as u8);
    let mut echo = [0; PING_LEN];
    bounded(name, async {
        stream.write_all(&payload).await.unwrap();
        stream.flush().await.unwrap();
        stream.read_exact(&mut echo).await.unwrap();
    })
    .await;
    assert_eq!(echo, payload, "{name}");
}

#[tokio::test]
async fn onetrip_dials_a_stock_swarm_with_every_preset() {
    let (swarm_id, addr, driver) = stock_swarm_listening().await;

    for (name, layering) in Layering::PRESETS {
        let endpoint = endpoint(layering);
        let connection = bounded(name, endpoint.dial(&addr, Some(swarm_id)))
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(connection.remote_peer_id(), swarm_id);
        assert_eq!(connection.security(), Some(layering.security_protocol));
        // rust-libp2p lists no muxers (and offers ALPN `libp2p` only): the
        // early presets fell back.
        assert!(!connection.early_muxer(), "{name}");

        ping_over(&connection, name).await;
        bounded(name, connection.close()).await.unwrap();
    }
    driver.abort();
}

/// The strict muxer policy over TLS: a dialer that offers `/yamux/1.0.0`
/// alone in ALPN is refused by rust-libp2p (which selects `libp2p` only),
/// and gets the muxer in ALPN from an onetrip listener.
#[tokio::test]
async fn a_strict_tls_dialer_needs_the_muxer_in_alpn() {
    let strict = || {
        Endpoint::new(
            Config::new(Keypair::generate_ed25519())
                .unwrap()
                .with_layering(Layering::TCP_TLS_ONETRIP)
                .unwrap()
                .with_muxer_policy(MuxerPolicy::Strict)
                .with_protocols([ping_protocol()]),
        )
    };
    let (swarm_id, addr, driver) = stock_swarm_listening().await;
    let refused = bounded("strict dial", strict().dial(&addr, Some(swarm_id))).await;
    // rust-libp2p's server answers with the alert the ALPN spec names.
    assert!(
        matches!(&refused, Err(Error::Tls(err)) if format!("{err:?}").contains("NoApplicationProtocol")),
        "{refused:?}"
    );
    driver.abort();

    let listener = endpoint(Layering::TCP_TLS_ONETRIP);
    let mut listening = listener
        .listen(&loopback(TransportKind::Tcp))
        .await
        .unwrap();
    let addr = listening.local_addr().clone();
    let dialer = strict();
    let (accepted, dialed) = bounded("strict dial", async {
        tokio::join!(listening.accept(), dialer.dial(&addr, None))
    })
    .await;
    let (accepted, dialed) = (accepted.unwrap(), dialed.unwrap());
    assert!(dialed.early_muxer() && accepted.early_muxer());
}

/// Serves `/ipfs/ping/1.0.0` echoes on every connection `listener` accepts,
/// and says what each connection's security protocol was.
fn serve_pings(
    mut listener: onetrip_stack::Listener,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<Option<Security>>,
) {
    let (secured, security) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        while let Ok(mut connection) = listener.accept().await {
            let _ = secured.send(connection.security());
            tokio::spawn(async move {
                while let Ok((_, mut stream)) = connection.accept_stream().await {
                    tokio::spawn(async move {
                        let mut buf = [0; PING_LEN];
                        while stream.read_exact(&mut buf).await.is_ok() {
                            if stream.write_all(&buf).await.is_err()
                                || stream.flush().await.is_err()
                            {
                                break;
                            }
                        }
                    });
                }
            });
        }
    });
    (server, security)
}

/// A stock Swarm dials an onetrip listener of `preset` on loopback and
/// pings it.
async fn stock_swarm_pings_onetrip(name: &str, preset: Preset) {
    let endpoint = endpoint_with(preset);
    let listener = endpoint
        .listen(&loopback(preset.transport()))
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let (server, mut security) = serve_pings(listener);
    let mut swarm = match preset {
        Preset::Tcp(layering) => stock_swarm_dialing(layering.security_protocol),
        Preset::Quic(_) => stock_swarm(),
    };
    let dial = DialOpts::peer_id(endpoint.local_peer_id())
        .addresses(vec![addr])
        .build();
    let connection = dial.connection_id();
    swarm
        .dial(dial)
        .unwrap_or_else(|err| panic!("{name}: {err}"));
    ping_succeeds(&mut swarm, endpoint.local_peer_id(), Some(connection)).await;
    let expected = match preset {
        Preset::Tcp(layering) => Some(layering.security_protocol),
        Preset::Quic(_) => None,
    };
    assert_eq!(security.recv().await, Some(expected), "{name}");
    server.abort();
}

#[tokio::test]
async fn a_stock_swarm_dials_onetrip_with_every_preset() {
    for (name, layering) in Layering::PRESETS {
        stock_swarm_pings_onetrip(name, Preset::Tcp(layering)).await;
    }
}

/// The adapter Swarm with `preset` dials a stock Swarm, then the stock
/// Swarm dials it, both listening on loopback; pings succeed each way on
/// each connection.
async fn adapter_and_stock_swarm_ping_both_ways(preset: Preset) {
    let mut stock = stock_swarm();
    let stock_id = *stock.local_peer_id();
    let stock_addr = listen_on(&mut stock, loopback(preset.transport())).await;
    let mut ours = onetrip_swarm(preset);
    let our_id = *ours.local_peer_id();
    let our_addr = listen_on(&mut ours, loopback(preset.transport())).await;

    // Ours dials the stock Swarm; the stock one dials ours.
    let outbound = DialOpts::peer_id(stock_id)
        .addresses(vec![stock_addr])
        .build();
    let outbound_id = outbound.connection_id();
    ours.dial(outbound).unwrap();
    let stock_side = tokio::spawn(async move {
        ping_succeeds(&mut stock, our_id, None).await;
        // A second connection, this time into ours.
        let inbound = DialOpts::peer_id(our_id)
            .condition(PeerCondition::Always)
            .addresses(vec![our_addr])
            .build();
        let inbound_id = inbound.connection_id();
        stock.dial(inbound).unwrap();
        ping_succeeds(&mut stock, our_id, Some(inbound_id)).await;
        stock
    });
    ping_succeeds(&mut ours, stock_id, Some(outbound_id)).await;
    let driver = tokio::spawn(async move {
        loop {
            ours.select_next_some().await;
        }
    });
    bounded("the stock Swarm's pings", stock_side)
        .await
        .unwrap();
    driver.abort();
}

#[tokio::test]
async fn the_transport_adapter_pings_a_stock_swarm_both_ways() {
    for layering in [Layering::TCP_ONETRIP, Layering::TCP_TLS_ONETRIP] {
        adapter_and_stock_swarm_ping_both_ways(Preset::Tcp(layering)).await;
    }
}

#[tokio::test]
async fn the_transport_adapter_pings_a_stock_swarm_both_ways_over_quic() {
    for (_, layering) in QuicLayering::PRESETS {
        adapter_and_stock_swarm_ping_both_ways(Preset::Quic(layering)).await;
    }
}

#[tokio::test]
async fn two_swarms_on_the_transport_adapter_ping() {
    for preset in [
        Preset::Tcp(Layering::TCP_ONETRIP),
        Preset::Quic(QuicLayering::QUIC_0RTT),
    ] {
        let mut a = onetrip_swarm(preset);
        let mut b = onetrip_swarm(preset);
        let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
        let addr = listen_on(&mut a, loopback(preset.transport())).await;
        b.dial(addr.with_p2p(a_id).unwrap()).unwrap();
        let a_side = tokio::spawn(async move { ping_succeeds(&mut a, b_id, None).await });
        ping_succeeds(&mut b, a_id, None).await;
        bounded("a's ping", a_side).await.unwrap();
    }
}

/// A 0-RTT dial returns before the server has proved who it is: when
/// another peer answers, the Swarm has the connection, then sees it closed
/// with the stack's typed mismatch.
#[tokio::test]
async fn a_0rtt_dial_answered_by_another_peer_closes_with_a_peer_id_mismatch() {
    let preset = Preset::Quic(QuicLayering::QUIC_0RTT);
    let listen = loopback(TransportKind::Quic);
    let mut expected = onetrip_swarm(preset);
    let mut other = onetrip_swarm(preset);
    let mut ours = onetrip_swarm(preset);
    let expected_id = *expected.local_peer_id();
    let expected_addr = listen_on(&mut expected, listen.clone()).await;
    let other_addr = listen_on(&mut other, listen).await;
    let ours_id = *ours.local_peer_id();
    let servers = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = expected.select_next_some() => {}
                _ = other.select_next_some() => {}
            }
        }
    });

    // A first connection leaves a session ticket of `expected`.
    ours.dial(
        DialOpts::peer_id(expected_id)
            .addresses(vec![expected_addr])
            .build(),
    )
    .unwrap();
    ping_succeeds(&mut ours, expected_id, None).await;
    bounded("closing the first connection", async {
        ours.disconnect_peer_id(expected_id).unwrap();
        while ours.is_connected(&expected_id) {
            ours.select_next_some().await;
        }
    })
    .await;

    // The ticket names `expected`, but `other` answers at this address.
    let dial = DialOpts::peer_id(expected_id)
        .addresses(vec![other_addr])
        .build();
    let dial_id = dial.connection_id();
    ours.dial(dial).unwrap();
    let (established, cause) = bounded("the mismatch", async {
        let mut established = false;
        loop {
            match ours.select_next_some().await {
                SwarmEvent::ConnectionEstablished { connection_id, .. }
                    if connection_id == dial_id =>
                {
                    established = true;
                }
                SwarmEvent::ConnectionClosed {
                    connection_id,
                    cause,
                    ..
                } if connection_id == dial_id => {
                    return (established, cause.map(|cause| cause.to_string()));
                }
                SwarmEvent::OutgoingConnectionError {
                    connection_id,
                    error,
                    ..
                } if connection_id == dial_id => {
                    return (established, Some(error.to_string()));
                }
                _ => {}
            }
        }
    })
    .await;
    servers.abort();
    assert!(
        established,
        "a 0-RTT dial is established at once ({ours_id})"
    );
    let cause = cause.expect("the connection closed with a cause");
    assert!(
        cause.contains("expected peer"),
        "closed for another reason: {cause}"
    );
}

#[tokio::test]
async fn onetrip_dials_a_stock_quic_swarm_with_every_quic_preset() {
    let mut swarm = stock_swarm();
    let swarm_id = *swarm.local_peer_id();
    let addr = listen_on(&mut swarm, loopback(TransportKind::Quic)).await;
    let driver = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    for (name, layering) in QuicLayering::PRESETS {
        let endpoint = endpoint_with(Preset::Quic(layering));
        // Twice: the second dial resumes the session where tickets allow.
        for attempt in 0..2 {
            let connection = bounded(name, endpoint.dial(&addr, Some(swarm_id)))
                .await
                .unwrap_or_else(|err| panic!("{name}, dial {attempt}: {err}"));
            assert_eq!(connection.remote_peer_id(), swarm_id);
            ping_over(&connection, name).await;
            // libp2p-quic accepts no 0-RTT data: a reconnect falls back.
            let zero_rtt = connection.quic().unwrap().zero_rtt_accepted().await;
            assert_ne!(zero_rtt, Some(true), "{name}");
            bounded(name, connection.close()).await.unwrap();
        }
    }
    driver.abort();
}

#[tokio::test]
async fn a_stock_quic_swarm_dials_onetrip() {
    for (name, layering) in QuicLayering::PRESETS {
        stock_swarm_pings_onetrip(name, Preset::Quic(layering)).await;
    }
}

/// Request-response with CBOR strings on `/onetrip/echo/1`: each side
/// answers a request with `echo: ` and the request.
type Echo = request_response::cbor::Behaviour<String, String>;

fn echo_behaviour() -> Echo {
    request_response::cbor::Behaviour::new(
        [(
            StreamProtocol::new("/onetrip/echo/1"),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default(),
    )
}

/// Drives `a` and `b` until `a` has its answer from `b`, then `b` its
/// answer from `a` (on the same connection or a new one, as the Swarms
/// decide).
async fn requests_both_ways(mut a: Swarm<Echo>, mut b: Swarm<Echo>, b_addr: Multiaddr) {
    let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
    a.add_peer_address(b_id, b_addr);
    a.behaviour_mut().send_request(&b_id, "from a".into());
    let mut answers: Vec<String> = Vec::new();
    bounded("requests both ways", async {
        while answers.len() < 2 {
            let (event, on_b) = tokio::select! {
                event = a.select_next_some() => (event, false),
                event = b.select_next_some() => (event, true),
            };
            let swarm = if on_b { &mut b } else { &mut a };
            match event {
                SwarmEvent::Behaviour(request_response::Event::Message { message, .. }) => {
                    match message {
                        request_response::Message::Request {
                            request, channel, ..
                        } => {
                            swarm
                                .behaviour_mut()
                                .send_response(channel, format!("echo: {request}"))
                                .unwrap();
                        }
                        request_response::Message::Response { response, .. } => {
                            answers.push(response);
                            if !on_b {
                                b.behaviour_mut().send_request(&a_id, "from b".into());
                            }
                        }
                    }
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    error, ..
                }) => panic!("a request failed: {error}"),
                SwarmEvent::Behaviour(request_response::Event::InboundFailure {
                    error, ..
                }) => panic!("an answer failed: {error}"),
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(answers, ["echo: from a", "echo: from b"]);
}

/// A stock Swarm (tcp + noise or tls + yamux, libp2p-quic) with the echo.
fn stock_echo_swarm() -> Swarm<Echo> {
    stock_swarm_with(Security::Noise, echo_behaviour())
}

#[tokio::test]
async fn request_response_between_the_adapter_and_a_stock_swarm_in_both_roles() {
    for preset in [
        Preset::Tcp(Layering::TCP_ONETRIP),
        Preset::Tcp(Layering::TCP_TLS_ONETRIP),
        Preset::Quic(QuicLayering::QUIC_0RTT),
    ] {
        // Ours dials the stock Swarm, then the stock Swarm dials ours.
        let mut stock = stock_echo_swarm();
        let stock_addr = listen_on(&mut stock, loopback(preset.transport())).await;
        requests_both_ways(
            onetrip_swarm_with(preset, echo_behaviour()),
            stock,
            stock_addr,
        )
        .await;
        let mut ours = onetrip_swarm_with(preset, echo_behaviour());
        let our_addr = listen_on(&mut ours, loopback(preset.transport())).await;
        requests_both_ways(stock_echo_swarm(), ours, our_addr).await;
    }
}
