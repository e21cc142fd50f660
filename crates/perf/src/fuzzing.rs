//! Drivers for the fuzz targets: untrusted bytes at a perf server.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{ServerLimits, serve};

/// Sends `data` as a client's whole stream (header and upload, then its
/// end) to a server with small limits, in virtual time, and reads what the
/// server sends back. Panics only on a bug: the server must answer with
/// exactly the bytes asked for, or with an error.
pub fn serve_bytes(data: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let limits = ServerLimits {
            max_download: 1 << 16,
            max_upload: 1 << 16,
            idle_timeout: Duration::from_secs(5),
        };
        let (mut client, server) = tokio::io::duplex(1 << 12);
        let serving = serve(server, limits);
        let exchange = async {
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            let mut received = Vec::new();
            let _ = client.read_to_end(&mut received).await;
            received.len()
        };
        let (served, received) = tokio::join!(serving, exchange);
        if let Ok(served) = served {
            assert_eq!(served.downloaded, received as u64);
            assert_eq!(served.uploaded as usize, data.len() - crate::HEADER_LEN);
        }
    });
}
