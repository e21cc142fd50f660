//! The vocabulary onetrip's layers share.
//!
//! Each crate keeps one error enum of its own (as rustls and quinn do); what
//! they have in common lives here, written once:
//!
//! - [`IoError`]: a transport failure kept as the [`io::Error`] object that
//!   caused it, cheap to clone, and [`io_error_conversions!`], the
//!   conversions between a crate's error enum and [`io::Error`];
//! - [`PeerIdMismatch`] (feature `identity`): the peer that answered is not
//!   the one that was dialed, whichever layer found out;
//! - [`Deadline`]: the caller's deadline for a whole connection setup. The
//!   adapters take it as a parameter and own no timer of their own, so one
//!   deadline bounds every step, whichever step is slow;
//! - [`poll_write_out`]: writing out the bytes an adapter holds for its
//!   inner writer.
//!
//! [`io::Error`]: std::io::Error

mod deadline;
mod io_error;
#[cfg(feature = "identity")]
mod peer;
mod write_out;

pub use deadline::{Deadline, Elapsed};
pub use io_error::IoError;
#[cfg(feature = "identity")]
pub use peer::PeerIdMismatch;
pub use write_out::poll_write_out;
