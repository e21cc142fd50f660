//! Interoperability of onetrip-multistream with rust-libp2p's
//! `multistream-select` crate, in both roles, with both of its versions
//! (`V1`, `V1Lazy`) against both of our modes, exchanging application data
//! in both directions after negotiation.

use std::time::Duration;

use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use multistream_select::{Version, dialer_select_proto, listener_select_proto};
use onetrip_multistream::{Deadline, Error, Mode, Protocol, dialer_select, listener_select};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio_util::compat::TokioAsyncReadCompatExt;

fn p(name: &str) -> Protocol {
    Protocol::new(name).unwrap()
}

/// Runs both sides under a deadline. The tests run on tokio's paused clock,
/// which jumps ahead whenever every task is blocked: a deadlock fails at once
/// instead of hanging the suite.
async fn bounded<F: Future>(both_sides: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), both_sides)
        .await
        .expect("negotiation deadlocked")
}

const VERSIONS: [Version; 2] = [Version::V1, Version::V1Lazy];
const MODES: [Mode; 2] = [Mode::Interactive, Mode::Optimistic];

/// Their dialer proposes `theirs`; our listener supports `ours`.
async fn theirs_dials_ours(version: Version, theirs: &[&str], ours: &[&str]) -> String {
    let (a, b) = duplex(1 << 16);
    let supported: Vec<Protocol> = ours.iter().map(|n| p(n)).collect();
    let dialer = async {
        let (protocol, mut io) = dialer_select_proto(a.compat(), theirs.to_vec(), version)
            .await
            .expect("rust-libp2p dialer");
        io.write_all(b"request from rust-libp2p").await.unwrap();
        io.flush().await.unwrap();
        let mut reply = [0u8; 18];
        io.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"reply from onetrip");
        protocol.to_string()
    };
    let listener = async {
        let (protocol, mut io) = listener_select(b, supported, Deadline::NONE)
            .await
            .expect("our listener");
        let mut request = [0u8; 24];
        io.read_exact(&mut request).await.unwrap();
        assert_eq!(&request, b"request from rust-libp2p");
        io.write_all(b"reply from onetrip").await.unwrap();
        io.flush().await.unwrap();
        protocol.to_string()
    };
    let (theirs, ours) = bounded(async { tokio::join!(dialer, listener) }).await;
    assert_eq!(theirs, ours);
    ours
}

/// Our dialer proposes `ours`; their listener supports `theirs`.
async fn ours_dials_theirs(mode: Mode, ours: &[&str], theirs: &[&str]) -> String {
    let (a, b) = duplex(1 << 16);
    let proposals: Vec<Protocol> = ours.iter().map(|n| p(n)).collect();
    let dialer = async {
        let (protocol, mut io) = dialer_select(a, proposals, mode, Deadline::NONE)
            .await
            .expect("our dialer");
        io.write_all(b"request from onetrip").await.unwrap();
        io.flush().await.unwrap();
        let mut reply = [0u8; 22];
        io.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"reply from rust-libp2p");
        protocol.to_string()
    };
    let listener = async {
        let (protocol, mut io) = listener_select_proto(b.compat(), theirs.to_vec())
            .await
            .expect("rust-libp2p listener");
        let mut request = [0u8; 20];
        io.read_exact(&mut request).await.unwrap();
        assert_eq!(&request, b"request from onetrip");
        io.write_all(b"reply from rust-libp2p").await.unwrap();
        io.flush().await.unwrap();
        protocol.to_string()
    };
    let (ours, theirs) = bounded(async { tokio::join!(dialer, listener) }).await;
    assert_eq!(ours, theirs);
    ours
}

#[tokio::test(start_paused = true)]
async fn rust_libp2p_dialer_onetrip_listener() {
    for version in VERSIONS {
        let chosen = theirs_dials_ours(
            version,
            &["/yamux/1.0.0"],
            &["/mplex/6.7.0", "/yamux/1.0.0"],
        )
        .await;
        assert_eq!(chosen, "/yamux/1.0.0", "{version:?}");
        // The first proposal is refused; the second is accepted.
        let chosen = theirs_dials_ours(version, &["/noise/2", "/noise"], &["/noise"]).await;
        assert_eq!(chosen, "/noise", "{version:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn onetrip_dialer_rust_libp2p_listener() {
    for mode in MODES {
        let chosen =
            ours_dials_theirs(mode, &["/yamux/1.0.0"], &["/mplex/6.7.0", "/yamux/1.0.0"]).await;
        assert_eq!(chosen, "/yamux/1.0.0", "{mode:?}");
        let chosen = ours_dials_theirs(mode, &["/noise/2", "/noise"], &["/noise"]).await;
        assert_eq!(chosen, "/noise", "{mode:?}");
    }
}

/// Their listener refuses our only (optimistic) proposal: the refusal comes
/// back as our typed error, not as corrupted data.
#[tokio::test(start_paused = true)]
async fn rust_libp2p_listener_refuses_optimistic_proposal() {
    let (a, b) = duplex(1 << 16);
    let dialer = async {
        let (_, mut io) = dialer_select(a, [p("/unsupported")], Mode::Optimistic, Deadline::NONE)
            .await
            .unwrap();
        io.write_all(b"optimistic bytes").await.unwrap();
        io.flush().await.unwrap();
        let mut buf = [0u8; 1];
        let err = io.read(&mut buf).await.unwrap_err();
        drop(io);
        err
    };
    let listener = listener_select_proto(b.compat(), ["/supported"]);
    let (err, refused) = bounded(async { tokio::join!(dialer, listener) }).await;
    match Error::from_io(&err) {
        Some(Error::OptimisticRejected { protocol }) => assert_eq!(protocol, "/unsupported"),
        other => panic!("expected OptimisticRejected, got {other:?} ({err})"),
    }
    assert!(refused.is_err());
}

/// Our listener refuses their only (lazy) proposal: their stream fails
/// instead of delivering data.
#[tokio::test(start_paused = true)]
async fn onetrip_listener_refuses_lazy_proposal() {
    let (a, b) = duplex(1 << 16);
    let dialer = async {
        let (_, mut io) = dialer_select_proto(a.compat(), ["/unsupported"], Version::V1Lazy)
            .await
            .unwrap();
        io.write_all(b"lazy bytes").await.unwrap();
        io.flush().await.unwrap();
        let mut buf = [0u8; 1];
        let result = io.read(&mut buf).await;
        drop(io);
        result
    };
    let listener = listener_select(b, vec![p("/supported")], Deadline::NONE);
    let (read, refused) = bounded(async { tokio::join!(dialer, listener) }).await;
    assert!(read.is_err(), "{read:?}");
    assert!(refused.is_err());
}
