//! What sockets and streams share: each direction's link, the network's
//! clock, and the flight recorder every transmission goes to.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::time::Instant;

use crate::{
    LinkConfig,
    recorder::{Carrier, Record, Recorder},
};

/// The links of a network, one per direction between two hosts, and what
/// is recorded of the transmissions that cross them.
#[derive(Debug)]
pub(crate) struct Links {
    /// When the network was built: time zero of its recordings and traces.
    pub(crate) start: Instant,
    default_link: LinkConfig,
    links: HashMap<(IpAddr, IpAddr), LinkConfig>,
    seed: u64,
    pub(crate) recorder: Recorder,
}

/// A transmission as the links see it, in tokio time.
#[derive(Debug)]
pub(crate) struct Transmission<'a> {
    pub(crate) carrier: Carrier,
    pub(crate) from: SocketAddr,
    pub(crate) to: SocketAddr,
    pub(crate) bytes: usize,
    pub(crate) sent: Instant,
    pub(crate) delivered: Option<Instant>,
    pub(crate) label: Option<Arc<str>>,
    /// What it carries (empty for a SYN, a FIN, …).
    pub(crate) payload: &'a [u8],
}

impl Links {
    /// Links whose clock starts now.
    pub(crate) fn new(
        default_link: LinkConfig,
        links: HashMap<(IpAddr, IpAddr), LinkConfig>,
        seed: u64,
        recorder: Recorder,
    ) -> Self {
        Links {
            start: Instant::now(),
            default_link,
            links,
            seed,
            recorder,
        }
    }

    /// The link from host `from` to host `to`.
    pub(crate) fn link(&self, from: IpAddr, to: IpAddr) -> &LinkConfig {
        self.links.get(&(from, to)).unwrap_or(&self.default_link)
    }

    /// The time from the network's start to `t`.
    pub(crate) fn since_start(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// Records a transmission.
    pub(crate) fn record(&self, transmission: Transmission<'_>) {
        self.recorder.push(
            Record {
                sent: self.since_start(transmission.sent),
                delivered: transmission.delivered.map(|t| self.since_start(t)),
                from: transmission.from,
                to: transmission.to,
                bytes: transmission.bytes,
                label: transmission.label,
                carrier: transmission.carrier,
                payload: None,
            },
            transmission.payload,
        );
    }

    /// The seed of the loss process of the link from `from` to `to`: each
    /// directed link gets its own stream, derived from the network's seed
    /// and the pair, so that adding traffic elsewhere does not change a
    /// link's loss pattern.
    pub(crate) fn seed(&self, from: IpAddr, to: IpAddr) -> u64 {
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&(self.seed, from, to), &mut hasher);
        std::hash::Hasher::finish(&hasher)
    }
}
