//! An endpoint's identity, layering and limits.

use std::{sync::Arc, time::Duration};

use libp2p_identity::{Keypair, PeerId};
use onetrip_multistream::{Deadline, Protocol};
use onetrip_noise::MuxerPolicy;
use onetrip_quic::Congestion;
use onetrip_tls::{DEFAULT_SERVER_SESSIONS, DEFAULT_TICKET_PEERS, ServerSessions, TicketStore};

use crate::{ConfigError, Error, Layering, MuxerNegotiation, Preset, QuicLayering, YAMUX};

/// How long a connection may take from the first byte to an established
/// muxer, on either side; the default of rust-libp2p's upgrade timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on established inbound connections per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Default cap on inbound connections still in their handshake per
/// listener; beyond it the listener stops accepting until one finishes.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 256;

/// Default cap on open streams per connection (yamux's own default).
pub const DEFAULT_MAX_STREAMS: usize = 512;

/// The most streams per connection this crate allows.
pub const MAX_STREAMS_LIMIT: usize = 2048;

/// yamux's initial per-stream receive window (yamux spec, "Flow Control").
const YAMUX_STREAM_WINDOW: usize = 256 * 1024;

/// How large a yamux stream's receive window may grow, by default: 1 MiB
/// ([`Config::with_yamux_window`] changes it).
///
/// yamux (the crate) refuses a frame whose body exceeds 1 MiB, yet grows a
/// busy stream's window up to the connection's limit; js-libp2p's yamux
/// sends frames as large as the window it was given, so a window beyond
/// 1 MiB makes a fast js-libp2p sender break the connection ("frame body is
/// too large"). The cost: one stream moves at most 1 MiB per round trip.
pub const DEFAULT_YAMUX_WINDOW: usize = YAMUX_MAX_FRAME_BODY;

/// The largest stream window [`Config::with_yamux_window`] takes (yamux's
/// windows are 32-bit).
pub const MAX_YAMUX_WINDOW: usize = 1 << 30;

/// The largest frame body yamux 0.14 accepts (`MAX_FRAME_BODY_LEN`).
const YAMUX_MAX_FRAME_BODY: usize = 1024 * 1024;

/// A yamux frame's header (yamux spec, "Framing").
pub(crate) const YAMUX_HEADER_LEN: usize = 12;

/// The largest data frame body we send: with its header, exactly the
/// plaintext of one full Noise frame, so that a bulk transfer seals and
/// writes whole 65,535-byte frames (yamux's default, 16 KiB, takes four
/// times the frames, seals and system calls). go-libp2p and js-libp2p
/// send and take frames of up to 64 KiB.
pub(crate) const YAMUX_SPLIT_SEND_SIZE: usize = onetrip_noise::MAX_PLAINTEXT_LEN - YAMUX_HEADER_LEN;

/// An endpoint's configuration: identity, layering, the protocols it
/// answers on inbound streams, and its limits.
///
/// The setters change plain settings only. The protocol configurations
/// (Noise, QUIC, yamux) are derived from them in one place, when a
/// connection needs them; the identity's keys are made once, in
/// [`Config::new`], and no setter replaces them.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) keypair: Keypair,
    /// The Noise identity without a muxer list, and with `/yamux/1.0.0` in
    /// the handshake under each [`MuxerPolicy`]; one static key for all.
    noise: onetrip_noise::Config,
    noise_early_muxer: onetrip_noise::Config,
    noise_early_muxer_strict: onetrip_noise::Config,
    muxer_policy: MuxerPolicy,
    pub(crate) layering: Layering,
    pub(crate) protocols: Arc<[Protocol]>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_pending_handshakes: usize,
    pub(crate) max_streams: usize,
    pub(crate) quic_layering: QuicLayering,
    accept_0rtt: bool,
    fast_open_listener: bool,
    yamux_window: usize,
    /// The QUIC identity (certificate, session tickets), before the
    /// settings above are applied.
    quic: onetrip_quic::Config,
    /// TLS on TCP: the server configurations, made once from the same
    /// identity as QUIC's and one single-use session store, indexed by
    /// `tls_server_index`; and the session tickets of TCP dials.
    tls_servers: Arc<[Arc<rustls::ServerConfig>; 4]>,
    tls_tickets: Arc<TicketStore>,
}

