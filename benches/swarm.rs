//! Real rust-libp2p `Swarm`s built with `SwarmBuilder` over netsim links, in
//! virtual time: rust-libp2p's own stacks at their defaults and at their
//! best (`onetrip_netsim::libp2p::Transport` upgraded by rust-libp2p's
//! security and muxer crates), and onetrip's presets through its
//! transports for Swarms.
//!
//! The clock starts at `Swarm::dial`; libp2p-stream's `Control::open_stream`
//! then returns the stream once the connection is up and the stream's
//! protocol negotiated as the Swarm is configured to (`V1`, or `V1Lazy` with
//! `with_substream_upgrade_protocol_override`); the client writes 32 bytes
//! of `/ipfs/ping/1.0.0` and reads the first byte of the echo, as onetrip's
//! measurement does. Nothing on that path waits on a timer.

use std::{fmt, io, net::SocketAddr, sync::Arc, time::Duration};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    PeerId, StreamProtocol, Swarm, SwarmBuilder, Transport,
    core::{muxing::StreamMuxerBox, transport::Boxed, upgrade::Version},
    identity::Keypair,
    noise,
    swarm::{NetworkBehaviour, dial_opts::DialOpts},
    tls, yamux,
};
use onetrip_netsim::{Host, LinkConfig, Network};
use onetrip_stack::{
    BindUdp, Preset, TransportKind,
    libp2p::StreamUpgrade,
    measure::{CLIENT, Measurement, REQUEST_LEN, SERVER},
    multiaddr,
};
use tokio::time::Instant;

use crate::{
    baseline::{BoxError, PING, Security},
    summary::{RUST_LIBP2P_TCP, RUST_LIBP2P_TCP_LAZY, RUST_LIBP2P_TLS_LAZY},
};

/// A rust-libp2p TCP configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Libp2pTcp {
    /// `SwarmBuilder::with_tcp(…, noise, yamux)` and the Swarm's defaults:
    /// multistream-select `V1Lazy` for the upgrade, `V1` for substreams.
    Defaults,
    /// As [`Libp2pTcp::Defaults`], with `V1Lazy` substreams as well.
    LazySubstreams,
    /// TLS instead of Noise, `V1Lazy` substreams: the configuration of
    /// rust-libp2p's own perf binary in the libp2p test-plans.
    TlsLazySubstreams,
}

impl Libp2pTcp {
    /// Every configuration, defaults first.
    pub const ALL: [Libp2pTcp; 3] = [
        Libp2pTcp::Defaults,
        Libp2pTcp::LazySubstreams,
        Libp2pTcp::TlsLazySubstreams,
    ];

    fn tls(self) -> bool {
        self == Libp2pTcp::TlsLazySubstreams
    }

    /// How streams negotiate their protocol.
    pub fn substreams(self) -> Version {
        match self {
            Libp2pTcp::Defaults => Version::V1,
            Libp2pTcp::LazySubstreams | Libp2pTcp::TlsLazySubstreams => Version::V1Lazy,
        }
    }

    /// Its security upgrade for `keypair`, as the benches compose it.
    ///
    /// # Errors
    /// If the upgrade cannot be made for the key.
    pub fn security(self, keypair: &Keypair) -> Result<Security, BoxError> {
        if self.tls() {
            Security::tls(keypair)
        } else {
            Security::noise(keypair)
        }
    }

    /// Its name in the benches and their summary.
    pub fn bench_name(self) -> &'static str {
        match self {
            Libp2pTcp::Defaults => RUST_LIBP2P_TCP,
            Libp2pTcp::LazySubstreams => RUST_LIBP2P_TCP_LAZY,
            Libp2pTcp::TlsLazySubstreams => RUST_LIBP2P_TLS_LAZY,
        }
    }
}

impl fmt::Display for Libp2pTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Libp2pTcp::Defaults => "rust-libp2p 0.57 tcp, noise, yamux (defaults)",
            Libp2pTcp::LazySubstreams => "rust-libp2p 0.57 tcp, noise, yamux, `V1Lazy` substreams",
            Libp2pTcp::TlsLazySubstreams => "rust-libp2p 0.57 tcp, tls, yamux, `V1Lazy` substreams",
        })
    }
}

