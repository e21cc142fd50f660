//! A 0-RTT dial's handshake, awaited by its connection and its streams.

use std::{
    fmt,
    task::{Context, Poll},
};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use onetrip_common::Deadline;
use onetrip_tls::Dial;

use crate::{early::Outcome, error::Error};

/// The handshake of a dial that returned before it completed: it resolves
/// once, when the handshake completes or the caller's deadline passes, to
/// its [`Outcome`]; the connection and every stream opened meanwhile read
/// that same outcome.
#[derive(Clone)]
pub(crate) struct Handshake(Shared<BoxFuture<'static, Outcome>>);

impl Handshake {
    /// Waits, until `deadline` and only while someone waits for the
    /// outcome, for quinn to report the handshake complete (`accepted`:
    /// whether the server took the 0-RTT data), then decides the outcome
    /// with what the TLS `dial` and the `connection` report. At the
    /// deadline, the connection is closed and the outcome is
    /// [`Error::Timeout`].
    pub(crate) fn new(
        connection: quinn::Connection,
        accepted: quinn::ZeroRttAccepted,
        dial: Dial,
        deadline: Deadline,
    ) -> Self {
        let outcome = async move {
            let Ok(accepted) = deadline.run(accepted).await else {
                connection.close(0u32.into(), b"handshake timeout");
                return Outcome::Failed(Error::Timeout);
            };
            Outcome::decide(accepted, dial.refusal(), connection.close_reason())
        };
        Handshake(outcome.boxed().shared())
    }

    /// Polls for the outcome.
    pub(crate) fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        self.0.poll_unpin(cx)
    }

    /// The outcome, if the handshake is over (finding out without waiting).
    pub(crate) fn outcome_now(&self) -> Option<Outcome> {
        self.0
            .peek()
            .cloned()
            .or_else(|| self.0.clone().now_or_never())
    }

    /// Waits for the outcome.
    pub(crate) async fn outcome(&self) -> Outcome {
        self.0.clone().await
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Handshake").field(&self.0.peek()).finish()
    }
}
