//! onetrip's layerings as a [`libp2p_core::Transport`], for a rust-libp2p
//! Swarm: TCP (`/tcp/…`) and QUIC (`/udp/…/quic-v1`).
//!
//! The Swarm gets `(PeerId, StreamMuxerBox)` as from its own stacks, but
//! set up per the configured presets: over TCP, optimistic `/noise` or
//! `/tls/1.0.0`, the muxer inside the handshake with a multistream-select
//! fallback, TCP Fast Open; over QUIC, 0-RTT on a reconnect, where the dial
//! completes at once and the Swarm's first streams leave with the
//! ClientHello. Stream protocols stay the Swarm's business (its
//! multistream-select: `V1Lazy` substreams make them optimistic too).
//!
//! [`StreamUpgrade`] applies the TCP layerings to the byte streams of
//! another transport (an emulated link, say) through
//! `libp2p_core::Transport::and_then`.
//!
//! ```no_run
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use libp2p_core::Transport as _;
//! use libp2p_identity::Keypair;
//! use onetrip_stack::{Config, libp2p::Transport};
//!
//! let keypair = Keypair::generate_ed25519();
//! let transport = Transport::new(Config::new(keypair)?).boxed();
//! // SwarmBuilder::with_existing_identity(keypair).with_tokio()
//! //     .with_other_transport(|_| transport)? …
//! # Ok(()) }
//! ```

mod muxer;
mod quic;

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use futures_util::{FutureExt, StreamExt, future::BoxFuture, stream::BoxStream};
use libp2p_core::{
    ConnectedPoint, Endpoint as Role, Multiaddr,
    muxing::StreamMuxerBox,
    transport::{DialOpts, ListenerId, TransportError, TransportEvent},
};
use libp2p_identity::PeerId;
use onetrip_common::PeerIdMismatch;
use onetrip_multistream::Deadline;
use tokio::io::{AsyncRead, AsyncWrite};

use self::{muxer::Muxer, quic::QuicMuxer};
use crate::{
    Config, Endpoint, Error,
    addr::{TransportKind, parse_addr, quic_multiaddr, tcp_socket_addr},
    endpoint::{Bound, QuicSetup, quic_inbound},
    tcp,
    upgrade::{self, Secured},
};

/// What the Swarm gets for each connection.
pub type Output = (PeerId, StreamMuxerBox);

type Upgrade = BoxFuture<'static, Result<Output, Error>>;

/// A transport doing onetrip's layerings for a Swarm: on
/// `/ip4|ip6/…/tcp/…`, the configured TCP layering's security and muxer
/// negotiation; on `/ip4|ip6/…/udp/…/quic-v1`, QUIC, with 0-RTT when the
/// configured QUIC layering has it.
///
/// A QUIC dial to a peer whose session ticket allows 0-RTT (tickets are
/// kept per peer id across dials) completes at once: the Swarm's first
/// streams leave as 0-RTT data. The peer id is then checked when the
/// handshake completes; if another peer answered, the connection ends with
/// [`Error::PeerIdMismatch`], which the Swarm reports as the connection's
/// cause of closing. QUIC dials go out from a listening QUIC socket of the
/// same address family when there is one, as libp2p-quic's do.
pub struct Transport {
    endpoint: Endpoint,
    listeners: Vec<ListenerEntry>,
    events: VecDeque<TransportEvent<Upgrade, Error>>,
    waker: Option<Waker>,
    next_listener: usize,
}

struct ListenerEntry {
    id: ListenerId,
    local_addr: Multiaddr,
    accepting: Accepting,
}

