//! An established connection, over yamux or QUIC, and its streams, whose
//! protocols are negotiated per the layering.

use std::{
    collections::VecDeque,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use futures_util::{FutureExt, StreamExt, future::BoxFuture, stream::FuturesUnordered};
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use onetrip_multistream::{Deadline, Mode, Negotiated, Protocol, dialer_select, listener_select};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot},
    time::Sleep,
};
use tokio_util::{
    compat::{Compat, FuturesAsyncReadCompatExt},
    either::Either,
    sync::{CancellationToken, WaitForCancellationFutureOwned},
};

use crate::{
    Config, Error, Security,
    first_flight::FirstFlight,
    tls_server::EarlyPhase,
    upgrade::{Secured, SessionIo},
};

/// Negotiated inbound streams waiting for [`Connection::accept_stream`];
/// beyond this, new ones are reset.
const INBOUND_QUEUE: usize = 64;

/// The queue of [`INBOUND_QUEUE`] streams. They wait boxed: a tokio
/// channel allocates its first block of 32 slots when it is made, and 32
/// [`Stream`]s would be 11 KiB on every idle connection.
type InboundQueue = mpsc::Receiver<Box<Stream>>;

/// Inbound streams negotiating their protocol at once per connection;
/// beyond this, new ones are reset. rust-libp2p's default for the same
/// bound (`max_negotiating_inbound_streams`): a peer that opens 64
/// streams at once also opens Identify beside them.
const MAX_NEGOTIATING: usize = 128;

/// An established libp2p connection: authenticated and multiplexed, over
/// TCP (yamux) or QUIC.
///
/// A background task serves it; dropping the `Connection` (or
/// [`Connection::close`]) closes it, and its streams with it.
#[derive(Debug)]
pub struct Connection {
    remote_peer_id: PeerId,
    remote_addr: Multiaddr,
    early_muxer: bool,
    security: Option<Security>,
    app: Mode,
    open_timeout: Duration,
    streams: Arc<Semaphore>,
    transport: Transport,
    inbound: InboundQueue,
    /// A Fast Open dialer's first flight, held until the application uses
    /// the connection (TLS early data).
    first_flight: Option<FirstFlight>,
}

#[derive(Debug)]
enum Transport {
    Yamux {
        commands: mpsc::UnboundedSender<Command>,
        /// Fired when the session's task ends, to wake its streams.
        ended: CancellationToken,
    },
    Quic {
        connection: onetrip_quic::Connection,
        /// Fired when the `Connection` goes, to stop accepting streams.
        stop: CancellationToken,
    },
}

#[derive(Debug)]
enum Command {
    Open(oneshot::Sender<Result<yamux::Stream, Error>>),
    Close(CloseReply),
}

impl Connection {
    /// Starts the yamux session's task over an authenticated channel.
    pub(crate) fn spawn_yamux<T>(
        secured: Secured<T>,
        mode: yamux::Mode,
        remote_addr: Multiaddr,
        config: &Config,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Connection
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let early_muxer = secured.early_muxer();
        let early_phase = secured.early_phase();
        let first_flight = secured.first_flight.clone();
        let security = Some(secured.security());
        let streams = Arc::new(Semaphore::new(config.max_streams));
        let ended = CancellationToken::new();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let (remote_peer_id, session) = secured.into_session(config, mode);
        let driver = YamuxDriver {
            session,
            commands: command_rx,
            opening: VecDeque::new(),
            inbound: Inbound::new(
                inbound_tx,
                config,
                streams.clone(),
                Some(ended.clone()),
                early_phase,
            ),
            closing: None,
            close_timeout: config.handshake_timeout,
            ended: ended.clone(),
            first_flight: first_flight.clone(),
            _permit: permit,
        };
        tokio::spawn(driver);
        Connection {
            remote_peer_id,
            remote_addr,
            early_muxer,
            security,
            app: config.layering.app,
            open_timeout: config.handshake_timeout,
            streams,
            transport: Transport::Yamux { commands, ended },
            inbound,
            first_flight,
        }
    }

