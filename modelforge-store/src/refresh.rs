//! Opaque refresh tokens: 256 random bits, handed out once, stored only as a SHA-256 hash.
//!
//! A hash is enough because the token is random and long: unlike a password it cannot be
//! guessed, so a slow hash would only cost time. A stolen database therefore yields no
//! usable refresh token.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Marks our refresh tokens, so one pasted into the wrong field is recognisable.
const PREFIX: &str = "mfr_";
/// Longer input is refused before hashing.
pub(crate) const MAX_TOKEN_BYTES: usize = 256;

/// A new random refresh token.
pub(crate) fn generate() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex(&bytes))
}

/// The hex SHA-256 of a token: the only form the database sees.
pub(crate) fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lowercase hex, two digits a byte.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64, "{a}");
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
