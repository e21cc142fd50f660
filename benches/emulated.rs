//! The stacks measured across the TUN emulator's path (the real kernel),
//! shared by the `wan` and `loss` binaries: the servers in the server
//! namespace, and perf or a ping from the client namespace.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use libp2p_identity::Keypair;
use multistream_select::Version;
use onetrip_netem::{Emulator, SERVER};
use onetrip_netsim::LinkConfig;
use onetrip_perf::{Progress, RunParams, runner};
use onetrip_stack::{
    Config, Congestion, Connection, Endpoint, Preset, TransportKind, measure, multiaddr,
};

pub use crate::baseline::BoxError;
use crate::{baseline, fixtures};

/// A yamux window for long fat paths. At 1 Gbit/s and 63 ms the
/// bandwidth-delay product is 7.9 MB, and twice that once the bottleneck's
/// queue (one more bandwidth-delay product) fills; yamux sends a window
/// update only once half the window is used, so the window must be twice
/// what is in flight. With 32 MiB, three full runs of the `wan` binary
/// measured `tcp-onetrip` and `tcp-tls-onetrip` at 86-94 % of 1 Gbit/s
/// (rust-libp2p, whose window may grow to 1 GiB, at 96-98 %); with 64 MiB,
/// 96-102 % in one run of those rows.
pub const WAN_YAMUX_WINDOW: usize = 64 << 20;

/// A bottleneck of `rate` bits per second on a path of round-trip time
/// `rtt`: half of it each way, and a drop-tail queue of one
/// bandwidth-delay product.
pub fn bottleneck(rate: u64, rtt: Duration) -> LinkConfig {
    let link = LinkConfig::with_delay(rtt / 2).bandwidth(rate);
    let bdp = link.bytes_in(rtt);
    link.queue(bdp)
}

/// What is measured.
#[derive(Debug, Clone, Copy)]
pub enum Stack {
    /// A onetrip preset, with a yamux window if not the default.
    Onetrip(&'static str, Option<usize>),
    /// rust-libp2p 0.57 over TCP (TLS, yamux, `V1Lazy`), composed as a
    /// Swarm does.
    Libp2pTcp,
    /// libp2p-quic (real sockets only: it binds its own).
    Libp2pQuic,
    /// perf on a bare TCP connection: no security, no muxer.
    RawTcp,
}

impl Stack {
    /// How the tables name it.
    pub fn name(self) -> String {
        match self {
            Stack::Onetrip(preset, None) => format!("onetrip `{preset}`"),
            Stack::Onetrip(preset, Some(window)) => {
                format!("onetrip `{preset}`, yamux window {} MiB", window >> 20)
            }
            Stack::Libp2pTcp => "rust-libp2p 0.57 tcp, tls, yamux".into(),
            Stack::Libp2pQuic => "rust-libp2p 0.57 libp2p-quic".into(),
            Stack::RawTcp => "bare TCP (no security, no muxer)".into(),
        }
    }

    /// `TCP` or `QUIC`.
    pub fn transport(self) -> &'static str {
        match self {
            Stack::Onetrip(preset, _) if preset.starts_with("quic") => "QUIC",
            Stack::Libp2pQuic => "QUIC",
            _ => "TCP",
        }
    }
}

/// The stacks of the WAN table, the ceiling first.
pub const STACKS: [Stack; 7] = [
    Stack::RawTcp,
    Stack::Onetrip("tcp-onetrip", None),
    Stack::Onetrip("tcp-onetrip", Some(WAN_YAMUX_WINDOW)),
    Stack::Onetrip("tcp-tls-onetrip", Some(WAN_YAMUX_WINDOW)),
    Stack::Onetrip("quic-optimistic", None),
    Stack::Libp2pTcp,
    Stack::Libp2pQuic,
];

/// Download (the server sends) or upload (the client sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The server sends.
    Download,
    /// The client sends.
    Upload,
}

impl Way {
    /// The perf request that moves `bytes` this way.
    pub fn params(self, bytes: u64) -> RunParams {
        match self {
            Way::Download => RunParams {
                upload: 0,
                download: bytes,
            },
            Way::Upload => RunParams {
                upload: bytes,
                download: 0,
            },
        }
    }
}

