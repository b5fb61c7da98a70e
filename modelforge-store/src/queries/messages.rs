//! Message queries. Messages are reached only through a session the actor owns.

use diesel::prelude::*;
use diesel::{delete, insert_into};
use modelforge_core::{
    ChatMessage, Message, MessageId, MessagePage, Page, Role, SessionId, StoreError, UserId,
};

use super::{Conn, sessions};
use crate::db::errors::while_;
use crate::db::rows::{MessageRow, now_micros};
use crate::db::schema::messages;
use crate::text;

/// Appends a message; the caller runs this in a write transaction.
///
/// Its time is strictly after the session's newest message, even if the clock stepped back
/// or two appends fell in one microsecond: ordering by time is always insertion order.
pub(super) fn append(
    conn: &mut Conn,
    owner: UserId,
    session: SessionId,
    message: &ChatMessage,
    token_count: Option<u32>,
) -> Result<Message, StoreError> {
    let (title, last_at) = sessions::claim_for_append(conn, owner, session)?;
    let created_at = last_at.map_or(now_micros(), |last| now_micros().max(last + 1));
    let title = if title.is_empty() && message.role == Role::User {
        text::auto_title(&message.content)
    } else {
        title
    };
    sessions::record_last_message(conn, session, created_at, Some(text::preview(&message.content)), &title)?;
    let row = MessageRow {
        id: MessageId::new().to_string(),
        session_id: session.to_string(),
        role: message.role.as_str().to_owned(),
        content: message.content.clone(),
        created_at,
        token_count: token_count.map(i64::from),
    };
    insert_rows(conn, std::slice::from_ref(&row))?;
    row.into_message()
}

/// Stores message rows as given (for appends and imports).
pub(super) fn insert_rows(conn: &mut Conn, rows: &[MessageRow]) -> Result<(), StoreError> {
    // Bounded batches: SQLite allows at most 32766 bind parameters per statement.
    for chunk in rows.chunks(1000) {
        insert_into(messages::table).values(chunk).execute(conn).map_err(while_("inserting messages"))?;
    }
    Ok(())
}

/// All of a session's messages in insertion order; the caller checked ownership. Ties on
/// the timestamp (possible only in rows written by older versions) are broken by the id,
/// a UUIDv7 that increases with creation.
pub(super) fn all(conn: &mut Conn, session: SessionId) -> Result<Vec<Message>, StoreError> {
    let rows: Vec<MessageRow> = messages::table
        .filter(messages::session_id.eq(session.to_string()))
        .order((messages::created_at.asc(), messages::id.asc()))
        .select(MessageRow::as_select())
        .load(conn)
        .map_err(while_("listing messages"))?;
    rows.into_iter().map(MessageRow::into_message).collect()
}

/// A page of a session's messages, oldest first; the caller checked ownership.
pub(super) fn page(conn: &mut Conn, session: SessionId, page: Page) -> Result<MessagePage, StoreError> {
    let mut rows: Vec<MessageRow> = messages::table
        .filter(messages::session_id.eq(session.to_string()))
        .order((messages::created_at.asc(), messages::id.asc()))
        .offset(page.offset as i64)
        .limit(i64::from(page.limit) + 1)
        .select(MessageRow::as_select())
        .load(conn)
        .map_err(while_("listing messages"))?;
    let next = (rows.len() > page.limit as usize).then(|| page.next());
    rows.truncate(page.limit as usize);
    let messages = rows.into_iter().map(MessageRow::into_message).collect::<Result<_, _>>()?;
    Ok(MessagePage { messages, next })
}

/// Deletes the messages after `message` in the owner's session (and `message` itself when
/// `inclusive`) and refreshes the session's list columns (count, preview); the caller runs
/// this in a write transaction. A conversation summary through a deleted message goes with
/// it (`ON DELETE CASCADE`).
pub(super) fn delete_after(
    conn: &mut Conn,
    owner: UserId,
    session: SessionId,
    message: MessageId,
    inclusive: bool,
) -> Result<u64, StoreError> {
    if !sessions::exists(conn, owner, session)? {
        return Err(sessions::not_found(session));
    }
    let (at, id): (i64, String) = messages::table
        .filter(messages::id.eq(message.to_string()))
        .filter(messages::session_id.eq(session.to_string()))
        .select((messages::created_at, messages::id))
        .first(conn)
        .optional()
        .map_err(while_("finding a message"))?
        .ok_or_else(|| StoreError::NotFound { what: "message", id: message.to_string() })?;
    let later = messages::created_at.gt(at).or(messages::created_at.eq(at).and(messages::id.gt(&id)));
    let mut deleted =
        delete(messages::table.filter(messages::session_id.eq(session.to_string())).filter(later))
            .execute(conn)
            .map_err(while_("deleting messages"))?;
    if inclusive {
        deleted += delete(messages::table.find(&id)).execute(conn).map_err(while_("deleting a message"))?;
    }
    let count: i64 = messages::table
        .filter(messages::session_id.eq(session.to_string()))
        .count()
        .get_result(conn)
        .map_err(while_("counting messages"))?;
    let last: Option<(i64, String)> = messages::table
        .filter(messages::session_id.eq(session.to_string()))
        .order((messages::created_at.desc(), messages::id.desc()))
        .select((messages::created_at, messages::content))
        .first(conn)
        .optional()
        .map_err(while_("finding the newest message"))?;
    sessions::set_summary(conn, session, count, last.map(|(at, content)| (at, text::preview(&content))))?;
    Ok(deleted as u64)
}
