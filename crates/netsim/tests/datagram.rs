//! Datagram links: exact delivery, MTU, trace replay, and a real quinn
//! endpoint pair handshaking and transferring over them.

use std::{io::IoSliceMut, net::SocketAddr, sync::Arc, time::Duration};

use onetrip_netsim::{
    DeliveryTrace, Error, GilbertElliott, INJECTED, LinkConfig, LossDelayTrace, LossModel, Network,
    SimUdpSocket,
};
use quinn::{
    AsyncUdpSocket,
    udp::{RecvMeta, Transmit},
};
use tokio::time::Instant;

const CLIENT: [u8; 4] = [127, 0, 0, 1];
const SERVER: [u8; 4] = [127, 0, 0, 2];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn send(socket: &SimUdpSocket, to: SocketAddr, data: &[u8]) {
    let transmit = Transmit {
        destination: to,
        ecn: None,
        contents: data,
        segment_size: None,
        src_ip: None,
    };
    socket.try_send(&transmit).unwrap();
}

/// Waits for one datagram; returns it with its arrival time since `start`.
async fn recv(socket: &SimUdpSocket, start: Instant) -> (Vec<u8>, Duration) {
    let (data, _, at) = recv_from(socket, start).await;
    (data, at)
}

/// Waits for one datagram; returns it with its source address and its
/// arrival time since `start`.
async fn recv_from(socket: &SimUdpSocket, start: Instant) -> (Vec<u8>, SocketAddr, Duration) {
    let mut buf = [0u8; 2048];
    let mut meta = [RecvMeta::default()];
    let n = std::future::poll_fn(|cx| {
        let mut bufs = [IoSliceMut::new(&mut buf)];
        socket.poll_recv(cx, &mut bufs, &mut meta)
    })
    .await
    .unwrap();
    assert_eq!(n, 1);
    (buf[..meta[0].len].to_vec(), meta[0].addr, start.elapsed())
}

fn pair(net: &Network) -> (Arc<SimUdpSocket>, Arc<SimUdpSocket>, SocketAddr) {
    let a = net.host(CLIENT).bind_udp(0).unwrap();
    let b = net.host(SERVER).bind_udp(4433).unwrap();
    let to = b.local_addr().unwrap();
    (a, b, to)
}

#[tokio::test(start_paused = true)]
async fn datagrams_arrive_after_the_delay_in_order() {
    let net = Network::new(LinkConfig::with_delay(ms(25))).unwrap();
    let (a, b, to) = pair(&net);
    let start = Instant::now();
    send(&a, to, b"one");
    tokio::time::sleep(ms(5)).await;
    send(&a, to, b"two");
    assert_eq!(recv(&b, start).await, (b"one".to_vec(), ms(25)));
    assert_eq!(recv(&b, start).await, (b"two".to_vec(), ms(30)));
    assert!(matches!(
        net.host(SERVER).bind_udp(4433),
        Err(Error::AddrInUse(_))
    ));
}