/// A Swarm connection as every transport here gives it.
pub type Connected = (PeerId, StreamMuxerBox);

/// rust-libp2p's own transport with `stack` on `host`'s netsim stream
/// links (`onetrip_netsim::libp2p::Transport`, upgraded by rust-libp2p's
/// security and muxer crates as `SwarmBuilder::with_tcp` would).
///
/// # Errors
/// If the security upgrade cannot be made for the key.
pub fn libp2p_transport(
    key: &Keypair,
    host: Host,
    stack: Libp2pTcp,
) -> Result<Boxed<Connected>, BoxError> {
    let base = onetrip_netsim::libp2p::Transport::new(host).upgrade(Version::V1Lazy);
    Ok(if stack.tls() {
        base.authenticate(tls::Config::new(key)?)
            .multiplex(yamux::Config::default())
            .boxed()
    } else {
        base.authenticate(noise::Config::new(key)?)
            .multiplex(yamux::Config::default())
            .boxed()
    })
}

/// onetrip's transport with `preset` on `host`, accepting 0-RTT data: a
/// TCP preset over the host's netsim stream links
/// (`onetrip_stack::libp2p::StreamUpgrade`), a QUIC one over its datagram
/// links (`onetrip_stack::libp2p::Transport`).
///
/// # Errors
/// If the configuration cannot be made for the key.
pub fn onetrip_transport(
    key: &Keypair,
    host: Host,
    preset: Preset,
) -> Result<Boxed<Connected>, BoxError> {
    let config = onetrip_stack::Config::new(key.clone())?
        .with_preset(preset)?
        .with_accept_0rtt(true);
    Ok(match preset {
        Preset::Tcp(_) => {
            let upgrade = StreamUpgrade::new(config);
            onetrip_netsim::libp2p::Transport::new(host)
                .and_then(move |io, point| upgrade.apply(io.into_inner(), &point))
                .boxed()
        }
        Preset::Quic(_) => {
            let bind: BindUdp = Arc::new(move |addr: SocketAddr| {
                let socket = host.bind_udp(addr.port()).map_err(io::Error::other)?;
                Ok(socket as Arc<dyn quinn::AsyncUdpSocket>)
            });
            onetrip_stack::libp2p::Transport::with_endpoint(
                onetrip_stack::Endpoint::new(config).with_udp(bind),
            )
            .boxed()
        }
    })
}

/// A Swarm with `transport` and `behaviour`, negotiating its substreams'
/// protocols with `substreams`, its idle connections kept (the runs here
/// close them when they mean to).
///
/// # Errors
/// Never, in practice: the builder's own.
pub fn build<B: NetworkBehaviour>(
    key: Keypair,
    transport: Boxed<Connected>,
    behaviour: B,
    substreams: Version,
) -> Result<Swarm<B>, BoxError> {
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|_| transport)?
        .with_behaviour(|_| behaviour)?
        .with_swarm_config(|config| {
            config
                .with_idle_connection_timeout(Duration::from_secs(3600))
                .with_substream_upgrade_protocol_override(substreams)
        })
        .build())
}

/// rust-libp2p with `stack`, both sides Swarms, over a netsim link of
/// one-way delay `delay`: from the dial to the first byte of the echo.
/// Must run with a paused clock.
///
/// # Errors
/// Whatever failed (nothing should on a loss-free link).
pub async fn libp2p_tcp(stack: Libp2pTcp, delay: Duration) -> Result<Measurement, BoxError> {
    let transport = move |key: &Keypair, host| libp2p_transport(key, host, stack);
    two_swarms(
        transport,
        stack.substreams(),
        TransportKind::Tcp,
        delay,
        false,
    )
    .await
}

/// Runs `server`, echoing each `protocol` stream's request, in tasks of its
/// own.
fn serve_echo(
    mut server: Swarm<libp2p_stream::Behaviour>,
    protocol: StreamProtocol,
) -> Result<(), BoxError> {
    let mut incoming = server.behaviour().new_control().accept(protocol)?;
    tokio::spawn(async move {
        loop {
            server.select_next_some().await;
        }
    });
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            tokio::spawn(async move {
                let mut request = [0; REQUEST_LEN];
                if stream.read_exact(&mut request).await.is_ok() {
                    let _ = stream.write_all(&request).await;
                    let _ = stream.close().await;
                }
            });
        }
    });
    Ok(())
}

