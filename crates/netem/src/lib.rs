//! netsim's link models on the real kernel.
//!
//! Two network namespaces, `server` (10.77.0.1) and `client` (10.77.0.2),
//! each with a TUN device as its only route to the other; one userspace
//! forwarder reads every IP packet a namespace sends, asks the direction's
//! [`PacketLink`] (the same model netsim's virtual-time links run on: MTU,
//! delay, bandwidth with a drop-tail queue, Bernoulli or Gilbert-Elliott
//! loss, delivery and loss/delay traces) when it arrives, and writes it
//! into the other namespace then (under a tenth of a millisecond late,
//! measured: the writer sleeps rather than spins). This is how
//! Mahimahi emulates links; here one [`LinkConfig`] describes both the
//! virtual link and the real one, so the kernel's own TCP (its handshake,
//! loss recovery, congestion control, TCP Fast Open) and any program, ours
//! or another libp2p implementation, run over the same path.
//!
//! [`Emulator::start`] needs root (CI has it). Code runs in a namespace
//! through [`Namespace::run`] (a thread of that namespace) or as a process
//! started there ([`Namespace::spawn`]). The `onetrip-netem` binary runs
//! a command on each side.
//!
//! Limits, measured by this crate's `self_check` test: the forwarder adds
//! a fraction of a millisecond per packet, sustains well over 1 Gbit/s of
//! full-size packets, and spends a few microseconds of CPU on each
//! ([`Emulator::forwarder_cpu`]).

mod forward;

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    net::Ipv4Addr,
    process::{Child, Command},
    sync::{Arc, Mutex, PoisonError, mpsc},
    thread,
    time::Instant,
};

use nix::sched::{CloneFlags, unshare};
pub use onetrip_netsim::{LinkConfig, PacketCounters, PacketLink};
use tokio_tun::Tun;

/// The server namespace's address.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The client namespace's address.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// The TUN devices' MTU: Ethernet's, so TCP's segments are the usual
/// 1460 bytes.
pub const MTU: usize = 1500;

/// How many packets a namespace's TUN device holds for the forwarder to
/// read (its `txqueuelen`; Linux's default is 500). This is not the
/// emulated link's queue, which the [`LinkConfig`] sets: it only absorbs
/// the moments the forwarder is not scheduled. At 1 Gbit/s 500 packets
/// last 6 ms, and a busy 2-core machine can keep a thread waiting longer;
/// the packets dropped here are counted ([`Counters::not_read`]). A packet
/// that waited here reaches the link late by that wait, which no counter
/// shows: a long queue turns a stalled forwarder's loss into delay.
pub const TUN_QUEUE: u32 = 10_000;

/// What can go wrong setting up the emulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No network namespace: the emulator needs root.
    #[error(
        "cannot create a network namespace (unshare(CLONE_NEWNET): {0}): the emulator needs root"
    )]
    Namespace(nix::Error),
    /// The TUN device could not be made (no `/dev/net/tun`?).
    #[error("cannot create a TUN device: {0}")]
    Tun(String),
    /// A command setting up a namespace failed (`ip` from iproute2 is
    /// needed).
    #[error("setting up the namespace failed: {0}")]
    Setup(String),
    /// A link's configuration is invalid.
    #[error("invalid link: {0}")]
    Link(#[from] onetrip_netsim::Error),
}

/// What became of one direction's packets: how many the sending
/// namespace's TUN device dropped before the forwarder read them, the link
/// model's account of the others, and how many of those it carried the
/// other namespace's kernel took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// The link model's account (offered, delivered, lost, …).
    pub link: PacketCounters,
    /// Delivered packets written into the other namespace.
    pub written: u64,
    /// Delivered packets the other namespace's device refused (its queue
    /// was full).
    pub write_failed: u64,
    /// Packets the sending namespace's TUN device dropped before the
    /// forwarder read them: loss the link model did not decide, which an
    /// honest run keeps at zero. It is the device's transmit drop count,
    /// which counts a full [`TUN_QUEUE`] (and the driver's filters, which
    /// nothing here sets). `None` if the kernel's count could not be read.
    pub not_read: Option<u64>,
}

/// The two directions of the emulated path and the seed of their loss
/// processes.
#[derive(Debug, Clone)]
pub struct Path {
    /// From the client to the server.
    pub up: LinkConfig,
    /// From the server to the client.
    pub down: LinkConfig,
    /// Seeds the loss processes (each direction derives its own).
    pub seed: u64,
}

impl Path {
    /// The same link both ways.
    pub fn symmetric(link: LinkConfig) -> Self {
        Path {
            up: link.clone(),
            down: link,
            seed: 0,
        }
    }
}

/// A job a namespace's thread runs.
type Job = Box<dyn FnOnce() + Send>;

/// One side of the path: a thread inside the network namespace, which
/// runs what is handed to it there.
#[derive(Debug)]
pub struct Namespace {
    addr: Ipv4Addr,
    jobs: mpsc::Sender<Job>,
    /// The namespace's `/proc/thread-self/net/dev`, opened by its thread:
    /// the open file stays bound to the namespace.
    dev: Mutex<std::fs::File>,
}

