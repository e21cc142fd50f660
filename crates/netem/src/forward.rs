//! The forwarder: per direction, a task that reads each packet from one
//! TUN device and asks the link when it arrives, and a thread that writes
//! it into the other device at that moment.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use onetrip_netsim::PacketLink;
use tokio::runtime::{Handle, Runtime};
use tokio_tun::Tun;

use crate::{Counters, MTU};

/// How long before a packet is due the writer stops sleeping and spins:
/// more than the kernel's timer slack (50 µs).
const SPIN: Duration = Duration::from_micros(200);

/// A packet on its way, due at a time; ties keep their order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: Instant,
    seq: u64,
    packet: Vec<u8>,
}

pub(crate) struct Forwarder {
    runtime: Runtime,
    directions: Mutex<Vec<Arc<Direction>>>,
}

/// One direction's link and what became of its packets. Its reader alone
/// locks the link, but to count; its writer counts without a lock.
#[derive(Debug)]
struct Direction {
    link: Mutex<PacketLink>,
    written: AtomicU64,
    write_failed: AtomicU64,
}

impl Direction {
    fn counters(&self) -> Counters {
        Counters {
            link: self
                .link
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .counters(),
            written: self.written.load(Ordering::Relaxed),
            write_failed: self.write_failed.load(Ordering::Relaxed),
        }
    }
}

impl Forwarder {
    pub(crate) fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("netem-read")
            .enable_io()
            .build()
            .expect("a tokio runtime for the forwarder");
        Forwarder {
            runtime,
            directions: Mutex::default(),
        }
    }

    /// The runtime the TUN devices register with.
    pub(crate) fn handle(&self) -> Handle {
        self.runtime.handle().clone()
    }

    /// The counters of each direction, in the order they were added.
    pub(crate) fn counters(&self) -> Vec<Counters> {
        self.directions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|direction| direction.counters())
            .collect()
    }

    /// Forwards packets from `from` to `to` through `link`, whose time
    /// zero is `start`.
    pub(crate) fn direction(&self, from: Arc<Tun>, to: Arc<Tun>, link: PacketLink, start: Instant) {
        let direction = Arc::new(Direction {
            link: Mutex::new(link),
            written: AtomicU64::new(0),
            write_failed: AtomicU64::new(0),
        });
        self.directions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(direction.clone());
        let (due_tx, due_rx) = mpsc::channel::<Due>();
        let reader = direction.clone();
        self.runtime.spawn(async move {
            let mut buf = vec![0; MTU + 64];
            let mut seq = 0;
            while let Ok(n) = from.recv(&mut buf).await {
                let arrives = reader
                    .link
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .send(start.elapsed(), n);
                if let Some(arrives) = arrives {
                    seq += 1;
                    let due = Due {
                        at: start + arrives,
                        seq,
                        packet: buf[..n].to_vec(),
                    };
                    if due_tx.send(due).is_err() {
                        break;
                    }
                }
            }
        });
        thread::Builder::new()
            .name("netem-write".into())
            .spawn(move || {
                write_when_due(&due_rx, &to, |written| {
                    let count = if written {
                        &direction.written
                    } else {
                        &direction.write_failed
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                });
            })
            .expect("a writer thread");
    }
}

/// Writes each packet into `to` when it is due, until the reader is gone;
/// tells `count` whether each write was taken.
fn write_when_due(due_rx: &mpsc::Receiver<Due>, to: &Tun, mut count: impl FnMut(bool)) {
    let mut waiting = BinaryHeap::new();
    loop {
        let Some(Reverse(next)) = waiting.peek() else {
            match due_rx.recv() {
                Ok(due) => waiting.push(Reverse(due)),
                Err(_) => return,
            }
            continue;
        };
        let now = Instant::now();
        if next.at <= now {
            let Some(Reverse(due)) = waiting.pop() else {
                continue;
            };
            // A TUN write does not wait: a full device queue drops the
            // packet, as a congested interface would.
            count(to.try_send(&due.packet).is_ok());
            continue;
        }
        let wait = next.at - now;
        if wait > SPIN {
            match due_rx.recv_timeout(wait - SPIN) {
                Ok(due) => waiting.push(Reverse(due)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            while let Ok(due) = due_rx.try_recv() {
                waiting.push(Reverse(due));
            }
            std::hint::spin_loop();
        }
    }
}
