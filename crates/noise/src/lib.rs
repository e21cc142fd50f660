//! libp2p Noise over `snow`, with the stream-muxer choice carried inside the
//! handshake.
//!
//! libp2p secures TCP connections with `Noise_XX_25519_ChaChaPoly_SHA256`
//! (libp2p specs, noise/README.md). Each side's handshake payload carries its
//! libp2p identity key and a signature over its Noise static key, which
//! authenticates the remote [`PeerId`](libp2p_identity::PeerId). The payload
//! may also carry `stream_muxers` (connections/inlined-muxer-negotiation.md):
//! the responder lists its muxers in message 2, the initiator in message 3,
//! and both pick the first entry of the initiator's list that the responder
//! supports, saving the round trip of negotiating the muxer afterwards.
//!
//! - [`Handshake`] and [`Transport`] are the sans-IO cores of the two
//!   phases; each owns its framing both ways (bytes in, whole frames out;
//!   [`frame`] is the one place that knows the wire's length prefix).
//!   [`upgrade_outbound`] and [`upgrade_inbound`] drive a handshake over
//!   tokio I/O by the caller's [`Deadline`](onetrip_common::Deadline) and
//!   return a [`NoiseStream`], which drives the [`Transport`].
//! - [`Output::muxer`] is the early choice, or `None` (a peer that sends no
//!   list, such as rust-libp2p; or no overlap under
//!   [`MuxerPolicy::Fallback`]): then negotiate the muxer with
//!   multistream-select.
//! - Transport frames are sealed and opened in place with `ring`'s
//!   ChaCha20-Poly1305; snow runs the handshake with its `ring`-accelerated
//!   resolver (ring for ChaCha20-Poly1305 and SHA-256, snow's default
//!   X25519).

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod cipher;
mod error;
pub mod frame;
mod handshake;
mod io;
pub mod payload;
mod stream;
mod transport;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use crate::{
    cipher::TAG_LEN,
    error::{ConfigError, Error, InvalidFrame, InvalidMuxerList, Misuse},
    frame::MAX_FRAME_LEN,
    handshake::{Config, Handshake, NOISE_PARAMS, Output, PROTOCOL_NAME},
    io::{upgrade_inbound, upgrade_outbound},
    payload::{MAX_MUXERS, MuxerPolicy},
    stream::NoiseStream,
    transport::{MAX_PLAINTEXT_LEN, Transport},
};
