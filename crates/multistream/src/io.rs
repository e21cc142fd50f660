//! A thin tokio adapter over the sans-IO [`Dialer`] and [`Listener`].

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::{Dialer, Error, Listener, MAX_MESSAGE_LEN, Mode, Protocol, Status};

/// How long [`dialer_select`] and [`listener_select`] wait for the peer
/// before giving up with [`Error::Timeout`]: the same default as
/// rust-libp2p's upgrade timeout.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How much application data an optimistic dialer's first write copies
/// behind the header and proposal, so that all of it leaves in one write.
/// Beyond a TCP initial window (about 14 KB) more would not share the first
/// flight anyway.
const COALESCE_LIMIT: usize = 16 * 1024;

/// How many bytes one read during negotiation asks for.
const READ_CHUNK: usize = MAX_MESSAGE_LEN + 2;

/// Negotiates a protocol as the dialer, most preferred first.
///
/// In [`Mode::Optimistic`], once a single candidate remains this returns
/// without waiting: the header and proposal are held back and leave in the
/// same write as the application's first bytes, and the listener's answer is
/// read by the first read on the returned stream. With one protocol that
/// means no I/O at all here.
///
/// # Errors
/// Any [`Error`]; [`Error::Timeout`] after [`NEGOTIATION_TIMEOUT`].
pub async fn dialer_select<IO>(
    mut io: IO,
    protocols: impl IntoIterator<Item = Protocol>,
    mode: Mode,
) -> Result<(Protocol, Negotiated<IO>), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut dialer = Dialer::new(protocols, mode)?;
    let drive = async {
        let mut out = Vec::new();
        let mut buf = [0u8; READ_CHUNK];
        loop {
            if let Status::Optimistic(_) = dialer.status() {
                return Ok::<_, Error>(Vec::new());
            }
            dialer.take_output(&mut out);
            write_out(&mut io, &mut out).await?;
            let n = io.read(&mut buf).await?;
            if n == 0 {
                dialer.handle_eof()?;
            }
            let used = dialer.handle_input(&buf[..n])?;
            if let Status::Selected(_) = dialer.status() {
                return Ok(buf[used..n].to_vec());
            }
        }
    };
    let leftover = tokio::time::timeout(NEGOTIATION_TIMEOUT, drive)
        .await
        .map_err(|_| Error::Timeout)??;
    Ok(Negotiated::from_dialer(io, dialer, leftover))
}

/// Negotiates a protocol as the listener, offering `supported`.
///
/// The header leaves at once; `ls` is answered; unknown proposals get `na`.
/// Returns once a proposal is accepted and its echo flushed. Bytes the
/// dialer pipelined after its proposal are the first bytes read from the
/// returned stream.
///
/// # Errors
/// Any [`Error`]; [`Error::Timeout`] after [`NEGOTIATION_TIMEOUT`].
pub async fn listener_select<IO>(
    mut io: IO,
    supported: impl Into<Arc<[Protocol]>>,
) -> Result<(Protocol, Negotiated<IO>), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut listener = Listener::new(supported);
    let drive = async {
        let mut out = Vec::new();
        let mut buf = [0u8; READ_CHUNK];
        let mut leftover = Vec::new();
        loop {
            listener.take_output(&mut out);
            write_out(&mut io, &mut out).await?;
            if let Status::Selected(protocol) = listener.status() {
                return Ok::<_, Error>((protocol.clone(), leftover));
            }
            let n = io.read(&mut buf).await?;
            if n == 0 {
                listener.handle_eof()?;
            }
            let used = match listener.handle_input(&buf[..n]) {
                Ok(used) => used,
                Err(err) => {
                    // Answers queued before the violation (an `na`, say) are
                    // still true: send them, so the dialer learns why.
                    listener.take_output(&mut out);
                    let _ = write_out(&mut io, &mut out).await;
                    return Err(err);
                }
            };
            leftover = buf[used..n].to_vec();
        }
    };
    let (protocol, leftover) = tokio::time::timeout(NEGOTIATION_TIMEOUT, drive)
        .await
        .map_err(|_| Error::Timeout)??;
    Ok((
        protocol.clone(),
        Negotiated::new(io, protocol, Vec::new(), leftover, None),
    ))
}

async fn write_out<IO: AsyncWrite + Unpin>(io: &mut IO, out: &mut Vec<u8>) -> io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        io.flush().await?;
        out.clear();
    }
    Ok(())
}

