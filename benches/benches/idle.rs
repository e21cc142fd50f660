//! `idle`: heap bytes per idle established connection, at 1,000
//! connections, for each stack. Both ends live in this process, so a
//! figure is one connection's two ends, counted after the handshake and one
//! request (a stream opened, a byte echoed, the stream closed). A profiling
//! global allocator ([`heap::Profiler`]) counts the heap and records where
//! the bytes that stay allocated were allocated, by component.
//!
//! Prints both tables and writes `target/onetrip-bench/idle.json` and the
//! summary's by-component section, then refreshes the summary.
//!
//! `cargo bench --bench idle -- --test` (the CI smoke run) opens 10
//! connections per stack instead.

use std::{collections::BTreeMap, fmt::Write, future::Future, time::Duration};

use libp2p_identity::Keypair;
use onetrip_bench::{
    baseline::{self, BoxError},
    fixtures::{self, OnetripServer},
    heap::{self, Profiler},
    summary::{self, LIBP2P_QUIC, RUST_LIBP2P_TCP},
};
use onetrip_stack::{Preset, measure};

#[global_allocator]
static GLOBAL: Profiler = Profiler;

/// What `count` idle connections of one stack hold, per connection.
struct Idle {
    /// Heap bytes in use, after less before.
    bytes: i64,
    /// The bytes allocated while they were opened and still allocated, by
    /// component, largest first.
    components: Vec<(String, u64)>,
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--test");
    // `-- --sites`: also print the largest allocation sites per stack.
    let sites = if std::env::args().any(|arg| arg == "--sites") {
        12
    } else {
        0
    };
    let count: usize = if smoke { 10 } else { 1_000 };
    // Both ends of every TCP connection live here.
    let _ = rlimit::increase_nofile_limit(8 * count as u64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut table = BTreeMap::new();

    let stacks = ["tcp-onetrip", "tcp-classic", "tcp-tls-onetrip", "quic"];
    for name in stacks {
        let preset: Preset = name.parse().unwrap();
        let idle = rt.block_on(async {
            let server = OnetripServer::start().await.unwrap();
            let client = fixtures::client(preset).unwrap();
            measure_idle(name, count, sites, || async {
                let connection = client.dial(server.addr(preset), Some(server.peer)).await?;
                measure::request(&connection).await?;
                Ok(connection)
            })
            .await
        });
        table.insert(name.to_string(), idle);
    }

    let idle = rt.block_on(async {
        let name = RUST_LIBP2P_TCP;
        let server = baseline::Security::noise(&Keypair::generate_ed25519()).unwrap();
        let addr = baseline::tcp_server(server).await.unwrap();
        let key = baseline::Security::noise(&Keypair::generate_ed25519()).unwrap();
        measure_idle(name, count, sites, || async {
            let connection = baseline::tcp_connect(addr, &key).await?;
            baseline::ping(&connection).await?;
            Ok(connection)
        })
        .await
    });
    table.insert(RUST_LIBP2P_TCP.to_string(), idle);

    let idle = rt.block_on(async {
        let name = LIBP2P_QUIC;
        let addr = baseline::quic_server().await.unwrap();
        let transport = tokio::sync::Mutex::new(baseline::QuicTransport::new(
            libp2p_quic::Config::new(&Keypair::generate_ed25519()),
        ));
        measure_idle(name, count, sites, || async {
            let connection = baseline::quic_connect(&mut *transport.lock().await, &addr).await?;
            baseline::ping(&connection).await?;
            Ok(connection)
        })
        .await
    });
    table.insert(LIBP2P_QUIC.to_string(), idle);

    println!("idle: heap bytes per established connection (both ends), {count} connections");
    println!("{:<20} {:>12}", "stack", "bytes");
    for (stack, idle) in &table {
        println!("{stack:<20} {:>12}", idle.bytes);
    }
    let components = components_md(&table, count);
    println!("\n{components}");
    if !smoke {
        let totals: BTreeMap<&String, u64> = table
            .iter()
            .map(|(stack, idle)| (stack, idle.bytes.max(0) as u64))
            .collect();
        let dir = summary::out_dir();
        let json = serde_json::to_string_pretty(&totals).unwrap();
        if std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("idle.json"), json))
            .and_then(|()| summary::write_section(summary::IDLE_COMPONENTS, &components))
            .is_err()
        {
            eprintln!("idle tables not written to {}", dir.display());
        }
        summary::write();
    }
}

