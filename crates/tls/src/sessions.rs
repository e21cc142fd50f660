//! A server's resumable sessions: what makes a ticket single use.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    fmt,
    sync::Mutex,
};

use rustls::server::StoresServerSessions;

use crate::dial::lock;

/// How many sessions a server keeps for resumption by default (rustls'
/// own cache keeps 256).
pub const DEFAULT_SERVER_SESSIONS: usize = 1024;

/// A TLS 1.3 server's session state, kept in this process: each ticket it
/// issues names a session stored here, and resuming the session takes it
/// out, so a ticket resumes at most once. That is what refuses a replayed
/// ClientHello, and with it the 0-RTT data it carries: rustls accepts early
/// data only on a session resumed from such a store (RFC 8446, 8.1), never
/// on a stateless ticket.
///
/// The store is bounded: past its capacity the oldest unused sessions are
/// dropped (their tickets then resume nothing). It lives and dies with the
/// process: after a restart no earlier ticket resumes, and servers that
/// share no store (several processes behind one address) share no tickets.
/// Servers in one process share one store by sharing the `Arc`.
///
/// [`ServerSessions::stats`] counts what happened to the tickets: the
/// evidence the replay tests read. (Its `Debug` shows the counts, never a
/// session's secrets.)
pub struct ServerSessions {
    reusable: bool,
    inner: Mutex<Sessions>,
}

/// What a [`ServerSessions`] did with the tickets it issued and was shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Tickets issued: sessions stored for a later resumption.
    pub issued: u64,
    /// Tickets shown for the first time, and resumed.
    pub resumed: u64,
    /// Tickets shown again, and resumed again: replays let through. Only a
    /// store made with [`ServerSessions::dangerous_reusable`] does this.
    pub reused: u64,
    /// Tickets shown again, and refused because they were used: replays
    /// stopped. (A ticket used long ago, beyond the store's capacity, is
    /// counted as unknown.)
    pub spent: u64,
    /// Tickets shown that the store does not know (issued by another
    /// process, before a restart, or evicted), refused.
    pub unknown: u64,
    /// Sessions dropped unused to stay within the capacity.
    pub evicted: u64,
}

impl ServerSessions {
    /// A store of up to `capacity` sessions, each resumed at most once
    /// (none at all if 0: the server then issues no tickets).
    pub fn new(capacity: usize) -> Self {
        ServerSessions {
            reusable: false,
            inner: Mutex::new(Sessions::new(capacity)),
        }
    }

    /// **Dangerous**: a store whose sessions can be resumed any number of
    /// times, as with stateless tickets, but with early data still allowed.
    /// A server using it accepts a replayed ClientHello's 0-RTT data as
    /// often as it is replayed (within rustls' 60 s freshness window for the
    /// ticket's age). It exists so that the replay tests can show they see
    /// the attack; never serve with it.
    pub fn dangerous_reusable(capacity: usize) -> Self {
        ServerSessions {
            reusable: true,
            inner: Mutex::new(Sessions::new(capacity)),
        }
    }

    /// Whether each ticket resumes at most once (anything but
    /// [`ServerSessions::dangerous_reusable`]).
    pub fn is_single_use(&self) -> bool {
        !self.reusable
    }

    /// How many sessions are stored.
    pub fn len(&self) -> usize {
        lock(&self.inner).live.len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What happened to the tickets so far.
    pub fn stats(&self) -> SessionStats {
        lock(&self.inner).stats
    }
}

impl fmt::Debug for ServerSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sessions = lock(&self.inner);
        f.debug_struct("ServerSessions")
            .field("single_use", &!self.reusable)
            .field("capacity", &sessions.capacity)
            .field("stored", &sessions.live.len())
            .field("stats", &sessions.stats)
            .finish()
    }
}

impl Default for ServerSessions {
    /// A single-use store of [`DEFAULT_SERVER_SESSIONS`] sessions.
    fn default() -> Self {
        Self::new(DEFAULT_SERVER_SESSIONS)
    }
}

/// The sessions, by ticket, oldest first; and the tickets used lately.
struct Sessions {
    capacity: usize,
    next: u64,
    /// Ticket → (issue number, encoded session, times resumed).
    live: HashMap<Vec<u8>, (u64, Vec<u8>, u64)>,
    /// Issue number → ticket, for eviction in issue order.
    order: BTreeMap<u64, Vec<u8>>,
    /// The last `capacity` tickets used, to tell a replay from a stranger.
    spent: HashSet<Vec<u8>>,
    spent_order: VecDeque<Vec<u8>>,
    stats: SessionStats,
}

impl Sessions {
    fn new(capacity: usize) -> Self {
        Sessions {
            capacity,
            next: 0,
            live: HashMap::new(),
            order: BTreeMap::new(),
            spent: HashSet::new(),
            spent_order: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    fn put(&mut self, ticket: Vec<u8>, session: Vec<u8>) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if let Some((number, _, _)) = self.live.remove(&ticket) {
            self.order.remove(&number);
        }
        while self.live.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.live.remove(&oldest);
            self.stats.evicted += 1;
        }
        self.next += 1;
        self.order.insert(self.next, ticket.clone());
        self.live.insert(ticket, (self.next, session, 0));
        self.stats.issued += 1;
        true
    }

