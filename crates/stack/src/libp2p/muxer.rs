//! A yamux session as a libp2p [`StreamMuxer`], run with the stack's own
//! yamux settings ([`Config::yamux`](crate::Config)), so that a Swarm's
//! connections keep the same per-connection memory bound as the stack's.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use futures_util::{AsyncRead, AsyncWrite};
use libp2p_core::muxing::{StreamMuxer, StreamMuxerEvent};

/// Inbound streams that arrived while the Swarm was not asking for one,
/// kept until it does; beyond this many, new ones are dropped, which resets
/// them (as the stack's own connections do with streams beyond their
/// queue).
const MAX_WAITING_INBOUND: usize = 64;

/// A yamux session seen by a Swarm.
#[derive(Debug)]
pub(crate) struct Muxer<T> {
    session: yamux::Connection<T>,
    /// Inbound streams taken by [`StreamMuxer::poll`], oldest first.
    waiting: VecDeque<yamux::Stream>,
    /// The task asking for an inbound stream, woken when one is queued.
    inbound_task: Option<Waker>,
}

impl<T> Muxer<T> {
    pub(crate) fn new(session: yamux::Connection<T>) -> Self {
        Muxer {
            session,
            waiting: VecDeque::new(),
            inbound_task: None,
        }
    }
}

impl<T> StreamMuxer for Muxer<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    type Substream = yamux::Stream;
    type Error = yamux::ConnectionError;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Some(stream) = this.waiting.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        this.inbound_task = Some(cx.waker().clone());
        match this.session.poll_next_inbound(cx) {
            Poll::Ready(Some(next)) => Poll::Ready(next),
            Poll::Ready(None) => Poll::Ready(Err(yamux::ConnectionError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        self.get_mut().session.poll_new_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().session.poll_close(cx)
    }

    /// Drives the session: frames are read and written only while someone
    /// polls it, and an inbound stream may arrive here.
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        loop {
            match this.session.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    if this.waiting.len() < MAX_WAITING_INBOUND {
                        this.waiting.push_back(stream);
                        if let Some(task) = this.inbound_task.take() {
                            task.wake();
                        }
                    } else {
                        tracing::debug!("inbound stream queue full: stream reset");
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err)),
                Poll::Ready(None) => return Poll::Ready(Err(yamux::ConnectionError::Closed)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
