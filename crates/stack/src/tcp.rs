//! The TCP front end that [`Endpoint`](crate::Endpoint) and the libp2p
//! `Transport` share: connecting by the setup deadline, and accepting with
//! a pause after a socket error.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use multiaddr::Multiaddr;
use onetrip_multistream::Deadline;
use tokio::{
    net::{TcpListener, TcpStream},
    time::Sleep,
};

use crate::{Error, addr::tcp_multiaddr};

/// How long a listener pauses after its socket fails to accept (out of
/// file descriptors, say), as libp2p-tcp does, instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Connects to `addr` by `deadline`, with `TCP_NODELAY` (every flight of a
/// handshake is small and waited for).
pub(crate) async fn connect(addr: SocketAddr, deadline: Deadline) -> Result<TcpStream, Error> {
    let connect = async {
        let socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        Ok::<_, Error>(socket)
    };
    deadline.run(connect).await.map_err(|_| Error::Timeout)?
}

/// A listening TCP socket.
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: TcpListener,
    local_addr: Multiaddr,
    /// After an accept error, no accepting until then.
    paused: Option<Pin<Box<Sleep>>>,
}

impl Acceptor {
    /// Listens on `addr` (port 0: any free port).
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let local_addr = tcp_multiaddr(listener.local_addr()?);
        Ok(Acceptor {
            listener,
            local_addr,
            paused: None,
        })
    }

    /// The address it listens on.
    pub(crate) fn local_addr(&self) -> &Multiaddr {
        &self.local_addr
    }

    /// The next accepted socket (with `TCP_NODELAY`) and its remote
    /// address. After an error, it accepts nothing for a moment.
    pub(crate) fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(TcpStream, Multiaddr)>> {
        if let Some(pause) = &mut self.paused {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.paused = None;
        }
        let accepted = match self.listener.poll_accept(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(accepted) => accepted,
        };
        let accepted = accepted.and_then(|(socket, remote)| {
            socket.set_nodelay(true)?;
            Ok((socket, tcp_multiaddr(remote)))
        });
        if accepted.is_err() {
            self.paused = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
        }
        Poll::Ready(accepted)
    }
}
