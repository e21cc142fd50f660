//! 0-RTT data on the client, as a state machine: no I/O, no clock.
//!
//! A client resuming a session sends its first streams' data before the
//! handshake completes. When it completes, the server has either taken
//! that data or discarded it: [`Outcome`] says which, decided once per
//! connection. Each stream opened meanwhile keeps a copy of what it sent
//! ([`WriteSide`], at most [`MAX_EARLY_DATA`]) and, if the server discarded
//! it, sends it again on a new stream, its end included, so its caller
//! loses nothing but time. `stream.rs` runs the machine on quinn's streams.

use std::{fmt, mem};

use crate::error::Error;

/// How much a stream keeps of what it sent as 0-RTT data, to send it again
/// if the server rejects it. A stream that writes more waits for the
/// handshake first: beyond this, the data would not fit the first flight
/// anyway.
pub const MAX_EARLY_DATA: usize = 64 * 1024;

/// What became of a 0-RTT handshake, decided once when it completed.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The server took the 0-RTT data.
    Accepted,
    /// The handshake completed, but the server discarded the 0-RTT data:
    /// it must be sent again.
    Rejected,
    /// The handshake failed: the server was refused (a certificate that
    /// breaks libp2p TLS, another peer than the one dialed), the connection
    /// closed, or the caller's deadline passed.
    Failed(Error),
}

impl Outcome {
    /// Decides from what the handshake left: why the verifier refused the
    /// server, if it did (that is why the handshake failed, and it names the
    /// peer's fault); else why the connection closed, if it did; else
    /// whether the server took the 0-RTT data.
    pub(crate) fn decide(
        accepted: bool,
        refusal: Option<onetrip_tls::Error>,
        closed: Option<quinn::ConnectionError>,
    ) -> Self {
        match refusal.map(Error::from).or(closed.map(Error::from)) {
            Some(err) => Outcome::Failed(err),
            None if accepted => Outcome::Accepted,
            None => Outcome::Rejected,
        }
    }
}

/// A stream's write side: while its 0-RTT handshake runs, what it sent
/// early; and how far its caller got in ending it (the stream's one
/// record of that).
///
/// `H` is whatever the I/O adapter needs to wait for the handshake and to
/// open a replacement stream; the machine holds it until it is no longer
/// needed, and hands it back with the [`Step`] that needs it.
pub(crate) struct WriteSide<H> {
    phase: Phase<H>,
    end: End,
}

enum Phase<H> {
    /// Opened during the 0-RTT handshake, which still runs: writes leave as
    /// 0-RTT data, and `copy` keeps them.
    Early { copy: Vec<u8>, handshake: H },
    /// The server discarded the 0-RTT data: a replacement stream must be
    /// opened.
    Rejected { copy: Vec<u8>, handshake: H },
    /// Sending the copy again on the replacement, `sent` bytes so far.
    Replaying { copy: Vec<u8>, sent: usize },
    /// An ordinary stream: nothing to settle.
    Settled,
    /// The handshake failed.
    Failed(Error),
}

/// How far the caller got in ending the write side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Open.
    Open,
    /// The caller ended it, and the current send stream is not finished.
    Requested,
    /// The current send stream is finished.
    Sent,
}

