//! Transfers across a bursty, lossy path on the real kernel: 10 MB each
//! way over every transport (TCP with Noise, TCP with TLS, QUIC), through 5
//! % Gilbert-Elliott loss (mean burst 4 packets; the chain also steps once
//! per millisecond without a packet, so that bursts end in time), arrive
//! whole. TCP's and
//! QUIC's own loss recovery do the work; what is checked is that nothing
//! in onetrip's stack breaks under it (every byte counted, the AEAD of each
//! layer checking every record).

mod common;

use std::time::{Duration, Instant};

use libp2p_identity::Keypair;
use onetrip_netem::{Emulator, LinkConfig, Path};
use onetrip_netsim::{GilbertElliott, LossModel};
use onetrip_perf::{Progress, RunParams, run_client, runner::perf_protocol};
use onetrip_stack::{Config, Endpoint, Preset, TransportKind, multiaddr};

const BYTES: u64 = 10_000_000;

#[test]
fn ten_megabytes_each_way_through_five_percent_bursty_loss() {
    let ge = GilbertElliott::with_mean_loss(0.05, 4.0)
        .unwrap()
        .with_step(Duration::from_millis(1));
    // A short RTT keeps the transfers quick despite the loss.
    let link = LinkConfig::with_delay(Duration::from_millis(1)).loss(LossModel::GilbertElliott(ge));
    let emulator = Emulator::start(Path::symmetric(link)).unwrap_or_else(|err| panic!("{err}"));
    let server = common::start_server(&emulator);
    for name in ["tcp-onetrip", "tcp-tls-onetrip", "quic-optimistic"] {
        let preset: Preset = name.parse().unwrap();
        let (kind, addr) = match preset {
            Preset::Tcp(_) => (TransportKind::Tcp, server.tcp),
            Preset::Quic(_) => (TransportKind::Quic, server.quic),
        };
        let (downloaded, elapsed) = emulator.client.block_on(move || async move {
            let config = Config::new(Keypair::generate_ed25519())
                .unwrap()
                .with_preset(preset)
                .unwrap();
            let client = Endpoint::new(config);
            let start = Instant::now();
            let connection = client
                .dial(&multiaddr(kind, addr), Some(server.peer))
                .await
                .unwrap_or_else(|err| panic!("{name}: dial: {err}"));
            let stream = connection.open_stream(perf_protocol()).await.unwrap();
            let progress = Progress::default();
            let params = RunParams {
                upload: BYTES,
                download: BYTES,
            };
            run_client(stream, params, &progress)
                .await
                .unwrap_or_else(|err| panic!("{name}: perf: {err}"));
            connection.close().await.unwrap();
            (progress.downloaded(), start.elapsed())
        });
        assert_eq!(downloaded, BYTES, "{name}");
        eprintln!("{name}: 10 MB each way in {elapsed:?}");
    }
    let (up, down) = emulator.counters();
    eprintln!("up {up:?}\ndown {down:?}");
    for direction in [up.link, down.link] {
        let share = direction.lost as f64 / direction.offered as f64;
        assert!((0.03..0.07).contains(&share), "{direction:?}");
    }
}