/// A client configuration for `preset`, with `window` if given.
///
/// # Errors
/// If the configuration is refused.
pub fn config(preset: Preset, window: Option<usize>) -> Result<Config, BoxError> {
    let mut config = Config::new(Keypair::generate_ed25519())?
        .with_preset(preset)?
        .with_protocols([runner::perf_protocol()]);
    if let Some(window) = window {
        config = config.with_yamux_window(window)?;
    }
    Ok(config)
}

/// A stack's throughput one way over one transfer, in bit/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// From the request to the last byte: the request's round trip and
    /// the senders' ramp-up included.
    pub whole: f64,
    /// For a download: the rate while the client read the middle half of
    /// the bytes (from a quarter to three quarters), fitted through its
    /// byte count read every millisecond: what the connection sustains
    /// once its windows are open. Not for an upload: its client
    /// counts what it wrote, which runs ahead of what arrived by as much as
    /// its buffers took in meanwhile (up to 64 MB here).
    pub steady: Option<f64>,
}

impl Throughput {
    /// The figure a result leads with: the steady rate of a download, the
    /// whole transfer's for an upload.
    pub fn headline(&self) -> f64 {
        self.steady.unwrap_or(self.whole)
    }
}

/// How often [`measured`] reads the client's byte count.
const SAMPLE: Duration = Duration::from_millis(1);

/// Runs one transfer of `bytes` one `way` (the connection is set up
/// before), in tokio's time (virtual under a paused clock), watching the
/// count of bytes read in the [`Progress`] the run is given.
///
/// # Errors
/// The run's; or if a download ended before its middle half was timed.
pub async fn measured<F>(
    bytes: u64,
    way: Way,
    run: impl FnOnce(Arc<Progress>) -> F,
) -> Result<Throughput, BoxError>
where
    F: Future<Output = Result<(), BoxError>>,
{
    let progress = Arc::new(Progress::default());
    // (seconds since the start, bytes read), one a millisecond.
    let mut samples = Vec::new();
    let start = tokio::time::Instant::now();
    let transfer = run(progress.clone());
    tokio::pin!(transfer);
    let mut tick = tokio::time::interval(SAMPLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            done = &mut transfer => break done?,
            // The time the count is read, not the tick's (earlier) deadline:
            // a sample taken late must not be dated early.
            _ = tick.tick(), if way == Way::Download => {
                let read = progress.downloaded() as f64;
                samples.push((start.elapsed().as_secs_f64(), read));
            }
        }
    }
    let whole = bytes as f64 * 8.0 / start.elapsed().as_secs_f64();
    let steady = match way {
        Way::Upload => None,
        Way::Download => Some(
            steady_rate(&samples, bytes)
                .ok_or("the download ended before its middle half was timed")?
                * 8.0,
        ),
    };
    Ok(Throughput { whole, steady })
}

/// Bytes per second over the middle half of a download of `bytes`, from
/// its `samples` (seconds, bytes read so far): the [`slope`] through
/// those from the first at or past a quarter of the bytes to the first at
/// or past three quarters. `None` unless samples reach both marks.
fn steady_rate(samples: &[(f64, f64)], bytes: u64) -> Option<f64> {
    let marks = [bytes as f64 / 4.0, bytes as f64 * 3.0 / 4.0];
    let first = samples.iter().position(|&(_, read)| read >= marks[0])?;
    let last = samples.iter().position(|&(_, read)| read >= marks[1])?;
    slope(&samples[first..=last])
}

