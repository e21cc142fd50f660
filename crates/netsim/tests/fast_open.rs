//! TCP Fast Open on stream links, in virtual time: the first connection
//! gets a cookie, a reconnect's first bytes ride in the SYN and are answered
//! within one RTT, and every fallback (a listener without Fast Open, a
//! rotated key, a path that drops SYNs with data, more than a SYN carries)
//! still delivers every byte, at the cost the model states.

use std::{net::SocketAddr, time::Duration};

use onetrip_netsim::{LinkConfig, MAX_SYN_DATA, Network, Record, SYN_RTO, StreamListener};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];
const DELAY: Duration = Duration::from_millis(50);
const RTT: Duration = Duration::from_millis(100);

/// Echoes the first `len` bytes of every connection.
fn serve_echo(mut listener: StreamListener, len: usize) {
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = vec![0; len];
                stream.read_exact(&mut request).await.unwrap();
                stream.write_all(&request).await.unwrap();
                // Keep the stream open until the dialer is done.
                let _ = stream.read(&mut [0; 1]).await;
            });
        }
    });
}

/// Connects with Fast Open, writes `request`, reads its whole echo: the
/// time that took.
async fn exchange(network: &Network, to: SocketAddr, request: &[u8]) -> Duration {
    let start = Instant::now();
    let mut stream = network.host(CLIENT).connect_fast_open(to).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut echo = vec![0; request.len()];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, request);
    start.elapsed()
}

/// The records made since `offset` whose label starts with `prefix`.
fn labelled(network: &Network, offset: usize, prefix: &str) -> Vec<Record> {
    network.recorder().recording().records[offset..]
        .iter()
        .filter(|r| r.label.as_deref().is_some_and(|l| l.starts_with(prefix)))
        .cloned()
        .collect()
}

fn records(network: &Network) -> usize {
    network.recorder().recording().records.len()
}

