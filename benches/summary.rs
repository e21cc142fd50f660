//! The summary `cargo bench` leaves in `target/onetrip-bench/`: one row
//! per stack from the criterion results and the idle-memory table,
//! rewritten by each bench target as it ends, so it is complete after the
//! last whatever their order.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The stacks compared, in table order: onetrip's eight presets, then
/// rust-libp2p's two.
pub const STACKS: [&str; 10] = [
    "tcp-classic",
    "tcp-optimistic-app",
    "tcp-libp2p-default",
    "tcp-early-muxer",
    "tcp-onetrip",
    "quic",
    "quic-optimistic",
    "quic-0rtt",
    RUST_LIBP2P_TCP,
    LIBP2P_QUIC,
];

/// The rust-libp2p TCP baseline's name in the benches.
pub const RUST_LIBP2P_TCP: &str = "rust-libp2p-tcp";
/// The rust-libp2p QUIC baseline's name in the benches.
pub const LIBP2P_QUIC: &str = "libp2p-quic";

/// Group names, shared by the benches and the summary.
pub mod group {
    /// Dial to first response byte on loopback sockets.
    pub const HANDSHAKE_LOOPBACK: &str = "handshake-loopback";
    /// Dial to first response byte at RTT 50 ms in netsim virtual time:
    /// the figure is round trips × 50 ms.
    pub const HANDSHAKE_VIRTUAL: &str = "handshake-virtual-time-rtt50ms";
    /// A new stream and a 1-byte request and response on an open
    /// connection.
    pub const STREAMS: &str = "streams";
    /// 64 MiB perf download.
    pub const DOWNLOAD: &str = "throughput-download-64MiB";
    /// 64 MiB perf upload.
    pub const UPLOAD: &str = "throughput-upload-64MiB";
}

/// The virtual RTT of [`group::HANDSHAKE_VIRTUAL`], in seconds.
pub const VIRTUAL_RTT_SECS: f64 = 0.05;
/// Bytes moved per throughput iteration.
pub const TRANSFER: u64 = 64 << 20;

/// `target/`, where cargo builds (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// Where the summary and the idle table go.
pub fn out_dir() -> PathBuf {
    target_dir().join("onetrip-bench")
}

/// The mean of a criterion benchmark, in seconds, if it has run.
fn criterion_mean(group: &str, stack: &str) -> Option<f64> {
    #[derive(Deserialize)]
    struct Estimates {
        mean: Estimate,
    }
    #[derive(Deserialize)]
    struct Estimate {
        point_estimate: f64,
    }
    let path = target_dir()
        .join("criterion")
        .join(group)
        .join(stack)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: Estimates = serde_json::from_str(&text).ok()?;
    Some(estimates.mean.point_estimate / 1e9)
}

/// Heap bytes per idle connection, by stack, as the idle bench wrote them.
pub fn read_idle() -> BTreeMap<String, u64> {
    std::fs::read_to_string(out_dir().join("idle.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// One stack's row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// The stack.
    pub stack: String,
    /// Round trips to the first response byte (netsim, virtual time).
    pub rtts: Option<f64>,
    /// Dial to first response byte on loopback, seconds.
    pub loopback_ttfb_secs: Option<f64>,
    /// 64 MiB download, bytes per second.
    pub download_bytes_per_sec: Option<f64>,
    /// 64 MiB upload, bytes per second.
    pub upload_bytes_per_sec: Option<f64>,
    /// New stream and 1-byte round trip, seconds.
    pub stream_latency_secs: Option<f64>,
    /// Heap bytes per idle connection, both ends together.
    pub idle_bytes: Option<u64>,
    /// Loopback TTFB divided by the rust-libp2p baseline's on the same
    /// transport.
    pub ttfb_ratio_to_rust_libp2p: Option<f64>,
}

/// Collects every row from what has run so far.
pub fn rows() -> Vec<Row> {
    let idle = read_idle();
    let ttfb = |stack: &str| criterion_mean(group::HANDSHAKE_LOOPBACK, stack);
    STACKS
        .iter()
        .map(|&stack| {
            let baseline = if stack.starts_with("tcp") || stack == RUST_LIBP2P_TCP {
                RUST_LIBP2P_TCP
            } else {
                LIBP2P_QUIC
            };
            let rate = |group| criterion_mean(group, stack).map(|secs| TRANSFER as f64 / secs);
            Row {
                stack: stack.into(),
                rtts: criterion_mean(group::HANDSHAKE_VIRTUAL, stack)
                    .map(|secs| secs / VIRTUAL_RTT_SECS),
                loopback_ttfb_secs: ttfb(stack),
                download_bytes_per_sec: rate(group::DOWNLOAD),
                upload_bytes_per_sec: rate(group::UPLOAD),
                stream_latency_secs: criterion_mean(group::STREAMS, stack),
                idle_bytes: idle.get(stack).copied(),
                ttfb_ratio_to_rust_libp2p: ttfb(stack)
                    .zip(ttfb(baseline))
                    .map(|(ours, theirs)| ours / theirs),
            }
        })
        .collect()
}

fn cell<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "—".into(), show)
}

/// The rows as Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "# onetrip: stacks compared\n\n\
         Written by `cargo bench` from its results (criterion's, under `target/criterion/`, and the \
         idle bench's). RTT: round trips to the first response byte, measured in netsim virtual time. \
         TTFB: dial to first response byte on loopback (CPU cost). Throughput: one 64 MiB perf transfer \
         on loopback. Stream: a new stream and a 1-byte round trip on an open connection. Idle: heap \
         bytes per idle connection at 1,000 connections, both ends together. Ratio: loopback TTFB over \
         rust-libp2p's on the same transport. A dash: not measured in this run.\n\n\
         | stack | RTT | loopback TTFB | download | upload | stream | idle | TTFB ratio |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.stack,
            cell(row.rtts, |r| format!("{r:.2}")),
            cell(row.loopback_ttfb_secs, |s| format!("{:.0} µs", s * 1e6)),
            cell(row.download_bytes_per_sec, |b| format!(
                "{:.0} MiB/s",
                b / 1048576.0
            )),
            cell(row.upload_bytes_per_sec, |b| format!(
                "{:.0} MiB/s",
                b / 1048576.0
            )),
            cell(row.stream_latency_secs, |s| format!("{:.0} µs", s * 1e6)),
            cell(row.idle_bytes, |b| format!("{:.1} KiB", b as f64 / 1024.0)),
            cell(row.ttfb_ratio_to_rust_libp2p, |r| format!("{r:.2}")),
        );
    }
    out
}

/// Writes `summary.md` and `summary.json` under [`out_dir`]; says where on
/// stderr.
pub fn write() {
    let rows = rows();
    let dir = out_dir();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("summary.md"), markdown(&rows)))
        .and_then(|()| {
            let json = serde_json::to_string_pretty(&rows).map_err(std::io::Error::other)?;
            std::fs::write(dir.join("summary.json"), json)
        });
    match written {
        Ok(()) => eprintln!("summary: {}", dir.join("summary.md").display()),
        Err(err) => eprintln!("summary not written to {}: {err}", dir.display()),
    }
}