impl Config {
    /// The [`Layering::TCP_ONETRIP`] layering, no inbound protocols, and
    /// the default limits.
    ///
    /// # Errors
    /// [`Error::Noise`] if the key cannot sign, [`Error::Quic`] if no
    /// certificate can be made for it.
    pub fn new(keypair: Keypair) -> Result<Self, Error> {
        let noise = onetrip_noise::Config::new(&keypair)?;
        let quic = onetrip_quic::Config::new(keypair.clone())?;
        let tls_servers = tls_servers(quic.identity())?;
        Ok(Config {
            noise_early_muxer: noise.with_muxers([yamux_protocol()])?,
            noise_early_muxer_strict: noise
                .with_muxers([yamux_protocol()])?
                .with_policy(MuxerPolicy::Strict),
            muxer_policy: MuxerPolicy::Fallback,
            noise,
            tls_servers: Arc::new(tls_servers),
            tls_tickets: Arc::new(TicketStore::new(DEFAULT_TICKET_PEERS)),
            quic,
            keypair,
            layering: Layering::default(),
            quic_layering: QuicLayering::default(),
            accept_0rtt: false,
            fast_open_listener: false,
            yamux_window: DEFAULT_YAMUX_WINDOW,
            protocols: Arc::from([]),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            max_streams: DEFAULT_MAX_STREAMS,
        })
    }

    /// Negotiates by `layering`.
    ///
    /// # Errors
    /// None today; kept fallible so that a layering needing more from the
    /// identity can refuse.
    pub fn with_layering(mut self, layering: Layering) -> Result<Self, Error> {
        self.layering = layering;
        Ok(self)
    }

    /// Negotiates QUIC connections by `layering`.
    pub fn with_quic_layering(mut self, layering: QuicLayering) -> Self {
        self.quic_layering = layering;
        self
    }

    /// The congestion controller of QUIC connections (quinn's): CUBIC by
    /// default, as libp2p-quic's. BBR does not take a loss for congestion,
    /// which matters on a lossy path (see `spec/loss.md`). On TCP, the
    /// kernel's controller applies (`net.ipv4.tcp_congestion_control`).
    pub fn with_quic_congestion(mut self, congestion: Congestion) -> Self {
        self.quic = self.quic.with_congestion(congestion);
        self
    }

    /// Sets the TCP or the QUIC layering, whichever `preset` is.
    ///
    /// # Errors
    /// As [`Config::with_layering`].
    pub fn with_preset(self, preset: Preset) -> Result<Self, Error> {
        match preset {
            Preset::Tcp(layering) => self.with_layering(layering),
            Preset::Quic(layering) => Ok(self.with_quic_layering(layering)),
        }
    }

    /// As a server, accept 0-RTT data from resuming clients: QUIC 0-RTT, and
    /// TLS 1.3 early data on TCP. Off by default: early data can be
    /// replayed (see `spec/quic.md` and `spec/tls.md`). Tickets
    /// are single use within the process; the inbound streams that came
    /// as 0-RTT data say so (`Stream::is_early`),
    /// and a protocol must refuse requests that are not idempotent there.
    pub fn with_accept_0rtt(mut self, accept: bool) -> Self {
        self.accept_0rtt = accept;
        self
    }

    /// As a server, take data in TCP SYNs (TCP Fast Open, `TCP_FASTOPEN`
    /// on the listening sockets): dialers with a Fast Open layering then
    /// send their first flight in the SYN on a reconnect. On for a layering
    /// with [`Layering::fast_open`]; off by default otherwise. SYN data can
    /// be duplicated by the network: see `spec/tcp-stack.md` for what may
    /// ride in it. The kernel must allow it too
    /// ([`fast_open_status`](crate::fast_open_status)).
    pub fn with_fast_open_listener(mut self, on: bool) -> Self {
        self.fast_open_listener = on;
        self
    }

