//! Endpoints: dialing, and accepting.

use std::{net::SocketAddr, sync::Arc};

use libp2p_identity::PeerId;
use onetrip_common::Deadline;
use quinn::{AsyncUdpSocket, Runtime, TokioRuntime};
use rustls::pki_types::CertificateDer;

use crate::{config::Config, connection::Connection, error::Error, handshake::Handshake};

/// A QUIC endpoint: dials and accepts libp2p connections on one UDP socket.
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: quinn::Endpoint,
    config: Arc<Config>,
}

/// The socket buffers a bound endpoint asks for, each way.
const UDP_BUFFER: usize = 8 << 20;

impl Endpoint {
    /// Binds a UDP socket.
    ///
    /// # Errors
    /// [`Error::Io`] from binding; [`Error::IdleTimeout`],
    /// [`Error::InitialCipherSuite`] from the configuration.
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Self, Error> {
        let socket = std::net::UdpSocket::bind(addr)?;
        // Room for a burst at a high rate: the kernel's default (about
        // 200 KB) drops datagrams a busy task has not read within a couple
        // of milliseconds at 1 Gbit/s. The kernel caps it (net.core.rmem_max).
        let buffers = socket2::SockRef::from(&socket);
        let _ = buffers.set_recv_buffer_size(UDP_BUFFER);
        let _ = buffers.set_send_buffer_size(UDP_BUFFER);
        let socket = TokioRuntime.wrap_udp_socket(socket)?;
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
        let mut connecting = self.inner.connect_with(client, addr, dial.server_name())?;
        if let (true, Some(expected)) = (self.config.zero_rtt, expected) {
            match connecting.into_0rtt() {
                Ok((inner, accepted)) => {
                    let handshake = Handshake::new(inner.clone(), accepted, dial, deadline);
                    return Ok(Connection::new(
                        inner,
                        expected,
                        Some(handshake),
                        self.config.max_streams,
                    ));
                }
                Err(fresh) => connecting = fresh,
            }
        }
        let inner = match deadline.run(connecting).await {
            Err(_) => return Err(Error::Timeout),
            // The verifier's refusal says why, if it refused the server.
            Ok(Err(err)) => return Err(dial.refusal().map_or_else(|| err.into(), Error::from)),
            Ok(Ok(inner)) => inner,
        };
        let remote_peer_id = dial.peer_id().ok_or(Error::NoIdentity)?;
        Ok(Connection::new(
            inner,
            remote_peer_id,
            None,
            self.config.max_streams,
        ))
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
    /// are served before its handshake completes (0.5-RTT data): those
    /// streams may be replays, and say so ([`Stream::is_early`](crate::Stream::is_early)).
    /// Otherwise this waits for the client's certificate, until `deadline`:
    /// a replayed ClientHello, whose ticket is spent, never gets further.
    ///
    /// # Errors
    /// [`Error::Connection`], [`Error::Timeout`], [`Error::NoIdentity`],
    /// [`Error::Certificate`].
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
                return authenticated(inner, self.config.max_streams);
            }
        };
        // A client resuming a session carries its certificate from that
        // session, known now; serving it before its handshake completes is
        // what accepting 0-RTT means (see spec/quic.md on replay). Without
        // 0-RTT, wait for the handshake: until then nothing proves the
        // ClientHello is not a replay.
        if self.config.accept_0rtt
            && let Ok(remote_peer_id) = client_peer_id(&inner)
        {
            return Ok(Connection::new(
                inner,
                remote_peer_id,
                None,
                self.config.max_streams,
            ));
        }
        if deadline.run(accepted).await.is_err() {
            inner.close(0u32.into(), b"handshake timeout");
            return Err(Error::Timeout);
        }
        if let Some(reason) = inner.close_reason() {
            return Err(reason.into());
        }
        authenticated(inner, self.config.max_streams)
    }
}

/// A server's connection whose handshake completed.
fn authenticated(inner: quinn::Connection, max_streams: u32) -> Result<Connection, Error> {
    let remote_peer_id = client_peer_id(&inner)?;
    Ok(Connection::new(inner, remote_peer_id, None, max_streams))
}

/// The client's peer id, from the certificate of its session: the one the
/// client verifier accepted in this handshake or, for a resumed session,
/// in the handshake that made it. rustls gives a server's verifier nothing
/// per connection to record its verdict in, so the server reads the peer id
/// here, once per connection.
fn client_peer_id(connection: &quinn::Connection) -> Result<PeerId, Error> {
    let chain = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(Error::NoIdentity)?;
    let (end_entity, intermediates) = chain.split_first().ok_or(Error::NoIdentity)?;
    // The verifier accepted this chain, in this handshake or in the one
    // whose session the client resumes: no need to check it again.
    Ok(onetrip_tls::verified_peer_id(end_entity, intermediates)?)
}
