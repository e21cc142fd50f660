//! TCP Fast Open on the real kernel, in a network namespace each test makes
//! for itself (Linux, root: CI runs as root; without it the test fails and
//! says so). The kernel's own word is the evidence: `TCP_INFO` says the
//! dialer's SYN carried data that the server acknowledged
//! (`TCPI_OPT_SYN_DATA`), and the namespace's counters say how many SYNs
//! did (`TCPFastOpenActive`) and how many a listener took
//! (`TCPFastOpenPassive`).

use std::{net::SocketAddr, os::fd::AsFd};

use libp2p_identity::Keypair;
use onetrip_stack::{
    Config, Endpoint, Error, Layering, fast_open_status,
    measure::{self, ping},
    tcp_connect, tcp_multiaddr,
};
use onetrip_testkit::netns;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::either::Either;

/// Runs `test` on a thread of its own in a new network namespace whose
/// `net.ipv4.tcp_fastopen` is `sysctl`, on a tokio runtime of that thread.
fn in_private_namespace<F, Fut>(sysctl: u32, test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        netns::enter_private(sysctl).unwrap_or_else(|err| panic!("{err}"));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(test());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A listening endpoint with `layering` on loopback address `ip`,
/// answering pings; its address. (A dialer keeps one Fast Open cookie per
/// server address, whatever the port.)
async fn echo_server(layering: Layering, ip: &str) -> (Endpoint, SocketAddr) {
    let config = Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_layering(layering)
        .unwrap()
        .with_accept_0rtt(true)
        .with_protocols([ping()]);
    let endpoint = Endpoint::new(config);
    let mut listener = endpoint
        .listen(&format!("/ip4/{ip}/tcp/0").parse().unwrap())
        .await
        .unwrap();
    let addr = onetrip_stack::tcp_socket_addr(listener.local_addr())
        .unwrap()
        .0;
    tokio::spawn(async move {
        while let Ok(mut connection) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok((_, mut stream)) = connection.accept_stream().await {
                    tokio::spawn(async move {
                        let mut request = [0; measure::REQUEST_LEN];
                        if stream.read_exact(&mut request).await.is_ok() {
                            let _ = stream.write_all(&request).await;
                            let _ = stream.shutdown().await;
                        }
                    });
                }
            });
        }
    });
    (endpoint, addr)
}

fn client(layering: Layering) -> Endpoint {
    Endpoint::new(
        Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_layering(layering)
            .unwrap()
            .with_protocols([ping()]),
    )
}

fn counter(name: &str) -> u64 {
    netns::tcp_ext(name).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// Dials `addr` over the socket `Endpoint::dial` opens, sends one ping,
/// and returns whether the kernel says the SYN's data was acknowledged.
async fn dial_and_ping(client: &Endpoint, addr: SocketAddr, server: &Endpoint) -> bool {
    let socket = tcp_connect(addr, true).await.unwrap();
    let fd = match &socket {
        Either::Left(plain) => plain.as_fd().try_clone_to_owned(),
        Either::Right(fast_open) => fast_open.as_fd().try_clone_to_owned(),
    }
    .unwrap();
    let connection = client
        .dial_io(socket, tcp_multiaddr(addr), Some(server.local_peer_id()))
        .await
        .unwrap();
    measure::request(&connection).await.unwrap();
    let acked = netns::syn_data_acked(&fd).unwrap();
    connection.close().await.unwrap();
    acked
}

/// Both Fast Open presets: the first dial fetches the cookie, every later
/// one puts its first flight in the SYN, and the listener takes it.
#[test]
fn a_reconnect_puts_its_first_flight_in_the_syn() {
    in_private_namespace(3, || async {
        assert!(fast_open_status(false).is_ok() && fast_open_status(true).is_ok());
        let presets = [
            (Layering::TCP_ONETRIP_TFO, "127.0.0.1"),
            (Layering::TCP_TLS_0RTT_TFO, "127.0.0.2"),
        ];
        for (layering, ip) in presets {
            let (server, addr) = echo_server(layering, ip).await;
            let client = client(layering);
            let (active, passive) = (counter("TCPFastOpenActive"), counter("TCPFastOpenPassive"));
            assert!(
                !dial_and_ping(&client, addr, &server).await,
                "{layering}: no cookie yet"
            );
            for _ in 0..3 {
                assert!(
                    dial_and_ping(&client, addr, &server).await,
                    "{layering}: TCP_INFO shows no data in the SYN"
                );
            }
            // The endpoint's own dial does the same.
            let dialed = client
                .dial(&tcp_multiaddr(addr), Some(server.local_peer_id()))
                .await
                .unwrap();
            measure::request(&dialed).await.unwrap();
            dialed.close().await.unwrap();
            assert_eq!(counter("TCPFastOpenActive") - active, 4, "{layering}");
            assert_eq!(counter("TCPFastOpenPassive") - passive, 4, "{layering}");
        }
    });
}

/// A kernel that allows no Fast Open: the endpoints say so (typed), and
/// every connection still works, with a plain handshake.
#[test]
fn a_kernel_without_fast_open_is_reported_and_connections_fall_back() {
    in_private_namespace(0, || async {
        assert!(matches!(
            fast_open_status(false),
            Err(Error::FastOpenUnavailable {
                side: "dialer",
                sysctl: Some(0)
            })
        ));
        assert!(matches!(
            fast_open_status(true),
            Err(Error::FastOpenUnavailable {
                side: "listener",
                sysctl: Some(0)
            })
        ));
        let layering = Layering::TCP_TLS_0RTT_TFO;
        let (server, addr) = echo_server(layering, "127.0.0.1").await;
        let client = client(layering);
        for _ in 0..3 {
            assert!(!dial_and_ping(&client, addr, &server).await);
        }
        assert_eq!(counter("TCPFastOpenActive"), 0);
    });
}

/// A dialing kernel with Fast Open towards a listener whose kernel takes
/// none (client bit only, Linux's default): no cookie comes back, and the
/// data follows a plain handshake.
#[test]
fn a_listener_that_takes_no_syn_data_gets_a_plain_handshake() {
    in_private_namespace(1, || async {
        assert!(fast_open_status(false).is_ok());
        assert!(fast_open_status(true).is_err());
        let layering = Layering::TCP_ONETRIP_TFO;
        let (server, addr) = echo_server(layering, "127.0.0.1").await;
        let client = client(layering);
        for _ in 0..3 {
            assert!(!dial_and_ping(&client, addr, &server).await);
        }
        assert_eq!(counter("TCPFastOpenPassive"), 0);
    });
}
