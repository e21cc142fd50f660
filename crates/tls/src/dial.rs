//! Dials in progress: whom each expects, and what the verifier concluded.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use libp2p_identity::PeerId;
use rustls::pki_types::ServerName;

use crate::error::Error;

/// The dials the shared server verifier may be asked about, by server
/// name.
///
/// rustls resumes a session only with the verifier instance that made it,
/// so one verifier serves every dial of an identity, and the server name is
/// the one thing rustls hands it that tells dials apart. libp2p sends no
/// SNI, so each dial gets a unique name of its own; the name never leaves
/// the process.
#[derive(Debug, Default)]
pub(crate) struct Dials {
    next: AtomicU64,
    active: Mutex<HashMap<String, Weak<DialState>>>,
}

impl Dials {
    /// A new dial, known by its name until its [`Dial`] is dropped.
    pub(crate) fn register(self: &Arc<Self>, expected: Option<PeerId>) -> Dial {
        let name = format!("d{}.libp2p", self.next.fetch_add(1, Ordering::Relaxed));
        let state = Arc::new(DialState {
            expected,
            verdict: OnceLock::new(),
            decision: OnceLock::new(),
        });
        lock(&self.active).insert(name.clone(), Arc::downgrade(&state));
        Dial {
            name,
            state,
            dials: Arc::downgrade(self),
        }
    }

    /// The dial using `server_name`, if it is still in progress.
    pub(crate) fn get(&self, server_name: &ServerName<'_>) -> Option<Arc<DialState>> {
        let ServerName::DnsName(name) = server_name else {
            return None;
        };
        lock(&self.active)
            .get(name.as_ref())
            .and_then(Weak::upgrade)
    }
}

/// What one dial knows about its server.
#[derive(Debug)]
pub(crate) struct DialState {
    expected: Option<PeerId>,
    /// What the verifier concluded, if the server presented a certificate.
    verdict: OnceLock<Result<PeerId, Error>>,
    /// The server's peer id, decided once when the handshake is complete.
    decision: OnceLock<Option<PeerId>>,
}

impl DialState {
    /// The peer the dial is meant to reach, if it named one.
    pub(crate) fn expected(&self) -> Option<PeerId> {
        self.expected
    }

    /// Records what the verifier concluded (once: a handshake verifies
    /// its server once).
    pub(crate) fn set_verdict(&self, verdict: Result<PeerId, Error>) {
        if self.verdict.set(verdict).is_err() {
            tracing::debug!("a second server certificate in one handshake ignored");
        }
    }

    fn refusal(&self) -> Option<Error> {
        self.verdict.get()?.as_ref().err().cloned()
    }

    /// The server's peer id once the handshake is complete (see
    /// [`Dial::peer_id`]).
    pub(crate) fn peer_id(&self) -> Option<PeerId> {
        *self.decision.get_or_init(|| match self.verdict.get() {
            Some(verdict) => verdict.as_ref().ok().copied(),
            // No certificate: the handshake resumed a session, and a dial
            // resumes only sessions of the peer it expects.
            None => self.expected,
        })
    }
}

/// One dial's side of libp2p TLS: the server name to give rustls, and what
/// its verifier concluded about the server.
///
/// Keep it until the handshake completes: the verifier knows the dial by
/// its name only while this lives. Session tickets that arrive later still
/// reach the dial's ticket store.
#[derive(Debug)]
pub struct Dial {
    name: String,
    state: Arc<DialState>,
    dials: Weak<Dials>,
}

impl Dial {
    /// The server name to start the TLS client with (never sent: SNI is
    /// off).
    pub fn server_name(&self) -> &str {
        &self.name
    }

    /// The peer the dial is meant to reach, if it named one.
    pub fn expected(&self) -> Option<PeerId> {
        self.state.expected()
    }

    /// Why the verifier refused the server, if it did: the cause to report
    /// when the handshake fails, an [`Error::Certificate`] or an
    /// [`Error::PeerIdMismatch`].
    pub fn refusal(&self) -> Option<Error> {
        self.state.refusal()
    }

    /// The server's peer id, decided once, when the handshake has completed:
    /// the one its certificate proves (the expected one, if the dial named
    /// one: the verifier refuses any other), or, when the handshake resumed
    /// a session and no certificate came, the expected peer whose session
    /// it resumed. `None` if the verifier refused the server.
    ///
    /// Ask only once the handshake has completed: before, a session being
    /// resumed is not yet confirmed, and the first answer is final.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.state.peer_id()
    }

    pub(crate) fn state(&self) -> &Arc<DialState> {
        &self.state
    }
}

impl Drop for Dial {
    fn drop(&mut self) {
        if let Some(dials) = self.dials.upgrade() {
            lock(&dials.active).remove(&self.name);
        }
    }
}

/// Locks `mutex`, whether or not another thread panicked holding it (each
/// critical section leaves its data consistent).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CertificateError;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn a_dial_is_known_by_its_name_while_it_lives() {
        let dials = Arc::new(Dials::default());
        let dial = dials.register(None);
        let name = ServerName::try_from(dial.server_name().to_owned()).unwrap();
        assert!(dials.get(&name).is_some());
        assert_ne!(dials.register(None).server_name(), dial.server_name());
        drop(dial);
        assert!(dials.get(&name).is_none());
        assert!(lock(&dials.active).is_empty());
    }

    #[test]
    fn the_verified_peer_is_the_decision() {
        let dials = Arc::new(Dials::default());
        let dial = dials.register(None);
        let actual = peer();
        dial.state().set_verdict(Ok(actual));
        assert_eq!(dial.peer_id(), Some(actual));
        assert!(dial.refusal().is_none());
    }

    #[test]
    fn a_resumed_session_is_the_expected_peer() {
        let dials = Arc::new(Dials::default());
        let expected = peer();
        let dial = dials.register(Some(expected));
        assert_eq!(dial.peer_id(), Some(expected));
        // Decided once: nothing the verifier says later changes it.
        dial.state().set_verdict(Ok(peer()));
        assert_eq!(dial.peer_id(), Some(expected));
    }

    #[test]
    fn a_refused_server_has_no_peer_id_and_says_why() {
        let dials = Arc::new(Dials::default());
        let dial = dials.register(Some(peer()));
        dial.state()
            .set_verdict(Err(CertificateError::MissingExtension.into()));
        assert_eq!(dial.peer_id(), None);
        assert!(matches!(
            dial.refusal(),
            Some(Error::Certificate(CertificateError::MissingExtension))
        ));
    }
}
