//! Dialing and listening over TCP, QUIC, or any byte stream.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, Once},
};

use futures_util::{FutureExt, Stream, StreamExt, future::BoxFuture, stream::BoxStream};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use onetrip_multistream::Deadline;
use quinn::AsyncUdpSocket;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
};

use crate::{
    Config, Connection, Error,
    addr::{TransportKind, parse_addr, quic_multiaddr, tcp_multiaddr},
    tcp::{self, ErrorPause},
    upgrade,
};

/// Dials and listens with one identity and layering, over TCP
/// (`/ip4/…/tcp/…`) and QUIC (`/ip4/…/udp/…/quic-v1`).
///
/// ```no_run
/// # async fn run() -> Result<(), onetrip_stack::Error> {
/// use libp2p_identity::Keypair;
/// use onetrip_stack::{Config, Endpoint, Layering, Protocol};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let config = Config::new(Keypair::generate_ed25519())?.with_layering(Layering::TCP_ONETRIP)?;
/// let endpoint = Endpoint::new(config);
/// let addr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
/// let connection = endpoint.dial(&addr, None).await?;
/// let ping = Protocol::new("/ipfs/ping/1.0.0").expect("a valid protocol name");
/// let mut stream = connection.open_stream(ping).await?;
/// stream.write_all(&[7; 32]).await?;
/// let mut echo = [0; 32];
/// stream.read_exact(&mut echo).await?;
/// connection.close().await
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoint {
    config: Arc<Config>,
    /// QUIC endpoints: those bound to listen first, then those bound for
    /// dialing (dials take the first of their address family).
    quic: Arc<Mutex<Vec<onetrip_quic::Endpoint>>>,
    /// Whether the kernel's word on TCP Fast Open has been read (and a
    /// refusal reported), for dialing and for listening.
    fast_open_checked: Arc<[Once; 2]>,
    /// Binds QUIC's datagram sockets: the kernel's if `None`.
    bind_udp: Option<BindUdp>,
}

