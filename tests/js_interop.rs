//! onetrip against a stock js-libp2p 3 node (`tests/js-peer`: libp2p,
//! @libp2p/tcp, @chainsafe/libp2p-noise, @libp2p/tls,
//! @chainsafe/libp2p-yamux, @chainsafe/libp2p-quic, identify, ping), in both
//! roles: the suite of `suite.rs`.
//!
//! The node runs on the Node.js 22 that its package pins; install it with
//! `npm ci --prefix tests/js-peer` (`.ci/run` does).

mod suite;

use onetrip_testkit::peer::{Encryption, Peer, PerfHandler};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onetrip_dials_js_over_tcp() {
    // The stock handler: what a js-libp2p perf server runs.
    let mut js = Peer::js(PerfHandler::Stock, Encryption::Noise).await;
    suite::onetrip_dials(&mut js, suite::tcp_presets()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onetrip_dials_js_over_quic() {
    // See spec/multistream-select.md: over QUIC, js-libp2p's stream
    // iterator can miss the end of a request from any dialer on loopback.
    let mut js = Peer::js(PerfHandler::Checked, Encryption::Noise).await;
    suite::onetrip_dials(&mut js, suite::quic_presets()).await;
}

/// The js node dials onetrip listening with every preset
/// (`negotiateFully: true` and `false`); for a TLS preset, a js node that
/// proposes TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_dials_onetrip() {
    let mut noise = Peer::js(PerfHandler::Stock, Encryption::Noise).await;
    let mut tls = Peer::js(PerfHandler::Stock, Encryption::Tls).await;
    suite::dials_onetrip(&mut noise, &mut tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_on_one_connection() {
    let mut js = Peer::js(PerfHandler::Checked, Encryption::Noise).await;
    suite::many_streams_on_one_connection(&mut js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_identify() {
    let mut js = Peer::js(PerfHandler::Stock, Encryption::Noise).await;
    suite::ping_and_identify(&mut js).await;
}
