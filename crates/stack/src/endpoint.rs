//! Dialing and listening, over TCP or any byte stream.

use std::{io, pin::Pin, sync::Arc};

use futures_util::{FutureExt, Stream, StreamExt, future::BoxFuture, stream::BoxStream};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
};

use crate::{
    Config, Connection, Error,
    addr::{tcp_multiaddr, tcp_socket_addr},
    upgrade,
};

/// Dials and listens with one identity and layering.
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
#[derive(Debug, Clone)]
pub struct Endpoint {
    config: Arc<Config>,
}

impl Endpoint {
    /// An endpoint with this configuration.
    pub fn new(config: Config) -> Self {
        Endpoint {
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The local peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.config.peer_id()
    }

    /// Connects over TCP (`TCP_NODELAY`) to `addr` and sets up the
    /// connection, all within the handshake timeout. The remote must be
    /// `expected` when given, else the `/p2p/…` of `addr` if it has one.
    ///
    /// # Errors
    /// [`Error::UnsupportedAddress`], [`Error::Io`], [`Error::Timeout`],
    /// or a negotiation or handshake error such as a peer id mismatch.
    pub async fn dial(
        &self,
        addr: &Multiaddr,
        expected: Option<PeerId>,
    ) -> Result<Connection, Error> {
        let (socket_addr, named) = tcp_socket_addr(addr)?;
        let expected = expected.or(named);
        let connect = async {
            let socket = TcpStream::connect(socket_addr).await?;
            socket.set_nodelay(true)?;
            Ok::<_, Error>(socket)
        };
        let socket = tokio::time::timeout(self.config.handshake_timeout, connect)
            .await
            .map_err(|_| Error::Timeout)??;
        self.dial_io(socket, tcp_multiaddr(socket_addr), expected)
            .await
    }

    /// Sets up a connection as the dialer over an already connected byte
    /// stream (a netsim link, say).
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
        let secured = upgrade::outbound(io, &self.config, expected).await?;
        Ok(Connection::spawn(
            secured,
            yamux::Mode::Client,
            remote_addr,
            &self.config,
            None,
        ))
    }

    /// Listens on a TCP address (port 0: any free port; see
    /// [`Listener::local_addr`]).
    ///
    /// # Errors
    /// [`Error::UnsupportedAddress`] or [`Error::Io`] from binding.
    pub async fn listen(&self, addr: &Multiaddr) -> Result<Listener, Error> {
        let (socket_addr, _) = tcp_socket_addr(addr)?;
        let listener = TcpListener::bind(socket_addr).await?;
        let local_addr = tcp_multiaddr(listener.local_addr()?);
        let incoming = futures_util::stream::poll_fn(move |cx| {
            listener.poll_accept(cx).map(|accepted| {
                Some(accepted.and_then(|(socket, peer)| {
                    socket.set_nodelay(true)?;
                    Ok((socket, tcp_multiaddr(peer)))
                }))
            })
        });
        Ok(self.listen_on(incoming, local_addr))
    }

    /// Serves connections arriving on any byte streams: each item of
    /// `incoming` is an accepted stream and its remote address.
    pub fn listen_on<S, T>(&self, incoming: S, local_addr: Multiaddr) -> Listener
    where
        S: Stream<Item = io::Result<(T, Multiaddr)>> + Send + 'static,
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = self.config.clone();
        let slots = Arc::new(Semaphore::new(config.max_connections));
        let max_pending = config.max_pending_handshakes;
        let incoming = incoming
            .map(move |accepted| {
                let (io, remote_addr) = accepted?;
                let config = config.clone();
                let slots = slots.clone();
                Ok(async move {
                    let permit = slots
                        .try_acquire_owned()
                        .map_err(|_| Error::ConnectionLimit)?;
                    let secured = upgrade::inbound(io, &config).await?;
                    Ok(Connection::spawn(
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
        Listener {
            local_addr,
            incoming: Some(incoming),
            handshakes: JoinSet::new(),
            max_pending,
        }
    }
}

type Handshake = BoxFuture<'static, Result<Connection, Error>>;

/// Accepts connections; each handshake runs in its own task, so a slow or
/// hostile peer delays nobody else.
pub struct Listener {
    local_addr: Multiaddr,
    incoming: Option<BoxStream<'static, io::Result<Handshake>>>,
    handshakes: JoinSet<Result<Connection, Error>>,
    max_pending: usize,
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
    /// The address it listens on.
    pub fn local_addr(&self) -> &Multiaddr {
        &self.local_addr
    }

    /// The next inbound connection, or why the next one failed: a failed
    /// handshake is reported here and the listener goes on serving others.
    ///
    /// # Errors
    /// The failing connection's [`Error`] (a timeout, a negotiation or
    /// handshake error, [`Error::ConnectionLimit`]), an accept error, or
    /// [`Error::ConnectionClosed`] once the incoming streams have ended and
    /// every handshake is done.
    pub async fn accept(&mut self) -> Result<Connection, Error> {
        loop {
            let accepting = self.handshakes.len() < self.max_pending;
            tokio::select! {
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match done {
                        Ok(result) => return result,
                        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                        Err(_) => continue,
                    }
                }
                next = next_incoming(&mut self.incoming), if accepting && self.incoming.is_some() => {
                    match next {
                        Some(Ok(handshake)) => {
                            self.handshakes.spawn(handshake);
                        }
                        Some(Err(err)) => return Err(err.into()),
                        None => self.incoming = None,
                    }
                }
                else => return Err(Error::ConnectionClosed),
            }
        }
    }
}

async fn next_incoming(
    incoming: &mut Option<BoxStream<'static, io::Result<Handshake>>>,
) -> Option<io::Result<Handshake>> {
    match incoming {
        Some(incoming) => Pin::new(incoming).next().await,
        None => None,
    }
}