/// The least-squares slope of `samples` (x, y): bytes per second over
/// the middle half of a download. A fit through every sample, rather than
/// the two ends alone, keeps a client that read late at one end (its
/// bytes waiting in buffers meanwhile) from moving the rate by the lag.
/// `None` for fewer than two distinct times.
fn slope(samples: &[(f64, f64)]) -> Option<f64> {
    let n = samples.len() as f64;
    let (mx, my) = samples
        .iter()
        .fold((0.0, 0.0), |(x, y), &(sx, sy)| (x + sx / n, y + sy / n));
    let (sxy, sxx) = samples.iter().fold((0.0, 0.0), |(xy, xx), &(x, y)| {
        (xy + (x - mx) * (y - my), xx + (x - mx) * (x - mx))
    });
    (samples.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

/// [`measured`]: one perf request on a fresh stream of a onetrip
/// connection.
///
/// # Errors
/// The request's.
pub async fn onetrip_transfer(
    connection: &Connection,
    way: Way,
    bytes: u64,
) -> Result<Throughput, BoxError> {
    measured(bytes, way, |progress| async move {
        runner::request(connection, way.params(bytes), &progress).await?;
        Ok(())
    })
    .await
}

/// [`measured`]: one perf request on a fresh stream of a rust-libp2p
/// connection.
///
/// # Errors
/// The request's.
pub async fn libp2p_transfer(
    connection: &baseline::Libp2pConnection,
    way: Way,
    bytes: u64,
) -> Result<Throughput, BoxError> {
    measured(bytes, way, |progress| async move {
        fixtures::libp2p_perf(connection, way.params(bytes), &progress).await
    })
    .await
}

/// The servers in the server namespace.
#[derive(Debug, Clone)]
pub struct Servers {
    /// onetrip's, on TCP and QUIC.
    pub onetrip: fixtures::OnetripServer,
    /// rust-libp2p's TCP (TLS, yamux).
    pub libp2p_tcp: SocketAddr,
    /// libp2p-quic's.
    pub libp2p_quic: multiaddr::Multiaddr,
    /// perf on bare TCP.
    pub raw_tcp: SocketAddr,
}

/// Starts every server in the server namespace, on a thread and runtime of
/// its own there. The onetrip server's yamux window is the WAN one (a
/// receiver's window limits a download's sender), and its QUIC connections
/// run `congestion` (what a download's sender does about loss).
///
/// # Panics
/// If a server cannot start.
pub fn start_servers(emulator: &Emulator, congestion: Congestion) -> Servers {
    emulator.server.start(move || async move {
        let config = fixtures::OnetripServer::config()
            .unwrap()
            .with_yamux_window(WAN_YAMUX_WINDOW)
            .unwrap()
            .with_quic_congestion(congestion);
        let onetrip = fixtures::OnetripServer::start_on(
            config,
            SocketAddr::from((SERVER, 4001)),
            SocketAddr::from((SERVER, 4002)),
        )
        .await
        .unwrap();
        let security = baseline::Security::tls(&Keypair::generate_ed25519()).unwrap();
        let libp2p_tcp = baseline::tcp_server_on(SocketAddr::from((SERVER, 4003)), security)
            .await
            .unwrap();
        let raw_tcp = fixtures::raw_tcp_server_on(SocketAddr::from((SERVER, 4004)))
            .await
            .unwrap();
        let libp2p_quic = baseline::quic_server_on(
            multiaddr(TransportKind::Quic, SocketAddr::from((SERVER, 4005))),
            baseline::ping_and_perf,
        )
        .await
        .unwrap();
        Servers {
            onetrip,
            libp2p_tcp,
            libp2p_quic,
            raw_tcp,
        }
    })
}

/// Runs `stack` one `way` from the client namespace, `runs` times (at
/// least once), each on a fresh connection; returns every run, slowest
/// first by [`Throughput::headline`] ([`median`] picks the middle one).
/// The kernel's congestion control and the scheduling of shared cores
/// move one transfer's rate by several percent.
///
/// # Errors
/// The first failed run's, as text.
pub fn real_runs(
    emulator: &Emulator,
    servers: &Servers,
    stack: Stack,
    way: Way,
    bytes: u64,
    runs: usize,
) -> Result<Vec<Throughput>, String> {
    let mut measured = (0..runs.max(1))
        .map(|_| {
            let servers = servers.clone();
            emulator.client.block_on(move || async move {
                real_run_here(servers, stack, way, bytes)
                    .await
                    .map_err(|err| err.to_string())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    measured.sort_by(|a, b| a.headline().total_cmp(&b.headline()));
    Ok(measured)
}

/// The middle one of `runs` sorted as [`real_runs`] returns them.
///
/// # Panics
/// If `runs` is empty ([`real_runs`] never returns none).
pub fn median(runs: &[Throughput]) -> Throughput {
    runs[runs.len() / 2]
}

async fn real_run_here(
    servers: Servers,
    stack: Stack,
    way: Way,
    bytes: u64,
) -> Result<Throughput, BoxError> {
    let params = way.params(bytes);
    match stack {
        Stack::Onetrip(name, window) => {
            let preset: Preset = name.parse()?;
            let client = Endpoint::new(config(preset, window)?);
            let connection = client
                .dial(servers.onetrip.addr(preset), Some(servers.onetrip.peer))
                .await?;
            onetrip_transfer(&connection, way, bytes).await
        }
        Stack::Libp2pTcp => {
            let security = baseline::Security::tls(&Keypair::generate_ed25519())?;
            let connection = baseline::tcp_connect(servers.libp2p_tcp, &security)
                .await?
                .with_substreams(Version::V1Lazy);
            libp2p_transfer(&connection, way, bytes).await
        }
        Stack::Libp2pQuic => {
            let mut transport = baseline::QuicTransport::new(libp2p_quic::Config::new(
                &Keypair::generate_ed25519(),
            ));
            let connection = baseline::quic_connect(&mut transport, &servers.libp2p_quic)
                .await?
                .with_substreams(Version::V1Lazy);
            libp2p_transfer(&connection, way, bytes).await
        }
        Stack::RawTcp => {
            measured(bytes, way, |progress| async move {
                fixtures::raw_tcp_perf(servers.raw_tcp, params, &progress).await
            })
            .await
        }
    }
}

/// The time from the dial to the first byte of the answer to a ping on a
/// fresh stream, for a onetrip preset, from the client namespace.
///
/// # Errors
/// The dial's or the request's, as text; other stacks are not measured.
pub fn real_ttfb(emulator: &Emulator, servers: &Servers, stack: Stack) -> Result<Duration, String> {
    let Stack::Onetrip(name, window) = stack else {
        return Err("onetrip presets only".into());
    };
    let server = servers.onetrip.clone();
    emulator.client.block_on(move || async move {
        let ttfb = async {
            let preset: Preset = name.parse()?;
            let client = Endpoint::new(
                config(preset, window)?.with_protocols([measure::ping(), runner::perf_protocol()]),
            );
            let start = tokio::time::Instant::now();
            let connection = client.dial(server.addr(preset), Some(server.peer)).await?;
            measure::request(&connection).await?;
            let ttfb = start.elapsed();
            connection.close().await?;
            Ok::<_, BoxError>(ttfb)
        };
        ttfb.await.map_err(|err| err.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::{slope, steady_rate};

    #[test]
    fn the_steady_rate_is_the_fitted_slope() {
        let line: Vec<_> = (0..100)
            .map(|t| (f64::from(t), 5.0 * f64::from(t) + 3.0))
            .collect();
        assert!((slope(&line).unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(slope(&line[..1]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 9.0)]), None);
        // A first sample read late (its bytes still waiting, counted at
        // the next one): the two ends alone would give (498 - 3) / 90 =
        // 5.5, 10 % high; the fit stays within 1 %.
        let mut lagged = line.clone();
        for sample in &mut lagged[..10] {
            sample.1 = 3.0;
        }
        let fitted = slope(&lagged[9..]).unwrap();
        assert!((fitted - 5.0).abs() < 0.05, "{fitted}");
    }

    #[test]
    fn the_steady_rate_spans_the_middle_half_only() {
        // 400 bytes: a slow start (1 byte/s) to 100, 10 bytes/s through
        // the middle half, a slow end from 300.
        let mut samples = Vec::new();
        let (mut t, mut read) = (0.0, 0.0);
        while read < 400.0 {
            samples.push((t, read));
            let rate = if (100.0..300.0).contains(&read) {
                10.0
            } else {
                1.0
            };
            (t, read) = (t + 1.0, read + rate);
        }
        let rate = steady_rate(&samples, 400).unwrap();
        assert!((rate - 10.0).abs() < 1e-9, "{rate}");
        // Ended (or last read) before three quarters: no rate.
        let short: Vec<_> = samples.iter().copied().filter(|s| s.1 < 300.0).collect();
        assert_eq!(steady_rate(&short, 400), None);
        assert_eq!(steady_rate(&[], 400), None);
    }
}
