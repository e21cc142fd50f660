//! Streams on one connection: many, one after another, each kept open
//! while the next is opened and used.

use libp2p_identity::Keypair;
use onetrip_stack::{Config, Endpoint, Layering, Mode, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn echo() -> Protocol {
    Protocol::new("/echo/1.0.0").unwrap()
}

fn config() -> Config {
    Config::new(Keypair::generate_ed25519())
        .unwrap()
        .with_layering(Layering::TCP_ONETRIP)
        .unwrap()
        .with_protocols([echo()])
}

#[tokio::test]
async fn sequential_streams_each_kept_open() {
    let server = Endpoint::new(config());
    let mut listener = server
        .listen(&"/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let client = Endpoint::new(config());
    let (accepted, dialed) = tokio::join!(listener.accept(), client.dial(&addr, None));
    let (mut accepted, dialed) = (accepted.unwrap(), dialed.unwrap());
    let mut kept = Vec::new();
    for i in 0..20u8 {
        let mode = if i % 2 == 0 {
            Mode::Optimistic
        } else {
            Mode::Interactive
        };
        let mut stream = dialed.open_stream_with(echo(), mode).await.unwrap();
        stream.write_all(&[i]).await.unwrap();
        stream.flush().await.unwrap();
        let (protocol, mut inbound) =
            tokio::time::timeout(std::time::Duration::from_secs(30), accepted.accept_stream())
                .await
                .unwrap_or_else(|_| panic!("stream {i} never arrived"))
                .unwrap();
        assert_eq!(protocol, echo());
        let mut byte = [0; 1];
        inbound.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte, [i]);
        kept.push((stream, inbound));
    }
    // Every stream still works both ways.
    for (i, (stream, inbound)) in kept.iter_mut().enumerate() {
        inbound.write_all(&[i as u8]).await.unwrap();
        inbound.flush().await.unwrap();
        let mut byte = [0; 1];
        stream.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte, [i as u8]);
    }
    dialed.close().await.unwrap();
}