/// The recorder keeps payloads within its budget, and a recorded datagram
/// injected again arrives as from whatever address the injector names.
#[tokio::test(start_paused = true)]
async fn recorded_datagrams_can_be_injected_again() {
    let net = Network::builder()
        .default_link(LinkConfig::with_delay(ms(10)))
        .payload_capacity(8)
        .build()
        .unwrap();
    let (a, b, to) = pair(&net);
    let start = Instant::now();
    send(&a, to, b"hello");
    // Over the budget: recorded without its bytes.
    send(&a, to, b"world");
    assert_eq!(recv(&b, start).await.0, b"hello");
    assert_eq!(recv(&b, start).await.0, b"world");
    let records = net.recorder().recording().records;
    assert_eq!(records[0].payload.as_deref(), Some(&b"hello"[..]));
    assert_eq!(records[1].payload, None);

    // Replayed from an address no socket holds, 15 ms later: it crosses
    // the attacker's link to the server's host with that link's delay.
    tokio::time::sleep(ms(15)).await;
    let attacker: SocketAddr = ([127, 0, 0, 66], 4444).into();
    net.inject_datagram(attacker, to, records[0].payload.as_deref().unwrap());
    assert_eq!(
        recv_from(&b, start).await,
        (b"hello".to_vec(), attacker, ms(35))
    );
    // Or as from the original sender, whose socket then gets the answers.
    net.inject_datagram(records[0].from, to, b"again");
    assert_eq!(recv_from(&b, start).await.1, a.local_addr().unwrap());
    let injected = net.recorder().recording().records;
    assert_eq!(injected.len(), 4);
    assert!(
        injected[2..]
            .iter()
            .all(|r| r.label.as_deref() == Some(INJECTED) && r.delivered.is_some())
    );
    // The budget was spent: replays are recorded, their bytes are not.
    assert_eq!(injected[2].payload, None);
}

#[tokio::test(start_paused = true)]
async fn oversize_datagrams_are_dropped() {
    let net = Network::new(LinkConfig::with_delay(ms(1)).mtu(1200)).unwrap();
    let (a, b, to) = pair(&net);
    let start = Instant::now();
    send(&a, to, &[0; 1201]);
    send(&a, to, &[1; 1200]);
    let (got, _) = recv(&b, start).await;
    assert_eq!(got, vec![1; 1200]);
    let records = net.recorder().recording().records;
    assert_eq!(
        records
            .iter()
            .map(|r| r.delivered.is_some())
            .collect::<Vec<_>>(),
        [false, true]
    );
}

