//! libp2p QUIC over quinn: libp2p TLS certificates, a 1-RTT handshake, and
//! 0-RTT data on reconnect.
//!
//! - Certificates are made and checked by `libp2p-tls` (libp2p specs:
//!   tls/tls.md): self-signed, carrying the libp2p Public Key Extension; the
//!   verifiers derive the remote [`PeerId`](libp2p_identity::PeerId) and
//!   say in a [`CertificateError`] why a certificate is refused. TLS 1.3
//!   only, client certificates required, ALPN `libp2p`, no SNI.
//! - [`Endpoint::connect`] with an expected peer id refuses any other peer.
//!   With [`Config::with_0rtt`], a reconnect to a peer whose session ticket
//!   allows it returns at once and its first streams travel as 0-RTT data;
//!   a rejection is repaired by replaying the streams ([`Stream`]).
//! - Session tickets are kept per server peer id in a bounded
//!   [`TicketStore`] and used once each. A server accepts 0-RTT data only
//!   with [`Config::with_accept_0rtt`]: it can be replayed.
//!
//! Protocol negotiation on streams is left to the caller (onetrip-stack
//! runs multistream-select on them).

mod config;
mod endpoint;
mod error;
mod stream;

pub use crate::{
    config::{Config, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_STREAMS},
    endpoint::{Accepting, Connection, Endpoint},
    error::Error,
    stream::{MAX_EARLY_DATA, Stream},
};
/// Re-exported from `onetrip-tls`: the certificate errors in [`Error`], and
/// the ticket store a [`Config`] uses.
pub use onetrip_tls::{CertificateError, DEFAULT_TICKET_PEERS, TicketStore};
