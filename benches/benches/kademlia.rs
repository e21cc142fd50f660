//! `kademlia`: Kademlia lookup latency per stack, 50 Swarms over netsim in
//! virtual time (`onetrip_bench::kad`); prints the table, writes the
//! summary's section and refreshes the summary. `spec/kademlia.md` comes
//! from the same measurement, by `cargo run --release -p onetrip-bench
//! --bin kademlia`.
//!
//! Without `--bench` (the CI smoke run, `cargo test --benches`) it measures
//! one stack on a network of 22 nodes, and writes nothing.

use onetrip_bench::{kad, summary};
use onetrip_stack::{Preset, QuicLayering};

const WARM_QUIC: kad::Stack = kad::Stack::Onetrip(Preset::Quic(QuicLayering::QUIC_0RTT));

fn main() {
    let smoke = !std::env::args().any(|arg| arg == "--bench");
    let (sizes, stacks) = if smoke {
        let sizes = kad::Setup {
            nodes: 22,
            queries: 1,
            records: 1,
            seed: 1,
        };
        (sizes, &[WARM_QUIC][..])
    } else {
        (kad::PUBLISHED, &kad::Stack::ALL[..])
    };
    let rows = kad::measure_rows(&sizes, stacks).unwrap_or_else(|err| panic!("kademlia: {err}"));
    let table = kad::markdown(&rows);
    println!("{table}");
    if !smoke {
        if let Err(err) = summary::write_section(summary::KADEMLIA, &table) {
            eprintln!("kademlia: the summary's section not written: {err}");
        }
        summary::write();
    }
}
