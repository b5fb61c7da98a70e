//! Database rows and their conversion to the core records. The derives are generic over the
//! backend, so both stores share these types.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use modelforge_core::{
    ApiKey, Memory, MemoryKind, MemoryRecord, Message, Role, Session, SessionSummary, SessionUpdate,
    StoreError, User, UserRole,
};

use super::errors::corrupt;
use super::schema::{api_keys, memories, messages, refresh_tokens, session_summaries, sessions, users};
use crate::embedding;

/// Now, at the microsecond precision the database keeps, so a record returned by a write
/// equals the same record read back later.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Microseconds since the epoch to a timestamp.
pub(crate) fn timestamp(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt("a timestamp", &micros.to_string()))
}

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T, StoreError> {
    value.parse().map_err(|_| corrupt(what, value))
}

fn count(what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, &value.to_string()))
}

/// A user as read back, without the password hash.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub created_at: i64,
    pub last_login: Option<i64>,
    pub disabled: bool,
    pub memory_enabled: bool,
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: parse("a user id", &self.id)?,
            role: parse::<UserRole>("a user role", &self.role)?,
            created_at: timestamp(self.created_at)?,
            last_login: self.last_login.map(timestamp).transpose()?,
            username: self.username,
            email: self.email,
            disabled: self.disabled,
            memory_enabled: self.memory_enabled,
        })
    }
}

/// What a login needs besides the user: the hash and the throttling state.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct CredentialsRow {
    #[diesel(embed)]
    pub user: UserRow,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
}

/// What token verification needs to know about a user.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct TokenStateRow {
    pub role: String,
    pub disabled: bool,
    pub token_version: i64,
}

/// A user to be inserted.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow<'a> {
    pub id: String,
    pub username: &'a str,
    pub username_key: String,
    pub password_hash: &'a str,
    pub email: Option<&'a str>,
    pub role: &'static str,
    pub created_at: i64,
}

/// A refresh token row (only the hash of the token).
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub(crate) struct RefreshTokenRow {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A session row, as stored and as read back.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub pinned: bool,
    pub archived: bool,
    pub message_count: i64,
    pub last_message_at: Option<i64>,
    pub last_message_preview: Option<String>,
    pub temporary: bool,
    pub model: Option<String>,
}

impl SessionRow {
    pub(crate) fn into_session(self) -> Result<Session, StoreError> {
        Ok(Session {
            id: parse("a session id", &self.id)?,
            user_id: parse("a user id", &self.user_id)?,
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
            message_count: count("a message count", self.message_count)?,
            title: self.title,
            last_message_preview: self.last_message_preview,
            pinned: self.pinned,
            archived: self.archived,
            temporary: self.temporary,
            model: self.model,
        })
    }
}

/// The columns a [`SessionUpdate`] changes; `None` leaves a column alone, and `Some(None)`
/// clears the model.
#[derive(AsChangeset)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionChanges<'a> {
    pub title: Option<&'a str>,
    pub updated_at: Option<i64>,
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
    pub temporary: Option<bool>,
    pub model: Option<Option<&'a str>>,
}

impl<'a> SessionChanges<'a> {
    /// The changes of `update`, made at `now`: only a new title moves `updated_at`.
    pub(crate) fn new(update: &'a SessionUpdate, now: i64) -> Self {
        Self {
            title: update.title.as_deref(),
            updated_at: update.title.as_ref().map(|_| now),
            pinned: update.pinned,
            archived: update.archived,
            temporary: update.temporary,
            model: update.model.as_ref().map(Option::as_deref),
        }
    }
}

/// An API key as listed: everything but the hash, which is inserted beside it.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl ApiKeyRow {
    pub(crate) fn into_api_key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: parse("an API key id", &self.id)?,
            user_id: parse("a user id", &self.user_id)?,
            created_at: timestamp(self.created_at)?,
            last_used_at: self.last_used_at.map(timestamp).transpose()?,
            name: self.name,
            prefix: self.prefix,
        })
    }
}

/// What verifying an API key needs: the key's id and last use, and its owner's state.
#[derive(Queryable)]
pub(crate) struct ApiKeyOwnerRow {
    pub id: String,
    pub last_used_at: Option<i64>,
    pub user_id: String,
    pub role: String,
    pub disabled: bool,
}

/// A message row, as stored and as read back.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
pub(crate) struct MessageRow {
    pub id: String,
    pub session_id: String,
    pub role: String,
    pub content: String,
    pub created_at: i64,
    pub token_count: Option<i64>,
}

impl MessageRow {
    pub(crate) fn into_message(self) -> Result<Message, StoreError> {
        let token_count = self
            .token_count
            .map(|n| u32::try_from(n).map_err(|_| corrupt("a token count", &n.to_string())))
            .transpose()?;
        Ok(Message {
            id: parse("a message id", &self.id)?,
            session_id: parse("a session id", &self.session_id)?,
            role: parse::<Role>("a message role", &self.role)?,
            created_at: timestamp(self.created_at)?,
            content: self.content,
            token_count,
        })
    }
}

/// A memory row, as stored and as read back.
#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = memories, treat_none_as_null = true)]
pub(crate) struct MemoryRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub content: String,
    pub source_session_id: Option<String>,
    pub created_at: i64,
    pub confidence: f32,
    pub updated_at: i64,
    pub embedding: Option<Vec<u8>>,
}

impl MemoryRow {
    pub(crate) fn into_record(self) -> Result<MemoryRecord, StoreError> {
        Ok(MemoryRecord {
            memory: Memory {
                id: parse("a memory id", &self.id)?,
                user_id: parse("a user id", &self.user_id)?,
                kind: parse::<MemoryKind>("a memory kind", &self.kind)?,
                source_session_id: self
                    .source_session_id
                    .as_deref()
                    .map(|id| parse("a session id", id))
                    .transpose()?,
                created_at: timestamp(self.created_at)?,
                content: self.content,
            },
            confidence: self.confidence,
            updated_at: timestamp(self.updated_at)?,
            embedding: self.embedding.as_deref().map(embedding::decode).transpose()?,
        })
    }
}

/// A session summary row, as stored and as read back.
#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = session_summaries, primary_key(session_id))]
pub(crate) struct SessionSummaryRow {
    pub session_id: String,
    pub through_message: String,
    pub content: String,
    pub covered_messages: i64,
    pub created_at: i64,
}

impl SessionSummaryRow {
    pub(crate) fn into_summary(self) -> Result<SessionSummary, StoreError> {
        Ok(SessionSummary {
            session_id: parse("a session id", &self.session_id)?,
            through_message: parse("a message id", &self.through_message)?,
            covered_messages: count("a summary's message count", self.covered_messages)?,
            created_at: timestamp(self.created_at)?,
            content: self.content,
        })
    }
}
