//! The JSON lines a client prints: libp2p test-plans' perf format, with
//! optional fields for the other scenarios.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One line of output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `intermediary` (once a second, the bytes of that second) or
    /// `final` (the whole run).
    #[serde(rename = "type")]
    pub kind: ReportKind,
    /// The time this line covers.
    pub time_seconds: f64,
    /// Bytes uploaded in that time.
    pub upload_bytes: u64,
    /// Bytes downloaded in that time.
    pub download_bytes: u64,
    /// Requests made (latency, connections and streams scenarios).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    /// Requests completed per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// Latency percentiles of the requests, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Percentiles>,
}

/// Which kind of line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// Progress over the last second.
    Intermediary,
    /// The whole run.
    Final,
}

/// Latency percentiles, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples`; `None` if there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: usize| {
            let index = (p * samples.len()).div_ceil(100).max(1) - 1;
            samples[index].as_secs_f64()
        };
        Some(Percentiles {
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
        })
    }
}

impl Report {
    /// A line for `upload` and `download` bytes over `time`.
    pub fn new(kind: ReportKind, time: Duration, upload: u64, download: u64) -> Self {
        Report {
            kind,
            time_seconds: time.as_secs_f64(),
            upload_bytes: upload,
            download_bytes: download,
            iterations: None,
            per_second: None,
            latency: None,
        }
    }

    /// The line as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_test_plans_field_names() {
        let line =
            Report::new(ReportKind::Intermediary, Duration::from_millis(1500), 3, 4).to_json();
        assert_eq!(
            line,
            r#"{"type":"intermediary","timeSeconds":1.5,"uploadBytes":3,"downloadBytes":4}"#
        );
        let parsed: Report = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed.kind, ReportKind::Intermediary);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_secs).collect();
        let p = Percentiles::of(&mut samples).unwrap();
        assert_eq!((p.p50, p.p90, p.p99), (50.0, 90.0, 99.0));
        let mut one = vec![Duration::from_secs(7)];
        let p = Percentiles::of(&mut one).unwrap();
        assert_eq!((p.p50, p.p99), (7.0, 7.0));
        assert!(Percentiles::of(&mut []).is_none());
    }
}
