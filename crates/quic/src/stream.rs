//! Bidirectional streams, with replay of 0-RTT data the server rejected.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_util::FutureExt;
use quinn::{RecvStream, SendStream, WriteError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{
    Error,
    endpoint::{EarlyHandshake, mismatch, remote_peer_id},
};

/// How much a stream keeps of what it sent as 0-RTT data, to replay it if
/// the server rejects it. A stream that writes more waits for the handshake
/// first: beyond this, the data would not fit the first flight anyway.
pub const MAX_EARLY_DATA: usize = 64 * 1024;

/// A bidirectional QUIC stream (`AsyncRead + AsyncWrite`).
///
/// A stream opened during a 0-RTT handshake sends at once and keeps a copy
/// of its data; when the handshake completes it checks the server's peer
/// id, and if the server rejected the 0-RTT data it opens a new stream and
/// sends the copy again, so the caller sees no difference but the time.
#[derive(Debug)]
pub struct Stream {
    send: SendStream,
    recv: RecvStream,
    early: Option<Box<Early>>,
    /// The current send side is finished.
    finished: bool,
}

/// A stream's 0-RTT bookkeeping.
pub(crate) struct Early {
    connection: quinn::Connection,
    handshake: EarlyHandshake,
    sent: Vec<u8>,
    finished: bool,
    state: State,
}

type Opening =
    Pin<Box<dyn Future<Output = Result<(SendStream, RecvStream), quinn::ConnectionError>> + Send>>;

enum State {
    /// The handshake is running.
    Waiting,
    /// Rejected: opening a replacement stream.
    Reopening(Opening),
    /// Rejected: sending the copy on the replacement, `usize` bytes so far.
    Replaying(usize),
}

impl std::fmt::Debug for Early {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Early")
            .field("sent", &self.sent.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Early {
    pub(crate) fn new(connection: quinn::Connection, handshake: EarlyHandshake) -> Box<Self> {
        Box::new(Early {
            connection,
            handshake,
            sent: Vec::new(),
            finished: false,
            state: State::Waiting,
        })
    }
}

impl Stream {
    pub(crate) fn new(send: SendStream, recv: RecvStream, early: Option<Box<Early>>) -> Self {
        Stream {
            send,
            recv,
            early,
            finished: false,
        }
    }

    /// The quinn stream id.
    pub fn id(&self) -> quinn::StreamId {
        self.send.id()
    }

    /// Drives the 0-RTT bookkeeping to its end: ready once the data is
    /// known to have been accepted, or has been replayed.
    fn poll_settle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(early) = self.early.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        loop {
            match &mut early.state {
                State::Waiting => {
                    let accepted = ready!(early.handshake.accepted.poll_unpin(cx));
                    // A failed handshake: say why, as a dial would.
                    if let Some(refusal) = early.handshake.dial.refusal() {
                        return Poll::Ready(Err(io::Error::other(Error::from(refusal))));
                    }
                    if let Some(reason) = early.connection.close_reason() {
                        return Poll::Ready(Err(io::Error::from(reason)));
                    }
                    let actual = remote_peer_id(&early.connection).map_err(io::Error::other)?;
                    if actual != early.handshake.expected {
                        early.connection.close(0u32.into(), b"peer id mismatch");
                        return Poll::Ready(Err(io::Error::other(mismatch(
                            early.handshake.expected,
                            actual,
                        ))));
                    }
                    if accepted {
                        self.early = None;
                        return Poll::Ready(Ok(()));
                    }
                    tracing::debug!(bytes = early.sent.len(), "0-RTT rejected: replaying");
                    let connection = early.connection.clone();
                    early.state =
                        State::Reopening(Box::pin(async move { connection.open_bi().await }));
                }
                State::Reopening(open) => {
                    let (send, recv) = ready!(open.as_mut().poll(cx)).map_err(io::Error::from)?;
                    self.send = send;
                    self.recv = recv;
                    early.state = State::Replaying(0);
                }
                State::Replaying(done) => {
                    while *done < early.sent.len() {
                        let n = ready!(AsyncWrite::poll_write(
                            Pin::new(&mut self.send),
                            cx,
                            &early.sent[*done..]
                        ))?;
                        *done += n;
                    }
                    if early.finished {
                        ready!(AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx))?;
                        self.finished = true;
                    }
                    self.early = None;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }

    /// Whether the 0-RTT handshake has completed (polling it to find out).
    fn handshake_done(&self) -> bool {
        self.early.as_ref().is_some_and(|early| {
            early.handshake.accepted.peek().is_some()
                || early.handshake.accepted.clone().now_or_never().is_some()
        })
    }

    /// Whether writes may still go out as 0-RTT data.
    fn waiting(&self) -> bool {
        self.early
            .as_ref()
            .is_some_and(|early| matches!(early.state, State::Waiting))
    }
}

/// Whether a write failed because the server rejected 0-RTT data.
fn rejected(err: &io::Error) -> bool {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<WriteError>())
        .is_some_and(|err| matches!(err, WriteError::ZeroRttRejected))
}

impl AsyncRead for Stream {
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
        if this.waiting()
            && let Poll::Ready(settled) = this.poll_settle(cx)
        {
            settled?;
        }
        if this.waiting() {
            let room = MAX_EARLY_DATA - this.early.as_ref().map_or(0, |e| e.sent.len());
            if room > 0 {
                let len = buf.len().min(room);
                match AsyncWrite::poll_write(Pin::new(&mut this.send), cx, &buf[..len]) {
                    Poll::Ready(Ok(n)) => {
                        if let Some(early) = this.early.as_mut() {
                            early.sent.extend_from_slice(&buf[..n]);
                        }
                        return Poll::Ready(Ok(n));
                    }
                    Poll::Ready(Err(err)) if !rejected(&err) => return Poll::Ready(Err(err)),
                    // Rejected: settle below, then write on the replacement.
                    Poll::Ready(Err(_)) => {}
                    Poll::Pending => return Poll::Pending,
                }
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
        let finishing_early = this.waiting()
            && !this.finished
            && this
                .early
                .as_ref()
                .is_some_and(|early| !early.finished && early.handshake.accepted.peek().is_none());
        if finishing_early && !this.handshake_done() {
            // quinn resets a rejected handshake's streams (and reuses their
            // ids) when the handshake completes, which also resolves
            // `accepted`: only while it is unresolved may the old stream
            // be finished.
            let finished = AsyncWrite::poll_shutdown(Pin::new(&mut this.send), cx);
            if let Some(early) = this.early.as_mut() {
                early.finished = true;
            }
            match finished {
                Poll::Ready(Ok(())) => this.finished = true,
                // Closed under us: the handshake rejected it; replay.
                Poll::Ready(Err(_)) | Poll::Pending => {}
            }
        } else if this.waiting()
            && let Some(early) = this.early.as_mut()
        {
            // The handshake is over: the replay (if any) ends the stream.
            early.finished = true;
        }
        ready!(this.poll_settle(cx))?;
        if !this.finished {
            ready!(AsyncWrite::poll_shutdown(Pin::new(&mut this.send), cx))?;
            this.finished = true;
        }
        Poll::Ready(Ok(()))
    }
}
