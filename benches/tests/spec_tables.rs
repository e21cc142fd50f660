//! `spec/round-trips.md` is what the measurements say, exactly.

#[test]
fn round_trips_md_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/round-trips.md");
    let committed = std::fs::read_to_string(path).expect("spec/round-trips.md exists");
    let generated = onetrip_bench::spec::round_trips_md_keeping(&committed);
    if committed != generated {
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        panic!(
            "spec/round-trips.md differs from the measurements from line {}: \
             regenerate it with `cargo run -p onetrip-bench --bin spec-tables`\n\
             committed: {:?}\nmeasured:  {:?}",
            first + 1,
            committed.lines().nth(first),
            generated.lines().nth(first)
        );
    }
}
