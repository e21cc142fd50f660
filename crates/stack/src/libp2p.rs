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

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use futures_util::{FutureExt, future::BoxFuture};
use libp2p_core::{
    Endpoint as Role, Multiaddr,
    muxing::StreamMuxerBox,
    transport::{DialOpts, ListenerId, TransportError, TransportEvent},
    upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade},
};
use libp2p_identity::PeerId;
use onetrip_common::PeerIdMismatch;
use tokio::{
    net::{TcpListener, TcpStream},
    time::{Instant, Sleep},
};
use tokio_util::compat::TokioAsyncReadCompatExt;

use crate::{
    Config, Error, YAMUX,
    addr::{tcp_multiaddr, tcp_socket_addr},
    connection::coalesce,
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
    listener: TcpListener,
    addr: Multiaddr,
    /// After an accept error, no accepting until then.
    paused: Option<Pin<Box<Sleep>>>,
}

/// How long a listener pauses after its socket fails to accept, as
/// libp2p-tcp does.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

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

/// Runs the upgrade in `role` by `deadline` and wraps the channel in
/// libp2p's yamux muxer.
async fn upgrade(
    socket: TcpStream,
    config: Arc<Config>,
    role: Role,
    expected: Option<PeerId>,
    deadline: Instant,
) -> Result<Output, Error> {
    socket.set_nodelay(true)?;
    let mut yamux = libp2p_yamux::Config::default();
    yamux.set_max_num_streams(config.yamux_max_streams());
    let (remote_peer_id, muxer) = match role {
        Role::Dialer => {
            let Secured { remote_peer_id, io } =
                upgrade::outbound(socket, &config, expected, deadline).await?;
            let muxer = yamux.upgrade_outbound(coalesce(io).compat(), YAMUX).await?;
            (remote_peer_id, StreamMuxerBox::new(muxer))
        }
        Role::Listener => {
            let Secured { remote_peer_id, io } =
                upgrade::inbound(socket, &config, deadline).await?;
            let muxer = yamux.upgrade_inbound(coalesce(io).compat(), YAMUX).await?;
            (remote_peer_id, StreamMuxerBox::new(muxer))
        }
    };
    // The Noise handshake checks this for a dialer; a hole-punching
    // "listener" checks here.
    PeerIdMismatch::check(expected, remote_peer_id)
        .map_err(onetrip_noise::Error::PeerIdMismatch)?;
    Ok((remote_peer_id, muxer))
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
        let bind = || -> Result<TcpListener, std::io::Error> {
            let listener = std::net::TcpListener::bind(socket_addr)?;
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        };
        let listener = bind().map_err(|err| TransportError::Other(err.into()))?;
        let local = listener
            .local_addr()
            .map_err(|err| TransportError::Other(err.into()))?;
        let addr = tcp_multiaddr(local);
        self.listeners.push(ListenerEntry {
            id,
            listener,
            addr: addr.clone(),
            paused: None,
        });
        self.push(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: addr,
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
            listen_addr: entry.addr,
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
            let deadline = Instant::now() + config.handshake_timeout;
            let socket = tokio::time::timeout_at(deadline, TcpStream::connect(socket_addr))
                .await
                .map_err(|_| Error::Timeout)??;
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
            if let Some(pause) = &mut entry.paused {
                if pause.as_mut().poll(cx).is_pending() {
                    continue;
                }
                entry.paused = None;
            }
            match entry.listener.poll_accept(cx) {
                Poll::Ready(Ok((socket, peer))) => {
                    this.next_listener = index + 1;
                    let deadline = Instant::now() + this.config.handshake_timeout;
                    let upgrade =
                        upgrade(socket, this.config.clone(), Role::Listener, None, deadline);
                    return Poll::Ready(TransportEvent::Incoming {
                        listener_id: entry.id,
                        upgrade: upgrade.boxed(),
                        local_addr: entry.addr.clone(),
                        send_back_addr: tcp_multiaddr(peer),
                    });
                }
                Poll::Ready(Err(err)) => {
                    // Out of file descriptors, say: pause this listener
                    // rather than spin.
                    entry.paused = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
                    this.next_listener = index + 1;
                    return Poll::Ready(TransportEvent::ListenerError {
                        listener_id: entry.id,
                        error: err.into(),
                    });
                }
                Poll::Pending => {}
            }
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
