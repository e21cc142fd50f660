//! onetrip's TCP upgrade as a [`libp2p_core::Transport`], for a rust-libp2p
//! Swarm.
//!
//! The Swarm gets `(PeerId, StreamMuxerBox)` as from its own
//! tcp + noise + yamux stack, but security and muxer are negotiated per the
//! configured [`Layering`](crate::Layering): optimistic `/noise`, the muxer
//! inside the Noise handshake with a multistream-select fallback. Stream
//! protocols stay the Swarm's business (its multistream-select).
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

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use futures_util::{FutureExt, future::BoxFuture};
use libp2p_core::{
    Endpoint as Role, Multiaddr,
    muxing::StreamMuxerBox,
    transport::{DialOpts, ListenerId, TransportError, TransportEvent},
};
use libp2p_identity::PeerId;
use onetrip_common::PeerIdMismatch;
use onetrip_multistream::Deadline;
use tokio::io::{AsyncRead, AsyncWrite};

use self::muxer::Muxer;
use crate::{
    Config, Error,
    addr::tcp_socket_addr,
    tcp::{self, TcpSocket},
    upgrade::{self, Secured},
};

/// What the Swarm gets for each connection.
pub type Output = (PeerId, StreamMuxerBox);

type Upgrade = BoxFuture<'static, Result<Output, Error>>;

/// A TCP transport doing onetrip's security and muxer negotiation. The TCP
/// address in use must be `/ip4|ip6/…/tcp/…` (QUIC is not offered here:
/// rust-libp2p's own `libp2p-quic` serves it).
pub struct Transport {
    config: Arc<Config>,
    listeners: Vec<ListenerEntry>,
    events: VecDeque<TransportEvent<Upgrade, Error>>,
    waker: Option<Waker>,
    next_listener: usize,
}

struct ListenerEntry {
    id: ListenerId,
    acceptor: tcp::Acceptor,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("config", &self.config)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport with this identity and layering; the configured stream
    /// protocols are not used (the Swarm negotiates its own).
    pub fn new(config: Config) -> Self {
        Transport {
            config: Arc::new(config),
            listeners: Vec::new(),
            events: VecDeque::new(),
            waker: None,
            next_listener: 0,
        }
    }

    fn push(&mut self, event: TransportEvent<Upgrade, Error>) {
        self.events.push_back(event);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// Runs the upgrade in `role` by `deadline` and starts yamux on the
/// channel, with the same settings as the stack's own connections.
async fn upgrade(
    socket: TcpSocket,
    config: Arc<Config>,
    role: Role,
    expected: Option<PeerId>,
    deadline: Deadline,
) -> Result<Output, Error> {
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
        let (socket_addr, _) =
            tcp_socket_addr(&addr).map_err(|_| TransportError::MultiaddrNotSupported(addr))?;
        let fast_open = self.config.fast_open_listener();
        let acceptor = tcp::Acceptor::bind(socket_addr, fast_open)
            .map_err(|err| TransportError::Other(err.into()))?;
        let listen_addr = acceptor.local_addr().clone();
        self.listeners.push(ListenerEntry { id, acceptor });
        self.push(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr,
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
            listen_addr: entry.acceptor.local_addr().clone(),
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
        let (socket_addr, expected) = tcp_socket_addr(&addr)
            .map_err(|_| TransportError::MultiaddrNotSupported(addr.clone()))?;
        let config = self.config.clone();
        Ok(async move {
            let deadline = config.setup_deadline();
            let socket = tcp::connect(socket_addr, deadline, config.layering.fast_open).await?;
            upgrade(socket, config, opts.role, expected, deadline).await
        }
        .boxed())
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
            let Poll::Ready(accepted) = entry.acceptor.poll_accept(cx) else {
                continue;
            };
            this.next_listener = index + 1;
            return Poll::Ready(match accepted {
                Ok((socket, send_back_addr)) => {
                    let deadline = this.config.setup_deadline();
                    let upgrade =
                        upgrade(socket, this.config.clone(), Role::Listener, None, deadline);
                    TransportEvent::Incoming {
                        listener_id: entry.id,
                        upgrade: upgrade.boxed(),
                        local_addr: entry.acceptor.local_addr().clone(),
                        send_back_addr,
                    }
                }
                // Out of file descriptors, say: the acceptor pauses rather
                // than spin.
                Err(err) => TransportEvent::ListenerError {
                    listener_id: entry.id,
                    error: err.into(),
                },
            });
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
