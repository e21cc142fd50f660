//! The TCP front end that [`Endpoint`](crate::Endpoint) and the libp2p
//! `Transport` share: connecting by the setup deadline, with or without
//! TCP Fast Open, and accepting with a pause after a socket error.
//!
//! TCP Fast Open (RFC 7413) on Linux: a dialing socket gets
//! `TCP_FASTOPEN_CONNECT` (its connect returns at once, and the SYN leaves
//! with the first write, carrying it when the kernel holds a cookie for the
//! server), a listening socket `TCP_FASTOPEN` (it issues cookies and
//! accepts data in SYNs), both through `tokio-tfo`. The kernel's
//! `net.ipv4.tcp_fastopen` must allow each side ([`fast_open_status`]);
//! where it does not, or where the path or the peer refuses, a connection
//! falls back to a plain handshake by itself.

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
use tokio_tfo::{TfoListener, TfoStream};
use tokio_util::either::Either;

use crate::{Error, addr::tcp_multiaddr};

/// A TCP connection's byte stream: a plain socket, or one opened or
/// accepted with TCP Fast Open.
pub type TcpSocket = Either<TcpStream, TfoStream>;

/// The sysctl that allows TCP Fast Open, per network namespace.
const FAST_OPEN_SYSCTL: &str = "/proc/sys/net/ipv4/tcp_fastopen";

/// `net.ipv4.tcp_fastopen` bits (Linux Documentation/networking/ip-sysctl.rst):
/// sending data in the SYN as a client, accepting it as a server.
const FAST_OPEN_CLIENT: u32 = 0x1;
const FAST_OPEN_SERVER: u32 = 0x2;

/// Whether this host's kernel lets TCP Fast Open work for a dialer
/// (`listener == false`) or a listener: `Ok` if `net.ipv4.tcp_fastopen`
/// (read now, in the calling thread's network namespace) has the needed
/// bit, [`Error::FastOpenUnavailable`] otherwise. Connections go on
/// without it either way, with a plain handshake.
///
/// # Errors
/// [`Error::FastOpenUnavailable`].
pub fn fast_open_status(listener: bool) -> Result<(), Error> {
    let (bit, side) = if listener {
        (FAST_OPEN_SERVER, "listener")
    } else {
        (FAST_OPEN_CLIENT, "dialer")
    };
    let value = std::fs::read_to_string(FAST_OPEN_SYSCTL)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    match value {
        Some(value) if value & bit != 0 => Ok(()),
        value => Err(Error::FastOpenUnavailable {
            side,
            sysctl: value,
        }),
    }
}

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
/// handshake is small and waited for), and with TCP Fast Open if
/// `fast_open`: then this returns at once, and the SYN leaves with the
/// first write.
pub(crate) async fn connect(
    addr: SocketAddr,
    deadline: Deadline,
    fast_open: bool,
) -> Result<TcpSocket, Error> {
    let connect = async {
        let socket = if fast_open {
            match TfoStream::connect(addr).await {
                Ok(socket) => Either::Right(socket),
                // The kernel refuses `TCP_FASTOPEN_CONNECT` where its sysctl
                // allows no Fast Open: connect without it.
                Err(err) if err.kind() == io::ErrorKind::Unsupported => {
                    Either::Left(TcpStream::connect(addr).await?)
                }
                Err(err) => return Err(err.into()),
            }
        } else {
            Either::Left(TcpStream::connect(addr).await?)
        };
        set_nodelay(&socket)?;
        Ok::<_, Error>(socket)
    };
    deadline.run(connect).await.map_err(|_| Error::Timeout)?
}

/// Opens the TCP socket that [`Endpoint::dial`](crate::Endpoint::dial)
/// opens, for [`Endpoint::dial_io`](crate::Endpoint::dial_io): with
/// `TCP_NODELAY`, and with TCP Fast Open if `fast_open` (this then returns
/// at once, and the SYN leaves with the first write).
///
/// # Errors
/// [`Error::Io`] if the connection fails.
pub async fn tcp_connect(addr: SocketAddr, fast_open: bool) -> Result<TcpSocket, Error> {
    connect(addr, Deadline::NONE, fast_open).await
}

/// Sets `TCP_NODELAY`: every flight of a handshake is small and waited
/// for.
fn set_nodelay(socket: &TcpSocket) -> io::Result<()> {
    match socket {
        Either::Left(plain) => plain.set_nodelay(true),
        Either::Right(fast_open) => fast_open.set_nodelay(true),
    }
}

/// A listening socket, plain or with TCP Fast Open.
enum Listening {
    Plain(TcpListener),
    FastOpen(TfoListener),
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Listening::Plain(_) => "Plain",
            Listening::FastOpen(_) => "FastOpen",
        })
    }
}

/// A listening TCP socket.
#[derive(Debug)]
pub(crate) struct Acceptor {
    listener: Listening,
    local_addr: Multiaddr,
    paused: ErrorPause,
}

impl Acceptor {
    /// Listens on `addr` (port 0: any free port), with TCP Fast Open if
    /// `fast_open`.
    pub(crate) fn bind(addr: SocketAddr, fast_open: bool) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = tcp_multiaddr(listener.local_addr()?);
        let listener = if fast_open {
            Listening::FastOpen(TfoListener::from_std(listener)?)
        } else {
            Listening::Plain(TcpListener::from_std(listener)?)
        };
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
    ) -> Poll<io::Result<(TcpSocket, Multiaddr)>> {
        std::task::ready!(self.paused.poll_over(cx));
        let accepted = match &self.listener {
            Listening::Plain(listener) => {
                std::task::ready!(listener.poll_accept(cx)).map(|(s, r)| (Either::Left(s), r))
            }
            Listening::FastOpen(listener) => {
                std::task::ready!(listener.poll_accept(cx)).map(|(s, r)| (Either::Right(s), r))
            }
        };
        let accepted = accepted.and_then(|(socket, remote)| {
            set_nodelay(&socket)?;
            Ok((socket, tcp_multiaddr(remote)))
        });
        if accepted.is_err() {
            self.paused.start();
        }
        Poll::Ready(accepted)
    }
}
