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
//! - A server keeps the sessions its tickets resume in a bounded
//!   [`ServerSessions`] store, in its process: resuming takes the session
//!   out, so a ticket resumes at most once, and a replayed ClientHello is
//!   refused resumption and its early data with it.
//!   [`ServerSessions::dangerous_reusable`] switches that off, for tests
//!   that must show they see a replay.
//!
//! Early data (0-RTT) is off in both configurations: it can be replayed,
//! and whether to send or accept it is the caller's decision.

pub mod alpn;
mod certificate;
mod dial;
mod error;
mod identity;
mod sessions;
mod tickets;
mod verifier;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use crate::{
    alpn::ALPN,
    certificate::{EXTENSION_OID, SIGNATURE_PREFIX, peer_id, verified_peer_id},
    dial::Dial,
    error::{CertificateError, Error},
    identity::Identity,
    sessions::{DEFAULT_SERVER_SESSIONS, ServerSessions, SessionStats},
    tickets::{DEFAULT_TICKET_PEERS, TICKETS_PER_PEER, TicketStats, TicketStore},
};