/// Binds a datagram socket on an address (port 0: any free port), for
/// [`Endpoint::with_udp`].
pub type BindUdp = Arc<dyn Fn(SocketAddr) -> io::Result<Arc<dyn AsyncUdpSocket>> + Send + Sync>;

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &self.config)
            .field("quic", &self.quic)
            .field("bind_udp", &self.bind_udp.is_some())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with this configuration.
    pub fn new(config: Config) -> Self {
        Endpoint {
            config: Arc::new(config),
            quic: Arc::default(),
            fast_open_checked: Arc::new([Once::new(), Once::new()]),
            bind_udp: None,
        }
    }

    /// Runs QUIC on datagram sockets that `bind` makes, for listening and
    /// dialing (a netsim host's, say), instead of the kernel's.
    pub fn with_udp(mut self, bind: BindUdp) -> Self {
        self.bind_udp = Some(bind);
        self
    }

    /// Whether the configuration asks for TCP Fast Open on this side; if
    /// so, the first time, reads whether the kernel allows it and says so
    /// if not (a warning; connections go on with a plain handshake).
    pub(crate) fn fast_open(&self, listener: bool) -> bool {
        let wanted = if listener {
            self.config.fast_open_listener()
        } else {
            self.config.layering.fast_open
        };
        if wanted {
            self.fast_open_checked[usize::from(listener)].call_once(|| {
                if let Err(err) = tcp::fast_open_status(listener) {
                    tracing::warn!(%err, "TCP Fast Open");
                }
            });
        }
        wanted
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The local peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.config.peer_id()
    }

    /// Connects to `addr` and sets up the connection within the handshake
    /// timeout. The remote must be `expected` when given, else the `/p2p/…`
    /// of `addr` if it has one. TCP sockets use `TCP_NODELAY`; QUIC dials
    /// go out from a listening QUIC endpoint of the same address family if
    /// there is one (as libp2p does), else from one bound for dialing.
    ///
    /// # Errors
    /// [`Error::UnsupportedAddress`], [`Error::Io`], [`Error::Timeout`],
    /// [`Error::Quic`], or a negotiation or handshake error such as a peer
    /// id mismatch.
    pub async fn dial(
        &self,
        addr: &Multiaddr,
        expected: Option<PeerId>,
    ) -> Result<Connection, Error> {
        let (transport, socket_addr, named) = parse_addr(addr)?;
        let expected = expected.or(named);
        match transport {
            TransportKind::Tcp => {
                let deadline = self.config.setup_deadline();
                let socket = tcp::connect(socket_addr, deadline, self.fast_open(false)).await?;
                self.dial_io_by(socket, tcp_multiaddr(socket_addr), expected, deadline)
                    .await
            }
            TransportKind::Quic => {
                let connection = self.connect_quic(socket_addr, expected).await?;
                Ok(Connection::spawn_quic(
                    connection,
                    quic_multiaddr(socket_addr),
                    &self.config,
                    None,
                ))
            }
        }
    }

    /// A QUIC connection to `addr` from the dialing endpoint of its address
    /// family (see [`Endpoint::dial`]), set up within the setup deadline,
    /// which starts now.
    pub(crate) async fn connect_quic(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
    ) -> Result<onetrip_quic::Connection, Error> {
        let deadline = self.config.setup_deadline();
        let endpoint = self.dialing_endpoint(addr)?;
        Ok(endpoint.connect(addr, expected, deadline).await?)
    }

    /// Sets up a TCP-layering connection as the dialer over an already
    /// connected byte stream (a netsim link, say).
    ///
    /// # Errors
    /// As [`Endpoint::dial`].
    pub async fn dial_io<T>(
        &self,
        io: T,
        remote_addr: Multiaddr,
        expected: Option<PeerId>,
    ) -> Result<Connection, Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let deadline = self.config.setup_deadline();
        self.dial_io_by(io, remote_addr, expected, deadline).await
    }

    async fn dial_io_by<T>(
        &self,
        io: T,
        remote_addr: Multiaddr,
        expected: Option<PeerId>,
        deadline: Deadline,
    ) -> Result<Connection, Error>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let secured = upgrade::outbound(io, &self.config, expected, deadline).await?;
        Ok(Connection::spawn_yamux(
            secured,
            yamux::Mode::Client,
            remote_addr,
            &self.config,
            None,
        ))
    }

    /// Dials over QUIC from `endpoint` (see [`Endpoint::quic_endpoint`]).
    ///
    /// # Errors
    /// As [`Endpoint::dial`].
    pub async fn dial_quic(
        &self,
        endpoint: &onetrip_quic::Endpoint,
        addr: SocketAddr,
        expected: Option<PeerId>,
    ) -> Result<Connection, Error> {
        let deadline = self.config.setup_deadline();
        let connection = endpoint.connect(addr, expected, deadline).await?;
        Ok(Connection::spawn_quic(
            connection,
            quic_multiaddr(addr),
            &self.config,
            None,
        ))
    }

    /// A QUIC endpoint with this configuration on any datagram socket (a
    /// netsim link, say), used for dials and by [`Endpoint::listen_quic`].
    ///
    /// # Errors
    /// [`Error::Quic`].
    pub fn quic_endpoint(
        &self,
        socket: Arc<dyn AsyncUdpSocket>,
    ) -> Result<onetrip_quic::Endpoint, Error> {
        let endpoint = onetrip_quic::Endpoint::with_socket(socket, self.config.quic())?;
        self.quic_endpoints().push(endpoint.clone());
        Ok(endpoint)
    }

    fn quic_endpoints(&self) -> std::sync::MutexGuard<'_, Vec<onetrip_quic::Endpoint>> {
        self.quic
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A QUIC endpoint of the address family of `to`: a listening one if
    /// there is one (they come first), else one bound for dialing.
    fn dialing_endpoint(&self, to: SocketAddr) -> Result<onetrip_quic::Endpoint, Error> {
        let endpoints = self.quic_endpoints();
        let same_family = endpoints.iter().find(|endpoint| {
            endpoint
                .local_addr()
                .is_ok_and(|local| local.is_ipv4() == to.is_ipv4())
        });
        if let Some(endpoint) = same_family {
            return Ok(endpoint.clone());
        }
        let any: SocketAddr = if to.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        drop(endpoints);
        let endpoint = self.bind_quic(any)?;
        self.quic_endpoints().push(endpoint.clone());
        Ok(endpoint)
    }

    /// A QUIC endpoint on `addr`, on the kernel's socket or on one that
    /// [`Endpoint::with_udp`]'s function binds.
    fn bind_quic(&self, addr: SocketAddr) -> Result<onetrip_quic::Endpoint, Error> {
        Ok(match &self.bind_udp {
            None => onetrip_quic::Endpoint::bind(addr, self.config.quic())?,
            Some(bind) => onetrip_quic::Endpoint::with_socket(bind(addr)?, self.config.quic())?,
        })
    }

    /// Binds a listen address: a TCP acceptor, or a QUIC endpoint, kept
    /// ahead of those bound for dialing so that dials go out from it.
    ///
    /// # Errors
    /// [`Error::UnsupportedAddress`], [`Error::Io`] or [`Error::Quic`] from
    /// binding.
    pub(crate) fn bind(&self, addr: &Multiaddr) -> Result<Bound, Error> {
        let (transport, socket_addr, _) = parse_addr(addr)?;
        Ok(match transport {
            TransportKind::Tcp => {
                Bound::Tcp(tcp::Acceptor::bind(socket_addr, self.fast_open(true))?)
            }
            TransportKind::Quic => {
                let endpoint = self.bind_quic(socket_addr)?;
                self.quic_endpoints().insert(0, endpoint.clone());
                Bound::Quic(endpoint)
            }
        })
    }

    /// Listens on a TCP or QUIC address (port 0: any free port; see
    /// [`Listener::local_addr`]).
    ///
    /// # Errors
    /// [`Error::UnsupportedAddress`], [`Error::Io`] or [`Error::Quic`] from
    /// binding.
    pub async fn listen(&self, addr: &Multiaddr) -> Result<Listener, Error> {
        match self.bind(addr)? {
            Bound::Tcp(mut acceptor) => {
                let local_addr = acceptor.local_addr().clone();
                let incoming =
                    futures_util::stream::poll_fn(move |cx| acceptor.poll_accept(cx).map(Some));
                Ok(self.listen_on(incoming, local_addr))
            }
            Bound::Quic(endpoint) => self.listen_quic(endpoint),
        }
    }

    /// Serves TCP-layering connections arriving on any byte streams: each
    /// item of `incoming` is an accepted stream and its remote address. An
    /// error item is reported by [`Listener::next`], and the listener pauses
    /// 100 ms before it asks `incoming` again (as libp2p-tcp does); the
    /// listener ends when `incoming` does.
    pub fn listen_on<S, T>(&self, incoming: S, local_addr: Multiaddr) -> Listener
    where
        S: Stream<Item = io::Result<(T, Multiaddr)>> + Send + 'static,
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = self.config.clone();
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let incoming = incoming
            .map(move |accepted| {
                let (io, remote_addr) = accepted?;
                let config = config.clone();
                let slots = slots.clone();
                Ok(async move {
                    let permit = slots
                        .try_acquire_owned()
                        .map_err(|_| Error::ConnectionLimit)?;
                    let secured = upgrade::inbound(io, &config, config.setup_deadline()).await?;
                    Ok(Connection::spawn_yamux(
                        secured,
                        yamux::Mode::Server,
                        remote_addr,
                        &config,
                        Some(permit),
                    ))
                }
                .boxed())
            })
            .boxed();
        Listener::new(incoming, local_addr, self.config.max_pending_handshakes)
    }

    /// Serves QUIC connections arriving at `endpoint`.
    ///
    /// # Errors
    /// [`Error::Quic`] if the endpoint has no local address.
    pub fn listen_quic(&self, endpoint: onetrip_quic::Endpoint) -> Result<Listener, Error> {
        let local_addr = quic_multiaddr(endpoint.local_addr()?);
        let config = self.config.clone();
        let incoming = quic_inbound(endpoint, &self.config)
            .map(move |(remote_addr, setup)| {
                let config = config.clone();
                Ok(async move {
                    let (connection, permit) = setup.await?;
                    Ok(Connection::spawn_quic(
                        connection,
                        remote_addr,
                        &config,
                        Some(permit),
                    ))
                }
                .boxed())
            })
            .boxed();
        Ok(Listener::new(
            incoming,
            local_addr,
            self.config.max_pending_handshakes,
        ))
    }

    /// The configuration, shared.
    #[cfg(feature = "libp2p")]
    pub(crate) fn shared_config(&self) -> &Arc<Config> {
        &self.config
    }
}

