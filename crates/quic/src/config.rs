//! An endpoint's identity, 0-RTT policy and limits.

use std::{sync::Arc, time::Duration};

use libp2p_identity::{Keypair, PeerId};
use onetrip_tls::{ALPN, DEFAULT_TICKET_PEERS, Dial, Identity, ServerSessions, TicketStore};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use crate::error::Error;

/// How long a connection may be silent before it is dropped (also bounds a
/// 0-RTT dial whose server never answers).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default cap on concurrent streams the peer may open (quinn's default).
pub const DEFAULT_MAX_STREAMS: u32 = 100;

/// The streams a peer may open at once on a new connection, raised up to
/// the configured maximum as it opens them (the grant doubles whenever half
/// of it is open; a peer that opens more at once waits a round trip for
/// the rest). quinn sets up state for every stream a peer may open, in two
/// hash tables per end: 512 at once cost an idle connection 43 KiB per
/// end, quinn's default of 100 costs 5.4 KiB (tables of 128 buckets), and
/// 32 costs 2.7 KiB (64 buckets, which hold 56 streams: room for ours).
pub const INITIAL_STREAMS: u32 = 32;

/// The streams a new connection grants the peer under a cap of `max`: the
/// transport parameter it sends, and where its [`StreamCredit`] starts.
///
/// [`StreamCredit`]: crate::credit::StreamCredit
pub(crate) fn initial_grant(max: u32) -> u32 {
    max.min(INITIAL_STREAMS)
}

/// How much a peer may send on one stream before we read it: 10 MB, as
/// libp2p-quic (`max_stream_data`). A stream moves at most this per round
/// trip: 1.27 Gbit/s at RTT 63 ms (quinn's default, 1.25 MB, caps it at
/// 159 Mbit/s).
pub const STREAM_RECEIVE_WINDOW: u32 = 10_000_000;

/// How much a peer may send on a connection before we read it, and how
/// much we keep unacknowledged: 15 MB, as libp2p-quic
/// (`max_connection_data`). It also bounds what a slow reader can make a
/// connection buffer.
pub const CONNECTION_WINDOW: u32 = 15_000_000;

/// The congestion controller of an endpoint's connections (quinn's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Congestion {
    /// CUBIC (RFC 9438): quinn's default, and libp2p-quic's.
    #[default]
    Cubic,
    /// BBR, which quinn calls experimental: it does not take a loss for
    /// congestion.
    Bbr,
}

/// An endpoint's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) keypair: Keypair,
    pub(crate) identity: Identity,
    pub(crate) tickets: Arc<TicketStore>,
    pub(crate) sessions: Arc<ServerSessions>,
    pub(crate) zero_rtt: bool,
    pub(crate) accept_0rtt: bool,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_streams: u32,
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) congestion: Congestion,
}

impl Config {
    /// A configuration that neither sends nor accepts 0-RTT data.
    ///
    /// # Errors
    /// [`Error::Tls`] if no certificate can be made for the key, or rustls
    /// refuses its key.
    pub fn new(keypair: Keypair) -> Result<Self, Error> {
        Ok(Config {
            identity: Identity::new(&keypair)?,
            keypair,
            tickets: Arc::new(TicketStore::new(DEFAULT_TICKET_PEERS)),
            sessions: Arc::new(ServerSessions::default()),
            zero_rtt: false,
            accept_0rtt: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_streams: DEFAULT_MAX_STREAMS,
            keep_alive: None,
            congestion: Congestion::default(),
        })
    }

    /// As a client, resume sessions and send the first streams as 0-RTT
    /// data when a ticket for the dialed peer allows it.
    pub fn with_0rtt(mut self, enabled: bool) -> Self {
        self.zero_rtt = enabled;
        self
    }

    /// As a server, accept 0-RTT data. Off by default: 0-RTT data can be
    /// replayed by an attacker. The server's tickets are single use (see
    /// [`Config::with_server_sessions`]), so a replayed flight is refused,
    /// within the limits `spec/quic.md` states; the streams that arrive as
    /// 0-RTT data say so (`Stream::is_early`).
    pub fn with_accept_0rtt(mut self, enabled: bool) -> Self {
        self.accept_0rtt = enabled;
        self
    }

    /// Drops connections silent for this long.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sends a PING when nothing else was sent for `interval` (none by
    /// default), keeping NAT bindings and the idle timeout fresh.
    pub fn with_keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// The congestion controller (CUBIC by default).
    pub fn with_congestion(mut self, congestion: Congestion) -> Self {
        self.congestion = congestion;
        self
    }

