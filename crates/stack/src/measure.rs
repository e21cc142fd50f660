//! Round trips measured on netsim links in virtual time: the time from
//! `dial` to the first byte of the response to a request on a fresh
//! stream, for any layering, with the link's record of every flight.
//!
//! The functions must run on a tokio runtime with a paused clock
//! (`#[tokio::test(start_paused = true)]`, or [`paused_runtime`]): then
//! every time is exact. Tests assert the round-trip table with them, and
//! `spec/round-trips.md` is generated from them.

use std::{net::Ipv4Addr, time::Duration};

use futures_util::StreamExt;
use libp2p_identity::Keypair;
use onetrip_netsim::{LinkConfig, Network, Recording, StreamListener};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::Instant,
};

use crate::{Config, Connection, Endpoint, Error, Layering, Protocol, QuicLayering, tcp_multiaddr};

/// The dialing host.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The listening host.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The request's size; the response echoes it.
pub const REQUEST_LEN: usize = 32;

/// The request's protocol.
pub fn ping() -> Protocol {
    Protocol::new("/ipfs/ping/1.0.0").expect("a valid protocol name")
}

/// A current-thread tokio runtime with a paused clock, for running the
/// measurements outside tests.
///
/// # Panics
/// If the runtime cannot be built.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

/// What one dial measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The link's round-trip time.
    pub rtt: Duration,
    /// From `dial` to the first response byte.
    pub ttfb: Duration,
    /// The link's record from `dial` to then.
    pub recording: Recording,
    /// Whether the muxer was chosen inside the Noise handshake.
    pub early_muxer: bool,
    /// For a 0-RTT dial: whether the server accepted the 0-RTT data.
    pub zero_rtt: Option<bool>,
}

impl Measurement {
    /// The time to first byte in round trips.
    pub fn ttfb_rtts(&self) -> f64 {
        self.ttfb.as_secs_f64() / self.rtt.as_secs_f64()
    }
}

/// An identity from a fixed seed: the same sizes on the wire every run.
fn identity(seed: u8) -> Keypair {
    Keypair::ed25519_from_bytes([seed; 32]).expect("32 bytes make an Ed25519 key")
}

/// One request on a fresh stream: writes it, returns once the first
/// response byte is read.
///
/// # Errors
/// If the stream fails.
pub async fn request(connection: &Connection) -> Result<(), Error> {
    let mut stream = connection.open_stream(ping()).await?;
    stream.write_all(&[7; REQUEST_LEN]).await?;
    stream.flush().await?;
    let mut first = [0; 1];
    stream.read_exact(&mut first).await?;
    Ok(())
}

/// Serves echo on every stream of every connection `listener` accepts.
fn serve(mut listener: crate::Listener) {
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
}

/// A TCP layering over a netsim stream link of one-way delay `delay`; the
/// listener uses the same layering.
///
/// # Errors
/// Any [`Error`] of the stack (none is expected on a loss-free link).
pub async fn tcp(layering: Layering, delay: Duration) -> Result<Measurement, Error> {
    tcp_resumed(layering, delay, ZeroRttServer::Accepts, false).await
}

/// A TCP layering over a netsim stream link of one-way delay `delay`, the
/// listener using the same layering (TCP Fast Open on if it asks for it)
/// and doing `server` about TLS early data. With `reconnect`, a first
/// connection (with one request) leaves a session ticket and a Fast Open
/// cookie, and the second connection is measured; for
/// [`ZeroRttServer::Rejects`], it goes to a second listener of the same
/// identity and session store that takes no early data.
///
/// # Errors
/// Any [`Error`] of the stack (none is expected on a loss-free link).
pub async fn tcp_resumed(
    layering: Layering,
    delay: Duration,
    server: ZeroRttServer,
    reconnect: bool,
) -> Result<Measurement, Error> {
    let network = Network::new(LinkConfig::with_delay(delay)).map_err(netsim)?;
    let server_config = Config::new(identity(2))?
        .with_layering(layering)?
        .with_accept_0rtt(server != ZeroRttServer::Refuses)
        .with_protocols([ping()]);
    let server_endpoint = Endpoint::new(server_config.clone());
    let server_id = server_endpoint.local_peer_id();
    // The listener has TCP Fast Open on when the layering asks for it.
    let listen = |port| {
        let host = network.host(SERVER);
        if layering.fast_open {
            host.listen_fast_open(port)
        } else {
            host.listen(port)
        }
    };
    let sim_listener = listen(4001).map_err(netsim)?;
    let mut server_addr = sim_listener.local_addr();
    serve(listen_on_netsim(&server_endpoint, sim_listener));

    let client = Endpoint::new(
        Config::new(identity(1))?
            .with_layering(layering)?
            .with_protocols([ping()]),
    );
    let dial = |addr| {
        let network = &network;
        let client = &client;
        async move {
            let host = network.host(CLIENT);
            let io = if layering.fast_open {
                host.connect_fast_open(addr).await
            } else {
                host.connect(addr).await
            };
            let io = io.map_err(netsim)?;
            client
                .dial_io(io, tcp_multiaddr(addr), Some(server_id))
                .await
        }
    };
    if reconnect {
        let first = dial(server_addr).await?;
        request(&first).await?;
        // The session ticket follows the handshake; let it land.
        tokio::time::sleep(4 * delay).await;
        first.close().await?;
        if server == ZeroRttServer::Rejects {
            let refusing = Endpoint::new(server_config.with_accept_0rtt(false));
            let sim_listener = listen(4002).map_err(netsim)?;
            server_addr = sim_listener.local_addr();
            serve(listen_on_netsim(&refusing, sim_listener));
        }
        tokio::time::sleep(4 * delay).await;
    }

    let offset = network.elapsed();
    let start = Instant::now();
    let connection = dial(server_addr).await?;
    request(&connection).await?;
    let ttfb = start.elapsed();
    let measurement = Measurement {
        rtt: network.rtt(CLIENT.into(), SERVER.into()),
        ttfb,
        recording: network
            .recorder()
            .recording()
            .since(offset)
            .until(offset + ttfb),
        early_muxer: connection.early_muxer(),
        zero_rtt: None,
    };
    connection.close().await?;
    Ok(measurement)
}

