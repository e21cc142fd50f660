//! A userspace delay relay on loopback, for real sockets with a round-trip
//! time (this machine's kernel has no `netem`): it holds each direction's
//! bytes (TCP) or datagrams (UDP) for a one-way delay before forwarding.
//!
//! A TCP relay cannot delay the kernel's own handshake: a client's
//! `connect` to it completes at loopback speed, and so does its `connect`
//! to the server. Only payload is delayed, so a TCP time to first byte
//! through the relay lacks the one RTT that SYN and SYN-ACK cost; callers
//! add it (see `crosscheck`).
//!
//! A TCP relay can also log what it forwards ([`tcp_logged`]): the
//! flights of a peer the netsim flight recorder cannot run, such as
//! go-libp2p or js-libp2p, for a ladder ([`FlightLog::ladder`]).

use std::{
    collections::HashMap,
    fmt::Write,
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    sync::mpsc,
    time::{Instant, sleep_until},
};

/// Waits until `due`, to the microsecond: tokio's timers have a 1 ms
/// resolution, which would add up to a millisecond to every hop (several
/// percent of a 20 ms RTT per flight), so the last 2 ms are spent yielding.
async fn hold_until(due: Instant) {
    let coarse = due.checked_sub(Duration::from_millis(2));
    if let Some(coarse) = coarse.filter(|coarse| *coarse > Instant::now()) {
        sleep_until(coarse).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

/// Relays TCP connections from a loopback port to `server`, each
/// direction's bytes held for `delay`; returns the relay's address.
///
/// # Errors
/// If binding fails.
pub async fn tcp(server: SocketAddr, delay: Duration) -> io::Result<SocketAddr> {
    relay_tcp(server, delay, None).await
}

/// As [`tcp`], and every chunk forwarded is written into `log`.
///
/// # Errors
/// If binding fails.
pub async fn tcp_logged(
    server: SocketAddr,
    delay: Duration,
    log: FlightLog,
) -> io::Result<SocketAddr> {
    relay_tcp(server, delay, Some(log)).await
}

/// Which way a chunk crossed the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// From the dialer to the listener.
    Out,
    /// From the listener to the dialer.
    Back,
}

/// One chunk as the relay read it.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// When the relay read it (it leaves the relay `delay` later).
    pub at: Instant,
    /// Which way.
    pub way: Way,
    /// Its length.
    pub len: usize,
    /// Its first [`FlightLog::HEAD`] bytes.
    pub head: Vec<u8>,
}

/// The chunks a logged relay read, in order, over all its connections.
/// Cloning shares the log.
#[derive(Debug, Clone, Default)]
pub struct FlightLog(Arc<Mutex<Vec<Chunk>>>);

impl FlightLog {
    /// Bytes of each chunk kept.
    pub const HEAD: usize = 96;

    fn push(&self, way: Way, bytes: &[u8]) {
        let chunk = Chunk {
            at: Instant::now(),
            way,
            len: bytes.len(),
            head: bytes[..bytes.len().min(Self::HEAD)].to_vec(),
        };
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(chunk);
    }

    /// The chunks so far.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The chunks read before `until`, as a ladder: the time each was read
    /// (from the first), its direction and size, and the protocol names it
    /// carries in the clear (multistream-select before the security
    /// handshake); and how many round trips they span (each turn from
    /// `←` back to `→` starts one).
    pub fn ladder(&self, until: Instant) -> (String, usize) {
        let chunks: Vec<Chunk> = self.chunks().into_iter().filter(|c| c.at < until).collect();
        let Some(first) = chunks.first().map(|c| c.at) else {
            return (String::new(), 0);
        };
        let mut out = String::from("   ms\n");
        let mut round_trips = 0;
        let mut last = None;
        for chunk in &chunks {
            if chunk.way == Way::Out && last != Some(Way::Out) {
                round_trips += 1;
            }
            last = Some(chunk.way);
            let ms = (chunk.at - first).as_secs_f64() * 1e3;
            let arrow = match chunk.way {
                Way::Out => "→",
                Way::Back => "    ←",
            };
            let names = clear_names(&chunk.head);
            let _ = writeln!(out, "{ms:5.0}  {arrow} {} B{names}", chunk.len);
        }
        (out, round_trips)
    }
}

