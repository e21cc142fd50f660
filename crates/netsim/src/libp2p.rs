//! A `libp2p_core::Transport` over netsim stream links (feature `libp2p`),
//! so that a rust-libp2p `Swarm` runs over the same emulated links as
//! onetrip: `SwarmBuilder::with_other_transport` takes it, upgraded with the
//! Swarm's own security and muxer crates, exactly as it would take
//! libp2p-tcp.
//!
//! It speaks `/ip4/…/tcp/…` and `/ip6/…/tcp/…` addresses of one netsim
//! [`Host`]: listening binds the host's stream listener (port 0: an
//! ephemeral one; an unspecified IP: the host's own), dialing connects as
//! [`Host::connect`] does (one RTT for SYN and SYN-ACK). A trailing
//! `/p2p/…` is ignored here; the Swarm's security upgrade checks it.

use std::{
    collections::VecDeque,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    task::{Context, Poll, Waker},
};

use futures_util::{FutureExt, future::BoxFuture};
use libp2p_core::{
    multiaddr::{Multiaddr, Protocol},
    transport::{DialOpts, ListenerId, TransportError, TransportEvent},
};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::{Host, SimStream, StreamListener};

/// What a connection yields: a netsim stream as a `futures` byte stream.
pub type Output = Compat<SimStream>;

/// A connection being set up (dialed, or accepted until the dialer's ACK
/// arrives).
pub type Upgrade = BoxFuture<'static, io::Result<Output>>;

/// A `libp2p_core::Transport` over one netsim host's stream links.
#[derive(Debug)]
pub struct Transport {
    host: Host,
    listeners: Vec<(ListenerId, StreamListener, Multiaddr)>,
    /// Listening-address events not yet reported.
    events: VecDeque<TransportEvent<Upgrade, io::Error>>,
    /// The task polling this transport, woken when an event is queued.
    waker: Option<Waker>,
}

impl Transport {
    /// A transport for `host`.
    pub fn new(host: Host) -> Self {
        Transport {
            host,
            listeners: Vec::new(),
            events: VecDeque::new(),
            waker: None,
        }
    }

    fn push(&mut self, event: TransportEvent<Upgrade, io::Error>) {
        self.events.push_back(event);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

/// The socket address of a `/ip4|ip6/…/tcp/…[/p2p/…]` multiaddr.
fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let Protocol::Tcp(port) = parts.next()? else {
        return None;
    };
    match parts.next() {
        None | Some(Protocol::P2p(_)) if parts.next().is_none() => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

/// The multiaddr of a netsim stream address.
pub fn tcp_multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty()
        .with(addr.ip().into())
        .with(Protocol::Tcp(addr.port()))
}

impl libp2p_core::Transport for Transport {
    type Output = Output;
    type Error = io::Error;
    type ListenerUpgrade = Upgrade;
    type Dial = Upgrade;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        let Some(socket) = socket_addr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        if !socket.ip().is_unspecified() && socket.ip() != self.host.ip() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        let listener = self
            .host
            .listen(socket.port())
            .map_err(|err| TransportError::Other(io::Error::other(err)))?;
        let listen_addr = tcp_multiaddr(listener.local_addr());
        self.listeners.push((id, listener, listen_addr.clone()));
        self.push(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(index) = self.listeners.iter().position(|(l, ..)| *l == id) else {
            return false;
        };
        let (_, _, listen_addr) = self.listeners.remove(index);
        self.push(TransportEvent::AddressExpired {
            listener_id: id,
            listen_addr,
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
        _opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(socket) = socket_addr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let host = self.host.clone();
        Ok(async move {
            let stream = host.connect(socket).await.map_err(io::Error::other)?;
            Ok(stream.compat())
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
        for (id, listener, local_addr) in &mut this.listeners {
            if let Poll::Ready(Some(pending)) = listener.poll_pending(cx) {
                let send_back_addr = tcp_multiaddr(pending.peer);
                let upgrade = async move {
                    tokio::time::sleep_until(pending.ready_at).await;
                    Ok(pending.stream.compat())
                };
                return Poll::Ready(TransportEvent::Incoming {
                    listener_id: *id,
                    upgrade: upgrade.boxed(),
                    local_addr: local_addr.clone(),
                    send_back_addr,
                });
            }
        }
        this.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
