//! Session summary queries: one cached summary per session, reached only through a session
//! the actor owns.
//!
//! A summary refers to the newest message it covers, and the schema deletes it with that
//! message (`ON DELETE CASCADE`), so deleting the messages after an earlier one drops a
//! summary that covered them, without any code here having to remember to.

use diesel::insert_into;
use diesel::prelude::*;
use modelforge_core::{MessageId, SessionId, SessionSummary, StoreError, UserId};

use super::{Conn, sessions};
use crate::db::errors::{db_error, is_foreign_key_violation, while_};
use crate::db::rows::{SessionSummaryRow, now_micros};
use crate::db::schema::{messages, session_summaries};

/// Stores the summary of the owner's session, replacing any earlier one; the caller runs this
/// in a write transaction. The session must be the owner's and `through_message` one of its
/// messages.
pub(super) fn save(
    conn: &mut Conn,
    owner: UserId,
    session: SessionId,
    through_message: MessageId,
    covered_messages: i64,
    content: &str,
) -> Result<SessionSummary, StoreError> {
    if !sessions::exists(conn, owner, session)? {
        return Err(sessions::not_found(session));
    }
    let in_session: bool = diesel::select(diesel::dsl::exists(
        messages::table
            .filter(messages::id.eq(through_message.to_string()))
            .filter(messages::session_id.eq(session.to_string())),
    ))
    .get_result(conn)
    .map_err(while_("checking a summary's message"))?;
    if !in_session {
        return Err(StoreError::NotFound { what: "message", id: through_message.to_string() });
    }
    let row = SessionSummaryRow {
        session_id: session.to_string(),
        through_message: through_message.to_string(),
        content: content.to_owned(),
        covered_messages,
        created_at: now_micros(),
    };
    // An upsert rather than delete-then-insert: two replicas saving at once must not collide
    // on the primary key.
    insert_into(session_summaries::table)
        .values(&row)
        .on_conflict(session_summaries::session_id)
        .do_update()
        .set(&row)
        .execute(conn)
        .map_err(|err| {
            // Only if the message was deleted since the check, by another replica.
            if is_foreign_key_violation(&err) {
                StoreError::NotFound { what: "message", id: through_message.to_string() }
            } else {
                db_error("saving a session summary", err)
            }
        })?;
    row.into_summary()
}

/// The summary of the owner's session, if it has one.
pub(super) fn get(
    conn: &mut Conn,
    owner: UserId,
    session: SessionId,
) -> Result<Option<SessionSummary>, StoreError> {
    if !sessions::exists(conn, owner, session)? {
        return Err(sessions::not_found(session));
    }
    session_summaries::table
        .find(session.to_string())
        .select(SessionSummaryRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("loading a session summary"))?
        .map(SessionSummaryRow::into_summary)
        .transpose()
}
