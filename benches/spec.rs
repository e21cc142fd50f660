//! `spec/round-trips.md`, generated from measurements.

use std::{fmt::Write, time::Duration};

use onetrip_netsim::{Carrier, Recording};
use onetrip_stack::{
    Layering, QuicLayering, Security,
    measure::{self, CLIENT, Measurement, ZeroRttServer},
};

use crate::swarm::{self, Libp2pTcp};

/// The one-way delays measured: RTT 20 ms and 100 ms.
const DELAYS: [Duration; 2] = [Duration::from_millis(10), Duration::from_millis(50)];

/// One row of the table: what was measured at each delay.
struct Row {
    name: String,
    transport: &'static str,
    note: &'static str,
    at: Vec<Measurement>,
    /// Whether segment sizes are the same in every run (not where a
    /// signature of varying length crosses the link).
    exact_sizes: bool,
}

/// Opens the section of `spec/round-trips.md` that the real-socket
/// cross-check against the other libp2p implementations writes
/// (`crosscheck`); the generator keeps it as it is.
pub const PEERS_SECTION_BEGIN: &str = "<!-- The cross-check across libp2p implementations: written by `cargo run --release -p onetrip-bench --bin crosscheck`, kept as it is by spec-tables. -->";

/// Closes that section.
pub const PEERS_SECTION_END: &str =
    "<!-- End of the cross-check across libp2p implementations. -->";

/// The cross-check section of `doc`, markers included.
pub fn peers_section(doc: &str) -> Option<&str> {
    let start = doc.find(PEERS_SECTION_BEGIN)?;
    let end = start + doc[start..].find(PEERS_SECTION_END)? + PEERS_SECTION_END.len();
    Some(&doc[start..end])
}

/// `doc` with its cross-check section replaced by `section`, or with
/// `section` inserted before the ladders.
pub fn with_peers_section(doc: &str, section: &str) -> String {
    if let Some(old) = peers_section(doc) {
        return doc.replacen(old, section, 1);
    }
    match doc.find(LADDERS) {
        Some(at) => format!("{}\n{section}\n{}", &doc[..at], &doc[at..]),
        None => format!("{doc}\n{section}\n"),
    }
}

/// [`round_trips_md`], keeping the real-socket cross-check section of the
/// `committed` document.
///
/// # Panics
/// As [`round_trips_md`].
pub fn round_trips_md_keeping(committed: &str) -> String {
    let generated = round_trips_md();
    match peers_section(committed) {
        Some(section) => with_peers_section(&generated, section),
        None => generated,
    }
}

const LADDERS: &str = "\n## Ladders";

/// Runs every measurement (in virtual time: this takes well under a
/// second of real time) and renders `spec/round-trips.md`.
///
/// # Panics
/// If a measurement fails; none does on the loss-free links used.
pub fn round_trips_md() -> String {
    let runtime = measure::paused_runtime();
    let rows = runtime.block_on(measure_all());
    render(&rows)
}

