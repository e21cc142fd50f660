//! The emulated network: hosts, addresses, links and the shared recorder.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};

use crate::{
    Error, LinkConfig, Recorder,
    datagram::SimUdpSocket,
    loss::LossProcess,
    recorder::{Carrier, DEFAULT_RECORD_CAPACITY, Record},
    stream::{PendingConnection, SimStream, StreamListener},
};

/// The first ephemeral port a host hands out (IANA's dynamic range).
const FIRST_EPHEMERAL_PORT: u16 = 49152;

/// How many connections may wait in a listener's accept queue.
pub(crate) const ACCEPT_BACKLOG: usize = 1024;

/// An emulated network of hosts joined by links with delay, bandwidth and
/// loss. Cloning shares the network.
///
/// Time is tokio's: under a paused clock (`#[tokio::test(start_paused =
/// true)]`) every delay is exact and a whole exchange takes no real time;
/// under a running clock the network behaves alike in real time.
#[derive(Debug, Clone)]
pub struct Network {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) start: Instant,
    default_link: LinkConfig,
    links: HashMap<(IpAddr, IpAddr), LinkConfig>,
    seed: u64,
    pub(crate) recorder: Recorder,
    pub(crate) state: Mutex<State>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    next_port: HashMap<IpAddr, u16>,
    listeners: HashMap<SocketAddr, mpsc::Sender<PendingConnection>>,
    pub(crate) sockets: HashMap<SocketAddr, Weak<SimUdpSocket>>,
    /// Per directed pair of hosts: the datagram link's running state.
    pub(crate) datagram_links: HashMap<(IpAddr, IpAddr), DatagramLinkState>,
}

/// A transmission as the links see it, in tokio time.
#[derive(Debug)]
pub(crate) struct Transmission {
    pub(crate) carrier: Carrier,
    pub(crate) from: SocketAddr,
    pub(crate) to: SocketAddr,
    pub(crate) bytes: usize,
    pub(crate) sent: Instant,
    pub(crate) delivered: Option<Instant>,
    pub(crate) label: Option<Arc<str>>,
}

/// What a datagram link remembers between datagrams.
#[derive(Debug)]
pub(crate) struct DatagramLinkState {
    pub(crate) loss: LossProcess,
    /// When the link finishes serializing what it has accepted.
    pub(crate) free_at: Instant,
    /// The next unused delivery opportunity of a replayed trace.
    pub(crate) next_opportunity: u64,
}

/// Builds a [`Network`] with per-direction links.
#[derive(Debug, Clone)]
pub struct NetworkBuilder {
    default_link: LinkConfig,
    links: HashMap<(IpAddr, IpAddr), LinkConfig>,
    seed: u64,
    record_capacity: usize,
}

impl NetworkBuilder {
    /// The link used between hosts that have no link of their own.
    pub fn default_link(mut self, link: LinkConfig) -> Self {
        self.default_link = link;
        self
    }

    /// The link from host `from` to host `to` (one direction).
    pub fn link(mut self, from: IpAddr, to: IpAddr, link: LinkConfig) -> Self {
        self.links.insert((from, to), link);
        self
    }

    /// The seed of every random loss process (each directed link derives
    /// its own stream from it).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How many records the flight recorder keeps.
    pub fn record_capacity(mut self, capacity: usize) -> Self {
        self.record_capacity = capacity;
        self
    }

    /// Checks every link and builds the network. Its clock starts now.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid link.
    pub fn build(self) -> Result<Network, Error> {
        self.default_link.validate()?;
        for link in self.links.values() {
            link.validate()?;
        }
        Ok(Network {
            inner: Arc::new(Inner {
                start: Instant::now(),
                default_link: self.default_link,
                links: self.links,
                seed: self.seed,
                recorder: Recorder::new(self.record_capacity),
                state: Mutex::new(State::default()),
            }),
        })
    }
}

impl Network {
    /// A network whose links all have this configuration in both directions.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an invalid link.
    pub fn new(link: LinkConfig) -> Result<Self, Error> {
        Network::builder().default_link(link).build()
    }

    /// A builder, for asymmetric or per-host links.
    pub fn builder() -> NetworkBuilder {
        NetworkBuilder {
            default_link: LinkConfig::default(),
            links: HashMap::new(),
            seed: 0,
            record_capacity: DEFAULT_RECORD_CAPACITY,
        }
    }

    /// A host of this network.
    pub fn host(&self, ip: impl Into<IpAddr>) -> Host {
        Host {
            network: self.clone(),
            ip: ip.into(),
        }
    }

    /// The link from host `from` to host `to`.
    pub fn link(&self, from: IpAddr, to: IpAddr) -> &LinkConfig {
        self.inner.link(from, to)
    }

    /// The round-trip time between two hosts: the sum of both one-way delays.
    pub fn rtt(&self, a: IpAddr, b: IpAddr) -> Duration {
        self.link(a, b).delay + self.link(b, a).delay
    }

    /// The flight recorder shared by every link of this network.
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// Time since the network was built.
    pub fn elapsed(&self) -> Duration {
        self.inner.start.elapsed()
    }
}

