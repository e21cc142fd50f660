//! Untrusted trace files into onetrip-netsim's parsers: see
//! `onetrip_netsim::fuzzing::traces` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_netsim::fuzzing::traces(data);
});
