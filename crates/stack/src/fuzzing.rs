//! Drivers for the fuzz targets: untrusted bytes at a listener and in
//! addresses.

use std::sync::OnceLock;

use libp2p_identity::Keypair;
use multiaddr::Multiaddr;
use tokio::io::AsyncWriteExt;

use crate::{Config, Layering, tcp_socket_addr, upgrade};

/// One configuration for every run: building it signs and generates keys.
fn config() -> Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let keypair = Keypair::ed25519_from_bytes([9u8; 32]).expect("a valid ed25519 seed");
            Config::new(keypair)
                .and_then(|config| config.with_layering(Layering::TCP_ONETRIP))
                .expect("a valid configuration")
        })
        .clone()
}

/// Sends `data` as a dialer's bytes, then end of stream, to a listener's
/// whole connection setup (security negotiation, Noise handshake, muxer
/// negotiation) in virtual time. Panics only on a bug; hangs are caught by
/// the handshake timeout, which virtual time reaches at once.
pub fn inbound(data: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (mut dialer, listener) = tokio::io::duplex(64 * 1024);
        let config = config();
        let setup = upgrade::inbound(listener, &config, config.setup_deadline());
        let send = async {
            let _ = dialer.write_all(data).await;
            let _ = dialer.shutdown().await;
            dialer
        };
        let (_, _dialer) = tokio::join!(setup, send);
    });
}

/// Parses `data` as a binary multiaddr and asks for its TCP socket address.
pub fn address(data: &[u8]) {
    let Ok(addr) = Multiaddr::try_from(data.to_vec()) else {
        return;
    };
    if let Ok((socket, _)) = tcp_socket_addr(&addr) {
        let again = tcp_socket_addr(&crate::tcp_multiaddr(socket)).map(|(socket, _)| socket);
        assert_eq!(again.ok(), Some(socket), "{addr} does not round-trip");
    }
}
