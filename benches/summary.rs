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

/// The stacks compared, in table order: onetrip's thirteen presets, then
/// rust-libp2p's TCP and QUIC configurations.
pub const STACKS: [&str; 18] = [
    "tcp-classic",
    "tcp-optimistic-app",
    "tcp-libp2p-default",
    "tcp-early-muxer",
    "tcp-onetrip",
    "tcp-tls-classic",
    "tcp-tls-onetrip",
    "tcp-tls-0rtt",
    "tcp-onetrip-tfo",
    "tcp-tls-0rtt-tfo",
    "quic",
    "quic-optimistic",
    "quic-0rtt",
    RUST_LIBP2P_TCP,
    RUST_LIBP2P_TCP_LAZY,
    RUST_LIBP2P_TLS_LAZY,
    LIBP2P_QUIC,
    LIBP2P_QUIC_LAZY,
];

/// rust-libp2p TCP + Noise + yamux, `V1` streams: its defaults.
pub const RUST_LIBP2P_TCP: &str = "rust-libp2p-tcp";
/// rust-libp2p TCP + Noise + yamux, `V1Lazy` streams.
pub const RUST_LIBP2P_TCP_LAZY: &str = "rust-libp2p-tcp-lazy";
/// rust-libp2p TCP + TLS + yamux, `V1Lazy` streams (its test-plans perf
/// configuration).
pub const RUST_LIBP2P_TLS_LAZY: &str = "rust-libp2p-tls-lazy";
/// libp2p-quic, `V1` streams: rust-libp2p's defaults.
pub const LIBP2P_QUIC: &str = "libp2p-quic";
/// libp2p-quic, `V1Lazy` streams.
pub const LIBP2P_QUIC_LAZY: &str = "libp2p-quic-lazy";

/// The rust-libp2p rows of each transport, any of which may be the best.
const RUST_LIBP2P: [(&str, Transport); 5] = [
    (RUST_LIBP2P_TCP, Transport::Tcp),
    (RUST_LIBP2P_TCP_LAZY, Transport::Tcp),
    (RUST_LIBP2P_TLS_LAZY, Transport::Tcp),
    (LIBP2P_QUIC, Transport::Quic),
    (LIBP2P_QUIC_LAZY, Transport::Quic),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp,
    Quic,
}

fn transport(stack: &str) -> Transport {
    RUST_LIBP2P
        .iter()
        .find(|(name, _)| *name == stack)
        .map_or_else(
            || {
                if stack.starts_with("tcp") {
                    Transport::Tcp
                } else {
                    Transport::Quic
                }
            },
            |(_, transport)| *transport,
        )
}

/// Connections at once per iteration of [`group::HANDSHAKES`].
pub const HANDSHAKES: usize = 64;

/// The cryptography each stack runs, stated next to its ratios: key
/// exchange, cipher (the first both sides offer), and the library.
fn suite(stack: &str) -> &'static str {
    match stack {
        RUST_LIBP2P_TLS_LAZY | LIBP2P_QUIC | LIBP2P_QUIC_LAZY => {
            "TLS 1.3, X25519MLKEM768, ChaCha20-Poly1305 (libp2p-tls: rustls, aws-lc-rs)"
        }
        RUST_LIBP2P_TCP | RUST_LIBP2P_TCP_LAZY => {
            "Noise XX, X25519, ChaCha20-Poly1305 (libp2p-noise: snow, pure Rust)"
        }
        s if s.starts_with("tcp-tls") => "TLS 1.3, X25519, AES-256-GCM (rustls, ring)",
        s if s.starts_with("tcp") => "Noise XX, X25519, ChaCha20-Poly1305 (snow with ring)",
        _ => "TLS 1.3, X25519, AES-256-GCM (rustls, ring)",
    }
}

/// The cipher bounds, benchmarks of [`group::DOWNLOAD`]: one core sealing
/// 64 KiB in place, with each cipher the stacks run.
pub mod bound {
    /// ChaCha20-Poly1305 (ring): Noise's, and rust-libp2p's TLS and QUIC.
    pub const CHACHA20_POLY1305: &str = "chacha20-poly1305-seal";
    /// AES-256-GCM (ring): onetrip's TLS and QUIC.
    pub const AES_256_GCM: &str = "aes-256-gcm-seal";
}

