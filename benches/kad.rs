//! Kademlia lookups per stack: a network of stock rust-libp2p Swarms
//! (libp2p-kad) over netsim links in virtual time, each Swarm on one stack,
//! bootstrapped, then a batch of `get_closest_peers` and `get_record`
//! queries, each started with no connection open, as after an idle
//! timeout: every peer a lookup asks is dialed afresh, so what a stack
//! spends on setting up a connection is paid on every hop.
//!
//! The method, in the order [`run`] follows it:
//! 1. One Swarm per node on its own netsim host; kad in server mode with
//!    its defaults (k = 20, α = 3), except that no job runs in the
//!    background (periodic bootstrap, replication, republication, caching of
//!    found records), so that the measured queries are alone on the network.
//!    The listen address a real node learns from Identify is taken from the
//!    run's directory when kad reports an unroutable peer, so Identify's own
//!    streams are not part of the measure.
//! 2. Bootstrap: node 0 is the bootstrap node; every other node in turn adds
//!    its address and bootstraps, then every node bootstraps once more.
//! 3. [`Setup::records`] records are put (quorum one) from chosen nodes.
//! 4. Every connection is closed. Two passes of the same queries follow,
//!    each query from a node that does not hold what it asks for, with
//!    every connection closed before each query. The first pass leaves what
//!    a stack may keep of peers it met (QUIC session tickets); the second is
//!    measured. A lookup's latency runs from the query's start to its last
//!    step (`get_closest_peers`) or to the first record found
//!    (`get_record`).
//!
//! On a network whose links all have one RTT ([`Paths::Uniform`]) a
//! latency divided by the RTT is the number of round trips on the lookup's
//! critical path. [`Paths::Cities`] draws per-link delays from a documented
//! geographic model instead.

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroUsize,
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    core::upgrade::Version,
    identity::Keypair,
    kad::{
        self, Caching, GetRecordOk, Mode, QueryId, QueryResult, Quorum, Record, RecordKey,
        store::MemoryStore,
    },
    swarm::SwarmEvent,
};
use onetrip_netsim::{LinkConfig, Network};
use onetrip_stack::{Layering, Preset, QuicLayering, TransportKind, multiaddr};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::{
    baseline::BoxError,
    swarm::{Libp2pTcp, build, libp2p_transport, onetrip_transport},
};

/// The stacks compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// rust-libp2p's own TCP stacks.
    Libp2p(Libp2pTcp),
    /// onetrip's transport with a preset, `V1Lazy` substreams.
    Onetrip(Preset),
}

impl Stack {
    /// The rows of the table, rust-libp2p's first. In a Swarm the stream
    /// protocols are the Swarm's to negotiate (`V1Lazy` here), so `quic`
    /// would be `quic-optimistic` again.
    pub const ALL: [Stack; 6] = [
        Stack::Libp2p(Libp2pTcp::Defaults),
        Stack::Libp2p(Libp2pTcp::TlsLazySubstreams),
        Stack::Onetrip(Preset::Tcp(Layering::TCP_ONETRIP)),
        Stack::Onetrip(Preset::Tcp(Layering::TCP_TLS_ONETRIP)),
        Stack::Onetrip(Preset::Quic(QuicLayering::QUIC_OPTIMISTIC)),
        Stack::Onetrip(Preset::Quic(QuicLayering::QUIC_0RTT)),
    ];

    /// Its name in the table.
    pub fn name(self) -> String {
        match self {
            Stack::Libp2p(Libp2pTcp::Defaults) => {
                "rust-libp2p defaults (TCP, Noise, yamux, `V1` substreams)".into()
            }
            Stack::Libp2p(Libp2pTcp::LazySubstreams) => {
                "rust-libp2p TCP, Noise, `V1Lazy` substreams".into()
            }
            Stack::Libp2p(Libp2pTcp::TlsLazySubstreams) => {
                "rust-libp2p at its best (TCP, TLS, yamux, `V1Lazy` substreams)".into()
            }
            Stack::Onetrip(preset) if preset.sends_early_data() => {
                format!("onetrip `{preset}`, tickets from the first pass")
            }
            Stack::Onetrip(preset) => format!("onetrip `{preset}`"),
        }
    }

