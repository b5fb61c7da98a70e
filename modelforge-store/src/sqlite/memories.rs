//! Memory queries, scoped to the owner like sessions.

use diesel::prelude::*;
use diesel::{SqliteConnection, delete, insert_into, update};
use modelforge_core::{Memory, MemoryId, NewMemory, StoreError, UserId};

use super::errors::{db_error, is_foreign_key_violation, while_, write_transaction};
use super::rows::{MemoryRow, now_micros};
use super::schema::memories;
use super::sessions;

fn not_found(id: MemoryId) -> StoreError {
    StoreError::NotFound { what: "memory", id: id.to_string() }
}

/// Stores a memory. A source session must belong to the owner too, or the call is
/// "session not found": a memory must not point into another user's conversation.
pub(super) fn insert(
    conn: &mut SqliteConnection,
    owner: UserId,
    memory: &NewMemory,
) -> Result<Memory, StoreError> {
    write_transaction(conn, "adding a memory", |conn| {
        if let Some(session) = memory.source_session_id {
            if !sessions::exists(conn, owner, session)? {
                return Err(sessions::not_found(session));
            }
        }
        let row = MemoryRow {
            id: MemoryId::new().to_string(),
            user_id: owner.to_string(),
            kind: memory.kind.as_str().to_owned(),
            content: memory.content.clone(),
            source_session_id: memory.source_session_id.map(|id| id.to_string()),
            created_at: now_micros(),
        };
        insert_into(memories::table).values(&row).execute(conn).map_err(|err| {
            if is_foreign_key_violation(&err) {
                StoreError::NotFound { what: "user", id: owner.to_string() }
            } else {
                db_error("inserting a memory", err)
            }
        })?;
        row.into_memory()
    })
}

/// The owner's memories, oldest first.
pub(super) fn list(conn: &mut SqliteConnection, owner: UserId) -> Result<Vec<Memory>, StoreError> {
    let rows: Vec<MemoryRow> = memories::table
        .filter(memories::user_id.eq(owner.to_string()))
        .order((memories::created_at.asc(), memories::id.asc()))
        .select(MemoryRow::as_select())
        .load(conn)
        .map_err(while_("listing memories"))?;
    rows.into_iter().map(MemoryRow::into_memory).collect()
}

/// Replaces one of the owner's memories' content.
pub(super) fn update_content(
    conn: &mut SqliteConnection,
    owner: UserId,
    id: MemoryId,
    content: &str,
) -> Result<Memory, StoreError> {
    write_transaction(conn, "updating a memory", |conn| {
        let changed = update(
            memories::table
                .filter(memories::id.eq(id.to_string()))
                .filter(memories::user_id.eq(owner.to_string())),
        )
        .set(memories::content.eq(content))
        .execute(conn)
        .map_err(while_("updating a memory"))?;
        if changed == 0 {
            return Err(not_found(id));
        }
        memories::table
            .find(id.to_string())
            .select(MemoryRow::as_select())
            .first(conn)
            .map_err(while_("reloading an updated memory"))?
            .into_memory()
    })
}

/// Deletes one of the owner's memories.
pub(super) fn remove(conn: &mut SqliteConnection, owner: UserId, id: MemoryId) -> Result<(), StoreError> {
    let deleted = delete(
        memories::table
            .filter(memories::id.eq(id.to_string()))
            .filter(memories::user_id.eq(owner.to_string())),
    )
    .execute(conn)
    .map_err(while_("deleting a memory"))?;
    if deleted == 0 { Err(not_found(id)) } else { Ok(()) }
}
