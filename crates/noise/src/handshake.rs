//! The XX handshake, sans I/O.

use std::sync::Arc;

use libp2p_identity::{Keypair, PeerId, PublicKey};
use onetrip_common::PeerIdMismatch;
use onetrip_multistream::Protocol;
use snow::error::StateProblem;

use crate::{
    ConfigError, Error, MAX_FRAME_LEN, Misuse,
    cipher::CipherState,
    payload::{self, MuxerPolicy, Verified},
};

/// libp2p specs, noise/README.md: the only handshake pattern and suite.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// The protocol id of libp2p Noise, negotiated with multistream-select.
pub const PROTOCOL_NAME: &str = "/noise";

/// A local Noise configuration: identity, static DH key, and the stream
/// muxers to announce. Build it once and share it: the static key and its
/// signed payload are computed here, not per handshake.
#[derive(Clone)]
pub struct Config {
    inner: Arc<ConfigInner>,
}

struct ConfigInner {
    keypair: Keypair,
    static_private: Vec<u8>,
    muxers: Vec<Protocol>,
    policy: MuxerPolicy,
    payload: Vec<u8>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("peer_id", &self.inner.keypair.public().to_peer_id())
            .field("muxers", &self.inner.muxers)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A configuration announcing no stream muxers (as rust-libp2p does).
    ///
    /// # Errors
    /// [`Error::Config`] if the key cannot sign.
    pub fn new(keypair: &Keypair) -> Result<Self, Error> {
        Self::build(keypair, Vec::new(), MuxerPolicy::Fallback)
    }

    /// Announces `muxers` (in order of preference) inside the handshake.
    ///
    /// # Errors
    /// [`Error::Config`] for more than [`MAX_MUXERS`](crate::MAX_MUXERS).
    pub fn with_muxers(&self, muxers: impl IntoIterator<Item = Protocol>) -> Result<Self, Error> {
        let muxers: Vec<Protocol> = muxers.into_iter().collect();
        if muxers.len() > payload::MAX_MUXERS {
            return Err(ConfigError::TooManyMuxers { len: muxers.len() }.into());
        }
        Self::build(&self.inner.keypair, muxers, self.inner.policy)
    }

    /// What to do when both sides list muxers and none is common.
    pub fn with_policy(&self, policy: MuxerPolicy) -> Self {
        let inner = &self.inner;
        Config {
            inner: Arc::new(ConfigInner {
                keypair: inner.keypair.clone(),
                static_private: inner.static_private.clone(),
                muxers: inner.muxers.clone(),
                policy,
                payload: inner.payload.clone(),
            }),
        }
    }

    /// The local peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.keypair.public().to_peer_id()
    }

    fn build(keypair: &Keypair, muxers: Vec<Protocol>, policy: MuxerPolicy) -> Result<Self, Error> {
        let dh = snow::Builder::new(params())
            .generate_keypair()
            .map_err(config_error)?;
        let payload = payload::encode(keypair, &dh.public, &muxers)?;
        Ok(Config {
            inner: Arc::new(ConfigInner {
                keypair: keypair.clone(),
                static_private: dh.private,
                muxers,
                policy,
                payload,
            }),
        })
    }
}

fn params() -> snow::params::NoiseParams {
    NOISE_PARAMS
        .parse()
        .expect("the libp2p Noise parameters are valid")
}

fn config_error(err: snow::Error) -> Error {
    ConfigError::Snow(Arc::new(err)).into()
}

/// What a finished handshake established.
#[derive(Debug, Clone)]
pub struct Output {
    /// The remote peer, authenticated by its signature over its static key.
    pub remote_peer_id: PeerId,
    /// The remote identity key.
    pub remote_public_key: PublicKey,
    /// The stream muxer chosen inside the handshake, or `None`: then the
    /// caller negotiates one with multistream-select.
    pub muxer: Option<Protocol>,
    /// The muxers the remote announced (`None` if it announced none).
    pub remote_muxers: Option<Vec<Protocol>>,
}

/// The keys of a finished handshake, one cipher state per direction.
#[derive(Debug)]
pub struct TransportKeys {
    pub(crate) send: CipherState,
    pub(crate) recv: CipherState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Responder,
}

/// The XX handshake state machine (libp2p specs, noise/README.md):
///
/// ```text
/// initiator                               responder
///   -> e                                  message 1: empty payload
///   <- e, ee, s, es                       message 2: responder's payload
///   -> s, se                              message 3: initiator's payload
/// ```
///
/// Each side's payload carries its identity key, its signature over its
/// Noise static key and its stream muxers. It performs no I/O: send the
/// framed messages [`Handshake::take_output`] yields, and feed each received
/// message (without its 2-byte length prefix) to
/// [`Handshake::read_message`].
pub struct Handshake {
    state: snow::HandshakeState,
    role: Role,
    /// The number (1 to 3) of the next message, sent or received.
    next: u8,
    config: Config,
    expected: Option<PeerId>,
    remote: Option<Verified>,
    out: Vec<u8>,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("role", &self.role)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake as the initiator (dialer), queueing message 1.
    /// With `expected`, a responder with another peer id is refused before
    /// message 3 reveals who we are.
    ///
    /// # Errors
    /// [`Error::Config`] if snow cannot be set up.
    pub fn initiator(config: &Config, expected: Option<PeerId>) -> Result<Self, Error> {
        let mut handshake = Self::new(config, Role::Initiator, expected)?;
        handshake.write(&[])?;
        Ok(handshake)
    }