    /// How large a yamux stream's receive window may grow: 1 MiB by
    /// default ([`DEFAULT_YAMUX_WINDOW`]), which moves at most 1 MiB per
    /// round trip on one stream (133 Mbit/s at RTT 63 ms). A long fat path
    /// wants its bandwidth-delay product (8 MB at 1 Gbit/s and 63 ms); but
    /// a window beyond 1 MiB lets a js-libp2p peer send frames the yamux
    /// crate refuses, which ends the connection (see
    /// [`DEFAULT_YAMUX_WINDOW`]): raise it for peers that are not
    /// js-libp2p. Windows grow only as fast as a stream uses them.
    ///
    /// # Errors
    /// [`ConfigError::YamuxWindow`] outside 256 KiB ..= 1 GiB.
    pub fn with_yamux_window(mut self, bytes: usize) -> Result<Self, Error> {
        if !(YAMUX_STREAM_WINDOW..=MAX_YAMUX_WINDOW).contains(&bytes) {
            return Err(ConfigError::YamuxWindow { requested: bytes }.into());
        }
        self.yamux_window = bytes;
        Ok(self)
    }

    /// Whether listeners take data in SYNs (see
    /// [`Config::with_fast_open_listener`]).
    pub fn fast_open_listener(&self) -> bool {
        self.fast_open_listener || self.layering.fast_open
    }

    /// What an early muxer negotiation does when the peer lists muxers but
    /// none in common: fall back to multistream-select (the default, as
    /// go-libp2p and js-libp2p do), or fail, as the specs say. With Noise,
    /// either side's strict policy fails the handshake
    /// ([`onetrip_noise::Error::NoCommonMuxer`]). With TLS, a strict dialer
    /// offers no `libp2p` in ALPN, so a listener without yamux refuses the
    /// handshake (`no_application_protocol`); a listener, which selects,
    /// answers every dialer.
    pub fn with_muxer_policy(mut self, policy: MuxerPolicy) -> Self {
        self.muxer_policy = policy;
        self
    }

