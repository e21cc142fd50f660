//! Untrusted bytes into onetrip-noise: see `onetrip_noise::fuzzing::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_noise::fuzzing::frames(data);
});