    /// The session `ticket` names, taken out unless `reusable`.
    fn take(&mut self, ticket: &[u8], reusable: bool) -> Option<Vec<u8>> {
        if reusable && let Some((_, session, uses)) = self.live.get_mut(ticket) {
            *uses += 1;
            if *uses == 1 {
                self.stats.resumed += 1;
            } else {
                self.stats.reused += 1;
            }
            return Some(session.clone());
        }
        let Some((number, session, _)) = self.live.remove(ticket) else {
            if self.spent.contains(ticket) {
                self.stats.spent += 1;
            } else {
                self.stats.unknown += 1;
            }
            return None;
        };
        self.order.remove(&number);
        self.stats.resumed += 1;
        if self.spent_order.len() >= self.capacity
            && let Some(oldest) = self.spent_order.pop_front()
        {
            self.spent.remove(&oldest);
        }
        self.spent.insert(ticket.to_vec());
        self.spent_order.push_back(ticket.to_vec());
        Some(session)
    }
}

impl StoresServerSessions for ServerSessions {
    fn put(&self, ticket: Vec<u8>, session: Vec<u8>) -> bool {
        lock(&self.inner).put(ticket, session)
    }

    /// TLS 1.2 session ids only, which these TLS 1.3 configurations never
    /// resume: a look, counted as nothing.
    fn get(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let sessions = lock(&self.inner);
        sessions
            .live
            .get(ticket)
            .map(|(_, session, _)| session.clone())
    }

    /// A TLS 1.3 resumption: rustls calls this for the ticket a ClientHello
    /// shows, before it checks anything else.
    fn take(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        lock(&self.inner).take(ticket, self.reusable)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(n: u8) -> Vec<u8> {
        vec![n; 32]
    }

    #[test]
    fn a_ticket_resumes_once_and_its_replay_is_counted() {
        let sessions = ServerSessions::new(4);
        assert!(sessions.put(ticket(1), b"session".to_vec()));
        assert_eq!(sessions.take(&ticket(1)), Some(b"session".to_vec()));
        assert_eq!(sessions.take(&ticket(1)), None);
        assert_eq!(sessions.take(&ticket(2)), None);
        assert!(sessions.is_empty());
        assert_eq!(
            sessions.stats(),
            SessionStats {
                issued: 1,
                resumed: 1,
                spent: 1,
                unknown: 1,
                ..SessionStats::default()
            }
        );
    }

    #[test]
    fn a_reusable_store_lets_replays_through_and_counts_them() {
        let sessions = ServerSessions::dangerous_reusable(4);
        assert!(!sessions.is_single_use());
        sessions.put(ticket(1), b"session".to_vec());
        for _ in 0..3 {
            assert_eq!(sessions.take(&ticket(1)), Some(b"session".to_vec()));
        }
        let stats = sessions.stats();
        assert_eq!((stats.resumed, stats.reused, stats.spent), (1, 2, 0));
    }

    #[test]
    fn the_oldest_unused_session_goes_first() {
        let sessions = ServerSessions::new(2);
        sessions.put(ticket(1), vec![1]);
        sessions.put(ticket(2), vec![2]);
        // Using 1 frees its place; 3 fits; 4 evicts 2, the oldest left.
        assert_eq!(sessions.take(&ticket(1)), Some(vec![1]));
        sessions.put(ticket(3), vec![3]);
        sessions.put(ticket(4), vec![4]);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions.take(&ticket(2)), None);
        assert_eq!(sessions.take(&ticket(3)), Some(vec![3]));
        let stats = sessions.stats();
        assert_eq!((stats.evicted, stats.unknown), (1, 1));
    }

    #[test]
    fn the_memory_of_used_tickets_is_bounded() {
        let sessions = ServerSessions::new(2);
        for n in 0..10 {
            sessions.put(ticket(n), vec![n]);
            sessions.take(&ticket(n));
        }
        let inner = lock(&sessions.inner);
        assert_eq!((inner.spent.len(), inner.spent_order.len()), (2, 2));
        assert!(inner.spent.contains(&ticket(9)));
    }

    #[test]
    fn debug_shows_counts_not_sessions() {
        let sessions = ServerSessions::new(2);
        sessions.put(ticket(1), b"secret".to_vec());
        let shown = format!("{sessions:?}");
        assert!(shown.contains("issued: 1"), "{shown}");
        assert!(!shown.contains("115, 101, 99"), "{shown}");
    }

    #[test]
    fn a_store_of_no_sessions_issues_no_tickets() {
        let sessions = ServerSessions::new(0);
        assert!(!sessions.put(ticket(1), vec![1]));
        assert_eq!(sessions.stats().issued, 0);
    }
}