/// A listener with Fast Open serving echo for `len`-byte requests.
fn fast_open_echo(network: &Network, len: usize) -> SocketAddr {
    let listener = network.host(SERVER).listen_fast_open(4001).unwrap();
    let addr = listener.local_addr();
    serve_echo(listener, len);
    addr
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_with_a_cookie_is_answered_within_one_rtt() {
    let network = Network::new(LinkConfig::with_delay(DELAY)).unwrap();
    let request = b"the first flight of a handshake";
    let to = fast_open_echo(&network, request.len());

    // First connection: a cookie request, a plain handshake, then the data.
    assert!(!network.holds_fast_open_cookie(CLIENT.into(), SERVER.into()));
    assert_eq!(exchange(&network, to, request).await, 2 * RTT);
    assert!(network.holds_fast_open_cookie(CLIENT.into(), SERVER.into()));
    let first = labelled(&network, 0, "SYN");
    let labels: Vec<_> = first.iter().map(|r| r.label.as_deref().unwrap()).collect();
    assert_eq!(labels, ["SYN (cookie request)", "SYN-ACK (cookie)"]);
    assert_eq!(first[0].bytes, 0);

    // Reconnect: the data rides in the SYN; the listener accepts as the
    // SYN arrives and answers behind its SYN-ACK.
    let offset = records(&network);
    assert_eq!(exchange(&network, to, request).await, RTT);
    let syn = &labelled(&network, offset, "SYN")[..];
    assert_eq!(syn[0].label.as_deref(), Some("SYN"));
    assert_eq!(syn[0].bytes, request.len());
    assert_eq!(syn[1].label.as_deref(), Some("SYN-ACK"));
    // Two flights to the answer: the SYN with data, then the SYN-ACK
    // with the answer behind it.
    let recording = network.recorder().recording();
    let since = recording.records[offset].sent;
    assert_eq!(recording.since(since).until(since + RTT).round_trips(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_cookie_is_good_for_every_listener_of_the_host() {
    let network = Network::new(LinkConfig::with_delay(DELAY)).unwrap();
    let first = fast_open_echo(&network, 4);
    exchange(&network, first, b"ping").await;
    let listener = network.host(SERVER).listen_fast_open(4002).unwrap();
    let second = listener.local_addr();
    serve_echo(listener, 4);
    assert_eq!(exchange(&network, second, b"ping").await, RTT);
}

#[tokio::test(start_paused = true)]
async fn a_listener_without_fast_open_gives_no_cookie() {
    let network = Network::new(LinkConfig::with_delay(DELAY)).unwrap();
    let listener = network.host(SERVER).listen(4001).unwrap();
    let to = listener.local_addr();
    serve_echo(listener, 4);
    for _ in 0..2 {
        assert_eq!(exchange(&network, to, b"ping").await, 2 * RTT);
    }
    assert!(!network.holds_fast_open_cookie(CLIENT.into(), SERVER.into()));
    let offset = records(&network);
    exchange(&network, to, b"ping").await;
    assert_eq!(labelled(&network, offset, "SYN-ACK (cookie)").len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_cookie_made_with_an_old_key_is_refused_and_the_data_follows() {
    let network = Network::new(LinkConfig::with_delay(DELAY)).unwrap();
    let to = fast_open_echo(&network, 4);
    exchange(&network, to, b"ping").await;
    network.rotate_fast_open_key(SERVER.into());

    // The SYN carries the data, which the listener does not take; it is
    // sent again after the handshake, and a new cookie comes back.
    let offset = records(&network);
    assert_eq!(exchange(&network, to, b"ping").await, 2 * RTT);
    let syn = labelled(&network, offset, "SYN");
    assert_eq!(syn[0].bytes, 4);
    assert_eq!(syn[1].label.as_deref(), Some("SYN-ACK (cookie)"));
    // The new cookie works.
    assert_eq!(exchange(&network, to, b"ping").await, RTT);
}

#[tokio::test(start_paused = true)]
async fn a_path_that_drops_syns_with_data_costs_the_initial_rto() {
    let link = LinkConfig::with_delay(DELAY).drop_syn_data();
    let network = Network::new(link).unwrap();
    let to = fast_open_echo(&network, 4);
    // The cookie request carries no data: it passes.
    assert_eq!(exchange(&network, to, b"ping").await, 2 * RTT);

    // The SYN with data is lost; the retransmission after the initial RTO
    // carries none, and the data follows the handshake.
    let offset = records(&network);
    assert_eq!(exchange(&network, to, b"ping").await, SYN_RTO + 2 * RTT);
    let syn = labelled(&network, offset, "SYN");
    assert_eq!(syn[0].bytes, 4);
    assert_eq!(syn[0].delivered, None);
    assert_eq!(syn[1].bytes, 0);
    assert_eq!(syn[1].sent - syn[0].sent, SYN_RTO);
}

#[tokio::test(start_paused = true)]
async fn one_segment_rides_in_the_syn_and_the_rest_follows_the_handshake() {
    let network = Network::new(LinkConfig::with_delay(DELAY)).unwrap();
    let request = vec![7; 3 * MAX_SYN_DATA];
    let to = fast_open_echo(&network, request.len());
    exchange(&network, to, &request).await;

    let offset = records(&network);
    // The rest leaves with the ACK, one RTT after the SYN: the listener has
    // the whole request at 1.5 RTT, the dialer its echo at 2.
    assert_eq!(exchange(&network, to, &request).await, 2 * RTT);
    let syn = labelled(&network, offset, "SYN");
    assert_eq!(syn[0].bytes, MAX_SYN_DATA);
}

#[tokio::test(start_paused = true)]
async fn a_listener_can_answer_before_the_handshake_completes() {
    let network = Network::new(LinkConfig::with_delay(DELAY)).unwrap();
    let mut listener = network.host(SERVER).listen_fast_open(4001).unwrap();
    let to = listener.local_addr();
    exchange_with_greeting(&network, &mut listener, to).await;
    let start = Instant::now();
    let (accepted, greeted) = exchange_with_greeting(&network, &mut listener, to).await;
    // Accepted when the SYN arrived; the greeting, sent at once, reaches
    // the dialer with the SYN-ACK.
    assert_eq!(accepted - start, DELAY);
    assert_eq!(greeted - start, RTT);
}

/// The dialer writes one byte; the listener, once it has accepted, sends a
/// greeting without reading. When it accepted, and when the greeting
/// arrived.
async fn exchange_with_greeting(
    network: &Network,
    listener: &mut StreamListener,
    to: SocketAddr,
) -> (Instant, Instant) {
    let mut stream = network.host(CLIENT).connect_fast_open(to).await.unwrap();
    stream.write_all(b"x").await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let accepted = Instant::now();
    server.write_all(b"hello").await.unwrap();
    let mut greeting = [0; 5];
    stream.read_exact(&mut greeting).await.unwrap();
    (accepted, Instant::now())
}

#[tokio::test(start_paused = true)]
async fn a_duplicated_syn_opens_a_second_connection_with_the_same_data() {
    let after = Duration::from_millis(300);
    let network = Network::new(LinkConfig::with_delay(DELAY).duplicate_syn_data(after)).unwrap();
    let mut listener = network.host(SERVER).listen_fast_open(4001).unwrap();
    let to = listener.local_addr();
    for _ in 0..2 {
        let start = Instant::now();
        let mut stream = network.host(CLIENT).connect_fast_open(to).await.unwrap();
        stream.write_all(b"first flight").await.unwrap();
        let (mut original, _) = listener.accept().await.unwrap();
        let mut data = [0; 12];
        original.read_exact(&mut data).await.unwrap();
        assert_eq!(&data, b"first flight");
        if start.elapsed() == DELAY {
            // The SYN carried the data: its copy comes `after` later, on a
            // connection of its own, and ends behind the data.
            let (mut copy, _) = listener.accept().await.unwrap();
            assert_eq!(start.elapsed(), after + DELAY);
            // Its answers go nowhere; it ends one RTT after it came.
            copy.write_all(b"answer").await.unwrap();
            let mut copied = Vec::new();
            copy.read_to_end(&mut copied).await.unwrap();
            assert_eq!(copied, b"first flight");
            assert_eq!(start.elapsed(), after + DELAY + RTT);
            return;
        }
    }
    panic!("no SYN carried data");
}
