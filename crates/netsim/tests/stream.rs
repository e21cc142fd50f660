//! Stream links: exact delays in virtual time, bandwidth, half-close,
//! back-pressure, refusal, asymmetric links, and the flight recorder.

use std::{net::IpAddr, time::Duration};

use onetrip_netsim::{Error, LinkConfig, Network, SimStream, StreamListener};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};

const CLIENT: [u8; 4] = [127, 0, 0, 1];
const SERVER: [u8; 4] = [127, 0, 0, 2];
const D: Duration = Duration::from_millis(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A connected pair over `net`, and the time `connect` was called.
async fn connect(net: &Network) -> (SimStream, SimStream, StreamListener, Instant) {
    let mut listener = net.host(SERVER).listen(4001).unwrap();
    let start = Instant::now();
    let client = net
        .host(CLIENT)
        .connect(listener.local_addr())
        .await
        .unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, client.local_addr());
    assert_eq!(server.peer_addr(), client.local_addr());
    (client, server, listener, start)
}

#[tokio::test(start_paused = true)]
async fn connect_costs_one_rtt_and_accept_one_and_a_half() {
    let net = Network::new(LinkConfig::with_delay(D)).unwrap();
    let mut listener = net.host(SERVER).listen(4001).unwrap();
    let start = Instant::now();
    let _client = net
        .host(CLIENT)
        .connect(listener.local_addr())
        .await
        .unwrap();
    assert_eq!(start.elapsed(), 2 * D);
    let _server = listener.accept().await.unwrap();
    assert_eq!(start.elapsed(), 3 * D);
}

#[tokio::test(start_paused = true)]
async fn bytes_arrive_exactly_one_way_delay_later() {
    for delay in [ms(1), ms(10), ms(50), ms(137)] {
        let net = Network::new(LinkConfig::with_delay(delay)).unwrap();
        let (mut client, mut server, _l, _) = connect(&net).await;
        tokio::time::sleep(ms(3)).await;
        let written = Instant::now();
        client.write_all(b"x").await.unwrap();
        let mut buf = [0; 1];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(written.elapsed(), delay, "client to server");
        let written = Instant::now();
        server.write_all(b"y").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(written.elapsed(), delay, "server to client");
    }
}

