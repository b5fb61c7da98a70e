//! Database rows and their conversion to the core records.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use modelforge_core::{Memory, MemoryKind, Message, Role, Session, StoreError, User, UserRole};

use super::errors::corrupt;
use super::schema::{memories, messages, sessions, users};

/// Now, at the microsecond precision the database keeps, so a record returned by a write
/// equals the same record read back later.
pub(super) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Microseconds since the epoch to a timestamp.
pub(super) fn timestamp(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt("a timestamp", &micros.to_string()))
}

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T, StoreError> {
    value.parse().map_err(|_| corrupt(what, value))
}

/// A user as read back, without the password hash.
#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
pub(super) struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub created_at: i64,
    pub last_login: Option<i64>,
}

impl UserRow {
    pub(super) fn into_user(self) -> Result<User, StoreError> {
        Ok(User {
            id: parse("a user id", &self.id)?,
            role: parse::<UserRole>("a user role", &self.role)?,
            created_at: timestamp(self.created_at)?,
            last_login: self.last_login.map(timestamp).transpose()?,
            username: self.username,
            email: self.email,
        })
    }
}

/// A user to be inserted.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub(super) struct NewUserRow<'a> {
    pub id: String,
    pub username: &'a str,
    pub username_key: String,
    pub password_hash: &'a str,
    pub email: Option<&'a str>,
    pub role: &'static str,
    pub created_at: i64,
    pub last_login: Option<i64>,
}

/// A session row, as stored and as read back.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(diesel::sqlite::Sqlite))]
pub(super) struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SessionRow {
    pub(super) fn into_session(self, message_count: i64) -> Result<Session, StoreError> {
        Ok(Session {
            id: parse("a session id", &self.id)?,
            user_id: parse("a user id", &self.user_id)?,
            created_at: timestamp(self.created_at)?,
            updated_at: timestamp(self.updated_at)?,
            message_count: u64::try_from(message_count)
                .map_err(|_| corrupt("a message count", &message_count.to_string()))?,
            title: self.title,
        })
    }
}

/// A message row, as stored and as read back.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = messages, check_for_backend(diesel::sqlite::Sqlite))]
pub(super) struct MessageRow {
    pub id: String,
    pub session_id: String,
    pub role: String,
    pub content: String,
    pub created_at: i64,
}

impl MessageRow {
    pub(super) fn into_message(self) -> Result<Message, StoreError> {
        Ok(Message {
            id: parse("a message id", &self.id)?,
            session_id: parse("a session id", &self.session_id)?,
            role: parse::<Role>("a message role", &self.role)?,
            created_at: timestamp(self.created_at)?,
            content: self.content,
        })
    }
}

/// A memory row, as stored and as read back.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = memories, check_for_backend(diesel::sqlite::Sqlite))]
pub(super) struct MemoryRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub content: String,
    pub source_session_id: Option<String>,
    pub created_at: i64,
}

impl MemoryRow {
    pub(super) fn into_memory(self) -> Result<Memory, StoreError> {
        Ok(Memory {
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
        })
    }
}
