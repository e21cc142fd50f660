//! Untrusted bytes into a listener's connection setup: see
//! `onetrip_stack::fuzzing::inbound`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_stack::fuzzing::inbound(data);
});
