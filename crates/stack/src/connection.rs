//! An established connection: a yamux session driven by its own task, and
//! streams whose protocols are negotiated per the layering.

use std::{
    collections::VecDeque,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures_util::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use onetrip_multistream::{Mode, Negotiated, Protocol, dialer_select, listener_select};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, mpsc, oneshot},
};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use crate::{
    Config, Error,
    upgrade::{MuxerIo, Secured},
};

/// Negotiated inbound streams waiting for [`Connection::accept_stream`];
/// beyond this, new ones are reset.
const INBOUND_QUEUE: usize = 64;

/// Inbound streams negotiating their protocol at once per connection;
/// beyond this, new ones are reset.
const MAX_NEGOTIATING: usize = 64;

/// An established libp2p connection: authenticated, multiplexed with yamux.
///
/// A background task drives the session; dropping the `Connection` (or
/// [`Connection::close`]) closes it, and its streams with it.
#[derive(Debug)]
pub struct Connection {
    remote_peer_id: PeerId,
    remote_addr: Multiaddr,
    early_muxer: bool,
    app: Mode,
    commands: mpsc::UnboundedSender<Command>,
    inbound: mpsc::Receiver<Stream>,
}

#[derive(Debug)]
enum Command {
    Open(oneshot::Sender<Result<yamux::Stream, Error>>),
    Close(oneshot::Sender<Result<(), Error>>),
}

impl Connection {
    /// Starts the session's task over an authenticated channel.
    pub(crate) fn spawn<T>(
        secured: Secured<T>,
        mode: yamux::Mode,
        remote_addr: Multiaddr,
        config: &Config,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Connection
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let early_muxer = secured.io.is_early();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let driver = Driver {
            session: yamux::Connection::new(secured.io.compat(), config.yamux(), mode),
            commands: command_rx,
            opening: VecDeque::new(),
            negotiating: FuturesUnordered::new(),
            inbound: inbound_tx,
            protocols: config.protocols.clone(),
            closing: None,
            _permit: permit,
        };
        tokio::spawn(driver);
        Connection {
            remote_peer_id: secured.remote_peer_id,
            remote_addr,
            early_muxer,
            app: config.layering.app,
            commands,
            inbound,
        }
    }

    /// The authenticated peer id of the other side.
    pub fn remote_peer_id(&self) -> PeerId {
        self.remote_peer_id
    }

    /// The other side's address.
    pub fn remote_addr(&self) -> &Multiaddr {
        &self.remote_addr
    }

    /// Whether the muxer was chosen inside the Noise handshake (`false`
    /// after a fallback to multistream-select).
    pub fn early_muxer(&self) -> bool {
        self.early_muxer
    }

