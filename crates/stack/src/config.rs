//! An endpoint's identity, layering and limits.

use std::{sync::Arc, time::Duration};

use libp2p_identity::{Keypair, PeerId};
use onetrip_multistream::Protocol;

use crate::{Error, Layering, MuxerNegotiation, YAMUX};

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

/// The most streams per connection: yamux gives every stream a 256 KiB
/// window and caps a connection's windows at 1 GiB.
pub const MAX_STREAMS_LIMIT: usize = 4096;

/// yamux's initial per-stream receive window (yamux spec, "Flow Control").
const YAMUX_STREAM_WINDOW: usize = 256 * 1024;

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
}

impl Config {
    /// The [`Layering::TCP_ONETRIP`] layering, no inbound protocols, and
    /// the default limits.
    ///
    /// # Errors
    /// [`Error::Noise`] if the key cannot sign.
    pub fn new(keypair: Keypair) -> Result<Self, Error> {
        let layering = Layering::default();
        Ok(Config {
            noise: noise_config(&keypair, layering, DEFAULT_HANDSHAKE_TIMEOUT)?,
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
        self.noise = noise_config(&self.keypair, layering, self.handshake_timeout)?;
        self.layering = layering;
        Ok(self)
    }

    /// Answers inbound streams for these protocols (others get `na`).
    pub fn with_protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }

    /// Bounds each connection's setup, dialing or accepting: TCP connect,
    /// security and muxer negotiation, and the Noise handshake together.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.noise = self.noise.with_timeout(timeout);
        self.handshake_timeout = timeout;
        self
    }

    /// Caps established inbound connections per listener; more are dropped
    /// as they arrive.
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

    /// Caps open streams per connection, both directions together; yamux
    /// resets streams beyond it.
    ///
    /// # Errors
    /// [`Error::Config`] for zero or more than [`MAX_STREAMS_LIMIT`].
    pub fn with_max_streams(mut self, max: usize) -> Result<Self, Error> {
        if max == 0 || max > MAX_STREAMS_LIMIT {
            return Err(Error::Config("max_streams must be in 1..=4096"));
        }
        self.max_streams = max;
        Ok(self)
    }

    /// The local peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    /// The layering.
    pub fn layering(&self) -> Layering {
        self.layering
    }

    /// The protocols answered on inbound streams.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The yamux configuration this endpoint's limits imply: the connection
    /// receive window is bounded by the stream cap, so a peer cannot grow a
    /// connection's buffers past `max_streams` × 256 KiB.
    pub(crate) fn yamux(&self) -> yamux::Config {
        let mut config = yamux::Config::default();
        config
            .set_max_num_streams(self.max_streams)
            .set_max_connection_receive_window(Some(self.max_streams * YAMUX_STREAM_WINDOW));
        config
    }
}

/// The Noise configuration for `layering`: it lists `/yamux/1.0.0` in the
/// handshake only when the muxer is negotiated early.
fn noise_config(
    keypair: &Keypair,
    layering: Layering,
    timeout: Duration,
) -> Result<onetrip_noise::Config, Error> {
    let config = onetrip_noise::Config::new(keypair)?.with_timeout(timeout);
    Ok(match layering.muxer {
        MuxerNegotiation::Early { .. } => config.with_muxers([yamux_protocol()])?,
        MuxerNegotiation::Multistream(_) => config,
    })
}

/// `/yamux/1.0.0` as a [`Protocol`].
pub(crate) fn yamux_protocol() -> Protocol {
    Protocol::new(YAMUX).expect("a valid protocol name")
}