/// What the I/O adapter must do before the stream's reads and writes go on.
#[derive(Debug)]
pub(crate) enum Step<'a, H> {
    /// Nothing: reads and writes go to the current stream.
    Ready,
    /// Wait for the handshake's outcome, and report it with
    /// [`WriteSide::handshake_done`].
    AwaitHandshake(&'a mut H),
    /// Open a replacement stream, and report it with
    /// [`WriteSide::reopened`].
    Reopen(&'a mut H),
    /// Write these bytes on the replacement, and report how many went with
    /// [`WriteSide::replayed`].
    Replay(&'a [u8]),
    /// Finish the current send stream, and report it with
    /// [`WriteSide::finished`].
    Finish,
    /// Fail with this error.
    Fail(&'a Error),
}

impl<H> WriteSide<H> {
    /// An ordinary stream's.
    pub(crate) fn settled() -> Self {
        WriteSide {
            phase: Phase::Settled,
            end: End::Open,
        }
    }

    /// The write side of a stream opened during the 0-RTT `handshake`.
    pub(crate) fn early(handshake: H) -> Self {
        WriteSide {
            phase: Phase::Early {
                copy: Vec::new(),
                handshake,
            },
            end: End::Open,
        }
    }

    /// Whether the stream still waits for its handshake's outcome.
    pub(crate) fn is_early(&self) -> bool {
        matches!(self.phase, Phase::Early { .. })
    }

    /// How many bytes a write may still send as 0-RTT data: none once the
    /// handshake's outcome is known or the copy is full.
    pub(crate) fn early_room(&self) -> usize {
        match &self.phase {
            Phase::Early { copy, .. } => MAX_EARLY_DATA.saturating_sub(copy.len()),
            _ => 0,
        }
    }

    /// `data` left as 0-RTT data (no more than [`Self::early_room`]).
    pub(crate) fn sent_early(&mut self, data: &[u8]) {
        if let Phase::Early { copy, .. } = &mut self.phase {
            debug_assert!(copy.len() + data.len() <= MAX_EARLY_DATA);
            copy.extend_from_slice(data);
        }
    }

    /// The caller ends the write side.
    pub(crate) fn end(&mut self) {
        if self.end == End::Open {
            self.end = End::Requested;
        }
    }

    /// The handshake, if the caller ended the write side while it runs and
    /// the end has not left yet: the adapter may send the end as 0-RTT data
    /// now, as long as the handshake is unresolved.
    pub(crate) fn ending_early(&mut self) -> Option<&mut H> {
        match &mut self.phase {
            Phase::Early { handshake, .. } if self.end == End::Requested => Some(handshake),
            _ => None,
        }
    }

    /// The current send stream is finished.
    pub(crate) fn finished(&mut self) {
        self.end = End::Sent;
    }

    /// The handshake's outcome is known.
    pub(crate) fn handshake_done(&mut self, outcome: &Outcome) {
        self.phase = match mem::replace(&mut self.phase, Phase::Settled) {
            Phase::Early { copy, handshake } => match outcome {
                Outcome::Accepted => Phase::Settled,
                Outcome::Rejected => {
                    // The end went with the discarded stream: the
                    // replacement needs its own.
                    if self.end == End::Sent {
                        self.end = End::Requested;
                    }
                    Phase::Rejected { copy, handshake }
                }
                Outcome::Failed(err) => Phase::Failed(err.clone()),
            },
            phase => phase,
        };
    }

    /// The replacement stream is open.
    pub(crate) fn reopened(&mut self) {
        self.phase = match mem::replace(&mut self.phase, Phase::Settled) {
            Phase::Rejected { copy, .. } if copy.is_empty() => Phase::Settled,
            Phase::Rejected { copy, .. } => Phase::Replaying { copy, sent: 0 },
            phase => phase,
        };
    }

    /// `n` more bytes of the copy went out on the replacement.
    pub(crate) fn replayed(&mut self, n: usize) {
        if let Phase::Replaying { copy, sent } = &mut self.phase {
            *sent += n;
            if *sent >= copy.len() {
                self.phase = Phase::Settled;
            }
        }
    }

    /// What to do next.
    pub(crate) fn next(&mut self) -> Step<'_, H> {
        match &mut self.phase {
            Phase::Early { handshake, .. } => Step::AwaitHandshake(handshake),
            Phase::Rejected { handshake, .. } => Step::Reopen(handshake),
            Phase::Replaying { copy, sent } => Step::Replay(&copy[*sent..]),
            Phase::Failed(err) => Step::Fail(err),
            Phase::Settled if self.end == End::Requested => Step::Finish,
            Phase::Settled => Step::Ready,
        }
    }
}

impl<H> fmt::Debug for WriteSide<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (phase, copied) = match &self.phase {
            Phase::Early { copy, .. } => ("early", copy.len()),
            Phase::Rejected { copy, .. } => ("rejected", copy.len()),
            Phase::Replaying { copy, .. } => ("replaying", copy.len()),
            Phase::Settled => ("settled", 0),
            Phase::Failed(_) => ("failed", 0),
        };
        f.debug_struct("WriteSide")
            .field("phase", &phase)
            .field("copied", &copied)
            .field("end", &self.end)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use libp2p_identity::PeerId;
    use onetrip_common::PeerIdMismatch;

    use super::*;

    /// What the adapter is asked to do next, without the borrows.
    #[derive(Debug, PartialEq, Eq)]
    enum Next {
        Ready,
        AwaitHandshake,
        Reopen,
        Replay(Vec<u8>),
        Finish,
        Fail,
    }

    fn next<H>(write: &mut WriteSide<H>) -> Next {
        match write.next() {
            Step::Ready => Next::Ready,
            Step::AwaitHandshake(_) => Next::AwaitHandshake,
            Step::Reopen(_) => Next::Reopen,
            Step::Replay(data) => Next::Replay(data.to_vec()),
            Step::Finish => Next::Finish,
            Step::Fail(_) => Next::Fail,
        }
    }

    /// A stream that sent `data` as 0-RTT data.
    fn early_stream(data: &[u8]) -> WriteSide<()> {
        let mut write = WriteSide::early(());
        assert_eq!(write.early_room(), MAX_EARLY_DATA);
        write.sent_early(data);
        assert_eq!(next(&mut write), Next::AwaitHandshake);
        write
    }

    /// Runs the adapter's side until the machine is ready or fails,
    /// returning what went out again.
    fn settle(write: &mut WriteSide<()>) -> (Next, Vec<u8>, bool) {
        let (mut replayed, mut finished) = (Vec::new(), false);
        loop {
            match next(write) {
                Next::Reopen => write.reopened(),
                Next::Replay(data) => {
                    // A short write first: the rest follows.
                    let n = data.len().div_ceil(2);
                    replayed.extend_from_slice(&data[..n]);
                    write.replayed(n);
                }
                Next::Finish => {
                    finished = true;
                    write.finished();
                }
                done => return (done, replayed, finished),
            }
        }
    }

    fn mismatch() -> Error {
        let (expected, actual) = (PeerId::random(), PeerId::random());
        let refusal =
            onetrip_tls::Error::PeerIdMismatch(Box::new(PeerIdMismatch { expected, actual }));
        Outcome::decide(
            false,
            Some(refusal),
            Some(quinn::ConnectionError::LocallyClosed),
        )
        .failure()
    }

    impl Outcome {
        fn failure(self) -> Error {
            match self {
                Outcome::Failed(err) => err,
                outcome => panic!("expected a failure, got {outcome:?}"),
            }
        }
    }

    #[test]
    fn accepted_data_is_forgotten() {
        let mut write = early_stream(b"request");
        write.handshake_done(&Outcome::decide(true, None, None));
        assert_eq!(settle(&mut write), (Next::Ready, Vec::new(), false));
        assert!(!write.is_early());
        assert_eq!(write.early_room(), 0);
    }

    #[test]
    fn rejected_data_is_replayed_whole() {
        let mut write = early_stream(b"request");
        write.sent_early(b", more");
        write.handshake_done(&Outcome::decide(false, None, None));
        assert_eq!(
            settle(&mut write),
            (Next::Ready, b"request, more".to_vec(), false)
        );
    }

    #[test]
    fn a_rejected_stream_that_sent_nothing_still_gets_a_replacement() {
        let mut write = early_stream(b"");
        write.handshake_done(&Outcome::Rejected);
        assert_eq!(next(&mut write), Next::Reopen);
        write.reopened();
        assert_eq!(next(&mut write), Next::Ready);
    }

    #[test]
    fn early_data_is_bounded() {
        let mut write = early_stream(&[7; MAX_EARLY_DATA - 1]);
        assert_eq!(write.early_room(), 1);
        write.sent_early(&[7]);
        assert_eq!(write.early_room(), 0);
        // Still waiting: the adapter waits for the outcome before writing.
        assert_eq!(next(&mut write), Next::AwaitHandshake);
    }

    #[test]
    fn a_refused_server_fails_the_stream_with_the_mismatch() {
        let err = mismatch();
        assert!(matches!(err, Error::PeerIdMismatch(_)), "{err:?}");
        let mut write = early_stream(b"request");
        write.end();
        write.handshake_done(&Outcome::Failed(err));
        assert_eq!(settle(&mut write), (Next::Fail, Vec::new(), false));
        assert!(matches!(write.next(), Step::Fail(Error::PeerIdMismatch(_))));
    }

    #[test]
    fn a_connection_lost_during_the_handshake_fails_the_stream_with_its_reason() {
        let outcome = Outcome::decide(true, None, Some(quinn::ConnectionError::TimedOut));
        let mut write = early_stream(b"request");
        write.handshake_done(&outcome);
        assert!(matches!(
            write.next(),
            Step::Fail(Error::Connection(quinn::ConnectionError::TimedOut))
        ));
    }

    #[test]
    fn shutdown_during_the_handshake_sends_the_end_early_and_it_stands_if_accepted() {
        let mut write = early_stream(b"request");
        write.end();
        assert!(write.ending_early().is_some());
        write.finished();
        assert!(write.ending_early().is_none());
        write.handshake_done(&Outcome::Accepted);
        assert_eq!(settle(&mut write), (Next::Ready, Vec::new(), false));
    }

    #[test]
    fn shutdown_during_the_handshake_is_replayed_after_the_data_if_rejected() {
        let mut write = early_stream(b"request");
        write.end();
        write.finished();
        write.handshake_done(&Outcome::Rejected);
        assert_eq!(settle(&mut write), (Next::Ready, b"request".to_vec(), true));
    }

    #[test]
    fn shutdown_as_the_handshake_ends_is_sent_once_settled() {
        // The caller ends the stream when the outcome is already known but
        // not yet taken in: the 0-RTT stream must not be finished then (its
        // id may be reused), so the end waits for the machine.
        let mut write = early_stream(b"request");
        write.end();
        write.handshake_done(&Outcome::Accepted);
        assert!(write.ending_early().is_none());
        assert_eq!(settle(&mut write), (Next::Ready, Vec::new(), true));
        // Ending again finishes nothing twice.
        write.end();
        assert_eq!(next(&mut write), Next::Ready);
    }

    #[test]
    fn an_ordinary_stream_only_finishes() {
        let mut write = WriteSide::<()>::settled();
        assert_eq!(write.early_room(), 0);
        assert_eq!(next(&mut write), Next::Ready);
        write.end();
        assert!(write.ending_early().is_none());
        assert_eq!(settle(&mut write), (Next::Ready, Vec::new(), true));
    }

    #[test]
    fn a_stream_dropped_during_the_handshake_lets_go_of_it() {
        // Two streams share the handshake; one is dropped before it ends.
        let handshake = Arc::new(());
        let mut kept = WriteSide::early(handshake.clone());
        kept.sent_early(b"kept");
        let mut dropped = WriteSide::early(handshake.clone());
        dropped.sent_early(b"dropped");
        drop(dropped);
        assert_eq!(Arc::strong_count(&handshake), 2);
        // The other stream is unaffected, and lets go of the handshake
        // once it has no more use for it.
        kept.handshake_done(&Outcome::Rejected);
        assert!(matches!(kept.next(), Step::Reopen(_)));
        kept.reopened();
        assert_eq!(Arc::strong_count(&handshake), 1);
        assert!(matches!(kept.next(), Step::Replay(b"kept")));
    }

    #[test]
    fn an_outcome_comes_once() {
        let mut write = early_stream(b"request");
        write.handshake_done(&Outcome::Rejected);
        // A second report (another stream's clone of the outcome) changes
        // nothing.
        write.handshake_done(&Outcome::Accepted);
        assert_eq!(next(&mut write), Next::Reopen);
    }
}
