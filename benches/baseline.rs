//! rust-libp2p's stacks for the loopback benches, composed from its own
//! crates as its `SwarmBuilder` composes them (`with_tcp(…, noise or tls,
//! yamux)` negotiates security and muxer with multistream-select `V1Lazy`,
//! the security upgrade made once per identity; `with_quic` is
//! libp2p-quic) and negotiating each stream's protocol as its Swarm does
//! (`V1`, or `V1Lazy` with the substream override). Round trips in virtual
//! time come from real Swarms: see [`crate::swarm`].

use std::{net::SocketAddr, pin::Pin, task::Poll};

use futures::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt,
    future::{BoxFuture, poll_fn},
};
use libp2p_core::{
    Endpoint as Role, Multiaddr,
    muxing::{StreamMuxerBox, StreamMuxerExt, SubstreamBox},
    transport::{DialOpts, ListenerId, PortUse, Transport, TransportEvent},
    upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade},
};
use libp2p_identity::Keypair;
use multistream_select::{Negotiated, Version, dialer_select_proto, listener_select_proto};
use onetrip_stack::measure::REQUEST_LEN;
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

/// The request/response protocol.
pub const PING: &str = "/ipfs/ping/1.0.0";
/// The perf protocol.
pub const PERF: &str = onetrip_perf::PROTOCOL;

/// A failure of a baseline run (none is expected).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// rust-libp2p's security upgrade for one identity, made once as
/// `SwarmBuilder` makes it (a fresh Noise identity signature, or a fresh
/// TLS certificate, for every connection would tilt the comparison).
#[derive(Clone)]
pub enum Security {
    /// libp2p-noise, `/noise`.
    Noise(libp2p_noise::Config),
    /// libp2p-tls, `/tls/1.0.0`.
    Tls(libp2p_tls::Config),
}

impl Security {
    /// libp2p-noise for `keypair`.
    ///
    /// # Errors
    /// If the key cannot sign.
    pub fn noise(keypair: &Keypair) -> Result<Self, BoxError> {
        Ok(Security::Noise(libp2p_noise::Config::new(keypair)?))
    }

    /// libp2p-tls for `keypair`.
    ///
    /// # Errors
    /// If the certificate cannot be made.
    pub fn tls(keypair: &Keypair) -> Result<Self, BoxError> {
        Ok(Security::Tls(libp2p_tls::Config::new(keypair)?))
    }

    /// The protocol negotiated for it.
    pub fn protocol(&self) -> &'static str {
        match self {
            Security::Noise(_) => "/noise",
            Security::Tls(_) => "/tls/1.0.0",
        }
    }
}

type OpenReply = oneshot::Sender<Result<SubstreamBox, String>>;

/// What serves each stream the peer opens.
pub type StreamHandler = fn(SubstreamBox) -> BoxFuture<'static, ()>;

/// What the muxer's task does next.
enum Step {
    Open(Option<OpenReply>),
    Inbound(Option<SubstreamBox>),
    Event(bool),
}

/// An established rust-libp2p connection, its muxer driven by a task.
#[derive(Debug, Clone)]
pub struct Libp2pConnection {
    open: mpsc::UnboundedSender<OpenReply>,
    /// How [`Libp2pConnection::open`] negotiates a stream's protocol.
    substreams: Version,
}

impl Libp2pConnection {
    /// Drives `muxer`: opens streams on request and serves the peer's
    /// streams (ping echo, perf), until the connection ends.
    pub fn spawn(muxer: StreamMuxerBox) -> Self {
        Self::spawn_with(muxer, |stream| serve_stream(stream).boxed())
    }

    /// [`Libp2pConnection::spawn`], serving the peer's streams with `serve`.
    pub fn spawn_with(mut muxer: StreamMuxerBox, serve: StreamHandler) -> Self {
        let (open, mut requests) = mpsc::unbounded_channel::<OpenReply>();
        tokio::spawn(async move {
            loop {
                // One poll for all three: each needs the muxer.
                let step = poll_fn(|cx| {
                    if let Poll::Ready(request) = requests.poll_recv(cx) {
                        return Poll::Ready(Step::Open(request));
                    }
                    if let Poll::Ready(inbound) = muxer.poll_inbound_unpin(cx) {
                        return Poll::Ready(Step::Inbound(inbound.ok()));
                    }
                    if let Poll::Ready(event) = muxer.poll_unpin(cx) {
                        return Poll::Ready(Step::Event(event.is_ok()));
                    }
                    Poll::Pending
                })
                .await;
                match step {
                    Step::Open(Some(reply)) => {
                        let stream = poll_fn(|cx| muxer.poll_outbound_unpin(cx)).await;
                        let _ = reply.send(stream.map_err(|err| err.to_string()));
                    }
                    Step::Inbound(Some(stream)) => {
                        tokio::spawn(serve(stream));
                    }
                    Step::Event(true) => {}
                    Step::Open(None) | Step::Inbound(None) | Step::Event(false) => break,
                }
            }
            let _ = poll_fn(|cx| muxer.poll_close_unpin(cx)).await;
        });
        Libp2pConnection {
            open,
            substreams: Version::V1,
        }
    }

