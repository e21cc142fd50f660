//! The emulated network: hosts, addresses, links and the shared recorder.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};

use crate::{
    Error, LinkConfig, Recorder,
    datagram::{Datagrams, SimUdpSocket},
    fast_open::{ListenerEntry, PendingSyn, SharedJar},
    link::{Links, Transmission},
    recorder::{Carrier, DEFAULT_RECORD_CAPACITY},
    stream::{PendingConnection, SimStream, StreamListener},
};

/// The label of a datagram sent with [`Network::inject_datagram`].
pub const INJECTED: &str = "injected";

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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    links: Arc<Links>,
    datagrams: Arc<Datagrams>,
    state: Mutex<State>,
    /// TCP Fast Open: the dialers' cookies and the servers' keys.
    fast_open: SharedJar,
}

/// Who holds which address, and the next ephemeral port of each host.
#[derive(Debug, Default)]
struct State {
    next_port: HashMap<IpAddr, u16>,
    listeners: HashMap<SocketAddr, ListenerEntry>,
}

/// Builds a [`Network`] with per-direction links.
#[derive(Debug, Clone)]
pub struct NetworkBuilder {
    default_link: LinkConfig,
    links: HashMap<(IpAddr, IpAddr), LinkConfig>,
    seed: u64,
    record_capacity: usize,
    payload_capacity: usize,
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

