//! Cross-crate integration and interoperability tests against rust-libp2p.
//!
//! The tests are the `[[test]]` targets beside this file; the library itself
//! is empty.
