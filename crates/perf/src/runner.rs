//! perf over onetrip connections: serving, and the client scenarios.

use std::{sync::Arc, time::Duration};

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use onetrip_stack::{Connection, Endpoint, Listener, Protocol};
use tokio::{task::JoinSet, time::Instant};

use crate::{Error, Percentiles, Progress, RunParams, RunTimes, ServerLimits, protocol};

/// `/perf/1.0.0` as a [`Protocol`].
pub fn perf_protocol() -> Protocol {
    Protocol::new(protocol::PROTOCOL).expect("a valid protocol name")
}

/// Runs one perf request on a fresh stream of `connection`.
///
/// # Errors
/// As [`protocol::run_client`], and [`Error::Stack`] opening the stream.
pub async fn request(
    connection: &Connection,
    params: RunParams,
    progress: &Progress,
) -> Result<RunTimes, Error> {
    let stream = connection.open_stream(perf_protocol()).await?;
    protocol::run_client(stream, params, progress).await
}

/// Serves perf on every connection `listener` accepts, each stream in its
/// own task, until the listener ends. Failed streams and connections are
/// logged.
pub async fn serve(mut listener: Listener, limits: ServerLimits) {
    while let Ok(mut connection) = listener.accept().await {
        let peer = connection.remote_peer_id();
        tracing::debug!(%peer, "connection");
        tokio::spawn(async move {
            while let Ok((_, stream)) = connection.accept_stream().await {
                tokio::spawn(async move {
                    match protocol::serve(stream, limits).await {
                        Ok(served) => tracing::debug!(%peer, ?served, "run served"),
                        Err(err) => tracing::info!(%peer, %err, "run failed"),
                    }
                });
            }
        });
    }
}

/// Where and whom a client dials.
#[derive(Debug, Clone)]
pub struct Target {
    /// The client endpoint.
    pub endpoint: Endpoint,
    /// The server's address.
    pub addr: Multiaddr,
    /// The server's peer id, if known (needed for 0-RTT).
    pub peer: Option<PeerId>,
}

impl Target {
    /// Connects to the server.
    ///
    /// # Errors
    /// [`Error::Stack`].
    pub async fn connect(&self) -> Result<Connection, Error> {
        Ok(self.endpoint.dial(&self.addr, self.peer).await?)
    }
}

/// What a scenario measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The whole run.
    pub elapsed: Duration,
    /// Requests completed.
    pub iterations: u64,
    /// Their latency percentiles.
    pub latency: Option<Percentiles>,
}

impl Outcome {
    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        self.iterations as f64 / self.elapsed.as_secs_f64()
    }
}

/// One byte each way.
const PING: RunParams = RunParams {
    upload: 1,
    download: 1,
};

/// Latency: on one connection, `iterations` requests of one byte each way,
/// each on a fresh stream, one after another.
///
/// # Errors
/// The first failing request's [`Error`].
pub async fn latency(target: &Target, iterations: u64) -> Result<Outcome, Error> {
    let connection = target.connect().await?;
    let progress = Progress::default();
    let start = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..iterations {
        let began = Instant::now();
        request(&connection, PING, &progress).await?;
        samples.push(began.elapsed());
    }
    let elapsed = start.elapsed();
    connection.close().await?;
    Ok(Outcome {
        elapsed,
        iterations,
        latency: Percentiles::of(&mut samples),
    })
}

/// Streams per second: like [`latency`], the Kademlia case, where each
/// request opens a new stream on an open connection; `concurrency` streams
/// at a time.
///
/// # Errors
/// The first failing request's [`Error`].
pub async fn streams(target: &Target, iterations: u64, concurrency: u64) -> Result<Outcome, Error> {
    let connection = Arc::new(target.connect().await?);
    let start = Instant::now();
    let samples = run_workers(iterations, concurrency, {
        let connection = connection.clone();
        move || {
            let connection = connection.clone();
            async move {
                let began = Instant::now();
                request(&connection, PING, &Progress::default()).await?;
                Ok(began.elapsed())
            }
        }
    })
    .await?;
    let elapsed = start.elapsed();
    if let Ok(connection) = Arc::try_unwrap(connection) {
        connection.close().await?;
    }
    let mut samples = samples;
    Ok(Outcome {
        elapsed,
        iterations,
        latency: Percentiles::of(&mut samples),
    })
}

/// Connections per second: `concurrency` clients, each repeatedly
/// connecting, making a one-byte request and closing, `iterations` in all.
/// The latency is from `dial` to the response.
///
/// # Errors
/// The first failing connection's [`Error`].
pub async fn connections(
    target: &Target,
    iterations: u64,
    concurrency: u64,
) -> Result<Outcome, Error> {
    let start = Instant::now();
    let target = Arc::new(target.clone());
    let mut samples = run_workers(iterations, concurrency, move || {
        let target = target.clone();
        async move {
            let began = Instant::now();
            let connection = target.connect().await?;
            request(&connection, PING, &Progress::default()).await?;
            let took = began.elapsed();
            connection.close().await?;
            Ok(took)
        }
    })
    .await?;
    Ok(Outcome {
        elapsed: start.elapsed(),
        iterations,
        latency: Percentiles::of(&mut samples),
    })
}

/// Runs `iterations` jobs, `concurrency` at a time; their durations.
async fn run_workers<F, Fut>(
    iterations: u64,
    concurrency: u64,
    job: F,
) -> Result<Vec<Duration>, Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Duration, Error>> + Send + 'static,
{
    let mut running = JoinSet::new();
    let mut started = 0;
    let mut samples = Vec::new();
    while started < iterations || !running.is_empty() {
        while started < iterations && (running.len() as u64) < concurrency.max(1) {
            running.spawn(job());
            started += 1;
        }
        if let Some(done) = running.join_next().await {
            match done {
                Ok(result) => samples.push(result?),
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(_) => {}
            }
        }
    }
    Ok(samples)
}
