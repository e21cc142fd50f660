//! The flight recorder: every delivery on the network, and what follows
//! from it (flights, round trips, ladder diagrams).

use std::{
    fmt::Write as _,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

/// The default number of records kept; later ones are counted, not kept.
pub const DEFAULT_RECORD_CAPACITY: usize = 1 << 16;

/// Which kind of link carried a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// A stream link (emulated TCP); SYN, SYN-ACK and ACK are recorded with
    /// 0 bytes.
    Stream,
    /// A datagram link (emulated UDP).
    Datagram,
}

/// One transmission.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it was sent, since the network was created.
    pub sent: Duration,
    /// When it was delivered, or `None` if it was lost.
    pub delivered: Option<Duration>,
    /// Sender.
    pub from: SocketAddr,
    /// Receiver.
    pub to: SocketAddr,
    /// Payload bytes.
    pub bytes: usize,
    /// What the sending layer said this is, if it said.
    pub label: Option<Arc<str>>,
    /// The kind of link.
    pub carrier: Carrier,
    /// The bytes themselves (the datagram, or what a stream write carried),
    /// if the recorder keeps payloads and had room for these (see
    /// `NetworkBuilder::payload_capacity`).
    pub payload: Option<Arc<[u8]>>,
}

/// Collects [`Record`]s. Cloning shares the collection.
#[derive(Debug, Clone)]
pub struct Recorder {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    records: Vec<Record>,
    capacity: usize,
    overflow: usize,
    /// How many payload bytes may be kept in all.
    payload_capacity: usize,
    /// How many are.
    payload_bytes: usize,
}

impl Recorder {
    /// A recorder of up to `capacity` records, keeping up to
    /// `payload_capacity` bytes of their payloads.
    pub(crate) fn new(capacity: usize, payload_capacity: usize) -> Self {
        Recorder {
            inner: Arc::new(Mutex::new(State {
                records: Vec::new(),
                capacity,
                overflow: 0,
                payload_capacity,
                payload_bytes: 0,
            })),
        }
    }

    /// Records `record`, with a copy of `payload` if there is room for it.
    pub(crate) fn push(&self, mut record: Record, payload: &[u8]) {
        let mut state = lock(&self.inner);
        if state.records.len() >= state.capacity {
            state.overflow += 1;
            return;
        }
        if !payload.is_empty() && state.payload_bytes + payload.len() <= state.payload_capacity {
            state.payload_bytes += payload.len();
            record.payload = Some(Arc::from(payload));
        }
        state.records.push(record);
    }

    /// A snapshot of what has been recorded so far.
    pub fn recording(&self) -> Recording {
        let state = lock(&self.inner);
        let mut records = state.records.clone();
        // A connection's SYN-ACK is recorded when the SYN is; sort by the
        // time things left.
        records.sort_by_key(|r| r.sent);
        Recording {
            records,
            overflow: state.overflow,
        }
    }

    /// Forgets everything recorded so far.
    pub fn clear(&self) {
        let mut state = lock(&self.inner);
        state.records.clear();
        state.overflow = 0;
        state.payload_bytes = 0;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A group of transmissions in one direction, each sent after the previous
/// flight (in the other direction) began to arrive: one leg of a round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Flight {
    /// The sending host.
    pub from: IpAddr,
    /// When its first transmission left.
    pub start: Duration,
    /// When its first transmission arrived.
    pub landed: Duration,
    /// How many transmissions belong to it.
    pub transmissions: usize,
}

/// A snapshot of the recorder.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// The records, in the order they were sent.
    pub records: Vec<Record>,
    /// How many records did not fit in the recorder's capacity.
    pub overflow: usize,
}

impl Recording {
    /// The flights on the critical path, in order.
    ///
    /// Walking the delivered transmissions in the order they were sent, one
    /// opens a new flight when it goes the other way than the current flight
    /// and leaves once that flight has begun to arrive, so it may depend on
    /// it. A transmission the other way that leaves before then cannot
    /// depend on the current flight (an eager header, an ACK of earlier
    /// data) and opens none. Lost transmissions carry nothing and are
    /// skipped.
    pub fn flights(&self) -> Vec<Flight> {
        let mut flights: Vec<Flight> = Vec::new();
        let mut delivered: Vec<&Record> = self
            .records
            .iter()
            .filter(|r| r.delivered.is_some())
            .collect();
        delivered.sort_by_key(|r| r.sent);
        for record in delivered {
            let landed = record.delivered.unwrap_or_default();
            match flights.last_mut() {
                Some(flight) if flight.from == record.from.ip() => {
                    flight.transmissions += 1;
                    flight.landed = flight.landed.min(landed);
                }
                Some(flight) if record.sent < flight.landed => {}
                _ => flights.push(Flight {
                    from: record.from.ip(),
                    start: record.sent,
                    landed,
                    transmissions: 1,
                }),
            }
        }
        flights
    }

    /// Round trips on the critical path: two flights make one (a lone last
    /// flight counts as a whole round trip).
    pub fn round_trips(&self) -> usize {
        self.flights().len().div_ceil(2)
    }

    /// The records sent before `until`.
    pub fn until(&self, until: Duration) -> Recording {
        self.filter(|record| record.sent < until)
    }

