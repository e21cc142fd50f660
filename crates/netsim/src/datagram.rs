//! Datagram links: a quinn `AsyncUdpSocket` over the emulated network.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    fmt,
    future::Future,
    io::{self, IoSliceMut},
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, Weak},
    task::{Context, Poll, Waker},
};

use quinn::{
    AsyncUdpSocket, UdpPoller,
    udp::{RecvMeta, Transmit},
};
use tokio::time::{Instant, Sleep};

use crate::{
    Error,
    link::{Links, Transmission},
    packet::PacketLink,
    recorder::Carrier,
};

/// How many datagrams may wait in a socket's receive queue before new ones
/// are dropped, like a full socket receive buffer.
pub const RECEIVE_QUEUE_LIMIT: usize = 1 << 16;

/// The datagram half of a network: its bound sockets, and what each
/// datagram link remembers between datagrams.
#[derive(Debug)]
pub(crate) struct Datagrams {
    links: Arc<Links>,
    state: Mutex<DatagramState>,
}

#[derive(Debug, Default)]
struct DatagramState {
    sockets: HashMap<SocketAddr, Weak<SimUdpSocket>>,
    /// Per directed pair of hosts: the datagram link, started with the
    /// network.
    links: HashMap<(IpAddr, IpAddr), PacketLink>,
}

impl Datagrams {
    pub(crate) fn new(links: Arc<Links>) -> Self {
        Datagrams {
            links,
            state: Mutex::new(DatagramState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DatagramState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets the sockets that have been dropped, freeing their addresses.
    pub(crate) fn forget_dropped(&self) {
        self.lock()
            .sockets
            .retain(|_, socket| socket.strong_count() > 0);
    }

    /// Whether a socket holds `addr` (a dropped one until it is forgotten).
    pub(crate) fn is_bound(&self, addr: SocketAddr) -> bool {
        self.lock().sockets.contains_key(&addr)
    }

    /// Binds a socket to `addr`.
    ///
    /// # Errors
    /// [`Error::AddrInUse`].
    pub(crate) fn bind(self: &Arc<Self>, addr: SocketAddr) -> Result<Arc<SimUdpSocket>, Error> {
        let mut state = self.lock();
        if state.sockets.contains_key(&addr) {
            return Err(Error::AddrInUse(addr));
        }
        let socket = Arc::new(SimUdpSocket::new(self.clone(), addr));
        state.sockets.insert(addr, Arc::downgrade(&socket));
        Ok(socket)
    }

    /// Sends one datagram from `from` (which no socket need hold) to `to`
    /// across the link between their hosts; never blocks.
    pub(crate) fn send(
        &self,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
        label: Option<Arc<str>>,
    ) {
        let links = &self.links;
        let now = Instant::now();
        let (from_ip, to_ip) = (from.ip(), to.ip());
        let (arrives, target) = {
            let mut state = self.lock();
            let target = state.sockets.get(&to).and_then(|s| s.upgrade());
            let arrives = state
                .link(links, from_ip, to_ip)
                .send(links.since_start(now), data.len())
                .map(|offset| links.start + offset);
            (arrives, target)
        };
        let delivered = match (arrives, target) {
            (Some(at), Some(target)) => target.enqueue(at, from, data).then_some(at),
            _ => None,
        };
        links.record(Transmission {
            carrier: Carrier::Datagram,
            from,
            to,
            bytes: data.len(),
            sent: now,
            delivered,
            label,
            payload: data,
        });
    }
}

impl DatagramState {
    fn link(&mut self, links: &Links, from: IpAddr, to: IpAddr) -> &mut PacketLink {
        self.links
            .entry((from, to))
            .or_insert_with(|| PacketLink::new(links.link(from, to).clone(), links.seed(from, to)))
    }
}

/// A datagram socket on the emulated network. It implements quinn's
/// [`AsyncUdpSocket`], so a real `quinn::Endpoint` runs over it
/// (`Endpoint::new_with_abstract_socket`, with `quinn::TokioRuntime`).
///
/// Each datagram crosses the link from its sender's host to its
/// destination's: it is dropped if larger than the MTU or if the link's
/// loss model says so, and otherwise arrives after serialization (behind
/// earlier datagrams, at the link's bandwidth, or at the next opportunity of
/// a replayed trace) and the propagation delay.
pub struct SimUdpSocket {
    datagrams: Arc<Datagrams>,
    addr: SocketAddr,
    queue: Mutex<Inbox>,
}

struct Inbox {
    /// Datagrams in flight to this socket, earliest arrival first.
    heap: BinaryHeap<Reverse<Arrival>>,
    sequence: u64,
    waker: Option<Waker>,
    timer: Pin<Box<Sleep>>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Arrival {
    at: Instant,
    /// Breaks ties in sending order.
    sequence: u64,
    from: SocketAddr,
    data: Vec<u8>,
}

impl fmt::Debug for SimUdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimUdpSocket")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimUdpSocket {
    fn new(datagrams: Arc<Datagrams>, addr: SocketAddr) -> Self {
        SimUdpSocket {
            datagrams,
            addr,
            queue: Mutex::new(Inbox {
                heap: BinaryHeap::new(),
                sequence: 0,
                waker: None,
                timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            }),
        }
    }

    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends one datagram across the link; never blocks.
    fn send_one(&self, to: SocketAddr, data: &[u8]) {
        self.datagrams.send(self.addr, to, data, None);
    }

    /// Queues a datagram for delivery at `at`; false if the queue is full.
    fn enqueue(&self, at: Instant, from: SocketAddr, data: &[u8]) -> bool {
        let mut inbox = self.inbox();
        if inbox.heap.len() >= RECEIVE_QUEUE_LIMIT {
            return false;
        }
        inbox.sequence += 1;
        let sequence = inbox.sequence;
        inbox.heap.push(Reverse(Arrival {
            at,
            sequence,
            from,
            data: data.to_vec(),
        }));
        if let Some(w) = inbox.waker.take() {
            w.wake();
        }
        true
    }
}

impl AsyncUdpSocket for SimUdpSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let size = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for datagram in transmit.contents.chunks(size) {
            self.send_one(transmit.destination, datagram);
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut inbox = self.inbox();
        loop {
            let now = Instant::now();
            let mut received = 0;
            for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
                match inbox.heap.peek() {
                    Some(Reverse(next)) if next.at <= now => {}
                    _ => break,
                }
                let Some(Reverse(arrival)) = inbox.heap.pop() else {
                    break;
                };
                let len = arrival.data.len().min(buf.len());
                buf[..len].copy_from_slice(&arrival.data[..len]);
                *meta = RecvMeta {
                    addr: arrival.from,
                    len,
                    stride: len,
                    ecn: None,
                    dst_ip: Some(self.addr.ip()),
                };
                received += 1;
            }
            if received > 0 {
                return Poll::Ready(Ok(received));
            }
            inbox.waker = Some(cx.waker().clone());
            let Some(Reverse(next)) = inbox.heap.peek() else {
                return Poll::Pending;
            };
            let next = next.at;
            inbox.timer.as_mut().reset(next);
            if inbox.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

/// The emulated link accepts every datagram at once (queueing is modelled
/// as delay, and loss as loss), so sending never waits.
#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