async fn measure_all() -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, layering) in Layering::PRESETS {
        rows.push(Row {
            name: format!("`{name}`"),
            transport: "TCP",
            note: tcp_note(layering),
            at: each_delay(|d| async move { measure::tcp(layering, d).await.expect(name) }).await,
            // TLS certificates carry ECDSA signatures, whose size varies.
            exact_sizes: layering.security_protocol == Security::Noise,
        });
    }
    let reconnects = [
        (
            "tcp-tls-0rtt, reconnect",
            Layering::TCP_TLS_0RTT,
            ZeroRttServer::Accepts,
            "stream, protocol and request as TLS early data with the ClientHello",
        ),
        (
            "tcp-tls-0rtt, server refuses early data",
            Layering::TCP_TLS_0RTT,
            ZeroRttServer::Refuses,
            "its tickets allow no early data: resumed, as `tcp-tls-onetrip`",
        ),
        (
            "tcp-tls-0rtt, server rejects early data",
            Layering::TCP_TLS_0RTT,
            ZeroRttServer::Rejects,
            "the early data is sent again after the handshake",
        ),
        (
            "tcp-onetrip-tfo, reconnect",
            Layering::TCP_ONETRIP_TFO,
            ZeroRttServer::Accepts,
            "`/noise` and Noise message 1 in the SYN (TCP Fast Open)",
        ),
        (
            "tcp-tls-0rtt-tfo, reconnect",
            Layering::TCP_TLS_0RTT_TFO,
            ZeroRttServer::Accepts,
            "`/tls/1.0.0`, the ClientHello and the early data (stream, protocol, request) in the SYN: TCP's limit",
        ),
        (
            "tcp-tls-0rtt-tfo, server refuses early data",
            Layering::TCP_TLS_0RTT_TFO,
            ZeroRttServer::Refuses,
            "the ClientHello in the SYN, the request with the client's Finished",
        ),
        (
            "tcp-tls-0rtt-tfo, server rejects early data",
            Layering::TCP_TLS_0RTT_TFO,
            ZeroRttServer::Rejects,
            "the ClientHello in the SYN; the early data sent again with the client's Finished",
        ),
    ];
    for (name, layering, server, note) in reconnects {
        rows.push(Row {
            name: format!("`{name}`"),
            transport: "TCP",
            note,
            at: each_delay(|d| async move {
                measure::tcp_resumed(layering, d, server, true)
                    .await
                    .expect(name)
            })
            .await,
            exact_sizes: layering.security_protocol == Security::Noise,
        });
    }
    for stack in Libp2pTcp::ALL {
        rows.push(Row {
            name: format!("{stack}"),
            transport: "TCP",
            note: libp2p_note(stack),
            at: each_delay(
                |d| async move { swarm::libp2p_tcp(stack, d).await.expect("rust-libp2p") },
            )
            .await,
            // libp2p-tls certificates carry ECDSA signatures.
            exact_sizes: stack != Libp2pTcp::TlsLazySubstreams,
        });
    }
    let quic = [
        (
            "quic",
            QuicLayering::QUIC,
            ZeroRttServer::Accepts,
            false,
            "stream protocol interactive",
        ),
        (
            "quic-optimistic",
            QuicLayering::QUIC_OPTIMISTIC,
            ZeroRttServer::Accepts,
            false,
            "stream protocol and request with the client's Finished",
        ),
        (
            "quic-0rtt, first connection",
            QuicLayering::QUIC_0RTT,
            ZeroRttServer::Accepts,
            false,
            "no ticket yet: as `quic-optimistic`",
        ),
        (
            "quic-0rtt, reconnect",
            QuicLayering::QUIC_0RTT,
            ZeroRttServer::Accepts,
            true,
            "stream, protocol and request as 0-RTT data",
        ),
        (
            "quic-0rtt, server refuses 0-RTT",
            QuicLayering::QUIC_0RTT,
            ZeroRttServer::Refuses,
            true,
            "its tickets allow no early data: resumed 1-RTT",
        ),
        (
            "quic-0rtt, server rejects 0-RTT",
            QuicLayering::QUIC_0RTT,
            ZeroRttServer::Rejects,
            true,
            "the 0-RTT data is replayed on a fresh stream",
        ),
    ];
    for (name, layering, server, reconnect, note) in quic {
        rows.push(Row {
            name: format!("`{name}`"),
            transport: "QUIC",
            note,
            at: each_delay(|d| async move {
                measure::quic(layering, d, server, reconnect)
                    .await
                    .expect(name)
            })
            .await,
            exact_sizes: false,
        });
    }
    rows
}

fn libp2p_note(stack: Libp2pTcp) -> &'static str {
    match stack {
        Libp2pTcp::Defaults => {
            "a `Swarm`: multistream-select `V1Lazy` for `/noise` and `/yamux/1.0.0`, `V1` for the stream"
        }
        Libp2pTcp::LazySubstreams => "a `Swarm`: `V1Lazy` for the stream too",
        Libp2pTcp::TlsLazySubstreams => {
            "a `Swarm`: `/tls/1.0.0` (`V1Lazy`), yamux by multistream-select, `V1Lazy` for the stream; the libp2p test-plans perf configuration"
        }
    }
}

fn tcp_note(layering: Layering) -> &'static str {
    match layering.name() {
        Some("tcp-classic") => "every negotiation interactive",
        Some("tcp-optimistic-app") => "the stream protocol proposed with the request",
        Some("tcp-libp2p-default") => {
            "`/noise` with Noise message 1, `/yamux/1.0.0` with message 3"
        }
        Some("tcp-early-muxer") => "the muxer inside the Noise handshake",
        Some("tcp-onetrip") => "all of the above: the limit for TCP and Noise XX",
        Some("tcp-tls-classic") => {
            "`/tls/1.0.0`, TLS 1.3, muxer and stream protocol all interactive"
        }
        Some("tcp-tls-onetrip") => {
            "`/tls/1.0.0` with the ClientHello, the muxer in ALPN, the stream protocol and request with the client's Finished"
        }
        Some("tcp-tls-0rtt") => "first connection, no ticket yet: as `tcp-tls-onetrip`",
        Some("tcp-onetrip-tfo") => {
            "first connection: the SYN asks for a Fast Open cookie; as `tcp-onetrip`"
        }
        Some("tcp-tls-0rtt-tfo") => {
            "first connection, no cookie or ticket yet: as `tcp-tls-onetrip`"
        }
        _ => "a layering of no preset",
    }
}

