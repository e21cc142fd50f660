//! `onetrip-perf`: the libp2p perf protocol over onetrip, with the command
//! line of libp2p test-plans' perf runner.
//!
//! ```text
//! onetrip-perf --run-server --server-address 0.0.0.0:4001
//! onetrip-perf --server-address 10.0.0.1:4001 --transport tcp \
//!     --upload-bytes 0 --download-bytes 104857600
//! ```
//!
//! Results go to stdout as JSON lines; logs (`RUST_LOG`) and, on a
//! terminal, a progress line go to stderr.

use std::{
    io::{IsTerminal, Write},
    net::SocketAddr,
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use clap::{Parser, ValueEnum};
use libp2p_identity::{Keypair, PeerId};
use onetrip_perf::{
    Progress, Report, ReportKind, RunParams, ServerLimits,
    runner::{self, Outcome, Target},
};
use onetrip_stack::{Config, Endpoint, Preset, TransportKind, multiaddr};
use tokio::time::Instant;
use tracing_subscriber::EnvFilter;

/// libp2p perf (`/perf/1.0.0`) over onetrip's TCP and QUIC stacks.
#[derive(Debug, Parser)]
#[command(name = "onetrip-perf", version)]
struct Opts {
    /// Run the server: listen on TCP and QUIC (UDP) at --server-address.
    #[arg(long)]
    run_server: bool,
    /// The server's address, IP:PORT (to listen on, or to dial).
    #[arg(long)]
    server_address: SocketAddr,
    /// The transport to dial.
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// Bytes to upload (throughput scenario).
    #[arg(long)]
    upload_bytes: Option<u64>,
    /// Bytes to download (throughput scenario).
    #[arg(long)]
    download_bytes: Option<u64>,
    /// The layering preset: tcp-classic, tcp-optimistic-app,
    /// tcp-libp2p-default, tcp-early-muxer, tcp-onetrip, tcp-tls-classic,
    /// tcp-tls-onetrip, tcp-tls-0rtt, tcp-onetrip-tfo, tcp-tls-0rtt-tfo,
    /// quic, quic-optimistic, quic-0rtt.
    /// Default:
    /// tcp-onetrip over TCP,
    /// quic-optimistic over QUIC.
    #[arg(long)]
    layering: Option<Preset>,
    /// Derive the identity from this seed (an Ed25519 key whose secret is
    /// the seed's byte followed by zeros), for a server whose peer id
    /// clients know in advance.
    #[arg(long)]
    secret_key_seed: Option<u8>,
    /// The server's peer id, if known: checked, and required for 0-RTT.
    #[arg(long)]
    server_peer_id: Option<PeerId>,
    /// The scenario to run.
    #[arg(long, value_enum, default_value_t = Mode::Throughput)]
    mode: Mode,
    /// Requests for the latency, connections and streams scenarios.
    #[arg(long, default_value_t = 100)]
    iterations: u64,
    /// Requests at a time for the connections and streams scenarios.
    #[arg(long, default_value_t = 10)]
    concurrency: u64,
    /// As a server, accept 0-RTT data (replayable: see spec/quic.md).
    #[arg(long)]
    accept_0rtt: bool,
    /// As a server, take data in TCP SYNs (TCP Fast Open, for the -tfo
    /// layerings; see spec/tcp-stack.md).
    #[arg(long)]
    fast_open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Tcp,
    #[value(name = "quic-v1")]
    QuicV1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Upload and download the given byte counts on one stream.
    Throughput,
    /// One byte each way on a fresh stream, one after another.
    Latency,
    /// Concurrent clients each connecting and making a one-byte request.
    Connections,
    /// A fresh stream per one-byte request on one connection.
    Streams,
}

/// A command line the argument parser accepts but that makes no sense.
fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = if opts.run_server {
        if opts.transport.is_some() || opts.upload_bytes.is_some() || opts.download_bytes.is_some()
        {
            return usage("--run-server takes no --transport, --upload-bytes or --download-bytes");
        }
        runtime.block_on(server(&opts))
    } else {
        let Some(transport) = opts.transport else {
            return usage("a client needs --transport (tcp or quic-v1)");
        };
        if opts.mode == Mode::Throughput
            && (opts.upload_bytes.is_none() || opts.download_bytes.is_none())
        {
            return usage("the throughput scenario needs --upload-bytes and --download-bytes");
        }
        let preset = match (opts.layering, transport) {
            (None, Transport::Tcp) => Preset::Tcp(onetrip_stack::Layering::TCP_ONETRIP),
            (None, Transport::QuicV1) => Preset::Quic(onetrip_stack::QuicLayering::QUIC_OPTIMISTIC),
            (Some(preset @ Preset::Tcp(_)), Transport::Tcp)
            | (Some(preset @ Preset::Quic(_)), Transport::QuicV1) => preset,
            (Some(preset), _) => {
                return usage(&format!(
                    "the layering {preset} does not run over {transport:?}"
                ));
            }
        };
        runtime.block_on(client(&opts, transport, preset))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn keypair(seed: Option<u8>) -> Keypair {
    match seed {
        Some(seed) => {
            let mut secret = [0u8; 32];
            secret[0] = seed;
            Keypair::ed25519_from_bytes(secret).expect("32 bytes make an Ed25519 key")
        }
        None => Keypair::generate_ed25519(),
    }
}

async fn server(opts: &Opts) -> Result<(), onetrip_perf::Error> {
    let config = Config::new(keypair(opts.secret_key_seed))?
        .with_protocols([runner::perf_protocol()])
        .with_accept_0rtt(opts.accept_0rtt)
        .with_fast_open_listener(opts.fast_open);
    let endpoint = Endpoint::new(config);
    let tcp = endpoint
        .listen(&multiaddr(TransportKind::Tcp, opts.server_address))
        .await?;
    // The same port for QUIC, also when the system picked it for TCP.
    let (_, tcp_addr, _) = onetrip_stack::parse_addr(tcp.local_addr())?;
    let quic = endpoint
        .listen(&multiaddr(TransportKind::Quic, tcp_addr))
        .await?;
    tracing::info!(peer = %endpoint.local_peer_id(), "perf server");
    tracing::info!(address = %tcp.local_addr(), "listening");
    tracing::info!(address = %quic.local_addr(), "listening");
    let limits = ServerLimits::default();
    tokio::join!(runner::serve(tcp, limits), runner::serve(quic, limits));
    Ok(())
}

async fn client(
    opts: &Opts,
    transport: Transport,
    preset: Preset,
) -> Result<(), onetrip_perf::Error> {
    let config = Config::new(keypair(opts.secret_key_seed))?.with_preset(preset)?;
    let kind = match transport {
        Transport::Tcp => TransportKind::Tcp,
        Transport::QuicV1 => TransportKind::Quic,
    };
    let target = Target {
        endpoint: Endpoint::new(config),
        addr: multiaddr(kind, opts.server_address),
        peer: opts.server_peer_id,
    };
    tracing::info!(%preset, addr = %target.addr, mode = ?opts.mode, "perf client");
    let outcome = match opts.mode {
        Mode::Throughput => {
            let params = RunParams {
                upload: opts.upload_bytes.unwrap_or(0),
                download: opts.download_bytes.unwrap_or(0),
            };
            return throughput(&target, params).await;
        }
        Mode::Latency => {
            // A warm-up connection leaves session tickets for 0-RTT.
            warm_up(&target, preset).await?;
            runner::latency(&target, opts.iterations).await?
        }
        Mode::Connections => {
            warm_up(&target, preset).await?;
            runner::connections(&target, opts.iterations, opts.concurrency).await?
        }
        Mode::Streams => runner::streams(&target, opts.iterations, opts.concurrency).await?,
    };
    print_outcome(&outcome);
    Ok(())
}

/// For 0-RTT, one connection first, so later ones can resume.
async fn warm_up(target: &Target, preset: Preset) -> Result<(), onetrip_perf::Error> {
    if let Preset::Quic(layering) = preset
        && layering.zero_rtt
    {
        let connection = target.connect().await?;
        runner::request(
            &connection,
            RunParams {
                upload: 1,
                download: 1,
            },
            &Progress::default(),
        )
        .await?;
        // The session tickets follow the handshake.
        tokio::time::sleep(Duration::from_millis(100)).await;
        connection.close().await?;
    }
    Ok(())
}

fn print_outcome(outcome: &Outcome) {
    let mut report = Report::new(
        ReportKind::Final,
        outcome.elapsed,
        outcome.iterations,
        outcome.iterations,
    );
    report.iterations = Some(outcome.iterations);
    report.per_second = Some(outcome.per_second());
    report.latency = outcome.latency;
    println!("{}", report.to_json());
}

/// The test-plans scenario: connect, one perf run; an intermediary line
/// every second, then the final line. The time counts from before the dial.
async fn throughput(target: &Target, params: RunParams) -> Result<(), onetrip_perf::Error> {
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let run = {
        let (target, progress) = (target.clone(), progress.clone());
        tokio::spawn(async move {
            let connection = target.connect().await?;
            runner::request(&connection, params, &progress).await?;
            connection.close().await?;
            Ok::<_, onetrip_perf::Error>(())
        })
    };
    let terminal = std::io::stderr().is_terminal();
    let mut ticks =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut last_at, mut last_up, mut last_down) = (start, 0, 0);
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            done = &mut run => break done,
            now = ticks.tick() => {
                let (up, down) = (progress.uploaded(), progress.downloaded());
                let line = Report::new(ReportKind::Intermediary, now - last_at, up - last_up, down - last_down);
                println!("{}", line.to_json());
                if terminal {
                    eprint!("\r↑ {:.1} MiB  ↓ {:.1} MiB  {:.0} s ", mib(up), mib(down), (now - start).as_secs_f64());
                    let _ = std::io::stderr().flush();
                }
                (last_at, last_up, last_down) = (now, up, down);
            }
        }
    };
    if terminal {
        eprintln!();
    }
    match result {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(err),
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
    let line = Report::new(
        ReportKind::Final,
        start.elapsed(),
        progress.uploaded(),
        progress.downloaded(),
    );
    println!("{}", line.to_json());
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
