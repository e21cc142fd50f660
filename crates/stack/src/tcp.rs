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

/// A listener's pause after an accept error: while it lasts, the listener
/// accepts nothing, so an error that persists costs a wake-up per pause,
/// not a spinning task.
#[derive(Debug, Default)]
pub(crate) struct ErrorPause(Option<Pin<Box<Sleep>>>);

impl ErrorPause {
    /// Starts a pause.
    pub(crate) fn start(&mut self) {
        self.0 = Some(Box::pin(tokio::time::sleep(ACCEPT_ERROR_PAUSE)));
    }

    /// Ready when no pause is running (any pause that ran is over).
    pub(crate) fn poll_over(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(pause) = &mut self.0 {
            std::task::ready!(pause.as_mut().poll(cx));
            self.0 = None;
        }
        Poll::Ready(())
    }
}

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
    paused: ErrorPause,
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
            paused: ErrorPause::default(),
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
        std::task::ready!(self.paused.poll_over(cx));
        let accepted = match self.listener.poll_accept(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(accepted) => accepted,
        };
        let accepted = accepted.and_then(|(socket, remote)| {
            socket.set_nodelay(true)?;
            Ok((socket, tcp_multiaddr(remote)))
        });
        if accepted.is_err() {
            self.paused.start();
        }
        Poll::Ready(accepted)
    }
}
