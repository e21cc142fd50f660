//! Writes `spec/round-trips.md` from measurements: `cargo run -p
//! onetrip-bench --bin spec-tables` (or `-- --check` to only compare).

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/round-trips.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = onetrip_bench::spec::round_trips_md_keeping(&committed);
    if std::env::args().any(|arg| arg == "--check") {
        if committed == generated {
            return ExitCode::SUCCESS;
        }
        eprintln!("{} differs from the measurements", path.display());
        return ExitCode::FAILURE;
    }
    if let Err(err) = std::fs::write(&path, generated) {
        eprintln!("cannot write {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}", path.display());
    ExitCode::SUCCESS
}