    /// Starts accepting the streams of a QUIC connection.
    pub(crate) fn spawn_quic(
        connection: onetrip_quic::Connection,
        remote_addr: Multiaddr,
        config: &Config,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Connection {
        let streams = Arc::new(Semaphore::new(config.max_streams));
        let stop = CancellationToken::new();
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
        let accepting = connection.clone();
        let driver = QuicDriver {
            accept: async move { accepting.accept_bi().await }.boxed(),
            connection: connection.clone(),
            inbound: Inbound::new(inbound_tx, config, streams.clone(), None, None),
            stop: Box::pin(stop.clone().cancelled_owned()),
            _permit: permit,
        };
        tokio::spawn(driver);
        Connection {
            remote_peer_id: connection.remote_peer_id(),
            remote_addr,
            early_muxer: false,
            security: None,
            app: config.quic_layering.app,
            open_timeout: config.handshake_timeout,
            streams,
            transport: Transport::Quic { connection, stop },
            inbound,
            first_flight: None,
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

    /// Whether the muxer was chosen inside the security handshake, in the
    /// Noise payload or in TLS ALPN (`false` after a fallback to
    /// multistream-select, and for QUIC).
    pub fn early_muxer(&self) -> bool {
        self.early_muxer
    }

    /// The security protocol of a TCP connection (`None` over QUIC, whose
    /// security is its own TLS).
    pub fn security(&self) -> Option<Security> {
        self.security
    }

    /// The QUIC connection, for a connection over QUIC.
    pub fn quic(&self) -> Option<&onetrip_quic::Connection> {
        match &self.transport {
            Transport::Quic { connection, .. } => Some(connection),
            Transport::Yamux { .. } => None,
        }
    }

    /// Opens a stream for `protocol`, negotiated in the layering's mode:
    /// interactive waits for the listener's echo; optimistic returns at once
    /// and sends the proposal with the first write (a refusal then surfaces
    /// on the first read, see [`onetrip_multistream::Negotiated`]).
    ///
    /// # Errors
    /// [`Error::StreamLimit`], [`Error::ConnectionClosed`],
    /// [`Error::Timeout`] (the peer does not let us open streams),
    /// [`Error::StreamNegotiation`], [`Error::Yamux`], [`Error::Quic`].
    pub async fn open_stream(&self, protocol: Protocol) -> Result<Stream, Error> {
        self.open_stream_with(protocol, self.app).await
    }

    /// [`Connection::open_stream`] in a given negotiation mode.
    ///
    /// # Errors
    /// As [`Connection::open_stream`].
    pub async fn open_stream_with(&self, protocol: Protocol, mode: Mode) -> Result<Stream, Error> {
        let permit = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Error::StreamLimit)?;
        let open = async {
            match &self.transport {
                Transport::Yamux { commands, ended } => {
                    let (tx, rx) = oneshot::channel();
                    commands
                        .send(Command::Open(tx))
                        .map_err(|_| Error::ConnectionClosed)?;
                    let stream = rx.await.map_err(|_| Error::ConnectionClosed)??;
                    Ok::<_, Error>((Either::Left(stream.compat()), Some(ended.clone())))
                }
                Transport::Quic { connection, .. } => {
                    Ok((Either::Right(connection.open_bi().await?), None))
                }
            }
        };
        let deadline = Deadline::after(self.open_timeout);
        let (io, ended) = deadline.run(open).await.map_err(|_| Error::Timeout)??;
        let (protocol, io) = dialer_select(io, [protocol], mode, deadline)
            .await
            .map_err(Error::StreamNegotiation)?;
        let mut stream = Stream::new(protocol, io, ended, permit, false);
        stream.first_flight = self.first_flight.clone();
        Ok(stream)
    }

    /// The next inbound stream whose protocol is one of the configured
    /// ones, with that protocol ([`Stream::protocol`]).
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`] once the connection is closed.
    pub async fn accept_stream(&mut self) -> Result<(Protocol, Stream), Error> {
        if let Some(flight) = &self.first_flight {
            flight.request_release();
        }
        let stream = *self.inbound.recv().await.ok_or(Error::ConnectionClosed)?;
        Ok((stream.protocol.clone(), stream))
    }

    /// Closes the connection. Over yamux the peer is told and the byte
    /// stream shut down, within the handshake timeout; over QUIC the close
    /// is immediate, and stream data not yet delivered is dropped (finish
    /// streams first).
    ///
    /// # Errors
    /// [`Error::Yamux`], [`Error::Io`] or [`Error::Timeout`] if closing
    /// failed; closing an already closed connection succeeds, and so does
    /// one that the peer closes or resets meanwhile (a peer may close the
    /// connection as soon as it reads yamux's GoAway).
    pub async fn close(self) -> Result<(), Error> {
        match &self.transport {
            Transport::Yamux { commands, .. } => {
                let (tx, rx) = oneshot::channel();
                if commands.send(Command::Close(tx)).is_err() {
                    return Ok(());
                }
                rx.await.unwrap_or(Ok(()))
            }
            Transport::Quic { connection, .. } => {
                connection.close();
                Ok(())
            }
        }
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        match &self.transport {
            Transport::Yamux { commands, .. } => commands.is_closed(),
            Transport::Quic { connection, .. } => connection.inner().close_reason().is_some(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // A yamux session closes when its command channel goes; a QUIC
        // connection lives as long as any handle, so close it.
        if let Transport::Quic { connection, stop } = &self.transport {
            stop.cancel();
            connection.close();
        }
    }
}

/// What a stream runs on: a yamux stream (`Left`) or a QUIC one (`Right`).
type StreamIo = Either<Compat<yamux::Stream>, onetrip_quic::Stream>;

/// A stream of a [`Connection`], its protocol negotiated.
#[derive(Debug)]
pub struct Stream {
    protocol: Protocol,
    io: Negotiated<StreamIo>,
    /// For yamux: fires when the session ends, which yamux does not signal
    /// to a read or write already waiting.
    ended: Option<Pin<Box<WaitForCancellationFutureOwned>>>,
    /// The stream's place under the connection's stream limit.
    _permit: OwnedSemaphorePermit,
    /// A yamux stream opened by TLS early data.
    early: bool,
    /// An outbound stream of a connection whose first flight is held: its
    /// first flush, read or shutdown releases it.
    first_flight: Option<FirstFlight>,
}

impl Stream {
    fn new(
        protocol: Protocol,
        io: Negotiated<StreamIo>,
        ended: Option<CancellationToken>,
        permit: OwnedSemaphorePermit,
        early: bool,
    ) -> Self {
        Stream {
            protocol,
            io,
            ended: ended.map(|ended| Box::pin(ended.cancelled_owned())),
            _permit: permit,
            early,
            first_flight: None,
        }
    }

    /// The application used this stream: a held first flight may go.
    fn release_first_flight(&mut self) {
        if let Some(flight) = self.first_flight.take() {
            flight.request_release();
        }
    }

    /// The negotiated protocol (for an optimistic opener: proposed, perhaps
    /// not yet confirmed).
    pub fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    /// Whether the stream began as early data, which an attacker can
    /// replay: QUIC 0-RTT data ([`onetrip_quic::Stream::is_early`]), or, on
    /// a TCP listener, a stream the client opened in TLS 1.3 early data. On
    /// a listener that accepts early data, the protocol serving such a
    /// stream must refuse any request that is not idempotent.
    pub fn is_early(&self) -> bool {
        self.early || matches!(self.io.get_ref(), Either::Right(stream) if stream.is_early())
    }

    /// Turns a pending operation into an error once the session has ended.
    fn check_ended<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_pending()
            && let Some(ended) = &mut self.ended
            && ended.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                Error::ConnectionClosed,
            )));
        }
        poll
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        this.release_first_flight();
        this.check_ended(cx, poll)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check_ended(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.release_first_flight();
        this.check_ended(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.release_first_flight();
        this.check_ended(cx, poll)
    }
}

type CloseReply = oneshot::Sender<Result<(), Error>>;

type Negotiating = BoxFuture<'static, Result<Stream, onetrip_multistream::Error>>;

/// Inbound streams: each negotiates its protocol concurrently, then waits
/// in a bounded queue for [`Connection::accept_stream`]. Streams beyond the
/// limits are dropped, which resets them.
struct Inbound {
    negotiating: FuturesUnordered<Negotiating>,
    queue: mpsc::Sender<Box<Stream>>,
    protocols: Arc<[Protocol]>,
    streams: Arc<Semaphore>,
    ended: Option<CancellationToken>,
    /// How long an inbound stream may take to name its protocol.
    negotiation_timeout: Duration,
    /// For a TLS listener that took early data: whether what is read now
    /// is early data.
    early_phase: Option<EarlyPhase>,
}

impl Inbound {
    fn new(
        queue: mpsc::Sender<Box<Stream>>,
        config: &Config,
        streams: Arc<Semaphore>,
        ended: Option<CancellationToken>,
        early_phase: Option<EarlyPhase>,
    ) -> Self {
        Inbound {
            negotiating: FuturesUnordered::new(),
            queue,
            protocols: config.protocols.clone(),
            streams,
            ended,
            negotiation_timeout: config.handshake_timeout,
            early_phase,
        }
    }

    fn start(&mut self, io: StreamIo) {
        if self.negotiating.len() >= MAX_NEGOTIATING {
            tracing::debug!("too many inbound streams negotiating: stream reset");
            return;
        }
        let Ok(permit) = self.streams.clone().try_acquire_owned() else {
            tracing::debug!("stream limit reached: inbound stream reset");
            return;
        };
        let protocols = self.protocols.clone();
        let ended = self.ended.clone();
        let deadline = Deadline::after(self.negotiation_timeout);
        // The stream's opening was read just now: in early data or not.
        let early = self.early_phase.as_ref().is_some_and(EarlyPhase::is_on);
        self.negotiating.push(
            async move {
                let (protocol, io) = listener_select(io, protocols, deadline).await?;
                Ok(Stream::new(protocol, io, ended, permit, early))
            }
            .boxed(),
        );
    }

    /// Hands over the streams whose negotiation finished.
    fn poll(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(result)) = self.negotiating.poll_next_unpin(cx) {
            match result {
                Ok(stream) => {
                    if self.queue.try_send(Box::new(stream)).is_err() {
                        tracing::debug!("inbound stream queue full or unread: stream reset");
                    }
                }
                Err(err) => tracing::debug!(%err, "inbound stream negotiation failed"),
            }
        }
    }
}

/// The task that owns a yamux session: it serves open and close requests,
/// negotiates inbound streams and hands them over.
struct YamuxDriver<T> {
    session: yamux::Connection<SessionIo<T>>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Open requests waiting for yamux (its backlog of unacknowledged
    /// streams is full).
    opening: VecDeque<oneshot::Sender<Result<yamux::Stream, Error>>>,
    inbound: Inbound,
    /// Set once closing: who waits for the close, and its deadline.
    closing: Option<(Vec<CloseReply>, Pin<Box<Sleep>>)>,
    close_timeout: Duration,
    ended: CancellationToken,
    /// A Fast Open dialer's first flight while the application may still
    /// add to it.
    first_flight: Option<FirstFlight>,
    /// Held while the connection lives: a listener's connection slot.
    _permit: Option<OwnedSemaphorePermit>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> YamuxDriver<T> {
    /// Takes commands until one asks to close.
    fn poll_commands(&mut self, cx: &mut Context<'_>) {
        while self.closing.is_none() {
            let close = match self.commands.poll_recv(cx) {
                Poll::Ready(Some(Command::Open(reply))) => {
                    self.opening.push_back(reply);
                    continue;
                }
                Poll::Ready(Some(Command::Close(reply))) => {
                    if let Some(flight) = self.first_flight.take() {
                        flight.release();
                    }
                    vec![reply]
                }
                // The `Connection` is gone: nobody can use the session.
                Poll::Ready(None) => Vec::new(),
                Poll::Pending => return,
            };
            let deadline = Box::pin(tokio::time::sleep(self.close_timeout));
            self.closing = Some((close, deadline));
        }
    }

    /// Opens the streams asked for, as far as yamux allows; says whether it
    /// opened any.
    fn poll_opening(&mut self, cx: &mut Context<'_>) -> bool {
        let mut opened = false;
        while let Some(reply) = self.opening.front() {
            if reply.is_closed() {
                self.opening.pop_front();
                continue;
            }
            match self.session.poll_new_outbound(cx) {
                Poll::Ready(result) => {
                    opened = true;
                    if let Some(reply) = self.opening.pop_front() {
                        let _ = reply.send(result.map_err(Error::from));
                    }
                }
                Poll::Pending => break,
            }
        }
        opened
    }

    /// Starts negotiating each new inbound stream. Ready when the session
    /// has ended.
    fn poll_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            match ready!(self.session.poll_next_inbound(cx)) {
                Some(Ok(stream)) => self.inbound.start(Either::Left(stream.compat())),
                Some(Err(err)) => return Poll::Ready(Err(err.into())),
                None => return Poll::Ready(Ok(())),
            }
        }
    }

    /// Closes the session, giving up at the deadline (a peer that stops
    /// reading would otherwise hold it forever).
    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((waiting, deadline)) = &mut self.closing else {
            return Poll::Pending;
        };
        let result = match self.session.poll_close(cx) {
            Poll::Ready(Err(yamux::ConnectionError::Io(err))) if closed_by_peer(&err) => {
                tracing::debug!(%err, "the peer closed the connection first");
                Ok(())
            }
            Poll::Ready(result) => result.map_err(Error::from),
            Poll::Pending if deadline.as_mut().poll(cx).is_ready() => Err(Error::Timeout),
            Poll::Pending => return Poll::Pending,
        };
        for reply in waiting.drain(..) {
            let _ = reply.send(result.clone());
        }
        Poll::Ready(())
    }
}

/// Whether `err`, met while closing, says the peer has closed its end.
fn closed_by_peer(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected
    )
}

impl<T: AsyncRead + AsyncWrite + Unpin> Future for YamuxDriver<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // A release asked for before this pass: what the application wrote
        // before asking reaches the held flight during the pass.
        let release = this.first_flight.as_ref().map(FirstFlight::requested);
        this.poll_commands(cx);
        if this.closing.is_some() {
            return this.poll_closing(cx);
        }
        // Open before polling the session: yamux only listens to a stream
        // once the session is polled after the stream exists.
        this.poll_opening(cx);
        let ended = this.poll_inbound(cx);
        // Reading may have freed room for streams waiting to open; if some
        // opened now, poll again so the session listens to them.
        if !this.opening.is_empty() && this.poll_opening(cx) {
            cx.waker().wake_by_ref();
        }
        // Polls the negotiations just started, too.
        this.inbound.poll(cx);
        if let (Some(flight), Some(requested)) = (&this.first_flight, release) {
            flight.poll_release(cx, requested);
            if requested {
                this.first_flight = None;
            }
        }
        let Poll::Ready(result) = ended else {
            return Poll::Pending;
        };
        if let Err(err) = result {
            tracing::debug!(%err, "connection failed");
        }
        Poll::Ready(())
    }
}

impl<T> Drop for YamuxDriver<T> {
    fn drop(&mut self) {
        for reply in self.opening.drain(..) {
            let _ = reply.send(Err(Error::ConnectionClosed));
        }
        // Wake the streams: yamux does not when it closes.
        self.ended.cancel();
    }
}

/// The task that accepts a QUIC connection's streams.
struct QuicDriver {
    connection: onetrip_quic::Connection,
    accept: BoxFuture<'static, Result<onetrip_quic::Stream, onetrip_quic::Error>>,
    inbound: Inbound,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Future for QuicDriver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        while let Poll::Ready(accepted) = this.accept.poll_unpin(cx) {
            match accepted {
                Ok(stream) => this.inbound.start(Either::Right(stream)),
                Err(err) => {
                    tracing::debug!(%err, "connection ended");
                    return Poll::Ready(());
                }
            }
            let connection = this.connection.clone();
            this.accept = async move { connection.accept_bi().await }.boxed();
        }
        this.inbound.poll(cx);
        Poll::Pending
    }
}
