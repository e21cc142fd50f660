//! The streams a peer may open at once on a connection, granted as it
//! opens them.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, Ordering},
};

use crate::config::initial_grant;

/// The streams the peer may have open at once, granted as it uses them:
/// quinn sets up state for every stream the peer may open, so a connection
/// starts with [`INITIAL_STREAMS`](crate::INITIAL_STREAMS) and doubles the grant, up to the
/// configured maximum, whenever half of it is open.
#[derive(Debug)]
pub(crate) struct StreamCredit {
    /// Accepted streams not yet dropped.
    open: AtomicU32,
    /// The peer's current grant.
    limit: Mutex<u32>,
    /// The configured maximum.
    max: u32,
}

impl StreamCredit {
    /// A new connection's: [`INITIAL_STREAMS`](crate::INITIAL_STREAMS) granted, up to `max`.
    pub(crate) fn new(max: u32) -> Self {
        StreamCredit {
            open: AtomicU32::new(0),
            limit: Mutex::new(initial_grant(max)),
            max,
        }
    }

    /// Raises the grant if half of it is open.
    pub(crate) fn grow(&self, connection: &quinn::Connection) {
        let open = self.open.load(Ordering::Relaxed);
        let mut limit = self
            .limit
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *limit < self.max && 2 * open >= *limit {
            *limit = limit.saturating_mul(2).min(self.max);
            connection.set_max_concurrent_bi_streams((*limit).into());
        }
    }
}

/// An accepted stream's place in its connection's [`StreamCredit`].
#[derive(Debug)]
pub(crate) struct OpenStream(Arc<StreamCredit>);

impl OpenStream {
    /// Counts one more stream open until this is dropped.
    pub(crate) fn new(credit: &Arc<StreamCredit>) -> Self {
        credit.open.fetch_add(1, Ordering::Relaxed);
        OpenStream(credit.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}
