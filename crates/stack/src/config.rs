//! An endpoint's identity, layering and limits.

use std::{sync::Arc, time::Duration};

use libp2p_identity::{Keypair, PeerId};
use onetrip_multistream::Protocol;

use crate::{Error, Layering, MuxerNegotiation, Preset, QuicLayering, YAMUX};

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

/// How far yamux may grow stream windows beyond their initial 256 KiB, for
/// the whole connection, so that no stream's window exceeds 1 MiB.
///
/// yamux (the crate) refuses a frame whose body exceeds 1 MiB, yet grows a
/// busy stream's window up to the connection's limit; js-libp2p's yamux
/// sends frames as large as the window it was given, so a window beyond
/// 1 MiB makes a fast js-libp2p sender break the connection ("frame body is
/// too large"). The cost: one stream moves at most 1 MiB per round trip.
const YAMUX_WINDOW_GROWTH: usize = YAMUX_MAX_FRAME_BODY - YAMUX_STREAM_WINDOW;

/// The largest frame body yamux 0.14 accepts (`MAX_FRAME_BODY_LEN`).
const YAMUX_MAX_FRAME_BODY: usize = 1024 * 1024;

/// An endpoint's configuration: identity, layering, the protocols it
/// answers on inbound streams, and its limits.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) keypair: Keypair,
    pub(crate) noise: onetrip_noise::Config,
    pub(crate) layering: Layering,
    pub(crate) protocols: Arc<[Protocol]>,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_pending_handshakes: usize,
    pub(crate) max_streams: usize,
    pub(crate) quic_layering: QuicLayering,
    pub(crate) quic: onetrip_quic::Config,
}

impl Config {
    /// The [`Layering::TCP_ONETRIP`] layering, no inbound protocols, and
    /// the default limits.
    ///
    /// # Errors
    /// [`Error::Noise`] if the key cannot sign.
    pub fn new(keypair: Keypair) -> Result<Self, Error> {
        let layering = Layering::default();
        let quic_layering = QuicLayering::default();
        Ok(Config {
            noise: noise_config(&keypair, layering)?,
            quic: onetrip_quic::Config::new(keypair.clone())?
                .with_0rtt(quic_layering.zero_rtt)
                .with_max_streams(DEFAULT_MAX_STREAMS as u32),
            quic_layering,
            keypair,
            layering,
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
    /// [`Error::Noise`] if the key cannot sign.
    pub fn with_layering(mut self, layering: Layering) -> Result<Self, Error> {
        self.noise = noise_config(&self.keypair, layering)?;
        self.layering = layering;
        Ok(self)
    }

    /// Negotiates QUIC connections by `layering`.
    pub fn with_quic_layering(mut self, layering: QuicLayering) -> Self {
        self.quic = self.quic.with_0rtt(layering.zero_rtt);
        self.quic_layering = layering;
        self
    }

    /// Sets the TCP or the QUIC layering, whichever `preset` is.
    ///
    /// # Errors
    /// [`Error::Noise`] if the key cannot sign.
    pub fn with_preset(self, preset: Preset) -> Result<Self, Error> {
        match preset {
            Preset::Tcp(layering) => self.with_layering(layering),
            Preset::Quic(layering) => Ok(self.with_quic_layering(layering)),
        }
    }

    /// As a QUIC server, accept 0-RTT data from resuming clients. Off by
    /// default: 0-RTT data can be replayed (see `spec/quic.md`).
    pub fn with_accept_0rtt(mut self, accept: bool) -> Self {
        self.quic = self.quic.with_accept_0rtt(accept);
        self
    }

    /// Answers inbound streams for these protocols (others get `na`).
    pub fn with_protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }

    /// Bounds each connection's setup, dialing or accepting: TCP connect,
    /// security and muxer negotiation, and the Noise handshake together.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.quic = self.quic.with_handshake_timeout(timeout);
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
            return Err(Error::Config("max_connections must be at least 1"));
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
            return Err(Error::Config("max_pending_handshakes must be at least 1"));
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
        if max == 0 || max > MAX_STREAMS_LIMIT {
            return Err(Error::Config("max_streams must be in 1..=2048"));
        }
        self.max_streams = max;
        let quic_max = u32::try_from(max).map_err(|_| Error::Config("max_streams"))?;
        self.quic = self.quic.with_max_streams(quic_max);
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

    /// The QUIC configuration (its session tickets among others).
    pub fn quic(&self) -> &onetrip_quic::Config {
        &self.quic
    }

    /// The protocols answered on inbound streams.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// yamux's own stream cap: ours, plus as many again so that streams
    /// this crate is about to reset never make yamux end the connection.
    pub(crate) fn yamux_max_streams(&self) -> usize {
        2 * self.max_streams
    }

    /// The yamux configuration this endpoint's limits imply. The
    /// connection's receive window is yamux's 256 KiB per stream plus 768 KiB
    /// of growth: since this crate resets streams beyond `max_streams`, a
    /// peer can make a connection buffer at most `max_streams` × 256 KiB +
    /// 768 KiB.
    pub(crate) fn yamux(&self) -> yamux::Config {
        let streams = self.yamux_max_streams();
        let mut config = yamux::Config::default();
        // In this order: each setter checks the window covers the streams.
        config
            .set_max_num_streams(streams)
            .set_max_connection_receive_window(Some(
                streams * YAMUX_STREAM_WINDOW + YAMUX_WINDOW_GROWTH,
            ));
        config
    }
}

/// The Noise configuration for `layering`: it lists `/yamux/1.0.0` in the
/// handshake only when the muxer is negotiated early.
fn noise_config(keypair: &Keypair, layering: Layering) -> Result<onetrip_noise::Config, Error> {
    let config = onetrip_noise::Config::new(keypair)?;
    Ok(match layering.muxer {
        MuxerNegotiation::Early { .. } => config.with_muxers([yamux_protocol()])?,
        MuxerNegotiation::Multistream(_) => config,
    })
}

/// `/yamux/1.0.0` as a [`Protocol`].
pub(crate) fn yamux_protocol() -> Protocol {
    Protocol::new(YAMUX).expect("a valid protocol name")
}
