//! onetrip against a stock go-libp2p node (`tests/go-peer`: a Go module
//! pinning go-libp2p, with TCP, QUIC, Noise, TLS, yamux, identify and
//! ping as go-libp2p sets them up), in both roles: the suite of `suite.rs`.
//!
//! Build the node with `go build -C tests/go-peer -o go-peer .` (`.ci/run`
//! does).

mod suite;

use onetrip_testkit::peer::{Encryption, Peer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onetrip_dials_go_over_tcp() {
    let mut go = Peer::go(Encryption::Noise).await;
    suite::onetrip_dials(&mut go, suite::tcp_presets()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onetrip_dials_go_over_quic() {
    let mut go = Peer::go(Encryption::Noise).await;
    suite::onetrip_dials(&mut go, suite::quic_presets()).await;
}

/// The go node dials onetrip listening with every preset; for a TLS
/// preset, a go node that proposes TLS first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_dials_onetrip() {
    let mut noise = Peer::go(Encryption::Noise).await;
    let mut tls = Peer::go(Encryption::Tls).await;
    suite::dials_onetrip(&mut noise, &mut tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_on_one_connection() {
    let mut go = Peer::go(Encryption::Noise).await;
    suite::many_streams_on_one_connection(&mut go).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_identify() {
    let mut go = Peer::go(Encryption::Noise).await;
    suite::ping_and_identify(&mut go).await;
}
