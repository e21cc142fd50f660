//! `idle`: heap bytes per idle established connection, at 1,000
//! connections, for each stack: a counting global allocator measures the
//! heap before and after opening them (both ends live in this process, so
//! a figure is one connection's two ends). Prints a table and writes
//! `target/onetrip-bench/idle.json`, then refreshes the summary.
//!
//! `cargo bench --bench idle -- --test` (the CI smoke run) opens 10
//! connections per stack instead.

use std::{alloc::System, collections::BTreeMap, time::Duration};

use libp2p_identity::Keypair;
use onetrip_bench::{
    baseline,
    fixtures::{self, OnetripServer},
    summary::{self, LIBP2P_QUIC, RUST_LIBP2P_TCP},
};
use onetrip_stack::Preset;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes in use now.
fn heap() -> i64 {
    let stats = INSTRUMENTED_SYSTEM.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64 + stats.bytes_reallocated as i64
}

fn main() {
    let smoke = std::env::args().any(|arg| arg == "--test");
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
        let bytes = rt.block_on(async {
            let server = OnetripServer::start().await.unwrap();
            let client = fixtures::client(preset).unwrap();
            // One connection first: lazily made state (a QUIC endpoint)
            // is not per connection.
            let first = client
                .dial(server.addr(preset), Some(server.peer))
                .await
                .unwrap();
            settle().await;
            let before = heap();
            let mut open = Vec::with_capacity(count);
            for _ in 0..count {
                let connection = client
                    .dial(server.addr(preset), Some(server.peer))
                    .await
                    .unwrap();
                open.push(connection);
            }
            settle().await;
            let per = (heap() - before) / count as i64;
            drop(open);
            drop(first);
            per
        });
        table.insert(name.to_string(), bytes.max(0) as u64);
    }

    let bytes = rt.block_on(async {
        let server = baseline::Security::noise(&Keypair::generate_ed25519()).unwrap();
        let addr = baseline::tcp_server(server).await.unwrap();
        let key = baseline::Security::noise(&Keypair::generate_ed25519()).unwrap();
        let first = baseline::tcp_connect(addr, &key).await.unwrap();
        settle().await;
        let before = heap();
        let mut open = Vec::with_capacity(count);
        for _ in 0..count {
            open.push(baseline::tcp_connect(addr, &key).await.unwrap());
        }
        settle().await;
        let per = (heap() - before) / count as i64;
        drop((open, first));
        per
    });
    table.insert(RUST_LIBP2P_TCP.into(), bytes.max(0) as u64);

    let bytes = rt.block_on(async {
        let addr = baseline::quic_server().await.unwrap();
        let mut transport =
            baseline::QuicTransport::new(libp2p_quic::Config::new(&Keypair::generate_ed25519()));
        let first = baseline::quic_connect(&mut transport, &addr).await.unwrap();
        settle().await;
        let before = heap();
        let mut open = Vec::with_capacity(count);
        for _ in 0..count {
            open.push(baseline::quic_connect(&mut transport, &addr).await.unwrap());
        }
        settle().await;
        let per = (heap() - before) / count as i64;
        drop((open, first));
        per
    });
    table.insert(LIBP2P_QUIC.into(), bytes.max(0) as u64);

    println!("idle: heap bytes per established connection (both ends), {count} connections");
    println!("{:<20} {:>12}", "stack", "bytes");
    for (stack, bytes) in &table {
        println!("{stack:<20} {bytes:>12}");
    }
    if !smoke {
        let dir = summary::out_dir();
        let json = serde_json::to_string_pretty(&table).unwrap();
        if std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("idle.json"), json))
            .is_err()
        {
            eprintln!("idle.json not written to {}", dir.display());
        }
        summary::write();
    }
}

/// Lets handshakes' tails (tickets, acknowledgements) finish.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}
