//! Kademlia lookup latency per stack (`onetrip_bench::kad`): `cargo run
//! --release -p onetrip-bench --bin kademlia` measures every stack on both
//! kinds of paths, prints the table, writes `spec/kademlia.md` and the
//! bench summary's section (`target/onetrip-bench/kademlia.md`).

use std::{path::PathBuf, process::ExitCode};

use onetrip_bench::{kad, summary};

fn main() -> ExitCode {
    let rows = match kad::measure_rows(&kad::PUBLISHED, &kad::Stack::ALL) {
        Ok(rows) => rows,
        Err(err) => {
            eprintln!("kademlia: {err}");
            return ExitCode::FAILURE;
        }
    };
    let table = kad::markdown(&rows);
    println!("{table}");
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/kademlia.md");
    let written = std::fs::write(&spec, kad::spec_md(&kad::PUBLISHED, &rows))
        .and_then(|()| summary::write_section(summary::KADEMLIA, &table));
    match written {
        Ok(()) => {
            eprintln!("wrote {}", spec.display());
            summary::write();
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kademlia: {err}");
            ExitCode::FAILURE
        }
    }
}