    /// How many bytes of payload the flight recorder keeps, in all (none by
    /// default: records carry sizes only). Records made once the budget is
    /// spent carry no payload ([`Record::payload`](crate::Record::payload)
    /// is `None`). A capture of a short exchange, to replay some of it with
    /// [`Network::inject_datagram`], needs a few kilobytes.
    pub fn payload_capacity(mut self, bytes: usize) -> Self {
        self.payload_capacity = bytes;
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
        let links = Arc::new(Links::new(
            self.default_link,
            self.links,
            self.seed,
            Recorder::new(self.record_capacity, self.payload_capacity),
        ));
        Ok(Network {
            inner: Arc::new(Inner {
                datagrams: Arc::new(Datagrams::new(links.clone())),
                links,
                state: Mutex::new(State::default()),
                fast_open: SharedJar::default(),
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
            payload_capacity: 0,
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
        self.inner.links.link(from, to)
    }

    /// The round-trip time between two hosts: the sum of both one-way delays.
    pub fn rtt(&self, a: IpAddr, b: IpAddr) -> Duration {
        self.link(a, b).delay + self.link(b, a).delay
    }

    /// The flight recorder shared by every link of this network.
    pub fn recorder(&self) -> &Recorder {
        &self.inner.links.recorder
    }

    /// Time since the network was built.
    pub fn elapsed(&self) -> Duration {
        self.inner.links.start.elapsed()
    }

    /// Sends `data` to `to` as a datagram from `from`, which no socket need
    /// hold: what an attacker on the path does when it replays a recorded
    /// datagram (see [`Record::payload`](crate::Record::payload)) or forges
    /// a source address. The datagram crosses the link from `from`'s host
    /// to `to`'s like any other (delay, bandwidth, loss, MTU) and is
    /// recorded with the label [`INJECTED`]. Answers sent to `from` reach
    /// a socket bound there, if any, and are lost otherwise.
    pub fn inject_datagram(&self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        self.inner
            .datagrams
            .send(from, to, data, Some(Arc::from(INJECTED)));
    }

    /// Changes the TCP Fast Open key of host `server`: the cookies it gave
    /// out before are refused (a dialer's next SYN data is not taken, and
    /// it gets a new cookie), as after a key rotation or when another
    /// machine answers at the address.
    pub fn rotate_fast_open_key(&self, server: IpAddr) {
        crate::fast_open::lock(&self.inner.fast_open).rotate(server);
    }

    /// Whether host `client` holds a TCP Fast Open cookie for host
    /// `server`.
    pub fn holds_fast_open_cookie(&self, client: IpAddr, server: IpAddr) -> bool {
        crate::fast_open::lock(&self.inner.fast_open).holds(client, server)
    }
}

impl Inner {
    /// The address table, without the listeners dropped since it was last
    /// locked: a dropped listener closes its accept queue, and its address
    /// is free from then on.
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.listeners.retain(|_, entry| !entry.queue.is_closed());
        state
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
            let taken =
                state.listeners.contains_key(&addr) || self.network.inner.datagrams.is_bound(addr);
            if !taken {
                return addr;
            }
        }
    }

    /// Listens for stream connections on `port` (0: an ephemeral port).
    ///
    /// # Errors
    /// [`Error::AddrInUse`].
    pub fn listen(&self, port: u16) -> Result<StreamListener, Error> {
        self.listen_with(port, false)
    }

    /// Listens on `port` with TCP Fast Open on (`TCP_FASTOPEN` on a Linux
    /// listening socket): it issues cookies, and accepts a connection whose
    /// SYN carries data with a valid cookie as soon as the SYN arrives, its
    /// data readable at once (see [`Host::connect_fast_open`]).
    ///
    /// # Errors
    /// [`Error::AddrInUse`].
    pub fn listen_fast_open(&self, port: u16) -> Result<StreamListener, Error> {
        self.listen_with(port, true)
    }

    fn listen_with(&self, port: u16, fast_open: bool) -> Result<StreamListener, Error> {
        let mut state = self.network.inner.lock();
        let addr = if port == 0 {
            self.ephemeral(&mut state)
        } else {
            SocketAddr::new(self.ip, port)
        };
        if state.listeners.contains_key(&addr) {
            return Err(Error::AddrInUse(addr));
        }
        let (queue, rx) = mpsc::channel(ACCEPT_BACKLOG);
        state
            .listeners
            .insert(addr, ListenerEntry { queue, fast_open });
        Ok(StreamListener::new(addr, rx))
    }

    /// Opens a stream connection to `to` with TCP Fast Open, as a Linux
    /// socket with `TCP_FASTOPEN_CONNECT` does: it returns at once, and the
    /// SYN leaves with the first write (or shutdown), carrying up to
    /// [`MAX_SYN_DATA`](crate::MAX_SYN_DATA) of its bytes if this host
    /// holds a valid cookie for `to` and the listener has Fast Open on; a
    /// plain handshake otherwise, the bytes following it. Reading before
    /// the first write waits, as on Linux: nothing has been sent. See the
    /// [`fast_open`](crate::fast_open) module for the whole model.
    ///
    /// # Errors
    /// [`Error::ConnectionRefused`] after one RTT if nothing listens there
    /// (Linux reports it on the first read or write instead).
    pub async fn connect_fast_open(&self, to: SocketAddr) -> Result<SimStream, Error> {
        let inner = &self.network.inner;
        let (local, listener) = self.reserve(to);
        let Some(listener) = listener else {
            return self.handshake(local, to, None).await;
        };
        let (dialer, listener_side) = SimStream::pair(inner.links.clone(), local, to);
        Ok(dialer.with_pending_syn(PendingSyn {
            links: inner.links.clone(),
            jar: inner.fast_open.clone(),
            listener,
            listener_side,
            local,
            to,
        }))
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
        let (local, listener) = self.reserve(to);
        self.handshake(local, to, listener).await
    }

    /// A fresh local address to dial `to` from, and the listener there, if
    /// any.
    fn reserve(&self, to: SocketAddr) -> (SocketAddr, Option<ListenerEntry>) {
        let mut state = self.network.inner.lock();
        let local = self.ephemeral(&mut state);
        (local, state.listeners.get(&to).cloned())
    }

    /// TCP's three-way handshake from `local` to `listener` at `to` (a
    /// reset if there is none): see [`Host::connect`].
    async fn handshake(
        &self,
        local: SocketAddr,
        to: SocketAddr,
        listener: Option<ListenerEntry>,
    ) -> Result<SimStream, Error> {
        let links = &self.network.inner.links;
        let now = Instant::now();
        let forward = links.link(self.ip, to.ip()).delay;
        let back = links.link(to.ip(), self.ip).delay;
        let (syn_at, syn_ack_at, ack_at) = (
            now + forward,
            now + forward + back,
            now + 2 * forward + back,
        );
        // The handshake's segments carry no payload; each is one flight.
        let control = |from, to, sent, delivered, label: &str| {
            links.record(Transmission {
                carrier: Carrier::Stream,
                from,
                to,
                bytes: 0,
                sent,
                delivered: Some(delivered),
                label: Some(Arc::from(label)),
                payload: &[],
            });
        };
        control(local, to, now, syn_at, "SYN");
        let accepted = listener.and_then(|listener| {
            let (dialer, listener_side) = SimStream::pair(links.clone(), local, to);
            let pending = PendingConnection {
                ready_at: ack_at,
                stream: listener_side,
                peer: local,
            };
            listener.queue.try_send(pending).ok().map(|()| dialer)
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
        let datagrams = &self.network.inner.datagrams;
        datagrams.forget_dropped();
        let addr = if port == 0 {
            self.ephemeral(&mut state)
        } else {
            SocketAddr::new(self.ip, port)
        };
        datagrams.bind(addr)
    }
}
