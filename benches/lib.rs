//! criterion benches comparing onetrip's layerings with rust-libp2p, and
//! the measured tables of `spec/`.
//!
//! The benches live in `benches/benches/`; run them with `cargo bench`.
//! `cargo run -p onetrip-bench --bin spec-tables` writes
//! `spec/round-trips.md` from measurements ([`spec::round_trips_md`]);
//! `tests/spec_tables.rs` fails when the committed file differs.
//! `cargo run --release -p onetrip-bench --bin crosscheck` measures the same
//! layerings over real loopback sockets through a delay relay ([`relay`]).
//! `cargo run --release -p onetrip-bench --bin kademlia` writes
//! `spec/kademlia.md`: Kademlia lookups per stack over netsim ([`kad`]).

#[path = "baseline.rs"]
pub mod baseline;
#[path = "emulated.rs"]
pub mod emulated;
#[path = "fixtures.rs"]
pub mod fixtures;
#[path = "heap.rs"]
pub mod heap;
#[path = "kad.rs"]
pub mod kad;
#[path = "relay.rs"]
pub mod relay;
#[path = "spec.rs"]
pub mod spec;
#[path = "summary.rs"]
pub mod summary;
#[path = "swarm.rs"]
pub mod swarm;