/// A stream on which a protocol has been negotiated.
///
/// For an optimistic dialer it still carries the unsent header and proposal
/// (written together with the first application bytes) and the listener's
/// unread answer (consumed by the first read). Once both are gone it is a
/// pass-through to the inner stream.
///
/// If the listener refused an optimistic protocol, reads fail with
/// [`Error::OptimisticRejected`] (wrapped in an [`io::Error`]: see
/// [`Error::from_io`]), and so does every write after that read. Writes never
/// read on their own: a write that precedes the first read cannot know yet,
/// and a split stream's writer must not steal its reader's wake-ups.
#[derive(Debug)]
pub struct Negotiated<IO> {
    io: IO,
    protocol: Protocol,
    /// Negotiation bytes not yet written, then possibly coalesced
    /// application bytes; `out_pos` of them are written.
    out: Vec<u8>,
    out_pos: usize,
    /// Application bytes that arrived with the last negotiation message;
    /// `in_pos` of them are read.
    inbound: Vec<u8>,
    in_pos: usize,
    /// An optimistic dialer still waiting for the listener's answer.
    pending: Option<Box<Dialer>>,
    /// The error that broke the negotiation, returned by every later call.
    failed: Option<Error>,
}

impl<IO> Negotiated<IO> {
    fn new(
        io: IO,
        protocol: Protocol,
        out: Vec<u8>,
        inbound: Vec<u8>,
        pending: Option<Box<Dialer>>,
    ) -> Self {
        Negotiated {
            io,
            protocol,
            out,
            out_pos: 0,
            inbound,
            in_pos: 0,
            pending,
            failed: None,
        }
    }

    fn from_dialer(io: IO, mut dialer: Dialer, leftover: Vec<u8>) -> (Protocol, Self) {
        let mut out = Vec::new();
        dialer.take_output(&mut out);
        match dialer.status().clone() {
            Status::Optimistic(protocol) => {
                let this = Self::new(io, protocol.clone(), out, leftover, Some(Box::new(dialer)));
                (protocol, this)
            }
            Status::Selected(protocol) => (
                protocol.clone(),
                Self::new(io, protocol, out, leftover, None),
            ),
            Status::Negotiating => {
                unreachable!("dialer_select returns only once a protocol is chosen")
            }
        }
    }

    /// The negotiated protocol (for an optimistic dialer: the one selected,
    /// perhaps not yet confirmed).
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    /// Whether the listener has confirmed the protocol (always true on the
    /// listener side and for an interactive dialer).
    pub fn is_confirmed(&self) -> bool {
        self.pending.is_none() && self.failed.is_none()
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The inner stream, mutably. Reading or writing it directly while
    /// negotiation bytes are still pending corrupts the stream.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    fn fail(&mut self, err: Error) -> io::Error {
        self.pending = None;
        self.failed = Some(err.clone());
        err.into()
    }

    fn check_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some(err) => Err(err.clone().into()),
            None => Ok(()),
        }
    }
}

impl<IO: AsyncWrite + Unpin> Negotiated<IO> {
    /// Writes the pending negotiation (and coalesced) bytes.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        if !self.out.is_empty() {
            self.out = Vec::new();
            self.out_pos = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Negotiated<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_failed()?;
        if this.in_pos < this.inbound.len() {
            let n = buf.remaining().min(this.inbound.len() - this.in_pos);
            buf.put_slice(&this.inbound[this.in_pos..this.in_pos + n]);
            this.in_pos += n;
            if this.in_pos == this.inbound.len() {
                this.inbound = Vec::new();
                this.in_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let Some(dialer) = this.pending.as_mut() else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // Read the listener's answer in chunks of our own (the caller's
        // buffer may be a single byte), consume the negotiation messages, and
        // pass on the application bytes behind them.
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let mut filled = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut filled))?;
            let n = filled.filled().len();
            let result = if n == 0 {
                dialer.handle_eof().map(|()| 0)
            } else {
                dialer.handle_input(&chunk[..n])
            };
            let used = match result {
                Ok(used) => used,
                Err(err) => return Poll::Ready(Err(this.fail(err))),
            };
            if let Status::Selected(_) = dialer.status() {
                this.pending = None;
                let rest = &chunk[used..n];
                if rest.is_empty() {
                    return Pin::new(&mut this.io).poll_read(cx, buf);
                }
                let now = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..now]);
                this.inbound = rest[now..].to_vec();
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Negotiated<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_failed()?;
        if this.out.is_empty() {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        // Negotiation bytes are pending. Until any of them has been written,
        // append application bytes so that both leave in one write.
        let mut accepted = 0;
        if this.out_pos == 0 && this.out.len() < COALESCE_LIMIT {
            accepted = buf.len().min(COALESCE_LIMIT - this.out.len());
            this.out.extend_from_slice(&buf[..accepted]);
        }
        match this.poll_write_out(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            _ if accepted > 0 => Poll::Ready(Ok(accepted)),
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_failed()?;
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