/// Opens a `protocol` stream to `peer` (dialing it if need be), writes the
/// request and reads the echo's first byte.
async fn first_byte(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    protocol: StreamProtocol,
) -> Result<(), BoxError> {
    let mut stream = control.open_stream(peer, protocol).await?;
    stream.write_all(&[7; REQUEST_LEN]).await?;
    stream.flush().await?;
    let mut first = [0; 1];
    stream.read_exact(&mut first).await?;
    Ok(())
}

/// Polls `swarm` until `future` completes.
async fn driving<T>(
    swarm: &mut Swarm<libp2p_stream::Behaviour>,
    future: impl Future<Output = T>,
) -> T {
    tokio::pin!(future);
    loop {
        tokio::select! {
            out = &mut future => return out,
            _ = swarm.select_next_some() => {}
        }
    }
}

/// Two Swarms on onetrip's transport with `preset` over a netsim link of
/// one-way delay `delay`, as [`libp2p_tcp`] measures, with `V1Lazy`
/// substreams. With `reconnect`, a first connection (with one request)
/// leaves what a reconnect may use (QUIC's session tickets), the client
/// closes it, and its second connection is measured. Must run with a
/// paused clock.
///
/// # Errors
/// Whatever failed (nothing should on a loss-free link).
pub async fn onetrip(
    preset: Preset,
    delay: Duration,
    reconnect: bool,
) -> Result<Measurement, BoxError> {
    let transport = move |key: &Keypair, host| onetrip_transport(key, host, preset);
    two_swarms(
        transport,
        Version::V1Lazy,
        preset.transport(),
        delay,
        reconnect,
    )
    .await
}

/// A client and a server Swarm, each on a transport `transport` makes for
/// its key and netsim host, over a link of one-way delay `delay`, and their
/// substreams negotiated with `substreams`: from the client's dial to the
/// first byte of the server's echo (after a first connection, closed, with
/// `reconnect`).
async fn two_swarms(
    transport: impl Fn(&Keypair, Host) -> Result<Boxed<Connected>, BoxError>,
    substreams: Version,
    kind: TransportKind,
    delay: Duration,
    reconnect: bool,
) -> Result<Measurement, BoxError> {
    let network = Network::new(LinkConfig::with_delay(delay))?;
    let ping = StreamProtocol::new(PING);
    let swarm = |seed: u8, ip| {
        let key = Keypair::ed25519_from_bytes([seed; 32])?;
        let transport = transport(&key, network.host(ip))?;
        build(key, transport, libp2p_stream::Behaviour::new(), substreams)
    };

    let mut server = swarm(2, SERVER)?;
    let server_peer = *server.local_peer_id();
    let addr = multiaddr(kind, SocketAddr::new(SERVER.into(), 4001));
    server.listen_on(addr.clone())?;
    serve_echo(server, ping.clone())?;

    let mut client = swarm(1, CLIENT)?;
    let mut control = client.behaviour().new_control();
    if reconnect {
        client.dial(
            DialOpts::peer_id(server_peer)
                .addresses(vec![addr.clone()])
                .build(),
        )?;
        driving(
            &mut client,
            first_byte(&mut control, server_peer, ping.clone()),
        )
        .await?;
        // QUIC's session tickets follow the handshake; let them land.
        driving(&mut client, tokio::time::sleep(4 * delay)).await;
        client
            .disconnect_peer_id(server_peer)
            .map_err(|()| "no connection to close")?;
        driving(&mut client, tokio::time::sleep(4 * delay)).await;
        if client.is_connected(&server_peer) {
            return Err("the first connection did not close".into());
        }
    }

    let offset = network.elapsed();
    let start = Instant::now();
    client.dial(DialOpts::peer_id(server_peer).addresses(vec![addr]).build())?;
    driving(&mut client, first_byte(&mut control, server_peer, ping)).await?;
    let ttfb = start.elapsed();
    Ok(Measurement {
        rtt: network.rtt(CLIENT.into(), SERVER.into()),
        ttfb,
        recording: network
            .recorder()
            .recording()
            .since(offset)
            .until(offset + ttfb),
        early_muxer: false,
        zero_rtt: None,
    })
}
