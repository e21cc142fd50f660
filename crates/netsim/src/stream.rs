//! Stream links: reliable, ordered byte streams that stand in for TCP.

use std::{
    collections::VecDeque,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::mpsc,
    time::{Instant, Sleep},
};

use crate::{
    LinkConfig,
    fast_open::PendingSyn,
    link::{Links, Transmission},
    recorder::Carrier,
};

/// A connection waiting in a listener's accept queue.
#[derive(Debug)]
pub(crate) struct PendingConnection {
    /// When the dialer's ACK arrives and the connection can be accepted.
    pub(crate) ready_at: Instant,
    pub(crate) stream: SimStream,
    pub(crate) peer: SocketAddr,
}

/// Accepts stream connections on one address. Dropping it refuses new ones.
#[derive(Debug)]
pub struct StreamListener {
    addr: SocketAddr,
    /// The accept queue. Dropping it closes the network's end: connections
    /// to this address are refused, and it can be listened on again.
    queue: mpsc::Receiver<PendingConnection>,
}

impl StreamListener {
    pub(crate) fn new(addr: SocketAddr, queue: mpsc::Receiver<PendingConnection>) -> Self {
        StreamListener { addr, queue }
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next connection, once its handshake has completed, with the
    /// dialer's address.
    pub async fn accept(&mut self) -> io::Result<(SimStream, SocketAddr)> {
        let pending = self
            .queue
            .recv()
            .await
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        tokio::time::sleep_until(pending.ready_at).await;
        Ok((pending.stream, pending.peer))
    }

    /// The next connection in the accept queue, before its handshake has
    /// completed (`None` once the network is gone).
    #[cfg(feature = "libp2p")]
    pub(crate) fn poll_pending(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<PendingConnection>> {
        self.queue.poll_recv(cx)
    }
}

/// One direction of a connection: bytes in flight, stamped with the time
/// they arrive.
#[derive(Debug)]
struct Pipe {
    link: LinkConfig,
    from: SocketAddr,
    to: SocketAddr,
    queue: VecDeque<Segment>,
    /// Bytes written and not yet read.
    buffered: usize,
    /// When the writer's end of stream arrives, once it has shut down.
    fin_at: Option<Instant>,
    reader_gone: bool,
    /// Nobody reads this direction, yet writes are taken (and lost), as
    /// they are by a kernel that has not yet heard of a reset.
    lost: bool,
    /// When the link finishes serializing what it has accepted.
    free_at: Instant,
    reader: Option<Waker>,
    writer: Option<Waker>,
    label: Option<Arc<str>>,
}

#[derive(Debug)]
struct Segment {
    arrives: Instant,
    data: Vec<u8>,
    read: usize,
}

impl Pipe {
    fn new(link: LinkConfig, from: SocketAddr, to: SocketAddr) -> Arc<Mutex<Pipe>> {
        Arc::new(Mutex::new(Pipe {
            link,
            from,
            to,
            queue: VecDeque::new(),
            buffered: 0,
            fin_at: None,
            reader_gone: false,
            lost: false,
            free_at: Instant::now(),
            reader: None,
            writer: None,
            label: None,
        }))
    }

    /// When bytes handed to the link now leave and arrive: after what is
    /// queued (or, on a connection still opening, after its handshake),
    /// then serialization and the propagation delay. Never before earlier
    /// bytes.
    fn send_times(&mut self, bytes: usize) -> (Instant, Instant) {
        let start = self.free_at.max(Instant::now());
        self.free_at = start + self.link.serialization(bytes);
        (start, self.free_at + self.link.delay)
    }

    fn arrival(&mut self, bytes: usize) -> Instant {
        self.send_times(bytes).1
    }

    fn shut(&mut self) -> Instant {
        if let Some(fin) = self.fin_at {
            return fin;
        }
        let fin = self.arrival(0);
        self.fin_at = Some(fin);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
        fin
    }
}

fn lock(pipe: &Mutex<Pipe>) -> MutexGuard<'_, Pipe> {
    pipe.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One end of a stream connection: `AsyncRead + AsyncWrite`, with the
/// link's delay and bandwidth. A half-close (`shutdown`) reaches the peer
/// like data, as an end of stream; dropping the stream does the same.
#[derive(Debug)]
pub struct SimStream {
    links: Arc<Links>,
    tx: Arc<Mutex<Pipe>>,
    rx: Arc<Mutex<Pipe>>,
    local: SocketAddr,
    peer: SocketAddr,
    timer: Pin<Box<Sleep>>,
    /// A TCP Fast Open dialer's SYN, until its first write sends it.
    syn: Option<Box<PendingSyn>>,
}

/// Sets the label recorded with a stream's next writes; a handle that can
/// live in another layer than the stream itself.
#[derive(Debug, Clone)]
pub struct Labeler(Arc<Mutex<Pipe>>);

impl Labeler {
    /// Labels every later write (until changed) with `label`; `None` clears.
    pub fn set(&self, label: Option<&str>) {
        lock(&self.0).label = label.map(Arc::from);
    }
}

impl SimStream {
    /// The two ends of a new connection.
    pub(crate) fn pair(
        links: Arc<Links>,
        dialer: SocketAddr,
        listener: SocketAddr,
    ) -> (SimStream, SimStream) {
        let up = Pipe::new(
            links.link(dialer.ip(), listener.ip()).clone(),
            dialer,
            listener,
        );
        let down = Pipe::new(
            links.link(listener.ip(), dialer.ip()).clone(),
            listener,
            dialer,
        );
        let end = |tx: &Arc<Mutex<Pipe>>, rx: &Arc<Mutex<Pipe>>, local, peer| SimStream {
            links: links.clone(),
            tx: tx.clone(),
            rx: rx.clone(),
            local,
            peer,
            timer: Box::pin(tokio::time::sleep_until(Instant::now())),
            syn: None,
        };
        let a = end(&up, &down, dialer, listener);
        let b = end(&down, &up, listener, dialer);
        (a, b)
    }

    /// Makes this dialer's end send `syn` with its first write.
    pub(crate) fn with_pending_syn(mut self, syn: PendingSyn) -> Self {
        self.syn = Some(Box::new(syn));
        self
    }

    /// Sends a pending Fast Open SYN with (some of) `data`; how many of its
    /// bytes the SYN carried.
    fn send_syn(&mut self, data: &[u8]) -> usize {
        let Some(syn) = self.syn.take() else {
            return 0;
        };
        let sent = syn.send(data);
        let mut pipe = lock(&self.tx);
        pipe.free_at = pipe.free_at.max(sent.established);
        let Some((n, arrives)) = sent.carried else {
            return 0;
        };
        pipe.queue.push_back(Segment {
            arrives,
            data: data[..n].to_vec(),
            read: 0,
        });
        pipe.buffered += n;
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
        n
    }

    /// Makes this the end of a dialer that is not there: `data` is sent at
    /// `at`, the other end's writes are taken and lost, and the other end
    /// reads the end of the stream at `reset_at` (when a reset from the
    /// real host at this address would arrive).
    pub(crate) fn vanish_after(self, data: &[u8], at: Instant, reset_at: Instant) {
        let mut pipe = lock(&self.tx);
        pipe.free_at = pipe.free_at.max(at);
        let arrives = pipe.arrival(data.len());
        pipe.queue.push_back(Segment {
            arrives,
            data: data.to_vec(),
            read: 0,
        });
        pipe.buffered += data.len();
        pipe.fin_at = Some(reset_at.max(arrives));
        drop(pipe);
        lock(&self.rx).lost = true;
    }

    /// This end's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The other end's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// A handle that labels this end's writes in the flight recorder.
    pub fn labeler(&self) -> Labeler {
        Labeler(self.tx.clone())
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut pipe = lock(&this.rx);
            let now = Instant::now();
            let next = match pipe.queue.front() {
                Some(segment) => segment.arrives,
                None => match pipe.fin_at {
                    Some(fin) if fin <= now => return Poll::Ready(Ok(())),
                    Some(fin) => fin,
                    None => {
                        pipe.reader = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                },
            };
            if next > now {
                // Nothing has arrived yet: wait for the first arrival. Bytes
                // written later arrive later, so no earlier wake-up is needed.
                drop(pipe);
                this.timer.as_mut().reset(next);
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            let mut copied = 0;
            while buf.remaining() > 0 {
                let Some(segment) = pipe.queue.front_mut() else {
                    break;
                };
                if segment.arrives > now {
                    break;
                }
                let n = buf.remaining().min(segment.data.len() - segment.read);
                buf.put_slice(&segment.data[segment.read..segment.read + n]);
                segment.read += n;
                copied += n;
                if segment.read == segment.data.len() {
                    pipe.queue.pop_front();
                }
            }
            pipe.buffered -= copied;
            if let Some(w) = pipe.writer.take() {
                w.wake();
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.syn.is_some() && !buf.is_empty() {
            let carried = this.send_syn(buf);
            if carried > 0 {
                return Poll::Ready(Ok(carried));
            }
        }
        let mut pipe = lock(&this.tx);
        if pipe.reader_gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if pipe.fin_at.is_some() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown",
            )));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if pipe.lost {
            return Poll::Ready(Ok(buf.len()));
        }
        let room = pipe.link.stream_buffer.saturating_sub(pipe.buffered);
        if room == 0 {
            pipe.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        let (sent, arrives) = pipe.send_times(n);
        pipe.queue.push_back(Segment {
            arrives,
            data: buf[..n].to_vec(),
            read: 0,
        });
        pipe.buffered += n;
        if let Some(w) = pipe.reader.take() {
            w.wake();
        }
        let (from, to, label) = (pipe.from, pipe.to, pipe.label.clone());
        drop(pipe);
        this.links.record(Transmission {
            carrier: Carrier::Stream,
            from,
            to,
            bytes: n,
            sent,
            delivered: Some(arrives),
            label,
            payload: &buf[..n],
        });
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.send_syn(&[]);
        let mut pipe = lock(&this.tx);
        let already = pipe.fin_at.is_some();
        let (sent, fin) = (pipe.free_at.max(Instant::now()), pipe.shut());
        let (from, to) = (pipe.from, pipe.to);
        drop(pipe);
        if !already {
            this.links.record(Transmission {
                carrier: Carrier::Stream,
                from,
                to,
                bytes: 0,
                sent,
                delivered: Some(fin),
                label: Some(Arc::from("FIN")),
                payload: &[],
            });
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        lock(&self.tx).shut();
        let mut rx = lock(&self.rx);
        if rx.lost {
            return;
        }
        rx.reader_gone = true;
        rx.queue.clear();
        rx.buffered = 0;
        if let Some(w) = rx.writer.take() {
            w.wake();
        }
    }
}
