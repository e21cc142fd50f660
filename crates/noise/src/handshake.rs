//! The XX handshake, sans I/O.

use std::sync::Arc;

use libp2p_identity::{Keypair, PeerId, PublicKey};
use onetrip_common::PeerIdMismatch;
use onetrip_multistream::Protocol;
use snow::error::StateProblem;

use crate::{
    ConfigError, Error, InvalidFrame, Misuse, Transport,
    cipher::CipherState,
    frame::{self, InputBuffer, MAX_FRAME_LEN, PREFIX_LEN},
    payload::{self, MuxerPolicy, Verified},
};

/// libp2p specs, noise/README.md: the only handshake pattern and suite.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// libp2p specs, noise/README.md: the protocol id of libp2p Noise,
/// negotiated with multistream-select.
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
    static_public: Vec<u8>,
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
    /// The static key stays this configuration's: only the signed payload
    /// is made anew.
    ///
    /// # Errors
    /// [`Error::Config`] for more than [`MAX_MUXERS`](crate::MAX_MUXERS).
    pub fn with_muxers(&self, muxers: impl IntoIterator<Item = Protocol>) -> Result<Self, Error> {
        let muxers: Vec<Protocol> = muxers.into_iter().collect();
        if muxers.len() > payload::MAX_MUXERS {
            return Err(ConfigError::TooManyMuxers { len: muxers.len() }.into());
        }
        let inner = &self.inner;
        let payload = payload::encode(&inner.keypair, &inner.static_public, &muxers)?;
        Ok(Config {
            inner: Arc::new(ConfigInner {
                keypair: inner.keypair.clone(),
                static_private: inner.static_private.clone(),
                static_public: inner.static_public.clone(),
                muxers,
                policy: inner.policy,
                payload,
            }),
        })
    }

    /// What to do when both sides list muxers and none is common.
    pub fn with_policy(&self, policy: MuxerPolicy) -> Self {
        let inner = &self.inner;
        Config {
            inner: Arc::new(ConfigInner {
                keypair: inner.keypair.clone(),
                static_private: inner.static_private.clone(),
                static_public: inner.static_public.clone(),
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
                static_public: dh.public,
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
/// Noise static key and its stream muxers. It performs no I/O and owns its
/// framing both ways: send what [`Handshake::take_output`] yields (whole
/// frames), and give it the peer's bytes as they come, cut anywhere
/// ([`Handshake::handle_input`], or read straight into
/// [`Handshake::input_buffer`] and report [`Handshake::input_filled`]).
/// Bytes after the last message are kept for the [`Transport`] that
/// [`Handshake::finish`] returns. After an error it reports the same error
/// on every call.
///
/// ```
/// use libp2p_identity::Keypair;
/// use onetrip_noise::{Config, Handshake};
///
/// let a = Config::new(&Keypair::generate_ed25519())?;
/// let b = Config::new(&Keypair::generate_ed25519())?;
/// let mut initiator = Handshake::initiator(&a, Some(b.peer_id()))?;
/// let mut responder = Handshake::responder(&b)?;
/// let mut wire = Vec::new();
/// while !(initiator.is_finished() && responder.is_finished()) {
///     initiator.take_output(&mut wire);
///     assert_eq!(responder.handle_input(&wire)?, wire.len());
///     wire.clear();
///     responder.take_output(&mut wire);
///     assert_eq!(initiator.handle_input(&wire)?, wire.len());
///     wire.clear();
/// }
/// let ((_, mut sender), (output, mut receiver)) = (initiator.finish()?, responder.finish()?);
/// assert_eq!(output.remote_peer_id, a.peer_id());
/// sender.seal(b"hello", &mut wire)?;
/// receiver.handle_input(&wire);
/// assert_eq!(receiver.plaintext()?, b"hello");
/// # Ok::<(), onetrip_noise::Error>(())
/// ```
pub struct Handshake {
    state: snow::HandshakeState,
    role: Role,
    /// The number (1 to 3) of the next message, sent or received.
    next: u8,
    config: Config,
    expected: Option<PeerId>,
    remote: Option<Verified>,
    input: InputBuffer,
    out: Vec<u8>,
    failed: Option<Error>,
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
            input: InputBuffer::default(),
            out: Vec::new(),
            failed: None,
        })
    }

    /// Whether frames are waiting to be sent.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Moves the frames waiting to be sent to the end of `out`.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
    }

    /// Whether all three messages have been exchanged.
    pub fn is_finished(&self) -> bool {
        self.next > 3
    }

    /// Feeds bytes received from the peer and processes each whole message,
    /// queueing our answers; a partial message is kept for the next call.
    /// Returns how many bytes were taken: all of `input`, unless the
    /// handshake finished and the transport frames after it fill the input
    /// buffer, which holds one frame at most (then feed the rest to the
    /// [`Transport`] as it reads them).
    ///
    /// # Errors
    /// [`Error::InvalidFrame`] for an empty message; [`Error::BadMessage`]
    /// if snow rejects one; the payload errors ([`Error::InvalidPayload`],
    /// [`Error::MissingIdentity`], [`Error::InvalidIdentityKey`],
    /// [`Error::InvalidSignature`], [`Error::InvalidMuxerList`]);
    /// [`Error::PeerIdMismatch`]; an earlier error.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, Error> {
        self.check()?;
        let mut taken = 0;
        loop {
            let n = self.input.extend(&input[taken..]);
            taken += n;
            self.process()?;
            if n == 0 || taken == input.len() {
                return Ok(taken);
            }
        }
    }

    /// Room to receive the peer's bytes into, without a copy. Report what
    /// was written with [`Handshake::input_filled`].
    pub fn input_buffer(&mut self) -> &mut [u8] {
        self.input.spare()
    }

    /// Takes in the `n` bytes just written to the front of
    /// [`Handshake::input_buffer`] and processes them as
    /// [`Handshake::handle_input`] does.
    ///
    /// # Errors
    /// Those of [`Handshake::handle_input`];
    /// [`Misuse::InputOverrun`] if `n` is more than the buffer offered.
    pub fn input_filled(&mut self, n: usize) -> Result<(), Error> {
        self.check()?;
        self.input.filled(n)?;
        self.process()
    }

    /// Reports the end of the peer's stream.
    ///
    /// # Errors
    /// [`Error::UnexpectedEof`] unless the handshake is finished (what
    /// follows is the [`Transport`]'s to judge); an earlier error.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        self.check()?;
        if self.is_finished() {
            Ok(())
        } else {
            Err(self.fail(Error::UnexpectedEof))
        }
    }

    fn check(&self) -> Result<(), Error> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    fn fail(&mut self, err: Error) -> Error {
        self.failed = Some(err.clone());
        err
    }

    /// Processes the whole messages at the front of the input.
    fn process(&mut self) -> Result<(), Error> {
        let mut input = std::mem::take(&mut self.input);
        let result = self.read_messages(&mut input);
        self.input = input;
        result.map_err(|err| self.fail(err))
    }

    fn read_messages(&mut self, input: &mut InputBuffer) -> Result<(), Error> {
        while !self.is_finished() {
            if input.front_len() == Some(0) {
                return Err(InvalidFrame::EmptyHandshakeMessage.into());
            }
            let Some(message) = input.front_mut() else {
                return Ok(());
            };
            let len = message.len();
            self.read_message(message)?;
            input.discard(PREFIX_LEN + len);
        }
        Ok(())
    }

    /// Processes one received handshake message and queues our answer.
    fn read_message(&mut self, message: &[u8]) -> Result<(), Error> {
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

    /// Queues the next message, framed, carrying `payload`.
    fn write(&mut self, payload: &[u8]) -> Result<(), Error> {
        let start = frame::begin(&mut self.out);
        self.out.resize(start + PREFIX_LEN + MAX_FRAME_LEN, 0);
        match self
            .state
            .write_message(payload, &mut self.out[start + PREFIX_LEN..])
        {
            Ok(n) => self.out.truncate(start + PREFIX_LEN + n),
            Err(err) => {
                self.out.truncate(start);
                return Err(Error::snow(self.next, err));
            }
        }
        frame::end(&mut self.out, start);
        self.next += 1;
        Ok(())
    }

    /// The result of the finished handshake and its transport phase, which
    /// holds any bytes received after the last message.
    ///
    /// # Errors
    /// [`Error::NoCommonMuxer`] under [`MuxerPolicy::Strict`];
    /// [`Misuse::HandshakeNotFinished`] before the three messages were
    /// exchanged; an earlier error.
    pub fn finish(mut self) -> Result<(Output, Transport), Error> {
        self.check()?;
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
        let transport =
            Transport::new(CipherState::new(&send), CipherState::new(&recv), self.input);
        Ok((output, transport))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration derived for another muxer list is the same Noise
    /// identity: a caller who sets muxers does not get a new static key.
    #[test]
    fn the_static_key_outlives_a_new_muxer_list() {
        let base = Config::new(&Keypair::generate_ed25519()).unwrap();
        let yamux = Protocol::new("/yamux/1.0.0").unwrap();
        let derived = base
            .with_muxers([yamux])
            .unwrap()
            .with_policy(MuxerPolicy::Strict);
        assert_eq!(derived.inner.static_public, base.inner.static_public);
        assert_eq!(derived.inner.static_private, base.inner.static_private);
        assert_ne!(derived.inner.payload, base.inner.payload);
    }
}