    /// The records sent at or after `since`.
    pub fn since(&self, since: Duration) -> Recording {
        self.filter(|record| record.sent >= since)
    }

    fn filter(&self, keep: impl Fn(&Record) -> bool) -> Recording {
        Recording {
            records: self.records.iter().filter(|r| keep(r)).cloned().collect(),
            overflow: self.overflow,
        }
    }

    /// When the first transmission with this label was delivered.
    pub fn first_delivery(&self, label: &str) -> Option<Duration> {
        self.records
            .iter()
            .filter(|r| r.label.as_deref() == Some(label))
            .filter_map(|r| r.delivered)
            .min()
    }

    /// [`Recording::first_delivery`] in units of `rtt`: the time to first
    /// byte of what carries this label, in round trips.
    pub fn first_delivery_in_rtts(&self, label: &str, rtt: Duration) -> Option<f64> {
        Some(self.first_delivery(label)?.as_secs_f64() / rtt.as_secs_f64())
    }

    /// The two hosts of the ladder: the first sender on the left.
    fn hosts(&self) -> Option<(IpAddr, IpAddr)> {
        let first = self.records.first()?;
        Some((first.from.ip(), first.to.ip()))
    }

    /// A ladder diagram as monospace text, one line per transmission between
    /// the first two hosts, with times in milliseconds.
    pub fn ladder_text(&self) -> String {
        const WIDTH: usize = 44;
        let Some((left, right)) = self.hosts() else {
            return String::from("(no transmissions)\n");
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>9} {:>9}  {:<w$}  {}",
            "sent ms",
            "recv ms",
            left.to_string(),
            right,
            w = WIDTH
        );
        for r in self.between(left, right) {
            let recv = r
                .delivered
                .map_or_else(|| "lost".to_string(), |d| format!("{:.3}", ms(d)));
            let text = format!(" {} ", describe(r));
            let dashes = WIDTH.saturating_sub(text.chars().count() + 1);
            let (pad_l, pad_r) = (dashes / 2, dashes - dashes / 2);
            let arrow = if r.from.ip() == left {
                let tip = if r.delivered.is_some() { ">" } else { "x" };
                format!(
                    "|{}{}{}{}|",
                    "-".repeat(pad_l),
                    text,
                    "-".repeat(pad_r),
                    tip
                )
            } else {
                let tip = if r.delivered.is_some() { "<" } else { "x" };
                format!(
                    "|{}{}{}{}|",
                    tip,
                    "-".repeat(pad_l),
                    text,
                    "-".repeat(pad_r)
                )
            };
            let _ = writeln!(out, "{:>9.3} {:>9}  {}", ms(r.sent), recv, arrow);
        }
        out
    }

    /// The same ladder as a standalone SVG image: time flows down.
    pub fn ladder_svg(&self) -> String {
        let Some((left, right)) = self.hosts() else {
            return String::from(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>"#,
            );
        };
        let records: Vec<&Record> = self.between(left, right).collect();
        let end = records
            .iter()
            .map(|r| r.delivered.unwrap_or(r.sent))
            .max()
            .unwrap_or_default()
            .max(Duration::from_millis(1));
        let (x_left, x_right, top, height) =
            (140.0, 460.0, 50.0, 40.0 * records.len().max(4) as f64);
        let y = |t: Duration| top + height * t.as_secs_f64() / end.as_secs_f64();
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="{h}" font-family="monospace" font-size="11">"#,
            h = top + height + 30.0
        );
        svg.push_str(r#"<defs><marker id="a" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>"#);
        for (x, host) in [(x_left, left), (x_right, right)] {
            let _ = write!(
                svg,
                r#"<text x="{x}" y="20" text-anchor="middle">{host}</text><line x1="{x}" y1="30" x2="{x}" y2="{y2}" stroke="black"/>"#,
                y2 = top + height + 10.0
            );
        }
        for r in records {
            let (x1, x2) = if r.from.ip() == left {
                (x_left, x_right)
            } else {
                (x_right, x_left)
            };
            let y1 = y(r.sent);
            let (x2, y2, style) = match r.delivered {
                Some(d) => (x2, y(d), r#"marker-end="url(#a)""#),
                None => ((x1 + x2) / 2.0, y1 + 12.0, r#"stroke-dasharray="4 3""#),
            };
            let _ = write!(
                svg,
                r#"<line x1="{x1}" y1="{y1:.1}" x2="{x2}" y2="{y2:.1}" stroke="black" {style}/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{label}</text><text x="10" y="{y1:.1}">{t:.1} ms</text>"#,
                tx = (x1 + x2) / 2.0,
                ty = (y1 + y2) / 2.0 - 4.0,
                label = escape(&describe(r)),
                t = ms(r.sent),
            );
        }
        svg.push_str("</svg>\n");
        svg
    }

    fn between(&self, a: IpAddr, b: IpAddr) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| {
            let (from, to) = (r.from.ip(), r.to.ip());
            (from == a && to == b) || (from == b && to == a)
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn describe(r: &Record) -> String {
    match &r.label {
        Some(label) if r.bytes == 0 => label.to_string(),
        Some(label) => format!("{label} ({} B)", r.bytes),
        None => format!("{} B", r.bytes),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
