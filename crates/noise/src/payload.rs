//! The handshake payload: identity, signature, and extensions.
//!
//! libp2p specs, noise/README.md ("The libp2p Handshake Payload"):
//!
//! ```protobuf
//! syntax = "proto2";
//! message NoiseExtensions {
//!     repeated bytes webtransport_certhashes = 1;
//!     repeated string stream_muxers = 2;
//! }
//! message NoiseHandshakePayload {
//!     optional bytes identity_key = 1;
//!     optional bytes identity_sig = 2;
//!     optional NoiseExtensions extensions = 4;
//! }
//! ```

use std::sync::Arc;

use libp2p_identity::{Keypair, PublicKey};
use onetrip_multistream::Protocol;
use prost::Message as _;

use crate::{ConfigError, Error, InvalidMuxerList};

/// libp2p specs, noise/README.md: the identity key signs this prefix
/// followed by the Noise static public key.
pub const STATIC_KEY_DOMAIN: &[u8] = b"noise-libp2p-static-key:";

/// The most stream muxers a peer may list (our bound: the spec sets none;
/// a handshake message of at most 64 KiB bounds the list anyway).
pub const MAX_MUXERS: usize = 100;

/// `NoiseExtensions`, field numbers from the libp2p noise spec.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoiseExtensions {
    /// WebTransport certificate hashes (unused by TCP; carried through).
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub webtransport_certhashes: Vec<Vec<u8>>,
    /// Stream muxers, in the sender's order of preference.
    #[prost(string, repeated, tag = "2")]
    pub stream_muxers: Vec<String>,
}

/// `NoiseHandshakePayload`, field numbers from the libp2p noise spec.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NoiseHandshakePayload {
    /// The sender's libp2p public key, protobuf-encoded.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity_key: Option<Vec<u8>>,
    /// Signature by that key over [`STATIC_KEY_DOMAIN`] || Noise static key.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub identity_sig: Option<Vec<u8>>,
    /// Extensions.
    #[prost(message, optional, tag = "4")]
    pub extensions: Option<NoiseExtensions>,
}

/// What a verified payload says.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) public_key: PublicKey,
    /// `None` if the peer sent no list (or an empty one).
    pub(crate) muxers: Option<Vec<Protocol>>,
}

/// Builds our payload: identity, signature over our static key, muxers.
pub(crate) fn encode(
    keypair: &Keypair,
    static_public: &[u8],
    muxers: &[Protocol],
) -> Result<Vec<u8>, Error> {
    let signature = keypair
        .sign(&[STATIC_KEY_DOMAIN, static_public].concat())
        .map_err(|err| ConfigError::Sign(Arc::new(err)))?;
    let extensions = (!muxers.is_empty()).then(|| NoiseExtensions {
        webtransport_certhashes: Vec::new(),
        stream_muxers: muxers.iter().map(|p| p.as_str().to_owned()).collect(),
    });
    let payload = NoiseHandshakePayload {
        identity_key: Some(keypair.public().encode_protobuf()),
        identity_sig: Some(signature),
        extensions,
    };
    Ok(payload.encode_to_vec())
}

/// Decodes and checks a peer's payload against its Noise static key.
pub(crate) fn verify(bytes: &[u8], static_public: &[u8]) -> Result<Verified, Error> {
    let payload = NoiseHandshakePayload::decode(bytes).map_err(Error::InvalidPayload)?;
    let (Some(key), Some(signature)) = (payload.identity_key, payload.identity_sig) else {
        return Err(Error::MissingIdentity);
    };
    let public_key = PublicKey::try_decode_protobuf(&key)
        .map_err(|err| Error::InvalidIdentityKey(Arc::new(err)))?;
    if !public_key.verify(&[STATIC_KEY_DOMAIN, static_public].concat(), &signature) {
        return Err(Error::InvalidSignature);
    }
    let muxers = match payload.extensions {
        Some(ext) if !ext.stream_muxers.is_empty() => Some(validate_muxers(ext.stream_muxers)?),
        _ => None,
    };
    Ok(Verified { public_key, muxers })
}

fn validate_muxers(list: Vec<String>) -> Result<Vec<Protocol>, InvalidMuxerList> {
    if list.len() > MAX_MUXERS {
        return Err(InvalidMuxerList::TooMany { len: list.len() });
    }
    list.into_iter()
        .map(|name| Protocol::new(name).map_err(InvalidMuxerList::InvalidName))
        .collect()
}

/// How the early muxer choice behaves when both peers list muxers but none
/// in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MuxerPolicy {
    /// No early choice: the connection falls back to negotiating the muxer
    /// with multistream-select, as go-libp2p and js-libp2p do.
    #[default]
    Fallback,
    /// Fail the handshake, as the libp2p spec says.
    Strict,
}

/// The early muxer choice (libp2p specs, connections/inlined-muxer-negotiation.md):
/// the first entry of the initiator's list that the responder supports.
/// `None` when either side sent no list, or (with [`MuxerPolicy::Fallback`])
/// when the lists do not overlap.
pub(crate) fn choose(
    initiator: Option<&[Protocol]>,
    responder: Option<&[Protocol]>,
    policy: MuxerPolicy,
) -> Result<Option<Protocol>, Error> {
    let (Some(initiator), Some(responder)) = (initiator, responder) else {
        return Ok(None);
    };
    match initiator.iter().find(|m| responder.contains(m)) {
        Some(m) => Ok(Some(m.clone())),
        None if policy == MuxerPolicy::Strict => Err(Error::NoCommonMuxer),
        None => Ok(None),
    }
}
