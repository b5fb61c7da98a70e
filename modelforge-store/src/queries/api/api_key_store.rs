//! [`ApiKeyStore`] for the store: long-lived keys for clients that cannot refresh an access
//! token, kept only as hashes and scoped to their owner.

use modelforge_core::{Actor, ApiKey, ApiKeyId, ApiKeyStore, CreatedApiKey, StoreError, UserId};
use tracing::field::Empty;

use super::super::{Store, api_keys, users};
use super::refused;
use crate::api_key::{self, LAST_USE_RESOLUTION_MICROS, MAX_KEY_BYTES};
use crate::db::errors::corrupt;
use crate::db::rows::{ApiKeyRow, now_micros};
use crate::limits;

impl ApiKeyStore for Store {
    // The name is not recorded: people paste odd things into name fields.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, api_key_id = Empty))]
    fn create_api_key(&self, actor: &Actor, name: &str) -> Result<CreatedApiKey, StoreError> {
        limits::check_api_key_name(name)?;
        let secret = api_key::generate();
        let row = ApiKeyRow {
            id: ApiKeyId::new().to_string(),
            user_id: actor.user_id.to_string(),
            name: name.to_owned(),
            prefix: api_key::shown_prefix(&secret),
            created_at: now_micros(),
            last_used_at: None,
        };
        self.write("creating an API key", |conn| {
            let state =
                users::token_state(conn, actor.user_id)?.ok_or_else(|| users::not_found(actor.user_id))?;
            if state.disabled {
                return Err(StoreError::PermissionDenied {
                    action: format!("creating an API key for disabled user {}", actor.user_id),
                });
            }
            api_keys::insert(conn, &row, &api_key::hash(&secret))
        })?;
        let api_key = row.into_api_key()?;
        tracing::Span::current().record("api_key_id", tracing::field::display(api_key.id));
        tracing::info!("created an API key");
        Ok(CreatedApiKey { api_key, secret })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id))]
    fn list_api_keys(&self, actor: &Actor) -> Result<Vec<ApiKey>, StoreError> {
        self.query(|conn| api_keys::list(conn, actor.user_id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %actor.user_id, api_key_id = %id))]
    fn revoke_api_key(&self, actor: &Actor, id: ApiKeyId) -> Result<(), StoreError> {
        self.write("revoking an API key", |conn| api_keys::remove(conn, actor.user_id, id))?;
        tracing::info!("revoked an API key");
        Ok(())
    }

    /// Reads without a write lock; only a use not recorded within the last minute writes.
    #[tracing::instrument(level = "debug", skip_all, fields(user_id = Empty, api_key_id = Empty))]
    fn verify_api_key(&self, key: &str) -> Result<Actor, StoreError> {
        if key.len() > MAX_KEY_BYTES || !key.starts_with(ApiKey::KEY_PREFIX) {
            return Err(refused("not an API key"));
        }
        let hash = api_key::hash(key);
        let found = self.query(|conn| api_keys::find(conn, &hash))?;
        let found = found.ok_or_else(|| refused("unknown or revoked API key"))?;
        let span = tracing::Span::current();
        span.record("user_id", found.user_id.as_str());
        span.record("api_key_id", found.id.as_str());
        if found.disabled {
            return Err(refused("the account is disabled"));
        }
        let user_id: UserId = found.user_id.parse().map_err(|_| corrupt("a user id", &found.user_id))?;
        let role = found.role.parse().map_err(|_| corrupt("a user role", &found.role))?;
        let now = now_micros();
        let stale_before = now.saturating_sub(LAST_USE_RESOLUTION_MICROS);
        if found.last_used_at.is_none_or(|at| at < stale_before) {
            self.write("recording an API key's use", |conn| {
                api_keys::record_use(conn, &found.id, now, stale_before)
            })?;
        }
        Ok(Actor { user_id, role })
    }
}
