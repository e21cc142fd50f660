//! Two stock rust-libp2p Swarms on onetrip's transport
//! (`onetrip_stack::libp2p::Transport`), `V1Lazy` substreams, over a netsim
//! link in virtual time: a reconnect with QUIC 0-RTT reaches its first
//! response byte in one round trip, and the TCP presets (over netsim's
//! stream links through `StreamUpgrade`) keep their three.

use std::time::Duration;

use onetrip_bench::swarm;
use onetrip_stack::{Layering, Preset, QuicLayering, measure};

const DELAY: Duration = Duration::from_millis(25);

fn round_trips(preset: Preset, reconnect: bool) -> f64 {
    let measured = measure::paused_runtime()
        .block_on(swarm::onetrip(preset, DELAY, reconnect))
        .unwrap_or_else(|err| panic!("{preset:?}, reconnect {reconnect}: {err}"));
    println!(
        "{preset:?}, reconnect {reconnect}: {:.3} RTT\n{}",
        measured.ttfb_rtts(),
        measured.recording.ladder_text()
    );
    measured.ttfb_rtts()
}

/// Whole round trips, and no more than a hair over: the bytes' own
/// transmission time at netsim's default rate (and no less than a
/// floating-point hair under: 150 ms / 50 ms is 2.9999…).
fn assert_rtts(measured: f64, expected: f64, what: &str) {
    assert!(
        (expected - 1e-9..expected + 0.05).contains(&measured),
        "{what}: {measured:.3} RTT, expected {expected}"
    );
}

#[test]
fn a_swarm_reconnect_over_quic_0rtt_takes_one_round_trip() {
    let preset = Preset::Quic(QuicLayering::QUIC_0RTT);
    assert_rtts(round_trips(preset, false), 2.0, "fresh quic-0rtt");
    assert_rtts(round_trips(preset, true), 1.0, "resumed quic-0rtt");
}

#[test]
fn a_swarm_without_0rtt_reconnects_in_two_round_trips() {
    let preset = Preset::Quic(QuicLayering::QUIC_OPTIMISTIC);
    assert_rtts(round_trips(preset, true), 2.0, "resumed quic-optimistic");
}

#[test]
fn a_swarm_over_tcp_presets_takes_three_round_trips() {
    for layering in [Layering::TCP_ONETRIP, Layering::TCP_TLS_ONETRIP] {
        let preset = Preset::Tcp(layering);
        assert_rtts(round_trips(preset, false), 3.0, &format!("{preset:?}"));
    }
}
