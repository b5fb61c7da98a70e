//! Session queries. Every statement filters by the owner, so another user's session id
//! matches no row and reads as "not found".

use diesel::prelude::*;
use diesel::{delete, insert_into, update};
use modelforge_core::{
    NewSession, Page, Session, SessionId, SessionPage, SessionQuery, SessionUpdate, StoreError, UserId,
};

use super::Conn;
use crate::db::errors::{db_error, is_foreign_key_violation, while_};
use crate::db::rows::{SessionChanges, SessionRow, now_micros};
use crate::db::schema::{messages, sessions};
use crate::db::sql::lower;

pub(super) fn not_found(id: SessionId) -> StoreError {
    StoreError::NotFound { what: "session", id: id.to_string() }
}

/// The owner's row with this id, as a query, update or delete target.
fn owned(
    owner: UserId,
    id: SessionId,
) -> diesel::dsl::Filter<
    diesel::dsl::Filter<sessions::table, diesel::dsl::Eq<sessions::id, String>>,
    diesel::dsl::Eq<sessions::user_id, String>,
> {
    sessions::table.filter(sessions::id.eq(id.to_string())).filter(sessions::user_id.eq(owner.to_string()))
}

/// Stores a session row as given (new, or imported).
pub(super) fn insert_row(conn: &mut Conn, row: &SessionRow) -> Result<(), StoreError> {
    insert_into(sessions::table).values(row).execute(conn).map_err(|err| {
        if is_foreign_key_violation(&err) {
            StoreError::NotFound { what: "user", id: row.user_id.clone() }
        } else {
            db_error("inserting a session", err)
        }
    })?;
    Ok(())
}

/// Starts an empty session.
pub(super) fn insert(conn: &mut Conn, owner: UserId, new: &NewSession) -> Result<Session, StoreError> {
    let now = now_micros();
    let row = SessionRow {
        id: SessionId::new().to_string(),
        user_id: owner.to_string(),
        title: new.title.clone(),
        created_at: now,
        updated_at: now,
        pinned: false,
        archived: false,
        message_count: 0,
        last_message_at: None,
        last_message_preview: None,
        temporary: new.temporary,
        model: new.model.clone(),
    };
    insert_row(conn, &row)?;
    row.into_session()
}

/// `%`, `_` and the escape character itself match literally.
fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// A page of the owner's sessions: pinned first, then most recently updated. The list
/// columns are kept on the session row, so this is one range scan of `sessions_user_list`.
pub(super) fn list(conn: &mut Conn, owner: UserId, query: &SessionQuery) -> Result<SessionPage, StoreError> {
    let Page { offset, limit } = query.page;
    let mut select = sessions::table
        .filter(sessions::user_id.eq(owner.to_string()))
        .filter(sessions::archived.eq(query.archived))
        .order((sessions::pinned.desc(), sessions::updated_at.desc(), sessions::id.desc()))
        .offset(offset as i64)
        // One more than asked for tells whether there is a next page.
        .limit(i64::from(limit) + 1)
        .select(SessionRow::as_select())
        .into_boxed();
    if let Some(pinned) = query.pinned {
        select = select.filter(sessions::pinned.eq(pinned));
    }
    if let Some(search) = &query.search {
        let pattern = like_pattern(search);
        let in_messages = messages::table
            .filter(lower(messages::content).like(pattern.clone()).escape('\\'))
            .select(messages::session_id);
        select = select
            .filter(lower(sessions::title).like(pattern).escape('\\').or(sessions::id.eq_any(in_messages)));
    }
    let mut rows: Vec<SessionRow> = select.load(conn).map_err(while_("listing sessions"))?;
    let next = (rows.len() > limit as usize).then(|| query.page.next());
    rows.truncate(limit as usize);
    let sessions = rows.into_iter().map(SessionRow::into_session).collect::<Result<_, _>>()?;
    Ok(SessionPage { sessions, next })
}

/// One of the owner's sessions.
pub(super) fn get(conn: &mut Conn, owner: UserId, id: SessionId) -> Result<Session, StoreError> {
    owned(owner, id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("loading a session"))?
        .ok_or_else(|| not_found(id))?
        .into_session()
}

