//! API keys: 256 random bits behind [`ApiKey::KEY_PREFIX`], handed out once, stored only as
//! a SHA-256 hash beside a short prefix the owner recognises them by.
//!
//! Like refresh tokens (see `refresh.rs`), a key is random and long, so a fast hash is enough:
//! it cannot be guessed, and a stolen database yields no usable key.

use modelforge_core::ApiKey;
use rand::RngCore;

use crate::refresh;

/// Longer input is refused before hashing: a real key is 67 bytes.
pub(crate) const MAX_KEY_BYTES: usize = 256;
/// Random characters shown after [`ApiKey::KEY_PREFIX`] in a key's listed prefix: enough to
/// tell a user's keys apart (32 bits), far too few to help guess the other 224.
const SHOWN_CHARS: usize = 8;
/// A key's last use is written at most this often (a minute, in microseconds), so a busy
/// client does not turn every request into a write.
pub(crate) const LAST_USE_RESOLUTION_MICROS: i64 = 60_000_000;

/// A new random key.
pub(crate) fn generate() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{}{}", ApiKey::KEY_PREFIX, refresh::hex(&bytes))
}

/// The part of a key that is listed with it.
pub(crate) fn shown_prefix(key: &str) -> String {
    key.chars().take(ApiKey::KEY_PREFIX.len() + SHOWN_CHARS).collect()
}

/// The hex SHA-256 of a key: the only form the database sees.
pub(crate) fn hash(key: &str) -> String {
    refresh::hash(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_shown_only_in_part() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(ApiKey::KEY_PREFIX) && a.len() == ApiKey::KEY_PREFIX.len() + 64, "{a}");
        assert!(a.len() <= MAX_KEY_BYTES);
        let shown = shown_prefix(&a);
        assert_eq!(shown.len(), ApiKey::KEY_PREFIX.len() + SHOWN_CHARS);
        assert!(a.starts_with(&shown));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(hash(&a).len(), 64);
    }
}
