//! Session queries. Every statement filters by the owner, so another user's session id
//! matches no row and reads as "not found".

use diesel::dsl::count;
use diesel::prelude::*;
use diesel::{SqliteConnection, delete, insert_into, update};
use modelforge_core::{Session, SessionId, StoreError, UserId};

use super::errors::{db_error, is_foreign_key_violation, read_transaction, while_, write_transaction};
use super::rows::{SessionRow, now_micros};
use super::schema::{messages, sessions};

pub(super) fn not_found(id: SessionId) -> StoreError {
    StoreError::NotFound { what: "session", id: id.to_string() }
}

/// Starts an empty session.
pub(super) fn insert(conn: &mut SqliteConnection, owner: UserId, title: &str) -> Result<Session, StoreError> {
    let now = now_micros();
    let row = SessionRow {
        id: SessionId::new().to_string(),
        user_id: owner.to_string(),
        title: title.to_owned(),
        created_at: now,
        updated_at: now,
    };
    insert_into(sessions::table).values(&row).execute(conn).map_err(|err| {
        if is_foreign_key_violation(&err) {
            StoreError::NotFound { what: "user", id: owner.to_string() }
        } else {
            db_error("inserting a session", err)
        }
    })?;
    row.into_session(0)
}

/// The owner's sessions with their message counts, most recently updated first.
pub(super) fn list(conn: &mut SqliteConnection, owner: UserId) -> Result<Vec<Session>, StoreError> {
    let rows: Vec<(SessionRow, i64)> = sessions::table
        .left_join(messages::table)
        .filter(sessions::user_id.eq(owner.to_string()))
        .group_by(sessions::id)
        .select((SessionRow::as_select(), count(messages::id.nullable())))
        .order((sessions::updated_at.desc(), sessions::id.desc()))
        .load(conn)
        .map_err(while_("listing sessions"))?;
    rows.into_iter().map(|(row, count)| row.into_session(count)).collect()
}

/// One of the owner's sessions with its message count.
pub(super) fn get(conn: &mut SqliteConnection, owner: UserId, id: SessionId) -> Result<Session, StoreError> {
    let row: Option<(SessionRow, i64)> = sessions::table
        .left_join(messages::table)
        .filter(sessions::id.eq(id.to_string()))
        .filter(sessions::user_id.eq(owner.to_string()))
        .group_by(sessions::id)
        .select((SessionRow::as_select(), count(messages::id.nullable())))
        .first(conn)
        .optional()
        .map_err(while_("loading a session"))?;
    let (row, count) = row.ok_or_else(|| not_found(id))?;
    row.into_session(count)
}

/// Whether the owner has this session.
pub(super) fn exists(conn: &mut SqliteConnection, owner: UserId, id: SessionId) -> Result<bool, StoreError> {
    diesel::select(diesel::dsl::exists(
        sessions::table
            .filter(sessions::id.eq(id.to_string()))
            .filter(sessions::user_id.eq(owner.to_string())),
    ))
    .get_result(conn)
    .map_err(while_("checking a session"))
}

/// Renames a session and marks it updated.
pub(super) fn rename(
    conn: &mut SqliteConnection,
    owner: UserId,
    id: SessionId,
    title: &str,
) -> Result<Session, StoreError> {
    write_transaction(conn, "renaming a session", |conn| {
        let changed = update(owned(owner, id))
            .set((sessions::title.eq(title), sessions::updated_at.eq(now_micros())))
            .execute(conn)
            .map_err(while_("renaming a session"))?;
        if changed == 0 {
            return Err(not_found(id));
        }
        get(conn, owner, id)
    })
}

/// Marks a session updated, e.g. when a message arrives. Not found if the owner lacks it.
pub(super) fn touch(
    conn: &mut SqliteConnection,
    owner: UserId,
    id: SessionId,
    now: i64,
) -> Result<(), StoreError> {
    let changed = update(owned(owner, id))
        .set(sessions::updated_at.eq(now))
        .execute(conn)
        .map_err(while_("updating a session's timestamp"))?;
    if changed == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// Deletes a session; its messages go with it (`ON DELETE CASCADE`).
pub(super) fn remove(conn: &mut SqliteConnection, owner: UserId, id: SessionId) -> Result<(), StoreError> {
    let deleted = delete(owned(owner, id)).execute(conn).map_err(while_("deleting a session"))?;
    if deleted == 0 { Err(not_found(id)) } else { Ok(()) }
}

/// Runs `f` once the owner is known to have session `id`, check and reads in one snapshot.
pub(super) fn with_owned_session<T>(
    conn: &mut SqliteConnection,
    owner: UserId,
    id: SessionId,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    read_transaction(conn, "reading a session", |conn| {
        if !exists(conn, owner, id)? {
            return Err(not_found(id));
        }
        f(conn)
    })
}

/// The owner's row with this id, as an update or delete target.
fn owned(
    owner: UserId,
    id: SessionId,
) -> diesel::dsl::Filter<
    diesel::dsl::Filter<sessions::table, diesel::dsl::Eq<sessions::id, String>>,
    diesel::dsl::Eq<sessions::user_id, String>,
> {
    sessions::table.filter(sessions::id.eq(id.to_string())).filter(sessions::user_id.eq(owner.to_string()))
}
