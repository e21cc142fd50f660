//! Untrusted certificates: see `onetrip_quic::fuzzing::certificate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_quic::fuzzing::certificate(data);
});