    fn transport(self) -> TransportKind {
        match self {
            Stack::Libp2p(_) => TransportKind::Tcp,
            Stack::Onetrip(preset) => preset.transport(),
        }
    }
}

/// The links between the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paths {
    /// Every link has this round-trip time.
    Uniform(Duration),
    /// Per-link delays from [`cities`]' model, with the run's seed.
    Cities,
}

/// What a run does, whatever its paths.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Nodes in the network.
    pub nodes: usize,
    /// Queries of each kind per pass.
    pub queries: usize,
    /// Records put before the queries.
    pub records: usize,
    /// The seed of what is drawn: the cities model, the records'
    /// publishers, the queries' origins.
    pub seed: u64,
}

/// One measured query.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    /// From its start to its result.
    pub latency: Duration,
    /// The requests it sent (kad's count).
    pub requests: u32,
}

/// What a run measured for one stack.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The measured pass's `get_closest_peers` queries.
    pub closest: Vec<Lookup>,
    /// The measured pass's `get_record` queries.
    pub records: Vec<Lookup>,
    /// The smallest routing table after bootstrap.
    pub min_routing_table: usize,
}

/// A node's IP address.
fn node_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        0,
        u8::try_from(index / 250).unwrap_or(u8::MAX),
        u8::try_from(index % 250 + 1).unwrap_or(u8::MAX),
    ))
}

/// A node's listen address on `transport`.
fn node_addr(index: usize, transport: TransportKind) -> Multiaddr {
    multiaddr(transport, SocketAddr::new(node_ip(index), 4001))
}

fn peer_id(key: Keypair) -> PeerId {
    key.public().to_peer_id()
}

fn node_key(index: usize) -> Keypair {
    let mut seed = [0x6b; 32];
    seed[..8].copy_from_slice(&(index as u64).to_be_bytes());
    Keypair::ed25519_from_bytes(seed).expect("32 bytes")
}

/// Where the nodes of [`Paths::Cities`] are: places with many well-connected
/// hosts on every continent (latitude, longitude in degrees).
pub const CITIES: [(&str, f64, f64); 12] = [
    ("Frankfurt", 50.11, 8.68),
    ("London", 51.51, -0.13),
    ("Amsterdam", 52.37, 4.90),
    ("Ashburn", 39.04, -77.49),
    ("New York", 40.71, -74.01),
    ("San Francisco", 37.77, -122.42),
    ("São Paulo", -23.55, -46.63),
    ("Tokyo", 35.68, 139.69),
    ("Singapore", 1.35, 103.82),
    ("Sydney", -33.87, 151.21),
    ("Mumbai", 19.08, 72.88),
    ("Johannesburg", -26.20, 28.05),
];

/// Light in fibre, km per ms (two thirds of c).
pub const FIBRE_KM_PER_MS: f64 = 200.0;
/// How much longer a route is than the great circle.
pub const ROUTE_STRETCH: f64 = 1.4;
/// A node's access delay, one way, drawn uniformly in this range (ms).
pub const ACCESS_MS: (u64, u64) = (1, 10);

fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// The one-way delay between every pair of `nodes` under the cities model
/// with `seed`: each node is placed in one of [`CITIES`] (uniformly) and
/// given an access delay (uniform in [`ACCESS_MS`]); a link's one-way delay
/// is both access delays plus the great-circle distance between their
/// cities, stretched by [`ROUTE_STRETCH`], at [`FIBRE_KM_PER_MS`], rounded
/// to whole milliseconds (netsim's clock ticks in them). Symmetric.
pub fn cities(nodes: usize, seed: u64) -> Vec<Vec<Duration>> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let placed: Vec<(usize, u64)> = (0..nodes)
        .map(|_| {
            let city = rng.random_range(0..CITIES.len());
            (city, rng.random_range(ACCESS_MS.0..=ACCESS_MS.1))
        })
        .collect();
    placed
        .iter()
        .map(|&(city_a, access_a)| {
            placed
                .iter()
                .map(|&(city_b, access_b)| {
                    let (_, lat_a, lon_a) = CITIES[city_a];
                    let (_, lat_b, lon_b) = CITIES[city_b];
                    let km = great_circle_km((lat_a, lon_a), (lat_b, lon_b));
                    let ms =
                        (km * ROUTE_STRETCH / FIBRE_KM_PER_MS).round() as u64 + access_a + access_b;
                    Duration::from_millis(ms)
                })
                .collect()
        })
        .collect()
}

/// The one-way delay between every pair of nodes.
fn delays(setup: &Setup, paths: Paths) -> Vec<Vec<Duration>> {
    match paths {
        Paths::Uniform(rtt) => vec![vec![rtt / 2; setup.nodes]; setup.nodes],
        Paths::Cities => cities(setup.nodes, setup.seed),
    }
}

/// What the run asks of a node.
enum Command {
    /// Adds a peer and bootstraps; answers when the bootstrap is done.
    Bootstrap(
        Option<(PeerId, Multiaddr)>,
        oneshot::Sender<Result<(), String>>,
    ),
    /// Puts a record; answers when the query is done.
    Put(Record, oneshot::Sender<Result<(), String>>),
    /// Whether the node holds a record with this key.
    Holds(RecordKey, oneshot::Sender<bool>),
    /// Looks up the closest peers to a peer id.
    Closest(PeerId, oneshot::Sender<Result<Lookup, String>>),
    /// Looks up a record.
    Get(RecordKey, oneshot::Sender<Result<Lookup, String>>),
    /// Closes every connection; answers with how many are still open.
    Disconnect(oneshot::Sender<usize>),
    /// The routing table's size and the queries the node ran on its own.
    Stats(oneshot::Sender<(usize, usize)>),
}

/// A query the run started, and whom to tell of its end.
enum Pending {
    /// A bootstrap or a put, answered at its last step.
    Done(oneshot::Sender<Result<(), String>>),
    /// A lookup, answered at its result.
    Lookup(Instant, oneshot::Sender<Result<Lookup, String>>),
    /// A lookup answered, until kad ends it.
    Answered,
}

type KadSwarm = Swarm<kad::Behaviour<MemoryStore>>;

fn behaviour(key: &Keypair) -> kad::Behaviour<MemoryStore> {
    let peer = key.public().to_peer_id();
    let mut config = kad::Config::new(kad::PROTOCOL_NAME);
    config
        .set_periodic_bootstrap_interval(None)
        .set_caching(Caching::Disabled)
        .set_replication_interval(None)
        .set_publication_interval(None)
        .set_provider_publication_interval(None)
        .set_parallelism(NonZeroUsize::new(3).expect("3 > 0"));
    let mut behaviour = kad::Behaviour::with_config(peer, MemoryStore::new(peer), config);
    behaviour.set_mode(Some(Mode::Server));
    behaviour
}

/// One node: its Swarm and the run's queries in flight.
struct Node {
    swarm: KadSwarm,
    pending: HashMap<QueryId, Pending>,
    /// Queries kad finished that the run did not start.
    background: usize,
    directory: Arc<HashMap<PeerId, Multiaddr>>,
}