    /// Answers inbound streams for these protocols (others get `na`).
    pub fn with_protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }

    /// Bounds each connection's setup, dialing or accepting: TCP connect,
    /// security and muxer negotiation and the Noise handshake together, or
    /// the QUIC handshake. One deadline covers every step, whichever is
    /// slow; it also bounds opening a stream and an inbound stream's
    /// protocol negotiation.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Caps inbound connections per listener, established or in their
    /// handshake; more are dropped as they arrive.
    ///
    /// # Errors
    /// [`Error::Config`] for zero.
    pub fn with_max_connections(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 {
            return Err(ConfigError::ZeroLimit {
                limit: "max_connections",
            }
            .into());
        }
        self.max_connections = max;
        Ok(self)
    }

    /// Caps inbound connections in their handshake per listener.
    ///
    /// # Errors
    /// [`Error::Config`] for zero.
    pub fn with_max_pending_handshakes(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 {
            return Err(ConfigError::ZeroLimit {
                limit: "max_pending_handshakes",
            }
            .into());
        }
        self.max_pending_handshakes = max;
        Ok(self)
    }

    /// Caps open streams per connection, both directions together: beyond
    /// it `open_stream` fails with [`Error::StreamLimit`] and the peer's new
    /// streams are reset; the connection goes on.
    ///
    /// # Errors
    /// [`Error::Config`] for zero or more than [`MAX_STREAMS_LIMIT`].
    pub fn with_max_streams(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 {
            return Err(ConfigError::ZeroLimit {
                limit: "max_streams",
            }
            .into());
        }
        if max > MAX_STREAMS_LIMIT {
            return Err(ConfigError::too_many_streams(max).into());
        }
        self.max_streams = max;
        Ok(self)
    }

    /// The local peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The TCP layering.
    pub fn layering(&self) -> Layering {
        self.layering
    }

    /// The QUIC layering.
    pub fn quic_layering(&self) -> QuicLayering {
        self.quic_layering
    }

    /// The session tickets that this endpoint's TCP + TLS dials keep, per
    /// peer (the QUIC ones are in [`Config::quic`]'s store).
    pub fn tls_ticket_store(&self) -> &Arc<TicketStore> {
        &self.tls_tickets
    }

    /// The QUIC configuration these settings imply: the identity's
    /// certificate, its session tickets and the server's single-use
    /// session store (shared by every QUIC endpoint of this
    /// configuration), 0-RTT per the QUIC layering and
    /// [`Config::with_accept_0rtt`], the stream limit.
    pub fn quic(&self) -> onetrip_quic::Config {
        let max_streams = u32::try_from(self.max_streams).expect("at most MAX_STREAMS_LIMIT");
        self.quic
            .clone()
            .with_0rtt(self.quic_layering.zero_rtt)
            .with_accept_0rtt(self.accept_0rtt)
            .with_max_streams(max_streams)
    }

    /// The TLS server configuration for the TCP layering: it offers
    /// `/yamux/1.0.0` in ALPN before `libp2p` only when the muxer is
    /// negotiated early, and takes early data only when
    /// [`Config::with_accept_0rtt`] says so.
    pub(crate) fn tls_server(&self) -> Arc<rustls::ServerConfig> {
        let early_muxer = matches!(self.layering.muxer, MuxerNegotiation::Early { .. });
        self.tls_servers[tls_server_index(early_muxer, self.accept_0rtt)].clone()
    }

    /// A TLS client configuration for one dial to `expected` (or anyone),
    /// with its [`Dial`](onetrip_tls::Dial), which names the server once
    /// the handshake completes. ALPN lists `/yamux/1.0.0` before `libp2p`
    /// when the muxer is negotiated early, `/yamux/1.0.0` alone under the
    /// strict policy, `libp2p` alone otherwise.
    pub(crate) fn tls_client(
        &self,
        expected: Option<PeerId>,
    ) -> Result<(Arc<rustls::ClientConfig>, onetrip_tls::Dial), Error> {
        let alpn = match (self.layering.muxer, self.muxer_policy) {
            (MuxerNegotiation::Early { .. }, MuxerPolicy::Strict) => {
                vec![YAMUX.as_bytes().to_vec()]
            }
            (MuxerNegotiation::Early { .. }, MuxerPolicy::Fallback) => {
                onetrip_tls::alpn::protocols([YAMUX])
            }
            (MuxerNegotiation::Multistream(_), _) => onetrip_tls::alpn::protocols([] as [&str; 0]),
        };
        let (mut config, dial) =
            self.quic
                .identity()
                .client_config(alpn, self.tls_tickets.clone(), expected)?;
        config.enable_early_data = self.layering.early_data;
        Ok((Arc::new(config), dial))
    }

    /// The Noise configuration for the TCP layering: it lists
    /// `/yamux/1.0.0` in the handshake only when the muxer is negotiated
    /// early.
    pub(crate) fn noise(&self) -> &onetrip_noise::Config {
        match (self.layering.muxer, self.muxer_policy) {
            (MuxerNegotiation::Early { .. }, MuxerPolicy::Fallback) => &self.noise_early_muxer,
            (MuxerNegotiation::Early { .. }, MuxerPolicy::Strict) => &self.noise_early_muxer_strict,
            (MuxerNegotiation::Multistream(_), _) => &self.noise,
        }
    }

    /// The protocols answered on inbound streams.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The deadline of a setup starting now: the handshake timeout from
    /// now.
    pub(crate) fn setup_deadline(&self) -> Deadline {
        Deadline::after(self.handshake_timeout)
    }

    /// yamux's own stream cap: ours, plus as many again so that streams
    /// this crate is about to reset never make yamux end the connection.
    pub(crate) fn yamux_max_streams(&self) -> usize {
        2 * self.max_streams
    }

    /// The yamux configuration this endpoint's limits imply. The
    /// connection's receive window is yamux's 256 KiB per stream plus the
    /// growth that lets one stream's window reach the configured yamux
    /// window (768 KiB by default): since this crate resets streams beyond
    /// `max_streams`, a peer can make a connection buffer at most
    /// `max_streams` × 256 KiB + that growth.
    pub(crate) fn yamux(&self) -> yamux::Config {
        let streams = self.yamux_max_streams();
        let mut config = yamux::Config::default();
        // In this order: each setter checks the window covers the streams.
        config
            .set_split_send_size(YAMUX_SPLIT_SEND_SIZE)
            .set_max_num_streams(streams)
            .set_max_connection_receive_window(Some(
                streams * YAMUX_STREAM_WINDOW + (self.yamux_window - YAMUX_STREAM_WINDOW),
            ));
        config
    }
}

