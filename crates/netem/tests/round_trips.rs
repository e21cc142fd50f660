//! The round-trip table on the real kernel: every preset across the
//! emulated path at RTT 50 ms, the SYN included (the kernel's own TCP and
//! UDP through the forwarder), against the count netsim measures in
//! virtual time for the same layering. TCP Fast Open's reconnect saving is
//! checked here on a delayed path: both namespaces allow it.
//!
//! Real sockets can only be slower than virtual time, by the CPU time of
//! the stacks and the forwarder: a test build (cryptography optimised,
//! the rest not) takes a few milliseconds per connection, and on a busy
//! 2-core machine a QUIC dial took 28 ms more. So each preset's fastest
//! of [`RUNS`] dials (the one least disturbed by the machine) must measure
//! at least its virtual count and less than [`TOLERANCE`] more: the same
//! whole number of round trips, since one more would add at least 50 ms.
//! Its median dial must also stay within a round trip more, so that a
//! saving that works once (a ticket, a cookie, used and not renewed)
//! still fails the test.

mod common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use libp2p_identity::{Keypair, PeerId};
use onetrip_netem::{Emulator, LinkConfig, Path};
use onetrip_stack::{
    Config, Endpoint, Preset,
    measure::{self, ZeroRttServer, ping},
    multiaddr,
};

const DELAY: Duration = Duration::from_millis(25);
const RTT: Duration = Duration::from_millis(50);
/// How much slower than virtual time a real dial may be: CPU time, under
/// the round trip that one more flight would add.
const TOLERANCE: Duration = Duration::from_millis(40);
/// Measured dials per preset (after a warm-up dial for the presets that
/// use what an earlier connection left).
const RUNS: usize = 3;

/// The TTFBs of [`RUNS`] dials of `preset` from the client namespace,
/// fastest first, after a warm-up dial for a preset that sends early data.
fn real_ttfbs(
    emulator: &Emulator,
    preset: Preset,
    addr: SocketAddr,
    peer: PeerId,
) -> Vec<Duration> {
    emulator.client.block_on(move || async move {
        let config = Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_preset(preset)
            .unwrap()
            .with_protocols([ping()]);
        let client = Endpoint::new(config);
        let addr = multiaddr(preset.transport(), addr);
        let mut samples = Vec::new();
        for run in usize::from(!preset.sends_early_data())..=RUNS {
            let start = Instant::now();
            let connection = client.dial(&addr, Some(peer)).await.unwrap();
            measure::request(&connection).await.unwrap();
            if run > 0 {
                samples.push(start.elapsed());
            }
            // Session tickets follow the handshake.
            tokio::time::sleep(4 * RTT).await;
            connection.close().await.unwrap();
        }
        samples.sort();
        samples
    })
}

/// netsim's count for the same layering, in virtual time.
fn virtual_ttfb(preset: Preset) -> Duration {
    measure::paused_runtime().block_on(async {
        let accepts = ZeroRttServer::Accepts;
        let reconnect = preset.sends_early_data();
        let measured = match preset {
            Preset::Tcp(layering) => {
                measure::tcp_resumed(layering, DELAY, accepts, reconnect).await
            }
            Preset::Quic(layering) => measure::quic(layering, DELAY, accepts, reconnect).await,
        };
        measured.expect("a netsim measurement").ttfb
    })
}

#[test]
fn every_preset_on_the_real_kernel_takes_its_virtual_round_trips() {
    let emulator = Emulator::start(Path::symmetric(LinkConfig::with_delay(DELAY)))
        .unwrap_or_else(|err| panic!("{err}"));
    let common::Server { tcp, quic, peer } = common::start_server(&emulator);
    let mut report = String::new();
    let mut failures = Vec::new();
    for (name, preset) in Preset::all() {
        let addr = match preset {
            Preset::Tcp(_) => tcp,
            Preset::Quic(_) => quic,
        };
        let real = real_ttfbs(&emulator, preset, addr, peer);
        let (fastest, median) = (real[0], real[real.len() / 2]);
        let virtual_time = virtual_ttfb(preset);
        let rtts = |t: Duration| t.as_secs_f64() / RTT.as_secs_f64();
        report.push_str(&format!(
            "{name:<20} real {:.2} RTT (median {:.2}), virtual {:.2} RTT\n",
            rtts(fastest),
            rtts(median),
            rtts(virtual_time)
        ));
        if fastest < virtual_time
            || fastest > virtual_time + TOLERANCE
            || median >= virtual_time + RTT
        {
            failures.push(name);
        }
    }
    eprintln!("{report}");
    assert!(
        failures.is_empty(),
        "outside the tolerance: {failures:?}\n{report}"
    );
}
