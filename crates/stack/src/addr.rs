//! Transport multiaddrs: `/ip4|ip6/…/tcp/…` and `/ip4|ip6/…/udp/…/quic-v1`,
//! optionally ending in `/p2p/<peer id>` (libp2p specs:
//! addressing/README.md).

use std::net::{IpAddr, SocketAddr};

use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};

use crate::Error;

/// The transport an address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// `/tcp/<port>`.
    Tcp,
    /// `/udp/<port>/quic-v1`.
    Quic,
}

/// The transport, socket address and (if named) peer id of an address.
///
/// # Errors
/// [`Error::UnsupportedAddress`] for anything else (DNS names, QUIC draft
/// versions, relays, WebTransport).
pub fn parse_addr(addr: &Multiaddr) -> Result<(TransportKind, SocketAddr, Option<PeerId>), Error> {
    let unsupported = || Error::UnsupportedAddress(addr.clone());
    let mut parts = addr.iter();
    let ip = match parts.next() {
        Some(Protocol::Ip4(ip)) => IpAddr::V4(ip),
        Some(Protocol::Ip6(ip)) => IpAddr::V6(ip),
        _ => return Err(unsupported()),
    };
    let (transport, port) = match (parts.next(), parts.next()) {
        (Some(Protocol::Tcp(port)), next) => {
            // A TCP address has no further transport part: put it back.
            let mut rest = next.into_iter().chain(parts);
            let peer = peer(&mut rest).ok_or_else(unsupported)?;
            return Ok((TransportKind::Tcp, SocketAddr::new(ip, port), peer));
        }
        (Some(Protocol::Udp(port)), Some(Protocol::QuicV1)) => (TransportKind::Quic, port),
        _ => return Err(unsupported()),
    };
    let peer = peer(&mut parts).ok_or_else(unsupported)?;
    Ok((transport, SocketAddr::new(ip, port), peer))
}

/// The optional trailing `/p2p/…`; `None` if anything else follows.
fn peer<'a>(rest: &mut impl Iterator<Item = Protocol<'a>>) -> Option<Option<PeerId>> {
    let peer = match rest.next() {
        None => None,
        Some(Protocol::P2p(peer)) => Some(peer),
        Some(_) => return None,
    };
    rest.next().is_none().then_some(peer)
}

/// The socket address of a TCP multiaddr, and its peer id if it names one.
///
/// # Errors
/// [`Error::UnsupportedAddress`] for any other address.
pub fn tcp_socket_addr(addr: &Multiaddr) -> Result<(SocketAddr, Option<PeerId>), Error> {
    match parse_addr(addr)? {
        (TransportKind::Tcp, socket, peer) => Ok((socket, peer)),
        _ => Err(Error::UnsupportedAddress(addr.clone())),
    }
}

/// The multiaddr of a socket address on `transport`.
pub fn multiaddr(transport: TransportKind, addr: SocketAddr) -> Multiaddr {
    let ip = Multiaddr::empty().with(addr.ip().into());
    match transport {
        TransportKind::Tcp => ip.with(Protocol::Tcp(addr.port())),
        TransportKind::Quic => ip.with(Protocol::Udp(addr.port())).with(Protocol::QuicV1),
    }
}

/// The TCP multiaddr of a socket address.
pub fn tcp_multiaddr(addr: SocketAddr) -> Multiaddr {
    multiaddr(TransportKind::Tcp, addr)
}

/// The QUIC multiaddr of a socket address.
pub fn quic_multiaddr(addr: SocketAddr) -> Multiaddr {
    multiaddr(TransportKind::Quic, addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_quic_addresses() {
        let peer = PeerId::random();
        let v4: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert_eq!(
            parse_addr(&v4).unwrap(),
            (TransportKind::Tcp, "127.0.0.1:4001".parse().unwrap(), None)
        );
        let v6: Multiaddr = format!("/ip6/::1/tcp/9/p2p/{peer}").parse().unwrap();
        assert_eq!(
            tcp_socket_addr(&v6).unwrap(),
            ("[::1]:9".parse().unwrap(), Some(peer))
        );
        let quic: Multiaddr = format!("/ip4/10.0.0.1/udp/443/quic-v1/p2p/{peer}")
            .parse()
            .unwrap();
        assert_eq!(
            parse_addr(&quic).unwrap(),
            (
                TransportKind::Quic,
                "10.0.0.1:443".parse().unwrap(),
                Some(peer)
            )
        );
        assert_eq!(
            tcp_multiaddr("[::1]:9".parse().unwrap()).to_string(),
            "/ip6/::1/tcp/9"
        );
        assert_eq!(
            quic_multiaddr("127.0.0.1:9".parse().unwrap()).to_string(),
            "/ip4/127.0.0.1/udp/9/quic-v1"
        );
    }

    #[test]
    fn refuses_other_addresses() {
        for addr in [
            "/ip4/127.0.0.1/udp/4001/quic",
            "/ip4/127.0.0.1/udp/4001",
            "/dns4/example.com/tcp/4001",
            "/ip4/127.0.0.1",
            "/ip4/127.0.0.1/tcp/1/tcp/2",
            "/ip4/127.0.0.1/udp/1/quic-v1/webtransport",
            "/tcp/1",
        ] {
            let addr: Multiaddr = addr.parse().unwrap();
            assert!(matches!(
                parse_addr(&addr),
                Err(Error::UnsupportedAddress(a)) if a == addr
            ));
        }
        let quic: Multiaddr = "/ip4/127.0.0.1/udp/1/quic-v1".parse().unwrap();
        assert!(tcp_socket_addr(&quic).is_err());
    }
}