/// A listener's source of connections.
enum Accepting {
    Tcp(tcp::Acceptor),
    Quic(BoxStream<'static, (Multiaddr, QuicSetup)>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("endpoint", &self.endpoint)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport with this identity and layering; the configured stream
    /// protocols are not used (the Swarm negotiates its own).
    pub fn new(config: Config) -> Self {
        Self::with_endpoint(Endpoint::new(config))
    }

    /// A transport sharing `endpoint`'s configuration and QUIC sockets
    /// (and so its session tickets): [`Endpoint::with_udp`] puts its QUIC
    /// on other datagram sockets, a netsim host's say.
    pub fn with_endpoint(endpoint: Endpoint) -> Self {
        Transport {
            endpoint,
            listeners: Vec::new(),
            events: VecDeque::new(),
            waker: None,
            next_listener: 0,
        }
    }

    fn config(&self) -> &Arc<Config> {
        self.endpoint.shared_config()
    }

    fn push(&mut self, event: TransportEvent<Upgrade, Error>) {
        self.events.push_back(event);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// onetrip's TCP layering (security and muxer, as configured) as an
/// upgrade of any byte stream, for a Swarm whose connections come from
/// another stream transport: `transport.and_then(move |io, point|
/// upgrade.apply(io, &point))`. What it gives the Swarm is what
/// [`Transport`] gives over TCP; the setup deadline starts when the
/// stream is there.
///
/// ```no_run
/// # fn run(host: onetrip_netsim::Host) -> Result<(), Box<dyn std::error::Error>> {
/// use libp2p_core::Transport as _;
/// use libp2p_identity::Keypair;
/// use onetrip_stack::{Config, libp2p::StreamUpgrade};
///
/// let upgrade = StreamUpgrade::new(Config::new(Keypair::generate_ed25519())?);
/// let transport = onetrip_netsim::libp2p::Transport::new(host)
///     .and_then(move |io, point| upgrade.apply(io.into_inner(), &point))
///     .boxed();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StreamUpgrade {
    config: Arc<Config>,
}

impl StreamUpgrade {
    /// The upgrade for this identity and layering (its TCP preset).
    pub fn new(config: Config) -> Self {
        StreamUpgrade {
            config: Arc::new(config),
        }
    }

    /// Sets up `io` as the side `point` says, the dialer checking the
    /// `/p2p/…` of the address it dialed if there is one.
    pub fn apply<T>(&self, io: T, point: &ConnectedPoint) -> Upgrade
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (role, expected) = match point {
            ConnectedPoint::Dialer {
                address,
                role_override,
                ..
            } => (
                *role_override,
                tcp_socket_addr(address).ok().and_then(|(_, peer)| peer),
            ),
            ConnectedPoint::Listener { .. } => (Role::Listener, None),
        };
        let deadline = self.config.setup_deadline();
        upgrade(io, self.config.clone(), role, expected, deadline).boxed()
    }
}

/// Runs the upgrade in `role` by `deadline` and starts yamux on the
/// channel, with the same settings as the stack's own connections.
async fn upgrade<T>(
    socket: T,
    config: Arc<Config>,
    role: Role,
    expected: Option<PeerId>,
    deadline: Deadline,
) -> Result<Output, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match role {
        Role::Dialer => {
            let secured = upgrade::outbound(socket, &config, expected, deadline).await?;
            // The Swarm's streams cannot say when a held first flight
            // (TCP Fast Open with TLS early data) is complete: send it now.
            if let Some(flight) = &secured.first_flight {
                flight.release();
            }
            Ok(output(secured, &config, yamux::Mode::Client))
        }
        Role::Listener => {
            let secured = upgrade::inbound(socket, &config, deadline).await?;
            // A dialer's handshake checked `expected` (Noise before our
            // identity leaves, TLS in its verifier); a hole-punching
            // "listener" checks here.
            PeerIdMismatch::check(expected, secured.remote_peer_id)
                .map_err(Error::PeerIdMismatch)?;
            Ok(output(secured, &config, yamux::Mode::Server))
        }
    }
}

/// The peer and its yamux session as the Swarm takes them.
fn output<T>(secured: Secured<T>, config: &Config, mode: yamux::Mode) -> Output
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (remote_peer_id, session) = secured.into_session(config, mode);
    (remote_peer_id, StreamMuxerBox::new(Muxer::new(session)))
}

