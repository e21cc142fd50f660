//! onetrip servers and clients on loopback for the benches, and the list of
//! stacks they compare.

use std::net::SocketAddr;

use libp2p_identity::{Keypair, PeerId};
use multiaddr::Multiaddr;
use onetrip_perf::{Progress, RunParams, ServerLimits, runner};
use onetrip_stack::{
    Config, Connection, Endpoint, Preset, TransportKind,
    measure::{REQUEST_LEN, ping},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::baseline::{self, BoxError};

/// An onetrip server listening on loopback TCP and QUIC, serving ping
/// echo and perf, accepting 0-RTT.
#[derive(Debug, Clone)]
pub struct OnetripServer {
    /// Its TCP address.
    pub tcp: Multiaddr,
    /// Its QUIC address.
    pub quic: Multiaddr,
    /// Its peer id.
    pub peer: PeerId,
}

impl OnetripServer {
    /// Starts one on the current runtime.
    ///
    /// # Errors
    /// If binding fails.
    pub async fn start() -> Result<Self, BoxError> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(Self::config()?, any, any).await
    }

    /// Its configuration: ping and perf, 0-RTT accepted, a high
    /// connection limit.
    ///
    /// # Errors
    /// If the configuration cannot be made.
    pub fn config() -> Result<Config, BoxError> {
        Ok(Config::new(Keypair::generate_ed25519())?
            .with_protocols([ping(), runner::perf_protocol()])
            .with_accept_0rtt(true)
            .with_max_connections(100_000)?)
    }

    /// One with `config`, listening on `tcp` and `quic` (port 0: any).
    ///
    /// # Errors
    /// If binding fails.
    pub async fn start_on(
        config: Config,
        tcp: SocketAddr,
        quic: SocketAddr,
    ) -> Result<Self, BoxError> {
        let endpoint = Endpoint::new(config);
        let tcp = endpoint
            .listen(&onetrip_stack::multiaddr(TransportKind::Tcp, tcp))
            .await?;
        let quic = endpoint
            .listen(&onetrip_stack::multiaddr(TransportKind::Quic, quic))
            .await?;
        let server = OnetripServer {
            tcp: tcp.local_addr().clone(),
            quic: quic.local_addr().clone(),
            peer: endpoint.local_peer_id(),
        };
        for mut listener in [tcp, quic] {
            tokio::spawn(async move {
                while let Ok(connection) = listener.accept().await {
                    tokio::spawn(serve(connection));
                }
            });
        }
        Ok(server)
    }

    /// The address a preset dials.
    pub fn addr(&self, preset: Preset) -> &Multiaddr {
        match preset {
            Preset::Tcp(_) => &self.tcp,
            Preset::Quic(_) => &self.quic,
        }
    }
}

async fn serve(mut connection: Connection) {
    while let Ok((protocol, mut stream)) = connection.accept_stream().await {
        let perf = protocol == runner::perf_protocol();
        tokio::spawn(async move {
            if perf {
                let _ = onetrip_perf::serve(stream, ServerLimits::default()).await;
                return;
            }
            let mut request = [0; REQUEST_LEN];
            if stream.read_exact(&mut request).await.is_ok() {
                let _ = stream.write_all(&request).await;
                let _ = stream.shutdown().await;
            }
        });
    }
}

/// Runs `start` on a runtime of its own, on a thread of its own, and keeps
/// that runtime running the tasks `start` spawned (servers) for the rest
/// of the process; returns what `start` returned (their addresses). A
/// server there runs on its own core, as a remote peer would: a transfer
/// seals on one core and opens on the other.
///
/// # Panics
/// If the runtime cannot be made, or `start` panics.
pub fn on_server_thread<F, Fut, T>(start: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (started, addrs) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("servers".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the servers");
            rt.block_on(async move {
                let _ = started.send(start().await);
                std::future::pending::<()>().await;
            });
        })
        .expect("a thread for the servers");
    addrs.recv().expect("the servers started")
}

/// A client endpoint for `preset`.
///
/// # Errors
/// If the configuration cannot be made.
pub fn client(preset: Preset) -> Result<Endpoint, BoxError> {
    Ok(Endpoint::new(
        Config::new(Keypair::generate_ed25519())?.with_preset(preset)?,
    ))
}

/// One perf run on a fresh stream.
///
/// # Errors
/// If the run fails.
pub async fn perf_once(connection: &Connection, params: RunParams) -> Result<(), BoxError> {
    runner::request(connection, params, &Progress::default()).await?;
    Ok(())
}

/// One perf run on a fresh rust-libp2p stream.
///
/// # Errors
/// If the run fails.
pub async fn libp2p_perf_once(
    connection: &baseline::Libp2pConnection,
    params: RunParams,
) -> Result<(), BoxError> {
    libp2p_perf(connection, params, &Progress::default()).await
}

/// [`libp2p_perf_once`], counting the bytes it moves in `progress`.
///
/// # Errors
/// If the run fails.
pub async fn libp2p_perf(
    connection: &baseline::Libp2pConnection,
    params: RunParams,
    progress: &Progress,
) -> Result<(), BoxError> {
    use tokio_util::compat::FuturesAsyncReadCompatExt;
    let stream = connection.open(baseline::PERF).await?;
    onetrip_perf::run_client(stream.compat(), params, progress).await?;
    Ok(())
}

/// A plain TCP perf server on loopback (no security, no muxer): the
/// ceiling for the stacks over TCP.
///
/// # Errors
/// If binding fails.
pub async fn raw_tcp_server() -> Result<SocketAddr, BoxError> {
    raw_tcp_server_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// [`raw_tcp_server`] on `addr`.
///
/// # Errors
/// If binding fails.
pub async fn raw_tcp_server_on(addr: SocketAddr) -> Result<SocketAddr, BoxError> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            tokio::spawn(onetrip_perf::serve(socket, ServerLimits::default()));
        }
    });
    Ok(addr)
}

/// The perf protocol on a plain TCP connection, counting the bytes it
/// moves in `progress`.
///
/// # Errors
/// If the run fails.
pub async fn raw_tcp_perf(
    addr: SocketAddr,
    params: RunParams,
    progress: &Progress,
) -> Result<(), BoxError> {
    let socket = tokio::net::TcpStream::connect(addr).await?;
    socket.set_nodelay(true)?;
    onetrip_perf::run_client(socket, params, progress).await?;
    Ok(())
}