    /// Starts a handshake as the responder (listener).
    ///
    /// # Errors
    /// [`Error::Config`] if snow cannot be set up.
    pub fn responder(config: &Config) -> Result<Self, Error> {
        Self::new(config, Role::Responder, None)
    }

    fn new(config: &Config, role: Role, expected: Option<PeerId>) -> Result<Self, Error> {
        let builder = snow::Builder::new(params())
            .local_private_key(&config.inner.static_private)
            .map_err(config_error)?;
        let state = match role {
            Role::Initiator => builder.build_initiator(),
            Role::Responder => builder.build_responder(),
        }
        .map_err(config_error)?;
        Ok(Handshake {
            state,
            role,
            next: 1,
            config: config.clone(),
            expected,
            remote: None,
            out: Vec::new(),
        })
    }

    /// Moves the framed messages waiting to be sent to the end of `out`.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    /// Whether all three messages have been exchanged.
    pub fn is_finished(&self) -> bool {
        self.next > 3
    }

    /// Whether the next message is the peer's to send.
    pub fn wants_read(&self) -> bool {
        !self.is_finished() && (self.role == Role::Initiator) == (self.next == 2)
    }

    /// Processes one received handshake message and queues our answer.
    ///
    /// # Errors
    /// [`Error::BadMessage`] if snow rejects it; the payload errors
    /// ([`Error::InvalidPayload`], [`Error::MissingIdentity`],
    /// [`Error::InvalidIdentityKey`], [`Error::InvalidSignature`],
    /// [`Error::InvalidMuxerList`]); [`Error::PeerIdMismatch`];
    /// [`Misuse::MessageOutOfTurn`] unless [`Handshake::wants_read`].
    pub fn read_message(&mut self, message: &[u8]) -> Result<(), Error> {
        if !self.wants_read() {
            return Err(Misuse::MessageOutOfTurn.into());
        }
        let step = self.next;
        let mut payload = vec![0u8; message.len()];
        let n = self
            .state
            .read_message(message, &mut payload)
            .map_err(|err| Error::snow(step, err))?;
        self.next += 1;
        if step == 1 {
            // Message 1 carries no payload in libp2p; anything there is ignored.
            return self.write(&self.config.inner.payload.clone());
        }
        let remote_static = self
            .state
            .get_remote_static()
            .ok_or_else(|| Error::snow(step, StateProblem::MissingKeyMaterial.into()))?;
        let verified = payload::verify(&payload[..n], remote_static)?;
        PeerIdMismatch::check(self.expected, verified.public_key.to_peer_id())
            .map_err(Error::PeerIdMismatch)?;
        self.remote = Some(verified);
        if step == 2 {
            self.write(&self.config.inner.payload.clone())?;
        }
        Ok(())
    }

    fn write(&mut self, payload: &[u8]) -> Result<(), Error> {
        let mut message = vec![0u8; MAX_FRAME_LEN];
        let n = self
            .state
            .write_message(payload, &mut message)
            .map_err(|err| Error::snow(self.next, err))?;
        self.out.extend_from_slice(
            &u16::try_from(n)
                .expect("snow messages fit a frame")
                .to_be_bytes(),
        );
        self.out.extend_from_slice(&message[..n]);
        self.next += 1;
        Ok(())
    }

    /// The result of the finished handshake and its transport keys.
    ///
    /// # Errors
    /// [`Error::NoCommonMuxer`] under [`MuxerPolicy::Strict`];
    /// [`Misuse::HandshakeNotFinished`] before the three messages were
    /// exchanged.
    pub fn finish(mut self) -> Result<(Output, TransportKeys), Error> {
        let Some(remote) = self.remote.take().filter(|_| self.is_finished()) else {
            return Err(Misuse::HandshakeNotFinished.into());
        };
        let ours =
            (!self.config.inner.muxers.is_empty()).then_some(self.config.inner.muxers.as_slice());
        let theirs = remote.muxers.as_deref();
        let (initiator, responder) = match self.role {
            Role::Initiator => (ours, theirs),
            Role::Responder => (theirs, ours),
        };
        let muxer = payload::choose(initiator, responder, self.config.inner.policy)?;
        let (i_to_r, r_to_i) = self.state.dangerously_get_raw_split();
        let (send, recv) = match self.role {
            Role::Initiator => (i_to_r, r_to_i),
            Role::Responder => (r_to_i, i_to_r),
        };
        let output = Output {
            remote_peer_id: remote.public_key.to_peer_id(),
            remote_public_key: remote.public_key,
            muxer,
            remote_muxers: remote.muxers,
        };
        let keys = TransportKeys {
            send: CipherState::new(&send),
            recv: CipherState::new(&recv),
        };
        Ok((output, keys))
    }
}