/// Mahimahi trace: opportunities at 0, 0, 5 and 12 ms, repeating every
/// 12 ms. Datagrams sent at 1 ms take the next unused opportunities.
#[tokio::test(start_paused = true)]
async fn trace_replay_delivers_at_the_opportunities() {
    let trace = DeliveryTrace::parse("0\n0\n5\n12\n").unwrap();
    let net = Network::new(LinkConfig::with_delay(ms(10)).schedule(trace)).unwrap();
    let (a, b, to) = pair(&net);
    let start = Instant::now();
    tokio::time::sleep(ms(1)).await;
    for i in 0..5u8 {
        send(&a, to, &[i]);
    }
    // Opportunities 0 and 0 have passed unused at 1 ms; then 5, 12, 12
    // (the next lap's first two), 17 (its 5); plus 10 ms of delay.
    for (i, at) in [15, 22, 22, 22, 27].into_iter().enumerate() {
        assert_eq!(
            recv(&b, start).await,
            (vec![i as u8], ms(at)),
            "datagram {i}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn loss_delay_trace_sets_each_fate() {
    let trace = LossDelayTrace::parse("# fates\n10\n-\n30\n").unwrap();
    let net = Network::new(LinkConfig::with_delay(ms(1)).loss(LossModel::Trace(trace))).unwrap();
    let (a, b, to) = pair(&net);
    let start = Instant::now();
    for i in 0..4u8 {
        send(&a, to, &[i]);
    }
    assert_eq!(recv(&b, start).await, (vec![0], ms(10)));
    assert_eq!(recv(&b, start).await, (vec![3], ms(10)));
    assert_eq!(recv(&b, start).await, (vec![2], ms(30)));
}

#[test]
fn malformed_traces_are_typed_errors() {
    for (text, line) in [
        ("0\nx\n", 2),
        ("5\n3\n", 2),
        ("", 0),
        ("0\n0\n", 0),
        ("99999999999999\n", 1),
    ] {
        match DeliveryTrace::parse(text) {
            Err(Error::Trace { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    for text in ["", "abc", "-5", "NaN"] {
        assert!(
            matches!(LossDelayTrace::parse(text), Err(Error::Trace { .. })),
            "{text:?}"
        );
    }
}

// A real quinn client and server over the datagram link.

fn endpoints(net: &Network) -> (quinn::Endpoint, quinn::Endpoint, SocketAddr) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let server_config = quinn::ServerConfig::with_single_cert(vec![cert_der.clone()], key).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).unwrap();
    let client_config = quinn::ClientConfig::with_root_certificates(Arc::new(roots)).unwrap();

    let runtime = Arc::new(quinn::TokioRuntime);
    let server_socket = net.host(SERVER).bind_udp(4433).unwrap();
    let server_addr = server_socket.local_addr().unwrap();
    let server = quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        Some(server_config),
        server_socket,
        runtime.clone(),
    )
    .unwrap();
    let mut client = quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        None,
        net.host(CLIENT).bind_udp(0).unwrap(),
        runtime,
    )
    .unwrap();
    client.set_default_client_config(client_config);
    (client, server, server_addr)
}

/// The client's handshake completes after exactly one round trip.
#[tokio::test(start_paused = true)]
async fn quinn_handshake_takes_exactly_one_rtt() {
    for delay in [ms(10), ms(50)] {
        let net = Network::new(LinkConfig::with_delay(delay)).unwrap();
        let (client, server, server_addr) = endpoints(&net);
        let accept = tokio::spawn(async move { server.accept().await.unwrap().await.unwrap() });
        let start = Instant::now();
        let connection = client
            .connect(server_addr, "localhost")
            .unwrap()
            .await
            .unwrap();
        assert_eq!(start.elapsed(), net.rtt(CLIENT.into(), SERVER.into()));
        assert_eq!(start.elapsed(), 2 * delay);
        let server_side = accept.await.unwrap();
        assert_eq!(server_side.remote_address(), client.local_addr().unwrap());
        assert_eq!(connection.remote_address(), server_addr);
        // The recorder agrees: Initial out, server's flight back.
        let handshake = net.recorder().recording().until(2 * delay);
        assert_eq!(handshake.round_trips(), 1, "{}", handshake.ladder_text());
        println!(
            "{}",
            net.recorder().recording().until(3 * delay).ladder_text()
        );
    }
}

/// 1 MB through 10 % bursty loss arrives whole.
#[tokio::test(start_paused = true)]
async fn quinn_transfers_through_gilbert_elliott_loss() {
    let loss = LossModel::GilbertElliott(GilbertElliott::with_mean_loss(0.10, 3.0).unwrap());
    let net = Network::builder()
        .default_link(
            LinkConfig::with_delay(ms(20))
                .bandwidth(50_000_000)
                .loss(loss),
        )
        .seed(1)
        .record_capacity(0)
        .build()
        .unwrap();
    let (client, server, server_addr) = endpoints(&net);
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let expected = data.clone();
    let receiver = tokio::spawn(async move {
        let connection = server.accept().await.unwrap().await.unwrap();
        let mut stream = connection.accept_uni().await.unwrap();
        stream.read_to_end(2_000_000).await.unwrap()
    });
    let connection = client
        .connect(server_addr, "localhost")
        .unwrap()
        .await
        .unwrap();
    let mut stream = connection.open_uni().await.unwrap();
    stream.write_all(&data).await.unwrap();
    stream.finish().unwrap();
    let start = Instant::now();
    let received = receiver.await.unwrap();
    println!(
        "1 MB in {:?} of virtual time, stats {:?}",
        start.elapsed(),
        connection.stats().path
    );
    assert_eq!(received.len(), expected.len());
    assert!(received == expected, "payload corrupted");
    let stats = connection.stats();
    assert!(
        stats.path.lost_packets > 0,
        "the link lost nothing: {stats:?}"
    );
}

/// The trace fuzz target's driver, on random text.
mod fuzz_driver {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn traces_never_panic(text in "[0-9\\-#. \n]{0,200}") {
            onetrip_netsim::fuzzing::traces(text.as_bytes());
        }
    }
}