/// Opens one connection with `open` (state made lazily, such as a QUIC
/// endpoint, is not per connection), then `count` more, and measures what
/// the `count` hold once they are idle; prints the `sites` largest
/// allocation sites of stack `name`.
async fn measure_idle<C, F, Fut>(name: &str, count: usize, sites: usize, open: F) -> Idle
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<C, BoxError>>,
{
    let first = open().await.unwrap();
    let mut connections = Vec::with_capacity(count);
    quiesce(name).await;
    let before = heap::in_use();
    let recording = heap::Recording::start();
    for _ in 0..count {
        connections.push(open().await.unwrap());
    }
    settle().await;
    let bytes = (heap::in_use() - before) / count as i64;
    let report = recording.finish(sites);
    if !report.sites.is_empty() {
        println!("\n{name}: the largest allocation sites");
    }
    for (bytes, allocations, stack) in &report.sites {
        println!(
            "{} B per connection in {allocations} allocations:\n    {}",
            bytes / count as u64,
            stack.join("\n    ")
        );
    }
    let components = report
        .components
        .into_iter()
        .map(|(component, bytes)| (component, bytes / count as u64))
        .collect();
    drop((connections, first));
    Idle { bytes, components }
}

/// Lets handshakes' and requests' tails (tickets, acknowledgements, the
/// stream's close) finish.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// Drives the runtime until the heap stops shrinking: what the stacks
/// measured before left to finish (QUIC connections draining after their
/// close, servers' tasks ending) must not free its memory while the next
/// stack is counted, or that stack would seem to cost less than it does.
async fn quiesce(name: &str) {
    /// Less than this freed in one [`settle`]: the heap is quiet.
    const QUIET: i64 = 64 * 1024;
    let mut last = heap::in_use();
    for _ in 0..50 {
        settle().await;
        let now = heap::in_use();
        if last - now < QUIET {
            return;
        }
        last = now;
    }
    eprintln!("{name}: the heap still shrank after 10 s; its figure may be low");
}

/// The by-component table, Markdown: one column per stack, KiB per
/// connection.
fn components_md(table: &BTreeMap<String, Idle>, count: usize) -> String {
    let kib = |bytes: f64| format!("{:.1}", bytes / 1024.0);
    let mut rows = BTreeMap::<&str, BTreeMap<&str, u64>>::new();
    for (stack, idle) in table {
        for (component, bytes) in &idle.components {
            rows.entry(component).or_default().insert(stack, *bytes);
        }
    }
    let mut out = format!(
        "KiB per connection (both ends) after the handshake and one request, {count} \
         connections, from `cargo bench --bench idle`. A component is the innermost \
         crate of the stack's layers on the allocating call stack; a tokio task counts \
         as its spawner's.\n\n| component |"
    );
    for stack in table.keys() {
        let _ = write!(out, " {stack} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(table.len()));
    for (component, cells) in &rows {
        let _ = write!(out, "\n| {component} |");
        for stack in table.keys() {
            let cell = cells
                .get(stack.as_str())
                .map_or("".into(), |&b| kib(b as f64));
            let _ = write!(out, " {cell} |");
        }
    }
    out.push_str("\n| **heap in use** |");
    for idle in table.values() {
        let _ = write!(out, " **{}** |", kib(idle.bytes as f64));
    }
    out.push('\n');
    out
}