impl Namespace {
    /// This side's address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The packets this side's TUN device dropped on their way out, as the
    /// kernel counts them for the namespace (its `net/dev`, opened at
    /// setup, read again without waiting for the namespace's jobs).
    fn tun_dropped(&self) -> Option<u64> {
        let mut file = self.dev.lock().unwrap_or_else(PoisonError::into_inner);
        read_tx_dropped(&mut file).ok()
    }

    /// Runs `f` on this namespace's thread and returns its result: the
    /// sockets it opens, and the threads and processes it starts, are in
    /// the namespace. One job at a time.
    ///
    /// # Panics
    /// If `f` panics (the panic is passed on), or the namespace is gone.
    pub fn run<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        });
        self.jobs
            .send(job)
            .expect("the namespace's thread is running");
        match rx.recv().expect("the namespace's thread answers") {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Runs the future `f` makes on a runtime of this namespace's thread,
    /// to its end, and returns its output: a client's work, say.
    ///
    /// # Panics
    /// As [`Namespace::run`], or if no runtime can be built.
    pub fn block_on<T, F, Fut>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        self.run(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime")
                .block_on(f())
        })
    }

    /// Starts a thread of this namespace with a runtime of its own (two
    /// workers), runs the future `setup` makes there, returns its output,
    /// and keeps the runtime, and the tasks `setup` spawned, running for
    /// the namespace's life: a server, say.
    ///
    /// # Panics
    /// If the runtime cannot be built, or `setup` panics.
    pub fn start<T, F, Fut>(&self, setup: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let (tx, rx) = mpsc::channel();
        self.run(move || {
            thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                runtime.block_on(async move {
                    let _ = tx.send(setup().await);
                    std::future::pending::<()>().await;
                });
            });
        });
        rx.recv().expect("the setup runs to its end")
    }

    /// Starts `command` in this namespace.
    ///
    /// # Errors
    /// If it cannot be started.
    pub fn spawn(&self, mut command: Command) -> std::io::Result<Child> {
        self.run(move || command.spawn())
    }

    /// Sets a sysctl of this namespace (`path` under `/proc/sys`, such as
    /// `net/ipv4/tcp_fastopen`).
    ///
    /// # Errors
    /// If it cannot be written.
    pub fn set_sysctl(&self, path: &str, value: &str) -> std::io::Result<()> {
        let (file, value) = (format!("/proc/sys/{path}"), value.to_owned());
        self.run(move || std::fs::write(file, value))
    }
}