    /// Negotiates the protocols of the streams it opens with `version`
    /// (`V1Lazy`: as a Swarm with
    /// `with_substream_upgrade_protocol_override`).
    pub fn with_substreams(mut self, version: Version) -> Self {
        self.substreams = version;
        self
    }

    /// Opens a stream and negotiates `protocol` as configured (`V1`, the
    /// Swarm's default, unless [`Libp2pConnection::with_substreams`]).
    ///
    /// # Errors
    /// If the connection is gone or the negotiation fails.
    pub async fn open(&self, protocol: &'static str) -> Result<Negotiated<SubstreamBox>, BoxError> {
        let (reply, stream) = oneshot::channel();
        self.open.send(reply).map_err(|_| "connection closed")?;
        let stream = stream.await.map_err(|_| "connection closed")??;
        let (_, stream) = dialer_select_proto(stream, [protocol], self.substreams).await?;
        Ok(stream)
    }
}

/// Answers a stream as a [`StreamHandler`]: ping echo (32 bytes, then
/// close) or perf.
pub fn ping_and_perf(stream: SubstreamBox) -> BoxFuture<'static, ()> {
    serve_stream(stream).boxed()
}

/// Answers a stream: ping echo (32 bytes, then close) or perf.
async fn serve_stream(stream: SubstreamBox) {
    let Ok((protocol, stream)) = listener_select_proto(stream, [PING, PERF]).await else {
        return;
    };
    if protocol == PERF {
        let _ = onetrip_perf::serve(stream.compat(), onetrip_perf::ServerLimits::default()).await;
        return;
    }
    let mut stream = stream;
    let mut request = [0; REQUEST_LEN];
    if stream.read_exact(&mut request).await.is_ok() {
        let _ = stream.write_all(&request).await;
        let _ = stream.close().await;
    }
}

/// The dialer's side of rust-libp2p tcp + `security` + yamux over `io`,
/// negotiated as `SwarmBuilder::with_tcp` does (`V1Lazy`).
///
/// # Errors
/// If a negotiation or the handshake fails.
pub async fn tcp_dial<IO>(io: IO, security: &Security) -> Result<Libp2pConnection, BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (_, io) = dialer_select_proto(io, [security.protocol()], Version::V1Lazy).await?;
    let muxer = match security.clone() {
        Security::Noise(noise) => {
            let (_, io) = noise.upgrade_outbound(io, "/noise").await?;
            yamux_outbound(io).await?
        }
        Security::Tls(tls) => {
            let (_, io) = tls.upgrade_outbound(io, "/tls/1.0.0").await?;
            yamux_outbound(io).await?
        }
    };
    Ok(Libp2pConnection::spawn(muxer))
}

async fn yamux_outbound<IO>(io: IO) -> Result<StreamMuxerBox, BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (_, io) = dialer_select_proto(io, ["/yamux/1.0.0"], Version::V1Lazy).await?;
    let muxer = libp2p_yamux::Config::default()
        .upgrade_outbound(io, "/yamux/1.0.0")
        .await?;
    Ok(StreamMuxerBox::new(muxer))
}

/// The listener's side of rust-libp2p tcp + `security` + yamux over `io`.
///
/// # Errors
/// If a negotiation or the handshake fails.
pub async fn tcp_accept<IO>(io: IO, security: &Security) -> Result<Libp2pConnection, BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (_, io) = listener_select_proto(io, [security.protocol()]).await?;
    let muxer = match security.clone() {
        Security::Noise(noise) => {
            let (_, io) = noise.upgrade_inbound(io, "/noise").await?;
            yamux_inbound(io).await?
        }
        Security::Tls(tls) => {
            let (_, io) = tls.upgrade_inbound(io, "/tls/1.0.0").await?;
            yamux_inbound(io).await?
        }
    };
    Ok(Libp2pConnection::spawn(muxer))
}

async fn yamux_inbound<IO>(io: IO) -> Result<StreamMuxerBox, BoxError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (_, io) = listener_select_proto(io, ["/yamux/1.0.0"]).await?;
    let muxer = libp2p_yamux::Config::default()
        .upgrade_inbound(io, "/yamux/1.0.0")
        .await?;
    Ok(StreamMuxerBox::new(muxer))
}

