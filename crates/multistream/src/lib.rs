//! multistream-select 1.0, with optimistic (0-RTT) negotiation.
//!
//! libp2p negotiates the protocol of every connection upgrade and every
//! stream with multistream-select (libp2p specs: connections/README.md). In
//! its interactive form each negotiation costs a round trip. This crate
//! implements both forms:
//!
//! - [`Mode::Interactive`]: the dialer waits for the listener's echo before
//!   it sends application data (1 RTT).
//! - [`Mode::Optimistic`]: with a single candidate left, the dialer sends its
//!   proposal and its first application bytes in the same write and reads
//!   the echo later (0 RTT). A refusal surfaces as
//!   [`Error::OptimisticRejected`].
//!
//! The protocol logic lives in sans-IO state machines, [`Dialer`] and
//! [`Listener`], fed with bytes and returning bytes: no socket, runtime or
//! clock. [`dialer_select`], [`listener_select`] and [`Negotiated`] adapt them
//! to tokio's `AsyncRead + AsyncWrite`; they take the caller's [`Deadline`]
//! (or [`Deadline::NONE`]) and run no timer of their own.
//!
//! ```
//! use std::time::Duration;
//!
//! use onetrip_multistream::{Deadline, Mode, Protocol, dialer_select, listener_select};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ping = Protocol::new("/ipfs/ping/1.0.0")?;
//! let deadline = Deadline::after(Duration::from_secs(10));
//! let (a, b) = tokio::io::duplex(4096);
//! let server = tokio::spawn({
//!     let ping = ping.clone();
//!     async move {
//!         let (_, mut stream) = listener_select(b, vec![ping], deadline).await?;
//!         let mut buf = [0u8; 4];
//!         stream.read_exact(&mut buf).await?;
//!         stream.write_all(&buf).await?;
//!         stream.flush().await?;
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//!     }
//! });
//! // Optimistic: the proposal and "ping" leave in one write.
//! let (_, mut stream) = dialer_select(a, [ping], Mode::Optimistic, deadline).await?;
//! stream.write_all(b"ping").await?;
//! stream.flush().await?;
//! let mut buf = [0u8; 4];
//! stream.read_exact(&mut buf).await?; // consumes the header and echo first
//! assert_eq!(&buf, b"ping");
//! server.await?.map_err(|e| e.to_string())?;
//! # Ok(())
//! # }
//! ```

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod core;
mod dialer;
mod error;
mod io;
mod listener;
pub mod message;
mod protocol;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use onetrip_common::Deadline;

pub use crate::{
    core::{Mode, Status},
    dialer::Dialer,
    error::{Error, InvalidName, Misuse},
    io::{Negotiated, dialer_select, listener_select},
    listener::Listener,
    message::{HEADER_NAME, MAX_MESSAGE_LEN, Message},
    protocol::{MAX_PROTOCOL_LEN, Protocol},
};

/// How many proposals (and `ls` requests) a listener answers in one
/// negotiation, and the longest list a dialer may propose. A real dialer
/// proposes a handful; the bound stops a peer from keeping a listener busy
/// with endless `na` round trips.
pub const MAX_PROPOSALS: usize = 32;