async fn each_delay<F, Fut>(measure: F) -> Vec<Measurement>
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Measurement>,
{
    let mut at = Vec::new();
    for delay in DELAYS {
        at.push(measure(delay).await);
    }
    at
}

fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str(
        "| layering | transport | TTFB at RTT 20 ms | TTFB at RTT 100 ms | flights | what saves round trips |\n\
         |---|---|---|---|---|---|\n",
    );
    for row in rows {
        let cells: Vec<String> = row
            .at
            .iter()
            .map(|m| {
                format!(
                    "{} RTT ({} ms)",
                    fmt_rtts(m.ttfb_rtts()),
                    m.ttfb.as_millis()
                )
            })
            .collect();
        let flights = row.at.last().map_or(0, |m| m.recording.flights().len());
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.name, row.transport, cells[0], cells[1], flights, row.note
        );
    }
    out.push_str(NOT_MEASURED);
    out.push_str(LADDERS);
    out.push_str("\n\nEach at RTT 100 ms (one-way 50 ms), from the dial to the first response byte; `→` leaves the dialer (10.0.0.1), `←` the listener (10.0.0.2). TCP segments show their payload bytes, except where TLS carries a certificate (its ECDSA signature varies in length from run to run); QUIC datagrams show none, for the same reason.\n");
    for row in rows {
        let Some(m) = row.at.last() else { continue };
        let _ = write!(
            out,
            "\n### {} ({})\n\n```\n{}```\n",
            row.name.trim_matches('`'),
            row.transport,
            ladder(&m.recording, row.exact_sizes)
        );
    }
    out
}

/// `6`, or `2.5` for a measurement between whole round trips.
pub fn fmt_rtts(rtts: f64) -> String {
    if (rtts - rtts.round()).abs() < 1e-9 {
        format!("{}", rtts.round())
    } else {
        format!("{rtts:.2}")
    }
}

/// A ladder: one line per transmission, in the order sent.
fn ladder(recording: &Recording, exact_sizes: bool) -> String {
    let mut records: Vec<_> = recording
        .records
        .iter()
        .filter(|r| r.delivered.is_some())
        .collect();
    records.sort_by_key(|r| (r.sent, r.delivered));
    let mut out = String::from("  sent ms  recv ms\n");
    for record in records {
        let delivered = record.delivered.unwrap_or_default();
        let arrow = if record.from.ip() == std::net::IpAddr::from(CLIENT) {
            "→"
        } else {
            "    ←"
        };
        let what = match (&record.label, record.carrier) {
            // A SYN that carries data (TCP Fast Open).
            (Some(label), Carrier::Stream) if record.bytes > 0 && exact_sizes => {
                format!("{label} + {} B", record.bytes)
            }
            (Some(label), Carrier::Stream) if record.bytes > 0 => format!("{label} + data"),
            (Some(label), _) => label.to_string(),
            (None, Carrier::Stream) if exact_sizes => format!("{} B", record.bytes),
            (None, Carrier::Stream) => "segment".into(),
            (None, Carrier::Datagram) => "datagram".into(),
        };
        let _ = writeln!(
            out,
            "  {:7}  {:7}  {arrow} {what}",
            record.sent.as_millis(),
            delivered.as_millis()
        );
    }
    out
}

const HEADER: &str = "# Round trips to the first response byte

<!-- Generated by `cargo run -p onetrip-bench --bin spec-tables`; do not edit.
     `cargo test -p onetrip-bench --test spec_tables` fails when it differs. -->

Every number below is measured, not typed: each layering runs its real code
(onetrip's crates; for the baselines, rust-libp2p `Swarm`s built with
`SwarmBuilder` over a netsim `Transport`) over a netsim link in virtual time
(tokio's paused clock), so times are exact. TTFB is the time
from the dialer's `dial` (TCP: the `connect` call) to the first byte of the
response to a 32-byte request on a fresh stream (`/ipfs/ping/1.0.0`, echoed).
The link is loss-free; TCP's connect costs one RTT (SYN, SYN-ACK), the ACK
leaves with the dialer's first bytes; with TCP Fast Open, a reconnect's SYN
carries the dialer's first flight (see tcp-stack.md). Flights: the transmissions on the
critical path grouped by direction (two make a round trip), at RTT 100 ms.

";

const NOT_MEASURED: &str = "
rust-libp2p's QUIC (libp2p-quic) is not in this table: its transport binds
its own `std::net::UdpSocket` for every listener and dialer and hands it to
quinn; nothing lets it take another socket (quinn's `AsyncUdpSocket`, which
netsim's datagram link implements), so it cannot run over netsim. It is
measured over real sockets through the delay relay instead, with `V1` and
with `V1Lazy` substreams: `cargo run --release -p onetrip-bench --bin
crosscheck`. It accepts no 0-RTT data; its loopback cost is in the `quic`
bench group.
";