    /// The congestion controller.
    pub fn congestion(&self) -> Congestion {
        self.congestion
    }

    /// Caps the streams the peer may have open at once. A connection grants
    /// [`INITIAL_STREAMS`] of them at first, and doubles the grant whenever
    /// half of it is open, up to this cap.
    pub fn with_max_streams(mut self, max: u32) -> Self {
        self.max_streams = max;
        self
    }

    /// Uses this ticket store. rustls resumes a session only with the
    /// certificate verifier and resolver that made it, which belong to the
    /// TLS identity [`Config::new`] made: tickets are only useful to
    /// endpoints built from clones of one `Config`, which share them
    /// anyway; this is for a store made with another capacity.
    pub fn with_ticket_store(mut self, tickets: Arc<TicketStore>) -> Self {
        self.tickets = tickets;
        self
    }

    /// The session tickets kept for resumption.
    pub fn ticket_store(&self) -> &Arc<TicketStore> {
        &self.tickets
    }

    /// As a server, keeps the sessions its tickets resume in this store.
    /// [`Config::new`] makes a single-use store of
    /// [`DEFAULT_SERVER_SESSIONS`](crate::DEFAULT_SERVER_SESSIONS), shared
    /// by every endpoint built from clones of the `Config` and kept when
    /// `Endpoint::set_accept_0rtt`
    /// changes the policy: a ticket resumes once, at whichever of them.
    /// [`ServerSessions::dangerous_reusable`] lets a replayed 0-RTT flight
    /// through; it exists for the tests that show they see the attack.
    pub fn with_server_sessions(mut self, sessions: Arc<ServerSessions>) -> Self {
        self.sessions = sessions;
        self
    }

    /// The server's sessions, and what happened to its tickets
    /// ([`ServerSessions::stats`]).
    pub fn server_sessions(&self) -> &Arc<ServerSessions> {
        &self.sessions
    }

    /// The local peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The libp2p TLS identity (certificate, verifiers) this configuration
    /// presents; TLS on other transports can present the same one.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The keypair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// Whether dials attempt 0-RTT.
    pub fn zero_rtt(&self) -> bool {
        self.zero_rtt
    }

    fn transport(&self) -> Result<Arc<quinn::TransportConfig>, Error> {
        let idle = quinn::IdleTimeout::try_from(self.idle_timeout).map_err(Error::IdleTimeout)?;
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(idle))
            .max_concurrent_bidi_streams(initial_grant(self.max_streams).into())
            .max_concurrent_uni_streams(0u32.into())
            .keep_alive_interval(self.keep_alive)
            .stream_receive_window(STREAM_RECEIVE_WINDOW.into())
            .receive_window(CONNECTION_WINDOW.into())
            .send_window(CONNECTION_WINDOW.into());
        match self.congestion {
            Congestion::Cubic => {
                transport.congestion_controller_factory(Arc::new(
                    quinn::congestion::CubicConfig::default(),
                ));
            }
            Congestion::Bbr => {
                transport.congestion_controller_factory(Arc::new(
                    quinn::congestion::BbrConfig::default(),
                ));
            }
        }
        Ok(Arc::new(transport))
    }

    pub(crate) fn server(&self) -> Result<quinn::ServerConfig, Error> {
        let mut tls = self
            .identity
            .server_config(vec![ALPN.to_vec()], self.sessions.clone())?;
        // QUIC allows either none or unlimited early data (RFC 9001, 4.6.1).
        tls.max_early_data_size = if self.accept_0rtt { u32::MAX } else { 0 };
        let crypto = QuicServerConfig::try_from(tls)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(self.transport()?);
        Ok(config)
    }

    pub(crate) fn client(
        &self,
        expected: Option<PeerId>,
    ) -> Result<(quinn::ClientConfig, Dial), Error> {
        // Every dial's configuration comes from the one identity: rustls
        // resumes a session only with the verifier and certificate resolver
        // instances that made it, which the identity shares.
        let (mut tls, dial) =
            self.identity
                .client_config(vec![ALPN.to_vec()], self.tickets.clone(), expected)?;
        tls.enable_early_data = self.zero_rtt;
        let crypto = QuicClientConfig::try_from(tls)?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(self.transport()?);
        Ok((config, dial))
    }
}
