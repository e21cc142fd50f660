//! The libp2p perf protocol (`/perf/1.0.0`, libp2p specs: perf/perf.md)
//! over onetrip connections, and the scenarios of the `onetrip-perf` CLI.
//!
//! - [`run_client`] and [`serve`] speak the protocol on any stream: the
//!   client sends a big-endian u64 (the bytes it wants back), uploads,
//!   closes its write side and reads to the end; the server drains the
//!   upload to its end, only then sends the bytes asked for, and closes.
//!   Buffers are fixed (64 KiB) whatever the sizes; a stalled client, a
//!   short header, sizes beyond the server's limits are typed [`Error`]s.
//! - [`runner`] runs them over [`onetrip_stack`] connections (every TCP and
//!   QUIC preset): throughput, latency, connections per second, streams
//!   per second.
//! - [`Report`] is the JSON line format of libp2p test-plans' perf runner.

mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod protocol;
mod report;
pub mod runner;

pub use crate::{
    error::Error,
    protocol::{
        HEADER_LEN, PROTOCOL, Progress, RunParams, RunTimes, Served, ServerLimits, run_client,
        serve,
    },
    report::{Percentiles, Report, ReportKind},
};
