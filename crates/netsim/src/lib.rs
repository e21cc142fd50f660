//! Emulated links in virtual time that count round trips.
//!
//! onetrip's claims are round-trip counts. This crate is the instrument that
//! measures them: a [`Network`] of hosts joined by links with one-way delay,
//! bandwidth, and (for datagrams) loss, running on tokio's clock.
//!
//! - **Stream links** ([`Host::listen`], [`Host::connect`], [`SimStream`])
//!   stand in for TCP: connecting costs one RTT (SYN, SYN-ACK), bytes arrive
//!   in order after the one-way delay (plus serialization at the link's
//!   bandwidth), and a half-close arrives like data.
//!   With TCP Fast Open ([`Host::listen_fast_open`],
//!   [`Host::connect_fast_open`], the [`fast_open`] module) a reconnect's
//!   first bytes ride in the SYN.
//! - **Datagram links** ([`Host::bind_udp`], [`SimUdpSocket`]) stand in for
//!   UDP and implement quinn's `AsyncUdpSocket`, so a real quinn endpoint
//!   runs over them. Loss: none, Bernoulli, Gilbert-Elliott (bursty), or a
//!   replayed trace; delivery opportunities can be replayed from a Mahimahi
//!   trace. Seeded: same seed, same losses.
//! - **Flight recorder** ([`Network::recorder`]): every transmission with
//!   its send and arrival times, from which [`Recording`] derives flights,
//!   round trips and ladder diagrams (text and SVG); optionally its bytes
//!   too ([`NetworkBuilder::payload_capacity`]).
//! - **Replay** ([`Network::inject_datagram`]): an attacker on the path
//!   sends a recorded datagram again, from any address, to any socket.
//!
//! Under a paused clock (`#[tokio::test(start_paused = true)]`) the times
//! are exact: an exchange over a 50 ms link takes no real time, and its
//! time to first byte is an exact multiple of the delay. tokio's timers tick
//! in whole milliseconds, so an arrival between ticks (after serialization
//! at some bandwidth, say) is seen at the next tick: keep delays whole
//! milliseconds where exactness matters.
//!
//! ```
//! use std::time::Duration;
//! use onetrip_netsim::{LinkConfig, Network};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let net = Network::new(LinkConfig::with_delay(Duration::from_millis(10)))?;
//! let mut listener = net.host([127, 0, 0, 2]).listen(80)?;
//! let start = tokio::time::Instant::now();
//! let mut client = net.host([127, 0, 0, 1]).connect(listener.local_addr()).await?;
//! assert_eq!(start.elapsed(), Duration::from_millis(20)); // one RTT
//! client.write_all(b"ping").await?;
//! let (mut server, _) = listener.accept().await?;
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf).await?;
//! assert_eq!(start.elapsed(), Duration::from_millis(30)); // plus one way
//! assert_eq!(net.recorder().recording().round_trips(), 2); // SYN/SYN-ACK, then ping
//! # Ok(())
//! # }
//! ```

mod config;
mod datagram;
mod error;
pub mod fast_open;
mod link;
mod loss;
mod network;
mod packet;
mod recorder;
mod stream;
mod trace;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "libp2p")]
pub mod libp2p;

pub use crate::{
    config::{DEFAULT_MTU, DEFAULT_STREAM_BUFFER, LinkConfig},
    datagram::{RECEIVE_QUEUE_LIMIT, SimUdpSocket},
    error::Error,
    fast_open::{MAX_SYN_DATA, SYN_RTO},
    loss::{Fate, GilbertElliott, LossModel, LossProcess},
    network::{Host, INJECTED, Network, NetworkBuilder},
    packet::{PacketCounters, PacketLink},
    recorder::{Carrier, DEFAULT_RECORD_CAPACITY, Flight, Record, Recorder, Recording},
    stream::{Labeler, SimStream, StreamListener},
    trace::{DeliveryTrace, LossDelayTrace, MAX_TRACE_LINES, MAX_TRACE_MS},
};
