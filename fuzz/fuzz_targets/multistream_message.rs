//! Untrusted bytes into onetrip-multistream's message parser: see
//! `onetrip_multistream::fuzzing::message` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_multistream::fuzzing::message(data);
});
