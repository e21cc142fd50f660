//! rust-libp2p's TCP stack measured on a netsim link: its own crates,
//! composed as its `SwarmBuilder` composes them (`with_tcp(…, noise, yamux)`
//! negotiates security and muxer with multistream-select `V1Lazy`) and as
//! its Swarm negotiates a stream's protocol (`V1`, interactive).

use std::{net::SocketAddr, time::Duration};

use futures::{AsyncReadExt, AsyncWriteExt, future::poll_fn};
use libp2p_core::{
    muxing::{StreamMuxerBox, StreamMuxerExt},
    upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade},
};
use libp2p_identity::Keypair;
use multistream_select::{Version, dialer_select_proto, listener_select_proto};
use onetrip_netsim::{LinkConfig, Network, SimStream};
use onetrip_stack::measure::{CLIENT, Measurement, REQUEST_LEN, SERVER};
use tokio::time::Instant;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

const PING: &str = "/ipfs/ping/1.0.0";

/// A failure of the baseline run (none is expected on a loss-free link).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn noise(seed: u8) -> Result<libp2p_noise::Config, BoxError> {
    let keypair = Keypair::ed25519_from_bytes([seed; 32])?;
    Ok(libp2p_noise::Config::new(&keypair)?)
}

/// The dialer's side: security, muxer, one stream.
async fn dial(io: Compat<SimStream>) -> Result<(), BoxError> {
    let (_, io) = dialer_select_proto(io, ["/noise"], Version::V1Lazy).await?;
    let (_, io) = noise(1)?.upgrade_outbound(io, "/noise").await?;
    let (_, io) = dialer_select_proto(io, ["/yamux/1.0.0"], Version::V1Lazy).await?;
    let muxer = libp2p_yamux::Config::default()
        .upgrade_outbound(io, "/yamux/1.0.0")
        .await?;
    let mut muxer = StreamMuxerBox::new(muxer);
    let stream = poll_fn(|cx| muxer.poll_outbound_unpin(cx)).await?;
    // Drive the connection (yamux) while the stream is used.
    let driver = async {
        loop {
            if poll_fn(|cx| muxer.poll_unpin(cx)).await.is_err() {
                break;
            }
        }
    };
    let exchange = async {
        let (_, mut stream) = dialer_select_proto(stream, [PING], Version::V1).await?;
        stream.write_all(&[7; REQUEST_LEN]).await?;
        stream.flush().await?;
        let mut first = [0; 1];
        stream.read_exact(&mut first).await?;
        Ok::<_, BoxError>(())
    };
    tokio::select! {
        result = exchange => result,
        () = driver => Err("the connection ended".into()),
    }
}

/// The listener's side: security, muxer, echo on every stream.
async fn accept(io: Compat<SimStream>) -> Result<(), BoxError> {
    let (_, io) = listener_select_proto(io, ["/noise"]).await?;
    let (_, io) = noise(2)?.upgrade_inbound(io, "/noise").await?;
    let (_, io) = listener_select_proto(io, ["/yamux/1.0.0"]).await?;
    let muxer = libp2p_yamux::Config::default()
        .upgrade_inbound(io, "/yamux/1.0.0")
        .await?;
    let mut muxer = StreamMuxerBox::new(muxer);
    loop {
        let stream = poll_fn(|cx| muxer.poll_inbound_unpin(cx)).await?;
        tokio::spawn(async move {
            let Ok((_, mut stream)) = listener_select_proto(stream, [PING]).await else {
                return;
            };
            let mut request = [0; REQUEST_LEN];
            if stream.read_exact(&mut request).await.is_ok() {
                let _ = stream.write_all(&request).await;
                let _ = stream.close().await;
            }
        });
    }
}

/// rust-libp2p tcp + noise + yamux with its SwarmBuilder's defaults, over a
/// netsim stream link of one-way delay `delay`. Must run with a paused
/// clock.
///
/// # Errors
/// Whatever failed (nothing should on a loss-free link).
pub async fn libp2p_tcp(delay: Duration) -> Result<Measurement, BoxError> {
    let network = Network::new(LinkConfig::with_delay(delay))?;
    let mut listener = network.host(SERVER).listen(4001)?;
    let server_addr: SocketAddr = listener.local_addr();
    tokio::spawn(async move {
        while let Ok((io, _)) = listener.accept().await {
            tokio::spawn(accept(io.compat()));
        }
    });
    let start = Instant::now();
    let io = network.host(CLIENT).connect(server_addr).await?;
    dial(io.compat()).await?;
    let ttfb = start.elapsed();
    Ok(Measurement {
        rtt: network.rtt(CLIENT.into(), SERVER.into()),
        ttfb,
        recording: network.recorder().recording().until(ttfb),
        early_muxer: false,
        zero_rtt: None,
    })
}
