//! perf end to end over loopback, through onetrip's TCP and QUIC stacks.

use libp2p_identity::Keypair;
use onetrip_perf::{
    Progress, RunParams, ServerLimits,
    runner::{self, Target},
};
use onetrip_stack::{Config, Endpoint, Layering, Preset, QuicLayering};

/// A perf server on loopback for `transport` (`tcp` or `udp/…/quic-v1`);
/// its address and peer id.
async fn server(addr: &str) -> (multiaddr::Multiaddr, libp2p_identity::PeerId) {
    let config = Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_protocols([runner::perf_protocol()])
        .with_accept_0rtt(true);
    let endpoint = Endpoint::new(config);
    let listener = endpoint.listen(&addr.parse().unwrap()).await.unwrap();
    let local = listener.local_addr().clone();
    tokio::spawn(runner::serve(listener, ServerLimits::default()));
    (local, endpoint.local_peer_id())
}

fn target(preset: Preset, addr: multiaddr::Multiaddr, peer: libp2p_identity::PeerId) -> Target {
    let config = Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_preset(preset)
        .unwrap();
    Target {
        endpoint: Endpoint::new(config),
        addr,
        peer: Some(peer),
    }
}

#[tokio::test]
async fn throughput_counts_are_exact_over_tcp_and_quic() {
    let cases = [
        ("/ip4/127.0.0.1/tcp/0", Preset::Tcp(Layering::TCP_ONETRIP)),
        ("/ip4/127.0.0.1/tcp/0", Preset::Tcp(Layering::TCP_CLASSIC)),
        (
            "/ip4/127.0.0.1/udp/0/quic-v1",
            Preset::Quic(QuicLayering::QUIC_OPTIMISTIC),
        ),
        (
            "/ip4/127.0.0.1/udp/0/quic-v1",
            Preset::Quic(QuicLayering::QUIC_0RTT),
        ),
    ];
    for (listen, preset) in cases {
        let (addr, peer) = server(listen).await;
        let target = target(preset, addr, peer);
        for (upload, download) in [(0, 0), (3_000_000, 0), (0, 3_000_000), (12_345, 67_890)] {
            let connection = target.connect().await.unwrap();
            let progress = Progress::default();
            runner::request(&connection, RunParams { upload, download }, &progress)
                .await
                .unwrap_or_else(|err| panic!("{preset}: {err}"));
            assert_eq!(
                (progress.uploaded(), progress.downloaded()),
                (upload, download),
                "{preset}"
            );
            connection.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_scenarios_complete_every_request() {
    for (listen, preset) in [
        ("/ip4/127.0.0.1/tcp/0", Preset::Tcp(Layering::TCP_ONETRIP)),
        (
            "/ip4/127.0.0.1/udp/0/quic-v1",
            Preset::Quic(QuicLayering::QUIC_0RTT),
        ),
    ] {
        let (addr, peer) = server(listen).await;
        let target = target(preset, addr, peer);
        let latency = runner::latency(&target, 20).await.unwrap();
        assert_eq!(latency.iterations, 20);
        let p = latency.latency.unwrap();
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99);
        let streams = runner::streams(&target, 50, 5).await.unwrap();
        assert_eq!(streams.iterations, 50);
        let connections = runner::connections(&target, 20, 4).await.unwrap();
        assert_eq!(connections.iterations, 20);
        assert!(connections.per_second() > 0.0);
    }
}
