//! criterion benches comparing onetrip's layerings with rust-libp2p.
//!
//! The benches live in `benches/benches/`; run them with `cargo bench`.
