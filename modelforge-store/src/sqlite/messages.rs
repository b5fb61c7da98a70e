//! Message queries. Messages are reached only through a session the actor owns.

use diesel::prelude::*;
use diesel::{SqliteConnection, insert_into};
use modelforge_core::{ChatMessage, Message, MessageId, SessionId, StoreError, UserId};

use super::errors::{while_, write_transaction};
use super::rows::{MessageRow, now_micros};
use super::schema::messages;
use super::sessions;

/// Appends a message and bumps the session's `updated_at`, atomically.
pub(super) fn append(
    conn: &mut SqliteConnection,
    owner: UserId,
    session: SessionId,
    message: &ChatMessage,
) -> Result<Message, StoreError> {
    write_transaction(conn, "appending a message", |conn| {
        let now = now_micros();
        // Touching first doubles as the ownership check: no row updated means not found.
        sessions::touch(conn, owner, session, now)?;
        let row = MessageRow {
            id: MessageId::new().to_string(),
            session_id: session.to_string(),
            role: message.role.as_str().to_owned(),
            content: message.content.clone(),
            created_at: now,
        };
        insert_into(messages::table).values(&row).execute(conn).map_err(while_("inserting a message"))?;
        row.into_message()
    })
}

/// A session's messages in insertion order. Ties on the microsecond timestamp are broken by
/// the id, which is a UUIDv7 and therefore increases with creation.
pub(super) fn list(
    conn: &mut SqliteConnection,
    owner: UserId,
    session: SessionId,
) -> Result<Vec<Message>, StoreError> {
    sessions::with_owned_session(conn, owner, session, |conn| {
        let rows: Vec<MessageRow> = messages::table
            .filter(messages::session_id.eq(session.to_string()))
            .order((messages::created_at.asc(), messages::id.asc()))
            .select(MessageRow::as_select())
            .load(conn)
            .map_err(while_("listing messages"))?;
        rows.into_iter().map(MessageRow::into_message).collect()
    })
}
