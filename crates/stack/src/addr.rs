//! TCP multiaddrs: `/ip4/…/tcp/…` and `/ip6/…/tcp/…`, optionally ending in
//! `/p2p/<peer id>` (libp2p specs: addressing/README.md).

use std::net::{IpAddr, SocketAddr};

use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};

use crate::Error;

/// The socket address of a TCP multiaddr, and its peer id if it names one.
///
/// # Errors
/// [`Error::UnsupportedAddress`] for anything else (DNS names, QUIC, relays).
pub fn tcp_socket_addr(addr: &Multiaddr) -> Result<(SocketAddr, Option<PeerId>), Error> {
    let unsupported = || Error::UnsupportedAddress(addr.clone());
    let mut parts = addr.iter();
    let ip = match parts.next() {
        Some(Protocol::Ip4(ip)) => IpAddr::V4(ip),
        Some(Protocol::Ip6(ip)) => IpAddr::V6(ip),
        _ => return Err(unsupported()),
    };
    let port = match parts.next() {
        Some(Protocol::Tcp(port)) => port,
        _ => return Err(unsupported()),
    };
    let peer = match parts.next() {
        None => None,
        Some(Protocol::P2p(peer)) => Some(peer),
        Some(_) => return Err(unsupported()),
    };
    if parts.next().is_some() {
        return Err(unsupported());
    }
    Ok((SocketAddr::new(ip, port), peer))
}

/// The TCP multiaddr of a socket address.
pub fn tcp_multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty()
        .with(addr.ip().into())
        .with(Protocol::Tcp(addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_addresses() {
        let peer = PeerId::random();
        let v4: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert_eq!(
            tcp_socket_addr(&v4).unwrap(),
            ("127.0.0.1:4001".parse().unwrap(), None)
        );
        let v6: Multiaddr = format!("/ip6/::1/tcp/9/p2p/{peer}").parse().unwrap();
        assert_eq!(
            tcp_socket_addr(&v6).unwrap(),
            ("[::1]:9".parse().unwrap(), Some(peer))
        );
        assert_eq!(
            tcp_multiaddr("[::1]:9".parse().unwrap()).to_string(),
            "/ip6/::1/tcp/9"
        );
    }

    #[test]
    fn refuses_other_addresses() {
        for addr in [
            "/ip4/127.0.0.1/udp/4001/quic-v1",
            "/dns4/example.com/tcp/4001",
            "/ip4/127.0.0.1",
            "/ip4/127.0.0.1/tcp/1/tcp/2",
            "/tcp/1",
        ] {
            let addr: Multiaddr = addr.parse().unwrap();
            assert!(matches!(
                tcp_socket_addr(&addr),
                Err(Error::UnsupportedAddress(a)) if a == addr
            ));
        }
    }
}