impl Node {
    /// Runs the node until the run drops its command sender.
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => {
                    if let SwarmEvent::Behaviour(event) = event {
                        self.on_kad(event);
                    }
                }
            }
        }
    }

    fn handle(&mut self, command: Command) {
        let kad = self.swarm.behaviour_mut();
        match command {
            Command::Bootstrap(peer, done) => {
                if let Some((peer, addr)) = peer {
                    kad.add_address(&peer, addr);
                }
                match kad.bootstrap() {
                    Ok(id) => {
                        self.pending.insert(id, Pending::Done(done));
                    }
                    Err(err) => {
                        let _ = done.send(Err(err.to_string()));
                    }
                }
            }
            Command::Put(record, done) => match kad.put_record(record, Quorum::One) {
                Ok(id) => {
                    self.pending.insert(id, Pending::Done(done));
                }
                Err(err) => {
                    let _ = done.send(Err(format!("{err:?}")));
                }
            },
            Command::Holds(key, answer) => {
                use kad::store::RecordStore as _;
                let _ = answer.send(kad.store_mut().get(&key).is_some());
            }
            Command::Closest(target, done) => {
                let id = kad.get_closest_peers(target);
                self.pending
                    .insert(id, Pending::Lookup(Instant::now(), done));
            }
            Command::Get(key, done) => {
                let id = kad.get_record(key);
                self.pending
                    .insert(id, Pending::Lookup(Instant::now(), done));
            }
            Command::Disconnect(answer) => {
                let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                for peer in peers {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                let _ = answer.send(self.swarm.connected_peers().count());
            }
            Command::Stats(answer) => {
                let table = kad.kbuckets().map(|bucket| bucket.num_entries()).sum();
                let _ = answer.send((table, self.background));
            }
        }
    }

    /// Answers the run when `pending` has its result; what is still to
    /// come of it otherwise.
    fn progressed(
        &mut self,
        id: QueryId,
        pending: Pending,
        result: QueryResult,
        stats: &kad::QueryStats,
        last: bool,
    ) -> Option<Pending> {
        let answer = match pending {
            Pending::Answered => return (!last).then_some(Pending::Answered),
            Pending::Done(done) if !last => return Some(Pending::Done(done)),
            Pending::Done(done) => {
                let result = match result {
                    QueryResult::Bootstrap(result) => {
                        result.map(drop).map_err(|e| format!("{e:?}"))
                    }
                    QueryResult::PutRecord(result) => {
                        result.map(drop).map_err(|e| format!("{e:?}"))
                    }
                    other => Err(format!("unexpected {other:?}")),
                };
                let _ = done.send(result);
                return None;
            }
            Pending::Lookup(start, done) => match result {
                QueryResult::GetClosestPeers(Ok(_)) if !last => {
                    return Some(Pending::Lookup(start, done));
                }
                QueryResult::GetClosestPeers(Ok(_))
                | QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(_))) => {
                    let _ = done.send(Ok(Lookup {
                        latency: start.elapsed(),
                        requests: stats.num_requests(),
                    }));
                    Pending::Answered
                }
                other => {
                    let _ = done.send(Err(format!("{other:?}")));
                    Pending::Answered
                }
            },
        };
        if last {
            return None;
        }
        // A record is found: the lookup need go no further.
        if let Some(mut query) = self.swarm.behaviour_mut().query_mut(&id) {
            query.finish();
        }
        Some(answer)
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::UnroutablePeer { peer } => {
                if let Some(addr) = self.directory.get(&peer) {
                    self.swarm.behaviour_mut().add_address(&peer, addr.clone());
                }
            }
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                stats,
                step,
            } => {
                let Some(pending) = self.pending.remove(&id) else {
                    self.background += usize::from(step.last);
                    return;
                };
                if let Some(pending) = self.progressed(id, pending, result, &stats, step.last) {
                    self.pending.insert(id, pending);
                }
            }
            _ => {}
        }
    }
}

