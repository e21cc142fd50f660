//! `/perf/1.0.0` on in-memory streams: exact counts, the server's order
//! (drain, then send), and every way a peer can misbehave.

use std::time::Duration;

use futures_util::FutureExt;
use onetrip_perf::{Error, Progress, RunParams, ServerLimits, run_client, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

#[tokio::test]
async fn exact_counts_both_ways() {
    for (upload, download) in [(0, 0), (1, 0), (0, 1), (100_000, 3), (3, 1_000_003)] {
        let (client, server) = duplex(16 * 1024);
        let serving = tokio::spawn(serve(server, ServerLimits::default()));
        let progress = Progress::default();
        run_client(client, RunParams { upload, download }, &progress)
            .await
            .unwrap();
        let served = serving.await.unwrap().unwrap();
        assert_eq!((served.uploaded, served.downloaded), (upload, download));
        assert_eq!(
            (progress.uploaded(), progress.downloaded()),
            (upload, download)
        );
    }
}

/// The server must not send while the client is still uploading (perf.md:
/// "MUST NOT be run concurrently"): in virtual time, hours pass with the
/// upload unfinished and not a byte comes back.
#[tokio::test(start_paused = true)]
async fn the_server_drains_the_upload_before_sending() {
    let (mut client, server) = duplex(1 << 20);
    let limits = ServerLimits {
        idle_timeout: Duration::from_secs(24 * 3600),
        ..ServerLimits::default()
    };
    let serving = tokio::spawn(serve(server, limits));
    client.write_all(&1000u64.to_be_bytes()).await.unwrap();
    client.write_all(&[1; 5000]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let mut byte = [0; 1];
    assert!(
        client.read(&mut byte).now_or_never().is_none(),
        "the server sent before the upload ended"
    );
    client.shutdown().await.unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).await.unwrap();
    assert_eq!(received.len(), 1000);
    let served = serving.await.unwrap().unwrap();
    assert_eq!(served.uploaded, 5000);
}

#[tokio::test]
async fn a_stream_that_ends_within_the_header() {
    for len in [0, 1, 7] {
        let (mut client, server) = duplex(64);
        client.write_all(&vec![0; len]).await.unwrap();
        client.shutdown().await.unwrap();
        let err = serve(server, ServerLimits::default()).await.unwrap_err();
        assert!(
            matches!(err, Error::ShortHeader { received } if received == len),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn sizes_beyond_the_limits() {
    let limits = ServerLimits {
        max_download: 1 << 20,
        max_upload: 1000,
        ..ServerLimits::default()
    };
    let (mut client, server) = duplex(64);
    client.write_all(&u64::MAX.to_be_bytes()).await.unwrap();
    let err = serve(server, limits).await.unwrap_err();
    assert!(
        matches!(err, Error::DownloadTooLarge { requested: u64::MAX, limit } if limit == 1 << 20),
        "{err:?}"
    );

    let (client, server) = duplex(4096);
    let serving = tokio::spawn(serve(server, limits));
    let params = RunParams {
        upload: 1001,
        download: 0,
    };
    let _ = run_client(client, params, &Progress::default()).await;
    let err = serving.await.unwrap().unwrap_err();
    assert!(
        matches!(err, Error::UploadTooLarge { limit: 1000 }),
        "{err:?}"
    );
}

/// A client that never closes is dropped after the idle timeout; virtual
/// time makes the wait exact.
#[tokio::test(start_paused = true)]
async fn a_client_that_never_closes() {
    let (mut client, server) = duplex(64);
    let idle = Duration::from_secs(30);
    let limits = ServerLimits {
        idle_timeout: idle,
        ..ServerLimits::default()
    };
    client.write_all(&8u64.to_be_bytes()).await.unwrap();
    let start = tokio::time::Instant::now();
    let err = serve(server, limits).await.unwrap_err();
    assert!(matches!(err, Error::Idle(d) if d == idle), "{err:?}");
    assert_eq!(start.elapsed(), idle);
    drop(client);
}

/// A server that sends too little or too much is caught by the client.
#[tokio::test]
async fn a_server_that_miscounts() {
    for (sent, expect_short) in [(5u64, true), (20, false)] {
        let (client, mut server) = duplex(4096);
        let fake = tokio::spawn(async move {
            let mut header = [0; 8];
            server.read_exact(&mut header).await.unwrap();
            let mut upload = Vec::new();
            server.read_to_end(&mut upload).await.unwrap();
            server.write_all(&vec![0; sent as usize]).await.unwrap();
            server.shutdown().await.unwrap();
        });
        let params = RunParams {
            upload: 0,
            download: 10,
        };
        let err = run_client(client, params, &Progress::default())
            .await
            .unwrap_err();
        if expect_short {
            assert!(
                matches!(
                    err,
                    Error::ShortDownload {
                        expected: 10,
                        received: 5
                    }
                ),
                "{err:?}"
            );
        } else {
            assert!(
                matches!(err, Error::LongDownload { expected: 10 }),
                "{err:?}"
            );
        }
        let _ = fake.await;
    }
}

/// The server fuzz target's driver on random streams.
mod fuzz_driver {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn random_streams(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            onetrip_perf::fuzzing::serve_bytes(&data);
        }

        #[test]
        fn small_requests(download in 0u64..5000, upload in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut data = download.to_be_bytes().to_vec();
            data.extend_from_slice(&upload);
            onetrip_perf::fuzzing::serve_bytes(&data);
        }
    }
}
