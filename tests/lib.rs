//! Cross-crate integration and interoperability tests against rust-libp2p.
//!
//! The tests are the `[[test]]` targets beside this file; the library itself
//! is empty.

/// The README's Rust code, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
