//! Untrusted binary multiaddrs: see `onetrip_stack::fuzzing::address`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    onetrip_stack::fuzzing::address(data);
});
