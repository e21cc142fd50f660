//! TCP Fast Open (RFC 7413) on stream links, as Linux does it for a socket
//! with `TCP_FASTOPEN_CONNECT`: the connect returns at once, and the SYN
//! leaves with the first write, carrying its first bytes when the dialer
//! holds a valid cookie for that server and the listener has Fast Open on.
//!
//! - **Cookies.** A dialer without a cookie sends a cookie request in its
//!   SYN; a Fast Open listener answers with a cookie in its SYN-ACK, which
//!   the dialer keeps per server host (Linux keeps it per destination
//!   address in its TCP metrics, whatever the port). The server makes it
//!   from the dialer's address with its host's key (Linux: one key per
//!   network namespace by default), so it is good for any of that host's
//!   Fast Open listeners while the key stays
//!   ([`Network::rotate_fast_open_key`]).
//! - **The SYN's data.** At most [`MAX_SYN_DATA`] bytes. The listener's
//!   application can accept the connection and read them as soon as the
//!   SYN arrives, and answer at once: its bytes follow its SYN-ACK. The
//!   dialer's further bytes wait for the SYN-ACK.
//! - **Fallback.** Without a cookie, with a cookie the server no longer
//!   honours, or to a listener without Fast Open, nothing rides in the SYN:
//!   a plain handshake, and the bytes follow it, as after a plain connect.
//! - **A network that duplicates a SYN with data**
//!   ([`LinkConfig::duplicates_syn_data`]): the listener gets the first
//!   flight a second time, on a connection of its own whose dialer is gone:
//!   its answers are lost, and its end comes one RTT later (the dialer's
//!   host resets the connection it does not know).
//! - **A path that drops SYNs with data** ([`LinkConfig::drops_syn_data`]):
//!   the SYN is lost; Linux retransmits it after the initial RTO without the
//!   data (which it queued apart from the SYN), and the data follows the
//!   handshake. The connection succeeds [`SYN_RTO`] late.
//!
//! [`Network::rotate_fast_open_key`]: crate::Network::rotate_fast_open_key
//! [`LinkConfig::drops_syn_data`]: crate::LinkConfig::drops_syn_data
//! [`LinkConfig::duplicates_syn_data`]: crate::LinkConfig::duplicates_syn_data

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};

use crate::{
    link::{Links, Transmission},
    recorder::Carrier,
    stream::{PendingConnection, SimStream},
};

/// The most bytes a SYN carries: Linux's `tcp_send_syn_data` takes the
/// MSS for the path's MTU (1460 at 1500) less `MAX_TCP_OPTION_SPACE` (40).
pub const MAX_SYN_DATA: usize = 1460 - 40;

/// The initial retransmission timeout after which a lost SYN is sent again
/// (RFC 6298 §2.1; Linux `TCP_TIMEOUT_INIT`).
pub const SYN_RTO: Duration = Duration::from_secs(1);

/// The dialers' cookies and the servers' keys of one network.
#[derive(Debug, Default)]
pub(crate) struct CookieJar {
    /// Each server host's key, as a generation number.
    keys: HashMap<IpAddr, u64>,
    /// The cookie a dialer host holds for a server host: the key
    /// generation it was made with.
    cookies: HashMap<(IpAddr, IpAddr), u64>,
}

impl CookieJar {
    fn key(&self, server: IpAddr) -> u64 {
        self.keys.get(&server).copied().unwrap_or_default()
    }

    /// Changes `server`'s key: the cookies it made before are refused.
    pub(crate) fn rotate(&mut self, server: IpAddr) {
        *self.keys.entry(server).or_default() += 1;
    }

    /// Whether `client` holds a cookie for `server`, valid or not.
    pub(crate) fn holds(&self, client: IpAddr, server: IpAddr) -> bool {
        self.cookies.contains_key(&(client, server))
    }
}

pub(crate) type SharedJar = Arc<Mutex<CookieJar>>;

pub(crate) fn lock(jar: &SharedJar) -> MutexGuard<'_, CookieJar> {
    jar.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A listener as a dialer finds it: its accept queue and whether it has
/// Fast Open on.
#[derive(Debug, Clone)]
pub(crate) struct ListenerEntry {
    pub(crate) queue: mpsc::Sender<PendingConnection>,
    pub(crate) fast_open: bool,
}