    /// Opens a stream for `protocol`, negotiated in the layering's mode:
    /// interactive waits for the listener's echo; optimistic returns at once
    /// and sends the proposal with the first write (a refusal then surfaces
    /// on the first read, see [`onetrip_multistream::Negotiated`]).
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`], [`Error::Yamux`] (such as too many
    /// streams), [`Error::StreamNegotiation`].
    pub async fn open_stream(&self, protocol: Protocol) -> Result<Stream, Error> {
        self.open_stream_with(protocol, self.app).await
    }

    /// [`Connection::open_stream`] in a given negotiation mode.
    ///
    /// # Errors
    /// As [`Connection::open_stream`].
    pub async fn open_stream_with(&self, protocol: Protocol, mode: Mode) -> Result<Stream, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Open(tx))
            .map_err(|_| Error::ConnectionClosed)?;
        let stream = rx.await.map_err(|_| Error::ConnectionClosed)??;
        let (protocol, io) = dialer_select(stream.compat(), [protocol], mode)
            .await
            .map_err(Error::StreamNegotiation)?;
        Ok(Stream { protocol, io })
    }

    /// The next inbound stream whose protocol is one of the configured
    /// ones, with that protocol ([`Stream::protocol`]).
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`] once the connection is closed.
    pub async fn accept_stream(&mut self) -> Result<(Protocol, Stream), Error> {
        let stream = self.inbound.recv().await.ok_or(Error::ConnectionClosed)?;
        Ok((stream.protocol.clone(), stream))
    }

    /// Closes the connection gracefully: yamux tells the peer, the byte
    /// stream is shut down, and open streams end.
    ///
    /// # Errors
    /// [`Error::Yamux`] or [`Error::Io`] if closing failed; closing an
    /// already closed connection succeeds.
    pub async fn close(self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// A stream of a [`Connection`], its protocol negotiated.
#[derive(Debug)]
pub struct Stream {
    protocol: Protocol,
    io: Negotiated<Compat<yamux::Stream>>,
}

impl Stream {
    /// The negotiated protocol (for an optimistic opener: proposed, perhaps
    /// not yet confirmed).
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

type Negotiating = BoxFuture<'static, Result<Stream, onetrip_multistream::Error>>;

/// The task that owns the yamux session: it serves open and close
/// requests, negotiates inbound streams and hands them over.
struct Driver<T> {
    session: yamux::Connection<Compat<MuxerIo<T>>>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Open requests waiting for yamux (its backlog of unacknowledged
    /// streams is full).
    opening: VecDeque<oneshot::Sender<Result<yamux::Stream, Error>>>,
    negotiating: FuturesUnordered<Negotiating>,
    inbound: mpsc::Sender<Stream>,
    protocols: Arc<[Protocol]>,
    /// Set once closing: who waits for the close to finish.
    closing: Option<Vec<oneshot::Sender<Result<(), Error>>>>,
    /// Held while the connection lives: a listener's connection slot.
    _permit: Option<OwnedSemaphorePermit>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Driver<T> {
    /// Takes commands until one asks to close.
    fn poll_commands(&mut self, cx: &mut Context<'_>) {
        while self.closing.is_none() {
            match self.commands.poll_recv(cx) {
                Poll::Ready(Some(Command::Open(reply))) => self.opening.push_back(reply),
                Poll::Ready(Some(Command::Close(reply))) => self.closing = Some(vec![reply]),
                // The `Connection` is gone: nobody can use the session.
                Poll::Ready(None) => self.closing = Some(Vec::new()),
                Poll::Pending => break,
            }
        }
    }

    /// Opens the streams asked for, as far as yamux allows.
    fn poll_opening(&mut self, cx: &mut Context<'_>) {
        while let Some(reply) = self.opening.front() {
            if reply.is_closed() {
                self.opening.pop_front();
                continue;
            }
            match self.session.poll_new_outbound(cx) {
                Poll::Ready(result) => {
                    if let Some(reply) = self.opening.pop_front() {
                        let _ = reply.send(result.map_err(Error::from));
                    }
                }
                Poll::Pending => break,
            }
        }
    }

    /// Hands over inbound streams whose negotiation finished.
    fn poll_negotiating(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(result)) = self.negotiating.poll_next_unpin(cx) {
            match result {
                Ok(stream) => {
                    if self.inbound.try_send(stream).is_err() {
                        tracing::debug!("inbound stream queue full or unread: stream reset");
                    }
                }
                Err(err) => tracing::debug!(%err, "inbound stream negotiation failed"),
            }
        }
    }

    /// Starts negotiating each new inbound stream. Ready when the session
    /// has ended.
    fn poll_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match self.session.poll_next_inbound(cx) {
                Poll::Ready(Some(Ok(stream))) => {
                    if self.negotiating.len() >= MAX_NEGOTIATING {
                        tracing::debug!("too many inbound streams negotiating: stream reset");
                        continue;
                    }
                    let protocols = self.protocols.clone();
                    self.negotiating.push(
                        async move {
                            let (protocol, io) =
                                listener_select(stream.compat(), protocols).await?;
                            Ok(Stream { protocol, io })
                        }
                        .boxed(),
                    );
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err.into())),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn fail_opening(&mut self) {
        for reply in self.opening.drain(..) {
            let _ = reply.send(Err(Error::ConnectionClosed));
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for Driver<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.poll_commands(cx);
        if let Some(waiting) = &mut this.closing {
            let Poll::Ready(result) = this.session.poll_close(cx) else {
                return Poll::Pending;
            };
            let result = result.map_err(Error::from);
            for reply in waiting.drain(..) {
                let _ = reply.send(result.clone());
            }
            this.fail_opening();
            return Poll::Ready(());
        }
        this.poll_opening(cx);
        let ended = this.poll_inbound(cx);
        // Polls the negotiations just started, too.
        this.poll_negotiating(cx);
        let Poll::Ready(result) = ended else {
            return Poll::Pending;
        };
        if let Err(err) = result {
            tracing::debug!(%err, "connection failed");
        }
        this.fail_opening();
        Poll::Ready(())
    }
}