/// The running emulator: two namespaces and the forwarder between them.
/// Dropping it stops the forwarder and the namespaces' threads; the
/// namespaces go with their last thread and process.
pub struct Emulator {
    /// The server side, at [`SERVER`].
    pub server: Namespace,
    /// The client side, at [`CLIENT`].
    pub client: Namespace,
    forwarder: forward::Forwarder,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("server", &self.server)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Creates the two namespaces (loopback up, `net.ipv4.tcp_fastopen`
    /// at 3 so both sides may use TCP Fast Open), their TUN devices, and
    /// starts forwarding along `path`.
    ///
    /// # Errors
    /// [`Error::Namespace`] without root, [`Error::Tun`], [`Error::Setup`]
    /// if `ip` is missing, [`Error::Link`] for an invalid link.
    pub fn start(path: Path) -> Result<Emulator, Error> {
        path.up.validate()?;
        path.down.validate()?;
        let forwarder = forward::Forwarder::new();
        let (server, server_tun) = namespace("server", SERVER, CLIENT, &forwarder)?;
        let (client, client_tun) = namespace("client", CLIENT, SERVER, &forwarder)?;
        let start = Instant::now();
        let seeds = [path.seed.wrapping_mul(2), path.seed.wrapping_mul(2) + 1];
        forwarder.direction(
            client_tun.clone(),
            server_tun.clone(),
            PacketLink::new(path.up, seeds[0]),
            start,
        );
        forwarder.direction(
            server_tun,
            client_tun,
            PacketLink::new(path.down, seeds[1]),
            start,
        );
        Ok(Emulator {
            server,
            client,
            forwarder,
        })
    }

    /// The CPU time the forwarder's threads have used so far: what the
    /// emulator took from the programs it carries, which share the
    /// machine with it. Its system calls count, and so does the kernel's
    /// input of each packet it writes (IP, then TCP or UDP, in the
    /// receiving namespace).
    pub fn forwarder_cpu(&self) -> std::time::Duration {
        self.forwarder.cpu_time()
    }

    /// The packets both TUN devices dropped before the forwarder read them,
    /// so far ([`Counters::not_read`] both ways); `None` if a count could
    /// not be read.
    pub fn not_read(&self) -> Option<u64> {
        Some(self.client.tun_dropped()? + self.server.tun_dropped()?)
    }

    /// What became of the packets each way so far: `(up, down)`.
    pub fn counters(&self) -> (Counters, Counters) {
        let counters = self.forwarder.counters();
        let up = Counters {
            not_read: self.client.tun_dropped(),
            ..counters[0]
        };
        let down = Counters {
            not_read: self.server.tun_dropped(),
            ..counters[1]
        };
        (up, down)
    }
}

/// Makes a namespace whose thread waits for jobs, with a TUN device at
/// `addr` towards `peer` registered with the forwarder's runtime.
fn namespace(
    name: &'static str,
    addr: Ipv4Addr,
    peer: Ipv4Addr,
    forwarder: &forward::Forwarder,
) -> Result<(Namespace, Arc<Tun>), Error> {
    let (jobs, inbox) = mpsc::channel::<Job>();
    let (ready, setup) = mpsc::channel::<Result<(Arc<Tun>, File), Error>>();
    let runtime = forwarder.handle();
    thread::Builder::new()
        .name(format!("netem-{name}"))
        .spawn(move || {
            let made = (|| -> Result<(Arc<Tun>, File), Error> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(Error::Namespace)?;
                ip(&["link", "set", "lo", "up"])?;
                std::fs::write("/proc/sys/net/ipv4/tcp_fastopen", "3")
                    .map_err(|err| Error::Setup(format!("net.ipv4.tcp_fastopen: {err}")))?;
                // The path carries IPv4 only: no IPv6 neighbour discovery
                // or multicast reports in the packet counts.
                for conf in ["all", "default"] {
                    let _ =
                        std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "1");
                }
                let _guard = runtime.enter();
                let mtu = i32::try_from(MTU).expect("an MTU fits an i32");
                let mut tuns = Tun::builder()
                    .name(TUN_NAME)
                    .mtu(mtu)
                    .address(addr)
                    .destination(peer)
                    .netmask(Ipv4Addr::BROADCAST)
                    .up()
                    .build()
                    .map_err(|err| Error::Tun(err.to_string()))?;
                ip(&[
                    "link",
                    "set",
                    TUN_NAME,
                    "txqueuelen",
                    &TUN_QUEUE.to_string(),
                ])?;
                let setup = |err: std::io::Error| {
                    Error::Setup(format!("the namespace's /proc/thread-self/net/dev: {err}"))
                };
                let mut dev = File::open("/proc/thread-self/net/dev").map_err(setup)?;
                read_tx_dropped(&mut dev).map_err(setup)?;
                Ok((Arc::new(tuns.remove(0)), dev))
            })();
            let ok = made.is_ok();
            let _ = ready.send(made);
            if ok {
                while let Ok(job) = inbox.recv() {
                    job();
                }
            }
        })
        .map_err(|err| Error::Setup(format!("cannot start a thread: {err}")))?;
    let (tun, dev) = setup
        .recv()
        .map_err(|_| Error::Setup(format!("the {name} namespace's thread died")))??;
    let namespace = Namespace {
        addr,
        jobs,
        dev: Mutex::new(dev),
    };
    Ok((namespace, tun))
}

/// The TUN device's name in each namespace.
const TUN_NAME: &str = "netem0";

/// The transmit drop count of the TUN device in `dev`, a namespace's
/// `net/dev`, read from its start.
fn read_tx_dropped(dev: &mut File) -> std::io::Result<u64> {
    let mut text = String::new();
    dev.seek(SeekFrom::Start(0))?;
    dev.read_to_string(&mut text)?;
    tx_dropped(&text, TUN_NAME).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no {TUN_NAME} transmit drop count"),
        )
    })
}

/// The transmit `drop` count of `device` in `dev`, the text of a
/// `/proc/net/dev`: after the device's name and colon come eight receive
/// fields, then transmit bytes, packets, errors and drops.
fn tx_dropped(dev: &str, device: &str) -> Option<u64> {
    dev.lines().find_map(|line| {
        let (name, fields) = line.split_once(':')?;
        if name.trim() != device {
            return None;
        }
        fields.split_whitespace().nth(11)?.parse().ok()
    })
}

/// Runs `ip` with `args` in the calling thread's namespace.
fn ip(args: &[&str]) -> Result<(), Error> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .map_err(|err| Error::Setup(format!("cannot run `ip` ({err}): install iproute2")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Setup(format!(
            "`ip {}` failed: {status}",
            args.join(" ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::tx_dropped;

    #[test]
    fn reads_the_transmit_drops_of_one_device() {
        let dev = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
netem0: 9000000    6000    0    1    0     0          0         0 12000000    8000    0   37    0     0       0          0
";
        assert_eq!(tx_dropped(dev, "netem0"), Some(37));
        assert_eq!(tx_dropped(dev, "lo"), Some(0));
        assert_eq!(tx_dropped(dev, "netem1"), None);
        assert_eq!(tx_dropped("netem0: 1 2 3", "netem0"), None);
    }
}
