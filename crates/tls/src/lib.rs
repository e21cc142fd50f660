//! libp2p TLS 1.3 (libp2p specs: tls/tls.md) over rustls, for any
//! transport: QUIC carries it in its handshake, TCP runs it as `/tls/1.0.0`.
//!
//! - [`Identity`]: the local certificate, self-signed and carrying the
//!   libp2p Public Key Extension ([`EXTENSION_OID`]: a `SignedKey` whose
//!   signature covers [`SIGNATURE_PREFIX`] and the certificate's
//!   SubjectPublicKeyInfo), made once per key by `libp2p-tls`; and the
//!   rustls configurations that present it: TLS 1.3 only, client
//!   certificates required, no SNI.
//! - The verifiers derive the remote [`PeerId`](libp2p_identity::PeerId)
//!   from its certificate; a client dialing a known peer refuses any other
//!   in the handshake. A refused certificate is a typed
//!   [`CertificateError`], a different peer an [`Error::PeerIdMismatch`];
//!   each dial's [`Dial`] says which, or who the server is.
//! - ALPN: [`ALPN`] (`libp2p`) and, for TLS on TCP, the list that puts the
//!   muxers first ([`alpn::protocols`]).
//! - Session tickets are kept per server peer id in a bounded
//!   [`TicketStore`], each used once; a dial resumes only sessions of the
//!   peer it expects.
//!
//! Early data (0-RTT) is off in both configurations: it can be replayed,
//! and whether to send or accept it is the caller's decision.

pub mod alpn;
mod certificate;
mod dial;
mod error;
mod identity;
mod tickets;
mod verifier;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use crate::{
    alpn::ALPN,
    certificate::{EXTENSION_OID, SIGNATURE_PREFIX, peer_id},
    dial::Dial,
    error::{CertificateError, Error},
    identity::Identity,
    tickets::{DEFAULT_TICKET_PEERS, TICKETS_PER_PEER, TicketStore},
};
