//! Untrusted streams at a perf server: see `onetrip_perf::fuzzing::serve_bytes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_perf::fuzzing::serve_bytes(data);
});
