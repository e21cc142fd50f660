//! Drivers for the fuzz targets: the trace parsers take untrusted files.

use crate::{DeliveryTrace, LossDelayTrace, LossModel, LossProcess};

/// Parses `data` as both kinds of trace; whatever parses must be usable.
pub fn traces(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(trace) = DeliveryTrace::parse(text) {
        assert!(!trace.is_empty());
        let mut last = trace.opportunity(0);
        for n in 1..(2 * trace.len() as u64 + 2) {
            let next = trace.opportunity(n);
            assert!(next >= last, "opportunities go backwards");
            last = next;
        }
    }
    if let Ok(trace) = LossDelayTrace::parse(text) {
        let mut process = LossProcess::new(LossModel::Trace(trace), 0);
        for _ in 0..16 {
            process.next_fate();
        }
    }
}
