//! Authenticated connections.

use std::{net::SocketAddr, sync::Arc};

use libp2p_identity::PeerId;

use crate::{
    credit::{OpenStream, StreamCredit},
    early::Outcome,
    error::Error,
    handshake::Handshake,
    stream::Stream,
};

/// An authenticated QUIC connection.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: quinn::Connection,
    remote_peer_id: PeerId,
    /// A 0-RTT dial's handshake, which may still be running.
    handshake: Option<Handshake>,
    credit: Arc<StreamCredit>,
}

impl Connection {
    pub(crate) fn new(
        inner: quinn::Connection,
        remote_peer_id: PeerId,
        handshake: Option<Handshake>,
        max_streams: u32,
    ) -> Self {
        Connection {
            inner,
            remote_peer_id,
            handshake,
            credit: Arc::new(StreamCredit::new(max_streams)),
        }
    }

    /// The remote peer id, decided once per connection. A dial's is the
    /// one the server's certificate proved (the expected one, if the dial
    /// named a peer: any other is refused in the handshake) or, for a
    /// resumed session, the expected peer whose session it resumed; a 0-RTT
    /// dial's is that peer from the start, and a handshake that then fails
    /// fails its streams. An accepted connection's is the one the client's
    /// certificate proves.
    pub fn remote_peer_id(&self) -> PeerId {
        self.remote_peer_id
    }

    /// The remote address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_address()
    }

    /// The quinn connection.
    pub fn inner(&self) -> &quinn::Connection {
        &self.inner
    }

    /// Whether this is a 0-RTT dial whose handshake is still running.
    pub fn is_early(&self) -> bool {
        self.handshake
            .as_ref()
            .is_some_and(|handshake| handshake.outcome_now().is_none())
    }

    /// For a 0-RTT dial, waits for the handshake and says whether the
    /// server accepted the 0-RTT data (`false` too if the handshake
    /// failed); `None` for other connections.
    pub async fn zero_rtt_accepted(&self) -> Option<bool> {
        let outcome = self.handshake.as_ref()?.outcome().await;
        Some(matches!(outcome, Outcome::Accepted))
    }

    /// Waits until the connection is authenticated: at once for any but a
    /// 0-RTT dial; for one, until its handshake completes.
    ///
    /// # Errors
    /// Why the 0-RTT dial's handshake failed: [`Error::PeerIdMismatch`]
    /// when another peer answered, [`Error::Certificate`],
    /// [`Error::Timeout`] past the dial's deadline, [`Error::Connection`].
    pub async fn established(&self) -> Result<(), Error> {
        let Some(handshake) = &self.handshake else {
            return Ok(());
        };
        match handshake.outcome().await {
            Outcome::Accepted | Outcome::Rejected => Ok(()),
            Outcome::Failed(err) => Err(err),
        }
    }

    /// Opens a bidirectional stream. During a 0-RTT handshake its data
    /// leaves as 0-RTT data and is replayed on a fresh stream if the server
    /// rejects it.
    ///
    /// # Errors
    /// [`Error::Connection`].
    pub async fn open_bi(&self) -> Result<Stream, Error> {
        let (send, recv) = self.inner.open_bi().await?;
        // Only a stream quinn opened in 0-RTT needs the bookkeeping.
        Ok(match &self.handshake {
            Some(handshake) if recv.is_0rtt() => {
                Stream::early(send, recv, handshake.clone(), self.inner.clone())
            }
            _ => Stream::new(send, recv),
        })
    }

    /// The next stream the peer opens.
    ///
    /// # Errors
    /// [`Error::Connection`] once the connection is closed.
    pub async fn accept_bi(&self) -> Result<Stream, Error> {
        let (send, recv) = self.inner.accept_bi().await?;
        let open = OpenStream::new(&self.credit);
        self.credit.grow(&self.inner);
        Ok(Stream::new(send, recv).with_credit(open))
    }

    /// Closes the connection at once; the peer learns it.
    pub fn close(&self) {
        self.inner.close(0u32.into(), b"closed");
    }

    /// Waits until the connection is closed, and says why.
    pub async fn closed(&self) -> Error {
        self.inner.closed().await.into()
    }
}