/// One ping request on a fresh stream, until the first response byte.
///
/// # Errors
/// If the stream fails.
pub async fn ping(connection: &Libp2pConnection) -> Result<(), BoxError> {
    let mut stream = connection.open(PING).await?;
    stream.write_all(&[7; REQUEST_LEN]).await?;
    stream.flush().await?;
    let mut first = [0; 1];
    stream.read_exact(&mut first).await?;
    Ok(())
}

/// A rust-libp2p TCP listener on loopback with `security`, serving ping
/// and perf; its address.
///
/// # Errors
/// If binding fails.
pub async fn tcp_server(security: Security) -> Result<SocketAddr, BoxError> {
    tcp_server_on(SocketAddr::from(([127, 0, 0, 1], 0)), security).await
}

/// [`tcp_server`] on `addr`.
///
/// # Errors
/// If binding fails.
pub async fn tcp_server_on(addr: SocketAddr, security: Security) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let security = security.clone();
            tokio::spawn(async move {
                let connection = tcp_accept(socket.compat(), &security).await;
                std::future::pending::<()>().await;
                drop(connection);
            });
        }
    });
    Ok(addr)
}

/// Dials a rust-libp2p TCP listener on loopback (`TCP_NODELAY`, as
/// libp2p-tcp sets by default).
///
/// # Errors
/// If connecting or the handshake fails.
pub async fn tcp_connect(
    addr: SocketAddr,
    security: &Security,
) -> Result<Libp2pConnection, BoxError> {
    let socket = tokio::net::TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    tcp_dial(socket.compat(), security).await
}

/// rust-libp2p's QUIC transport (libp2p-quic).
pub type QuicTransport = libp2p_quic::tokio::Transport;

/// A libp2p-quic listener on loopback serving ping and perf; its address.
///
/// # Errors
/// If listening fails.
pub async fn quic_server() -> Result<Multiaddr, BoxError> {
    quic_server_with(ping_and_perf).await
}

/// A libp2p-quic listener on loopback serving each stream with `serve`;
/// its address.
///
/// # Errors
/// If listening fails.
pub async fn quic_server_with(serve: StreamHandler) -> Result<Multiaddr, BoxError> {
    quic_server_on("/ip4/127.0.0.1/udp/0/quic-v1".parse()?, serve).await
}

/// A libp2p-quic listener on `addr` serving each stream with `serve`; its
/// address.
///
/// # Errors
/// If listening fails.
pub async fn quic_server_on(addr: Multiaddr, serve: StreamHandler) -> Result<Multiaddr, BoxError> {
    let keypair = Keypair::generate_ed25519();
    let mut transport = QuicTransport::new(libp2p_quic::Config::new(&keypair));
    transport.listen_on(ListenerId::next(), addr)?;
    let (addr_tx, mut addr_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match poll_fn(|cx| Pin::new(&mut transport).poll(cx)).await {
                TransportEvent::NewAddress { listen_addr, .. } => {
                    let _ = addr_tx.send(listen_addr);
                }
                TransportEvent::Incoming { upgrade, .. } => {
                    tokio::spawn(async move {
                        if let Ok((_, connection)) = upgrade.await {
                            let connection = Libp2pConnection::spawn_with(
                                StreamMuxerBox::new(connection),
                                serve,
                            );
                            std::future::pending::<()>().await;
                            drop(connection);
                        }
                    });
                }
                _ => {}
            }
        }
    });
    Ok(addr_rx.recv().await.ok_or("no listen address")?)
}

/// Dials a libp2p-quic listener from `transport`: its muxer, driven by
/// whoever holds it.
///
/// # Errors
/// If the dial fails.
pub async fn quic_dial(
    transport: &mut QuicTransport,
    addr: &Multiaddr,
) -> Result<StreamMuxerBox, BoxError> {
    quic_dial_start(transport, addr)?.await
}

/// Starts dialing a libp2p-quic listener from `transport`: the dial goes on
/// without the transport, so many can run at once.
///
/// # Errors
/// If the dial cannot start; the future, if it fails.
pub fn quic_dial_start(
    transport: &mut QuicTransport,
    addr: &Multiaddr,
) -> Result<impl Future<Output = Result<StreamMuxerBox, BoxError>> + use<>, BoxError> {
    let opts = DialOpts {
        role: Role::Dialer,
        port_use: PortUse::New,
    };
    let dial = transport.dial(addr.clone(), opts)?;
    Ok(async move {
        let (_, connection) = dial.await?;
        Ok(StreamMuxerBox::new(connection))
    })
}

/// Dials a libp2p-quic listener from `transport`; a task drives it.
///
/// # Errors
/// If the dial fails.
pub async fn quic_connect(
    transport: &mut QuicTransport,
    addr: &Multiaddr,
) -> Result<Libp2pConnection, BoxError> {
    Ok(Libp2pConnection::spawn(quic_dial(transport, addr).await?))
}
