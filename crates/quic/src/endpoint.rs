//! Endpoints and authenticated connections.

use std::{net::SocketAddr, sync::Arc};

use futures_util::{FutureExt, future::Shared};
use libp2p_identity::PeerId;
use quinn::{AsyncUdpSocket, Runtime, TokioRuntime};
use rustls::pki_types::CertificateDer;

use onetrip_common::{Deadline, PeerIdMismatch};
use onetrip_tls::Dial;

use crate::{Config, Error, Stream, stream::Early};

/// A QUIC endpoint: dials and accepts libp2p connections on one UDP socket.
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: quinn::Endpoint,
    config: Arc<Config>,
}

impl Endpoint {
    /// Binds a UDP socket.
    ///
    /// # Errors
    /// [`Error::Io`] from binding; [`Error::IdleTimeout`],
    /// [`Error::InitialCipherSuite`] from the configuration.
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Self, Error> {
        let socket = TokioRuntime.wrap_udp_socket(std::net::UdpSocket::bind(addr)?)?;
        Self::with_socket(socket, config)
    }

    /// Runs on any datagram socket (a netsim link, say).
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::IdleTimeout`], [`Error::InitialCipherSuite`]
    /// from the configuration.
    pub fn with_socket(socket: Arc<dyn AsyncUdpSocket>, config: Config) -> Result<Self, Error> {
        let inner = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(config.server()?),
            socket,
            Arc::new(TokioRuntime),
        )?;
        Ok(Endpoint {
            inner,
            config: Arc::new(config),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The local address.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.inner.local_addr()?)
    }

    /// Replaces the server side's configuration (for example to stop
    /// accepting 0-RTT); connections in progress keep theirs.
    ///
    /// # Errors
    /// [`Error::IdleTimeout`], [`Error::InitialCipherSuite`].
    pub fn set_accept_0rtt(&self, accept: bool) -> Result<(), Error> {
        let config = Config::clone(&self.config).with_accept_0rtt(accept);
        self.inner.set_server_config(Some(config.server()?));
        Ok(())
    }

    /// Connects to `addr`. With `expected`, any other peer is refused, and
    /// when 0-RTT is enabled and a ticket of that peer allows it, this
    /// returns at once: the first streams' data leaves as 0-RTT data, and
    /// falls back to 1-RTT transparently if the server rejects it.
    ///
    /// The handshake must complete by `deadline`; for a 0-RTT dial, which
    /// returns at once, the deadline bounds the wait for the handshake
    /// wherever the connection and its streams wait for it.
    ///
    /// # Errors
    /// [`Error::Timeout`], [`Error::Certificate`],
    /// [`Error::PeerIdMismatch`], [`Error::Connection`].
    pub async fn connect(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
        deadline: Deadline,
    ) -> Result<Connection, Error> {
        let (client, dial) = self.config.client(expected)?;
        let dial = Arc::new(dial);
        let mut connecting = self.inner.connect_with(client, addr, dial.server_name())?;
        if let (true, Some(expected)) = (self.config.zero_rtt, expected) {
            match connecting.into_0rtt() {
                Ok((inner, accepted)) => {
                    let connection = inner.clone();
                    let accepted = async move {
                        let accepted = deadline.run(accepted).await;
                        if accepted.is_err() {
                            connection.close(0u32.into(), b"handshake timeout");
                        }
                        accepted.unwrap_or(false)
                    }
                    .boxed()
                    .shared();
                    return Ok(Connection {
                        inner,
                        remote_peer_id: expected,
                        early: Some(EarlyHandshake {
                            accepted,
                            expected,
                            dial: dial.clone(),
                        }),
                        _dial: Some(dial),
                    });
                }
                Err(fresh) => connecting = fresh,
            }
        }
        let inner = match deadline.run(connecting).await {
            Err(_) => return Err(Error::Timeout),
            Ok(Err(err)) => return Err(dial.refusal().map_or(err.into(), Error::from)),
            Ok(Ok(inner)) => inner,
        };
        let remote_peer_id = remote_peer_id(&inner)?;
        if let Some(expected) = expected.filter(|expected| *expected != remote_peer_id) {
            inner.close(0u32.into(), b"peer id mismatch");
            return Err(mismatch(expected, remote_peer_id));
        }
        Ok(Connection {
            inner,
            remote_peer_id,
            early: None,
            _dial: Some(dial),
        })
    }

    /// The next incoming connection attempt, or `None` once the endpoint is
    /// closed. [`Accepting::establish`] completes it; run it in its own task
    /// so one slow peer delays no other.
    pub async fn accept(&self) -> Option<Accepting> {
        let incoming = self.inner.accept().await?;
        Some(Accepting {
            incoming,
            config: self.config.clone(),
        })
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self) {
        self.inner.close(0u32.into(), b"endpoint closed");
    }

    /// Waits until every connection is closed and its packets are sent.
    pub async fn wait_idle(&self) {
        self.inner.wait_idle().await;
    }
}

/// An incoming connection attempt.
#[derive(Debug)]
pub struct Accepting {
    incoming: quinn::Incoming,
    config: Arc<Config>,
}

impl Accepting {
    /// The remote address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.incoming.remote_address()
    }

    /// Completes the handshake. A client resuming a session with 0-RTT data
    /// (when this endpoint accepts it) is known at once, and its streams
    /// are served before its handshake completes (0.5-RTT data); otherwise
    /// this waits for the client's certificate, until `deadline`.
    ///
    /// # Errors
    /// [`Error::Connection`], [`Error::Timeout`], [`Error::NoIdentity`].
    pub async fn establish(self, deadline: Deadline) -> Result<Connection, Error> {
        let connecting = self.incoming.accept()?;
        let (inner, accepted) = match connecting.into_0rtt() {
            Ok(early) => early,
            // quinn always allows 0.5-RTT on the server; if it ever does
            // not, wait for the handshake.
            Err(connecting) => {
                let inner = deadline
                    .run(connecting)
                    .await
                    .map_err(|_| Error::Timeout)??;
                let remote_peer_id = remote_peer_id(&inner)?;
                return Ok(Connection {
                    inner,
                    remote_peer_id,
                    early: None,
                    _dial: None,
                });
            }
        };
        // A client resuming a session carries its certificate from that
        // session, known now; serving it before its handshake completes is
        // what accepting 0-RTT means (see spec/quic.md on replay). Without
        // 0-RTT, wait for the handshake: until then nothing proves the
        // ClientHello is not a replay.
        if self.config.accept_0rtt
            && let Ok(remote_peer_id) = remote_peer_id(&inner)
        {
            return Ok(Connection {
                inner,
                remote_peer_id,
                early: None,
                _dial: None,
            });
        }
        let handshake = deadline.run(accepted).await;
        if handshake.is_err() {
            inner.close(0u32.into(), b"handshake timeout");
            return Err(Error::Timeout);
        }
        if let Some(reason) = inner.close_reason() {
            return Err(reason.into());
        }
        let remote_peer_id = remote_peer_id(&inner)?;
        Ok(Connection {
            inner,
            remote_peer_id,
            early: None,
            _dial: None,
        })
    }
}

/// The 0-RTT state of a client connection still in its handshake.
#[derive(Debug, Clone)]
pub(crate) struct EarlyHandshake {
    /// Resolves when the handshake completes: whether the 0-RTT data was
    /// accepted.
    pub(crate) accepted: Shared<futures_util::future::BoxFuture<'static, bool>>,
    pub(crate) expected: PeerId,
    /// What the verifier concluded, if the server showed a certificate.
    pub(crate) dial: Arc<Dial>,
}

/// An authenticated QUIC connection.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: quinn::Connection,
    remote_peer_id: PeerId,
    early: Option<EarlyHandshake>,
    /// Keeps the dial known to the verifier and ticket store while the
    /// connection lives (tickets arrive after the handshake).
    _dial: Option<Arc<Dial>>,
}

impl Connection {
    /// The remote peer id: proven by its certificate, or for a 0-RTT dial
    /// the peer whose session is resumed (checked again when the handshake
    /// completes; streams fail if it differs).
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
        self.early
            .as_ref()
            .is_some_and(|early| early.accepted.clone().now_or_never().is_none())
    }

    /// For a 0-RTT dial, waits for the handshake and says whether the
    /// server accepted the 0-RTT data; `None` for other connections.
    pub async fn zero_rtt_accepted(&self) -> Option<bool> {
        Some(self.early.as_ref()?.accepted.clone().await)
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
        let early = self
            .early
            .as_ref()
            .filter(|_| recv.is_0rtt())
            .map(|early| Early::new(self.inner.clone(), early.clone()));
        Ok(Stream::new(send, recv, early))
    }

    /// The next stream the peer opens.
    ///
    /// # Errors
    /// [`Error::Connection`] once the connection is closed.
    pub async fn accept_bi(&self) -> Result<Stream, Error> {
        let (send, recv) = self.inner.accept_bi().await?;
        Ok(Stream::new(send, recv, None))
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

/// The peer id the connection's certificate proves.
pub(crate) fn remote_peer_id(connection: &quinn::Connection) -> Result<PeerId, Error> {
    let identity = connection.peer_identity().ok_or(Error::NoIdentity)?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| Error::NoIdentity)?;
    let (end_entity, intermediates) = chain.split_first().ok_or(Error::NoIdentity)?;
    Ok(onetrip_tls::peer_id(end_entity, intermediates)?)
}

pub(crate) fn mismatch(expected: PeerId, actual: PeerId) -> Error {
    Error::PeerIdMismatch(Box::new(PeerIdMismatch { expected, actual }))
}
