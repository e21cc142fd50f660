//! Transport encryption in place: ChaCha20-Poly1305 from `ring`, with the
//! keys of the finished handshake and Noise's nonce rules.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

use crate::Error;

/// The Poly1305 tag appended to every transport message (Noise spec
/// section 12.3, ChaChaPoly: RFC 8439's AEAD).
pub const TAG_LEN: usize = 16;

/// One direction's cipher state (Noise spec section 5.1: a key and a
/// 64-bit counter nonce).
pub(crate) struct CipherState {
    key: LessSafeKey,
    nonce: u64,
}

impl std::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CipherState")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl CipherState {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let key =
            UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key fits ChaCha20-Poly1305");
        CipherState {
            key: LessSafeKey::new(key),
            nonce: 0,
        }
    }

    /// Noise spec 12.3 (ChaChaPoly): 32 bits of zeros, then the counter in
    /// little-endian. The counter value 2^64 - 1 is reserved (section 5.1).
    fn next_nonce(&mut self) -> Result<Nonce, Error> {
        if self.nonce == u64::MAX {
            return Err(Error::NonceExhausted);
        }
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&self.nonce.to_le_bytes());
        self.nonce += 1;
        Ok(Nonce::assume_unique_for_key(bytes))
    }

    /// Encrypts `in_out` in place and returns the tag to append.
    ///
    /// # Errors
    /// [`Error::NonceExhausted`] only: ring refuses nothing shorter than
    /// 256 GiB, and a frame holds at most 64 KiB.
    pub(crate) fn seal(&mut self, in_out: &mut [u8]) -> Result<Tag, Error> {
        let nonce = self.next_nonce()?;
        Ok(self
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), in_out)
            .expect("a frame is far below ChaCha20-Poly1305's input limit"))
    }

    /// Decrypts ciphertext-and-tag in place; returns the plaintext length.
    pub(crate) fn open(&mut self, in_out: &mut [u8]) -> Result<usize, Error> {
        let nonce = self.next_nonce()?;
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::empty(), in_out)
            .map_err(|_| Error::Decrypt)?;
        Ok(plaintext.len())
    }
}
