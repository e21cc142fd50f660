//! A onetrip QUIC connection as a libp2p [`StreamMuxer`]: QUIC's own
//! streams, and, for a 0-RTT dial, its handshake watched to the end.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::{FutureExt, future::BoxFuture};
use libp2p_core::muxing::{StreamMuxer, StreamMuxerEvent};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::Error;

type Opening = BoxFuture<'static, Result<onetrip_quic::Stream, onetrip_quic::Error>>;

/// A QUIC connection seen by a Swarm.
pub(crate) struct QuicMuxer {
    connection: onetrip_quic::Connection,
    opening: Option<Opening>,
    accepting: Option<Opening>,
    /// A 0-RTT dial's handshake, until it completes: the Swarm has the
    /// connection (and the expected peer id) at once; if the handshake
    /// then fails, [`StreamMuxer::poll`] says why and the Swarm closes it.
    handshake: Option<BoxFuture<'static, Result<(), onetrip_quic::Error>>>,
    /// An accepted connection's slot under the listener's connection limit.
    _slot: Option<OwnedSemaphorePermit>,
}

impl QuicMuxer {
    pub(crate) fn new(
        connection: onetrip_quic::Connection,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let handshake = connection.is_early().then(|| {
            let connection = connection.clone();
            async move { connection.established().await }.boxed()
        });
        QuicMuxer {
            connection,
            opening: None,
            accepting: None,
            handshake,
            _slot: slot,
        }
    }
}

/// Polls the stream `pending` opens or accepts, starting it on
/// `connection` with `start` if none is pending.
fn poll_stream(
    connection: &onetrip_quic::Connection,
    pending: &mut Option<Opening>,
    start: fn(onetrip_quic::Connection) -> Opening,
    cx: &mut Context<'_>,
) -> Poll<Result<Compat<onetrip_quic::Stream>, Error>> {
    let opening = pending.get_or_insert_with(|| start(connection.clone()));
    let stream = std::task::ready!(opening.poll_unpin(cx));
    *pending = None;
    Poll::Ready(
        stream
            .map(TokioAsyncReadCompatExt::compat)
            .map_err(Error::from),
    )
}

impl StreamMuxer for QuicMuxer {
    type Substream = Compat<onetrip_quic::Stream>;
    type Error = Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        poll_stream(
            &this.connection,
            &mut this.accepting,
            |connection| async move { connection.accept_bi().await }.boxed(),
            cx,
        )
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        poll_stream(
            &this.connection,
            &mut this.opening,
            |connection| async move { connection.open_bi().await }.boxed(),
            cx,
        )
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.connection.close();
        Poll::Ready(Ok(()))
    }

    /// Watches a 0-RTT dial's handshake: its failure (another peer than
    /// the one dialed, say: [`Error::PeerIdMismatch`]) ends the connection.
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        if let Some(handshake) = &mut this.handshake {
            let outcome = std::task::ready!(handshake.poll_unpin(cx));
            this.handshake = None;
            if let Err(err) = outcome {
                this.connection.close();
                return Poll::Ready(Err(err.into()));
            }
        }
        Poll::Pending
    }
}
