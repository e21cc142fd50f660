//! libp2p connections over TCP and QUIC, layered to spend as few round
//! trips as the protocols allow.
//!
//! A libp2p TCP connection stacks four negotiations before the first
//! response byte: multistream-select for `/noise`, the Noise XX handshake,
//! the stream muxer (`/yamux/1.0.0`), and each stream's protocol. A
//! [`Layering`] says how each is done — interactively (one round trip
//! each), optimistically (the proposal travels with the next bytes), or,
//! for the muxer, inside the Noise handshake — and the named presets are
//! the rows of the round-trip table, from [`Layering::TCP_CLASSIC`]
//! (6 RTT) to [`Layering::TCP_ONETRIP`] (3 RTT).
//!
//! Over QUIC ([`QuicLayering`], via onetrip-quic) security and muxing are
//! QUIC's own; the stream protocol is negotiated interactively or
//! optimistically, and a reconnect can send its first streams as 0-RTT
//! data: from [`QuicLayering::QUIC`] (3 RTT) to [`QuicLayering::QUIC_0RTT`]
//! (1 RTT).
//!
//! - [`Endpoint`] dials and listens over TCP and QUIC by address, or over
//!   any byte stream ([`Endpoint::dial_io`], [`Endpoint::listen_on`]) and
//!   datagram socket ([`Endpoint::quic_endpoint`]) with the same code.
//! - [`Connection`] is an authenticated, multiplexed connection (yamux or
//!   QUIC streams): open, accept and close streams. A listener answers
//!   every layering.
//! - With the `libp2p` feature, `libp2p::Transport` implements
//!   `libp2p_core::Transport` so a rust-libp2p Swarm can use this upgrade.

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod addr;
mod config;
mod connection;
mod endpoint;
mod error;
mod first_flight;
mod gather;
mod layering;
mod tcp;
mod tls_server;
mod upgrade;

#[cfg(feature = "libp2p")]
pub mod libp2p;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

#[cfg(feature = "measure")]
pub mod measure;

pub use crate::{
    addr::{TransportKind, multiaddr, parse_addr, quic_multiaddr, tcp_multiaddr, tcp_socket_addr},
    config::{
        Config, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_PENDING_HANDSHAKES,
        DEFAULT_MAX_STREAMS, DEFAULT_YAMUX_WINDOW, MAX_STREAMS_LIMIT, MAX_TLS_EARLY_DATA,
        MAX_YAMUX_WINDOW,
    },
    connection::{Connection, Stream},
    endpoint::{BindUdp, Endpoint, Listener},
    error::{ConfigError, Error},
    layering::{Layering, MuxerNegotiation, Preset, QuicLayering, Security, TLS_PROTOCOL_ID},
    tcp::{TcpSocket, fast_open_status, tcp_connect},
};
pub use onetrip_multistream::{Mode, Protocol};
pub use onetrip_noise::MuxerPolicy;
pub use onetrip_quic::Congestion;

/// The yamux protocol id (libp2p specs: yamux/README.md).
pub const YAMUX: &str = "/yamux/1.0.0";