impl Inner {
    pub(crate) fn link(&self, from: IpAddr, to: IpAddr) -> &LinkConfig {
        self.links.get(&(from, to)).unwrap_or(&self.default_link)
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn since_start(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// Records a transmission.
    pub(crate) fn record(&self, transmission: Transmission) {
        self.recorder.push(Record {
            sent: self.since_start(transmission.sent),
            delivered: transmission.delivered.map(|t| self.since_start(t)),
            from: transmission.from,
            to: transmission.to,
            bytes: transmission.bytes,
            label: transmission.label,
            carrier: transmission.carrier,
        });
    }

    pub(crate) fn datagram_link_state<'a>(
        &self,
        state: &'a mut State,
        from: IpAddr,
        to: IpAddr,
    ) -> &'a mut DatagramLinkState {
        state.datagram_links.entry((from, to)).or_insert_with(|| {
            // Each directed link gets its own stream, derived from the seed
            // and the pair, so that adding traffic elsewhere does not
            // change a link's loss pattern.
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(&(self.seed, from, to), &mut hasher);
            DatagramLinkState {
                loss: LossProcess::new(
                    self.link(from, to).loss.clone(),
                    std::hash::Hasher::finish(&hasher),
                ),
                free_at: self.start,
                next_opportunity: 0,
            }
        })
    }
}

/// One host of a [`Network`]: where streams are dialed from and listened
/// on, and datagram sockets bound.
#[derive(Debug, Clone)]
pub struct Host {
    network: Network,
    ip: IpAddr,
}

impl Host {
    /// This host's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    fn ephemeral(&self, state: &mut State) -> SocketAddr {
        loop {
            let next = state
                .next_port
                .entry(self.ip)
                .or_insert(FIRST_EPHEMERAL_PORT);
            let addr = SocketAddr::new(self.ip, *next);
            *next = next.checked_add(1).unwrap_or(FIRST_EPHEMERAL_PORT);
            if !state.listeners.contains_key(&addr) && !state.sockets.contains_key(&addr) {
                return addr;
            }
        }
    }

    /// Listens for stream connections on `port` (0: an ephemeral port).
    ///
    /// # Errors
    /// [`Error::AddrInUse`].
    pub fn listen(&self, port: u16) -> Result<StreamListener, Error> {
        let mut state = self.network.inner.lock();
        let addr = if port == 0 {
            self.ephemeral(&mut state)
        } else {
            SocketAddr::new(self.ip, port)
        };
        if state.listeners.contains_key(&addr) {
            return Err(Error::AddrInUse(addr));
        }
        let (tx, rx) = mpsc::channel(ACCEPT_BACKLOG);
        state.listeners.insert(addr, tx);
        Ok(StreamListener::new(self.network.inner.clone(), addr, rx))
    }

    /// Opens a stream connection to `to`, as TCP would: the SYN takes one
    /// one-way delay, the SYN-ACK another, so this returns after one RTT.
    /// The listener accepts when the ACK (sent with this side's first bytes)
    /// arrives, half an RTT later.
    ///
    /// # Errors
    /// [`Error::ConnectionRefused`] after one RTT if nothing listens there
    /// or its accept queue is full.
    pub async fn connect(&self, to: SocketAddr) -> Result<SimStream, Error> {
        let inner = &self.network.inner;
        let now = Instant::now();
        let forward = inner.link(self.ip, to.ip()).delay;
        let back = inner.link(to.ip(), self.ip).delay;
        let (syn_at, syn_ack_at, ack_at) = (
            now + forward,
            now + forward + back,
            now + 2 * forward + back,
        );
        let (local, listener) = {
            let mut state = inner.lock();
            let local = self.ephemeral(&mut state);
            (local, state.listeners.get(&to).cloned())
        };
        // The handshake's segments carry no payload; each is one flight.
        let control = |from, to, sent, delivered, label: &str| {
            inner.record(Transmission {
                carrier: Carrier::Stream,
                from,
                to,
                bytes: 0,
                sent,
                delivered: Some(delivered),
                label: Some(Arc::from(label)),
            });
        };
        control(local, to, now, syn_at, "SYN");
        let accepted = listener.and_then(|listener| {
            let (dialer, listener_side) = SimStream::pair(inner.clone(), local, to);
            let pending = PendingConnection {
                ready_at: ack_at,
                stream: listener_side,
                peer: local,
            };
            listener.try_send(pending).ok().map(|()| dialer)
        });
        let reply = if accepted.is_some() { "SYN-ACK" } else { "RST" };
        control(to, local, syn_at, syn_ack_at, reply);
        tokio::time::sleep_until(syn_ack_at).await;
        let stream = accepted.ok_or(Error::ConnectionRefused(to))?;
        control(local, to, syn_ack_at, ack_at, "ACK");
        Ok(stream)
    }

    /// Binds a datagram socket on `port` (0: an ephemeral port), usable as
    /// a quinn socket through `quinn::Endpoint::new_with_abstract_socket`.
    ///
    /// # Errors
    /// [`Error::AddrInUse`].
    pub fn bind_udp(&self, port: u16) -> Result<Arc<SimUdpSocket>, Error> {
        let mut state = self.network.inner.lock();
        state.sockets.retain(|_, socket| socket.strong_count() > 0);
        let addr = if port == 0 {
            self.ephemeral(&mut state)
        } else {
            SocketAddr::new(self.ip, port)
        };
        if state.sockets.contains_key(&addr) {
            return Err(Error::AddrInUse(addr));
        }
        let socket = Arc::new(SimUdpSocket::new(self.network.inner.clone(), addr));
        state.sockets.insert(addr, Arc::downgrade(&socket));
        Ok(socket)
    }
}

impl Inner {
    pub(crate) fn unlisten(&self, addr: SocketAddr) {
        self.lock().listeners.remove(&addr);
    }
}
