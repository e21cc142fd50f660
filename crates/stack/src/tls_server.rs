//! The TLS server side on a byte stream, with TLS 1.3 early data: a thin
//! adapter that moves bytes between the socket and rustls' own state
//! machine (`read_tls` / `process_new_packets` / `write_tls`).
//!
//! It exists because the server must act on early data before the
//! handshake completes: it hands early data to the reader as soon as
//! rustls accepted it, and writes its answer right behind its own Finished
//! (rustls' `send_half_rtt_data`). An adapter that resolves only at the end
//! of the handshake would hold the answer for one more round trip.

use std::{
    io::{self, Read, Write},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, ready},
};

use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many bytes one read from the socket takes (one TLS record and its
/// header at most).
const READ_CHUNK: usize = 16 * 1024 + 256;

/// A TLS server connection over `IO`.
#[derive(Debug)]
pub(crate) struct TlsServer<IO> {
    io: IO,
    tls: ServerConnection,
    /// The socket reached its end.
    eof: bool,
    early: EarlyPhase,
}

/// Whether a connection is in its early-data phase: rustls took the
/// client's early data and the handshake has not completed. What is read
/// meanwhile came as early data, which the network may have replayed.
#[derive(Debug, Clone, Default)]
pub(crate) struct EarlyPhase(Arc<AtomicBool>);

impl EarlyPhase {
    /// Whether the bytes read now are early data.
    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, on: bool) {
        self.0.store(on, Ordering::Release);
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsServer<IO> {
    /// Runs the server handshake over `io` until the client is known: the
    /// handshake completed, or rustls accepted the client's early data (a
    /// resumed session: its peer and ALPN are known, and the early data is
    /// the first thing read).
    pub(crate) async fn accept(io: IO, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let tls = ServerConnection::new(config).map_err(io::Error::other)?;
        let mut server = TlsServer {
            io,
            tls,
            eof: false,
            early: EarlyPhase::default(),
        };
        std::future::poll_fn(|cx| server.poll_handshake(cx)).await?;
        Ok(server)
    }

    /// The rustls connection (peer certificates, ALPN, early data state).
    pub(crate) fn connection(&self) -> &ServerConnection {
        &self.tls
    }

    /// Whether what is read now is early data, as it changes.
    pub(crate) fn early_phase(&self) -> EarlyPhase {
        self.early.clone()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx))?;
            if !self.tls.is_handshaking() || self.tls.early_data().is_some() {
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            ready!(self.poll_receive(cx))?;
        }
    }

    /// Writes everything rustls has to send.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tls.wants_write() {
            let mut socket = SyncIo {
                io: &mut self.io,
                cx,
            };
            match self.tls.write_tls(&mut socket) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Reads one chunk from the socket into rustls and processes it.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut socket = SyncIo {
            io: &mut self.io,
            cx,
        };
        let n = match self.tls.read_tls(&mut socket) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(err) => return Poll::Ready(Err(err)),
        };
        if n == 0 {
            self.eof = true;
        }
        if let Err(err) = self.tls.process_new_packets() {
            // Tell the client why, then fail.
            let _ = self.poll_send(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, err)));
        }
        let early = self.tls.is_handshaking() && self.tls.early_data().is_some();
        self.early.set(early);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsServer<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            // Early data first: it precedes everything after the handshake.
            if let Some(mut early) = this.tls.early_data() {
                let n = early.read(buf.initialize_unfilled())?;
                if n > 0 {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
            }
            match this.tls.reader().read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
            if this.eof {
                return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
            }
            ready!(this.poll_receive(cx))?;
            // Handshake messages (a session ticket) or alerts may follow;
            // if the socket is full, the writer's next flush sends them.
            let _ = this.poll_send(cx)?;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsServer<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let n = this.tls.writer().write(buf)?;
            if n > 0 || buf.is_empty() {
                // Best effort now; a flush finishes it.
                let _ = this.poll_send(cx)?;
                return Poll::Ready(Ok(n));
            }
            // rustls' buffer is full: send some first.
            ready!(this.poll_send(cx))?;
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tls.writer().flush()?;
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tls.send_close_notify();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The socket as blocking `Read` and `Write` for rustls, `WouldBlock`
/// where it would wait (the task is woken when it can go on).
struct SyncIo<'a, 'b, IO> {
    io: &'a mut IO,
    cx: &'a mut Context<'b>,
}

impl<IO: AsyncRead + Unpin> Read for SyncIo<'_, '_, IO> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let len = out.len().min(READ_CHUNK);
        let mut buf = ReadBuf::new(&mut out[..len]);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(err)) => Err(err),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<IO: AsyncWrite + Unpin> Write for SyncIo<'_, '_, IO> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, data) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