/// A QUIC connection as the Swarm takes it.
fn quic_output(
    connection: onetrip_quic::Connection,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Output {
    (
        connection.remote_peer_id(),
        StreamMuxerBox::new(QuicMuxer::new(connection, slot)),
    )
}

impl libp2p_core::Transport for Transport {
    type Output = Output;
    type Error = Error;
    type ListenerUpgrade = Upgrade;
    type Dial = Upgrade;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let bound = self.endpoint.bind(&addr).map_err(|err| match err {
            Error::UnsupportedAddress(addr) => TransportError::MultiaddrNotSupported(addr),
            other => TransportError::Other(other),
        })?;
        let (local_addr, accepting) = match bound {
            Bound::Tcp(acceptor) => (acceptor.local_addr().clone(), Accepting::Tcp(acceptor)),
            Bound::Quic(endpoint) => {
                let local_addr = endpoint
                    .local_addr()
                    .map_err(|err| TransportError::Other(err.into()))?;
                (
                    quic_multiaddr(local_addr),
                    Accepting::Quic(quic_inbound(endpoint, self.config())),
                )
            }
        };
        self.listeners.push(ListenerEntry {
            id,
            local_addr: local_addr.clone(),
            accepting,
        });
        self.push(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: local_addr,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(index) = self.listeners.iter().position(|entry| entry.id == id) else {
            return false;
        };
        let entry = self.listeners.remove(index);
        self.push(TransportEvent::AddressExpired {
            listener_id: id,
            listen_addr: entry.local_addr,
        });
        self.push(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Ok((kind, socket_addr, expected)) = parse_addr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        // The deadlines start when the Swarm first polls the dial, which
        // may be later (it queues dials beyond its concurrency).
        let endpoint = self.endpoint.clone();
        Ok(match kind {
            TransportKind::Tcp => async move {
                let config = endpoint.shared_config().clone();
                let deadline = config.setup_deadline();
                let socket = tcp::connect(socket_addr, deadline, endpoint.fast_open(false)).await?;
                upgrade(socket, config, opts.role, expected, deadline).await
            }
            .boxed(),
            // QUIC's roles are fixed by who sends the first packet: a
            // hole-punching "listener" dials as a client too, and the
            // handshake refuses any peer but `expected`, as for a dialer.
            TransportKind::Quic => async move {
                let connection = endpoint.connect_quic(socket_addr, expected).await?;
                Ok(quic_output(connection, None))
            }
            .boxed(),
        })
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        if let Some(event) = this.events.pop_front() {
            return Poll::Ready(event);
        }
        // Start with the next listener each time, so none starves another.
        let count = this.listeners.len();
        this.next_listener = this.next_listener.checked_rem(count).unwrap_or(0);
        for offset in 0..count {
            let index = (this.next_listener + offset) % count;
            let entry = &mut this.listeners[index];
            let event = match &mut entry.accepting {
                Accepting::Tcp(acceptor) => match acceptor.poll_accept(cx) {
                    Poll::Pending => continue,
                    Poll::Ready(Ok((socket, send_back_addr))) => {
                        let config = this.endpoint.shared_config().clone();
                        let deadline = config.setup_deadline();
                        TransportEvent::Incoming {
                            listener_id: entry.id,
                            upgrade: upgrade(socket, config, Role::Listener, None, deadline)
                                .boxed(),
                            local_addr: entry.local_addr.clone(),
                            send_back_addr,
                        }
                    }
                    // Out of file descriptors, say: the acceptor pauses
                    // rather than spin.
                    Poll::Ready(Err(err)) => TransportEvent::ListenerError {
                        listener_id: entry.id,
                        error: err.into(),
                    },
                },
                Accepting::Quic(incoming) => match incoming.poll_next_unpin(cx) {
                    Poll::Pending => continue,
                    Poll::Ready(Some((send_back_addr, setup))) => TransportEvent::Incoming {
                        listener_id: entry.id,
                        upgrade: setup
                            .map(|setup| {
                                let (connection, slot) = setup?;
                                Ok(quic_output(connection, Some(slot)))
                            })
                            .boxed(),
                        local_addr: entry.local_addr.clone(),
                        send_back_addr,
                    },
                    // The endpoint closed.
                    Poll::Ready(None) => {
                        let entry = this.listeners.remove(index);
                        TransportEvent::ListenerClosed {
                            listener_id: entry.id,
                            reason: Ok(()),
                        }
                    }
                },
            };
            this.next_listener = index + 1;
            return Poll::Ready(event);
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