/// Sends `command` to a node and waits for its answer.
async fn ask<T>(
    node: &mpsc::UnboundedSender<Command>,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, BoxError> {
    let (tx, rx) = oneshot::channel();
    node.send(command(tx)).map_err(|_| "a node stopped")?;
    Ok(rx.await.map_err(|_| "a node stopped")?)
}

/// How long a connection stays open after its last request before the
/// run closes it: as an idle timeout would, it lets what follows a
/// response land. Session tickets do: rustls sends them once the client's
/// handshake is complete, which a 0-RTT response precedes by a round trip,
/// so a connection closed at its response would spend a ticket and get
/// none back.
const IDLE: Duration = Duration::from_secs(2);

/// The nodes of a run, by index.
struct Nodes(Vec<mpsc::UnboundedSender<Command>>);

impl Nodes {
    /// Lets what is in flight land ([`IDLE`]), then closes every
    /// connection of every node, and waits until none is left.
    async fn disconnect(&self) -> Result<(), BoxError> {
        tokio::time::sleep(IDLE).await;
        for _ in 0..30 {
            let mut open = 0;
            for node in &self.0 {
                open += ask(node, Command::Disconnect).await?;
            }
            if open == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err("connections still open 30 s after closing them".into())
    }

    /// The first node from `first` on (in index order, round) that does
    /// not hold the record `key`.
    async fn lacking(&self, first: usize, key: &RecordKey) -> Result<usize, BoxError> {
        let n = self.0.len();
        for origin in (first..first + n).map(|i| i % n) {
            if !ask(&self.0[origin], |answer| {
                Command::Holds(key.clone(), answer)
            })
            .await?
            {
                return Ok(origin);
            }
        }
        Err("every node holds the record".into())
    }

    /// The smallest routing table, and the queries kad ran on its own.
    async fn stats(&self) -> Result<(usize, usize), BoxError> {
        let (mut smallest, mut background) = (usize::MAX, 0);
        for node in &self.0 {
            let (table, ran) = ask(node, Command::Stats).await?;
            smallest = smallest.min(table);
            background += ran;
        }
        Ok((smallest, background))
    }
}

/// The queries of a pass, the same in both.
struct Queries {
    /// (origin, target) of each `get_closest_peers`.
    closest: Vec<(usize, PeerId)>,
    /// (first origin to try, key) of each `get_record`.
    records: Vec<(usize, RecordKey)>,
}

fn record_key(index: usize) -> RecordKey {
    RecordKey::new(&format!("/onetrip/kad/record/{index}"))
}

/// Runs `setup` for `stack`: see the module's method. Must run with a
/// paused clock.
///
/// # Errors
/// A Swarm that could not be built or listen, a query that failed, or kad
/// running queries of its own during the measured pass.
pub async fn run(stack: Stack, setup: &Setup, paths: Paths) -> Result<Outcome, BoxError> {
    let n = setup.nodes;
    if n < 2 || setup.records == 0 {
        return Err("a run needs two nodes and a record".into());
    }
    let delays = delays(setup, paths);
    let mut builder = Network::builder().record_capacity(1024);
    for (i, row) in delays.iter().enumerate() {
        for (j, delay) in row.iter().enumerate() {
            if i != j {
                builder = builder.link(node_ip(i), node_ip(j), LinkConfig::with_delay(*delay));
            }
        }
    }
    let network = builder.build()?;
    let keys: Vec<Keypair> = (0..n).map(node_key).collect();
    let peers: Vec<PeerId> = keys.iter().map(|key| peer_id(key.clone())).collect();
    let addrs: Vec<Multiaddr> = (0..n).map(|i| node_addr(i, stack.transport())).collect();
    let directory: Arc<HashMap<PeerId, Multiaddr>> =
        Arc::new(peers.iter().copied().zip(addrs.iter().cloned()).collect());

    let mut nodes = Vec::with_capacity(n);
    for (i, key) in keys.into_iter().enumerate() {
        let host = network.host(node_ip(i));
        let (transport, substreams) = match stack {
            Stack::Libp2p(tcp) => (libp2p_transport(&key, host, tcp)?, tcp.substreams()),
            Stack::Onetrip(preset) => (onetrip_transport(&key, host, preset)?, Version::V1Lazy),
        };
        let behaviour = behaviour(&key);
        let mut swarm = build(key, transport, behaviour, substreams)?;
        swarm.listen_on(addrs[i].clone())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let node = Node {
            swarm,
            pending: HashMap::new(),
            background: 0,
            directory: directory.clone(),
        };
        tokio::spawn(node.run(rx));
        nodes.push(tx);
    }
    let nodes = Nodes(nodes);

    // Bootstrap through node 0, then once more with everyone there.
    for node in &nodes.0[1..] {
        let bootstrap = Some((peers[0], addrs[0].clone()));
        ask(node, |done| Command::Bootstrap(bootstrap, done))
            .await?
            .map_err(|err| format!("bootstrap: {err}"))?;
    }
    for node in &nodes.0 {
        ask(node, |done| Command::Bootstrap(None, done))
            .await?
            .map_err(|err| format!("bootstrap: {err}"))?;
    }

    let mut rng = Pcg64Mcg::seed_from_u64(setup.seed);
    for index in 0..setup.records {
        let origin = rng.random_range(0..n);
        let record = Record::new(record_key(index), vec![index as u8; 64]);
        ask(&nodes.0[origin], |done| Command::Put(record, done))
            .await?
            .map_err(|err| format!("put_record: {err}"))?;
    }
    // Targets are the peer ids of nodes that are not there: as spread over
    // the key space as any.
    let queries = Queries {
        closest: (0..setup.queries)
            .map(|q| (rng.random_range(0..n), peer_id(node_key(n + q))))
            .collect(),
        records: (0..setup.queries)
            .map(|q| (rng.random_range(0..n), record_key(q % setup.records)))
            .collect(),
    };

    // Let any bootstrap kad scheduled on its own (on the wall clock) start
    // and end before the passes.
    std::thread::sleep(Duration::from_millis(600));
    tokio::time::sleep(Duration::from_secs(60)).await;
    nodes.disconnect().await?;
    let (min_routing_table, before) = nodes.stats().await?;

    let mut outcome = Outcome {
        closest: Vec::new(),
        records: Vec::new(),
        min_routing_table,
    };
    for pass in 0..2 {
        let measured = pass == 1;
        for (origin, target) in &queries.closest {
            nodes.disconnect().await?;
            let lookup = ask(&nodes.0[*origin], |done| Command::Closest(*target, done))
                .await?
                .map_err(|err| format!("get_closest_peers: {err}"))?;
            if measured {
                outcome.closest.push(lookup);
            }
        }
        for (first, key) in &queries.records {
            let origin = nodes.lacking(*first, key).await?;
            nodes.disconnect().await?;
            let lookup = ask(&nodes.0[origin], |done| Command::Get(key.clone(), done))
                .await?
                .map_err(|err| format!("get_record: {err}"))?;
            if measured {
                outcome.records.push(lookup);
            }
        }
    }
    let (_, after) = nodes.stats().await?;
    if after != before {
        return Err(format!(
            "kad ran {} queries of its own during the passes",
            after - before
        )
        .into());
    }
    Ok(outcome)
}

/// The `p`-th percentile (0–100) of `values`, nearest rank.
pub fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// One row of the table: a stack on both kinds of paths.
#[derive(Debug, Clone)]
pub struct Row {
    /// The stack.
    pub stack: Stack,
    /// On [`Paths::Uniform`] at [`UNIFORM_RTT`].
    pub uniform: Outcome,
    /// On [`Paths::Cities`].
    pub cities: Outcome,
}

fn rtts(latency: Duration, rtt: Duration) -> f64 {
    latency.as_secs_f64() / rtt.as_secs_f64()
}

fn mean_requests(lookups: &[Lookup]) -> f64 {
    lookups.iter().map(|l| f64::from(l.requests)).sum::<f64>() / lookups.len().max(1) as f64
}

/// The table, as Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| stack | `get_closest_peers` p50 / p90 (RTT) | ms, cities p50 / p90 | requests | \
         `get_record` p50 / p90 (RTT) | ms, cities p50 / p90 | requests |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let cell_rtt = |lookups: &[Lookup]| {
            let latencies: Vec<Duration> = lookups.iter().map(|l| l.latency).collect();
            format!(
                "{:.1} / {:.1}",
                rtts(percentile(&latencies, 50), UNIFORM_RTT),
                rtts(percentile(&latencies, 90), UNIFORM_RTT)
            )
        };
        let cell_ms = |lookups: &[Lookup]| {
            let latencies: Vec<Duration> = lookups.iter().map(|l| l.latency).collect();
            format!(
                "{} / {}",
                percentile(&latencies, 50).as_millis(),
                percentile(&latencies, 90).as_millis()
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} | {:.1} |",
            row.stack.name(),
            cell_rtt(&row.uniform.closest),
            cell_ms(&row.cities.closest),
            mean_requests(&row.uniform.closest),
            cell_rtt(&row.uniform.records),
            cell_ms(&row.cities.records),
            mean_requests(&row.uniform.records),
        );
    }
    out
}

