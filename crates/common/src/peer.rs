//! The wrong-peer error, named once for every layer that authenticates.

use libp2p_identity::PeerId;

/// The remote proved an identity other than the one the dialer expected.
///
/// Noise finds it in the handshake payload, libp2p TLS (on QUIC or TCP) in
/// the certificate; every layer reports it with this type, so a user
/// matches a wrong peer in one way whatever the transport. Boxed in error
/// enums: peer ids are large, and errors travel in every `Result`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected peer {expected}, but the remote is {actual}")]
pub struct PeerIdMismatch {
    /// Whom the dialer meant to reach.
    pub expected: PeerId,
    /// Who answered, as its key proves.
    pub actual: PeerId,
}

impl PeerIdMismatch {
    /// `Ok` if `actual` is `expected` (or nothing was expected), else the
    /// mismatch, boxed for an error variant.
    ///
    /// # Errors
    /// The mismatch, when there is one.
    pub fn check(expected: Option<PeerId>, actual: PeerId) -> Result<(), Box<Self>> {
        match expected {
            Some(expected) if expected != actual => Err(Box::new(Self { expected, actual })),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p_identity::Keypair;

    use super::*;

    #[test]
    fn only_another_peer_is_a_mismatch() {
        let a = Keypair::generate_ed25519().public().to_peer_id();
        let b = Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(PeerIdMismatch::check(None, a), Ok(()));
        assert_eq!(PeerIdMismatch::check(Some(a), a), Ok(()));
        let mismatch = PeerIdMismatch::check(Some(a), b).unwrap_err();
        assert_eq!((mismatch.expected, mismatch.actual), (a, b));
        assert_eq!(
            mismatch.to_string(),
            format!("expected peer {a}, but the remote is {b}")
        );
    }
}