/// The bound of the cipher `stack` runs (see [`suite`]).
fn cipher_bound(stack: &str) -> &'static str {
    if suite(stack).contains("AES-256-GCM") {
        bound::AES_256_GCM
    } else {
        bound::CHACHA20_POLY1305
    }
}

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
    /// Fresh connections with a one-byte request, many at once.
    pub const HANDSHAKES: &str = "handshakes-per-second";

    /// Every group whose results the summary reads.
    pub const ALL: [&str; 6] = [
        HANDSHAKE_LOOPBACK,
        HANDSHAKE_VIRTUAL,
        STREAMS,
        DOWNLOAD,
        UPLOAD,
        HANDSHAKES,
    ];
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
    /// One core sealing with the stack's cipher, bytes per second, from the
    /// same run: the ceiling of a transfer whose ends each have a core.
    pub cipher_bound_bytes_per_sec: Option<f64>,
    /// New stream and 1-byte round trip, seconds.
    pub stream_latency_secs: Option<f64>,
    /// Fresh connections with a one-byte request per second, 64 at once.
    pub handshakes_per_sec: Option<f64>,
    /// Heap bytes per idle connection, both ends together.
    pub idle_bytes: Option<u64>,
    /// Loopback TTFB divided by that of the best (fastest) rust-libp2p row
    /// of the same transport.
    pub ttfb_ratio_to_best_rust_libp2p: Option<f64>,
    /// That best row.
    pub best_rust_libp2p: Option<String>,
    /// The cryptography it runs.
    pub suite: String,
}

/// Collects every row from what has run so far.
pub fn rows() -> Vec<Row> {
    let idle = read_idle();
    let ttfb = |stack: &str| criterion_mean(group::HANDSHAKE_LOOPBACK, stack);
    let best = |of: Transport| {
        RUST_LIBP2P
            .iter()
            .filter(|(_, transport)| *transport == of)
            .filter_map(|(name, _)| Some((*name, ttfb(name)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    STACKS
        .iter()
        .map(|&stack| {
            let best = best(transport(stack));
            // Bytes per second of a benchmark that moves TRANSFER bytes.
            let rate = |group, name| criterion_mean(group, name).map(|secs| TRANSFER as f64 / secs);
            Row {
                stack: stack.into(),
                rtts: criterion_mean(group::HANDSHAKE_VIRTUAL, stack)
                    .map(|secs| secs / VIRTUAL_RTT_SECS),
                loopback_ttfb_secs: ttfb(stack),
                download_bytes_per_sec: rate(group::DOWNLOAD, stack),
                upload_bytes_per_sec: rate(group::UPLOAD, stack),
                cipher_bound_bytes_per_sec: rate(group::DOWNLOAD, cipher_bound(stack)),
                stream_latency_secs: criterion_mean(group::STREAMS, stack),
                handshakes_per_sec: criterion_mean(group::HANDSHAKES, stack)
                    .map(|secs| HANDSHAKES as f64 / secs),
                idle_bytes: idle.get(stack).copied(),
                ttfb_ratio_to_best_rust_libp2p: ttfb(stack)
                    .zip(best)
                    .map(|(ours, (_, theirs))| ours / theirs),
                best_rust_libp2p: best.map(|(name, _)| name.into()),
                suite: suite(stack).into(),
            }
        })
        .collect()
}

/// When each group's results were written (the newest of its criterion
/// estimates), and so which run they come from.
fn group_times() -> Vec<(&'static str, Option<std::time::SystemTime>)> {
    group::ALL
        .iter()
        .map(|&group| {
            let newest = STACKS
                .iter()
                .filter_map(|stack| {
                    let path = target_dir()
                        .join("criterion")
                        .join(group)
                        .join(stack)
                        .join("new/estimates.json");
                    std::fs::metadata(path).and_then(|m| m.modified()).ok()
                })
                .max();
            (group, newest)
        })
        .collect()
}

/// `2026-11-28 21:09:35 UTC`.
fn utc(time: std::time::SystemTime) -> String {
    let secs = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The commit the benches were built from, if git knows it.
fn commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let hash = String::from_utf8(out.stdout).ok()?;
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|out| !out.stdout.is_empty());
    Some(format!(
        "{}{}",
        hash.trim(),
        if dirty { " (with local changes)" } else { "" }
    ))
}

fn cell<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "—".into(), show)
}

/// The rows as Markdown, with where their results come from.
pub fn markdown(rows: &[Row]) -> String {
    let now = std::time::SystemTime::now();
    let mut out = String::from("# onetrip: stacks compared\n\n");
    let _ = writeln!(
        out,
        "Written {} by a bench target of commit {}.\n",
        utc(now),
        commit().unwrap_or_else(|| "unknown".into())
    );
    out.push_str(
        "Written by `cargo bench` from its results (criterion's, under `target/criterion/`, and the \
         idle bench's). RTT: round trips to the first response byte, measured in netsim virtual time. \
         TTFB: dial to first response byte on loopback (CPU cost). Throughput: one 64 MiB perf transfer \
         on loopback, the server on a core of its own; of cipher bound: download and upload over one \
         core sealing 64 KiB in place with the stack's cipher, in the same run. Stream: a new stream \
         and a 1-byte round trip on an open connection. Conn/s: fresh \
         connections with a one-byte request per second, 64 at once. Idle: heap bytes per idle \
         connection at 1,000 connections, both ends together. Ratio: loopback TTFB over that of the \
         best (fastest) rust-libp2p row of the same transport, named in the next column. A dash: not \
         measured.\n\n\
         Results by group, and when they were written; one written more than an hour before this \
         summary is marked as from an earlier run:\n\n",
    );
    let idle = std::fs::metadata(out_dir().join("idle.json")).and_then(|m| m.modified());
    let groups = group_times()
        .into_iter()
        .chain([("idle (bench target)", idle.ok())]);
    for (group, time) in groups {
        let when = time.map_or_else(|| "not run".into(), utc);
        let earlier = match (time, now.duration_since(time.unwrap_or(now))) {
            (Some(_), Ok(age)) if age > std::time::Duration::from_secs(3600) => {
                " — an earlier run (over an hour old)"
            }
            _ => "",
        };
        let _ = writeln!(out, "- `{group}`: {when}{earlier}");
    }
    out.push_str(
        "\n| stack | RTT | loopback TTFB | download | upload | of cipher bound | stream | conn/s | idle | TTFB ratio | to | cryptography |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
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
            cell(
                row.download_bytes_per_sec
                    .zip(row.upload_bytes_per_sec)
                    .zip(row.cipher_bound_bytes_per_sec),
                |((down, up), bound)| format!(
                    "{:.0} % / {:.0} % of {:.0} MiB/s",
                    100.0 * down / bound,
                    100.0 * up / bound,
                    bound / 1048576.0
                )
            ),
            cell(row.stream_latency_secs, |s| format!("{:.0} µs", s * 1e6)),
            cell(row.handshakes_per_sec, |r| format!("{r:.0}")),
            cell(row.idle_bytes, |b| format!("{:.1} KiB", b as f64 / 1024.0)),
            cell(row.ttfb_ratio_to_best_rust_libp2p, |r| format!("{r:.2}")),
            row.best_rust_libp2p.as_deref().unwrap_or("—"),
            row.suite,
        );
    }
    for (file, title) in SECTIONS {
        let path = out_dir().join(file);
        let Ok(section) = std::fs::read_to_string(&path) else {
            continue;
        };
        let when = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_or_else(|_| "unknown".into(), utc);
        let _ = write!(out, "\n## {title}\n\nWritten {when}.\n\n{section}");
    }
    out
}

