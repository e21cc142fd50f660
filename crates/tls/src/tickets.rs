//! TLS 1.3 session tickets, kept per server peer id.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use libp2p_identity::PeerId;
use rustls::{
    NamedGroup,
    client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue},
    pki_types::ServerName,
};

use crate::dial::{DialState, lock};

/// The default number of server peers whose tickets a store keeps.
pub const DEFAULT_TICKET_PEERS: usize = 1024;

/// Tickets kept per server peer id (rustls servers send two per connection
/// by default).
pub const TICKETS_PER_PEER: usize = 4;

/// TLS 1.3 session tickets by server peer id, bounded in peers and in
/// tickets per peer ([`TICKETS_PER_PEER`]); the least recently used peer
/// goes first (one with no tickets left before any other). Each ticket is
/// used once: a dial takes it out. [`TicketStore::stats`] counts, per peer,
/// the tickets received, stored, used and dropped.
///
/// rustls keys its own cache by server name, which libp2p does not use (no
/// SNI): a dial resumes only sessions of the peer it expects, and files the
/// tickets it receives under the server's peer id (see
/// [`Dial::peer_id`](crate::Dial::peer_id)).
#[derive(Debug)]
pub struct TicketStore {
    inner: Mutex<Shelves<Tls13ClientSessionValue>>,
}

impl TicketStore {
    /// A store for up to `capacity` peers (none at all if 0).
    pub fn new(capacity: usize) -> Self {
        TicketStore {
            inner: Mutex::new(Shelves::new(capacity)),
        }
    }

    /// How many tickets are stored for `peer`.
    pub fn tickets(&self, peer: &PeerId) -> usize {
        lock(&self.inner).len(peer)
    }

    /// What became of `peer`'s tickets since the store last made room for
    /// it (all zero for a peer it does not know, or evicted).
    pub fn stats(&self, peer: &PeerId) -> TicketStats {
        lock(&self.inner).stats(peer)
    }

    /// Forgets every ticket.
    pub fn clear(&self) {
        lock(&self.inner).clear();
    }
}

impl Default for TicketStore {
    /// A store for [`DEFAULT_TICKET_PEERS`] peers.
    fn default() -> Self {
        Self::new(DEFAULT_TICKET_PEERS)
    }
}

/// What became of one server peer's tickets in a [`TicketStore`]. Every
/// ticket received is stored, used or dropped:
/// `received == stored + used + dropped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketStats {
    /// Tickets the peer issued to this store.
    pub received: u64,
    /// Tickets stored now.
    pub stored: u64,
    /// Tickets taken by a dial to resume a session: each once.
    pub used: u64,
    /// Tickets dropped unused: the oldest, when more than
    /// [`TICKETS_PER_PEER`] arrived.
    pub dropped: u64,
}

/// Items by peer: at most `capacity` peers, least recently used evicted
/// first (one with no items before any other), at most
/// [`TICKETS_PER_PEER`] items each, oldest dropped first.
#[derive(Debug)]
struct Shelves<T> {
    capacity: usize,
    clock: u64,
    peers: HashMap<PeerId, Shelf<T>>,
}

/// One peer's items, when it was last used, and what became of its items.
#[derive(Debug)]
struct Shelf<T> {
    used: u64,
    items: VecDeque<T>,
    stats: TicketStats,
}

impl<T> Default for Shelf<T> {
    fn default() -> Self {
        Shelf {
            used: 0,
            items: VecDeque::new(),
            stats: TicketStats::default(),
        }
    }
}

impl<T> Shelves<T> {
    fn new(capacity: usize) -> Self {
        Shelves {
            capacity,
            clock: 0,
            peers: HashMap::new(),
        }
    }

    fn len(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |shelf| shelf.items.len())
    }

    fn stats(&self, peer: &PeerId) -> TicketStats {
        self.peers
            .get(peer)
            .map_or_else(TicketStats::default, |shelf| TicketStats {
                stored: shelf.items.len() as u64,
                ..shelf.stats
            })
    }

    fn clear(&mut self) {
        self.peers.clear();
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn insert(&mut self, peer: PeerId, item: T) {
        if self.capacity == 0 {
            return;
        }
        let now = self.tick();
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.capacity {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, shelf)| (!shelf.items.is_empty(), shelf.used))
                .map(|(peer, _)| *peer);
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        let shelf = self.peers.entry(peer).or_default();
        shelf.used = now;
        shelf.stats.received += 1;
        if shelf.items.len() == TICKETS_PER_PEER {
            shelf.items.pop_front();
            shelf.stats.dropped += 1;
        }
        shelf.items.push_back(item);
    }

    /// The newest item of `peer` (it carries the freshest parameters),
    /// removed. The peer keeps its place (and its counts) until evicted.
    fn take(&mut self, peer: &PeerId) -> Option<T> {
        let now = self.tick();
        let shelf = self.peers.get_mut(peer)?;
        shelf.used = now;
        let item = shelf.items.pop_back()?;
        shelf.stats.used += 1;
        Some(item)
    }
}

