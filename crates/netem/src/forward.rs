//! The forwarder: per direction, a task that reads each packet from one
//! TUN device and asks the link when it arrives, and a thread that writes
//! it into the other device at that moment.
//!
//! The two share a queue ordered by due time. The writer sleeps until the
//! head is due (and up to [`TIMER_SLACK`] more), and writes every packet
//! due by then; the reader wakes it only when a packet becomes the new
//! head. A packet is never written early, and nothing spins: at 1 Gbit/s a
//! packet is due every 12 µs each way, and a writer that spun until each
//! one would hold a core the endpoints need.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::{
        Arc, Condvar, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use nix::unistd::{Pid, gettid};
use onetrip_netsim::PacketLink;
use tokio::runtime::{Handle, Runtime};
use tokio_tun::Tun;

use crate::{Counters, MTU};

/// The writer thread's timer slack: how late the kernel may wake it after
/// a timed wait, so that one wake-up writes every packet due meanwhile. At
/// 1 Gbit/s a packet is due every 12 µs each way: with a slack of 1 µs the
/// writers woke for nearly every packet, and the forwarder's CPU time over
/// a `wan` run of `quic-optimistic` at 1 Gbit/s (three transfers each
/// way, and their setup) was 0.70 of the run's wall time, against 0.49
/// with this slack (one run each). Linux's default is the same; it is set
/// so that a parent's setting does not change it.
const TIMER_SLACK: Duration = Duration::from_micros(50);

/// A packet on its way, due at a time; ties keep their order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: Instant,
    seq: u64,
    packet: Vec<u8>,
}

/// The packets of one direction on their way, by due time, and whether
/// the reader is gone (the writer then ends once it has written them).
#[derive(Debug, Default)]
struct Queue {
    waiting: BinaryHeap<Reverse<Due>>,
    closed: bool,
}

/// A [`Queue`] its writer waits on.
#[derive(Debug, Default)]
struct Timed {
    queue: Mutex<Queue>,
    /// Signalled when a packet becomes the head, or the reader ends.
    head_changed: Condvar,
}

impl Timed {
    /// Queues `due`; wakes the writer only if it is now the first due.
    fn push(&self, due: Due) {
        let mut queue = lock(&self.queue);
        let first = queue.waiting.peek().is_none_or(|Reverse(head)| due < *head);
        queue.waiting.push(Reverse(due));
        drop(queue);
        if first {
            self.head_changed.notify_one();
        }
    }

    fn close(&self) {
        lock(&self.queue).closed = true;
        self.head_changed.notify_one();
    }

    /// Waits until packets are due, and moves them (in order) into
    /// `ready`; returns false once the queue is closed and empty.
    fn wait_due(&self, ready: &mut Vec<Vec<u8>>) -> bool {
        let mut queue = lock(&self.queue);
        loop {
            let now = Instant::now();
            while let Some(Reverse(head)) = queue.waiting.peek() {
                if head.at > now {
                    break;
                }
                if let Some(Reverse(due)) = queue.waiting.pop() {
                    ready.push(due.packet);
                }
            }
            if !ready.is_empty() {
                return true;
            }
            queue = match queue.waiting.peek() {
                Some(Reverse(head)) => {
                    let wait = head.at - now;
                    self.head_changed
                        .wait_timeout(queue, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None if queue.closed => return false,
                None => self
                    .head_changed
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// Closes a direction's queue when its reader ends, so that its writer
/// ends too once it has written what was due.
struct CloseOnDrop(Arc<Timed>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

pub(crate) struct Forwarder {
    runtime: Runtime,
    directions: Mutex<Vec<Arc<Direction>>>,
    /// The kernel's ids of the forwarder's threads (readers and writers).
    threads: Arc<Mutex<Vec<Pid>>>,
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
            link: lock(&self.link).counters(),
            written: self.written.load(Ordering::Relaxed),
            write_failed: self.write_failed.load(Ordering::Relaxed),
            // The sending namespace's kernel counts these.
            not_read: None,
        }
    }
}

impl Forwarder {
    pub(crate) fn new() -> Self {
        let threads = Arc::new(Mutex::new(Vec::new()));
        let started = threads.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("netem-read")
            .on_thread_start(move || register(&started))
            .enable_io()
            .build()
            .expect("a tokio runtime for the forwarder");
        Forwarder {
            runtime,
            directions: Mutex::default(),
            threads,
        }
    }

    /// The CPU time the forwarder's threads have run so far, as the
    /// scheduler accounts it (`/proc/self/task/<tid>/schedstat`), their
    /// system calls and the kernel work done in them included (a write
    /// into a TUN device carries the packet through the receiving
    /// namespace's IP and TCP or UDP input).
    pub(crate) fn cpu_time(&self) -> Duration {
        lock(&self.threads)
            .iter()
            .filter_map(|tid| {
                let stat =
                    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
                stat.split_whitespace().next()?.parse().ok()
            })
            .map(Duration::from_nanos)
            .sum()
    }

    /// The runtime the TUN devices register with.
    pub(crate) fn handle(&self) -> Handle {
        self.runtime.handle().clone()
    }

    /// The counters of each direction, in the order they were added.
    pub(crate) fn counters(&self) -> Vec<Counters> {
        lock(&self.directions)
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
        lock(&self.directions).push(direction.clone());
        let timed = Arc::new(Timed::default());
        let threads = self.threads.clone();
        let reader = direction.clone();
        let queue = timed.clone();
        self.runtime.spawn(async move {
            // Closes the queue however the task ends: its device failed, or
            // the runtime was dropped with the forwarder, which cancels it.
            let queue = CloseOnDrop(queue);
            let mut buf = vec![0; MTU + 64];
            let mut seq = 0;
            while let Ok(n) = from.recv(&mut buf).await {
                let arrives = lock(&reader.link).send(start.elapsed(), n);
                if let Some(arrives) = arrives {
                    seq += 1;
                    queue.0.push(Due {
                        at: start + arrives,
                        seq,
                        packet: buf[..n].to_vec(),
                    });
                }
            }
        });
        thread::Builder::new()
            .name("netem-write".into())
            .spawn(move || {
                register(&threads);
                write_when_due(&timed, &to, |written| {
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

/// Adds the calling thread to the forwarder's.
fn register(threads: &Mutex<Vec<Pid>>) {
    lock(threads).push(gettid());
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes each packet into `to` when it is due, until the reader is gone
/// and the queue drained; tells `count` whether each write was taken.
fn write_when_due(timed: &Timed, to: &Tun, mut count: impl FnMut(bool)) {
    // Best effort: the thread keeps the slack it inherited otherwise.
    let _ = nix::sys::prctl::set_timerslack(TIMER_SLACK.as_nanos() as u64);
    let mut ready = Vec::new();
    while timed.wait_due(&mut ready) {
        for packet in ready.drain(..) {
            // A TUN write does not wait: a full device queue drops the
            // packet, as a congested interface would.
            count(to.try_send(&packet).is_ok());
        }
    }
}
