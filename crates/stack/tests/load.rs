//! Load on loopback: 1,000 concurrent connections, each with 10 streams
//! echoing 1 KiB; every exchange succeeds, and the process's open file
//! descriptors return to where they were once everything is closed.
//!
//! Alone in its test binary, so no other test's sockets are counted.

use std::{sync::Arc, time::Duration};

use libp2p_identity::Keypair;
use onetrip_stack::{Config, Endpoint, Layering, Protocol};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::Semaphore,
};

const CONNECTIONS: usize = 1_000;
const STREAMS: usize = 10;
const MESSAGE: usize = 1024;
/// A hang fails the test instead of stalling CI.
const DEADLINE: Duration = Duration::from_secs(240);

fn echo() -> Protocol {
    Protocol::new("/echo/1.0.0").unwrap()
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_with_ten_streams_each() {
    tokio::time::timeout(DEADLINE, run())
        .await
        .expect("the load test did not finish in time");
}

async fn run() {
    // Both ends live in this process: about 2,000 sockets. Raise the soft
    // limit where it is lower (often 1,024) as far as the hard limit goes.
    rlimit::increase_nofile_limit(4 * CONNECTIONS as u64).expect("raising RLIMIT_NOFILE");
    let baseline = open_fds();
    let config = |layering| {
        Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_layering(layering)
            .unwrap()
            .with_protocols([echo()])
    };
    let server = Endpoint::new(config(Layering::TCP_ONETRIP));
    let mut listener = server
        .listen(&"/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let server_id = server.local_peer_id();
    let serve = tokio::spawn(async move {
        loop {
            let mut connection = match listener.accept().await {
                Ok(connection) => connection,
                Err(err) => panic!("an inbound connection failed: {err}"),
            };
            tokio::spawn(async move {
                while let Ok((_, mut stream)) = connection.accept_stream().await {
                    tokio::spawn(async move {
                        let mut buf = vec![0; MESSAGE];
                        stream.read_exact(&mut buf).await.unwrap();
                        stream.write_all(&buf).await.unwrap();
                        stream.shutdown().await.unwrap();
                    });
                }
            });
        }
    });

    let client = Endpoint::new(config(Layering::TCP_ONETRIP));
    // All connections are open together: each holds its slot until every
    // one has exchanged its messages.
    let all_open = Arc::new(tokio::sync::Barrier::new(CONNECTIONS));
    let dials = Arc::new(Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let (client, addr, all_open, dials) = (
            client.clone(),
            addr.clone(),
            all_open.clone(),
            dials.clone(),
        );
        tasks.spawn(async move {
            let connection = {
                let _dialing = dials.acquire().await.unwrap();
                client.dial(&addr, Some(server_id)).await.unwrap()
            };
            let exchanges = (0..STREAMS).map(|s| {
                let connection = &connection;
                async move {
                    let message: Vec<u8> = (0..MESSAGE).map(|b| (b + i + s) as u8).collect();
                    let mut stream = connection.open_stream(echo()).await.unwrap();
                    stream.write_all(&message).await.unwrap();
                    stream.flush().await.unwrap();
                    let mut back = Vec::with_capacity(MESSAGE);
                    stream.read_to_end(&mut back).await.unwrap();
                    assert_eq!(back, message);
                }
            });
            futures_util::future::join_all(exchanges).await;
            all_open.wait().await;
            connection.close().await.unwrap();
        });
    }
    let mut succeeded = 0;
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
        succeeded += 1;
    }
    assert_eq!(succeeded, CONNECTIONS);

    serve.abort();
    let _ = serve.await;
    // The listener's side closes as each peer's close arrives.
    let settled = tokio::time::timeout(Duration::from_secs(30), async {
        while open_fds() > baseline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let open = open_fds();
    assert!(
        settled.is_ok() && open == baseline,
        "{open} file descriptors open, {baseline} before the test"
    );
}