/// One dial's view of a [`TicketStore`], as rustls sees it: the dial
/// resumes only sessions of the peer it expects, and files new tickets
/// under the server's peer id.
#[derive(Debug)]
pub(crate) struct DialTickets {
    pub(crate) store: Arc<TicketStore>,
    pub(crate) dial: Arc<DialState>,
}

impl ClientSessionStore for DialTickets {
    fn set_kx_hint(&self, _server_name: ServerName<'static>, _group: NamedGroup) {}

    fn kx_hint(&self, _server_name: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }

    fn set_tls12_session(
        &self,
        _server_name: ServerName<'static>,
        _value: Tls12ClientSessionValue,
    ) {
    }

    fn tls12_session(&self, _server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _server_name: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        _server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        // Tickets come after the handshake: the server's peer id is decided.
        if let Some(peer) = self.dial.peer_id() {
            lock(&self.store.inner).insert(peer, value);
        }
    }

    fn take_tls13_ticket(
        &self,
        _server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let expected = self.dial.expected()?;
        lock(&self.store.inner).take(&expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_taken_once_newest_first() {
        let mut shelves = Shelves::new(2);
        let peer = PeerId::random();
        shelves.insert(peer, 1);
        shelves.insert(peer, 2);
        assert_eq!(shelves.len(&peer), 2);
        assert_eq!(shelves.take(&peer), Some(2));
        assert_eq!(shelves.take(&peer), Some(1));
        assert_eq!(shelves.take(&peer), None);
        assert_eq!(shelves.len(&peer), 0);
        assert_eq!(
            shelves.stats(&peer),
            TicketStats {
                received: 2,
                stored: 0,
                used: 2,
                dropped: 0
            }
        );
    }

    #[test]
    fn a_peer_keeps_its_newest_tickets() {
        let mut shelves = Shelves::new(1);
        let peer = PeerId::random();
        for item in 0..TICKETS_PER_PEER + 2 {
            shelves.insert(peer, item);
        }
        assert_eq!(shelves.len(&peer), TICKETS_PER_PEER);
        let stats = shelves.stats(&peer);
        assert_eq!(
            (stats.received, stats.dropped),
            (TICKETS_PER_PEER as u64 + 2, 2)
        );
        assert_eq!(shelves.take(&peer), Some(TICKETS_PER_PEER + 1));
        let oldest = (0..TICKETS_PER_PEER)
            .filter_map(|_| shelves.take(&peer))
            .last();
        assert_eq!(oldest, Some(2));
    }

    #[test]
    fn the_least_recently_used_peer_goes_first() {
        let mut shelves = Shelves::new(2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        shelves.insert(a, 1);
        shelves.insert(a, 2);
        shelves.insert(b, 1);
        // Using `a` makes `b` the least recently used.
        assert_eq!(shelves.take(&a), Some(2));
        shelves.insert(c, 1);
        assert_eq!(shelves.len(&a), 1);
        assert_eq!(shelves.len(&b), 0);
        assert_eq!(shelves.len(&c), 1);
    }

    #[test]
    fn a_peer_without_items_is_evicted_first() {
        let mut shelves = Shelves::new(2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        shelves.insert(a, 1);
        shelves.insert(b, 1);
        // `a` is the least recently used, but `b` has nothing left.
        assert_eq!(shelves.take(&b), Some(1));
        shelves.insert(c, 1);
        assert_eq!(shelves.len(&a), 1);
        assert_eq!(shelves.stats(&b), TicketStats::default());
    }

    #[test]
    fn a_store_of_no_peers_keeps_nothing() {
        let mut shelves = Shelves::new(0);
        let peer = PeerId::random();
        shelves.insert(peer, 1);
        assert_eq!(shelves.len(&peer), 0);
    }
}
