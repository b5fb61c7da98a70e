//! [`StoreOptions`]: the settings a store needs beside its database.

use std::fmt;
use std::time::Duration;

use modelforge_core::StoreError;

/// Settings shared by every store backend: how tokens are signed and how long they live, and
/// how failed logins are throttled.
///
/// There is deliberately no `Default`: a store must never sign tokens with an empty or
/// guessable key. Use [`StoreOptions::with_secret`] with a key from
/// [`load_or_create_secret`](crate::load_or_create_secret) or your own secret manager.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// The HMAC key for HS256 access tokens; at least [`StoreOptions::MIN_SECRET_LEN`] bytes.
    pub jwt_secret: Vec<u8>,
    /// How long an access token stays valid after it is issued, in whole seconds (a fraction
    /// is dropped; zero makes tokens that are already expired).
    pub access_token_ttl: Duration,
    /// The `iss` claim written into tokens and required of tokens presented back.
    pub issuer: String,
    /// How long a refresh token stays valid after it is issued.
    pub refresh_token_ttl: Duration,
    /// When repeated failed logins lock an account, and for how long.
    pub lockout: LockoutPolicy,
    /// How long a token check may reuse what it read about the user (exists, enabled, role,
    /// token version). Changes made through this store apply at once; changes made by another
    /// process on the same database (a second replica) apply within this time. Zero reads the
    /// database on every check. Default: [`DEFAULT_AUTH_CACHE_TTL`](Self::DEFAULT_AUTH_CACHE_TTL).
    pub auth_cache_ttl: Duration,
}

/// Throttling of password guessing: after `max_failures` failed logins in a row an account
/// refuses logins for `base_delay`, doubling with each further failure up to `max_delay`. A
/// successful login resets the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed logins in a row before the first wait (5 by default).
    pub max_failures: u32,
    /// The first wait (30 s by default).
    pub base_delay: Duration,
    /// The longest wait (1 h by default).
    pub max_delay: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self { max_failures: 5, base_delay: Duration::from_secs(30), max_delay: Duration::from_secs(3600) }
    }
}

impl LockoutPolicy {
    /// How long an account waits after `failures` failed logins in a row, if at all.
    ///
    /// ```
    /// use std::time::Duration;
    /// use modelforge_store::LockoutPolicy;
    /// let policy = LockoutPolicy::default();
    /// assert_eq!(policy.delay_after(4), None);
    /// assert_eq!(policy.delay_after(5), Some(Duration::from_secs(30)));
    /// assert_eq!(policy.delay_after(6), Some(Duration::from_secs(60)));
    /// assert_eq!(policy.delay_after(60), Some(Duration::from_secs(3600)));
    /// ```
    pub fn delay_after(&self, failures: u32) -> Option<Duration> {
        let beyond = failures.checked_sub(self.max_failures.max(1))?;
        let factor = 1_u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        Some(self.base_delay.saturating_mul(factor).min(self.max_delay))
    }
}

impl StoreOptions {
    /// The default lifetime of an access token: 15 minutes.
    pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
    /// The default issuer, `modelforge`.
    pub const DEFAULT_ISSUER: &'static str = "modelforge";
    /// The default lifetime of a refresh token: 30 days.
    pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
    /// The default [`auth_cache_ttl`](Self::auth_cache_ttl): one second.
    pub const DEFAULT_AUTH_CACHE_TTL: Duration = Duration::from_secs(1);
    /// The shortest accepted signing key, in bytes (256 bits, the HS256 output size).
    pub const MIN_SECRET_LEN: usize = 32;

    /// Options with the given signing key and the default lifetimes, issuer and lockout.
    ///
    /// The key is checked when a store is opened: shorter than
    /// [`MIN_SECRET_LEN`](Self::MIN_SECRET_LEN) bytes is [`StoreError::InvalidInput`].
    pub fn with_secret(secret: Vec<u8>) -> Self {
        Self {
            jwt_secret: secret,
            access_token_ttl: Self::DEFAULT_ACCESS_TOKEN_TTL,
            issuer: Self::DEFAULT_ISSUER.to_owned(),
            refresh_token_ttl: Self::DEFAULT_REFRESH_TOKEN_TTL,
            lockout: LockoutPolicy::default(),
            auth_cache_ttl: Self::DEFAULT_AUTH_CACHE_TTL,
        }
    }

    /// Rejects a short key or an empty issuer before anything is opened.
    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.jwt_secret.len() < Self::MIN_SECRET_LEN {
            return Err(StoreError::InvalidInput {
                field: "jwt_secret",
                reason: format!(
                    "the signing key has {} bytes; at least {} are required",
                    self.jwt_secret.len(),
                    Self::MIN_SECRET_LEN
                ),
            });
        }
        if self.issuer.trim().is_empty() {
            return Err(StoreError::InvalidInput {
                field: "issuer",
                reason: "the token issuer must not be empty".to_owned(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("jwt_secret", &format_args!("<{} bytes redacted>", self.jwt_secret.len()))
            .field("access_token_ttl", &self.access_token_ttl)
            .field("issuer", &self.issuer)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("lockout", &self.lockout)
            .field("auth_cache_ttl", &self.auth_cache_ttl)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_fifteen_minutes_and_modelforge() {
        let options = StoreOptions::with_secret(vec![7; 32]);
        assert_eq!(options.access_token_ttl, Duration::from_secs(900));
        assert_eq!(options.issuer, "modelforge");
        assert!(options.validate().is_ok());
    }

    #[test]
    fn short_or_empty_secrets_are_rejected() {
        for secret in [Vec::new(), vec![1; 31]] {
            let err = StoreOptions::with_secret(secret).validate().unwrap_err();
            assert!(matches!(err, StoreError::InvalidInput { field: "jwt_secret", .. }), "{err}");
        }
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let options = StoreOptions::with_secret(b"super-secret-key-material-0123456789".to_vec());
        let shown = format!("{options:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains("36 bytes redacted"), "{shown}");
    }
}