/// A bound listen address (see [`Endpoint::bind`]).
pub(crate) enum Bound {
    /// A TCP listening socket.
    Tcp(tcp::Acceptor),
    /// A QUIC endpoint that takes connections.
    Quic(onetrip_quic::Endpoint),
}

/// An inbound QUIC connection being set up: established within the
/// handshake timeout, holding one of the listener's connection slots.
pub(crate) type QuicSetup =
    BoxFuture<'static, Result<(onetrip_quic::Connection, OwnedSemaphorePermit), Error>>;

/// The connection attempts arriving at `endpoint`, each with its remote
/// address and its setup, bounded by `config`'s connection limit: the one
/// accept loop of QUIC listeners, this crate's and the libp2p transport's.
/// The stream ends when the endpoint closes.
pub(crate) fn quic_inbound(
    endpoint: onetrip_quic::Endpoint,
    config: &Arc<Config>,
) -> BoxStream<'static, (Multiaddr, QuicSetup)> {
    let config = config.clone();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    futures_util::stream::unfold(endpoint, |endpoint| async move {
        let accepting = endpoint.accept().await?;
        Some((accepting, endpoint))
    })
    .map(move |accepting| {
        let config = config.clone();
        let slots = slots.clone();
        let remote_addr = quic_multiaddr(accepting.remote_addr());
        let setup = async move {
            let permit = slots
                .try_acquire_owned()
                .map_err(|_| Error::ConnectionLimit)?;
            let connection = accepting.establish(config.setup_deadline()).await?;
            Ok((connection, permit))
        };
        (remote_addr, setup.boxed())
    })
    .boxed()
}

