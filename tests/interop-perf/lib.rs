//! Interoperability of onetrip-perf with rust-libp2p's libp2p-perf. The
//! tests are the `[[test]]` target beside this file.
