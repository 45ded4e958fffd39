//! Token signing keys at rest: when the operator sets `SLUICE_KEY_ENCRYPTION_KEY`, every key in
//! `sluice.token_keys` is stored sealed with AES-256-GCM under that key (ring's AEAD, already in
//! the tree through rustls), so a copy of the database alone cannot forge tokens. Pure: no IO.
//!
//! A sealed key is `MAGIC || nonce (12 bytes, random) || ciphertext || tag (16 bytes)`; the
//! keys Sluice makes are 32 random bytes, so a stored value is told apart by its magic prefix
//! and length. A value without the prefix is a plaintext key (stored before encryption was
//! turned on, or by an instance without the setting); it is sealed at the next start.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// Prefix of a sealed key (format version 1).
const MAGIC: &[u8] = b"SLK1";
/// Bound into every seal, so a sealed value means nothing outside this table.
const AAD: &[u8] = b"sluice.token_keys";
const TAG_LEN: usize = 16;

/// Seals and opens token signing keys with the operator's key encryption key.
pub struct KeySealer(LessSafeKey);

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(***)")
    }
}

/// A sealed value that does not open: the key is not the one it was sealed with, or the value
/// was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored key does not open with this key encryption key")]
pub struct OpenError;

impl KeySealer {
    pub fn new(key: &[u8; 32]) -> KeySealer {
        // A 32-byte key always fits AES-256.
        let unbound = UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable!());
        KeySealer(LessSafeKey::new(unbound))
    }

    /// `secret` sealed under a fresh random nonce.
    pub fn seal(&self, secret: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + secret.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        let mut body = secret.to_vec();
        // Sealing fails only for inputs beyond AES-GCM's size limit (gigabytes).
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut body,
            )
            .unwrap_or_else(|_| unreachable!());
        out.extend_from_slice(&body);
        out
    }

    /// The secret inside a sealed value.
    pub fn open(&self, stored: &[u8]) -> Result<Vec<u8>, OpenError> {
        if !is_sealed(stored) {
            return Err(OpenError);
        }
        let rest = &stored[MAGIC.len()..];
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&rest[..NONCE_LEN]);
        let mut body = rest[NONCE_LEN..].to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut body,
            )
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

/// Whether a stored value is sealed (rather than a plaintext key).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC) && stored.len() >= MAGIC.len() + NONCE_LEN + 32 + TAG_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_key_and_unchanged() {
        let sealer = KeySealer::new(&[7; 32]);
        let secret = [42u8; 32];
        let sealed = sealer.seal(&secret);
        assert!(is_sealed(&sealed));
        assert!(
            !is_sealed(&secret),
            "a plaintext key is not taken for a sealed one"
        );
        assert_ne!(&sealed[MAGIC.len() + NONCE_LEN..][..32], &secret[..]);
        assert_eq!(sealer.open(&sealed), Ok(secret.to_vec()));
        assert_ne!(sealer.seal(&secret), sealed, "every seal has its own nonce");
        assert_eq!(KeySealer::new(&[8; 32]).open(&sealed), Err(OpenError));
        let mut changed = sealed.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert_eq!(sealer.open(&changed), Err(OpenError));
        assert_eq!(sealer.open(&secret), Err(OpenError));
        assert_eq!(format!("{sealer:?}"), "KeySealer(***)");
    }
}
