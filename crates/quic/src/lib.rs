//! libp2p QUIC over quinn: libp2p TLS (`onetrip-tls`) in the QUIC
//! handshake, a 1-RTT handshake, and 0-RTT data on reconnect.
//!
//! - libp2p TLS (libp2p specs: tls/tls.md): self-signed certificates
//!   carrying the libp2p Public Key Extension; the verifiers derive the
//!   remote [`PeerId`](libp2p_identity::PeerId) and say in a
//!   [`CertificateError`] why a certificate is refused. TLS 1.3 only,
//!   client certificates required, ALPN `libp2p`, no SNI.
//! - [`Endpoint::connect`] with an expected peer id refuses any other peer
//!   in the handshake. The remote peer id is decided once per connection
//!   ([`Connection::remote_peer_id`]). With [`Config::with_0rtt`], a
//!   reconnect to a peer whose session ticket allows it returns at once
//!   and its first streams travel as 0-RTT data; a rejection is repaired
//!   by replaying the streams ([`Stream`]), a failed handshake fails them.
//! - The caller owns the deadline: [`Endpoint::connect`] and
//!   [`Accepting::establish`] take an [`onetrip_common::Deadline`] and fail
//!   with [`Error::Timeout`] when it passes; the crate sets no handshake
//!   timer of its own (QUIC's idle timeout still ends a silent connection).
//! - Session tickets are kept per server peer id in a bounded
//!   [`TicketStore`] and used once each. A server accepts 0-RTT data only
//!   with [`Config::with_accept_0rtt`]: it can be replayed.
//! - Against replay, a server's tickets are single use: the sessions they
//!   resume are kept in a bounded [`ServerSessions`] store in the process
//!   (one per [`Config`], shared by its clones), and resuming one takes it
//!   out, so a recorded 0-RTT flight sent again is refused resumption and
//!   its 0-RTT data is dropped. That holds within one process only (see
//!   `spec/quic.md`); and a client whose 0-RTT data was refused sends it
//!   again after the handshake. So a server application learns which
//!   streams came as 0-RTT data, [`Stream::is_early`], and must refuse
//!   requests that are not idempotent on them.
//!
//! Protocol negotiation on streams is left to the caller (onetrip-stack
//! runs multistream-select on them).
//!
//! Inside: `early` is the 0-RTT state machine (no I/O, no clock): the
//! handshake's outcome and each stream's copy and replay; `handshake` waits
//! for the outcome once per connection, `stream` runs the machine on
//! quinn's streams.

mod config;
mod connection;
mod credit;
mod early;
mod endpoint;
mod error;
mod handshake;
mod stream;

pub use crate::{
    config::{
        CONNECTION_WINDOW, Config, Congestion, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_STREAMS,
        INITIAL_STREAMS, STREAM_RECEIVE_WINDOW,
    },
    connection::Connection,
    early::MAX_EARLY_DATA,
    endpoint::{Accepting, Endpoint},
    error::Error,
    stream::Stream,
};
/// Re-exported from `onetrip-tls`: the certificate errors in [`Error`], the
/// client's ticket store and the server's session store a [`Config`] uses,
/// and what they count.
pub use onetrip_tls::{
    CertificateError, DEFAULT_SERVER_SESSIONS, DEFAULT_TICKET_PEERS, ServerSessions, SessionStats,
    TICKETS_PER_PEER, TicketStats, TicketStore,
};
