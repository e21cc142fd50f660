//! A thin tokio adapter over the sans-IO [`Dialer`] and [`Listener`].

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker, ready},
};

use onetrip_common::{Deadline, poll_write_out};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::{Dialer, Error, Listener, MAX_MESSAGE_LEN, Mode, Protocol, Status};

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
/// `deadline` is the caller's (the one for the whole connection setup, say):
/// this adapter has no timer of its own.
///
/// # Errors
/// Any [`Error`]; [`Error::Timeout`] once `deadline` has passed.
pub async fn dialer_select<IO>(
    mut io: IO,
    protocols: impl IntoIterator<Item = Protocol>,
    mode: Mode,
    deadline: Deadline,
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
    let leftover = deadline.run(drive).await.map_err(|_| Error::Timeout)??;
    Ok(Negotiated::from_dialer(io, dialer, leftover))
}

/// Negotiates a protocol as the listener, offering `supported`.
///
/// The header leaves at once; `ls` is answered; unknown proposals get `na`.
/// Returns once a proposal is accepted and its echo flushed. Bytes the
/// dialer pipelined after its proposal are the first bytes read from the
/// returned stream.
///
/// `deadline` is the caller's: this adapter has no timer of its own.
///
/// # Errors
/// Any [`Error`]; [`Error::Timeout`] once `deadline` has passed.
pub async fn listener_select<IO>(
    mut io: IO,
    supported: impl Into<Arc<[Protocol]>>,
    deadline: Deadline,
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
    let (protocol, leftover) = deadline.run(drive).await.map_err(|_| Error::Timeout)??;
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
/// The pending header and proposal leave with the first write, the first
/// flush, the first read or the shutdown, whichever comes first: a protocol
/// in which the listener speaks first works as well as one in which the
/// dialer does.
///
/// While the listener's answer is pending, a shutdown sends everything
/// written but holds the end of the stream back until the answer has been
/// read: js-libp2p loses the end of a stream that arrives before its
/// protocol handler runs (see spec/multistream-select.md, "Closing before
/// the answer"). Application bytes that arrive behind the answer meanwhile
/// are kept for the next read. Such a shutdown waits on the peer as a read
/// does: bound it with the same deadline.
///
/// If the listener refused an optimistic protocol, reads fail with
/// [`Error::OptimisticRejected`] (wrapped in an [`io::Error`]: see
/// [`Error::from_io`]), and so do the shutdown and every write after that.
/// Writes never read: a write that precedes the first read cannot know yet.
/// A split stream's reader, writer and shutdown may each wait on the inner
/// stream for the negotiation; whichever completes it wakes the others.
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
    /// Tasks waiting for the negotiation to progress (its bytes written, the
    /// answer read): the inner stream wakes only the last task that polled
    /// it, so whichever makes progress wakes these.
    waiting: Vec<Waker>,
}

/// At most this many distinct tasks wait on one stream's negotiation (a
/// reader, a writer, a closer, and one to spare).
const MAX_WAITING: usize = 4;

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
            waiting: Vec::new(),
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
        self.wake_waiting();
        err.into()
    }

    fn check_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some(err) => Err(err.clone().into()),
            None => Ok(()),
        }
    }

    /// Whether bytes still have to be written or the answer read.
    fn negotiating(&self) -> bool {
        !self.out.is_empty() || self.pending.is_some()
    }

    /// Remembers the task behind `poll` if it waits while negotiating.
    fn park<T>(&mut self, cx: &Context<'_>, poll: Poll<T>) -> Poll<T> {
        if poll.is_pending()
            && self.negotiating()
            && !self.waiting.iter().any(|w| w.will_wake(cx.waker()))
        {
            if self.waiting.len() == MAX_WAITING {
                self.waiting.remove(0).wake();
            }
            self.waiting.push(cx.waker().clone());
        }
        poll
    }

    fn wake_waiting(&mut self) {
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
    }

    /// Takes up to `buf.remaining()` bytes kept from the last negotiation
    /// message; whether there were any.
    fn read_kept(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.in_pos == self.inbound.len() {
            return false;
        }
        let n = buf.remaining().min(self.inbound.len() - self.in_pos);
        buf.put_slice(&self.inbound[self.in_pos..self.in_pos + n]);
        self.in_pos += n;
        if self.in_pos == self.inbound.len() {
            self.inbound = Vec::new();
            self.in_pos = 0;
        }
        true
    }
}

impl<IO: AsyncWrite + Unpin> Negotiated<IO> {
    /// Writes the pending negotiation (and coalesced) bytes.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(poll_write_out(
            &mut self.io,
            cx,
            &self.out,
            &mut self.out_pos
        ))?;
        if !self.out.is_empty() {
            self.out = Vec::new();
            self.out_pos = 0;
            self.wake_waiting();
        }
        Poll::Ready(Ok(()))
    }

    /// Writes and flushes the pending negotiation bytes, if any.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.out.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<IO: AsyncRead + Unpin> Negotiated<IO> {
    /// Reads the listener's answer, if still pending, in chunks of our own
    /// (a caller's buffer may be a single byte). Application bytes behind it
    /// are kept for the next read.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(dialer) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let mut filled = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut filled))?;
            let n = filled.filled().len();
            let result = if n == 0 {
                dialer.handle_eof().map(|()| 0)
            } else {
                dialer.handle_input(&chunk[..n])
            };
            let used = match result {
                Ok(used) => used,
                Err(err) => return Poll::Ready(Err(self.fail(err))),
            };
            if let Status::Selected(_) = dialer.status() {
                self.pending = None;
                self.inbound.extend_from_slice(&chunk[used..n]);
                self.wake_waiting();
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Negotiated<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_failed()?;
        if this.read_kept(buf) {
            return Poll::Ready(Ok(()));
        }
        if !this.negotiating() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // A dialer that reads first: its header and proposal must leave
        // now, or a listener that waits for them never answers.
        let sent = this.poll_send_pending(cx);
        ready!(this.park(cx, sent))?;
        let answered = this.poll_answer(cx);
        ready!(this.park(cx, answered))?;
        if this.read_kept(buf) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Negotiated<IO> {
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
        let written = this.poll_write_out(cx);
        match this.park(cx, written) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            _ if accepted > 0 => Poll::Ready(Ok(accepted)),
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Pin::new(&mut this.io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_failed()?;
        let written = this.poll_write_out(cx);
        ready!(this.park(cx, written))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let sent = this.poll_send_pending(cx);
        ready!(this.park(cx, sent))?;
        // Hold the end of the stream until the listener has answered.
        let answered = this.poll_answer(cx);
        ready!(this.park(cx, answered))?;
        this.check_failed()?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
