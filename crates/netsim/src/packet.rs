//! One direction of a link as a carrier of packets, sans IO: what the
//! link's models decide for each packet given when it is sent. netsim's
//! datagram links run on it in tokio time, and so can a forwarder of real
//! packets (the TUN emulator) in real time: one description of a link,
//! the same decisions.

use std::time::Duration;

use crate::{
    LinkConfig,
    loss::{Fate, LossProcess},
};

/// What became of the packets offered to a [`PacketLink`]: exact counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketCounters {
    /// Packets offered.
    pub offered: u64,
    /// Packets the link carries (they arrive when [`PacketLink::send`]
    /// says).
    pub delivered: u64,
    /// Bytes of the packets carried.
    pub delivered_bytes: u64,
    /// Packets the loss model dropped.
    pub lost: u64,
    /// Packets larger than the MTU.
    pub too_big: u64,
    /// Packets dropped because the queue before the bottleneck was full
    /// (drop-tail).
    pub queue_full: u64,
}

/// One direction of a link: MTU, loss model (its own seeded stream),
/// bandwidth with a bounded drop-tail queue, or a replayed delivery trace,
/// then the propagation delay.
#[derive(Debug)]
pub struct PacketLink {
    config: LinkConfig,
    loss: LossProcess,
    /// When the link finishes serializing what it has accepted, from the
    /// link's start.
    free_at: Duration,
    /// The next unused delivery opportunity of a replayed trace.
    next_opportunity: u64,
    counters: PacketCounters,
}

impl PacketLink {
    /// A link that starts at time zero, its loss process seeded with
    /// `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        PacketLink {
            loss: LossProcess::new(config.loss.clone(), seed),
            config,
            free_at: Duration::ZERO,
            next_opportunity: 0,
            counters: PacketCounters::default(),
        }
    }

    /// The link's configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Offers a packet of `len` bytes at `now` (since the link's start):
    /// when it arrives at the other end, or `None` if it is dropped.
    pub fn send(&mut self, now: Duration, len: usize) -> Option<Duration> {
        self.counters.offered += 1;
        if len > self.config.mtu {
            self.counters.too_big += 1;
            return None;
        }
        let arrives = match self.loss.next_fate_at(now) {
            Fate::Drop => {
                self.counters.lost += 1;
                return None;
            }
            Fate::DeliverAfter(delay) => now + delay,
            Fate::Deliver => match &self.config.schedule {
                Some(trace) => {
                    let n = trace.next_opportunity(now, self.next_opportunity);
                    self.next_opportunity = n + 1;
                    trace.opportunity(n) + self.config.delay
                }
                None => {
                    let start = self.free_at.max(now);
                    if let Some(queue) = self.config.queue
                        && self.config.bytes_in(start - now) + len > queue
                    {
                        self.counters.queue_full += 1;
                        return None;
                    }
                    self.free_at = start + self.config.serialization(len);
                    self.free_at + self.config.delay
                }
            },
        };
        self.counters.delivered += 1;
        self.counters.delivered_bytes += len as u64;
        Some(arrives)
    }

    /// What became of the packets so far.
    pub fn counters(&self) -> PacketCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GilbertElliott, LossModel};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn packets_queue_behind_the_bottleneck_and_the_queue_is_bounded() {
        // 8 Mbit/s: 1000 bytes take 1 ms. Room for 3000 bytes.
        let config = LinkConfig::with_delay(10 * MS)
            .bandwidth(8_000_000)
            .queue(3000);
        let mut link = PacketLink::new(config, 1);
        let arrivals: Vec<_> = (0..6).map(|_| link.send(Duration::ZERO, 1000)).collect();
        // Three fit (the one being serialized counts); the rest find the
        // queue full.
        assert_eq!(
            arrivals,
            [
                Some(11 * MS),
                Some(12 * MS),
                Some(13 * MS),
                None,
                None,
                None
            ]
        );
        // Once the queue drains, packets fit again.
        assert_eq!(link.send(3 * MS, 1000), Some(14 * MS));
        let counters = link.counters();
        assert_eq!(
            (counters.offered, counters.delivered, counters.queue_full),
            (7, 4, 3)
        );
        assert_eq!(counters.delivered_bytes, 4000);
    }

    #[test]
    fn the_counters_account_for_every_packet() {
        let ge = GilbertElliott::with_mean_loss(0.05, 4.0).unwrap();
        let config = LinkConfig::with_delay(MS)
            .loss(LossModel::GilbertElliott(ge))
            .mtu(1500);
        let mut link = PacketLink::new(config, 7);
        let mut carried = 0;
        for n in 0..20_000u64 {
            let len = if n % 100 == 0 { 1501 } else { 1200 };
            carried += u64::from(link.send(Duration::ZERO, len).is_some());
        }
        let c = link.counters();
        assert_eq!(c.offered, 20_000);
        assert_eq!(c.too_big, 200);
        assert_eq!(c.delivered, carried);
        assert_eq!(c.delivered + c.lost + c.too_big + c.queue_full, c.offered);
        // About 5 % lost, in bursts.
        let share = c.lost as f64 / (c.offered - c.too_big) as f64;
        assert!((0.03..0.07).contains(&share), "{share}");
    }
}