type Handshake = BoxFuture<'static, Result<Connection, Error>>;

/// Accepts connections; each handshake runs in its own task, so a slow or
/// hostile peer delays nobody else.
pub struct Listener {
    local_addr: Multiaddr,
    incoming: Option<BoxStream<'static, io::Result<Handshake>>>,
    handshakes: JoinSet<Result<Connection, Error>>,
    max_pending: usize,
    paused: ErrorPause,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.local_addr)
            .field("handshakes", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl Listener {
    fn new(
        incoming: BoxStream<'static, io::Result<Handshake>>,
        local_addr: Multiaddr,
        max_pending: usize,
    ) -> Self {
        Listener {
            local_addr,
            incoming: Some(incoming),
            handshakes: JoinSet::new(),
            max_pending,
            paused: ErrorPause::default(),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> &Multiaddr {
        &self.local_addr
    }

    /// The next established inbound connection. Connections whose setup
    /// fails are skipped (logged at debug level); see [`Listener::next`] to
    /// see them.
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`] once the listener has ended.
    pub async fn accept(&mut self) -> Result<Connection, Error> {
        loop {
            match self.next().await {
                Some(Ok(connection)) => return Ok(connection),
                Some(Err(err)) => tracing::debug!(%err, "inbound connection failed"),
                None => return Err(Error::ConnectionClosed),
            }
        }
    }

    /// The next inbound connection, or why the next one failed: a failed
    /// handshake ([`Error::Timeout`], a negotiation or handshake error,
    /// [`Error::ConnectionLimit`]) or an accept error is reported here and
    /// the listener goes on. `None` once the socket is closed and every
    /// handshake is done.
    pub async fn next(&mut self) -> Option<Result<Connection, Error>> {
        loop {
            let accepting = self.incoming.is_some() && self.handshakes.len() < self.max_pending;
            tokio::select! {
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match done {
                        Ok(result) => return Some(result),
                        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                        Err(_) => continue,
                    }
                }
                next = next_incoming(&mut self.incoming, &mut self.paused), if accepting => {
                    match next {
                        Some(Ok(handshake)) => {
                            self.handshakes.spawn(handshake);
                        }
                        Some(Err(err)) => {
                            self.paused.start();
                            return Some(Err(err.into()));
                        }
                        None => self.incoming = None,
                    }
                }
                else => return None,
            }
        }
    }
}

/// The next item of `incoming` once no pause is running.
async fn next_incoming(
    incoming: &mut Option<BoxStream<'static, io::Result<Handshake>>>,
    paused: &mut ErrorPause,
) -> Option<io::Result<Handshake>> {
    let incoming = incoming.as_mut()?;
    std::future::poll_fn(|cx| {
        std::task::ready!(paused.poll_over(cx));
        incoming.poll_next_unpin(cx)
    })
    .await
}
