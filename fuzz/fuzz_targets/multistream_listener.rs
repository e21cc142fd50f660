//! Untrusted bytes into onetrip-multistream's listener parser: see
//! `onetrip_multistream::fuzzing::listener` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = onetrip_multistream::fuzzing::listener(data);
});
