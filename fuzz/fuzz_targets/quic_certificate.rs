//! Untrusted certificates: see `onetrip_tls::fuzzing::certificate`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_tls::fuzzing::certificate(data);
});
