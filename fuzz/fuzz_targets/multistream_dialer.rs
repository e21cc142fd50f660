//! Untrusted bytes into onetrip-multistream's dialer parser: see
//! `onetrip_multistream::fuzzing::dialer` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = onetrip_multistream::fuzzing::dialer(data);
});