/// The protocol names in `bytes` if they are multistream-select messages
/// in the clear (runs of protocol-name characters that start with `/`,
/// or `na`), with a leading space; empty otherwise.
fn clear_names(bytes: &[u8]) -> String {
    let name_byte = |b: &u8| b.is_ascii_alphanumeric() || b"/._-".contains(b);
    let names: Vec<&str> = bytes
        .split(|b| !name_byte(b))
        .filter(|run| (run.len() >= 4 && run[0] == b'/') || *run == b"na")
        .filter_map(|run| std::str::from_utf8(run).ok())
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("  {}", names.join(" "))
    }
}

async fn relay_tcp(
    server: SocketAddr,
    delay: Duration,
    log: Option<FlightLog>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(upstream) = TcpStream::connect(server).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = upstream.into_split();
                let back = log.clone().map(|log| (log, Way::Back));
                tokio::join!(
                    pipe(
                        client_read,
                        server_write,
                        delay,
                        log.map(|log| (log, Way::Out))
                    ),
                    pipe(server_read, client_write, delay, back)
                );
            });
        }
    });
    Ok(addr)
}

/// Moves bytes from `from` to `to`, each chunk `delay` after it was read
/// (and logged, if asked); the end of the stream too.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    log: Option<(FlightLog, Way)>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            if let Some((log, way)) = &log
                && n > 0
            {
                log.push(*way, &buf[..n]);
            }
            // An empty chunk stands for the end of the stream.
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
                || n == 0
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            hold_until(due).await;
            if chunk.is_empty() {
                let _ = to.shutdown().await;
                break;
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(reader, writer);
}

/// Relays UDP datagrams from a loopback port to `server` and back, each
/// held for `delay`; returns the relay's address. Each client address gets
/// its own upstream socket, so the server sees one peer per client.
///
/// # Errors
/// If binding fails.
pub async fn udp(server: SocketAddr, delay: Duration) -> io::Result<SocketAddr> {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let addr = front.local_addr()?;
    tokio::spawn(async move {
        let mut upstreams: HashMap<SocketAddr, mpsc::UnboundedSender<(Instant, Vec<u8>)>> =
            HashMap::new();
        let mut buf = vec![0; 65536];
        while let Ok((n, client)) = front.recv_from(&mut buf).await {
            let due = Instant::now() + delay;
            let upstream = match upstreams.get(&client) {
                Some(upstream) => upstream.clone(),
                None => {
                    let Ok(upstream) = open_upstream(front.clone(), client, server, delay).await
                    else {
                        continue;
                    };
                    upstreams.insert(client, upstream.clone());
                    upstream
                }
            };
            let _ = upstream.send((due, buf[..n].to_vec()));
        }
    });
    Ok(addr)
}

/// A socket towards the server for one client: datagrams queued on the
/// returned sender go out when due; the server's answers go back to the
/// client through `front`, `delay` later.
async fn open_upstream(
    front: Arc<UdpSocket>,
    client: SocketAddr,
    server: SocketAddr,
    delay: Duration,
) -> io::Result<mpsc::UnboundedSender<(Instant, Vec<u8>)>> {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    socket.connect(server).await?;
    let (to_server, mut queue) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let sending = socket.clone();
    tokio::spawn(async move {
        while let Some((due, datagram)) = queue.recv().await {
            hold_until(due).await;
            let _ = sending.send(&datagram).await;
        }
    });
    let (to_client, mut back) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((due, datagram)) = back.recv().await {
            hold_until(due).await;
            let _ = front.send_to(&datagram, client).await;
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0; 65536];
        while let Ok(n) = socket.recv(&mut buf).await {
            if to_client
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    });
    Ok(to_server)
}