/// Serves `endpoint`'s TCP layering on a netsim stream listener.
pub fn listen_on_netsim(endpoint: &Endpoint, listener: StreamListener) -> crate::Listener {
    let local_addr = tcp_multiaddr(listener.local_addr());
    // netsim refuses an accept only once the network is gone: that ends
    // the listener.
    let incoming = futures_util::stream::unfold(listener, |mut listener| async move {
        let (io, peer) = listener.accept().await.ok()?;
        Some((Ok((io, tcp_multiaddr(peer))), listener))
    });
    endpoint.listen_on(incoming.boxed(), local_addr)
}

/// What a server does about early data: QUIC 0-RTT data, or TLS 1.3 early
/// data on TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroRttServer {
    /// Accepts early data.
    Accepts,
    /// Never accepts it: its tickets allow none, so clients do not try.
    Refuses,
    /// Accepted it when it issued the ticket, refuses it on the measured
    /// connection (its configuration changed): the client tries, is
    /// rejected, and replays.
    Rejects,
}

/// A QUIC layering over a netsim datagram link of one-way delay `delay`.
/// With `reconnect`, a first connection (with one request) leaves session
/// tickets and the second connection is measured.
///
/// # Errors
/// Any [`Error`] of the stack (none is expected on a loss-free link).
pub async fn quic(
    layering: QuicLayering,
    delay: Duration,
    server: ZeroRttServer,
    reconnect: bool,
) -> Result<Measurement, Error> {
    let network = Network::new(LinkConfig::with_delay(delay)).map_err(netsim)?;
    let server_config = Config::new(identity(2))?
        .with_quic_layering(layering)
        .with_accept_0rtt(server != ZeroRttServer::Refuses)
        .with_protocols([ping()]);
    let server_endpoint = Endpoint::new(server_config);
    let server_id = server_endpoint.local_peer_id();
    let server_quic =
        server_endpoint.quic_endpoint(network.host(SERVER).bind_udp(4433).map_err(netsim)?)?;
    let server_addr = server_quic.local_addr()?;
    serve(server_endpoint.listen_quic(server_quic.clone())?);

    let client = Endpoint::new(Config::new(identity(1))?.with_quic_layering(layering));
    let client_quic = client.quic_endpoint(network.host(CLIENT).bind_udp(0).map_err(netsim)?)?;
    if reconnect {
        let first = client
            .dial_quic(&client_quic, server_addr, Some(server_id))
            .await?;
        request(&first).await?;
        // The session tickets follow the handshake; let them land.
        tokio::time::sleep(4 * delay).await;
        first.close().await?;
        if server == ZeroRttServer::Rejects {
            server_quic.set_accept_0rtt(false)?;
        }
        tokio::time::sleep(4 * delay).await;
    }

    let offset = network.elapsed();
    let start = Instant::now();
    let connection = client
        .dial_quic(&client_quic, server_addr, Some(server_id))
        .await?;
    request(&connection).await?;
    let ttfb = start.elapsed();
    let zero_rtt = match connection.quic() {
        Some(quic) => quic.zero_rtt_accepted().await,
        None => None,
    };
    let measurement = Measurement {
        rtt: network.rtt(CLIENT.into(), SERVER.into()),
        ttfb,
        recording: network
            .recorder()
            .recording()
            .since(offset)
            .until(offset + ttfb),
        early_muxer: false,
        zero_rtt,
    };
    connection.close().await?;
    Ok(measurement)
}

fn netsim(err: onetrip_netsim::Error) -> Error {
    std::io::Error::other(err).into()
}
