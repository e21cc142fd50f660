//! Kademlia lookups over netsim in virtual time, on a small network of
//! stock Swarms (`onetrip_bench::kad`): every query finds what it looks
//! for, a `get_record` costs exactly one fresh request (the stack's round
//! trips to a first response byte), and a stack that spends fewer round
//! trips on a connection's setup spends fewer on every lookup.

use std::time::Duration;

use onetrip_bench::{
    kad::{self, Paths, Setup, Stack},
    swarm::Libp2pTcp,
};
use onetrip_stack::{Layering, Preset, QuicLayering, measure};

const RTT: Duration = Duration::from_millis(100);

/// The median `get_closest_peers` and `get_record` of `stack`, in RTTs.
fn p50_rtts(stack: Stack, setup: &Setup) -> (f64, f64) {
    let outcome = measure::paused_runtime()
        .block_on(kad::run(stack, setup, Paths::Uniform(RTT)))
        .unwrap_or_else(|err| panic!("{}: {err}", stack.name()));
    assert_eq!(outcome.closest.len(), setup.queries);
    assert_eq!(outcome.records.len(), setup.queries);
    let p50 = |lookups: &[kad::Lookup]| {
        let latencies: Vec<Duration> = lookups.iter().map(|l| l.latency).collect();
        kad::percentile(&latencies, 50).as_secs_f64() / RTT.as_secs_f64()
    };
    let (closest, record) = (p50(&outcome.closest), p50(&outcome.records));
    println!(
        "{}: get_closest_peers p50 {closest:.2} RTT, get_record p50 {record:.2} RTT",
        stack.name()
    );
    (closest, record)
}

fn assert_whole(measured: f64, expected: f64, what: &str) {
    assert!(
        (measured - expected).abs() < 1e-6,
        "{what}: {measured:.3} RTT, expected {expected}"
    );
}

#[test]
fn lookups_cost_what_a_fresh_request_costs() {
    // More nodes than k (20), so that some do not hold a record.
    let setup = Setup {
        nodes: 24,
        queries: 3,
        records: 2,
        seed: 1,
    };
    let defaults = p50_rtts(Stack::Libp2p(Libp2pTcp::Defaults), &setup);
    let tcp = p50_rtts(Stack::Onetrip(Preset::Tcp(Layering::TCP_ONETRIP)), &setup);
    let warm = p50_rtts(
        Stack::Onetrip(Preset::Quic(QuicLayering::QUIC_0RTT)),
        &setup,
    );
    assert_whole(defaults.1, 4.0, "get_record, rust-libp2p defaults");
    assert_whole(tcp.1, 3.0, "get_record, tcp-onetrip");
    assert_whole(warm.1, 1.0, "get_record, quic-0rtt with tickets");
    assert!(
        warm.0 < tcp.0 && tcp.0 < defaults.0,
        "get_closest_peers: quic-0rtt {:.2}, tcp-onetrip {:.2}, rust-libp2p defaults {:.2} RTT",
        warm.0,
        tcp.0,
        defaults.0
    );
}
