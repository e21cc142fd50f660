//! A onetrip server in the emulator's server namespace, shared by the
//! tests that run across the path.

use std::net::SocketAddr;

use libp2p_identity::{Keypair, PeerId};
use onetrip_netem::{Emulator, SERVER};
use onetrip_perf::{ServerLimits, runner::perf_protocol};
use onetrip_stack::{Config, Endpoint, TransportKind, measure, multiaddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where the server listens, and who it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Server {
    /// TCP: every layering answered, TCP Fast Open taken.
    pub(crate) tcp: SocketAddr,
    /// QUIC, 0-RTT accepted.
    pub(crate) quic: SocketAddr,
    /// Its peer id.
    pub(crate) peer: PeerId,
}

/// Starts a onetrip server in the server namespace, on a thread (and
/// runtime) of its own there, serving ping (echo) and `/perf/1.0.0`.
pub(crate) fn start_server(emulator: &Emulator) -> Server {
    emulator.server.start(|| async {
        let config = Config::new(Keypair::generate_ed25519())
            .unwrap()
            .with_protocols([measure::ping(), perf_protocol()])
            .with_accept_0rtt(true)
            .with_fast_open_listener(true);
        let endpoint = Endpoint::new(config);
        let tcp = SocketAddr::from((SERVER, 4001));
        let quic = SocketAddr::from((SERVER, 4002));
        for (kind, addr) in [(TransportKind::Tcp, tcp), (TransportKind::Quic, quic)] {
            let mut listener = endpoint.listen(&multiaddr(kind, addr)).await.unwrap();
            tokio::spawn(async move {
                while let Ok(connection) = listener.accept().await {
                    tokio::spawn(serve(connection));
                }
            });
        }
        let peer = endpoint.local_peer_id();
        // The endpoint lives as long as the runtime.
        tokio::spawn(async move {
            let _endpoint = endpoint;
            std::future::pending::<()>().await;
        });
        Server { tcp, quic, peer }
    })
}

/// Serves a connection's streams: ping echoes its request, perf runs.
async fn serve(mut connection: onetrip_stack::Connection) {
    while let Ok((protocol, mut stream)) = connection.accept_stream().await {
        tokio::spawn(async move {
            if protocol == perf_protocol() {
                let _ = onetrip_perf::serve(stream, ServerLimits::default()).await;
                return;
            }
            let mut request = [0; measure::REQUEST_LEN];
            if stream.read_exact(&mut request).await.is_ok() {
                let _ = stream.write_all(&request).await;
                let _ = stream.shutdown().await;
            }
        });
    }
}
