//! [`TokenStore`] for the store: signed access tokens (JWT) and refresh tokens that rotate on
//! every use and are kept only as hashes.

use modelforge_core::{Actor, StoreError, TokenPair, TokenStore, UserId};
use tracing::field::Empty;

use super::super::{Store, api_keys, tokens, users};
use super::{Refreshed, refused};
use crate::db::rows::now_micros;
use crate::refresh;
use crate::token_cache::TokenState;

impl TokenStore for Store {
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn issue_token(&self, actor: &Actor) -> Result<String, StoreError> {
        let (role, version) = self.query(|conn| Self::enabled_user(conn, actor.user_id))?;
        let (token, _) = self.shared.keys.issue(&Actor { user_id: actor.user_id, role }, version)?;
        Ok(token)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn issue_tokens(&self, actor: &Actor) -> Result<TokenPair, StoreError> {
        self.write("issuing tokens", |conn| {
            let (role, version) = Self::enabled_user(conn, actor.user_id)?;
            let family = uuid::Uuid::now_v7().to_string();
            self.token_pair(conn, Actor { user_id: actor.user_id, role }, version, &family)
        })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    fn refresh(&self, refresh_token: &str) -> Result<TokenPair, StoreError> {
        if refresh_token.len() > refresh::MAX_TOKEN_BYTES {
            return Err(refused("refresh token is too long"));
        }
        let hash = refresh::hash(refresh_token);
        let outcome = self.write("refreshing tokens", |conn| {
            let now = now_micros();
            let Some(row) = tokens::find(conn, &hash)? else {
                return Ok(Refreshed::Refused("unknown refresh token"));
            };
            if row.revoked_at.is_some() {
                return Ok(Refreshed::Refused("refresh token has been revoked"));
            }
            // A retired token presented again was copied: whoever holds its successor may be
            // an attacker or the user, so every token of the login goes.
            if row.used_at.is_some() || !tokens::mark_used(conn, &row.id, now)? {
                tokens::revoke_family(conn, &row.family_id, now)?;
                tracing::warn!(user_id = %row.user_id, "refresh token reuse: revoked its family");
                return Ok(Refreshed::Refused(
                    "refresh token was already used; all tokens of this login are revoked",
                ));
            }
            if row.expires_at <= now {
                return Ok(Refreshed::Refused("refresh token has expired"));
            }
            let user: UserId =
                row.user_id.parse().map_err(|_| crate::db::errors::corrupt("a user id", &row.user_id))?;
            let Some(state) = users::token_state(conn, user)? else {
                return Ok(Refreshed::Refused("the token's user no longer exists"));
            };
            if state.disabled {
                return Ok(Refreshed::Refused("the account is disabled"));
            }
            let role =
                state.role.parse().map_err(|_| crate::db::errors::corrupt("a user role", &state.role))?;
            Ok(Refreshed::Pair(self.token_pair(
                conn,
                Actor { user_id: user, role },
                state.token_version,
                &row.family_id,
            )?))
        })?;
        match outcome {
            Refreshed::Pair(pair) => Ok(pair),
            Refreshed::Refused(reason) => Err(refused(reason)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    fn logout(&self, refresh_token: &str) -> Result<(), StoreError> {
        if refresh_token.len() > refresh::MAX_TOKEN_BYTES {
            return Err(refused("refresh token is too long"));
        }
        let hash = refresh::hash(refresh_token);
        self.write("logging out", |conn| {
            let row = tokens::find(conn, &hash)?.ok_or_else(|| refused("unknown refresh token"))?;
            tokens::revoke_family(conn, &row.family_id, now_micros())
        })
    }

    /// Also checks that the user still exists, is enabled and has not revoked the token, and
    /// takes the role from the database, so a role change applies to tokens already issued.
    /// What it reads is reused for [`StoreOptions::auth_cache_ttl`](crate::StoreOptions).
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty))]
    fn verify_token(&self, token: &str) -> Result<Actor, StoreError> {
        let claimed = self.shared.keys.verify(token)?;
        let user_id = claimed.actor.user_id;
        tracing::Span::current().record("user_id", tracing::field::display(user_id));
        let state = match self.shared.token_states.get(user_id) {
            Some(state) => state,
            None => {
                let row = self
                    .query(|conn| users::token_state(conn, user_id))?
                    .ok_or_else(|| refused("the token's user no longer exists"))?;
                let role =
                    row.role.parse().map_err(|_| crate::db::errors::corrupt("a user role", &row.role))?;
                let state = TokenState { role, disabled: row.disabled, token_version: row.token_version };
                self.shared.token_states.put(user_id, state);
                state
            }
        };
        if state.disabled {
            return Err(refused("the account is disabled"));
        }
        if state.token_version != claimed.token_version {
            return Err(refused("the token has been revoked"));
        }
        Ok(Actor { user_id, role: state.role })
    }

    /// API keys go too: this is the way out for a compromised account.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, target = %user))]
    fn revoke_tokens(&self, actor: &Actor, user: UserId) -> Result<(), StoreError> {
        self.write("revoking tokens", |conn| {
            if user != actor.user_id {
                users::require_admin(conn, actor, "revoking another user's tokens")?;
            }
            users::bump_token_version(conn, user)?;
            tokens::revoke_user(conn, user, now_micros())?;
            api_keys::remove_all(conn, user)
        })?;
        self.shared.token_states.forget(user);
        tracing::info!("revoked every token and API key of a user");
        Ok(())
    }
}