/// The most early data a TLS server takes on a resumed connection: the
/// stream openings, negotiations and requests of a first flight, which a
/// TCP initial window (about 14 KB) carries anyway.
pub const MAX_TLS_EARLY_DATA: u32 = 16 * 1024;

/// The TLS server configurations, by [`tls_server_index`]: one identity and
/// one single-use session store (a ticket resumes once, whichever
/// configuration issued it).
fn tls_servers(identity: &onetrip_tls::Identity) -> Result<[Arc<rustls::ServerConfig>; 4], Error> {
    let sessions = Arc::new(ServerSessions::new(DEFAULT_SERVER_SESSIONS));
    let mut servers = Vec::with_capacity(4);
    for early_muxer in [false, true] {
        let alpn = if early_muxer {
            onetrip_tls::alpn::protocols([YAMUX])
        } else {
            onetrip_tls::alpn::protocols([] as [&str; 0])
        };
        for accept_early_data in [false, true] {
            let mut config = identity.server_config(alpn.clone(), sessions.clone())?;
            if accept_early_data {
                config.max_early_data_size = MAX_TLS_EARLY_DATA;
                // Answer early data at once, before the client's Finished.
                config.send_half_rtt_data = true;
            }
            debug_assert_eq!(
                servers.len(),
                tls_server_index(early_muxer, accept_early_data)
            );
            servers.push(Arc::new(config));
        }
    }
    Ok(servers.try_into().expect("four configurations"))
}

/// Where the TLS server configuration for these choices is.
fn tls_server_index(early_muxer: bool, accept_early_data: bool) -> usize {
    usize::from(early_muxer) * 2 + usize::from(accept_early_data)
}

/// `/yamux/1.0.0` as a [`Protocol`].
pub(crate) fn yamux_protocol() -> Protocol {
    Protocol::new(YAMUX).expect("a valid protocol name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quic_congestion_controller_reaches_the_quic_configuration() {
        let config = Config::new(Keypair::generate_ed25519()).unwrap();
        assert_eq!(config.quic().congestion(), Congestion::Cubic);
        let bbr = config.with_quic_congestion(Congestion::Bbr);
        assert_eq!(bbr.quic().congestion(), Congestion::Bbr);
    }

    #[test]
    fn the_yamux_window_sets_how_far_the_connection_window_grows() {
        let config = Config::new(Keypair::generate_ed25519()).unwrap();
        let streams = config.yamux_max_streams();
        let floor = streams * YAMUX_STREAM_WINDOW;
        // yamux::Config keeps its window private: its Debug shows it.
        let window = |config: &Config| format!("{:?}", config.yamux());
        assert!(window(&config).contains(&format!(
            "Some({})",
            floor + DEFAULT_YAMUX_WINDOW - YAMUX_STREAM_WINDOW
        )));
        let wan = config.clone().with_yamux_window(16 << 20).unwrap();
        assert!(window(&wan).contains(&format!(
            "Some({})",
            floor + (16 << 20) - YAMUX_STREAM_WINDOW
        )));
        for bytes in [YAMUX_STREAM_WINDOW - 1, MAX_YAMUX_WINDOW + 1] {
            assert!(matches!(
                config.clone().with_yamux_window(bytes),
                Err(Error::Config(ConfigError::YamuxWindow { requested })) if requested == bytes
            ));
        }
    }
}
