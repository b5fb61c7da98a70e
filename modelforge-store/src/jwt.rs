//! Signed access tokens (JWT, HS256 only).
//!
//! Only HS256 is accepted: pinning one algorithm rules out algorithm-confusion attacks
//! (`alg: none`, or an RS256 public key reused as an HMAC secret). Expiry is checked with
//! zero leeway, and the issuer and audience must match exactly.
//!
//! A token also carries the user's token version (`ver`) at the time it was issued. Password
//! changes and revocations bump the version in the store, which makes every older token fail
//! verification before it expires.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use modelforge_core::{Actor, StoreError, UserId, UserRole};
use serde::{Deserialize, Serialize};

use crate::options::StoreOptions;

/// The `aud` claim of every token: the ModelForge API.
pub const AUDIENCE: &str = "modelforge";

/// Longer input is refused before any parsing; real tokens are a few hundred bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id.
    sub: String,
    /// The user's role when the token was issued.
    role: String,
    /// Issued at, seconds since the Unix epoch.
    iat: u64,
    /// Expires at, seconds since the Unix epoch.
    exp: u64,
    /// Issuer.
    iss: String,
    /// Audience.
    aud: String,
    /// The user's token version when the token was issued.
    ver: i64,
}

/// What a verified token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The user and the role they had when the token was issued.
    pub actor: Actor,
    /// The token version it was issued under.
    pub token_version: i64,
}

/// Issues and verifies access tokens with one HMAC key.
pub(crate) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl: Duration,
}

impl TokenKeys {
    /// Keys from validated options.
    pub(crate) fn new(options: &StoreOptions) -> Result<Self, StoreError> {
        options.validate()?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.set_issuer(&[options.issuer.as_str()]);
        validation.set_audience(&[AUDIENCE]);
        // `iat` and `role` are required by `Claims` itself: a token without them does not parse.
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(&options.jwt_secret),
            decoding: DecodingKey::from_secret(&options.jwt_secret),
            validation,
            issuer: options.issuer.clone(),
            ttl: options.access_token_ttl,
        })
    }

    /// A token for `actor` under `token_version` and when it expires (after the configured
    /// lifetime).
    pub(crate) fn issue(
        &self,
        actor: &Actor,
        token_version: i64,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        let iat = unix_now();
        let exp = iat.saturating_add(self.ttl.as_secs());
        let claims = Claims {
            sub: actor.user_id.to_string(),
            role: actor.role.as_str().to_owned(),
            iat,
            exp: iat.saturating_add(self.ttl.as_secs()),
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            ver: token_version,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| invalid(format!("cannot sign the token: {err}")))?;
        let expires_at = i64::try_from(exp).ok().and_then(|exp| DateTime::from_timestamp(exp, 0));
        Ok((token, expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC)))
    }

    /// The actor a token speaks for, if its signature, algorithm, expiry, issuer and
    /// audience all check out.
    pub(crate) fn verify(&self, token: &str) -> Result<Verified, StoreError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid("token is too long"));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| invalid(reason(err.kind())))?
            .claims;
        // The library accepts `exp == now`; a token is valid strictly before its expiry.
        if claims.exp <= unix_now() {
            return Err(invalid("token has expired"));
        }
        let user_id: UserId = claims.sub.parse().map_err(|_| invalid("subject is not a user id"))?;
        let role: UserRole = claims.role.parse().map_err(|_| invalid("unknown role"))?;
        Ok(Verified { actor: Actor { user_id, role }, token_version: claims.ver })
    }
}

fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token has expired".to_owned(),
        ErrorKind::InvalidSignature => "signature does not match".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "signing algorithm not allowed (only HS256 is accepted)".to_owned()
        }
        ErrorKind::InvalidIssuer => "wrong issuer".to_owned(),
        ErrorKind::InvalidAudience => "wrong audience".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim `{claim}`"),
        // Includes headers naming an unknown algorithm such as `none`, which fail to parse.
        _ => "malformed token".to_owned(),
    }
}

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::InvalidToken { reason: reason.into() }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8], ttl: Duration) -> TokenKeys {
        let mut options = StoreOptions::with_secret(secret.to_vec());
        options.access_token_ttl = ttl;
        TokenKeys::new(&options).unwrap()
    }

    fn actor() -> Actor {
        Actor { user_id: UserId::new(), role: UserRole::User }
    }

    fn reason_of(result: Result<Verified, StoreError>) -> String {
        match result {
            Err(StoreError::InvalidToken { reason }) => reason,
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let keys = keys(&[1; 32], StoreOptions::DEFAULT_ACCESS_TOKEN_TTL);
        let actor = actor();
        let (token, expires_at) = keys.issue(&actor, 3).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), Verified { actor, token_version: 3 });
        let ttl = (expires_at - Utc::now()).num_seconds();
        assert!((890..=900).contains(&ttl), "{ttl}");
    }

    #[test]
    fn a_zero_lifetime_token_is_already_expired() {
        let keys = keys(&[1; 32], Duration::ZERO);
        let token = keys.issue(&actor(), 0).unwrap().0;
        assert_eq!(reason_of(keys.verify(&token)), "token has expired");
    }

    #[test]
    fn another_key_or_issuer_is_refused() {
        let ours = keys(&[1; 32], StoreOptions::DEFAULT_ACCESS_TOKEN_TTL);
        let theirs = keys(&[2; 32], StoreOptions::DEFAULT_ACCESS_TOKEN_TTL);
        let token = theirs.issue(&actor(), 0).unwrap().0;
        assert_eq!(reason_of(ours.verify(&token)), "signature does not match");

        let mut options = StoreOptions::with_secret(vec![1; 32]);
        options.issuer = "someone-else".to_owned();
        let other_issuer = TokenKeys::new(&options).unwrap();
        let token = other_issuer.issue(&actor(), 0).unwrap().0;
        assert_eq!(reason_of(ours.verify(&token)), "wrong issuer");
    }

    #[test]
    fn garbage_and_huge_tokens_are_refused() {
        let keys = keys(&[1; 32], StoreOptions::DEFAULT_ACCESS_TOKEN_TTL);
        assert_eq!(reason_of(keys.verify("not.a.token")), "malformed token");
        assert_eq!(reason_of(keys.verify("")), "malformed token");
        assert_eq!(reason_of(keys.verify(&"a".repeat(MAX_TOKEN_BYTES + 1))), "token is too long");
    }
}
