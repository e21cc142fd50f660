//! Untrusted bytes into onetrip-noise: see `onetrip_noise::fuzzing::handshake`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_noise::fuzzing::handshake(data);
});