#[tokio::test(start_paused = true)]
async fn bytes_are_not_readable_a_moment_early() {
    let net = Network::new(LinkConfig::with_delay(D)).unwrap();
    let (mut client, mut server, _l, _) = connect(&net).await;
    client.write_all(b"x").await.unwrap();
    let mut buf = [0; 1];
    // tokio timers tick in whole milliseconds: one tick early.
    let early = tokio::time::timeout(D - ms(1), server.read(&mut buf)).await;
    assert!(early.is_err(), "read before the delay elapsed");
    server.read_exact(&mut buf).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn asymmetric_delays() {
    let (c, s): (IpAddr, IpAddr) = (CLIENT.into(), SERVER.into());
    let net = Network::builder()
        .link(c, s, LinkConfig::with_delay(ms(10)))
        .link(s, c, LinkConfig::with_delay(ms(30)))
        .build()
        .unwrap();
    assert_eq!(net.rtt(c, s), ms(40));
    let (mut client, mut server, _l, start) = connect(&net).await;
    // SYN 10 + SYN-ACK 30, then ACK 10 before the listener accepts.
    assert_eq!(start.elapsed(), ms(50));
    let t = Instant::now();
    server.write_all(b"down").await.unwrap();
    let mut buf = [0; 4];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(t.elapsed(), ms(30));
}

/// At 1 Mbit/s, 125,000 bytes take one second to serialize, then the
/// propagation delay; a second write queues behind the first.
#[tokio::test(start_paused = true)]
async fn bandwidth_serializes_writes() {
    let net = Network::new(LinkConfig::with_delay(D).bandwidth(1_000_000)).unwrap();
    let (mut client, mut server, _l, _) = connect(&net).await;
    let t = Instant::now();
    client.write_all(&vec![1; 125_000]).await.unwrap();
    client.write_all(&vec![2; 12_500]).await.unwrap();
    let mut first = vec![0; 125_000];
    server.read_exact(&mut first).await.unwrap();
    assert_eq!(t.elapsed(), Duration::from_secs(1) + D);
    let mut second = vec![0; 12_500];
    server.read_exact(&mut second).await.unwrap();
    assert_eq!(t.elapsed(), ms(1100) + D);
    assert!(first.iter().all(|&b| b == 1) && second.iter().all(|&b| b == 2));
}

#[tokio::test(start_paused = true)]
async fn half_close_arrives_like_data() {
    let net = Network::new(LinkConfig::with_delay(D)).unwrap();
    let (mut client, mut server, _l, _) = connect(&net).await;
    client.write_all(b"last words").await.unwrap();
    client.shutdown().await.unwrap();
    let t = Instant::now();
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    assert_eq!(t.elapsed(), D);
    assert!(
        client.write_all(b"more").await.is_err(),
        "write after shutdown"
    );
    // The other direction is still open.
    server.write_all(b"reply").await.unwrap();
    server.shutdown().await.unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"reply");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stream_ends_the_peer_and_breaks_its_writes() {
    let net = Network::new(LinkConfig::with_delay(D)).unwrap();
    let (client, mut server, _l, _) = connect(&net).await;
    drop(client);
    let mut buf = Vec::new();
    assert_eq!(server.read_to_end(&mut buf).await.unwrap(), 0);
    let err = server.write_all(b"anyone?").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[tokio::test(start_paused = true)]
async fn writer_waits_for_the_reader_at_the_buffer_limit() {
    let mut link = LinkConfig::with_delay(D);
    link.stream_buffer = 1000;
    let net = Network::new(link).unwrap();
    let (mut client, mut server, _l, _) = connect(&net).await;
    client.write_all(&[0; 1000]).await.unwrap();
    let blocked = tokio::time::timeout(Duration::from_secs(5), client.write_all(&[0; 1])).await;
    assert!(blocked.is_err(), "a full buffer must make the writer wait");
    let mut buf = [0; 1000];
    server.read_exact(&mut buf).await.unwrap();
    client.write_all(&[0; 1]).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn refused_after_one_rtt() {
    let net = Network::new(LinkConfig::with_delay(D)).unwrap();
    let start = Instant::now();
    let to = "127.0.0.2:9".parse().unwrap();
    let result = net.host(CLIENT).connect(to).await;
    assert!(matches!(result, Err(Error::ConnectionRefused(addr)) if addr == to));
    assert_eq!(start.elapsed(), 2 * D);
    let listener = net.host(SERVER).listen(9).unwrap();
    assert!(matches!(
        net.host(SERVER).listen(9),
        Err(Error::AddrInUse(_))
    ));
    drop(listener);
    assert!(
        net.host(CLIENT).connect(to).await.is_err(),
        "dropped listener still accepts"
    );
}

/// A dropped listener frees its address: it can be listened on again, and
/// the new listener accepts.
#[tokio::test(start_paused = true)]
async fn a_dropped_listeners_address_can_be_reused() {
    let net = Network::new(LinkConfig::with_delay(D)).unwrap();
    let listener = net.host(SERVER).listen(9).unwrap();
    let to = listener.local_addr();
    drop(listener);
    let mut listener = net.host(SERVER).listen(9).unwrap();
    let _client = net.host(CLIENT).connect(to).await.unwrap();
    let (_server, peer) = listener.accept().await.unwrap();
    assert_eq!(peer.ip(), IpAddr::from(CLIENT));
}

/// In real time (clock not paused) the same link delays for real.
#[tokio::test]
async fn runs_in_real_time_too() {
    let net = Network::new(LinkConfig::with_delay(ms(5))).unwrap();
    let (mut client, mut server, _l, start) = connect(&net).await;
    client.write_all(b"x").await.unwrap();
    let mut buf = [0; 1];
    server.read_exact(&mut buf).await.unwrap();
    assert!(start.elapsed() >= ms(20), "{:?}", start.elapsed());
}

/// A ping-pong is one round trip; n sequential exchanges are n.
#[tokio::test(start_paused = true)]
async fn recorder_counts_round_trips() {
    for n in [1, 2, 5] {
        let net = Network::new(LinkConfig::with_delay(D)).unwrap();
        let (mut client, mut server, _l, _) = connect(&net).await;
        net.recorder().clear();
        let start = Instant::now();
        for _ in 0..n {
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0; 4];
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(b"pong").await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
        }
        assert_eq!(start.elapsed(), n * 2 * D);
        let recording = net.recorder().recording();
        assert_eq!(
            recording.round_trips(),
            n as usize,
            "{}",
            recording.ladder_text()
        );
        assert_eq!(recording.flights().len(), 2 * n as usize);
    }
}

/// The handshake and a request/response: SYN/SYN-ACK, then request and
/// response, with an eager server greeting that does not add a flight.
#[tokio::test(start_paused = true)]
async fn recorder_ignores_concurrent_sends() {
    let net = Network::new(LinkConfig::with_delay(D)).unwrap();
    let (mut client, mut server, _l, _) = connect(&net).await;
    client.labeler().set(Some("request"));
    client.write_all(b"GET").await.unwrap();
    server.labeler().set(Some("greeting"));
    server.write_all(b"hello").await.unwrap(); // at accept, before the request lands
    let mut buf = [0; 3];
    server.read_exact(&mut buf).await.unwrap();
    server.labeler().set(Some("response"));
    server.write_all(b"200").await.unwrap();
    let mut buf = [0; 8];
    client.read_exact(&mut buf).await.unwrap();
    let recording = net.recorder().recording();
    let ladder = recording.ladder_text();
    assert_eq!(recording.round_trips(), 2, "{ladder}");
    assert_eq!(recording.first_delivery("response"), Some(5 * D));
    assert_eq!(
        recording.first_delivery_in_rtts("response", 2 * D),
        Some(2.5)
    );
    for label in [
        "SYN",
        "SYN-ACK",
        "ACK",
        "request (3 B)",
        "greeting (5 B)",
        "response (3 B)",
    ] {
        assert!(ladder.contains(label), "{label} missing from\n{ladder}");
    }
    let svg = recording.ladder_svg();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<line").count(), 2 + recording.records.len());
}

/// A stream write's bytes are recorded too, when the recorder keeps
/// payloads: what a replay of a client's first bytes would send again.
#[tokio::test(start_paused = true)]
async fn recorder_keeps_stream_payloads_within_its_budget() {
    let net = Network::builder()
        .default_link(LinkConfig::with_delay(D))
        .payload_capacity(5)
        .build()
        .unwrap();
    let (mut client, _server, _l, _) = connect(&net).await;
    client.write_all(b"hello").await.unwrap();
    client.write_all(b"!").await.unwrap();
    client.shutdown().await.unwrap();
    let payloads: Vec<_> = net
        .recorder()
        .recording()
        .records
        .into_iter()
        .map(|r| (r.label.as_deref().map(str::to_owned), r.payload))
        .collect();
    assert_eq!(
        payloads,
        [
            (Some("SYN".to_owned()), None),
            (Some("SYN-ACK".to_owned()), None),
            (Some("ACK".to_owned()), None),
            (None, Some(b"hello"[..].into())),
            // Over the budget.
            (None, None),
            (Some("FIN".to_owned()), None),
        ]
    );
}
