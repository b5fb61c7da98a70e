//! The store's trait implementations, one file per slice of
//! [`SessionStore`](modelforge_core::SessionStore): input rules and permission checks first,
//! then the queries in one transaction per call. Slow password hashing always runs outside
//! any transaction and without holding a connection.
//!
//! This file holds what the slices share: the transaction helpers on `Store` and the input
//! checks. The submodules are named after the trait they implement (`user_store.rs` for
//! [`UserStore`](modelforge_core::UserStore)), not after the tables, because `users`,
//! `tokens` and `memories` already name the query modules beside this one.

use modelforge_core::{
    Actor, MemoryDetails, MemoryUpdate, NewSession, SessionUpdate, StoreError, TokenPair, UserExport, UserId,
    UserRole,
};

use super::{Conn, Store, read_tx, tokens, users, write_tx};
use crate::db::rows::{now_micros, timestamp};
use crate::{limits, refresh};

mod api_key_store;
mod chat_store;
mod export_store;
mod memory_store;
mod token_store;
mod user_store;

impl Store {
    /// Runs `f` in a write transaction (behind the process's write lock on SQLite).
    fn write<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _writer = self.shared.writer();
        let mut conn = self.shared.conn()?;
        write_tx(&mut conn, context, f)
    }

    /// Runs `f` in a read transaction: several queries see one snapshot.
    fn read<T>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.shared.conn()?;
        read_tx(&mut conn, context, f)
    }

    /// Runs a single statement (or statements that need no common snapshot).
    fn query<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.shared.conn()?;
        f(&mut conn)
    }

    /// The user's current role and token version, if the account exists and is enabled.
    fn enabled_user(conn: &mut Conn, user: UserId) -> Result<(UserRole, i64), StoreError> {
        let state = users::token_state(conn, user)?.ok_or_else(|| users::not_found(user))?;
        if state.disabled {
            return Err(StoreError::PermissionDenied {
                action: format!("issuing tokens for disabled user {user}"),
            });
        }
        let role = state.role.parse().map_err(|_| crate::db::errors::corrupt("a user role", &state.role))?;
        Ok((role, state.token_version))
    }

    /// A new access token and a new refresh token in `family`.
    fn token_pair(
        &self,
        conn: &mut Conn,
        actor: Actor,
        token_version: i64,
        family_id: &str,
    ) -> Result<TokenPair, StoreError> {
        let now = now_micros();
        let ttl = i64::try_from(self.shared.options.refresh_token_ttl.as_micros()).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl);
        let refresh_token = refresh::generate();
        tokens::insert(conn, actor.user_id, family_id, refresh::hash(&refresh_token), now, expires_at)?;
        let (access_token, access_expires_at) = self.shared.keys.issue(&actor, token_version)?;
        Ok(TokenPair {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at: timestamp(expires_at)?,
        })
    }
}

/// What a refresh attempt found; errors that must not roll back the transaction (a detected
/// reuse revokes the family, and that revocation has to be committed).
enum Refreshed {
    Pair(TokenPair),
    Refused(&'static str),
}

fn refused(reason: &str) -> StoreError {
    StoreError::InvalidToken { reason: reason.to_owned() }
}

/// Seconds, rounded up, at least 1.
fn whole_secs(micros: i64) -> u64 {
    u64::try_from(micros).unwrap_or(0).div_ceil(1_000_000).max(1)
}

fn check_new_session(new: &NewSession) -> Result<(), StoreError> {
    limits::check_title(&new.title)?;
    limits::check_model(new.model.as_deref())
}

fn check_session_update(change: &SessionUpdate) -> Result<(), StoreError> {
    if let Some(title) = &change.title {
        limits::check_new_title(title)?;
    }
    if let Some(model) = &change.model {
        limits::check_model(model.as_deref())?;
    }
    Ok(())
}

fn check_memory_update(change: &MemoryUpdate) -> Result<(), StoreError> {
    if let Some(content) = &change.content {
        limits::check_memory(content)?;
    }
    if let Some(confidence) = change.confidence {
        limits::check_confidence(confidence)?;
    }
    if let Some(Some(embedding)) = &change.embedding {
        limits::check_embedding(embedding)?;
    }
    Ok(())
}

fn check_details(details: &MemoryDetails) -> Result<(), StoreError> {
    limits::check_confidence(details.confidence)?;
    details.embedding.as_deref().map_or(Ok(()), limits::check_embedding)
}

/// Every value of an export passes the same rules as the calls that would have created it.
fn check_export(export: &UserExport) -> Result<(), StoreError> {
    if export.format_version != UserExport::FORMAT_VERSION {
        return Err(StoreError::InvalidInput {
            field: "import",
            reason: format!(
                "format version {} is not supported (expected {})",
                export.format_version,
                UserExport::FORMAT_VERSION
            ),
        });
    }
    for entry in &export.sessions {
        limits::check_title(&entry.session.title)?;
        limits::check_model(entry.session.model.as_deref())?;
        for message in &entry.messages {
            limits::check_message(&message.content)?;
            limits::check_message_role(message.role)?;
        }
    }
    for record in &export.memories {
        limits::check_memory(&record.memory.content)?;
        check_details(&MemoryDetails { confidence: record.confidence, embedding: record.embedding.clone() })?;
    }
    Ok(())
}