/// Whether the owner has this session.
pub(super) fn exists(conn: &mut Conn, owner: UserId, id: SessionId) -> Result<bool, StoreError> {
    diesel::select(diesel::dsl::exists(owned(owner, id)))
        .get_result(conn)
        .map_err(while_("checking a session"))
}

/// Applies a checked update in one statement (the caller's transaction makes it and the
/// read-back one change). Only a new title moves `updated_at`.
pub(super) fn apply_update(
    conn: &mut Conn,
    owner: UserId,
    id: SessionId,
    change: &SessionUpdate,
) -> Result<Session, StoreError> {
    // Diesel refuses an empty SET clause; an empty update is a read.
    if change.is_empty() {
        return get(conn, owner, id);
    }
    let changed = update(owned(owner, id))
        .set(SessionChanges::new(change, now_micros()))
        .execute(conn)
        .map_err(while_("updating a session"))?;
    if changed == 0 {
        return Err(not_found(id));
    }
    get(conn, owner, id)
}

/// Counts a new message, which also takes the session row's write lock on PostgreSQL, so
/// appends to one session are serialized. Not found if the owner lacks the session.
/// Returns the title and the time of the newest message before this one.
pub(super) fn claim_for_append(
    conn: &mut Conn,
    owner: UserId,
    id: SessionId,
) -> Result<(String, Option<i64>), StoreError> {
    let changed = update(owned(owner, id))
        .set(sessions::message_count.eq(sessions::message_count + 1))
        .execute(conn)
        .map_err(while_("counting a new message"))?;
    if changed == 0 {
        return Err(not_found(id));
    }
    sessions::table
        .find(id.to_string())
        .select((sessions::title, sessions::last_message_at))
        .first(conn)
        .map_err(while_("loading a session for an append"))
}

/// Records the newest message on the session row: time, preview and (for an untitled
/// session) the title.
pub(super) fn record_last_message(
    conn: &mut Conn,
    id: SessionId,
    at: i64,
    preview: Option<String>,
    title: &str,
) -> Result<(), StoreError> {
    update(sessions::table.find(id.to_string()))
        .set((
            sessions::updated_at.eq(at),
            sessions::last_message_at.eq(at),
            sessions::last_message_preview.eq(preview),
            sessions::title.eq(title),
        ))
        .execute(conn)
        .map_err(while_("updating a session's last message"))?;
    Ok(())
}

/// Rewrites the message summary after messages were deleted.
pub(super) fn set_summary(
    conn: &mut Conn,
    id: SessionId,
    count: i64,
    last: Option<(i64, String)>,
) -> Result<(), StoreError> {
    let (last_at, preview) = last.map_or((None, None), |(at, preview)| (Some(at), Some(preview)));
    update(sessions::table.find(id.to_string()))
        .set((
            sessions::message_count.eq(count),
            sessions::last_message_at.eq(last_at),
            sessions::last_message_preview.eq(preview),
            sessions::updated_at.eq(now_micros()),
        ))
        .execute(conn)
        .map_err(while_("updating a session's summary"))?;
    Ok(())
}

/// Deletes a session; its messages and summary go with it (`ON DELETE CASCADE`).
pub(super) fn remove(conn: &mut Conn, owner: UserId, id: SessionId) -> Result<(), StoreError> {
    let deleted = delete(owned(owner, id)).execute(conn).map_err(while_("deleting a session"))?;
    if deleted == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// All of the owner's sessions, oldest first (for export).
pub(super) fn all(conn: &mut Conn, owner: UserId) -> Result<Vec<Session>, StoreError> {
    let rows: Vec<SessionRow> = sessions::table
        .filter(sessions::user_id.eq(owner.to_string()))
        .order((sessions::created_at.asc(), sessions::id.asc()))
        .select(SessionRow::as_select())
        .load(conn)
        .map_err(while_("exporting sessions"))?;
    rows.into_iter().map(SessionRow::into_session).collect()
}
