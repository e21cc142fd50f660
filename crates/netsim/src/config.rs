//! Link parameters.

use std::time::Duration;

use crate::{DeliveryTrace, Error, LossModel};

/// The default MTU of a datagram link: what QUIC may assume of the path
/// without discovery is 1200; a typical Ethernet path carries 1500.
pub const DEFAULT_MTU: usize = 1500;

/// How much a stream link's sender may have in flight before its writes
/// wait for the reader: a typical socket send buffer.
pub const DEFAULT_STREAM_BUFFER: usize = 4 << 20;

/// One direction of a link between two hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Propagation delay, one way.
    pub delay: Duration,
    /// Serialization rate in bits per second; `None` for unlimited.
    pub bandwidth: Option<u64>,
    /// Largest datagram carried; larger ones are dropped (datagram links).
    pub mtu: usize,
    /// Which datagrams are lost (datagram links; stream links are reliable).
    pub loss: LossModel,
    /// Delivery opportunities to replay instead of a fixed bandwidth
    /// (datagram links): each carries one datagram.
    pub schedule: Option<DeliveryTrace>,
    /// Bytes a stream sender may have in flight before its writes wait.
    pub stream_buffer: usize,
    /// Packet links with a bandwidth: the bytes the queue before the
    /// bottleneck holds, the packet being serialized included; a packet
    /// that does not fit is dropped (drop-tail). `None`: no bound.
    pub queue: Option<usize>,
    /// A middlebox on this path drops TCP SYNs that carry data (TCP Fast
    /// Open); other SYNs pass.
    pub drops_syn_data: bool,
    /// The network delivers a copy of each SYN that carries data this long
    /// after the original (RFC 7413 §6.3.1): the listener sees a second
    /// connection with the same first flight, whose dialer is gone (its
    /// answers are lost, and it ends one RTT later, as the dialer's host
    /// resets it).
    pub duplicates_syn_data: Option<Duration>,
}

impl LinkConfig {
    /// A loss-free link with this one-way delay and no bandwidth limit.
    pub fn with_delay(delay: Duration) -> Self {
        LinkConfig {
            delay,
            bandwidth: None,
            mtu: DEFAULT_MTU,
            loss: LossModel::None,
            schedule: None,
            stream_buffer: DEFAULT_STREAM_BUFFER,
            drops_syn_data: false,
            duplicates_syn_data: None,
            queue: None,
        }
    }

    /// Sets the bandwidth, in bits per second.
    pub fn bandwidth(mut self, bits_per_second: u64) -> Self {
        self.bandwidth = Some(bits_per_second);
        self
    }

    /// Sets the loss model.
    pub fn loss(mut self, loss: LossModel) -> Self {
        self.loss = loss;
        self
    }

    /// Puts a middlebox on the path that drops SYNs carrying data.
    pub fn drop_syn_data(mut self) -> Self {
        self.drops_syn_data = true;
        self
    }

    /// Bounds the queue before the bottleneck to `bytes` (drop-tail).
    pub fn queue(mut self, bytes: usize) -> Self {
        self.queue = Some(bytes);
        self
    }

    /// Delivers a copy of each SYN with data `after` the original.
    pub fn duplicate_syn_data(mut self, after: Duration) -> Self {
        self.duplicates_syn_data = Some(after);
        self
    }

    /// Sets the MTU.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }

    /// Replays delivery opportunities from a trace.
    pub fn schedule(mut self, trace: DeliveryTrace) -> Self {
        self.schedule = Some(trace);
        self
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn validate(&self) -> Result<(), Error> {
        if self.bandwidth == Some(0) {
            return Err(Error::InvalidConfig("bandwidth must be positive"));
        }
        if self.mtu == 0 || self.stream_buffer == 0 || self.queue == Some(0) {
            return Err(Error::InvalidConfig(
                "MTU, stream buffer and queue must be positive",
            ));
        }
        self.loss.validate()
    }

    /// How many bytes the link serializes in `time` (all of them, without
    /// a bandwidth limit: 0 then, since nothing waits).
    pub fn bytes_in(&self, time: Duration) -> usize {
        match self.bandwidth {
            None => 0,
            Some(bps) => {
                let bytes = time.as_nanos() * u128::from(bps) / 8 / 1_000_000_000;
                usize::try_from(bytes).unwrap_or(usize::MAX)
            }
        }
    }

    /// How long `bytes` take to serialize onto the link.
    pub fn serialization(&self, bytes: usize) -> Duration {
        match self.bandwidth {
            None => Duration::ZERO,
            Some(bps) => {
                let nanos = (bytes as u128 * 8 * 1_000_000_000).div_ceil(u128::from(bps));
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig::with_delay(Duration::ZERO)
    }
}