/// The Kademlia section's file under [`out_dir`], written by the
/// `kademlia` bench and binary (`crate::kad`).
pub const KADEMLIA: &str = "kademlia.md";

/// The idle bench's section under [`out_dir`]: where an idle
/// connection's bytes go, by component.
pub const IDLE_COMPONENTS: &str = "idle-components.md";

/// Sections the summary shows after its table, when they were written:
/// (file under [`out_dir`], title).
const SECTIONS: [(&str, &str); 2] = [
    (
        IDLE_COMPONENTS,
        "Idle connections: heap bytes per connection (both ends), by component",
    ),
    (
        KADEMLIA,
        "Kademlia lookups: 50 Swarms over netsim, latency per stack (see spec/kademlia.md)",
    ),
];

/// Writes a section of the summary (Markdown) to `file` under
/// [`out_dir`]; [`write()`] shows it.
///
/// # Errors
/// If the file cannot be written.
pub fn write_section(file: &str, markdown: &str) -> std::io::Result<()> {
    let dir = out_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(file), markdown)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A new preset shows in the summary, and its crypto suite is named.
    #[test]
    fn every_preset_is_a_row() {
        for (name, preset) in onetrip_stack::Preset::all() {
            assert!(STACKS.contains(&name), "{name} is not in STACKS");
            let tls = match preset {
                onetrip_stack::Preset::Tcp(layering) => {
                    layering.security_protocol == onetrip_stack::Security::Tls
                }
                onetrip_stack::Preset::Quic(_) => true,
            };
            assert_eq!(suite(name).starts_with("TLS"), tls, "{name}");
        }
    }
}