/// The round-trip time of [`Paths::Uniform`] in the published table.
pub const UNIFORM_RTT: Duration = Duration::from_millis(100);

/// The published run: 50 nodes, 40 queries of each kind per pass, 10
/// records, seed 1.
pub const PUBLISHED: Setup = Setup {
    nodes: 50,
    queries: 40,
    records: 10,
    seed: 1,
};

/// Measures `stacks` on both kinds of paths, each run on a paused clock
/// runtime of its own, saying on stderr what it did.
///
/// # Errors
/// The first run that failed.
pub fn measure_rows(setup: &Setup, stacks: &[Stack]) -> Result<Vec<Row>, BoxError> {
    let mut rows = Vec::new();
    for &stack in stacks {
        let started = std::time::Instant::now();
        let runtime = onetrip_stack::measure::paused_runtime();
        let uniform = runtime.block_on(run(stack, setup, Paths::Uniform(UNIFORM_RTT)))?;
        let runtime = onetrip_stack::measure::paused_runtime();
        let cities = runtime.block_on(run(stack, setup, Paths::Cities))?;
        eprintln!(
            "kademlia: {} measured in {:.1} s",
            stack.name(),
            started.elapsed().as_secs_f64()
        );
        rows.push(Row {
            stack,
            uniform,
            cities,
        });
    }
    Ok(rows)
}