/// A Fast Open connection whose SYN has not left yet: it leaves with the
/// dialer's first write (or its shutdown).
#[derive(Debug)]
pub(crate) struct PendingSyn {
    pub(crate) links: Arc<Links>,
    pub(crate) jar: SharedJar,
    pub(crate) listener: ListenerEntry,
    /// The listener's end, queued for it to accept once the SYN is sent.
    pub(crate) listener_side: SimStream,
    pub(crate) local: SocketAddr,
    pub(crate) to: SocketAddr,
}

/// What sending the SYN decided.
#[derive(Debug)]
pub(crate) struct SynSent {
    /// How many of the bytes offered rode in the SYN, and when they arrive.
    pub(crate) carried: Option<(usize, Instant)>,
    /// When the dialer may send its further bytes: once the SYN-ACK is in.
    pub(crate) established: Instant,
}

impl PendingSyn {
    /// Sends the SYN now, with up to [`MAX_SYN_DATA`] bytes of `data` if
    /// the cookie allows, and records the handshake.
    pub(crate) fn send(self, data: &[u8]) -> SynSent {
        let links = &self.links;
        let (client, server) = (self.local.ip(), self.to.ip());
        let forward = links.link(client, server);
        let back = links.link(server, client).delay;
        let now = Instant::now();
        let mut jar = lock(&self.jar);
        let cookie = jar.cookies.get(&(client, server)).copied();
        let key = jar.key(server);
        let offered = data.len().min(MAX_SYN_DATA);
        let with_data = cookie.is_some() && offered > 0;
        let record = |from, to, sent, delivered, label: &str, payload: &[u8]| {
            links.record(Transmission {
                carrier: Carrier::Stream,
                from,
                to,
                bytes: payload.len(),
                sent,
                delivered,
                label: Some(Arc::from(label)),
                payload,
            });
        };
        let request = if cookie.is_some() {
            "SYN"
        } else {
            "SYN (cookie request)"
        };
        // A middlebox drops the SYN with data; the retransmission after
        // the initial RTO carries none.
        let (syn_sent, with_data) = if with_data && forward.drops_syn_data {
            record(self.local, self.to, now, None, request, &data[..offered]);
            (now + SYN_RTO, false)
        } else {
            (now, with_data)
        };
        let payload = if with_data { &data[..offered] } else { &[] };
        let syn_at = syn_sent + forward.serialization(payload.len()) + forward.delay;
        let syn_ack_at = syn_at + back;
        let ack_at = syn_ack_at + forward.delay;
        record(
            self.local,
            self.to,
            syn_sent,
            Some(syn_at),
            request,
            payload,
        );
        let listening = self.listener.fast_open;
        // The listener takes the SYN's data only with its current cookie.
        let accepted = listening && with_data && cookie == Some(key);
        // It sends a cookie to a dialer that asked, or whose cookie failed.
        let issues = listening && cookie != Some(key);
        if issues {
            jar.cookies.insert((client, server), key);
        }
        drop(jar);
        let reply = if issues {
            "SYN-ACK (cookie)"
        } else {
            "SYN-ACK"
        };
        record(self.to, self.local, syn_at, Some(syn_ack_at), reply, &[]);
        // Data the listener did not take follows the ACK.
        record(self.local, self.to, syn_ack_at, Some(ack_at), "ACK", &[]);
        let ready_at = if accepted { syn_at } else { ack_at };
        let pending = PendingConnection {
            ready_at,
            stream: self.listener_side,
            peer: self.local,
        };
        // A full accept queue drops the connection, as a listener whose
        // backlog overflows drops the SYN: the dialer's reads see the end.
        let _ = self.listener.queue.try_send(pending);
        if let Some(after) = forward.duplicates_syn_data.filter(|_| accepted) {
            // The copy opens a connection of its own, from the same
            // address, whose dialer is not there.
            let copy_sent = syn_sent + after;
            let copy_at = copy_sent + forward.serialization(payload.len()) + forward.delay;
            let (ghost, listener_side) = SimStream::pair(links.clone(), self.local, self.to);
            // The listener's SYN-ACK reaches the dialer's host, which knows
            // no such connection and resets it.
            ghost.vanish_after(payload, copy_sent, copy_at + back + forward.delay);
            record(
                self.local,
                self.to,
                copy_sent,
                Some(copy_at),
                "SYN (duplicate)",
                payload,
            );
            let _ = self.listener.queue.try_send(PendingConnection {
                ready_at: copy_at,
                stream: listener_side,
                peer: self.local,
            });
        }
        SynSent {
            carried: accepted.then_some((offered, syn_at)),
            established: syn_ack_at,
        }
    }
}
