//! Memory queries, scoped to the owner like sessions.

use diesel::prelude::*;
use diesel::{delete, insert_into, update};
use modelforge_core::{MemoryDetails, MemoryId, MemoryRecord, MemoryUpdate, NewMemory, StoreError, UserId};

use super::{Conn, sessions};
use crate::db::errors::{db_error, is_foreign_key_violation, while_};
use crate::db::rows::{MemoryRow, now_micros};
use crate::db::schema::memories;
use crate::embedding;

fn not_found(id: MemoryId) -> StoreError {
    StoreError::NotFound { what: "memory", id: id.to_string() }
}

/// Stores a memory row as given (new, or imported).
pub(super) fn insert_row(conn: &mut Conn, row: &MemoryRow) -> Result<(), StoreError> {
    insert_into(memories::table).values(row).execute(conn).map_err(|err| {
        if is_foreign_key_violation(&err) {
            StoreError::NotFound { what: "user", id: row.user_id.clone() }
        } else {
            db_error("inserting a memory", err)
        }
    })?;
    Ok(())
}

/// Stores a memory; the caller runs this in a write transaction. A source session must
/// belong to the owner too, or the call is "session not found": a memory must not point into
/// another user's conversation.
pub(super) fn insert(
    conn: &mut Conn,
    owner: UserId,
    memory: &NewMemory,
    details: &MemoryDetails,
) -> Result<MemoryRecord, StoreError> {
    if let Some(session) = memory.source_session_id {
        if !sessions::exists(conn, owner, session)? {
            return Err(sessions::not_found(session));
        }
    }
    let now = now_micros();
    let row = MemoryRow {
        id: MemoryId::new().to_string(),
        user_id: owner.to_string(),
        kind: memory.kind.as_str().to_owned(),
        content: memory.content.clone(),
        source_session_id: memory.source_session_id.map(|id| id.to_string()),
        created_at: now,
        confidence: details.confidence,
        updated_at: now,
        embedding: details.embedding.as_deref().map(embedding::encode),
    };
    insert_row(conn, &row)?;
    row.into_record()
}

/// The owner's memories, oldest first.
pub(super) fn list(conn: &mut Conn, owner: UserId) -> Result<Vec<MemoryRecord>, StoreError> {
    let rows: Vec<MemoryRow> = memories::table
        .filter(memories::user_id.eq(owner.to_string()))
        .order((memories::created_at.asc(), memories::id.asc()))
        .select(MemoryRow::as_select())
        .load(conn)
        .map_err(while_("listing memories"))?;
    rows.into_iter().map(MemoryRow::into_record).collect()
}

fn get_row(conn: &mut Conn, owner: UserId, id: MemoryId) -> Result<MemoryRow, StoreError> {
    memories::table
        .filter(memories::id.eq(id.to_string()))
        .filter(memories::user_id.eq(owner.to_string()))
        .select(MemoryRow::as_select())
        .first(conn)
        .optional()
        .map_err(while_("loading a memory"))?
        .ok_or_else(|| not_found(id))
}

/// Applies a validated change to one of the owner's memories; the caller runs this in a
/// write transaction.
pub(super) fn apply_update(
    conn: &mut Conn,
    owner: UserId,
    id: MemoryId,
    change: &MemoryUpdate,
) -> Result<MemoryRecord, StoreError> {
    let mut row = get_row(conn, owner, id)?;
    if let Some(kind) = change.kind {
        row.kind = kind.as_str().to_owned();
    }
    if let Some(content) = &change.content {
        row.content.clone_from(content);
    }
    if let Some(confidence) = change.confidence {
        row.confidence = confidence;
    }
    if let Some(embedding) = &change.embedding {
        row.embedding = embedding.as_deref().map(embedding::encode);
    }
    row.updated_at = now_micros();
    update(memories::table.find(id.to_string()))
        .set(&row)
        .execute(conn)
        .map_err(while_("updating a memory"))?;
    row.into_record()
}

/// Deletes one of the owner's memories.
pub(super) fn remove(conn: &mut Conn, owner: UserId, id: MemoryId) -> Result<(), StoreError> {
    let deleted = delete(
        memories::table
            .filter(memories::id.eq(id.to_string()))
            .filter(memories::user_id.eq(owner.to_string())),
    )
    .execute(conn)
    .map_err(while_("deleting a memory"))?;
    if deleted == 0 { Err(not_found(id)) } else { Ok(()) }
}
