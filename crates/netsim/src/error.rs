//! The crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong when building or using an emulated network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Something already listens on, or is bound to, this address.
    #[error("address {0} is already in use")]
    AddrInUse(SocketAddr),
    /// Nothing listens at this address (reported after one round trip, as a
    /// TCP reset would be).
    #[error("connection to {0} refused")]
    ConnectionRefused(SocketAddr),
    /// A link parameter is out of range.
    #[error("invalid link configuration: {0}")]
    InvalidConfig(&'static str),
    /// A trace file could not be parsed.
    #[error("trace line {line}: {reason}")]
    Trace {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}