/// The RTTs between the nodes of the cities model: (p10, p50, p90).
pub fn cities_rtts(nodes: usize, seed: u64) -> (Duration, Duration, Duration) {
    let rtts: Vec<Duration> = cities(nodes, seed)
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().skip(i + 1).map(|d| *d * 2).collect::<Vec<_>>())
        .collect();
    (
        percentile(&rtts, 10),
        percentile(&rtts, 50),
        percentile(&rtts, 90),
    )
}

/// `spec/kademlia.md`: the method and the table.
pub fn spec_md(setup: &Setup, rows: &[Row]) -> String {
    let (p10, p50, p90) = cities_rtts(setup.nodes, setup.seed);
    let cities = CITIES
        .iter()
        .map(|(name, ..)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    let smallest = rows
        .iter()
        .map(|row| {
            row.uniform
                .min_routing_table
                .min(row.cities.min_routing_table)
        })
        .min()
        .unwrap_or_default();
    format!(
        "# Kademlia lookups per stack

<!-- Written by `cargo run --release -p onetrip-bench --bin kademlia`; do not edit. -->

A Kademlia node keeps many peers and sends each a few tiny requests: what
a lookup costs is mostly what a connection costs to set up, paid on every
hop. This table measures it with stock rust-libp2p Swarms running
libp2p-kad 0.49, each Swarm on one stack, over netsim links in virtual
time (`benches/kad.rs`).

## Method

- **{nodes} nodes**, one Swarm each, kad in server mode with its defaults
  (k = 20, α = 3). Nothing runs in the background: no periodic bootstrap,
  replication, republication or caching of found records. A node learns a
  peer's listen address from the run's directory when kad reports the
  peer unroutable, as a real node learns it from Identify; Identify's own
  streams are not measured. No node's routing table held fewer than
  {smallest} peers after the bootstrap.
- **Bootstrap**: every node in turn adds node 0 and bootstraps, then every
  node bootstraps again.
- **Records**: {records} records (64 bytes) put with quorum one.
- **Queries**: {queries} `get_closest_peers` for random keys and
  {queries} `get_record`, each from a node that does not hold the
  record. Every connection is closed before each query, {idle} s after
  the previous one ended, as an idle timeout would close it, so every peer
  a lookup asks is dialed afresh. The queries run twice; the second pass is
  measured, so a stack that keeps something of the peers it met (QUIC
  session tickets, for `quic-0rtt`) uses it.
- **Latency**: from the query's start to its last step
  (`get_closest_peers`) or to the first record found (`get_record`).
  \"requests\" is kad's count of requests per query, the mean.
- **Paths**, one run each:
  - *uniform*: every link {uniform} ms RTT. A latency in RTTs is the
    number of round trips on the lookup's critical path.
  - *cities*: each node placed in one of {cities} (uniformly, seed
    {seed}), with an access delay of {access_lo}–{access_hi} ms one way
    (uniform). A link's one-way delay is both access delays plus the
    great-circle distance between the two cities, {stretch}× longer as a
    route, at {fibre} km/ms (light in fibre), in whole milliseconds.
    RTTs between nodes: p10 {p10} ms, p50 {p50} ms, p90 {p90} ms.

Connections are TCP over netsim's stream links (one RTT for the SYN and
SYN-ACK) or QUIC over its datagram links. rust-libp2p's rows are its own
transport upgrade over the same links; onetrip's are
`onetrip_stack::libp2p::StreamUpgrade` (TCP) and
`onetrip_stack::libp2p::Transport` (QUIC), `V1Lazy` substreams.
rust-libp2p's QUIC (libp2p-quic) binds real UDP sockets and cannot run on
netsim's; fresh, it takes the 2 round trips of onetrip's `quic-optimistic`
to a first response ([round-trips.md](round-trips.md)), and it has no
0-RTT.

## Results

{table}
## Reading it

- A lookup's round trips are its waves of requests times what one request
  to a peer not connected costs: the TCP handshake, the security
  handshake, the muxer and the stream's protocol, then the request.
  Every node here knows most of the network, so `get_closest_peers` asks
  its closest known peers, then the rest of the k closest at once: two
  waves at the median, three at p90. `get_record` finds the record at the
  first wave.
- rust-libp2p's defaults spend 4 round trips per fresh request (`V1`
  substreams wait for the protocol's confirmation); at its best, 3, as
  onetrip's TCP presets: a tie. QUIC takes 2, and 1 with 0-RTT: the
  request leaves with the ClientHello, and lookups take half the time of
  fresh QUIC and a quarter of rust-libp2p's defaults.
- A 0-RTT connection must stay open a round trip past its response to
  get a new session ticket: rustls sends tickets once the client's
  handshake is complete. Closed at once, each such connection spends a
  ticket and gets none back, and after a few reconnects a peer's tickets
  are gone (about one dial in ten was a full handshake in a first version
  of this run, which closed connections as soon as a query ended).
- 0-RTT data can be replayed by the network; kad's requests are
  idempotent reads here, and the server accepts 0-RTT only when configured
  to (see [quic.md](quic.md)).

Regenerate: `cargo run --release -p onetrip-bench --bin kademlia`
(about four minutes on two cores).
",
        nodes = setup.nodes,
        idle = IDLE.as_secs(),
        records = setup.records,
        queries = setup.queries,
        uniform = UNIFORM_RTT.as_millis(),
        seed = setup.seed,
        access_lo = ACCESS_MS.0,
        access_hi = ACCESS_MS.1,
        stretch = ROUTE_STRETCH,
        fibre = FIBRE_KM_PER_MS,
        p10 = p10.as_millis(),
        p50 = p50.as_millis(),
        p90 = p90.as_millis(),
        table = markdown(rows),
    )
}
