//! Bidirectional streams: quinn's, with the 0-RTT machine of `early.rs`
//! run on them.

use std::{
    fmt,
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use quinn::{RecvStream, SendStream, WriteError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{
    credit::OpenStream,
    early::{Step, WriteSide},
    error::Error,
    handshake::Handshake,
};

/// A bidirectional QUIC stream (`AsyncRead + AsyncWrite`).
///
/// A stream opened during a 0-RTT handshake sends at once and keeps a copy
/// of its data (up to [`MAX_EARLY_DATA`](crate::early::MAX_EARLY_DATA)); when the
/// handshake completes, it fails if the handshake did, and if the server
/// rejected the 0-RTT data it opens a new stream and sends the copy again,
/// so the caller sees no difference but the time.
///
/// A server sees which streams came as 0-RTT data: [`Stream::is_early`].
#[derive(Debug)]
pub struct Stream {
    send: SendStream,
    recv: RecvStream,
    write: WriteSide<Replacement>,
    /// Opened or accepted before the handshake completed.
    early: bool,
    /// An accepted stream's place among those the peer has open.
    _open: Option<OpenStream>,
}

/// What a 0-RTT stream needs to settle: the handshake to wait for, and the
/// connection to open a replacement on.
struct Replacement {
    handshake: Handshake,
    connection: quinn::Connection,
    opening: Option<Opening>,
}

type Opening =
    Pin<Box<dyn Future<Output = Result<(SendStream, RecvStream), quinn::ConnectionError>> + Send>>;

impl fmt::Debug for Replacement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replacement")
            .field("handshake", &self.handshake)
            .field("opening", &self.opening.is_some())
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// An ordinary stream, or one a server accepted (quinn says whether
    /// its connection was still in its handshake then).
    pub(crate) fn new(send: SendStream, recv: RecvStream) -> Self {
        Stream {
            early: recv.is_0rtt(),
            send,
            recv,
            write: WriteSide::settled(),
            _open: None,
        }
    }

    /// Counts the stream among those the peer has open until it is
    /// dropped.
    pub(crate) fn with_credit(mut self, open: OpenStream) -> Self {
        self._open = Some(open);
        self
    }

    /// A stream opened on `connection` during its 0-RTT `handshake`.
    pub(crate) fn early(
        send: SendStream,
        recv: RecvStream,
        handshake: Handshake,
        connection: quinn::Connection,
    ) -> Self {
        Stream {
            early: true,
            send,
            recv,
            write: WriteSide::early(Replacement {
                handshake,
                connection,
                opening: None,
            }),
            _open: None,
        }
    }

    /// The quinn stream id.
    pub fn id(&self) -> quinn::StreamId {
        self.send.id()
    }

    /// Whether the stream began before its connection's handshake
    /// completed, so that its data may be 0-RTT data, which an attacker
    /// can record and replay.
    ///
    /// - **Accepted** (a server that accepts 0-RTT,
    ///   `Config::with_accept_0rtt`):
    ///   the client opened it in 0-RTT and it was accepted before the
    ///   client's handshake completed. Single-use tickets refuse a replayed
    ///   flight within one server process, and only there (see
    ///   `spec/quic.md`): a protocol serving such a stream must refuse
    ///   requests that are not idempotent. A stream accepted after the
    ///   handshake completed is not early: its client proved its keys,
    ///   which no replay can.
    /// - **Opened**: the stream was opened during a 0-RTT dial; its first
    ///   data left as 0-RTT data (and was sent again on a replacement
    ///   stream if the server rejected it).
    pub fn is_early(&self) -> bool {
        self.early
    }

    /// Does what the write side's machine asks until it is ready: waits for
    /// the handshake, replays what the server rejected, sends the end the
    /// caller asked for.
    fn poll_settle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.write.next() {
                Step::Ready => return Poll::Ready(Ok(())),
                Step::Fail(err) => return Poll::Ready(Err(err.clone().into())),
                Step::AwaitHandshake(replacement) => {
                    let outcome = ready!(replacement.handshake.poll_outcome(cx));
                    self.write.handshake_done(&outcome);
                }
                Step::Reopen(replacement) => {
                    let opening = replacement.opening.get_or_insert_with(|| {
                        tracing::debug!("0-RTT data rejected: replaying it on a new stream");
                        let connection = replacement.connection.clone();
                        Box::pin(async move { connection.open_bi().await })
                    });
                    let (send, recv) = ready!(opening.as_mut().poll(cx)).map_err(Error::from)?;
                    self.send = send;
                    self.recv = recv;
                    self.write.reopened();
                }
                Step::Replay(data) => {
                    let n = ready!(AsyncWrite::poll_write(Pin::new(&mut self.send), cx, data))?;
                    self.write.replayed(n);
                }
                Step::Finish => {
                    ready!(AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx))?;
                    self.write.finished();
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    /// Reads; a 0-RTT stream first waits for its handshake, so that no read
    /// waits on data the server never processed.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_settle(cx))?;
        AsyncRead::poll_read(Pin::new(&mut this.recv), cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write.is_early()
            && let Poll::Ready(settled) = this.poll_settle(cx)
        {
            settled?;
        }
        let room = this.write.early_room();
        if room > 0 {
            let early = &buf[..buf.len().min(room)];
            // quinn's own write, whose error says a rejection by its type.
            match Pin::new(&mut this.send).poll_write(cx, early) {
                Poll::Ready(Ok(n)) => {
                    this.write.sent_early(&early[..n]);
                    return Poll::Ready(Ok(n));
                }
                // Rejected: settle below, then write on the replacement.
                Poll::Ready(Err(WriteError::ZeroRttRejected)) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
        ready!(this.poll_settle(cx))?;
        AsyncWrite::poll_write(Pin::new(&mut this.send), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().send), cx)
    }

    /// Ends the write side. On a stream still in its 0-RTT handshake the
    /// end leaves at once as 0-RTT data, but this returns only once the
    /// handshake says whether the server took it (and, if not, the stream
    /// was replayed and ended again): a caller that shuts down and drops
    /// the stream loses nothing.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.write.end();
        // quinn discards a rejected handshake's streams (and reuses their
        // ids) when the handshake completes, which also resolves the
        // outcome: only while it is unresolved may the 0-RTT stream be
        // finished.
        let now = this
            .write
            .ending_early()
            .is_some_and(|replacement| replacement.handshake.outcome_now().is_none());
        if now && let Poll::Ready(Ok(())) = AsyncWrite::poll_shutdown(Pin::new(&mut this.send), cx)
        {
            this.write.finished();
        }
        // Not finished (closed under us: the server rejected it): the
        // replay ends the replacement.
        this.poll_settle(cx)
    }
}
