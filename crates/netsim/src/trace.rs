//! Trace files: recorded delivery opportunities and per-datagram fates.

use std::time::Duration;

use crate::Error;

/// The most lines a trace may have: a bound on memory for untrusted files.
pub const MAX_TRACE_LINES: usize = 10_000_000;

/// The latest timestamp a delivery trace may hold: 30 days, in milliseconds.
pub const MAX_TRACE_MS: u64 = 30 * 24 * 3600 * 1000;

/// Delivery opportunities in Mahimahi's format: one integer per line, the
/// millisecond at which the link can deliver one packet of up to an MTU.
/// The trace repeats with the period of its last timestamp, as Mahimahi's
/// link shell replays it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryTrace {
    opportunities: Vec<u64>,
    period: u64,
}

impl DeliveryTrace {
    /// Parses a Mahimahi trace: non-decreasing millisecond timestamps, one
    /// per line; blank lines are ignored.
    ///
    /// # Errors
    /// [`Error::Trace`] for a line that is not an integer, a timestamp that
    /// goes backwards, an empty trace, one whose last timestamp is 0, or
    /// more than [`MAX_TRACE_LINES`] lines.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut opportunities = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if opportunities.len() == MAX_TRACE_LINES {
                return Err(Error::Trace {
                    line: line_no,
                    reason: "too many lines",
                });
            }
            let ms: u64 = line.parse().map_err(|_| Error::Trace {
                line: line_no,
                reason: "not a whole number of milliseconds",
            })?;
            if ms > MAX_TRACE_MS {
                return Err(Error::Trace {
                    line: line_no,
                    reason: "timestamp beyond 30 days",
                });
            }
            if opportunities.last().is_some_and(|&last| ms < last) {
                return Err(Error::Trace {
                    line: line_no,
                    reason: "timestamps go backwards",
                });
            }
            opportunities.push(ms);
        }
        let period = match opportunities.last() {
            None => {
                return Err(Error::Trace {
                    line: 0,
                    reason: "no delivery opportunities",
                });
            }
            Some(0) => {
                return Err(Error::Trace {
                    line: 0,
                    reason: "the trace must span time",
                });
            }
            Some(&last) => last,
        };
        Ok(DeliveryTrace {
            opportunities,
            period,
        })
    }

    /// The time of opportunity number `n` (counting from 0), the trace
    /// repeating forever.
    pub fn opportunity(&self, n: u64) -> Duration {
        let len = self.opportunities.len() as u64;
        let lap = n / len;
        let ms = lap
            .saturating_mul(self.period)
            .saturating_add(self.opportunities[(n % len) as usize]);
        Duration::from_millis(ms)
    }

    /// The first opportunity at or after `at`, numbered from `not_before`
    /// on (opportunities before it are used up).
    pub fn next_opportunity(&self, at: Duration, not_before: u64) -> u64 {
        let len = self.opportunities.len() as u64;
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        // Skip whole idle laps at once, then scan at most one lap.
        let lap_start = (ms / self.period).saturating_mul(len).saturating_sub(len);
        let mut n = not_before.max(lap_start);
        while self.opportunity(n) < at {
            n += 1;
        }
        n
    }

    /// The number of opportunities in one period.
    pub fn len(&self) -> usize {
        self.opportunities.len()
    }

    /// Whether the trace has no opportunities (never true once parsed).
    pub fn is_empty(&self) -> bool {
        self.opportunities.is_empty()
    }
}

/// Per-datagram fates: each line is either a one-way delay in milliseconds
/// (the datagram arrives after it) or `-` (the datagram is lost). Datagrams
/// take the lines in order, cycling.
#[derive(Debug, Clone, PartialEq)]
pub struct LossDelayTrace {
    fates: Vec<Option<Duration>>,
}

impl LossDelayTrace {
    /// Parses the trace; blank lines and lines starting with `#` are skipped.
    ///
    /// # Errors
    /// [`Error::Trace`] for a malformed line, an empty trace, or more than
    /// [`MAX_TRACE_LINES`] lines.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut fates = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if fates.len() == MAX_TRACE_LINES {
                return Err(Error::Trace {
                    line: line_no,
                    reason: "too many lines",
                });
            }
            let fate = if line == "-" {
                None
            } else {
                let ms: f64 = line.parse().map_err(|_| Error::Trace {
                    line: line_no,
                    reason: "neither '-' nor a delay in milliseconds",
                })?;
                if !(0.0..=3_600_000.0).contains(&ms) {
                    return Err(Error::Trace {
                        line: line_no,
                        reason: "delay out of range",
                    });
                }
                Some(Duration::from_secs_f64(ms / 1000.0))
            };
            fates.push(fate);
        }
        if fates.is_empty() {
            return Err(Error::Trace {
                line: 0,
                reason: "no datagram fates",
            });
        }
        Ok(LossDelayTrace { fates })
    }

    /// The fate of datagram number `n` (counting from 0): its one-way
    /// delay, or `None` if it is lost.
    pub(crate) fn fate(&self, n: usize) -> Option<Duration> {
        self.fates[n % self.fates.len()]
    }
}
