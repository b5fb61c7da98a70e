//! Export and import of all of a user's data.

use std::collections::HashMap;

use chrono::Utc;
use modelforge_core::{
    ImportSummary, MemoryId, MessageId, SessionExport, SessionId, StoreError, UserExport, UserId,
};

use super::{Conn, memories, messages, sessions, users};
use crate::db::rows::{MemoryRow, MessageRow, SessionRow};
use crate::{embedding, text};

/// Everything the owner has; the caller runs this in a read transaction (one snapshot).
pub(super) fn export(conn: &mut Conn, owner: UserId) -> Result<UserExport, StoreError> {
    let user = users::get(conn, owner)?;
    let sessions = sessions::all(conn, owner)?
        .into_iter()
        .map(|session| Ok(SessionExport { messages: messages::all(conn, session.id)?, session }))
        .collect::<Result<_, StoreError>>()?;
    Ok(UserExport {
        format_version: UserExport::FORMAT_VERSION,
        exported_at: Utc::now(),
        user,
        sessions,
        memories: memories::list(conn, owner)?,
    })
}

/// Adds a validated export to the owner's data with fresh ids; the caller runs this in a
/// write transaction, so a failure leaves nothing behind.
pub(super) fn import(
    conn: &mut Conn,
    owner: UserId,
    export: &UserExport,
) -> Result<ImportSummary, StoreError> {
    let mut summary = ImportSummary::default();
    let mut new_ids: HashMap<SessionId, SessionId> = HashMap::new();
    for entry in &export.sessions {
        let id = SessionId::new();
        new_ids.insert(entry.session.id, id);
        let rows = message_rows(id, entry);
        let last = rows.last();
        let session = &entry.session;
        sessions::insert_row(
            conn,
            &SessionRow {
                id: id.to_string(),
                user_id: owner.to_string(),
                title: session.title.clone(),
                created_at: session.created_at.timestamp_micros(),
                updated_at: session.updated_at.timestamp_micros(),
                pinned: session.pinned,
                archived: session.archived,
                message_count: rows.len() as i64,
                last_message_at: last.map(|row| row.created_at),
                last_message_preview: last.map(|row| text::preview(&row.content)),
                temporary: session.temporary,
                model: session.model.clone(),
            },
        )?;
        messages::insert_rows(conn, &rows)?;
        summary.sessions += 1;
        summary.messages += rows.len() as u64;
    }
    for record in &export.memories {
        let memory = &record.memory;
        memories::insert_row(
            conn,
            &MemoryRow {
                id: MemoryId::new().to_string(),
                user_id: owner.to_string(),
                kind: memory.kind.as_str().to_owned(),
                content: memory.content.clone(),
                // A source session that is not part of the export is gone: unlink it.
                source_session_id: memory
                    .source_session_id
                    .and_then(|old| new_ids.get(&old))
                    .map(ToString::to_string),
                created_at: memory.created_at.timestamp_micros(),
                confidence: record.confidence,
                updated_at: record.updated_at.timestamp_micros(),
                embedding: record.embedding.as_deref().map(embedding::encode),
            },
        )?;
        summary.memories += 1;
    }
    Ok(summary)
}

/// The rows of an exported session's messages under its new id, in their original order,
/// with times made strictly increasing like appended messages.
fn message_rows(session: SessionId, entry: &SessionExport) -> Vec<MessageRow> {
    let mut ordered: Vec<_> = entry.messages.iter().collect();
    ordered.sort_by_key(|message| message.created_at);
    let mut previous = i64::MIN;
    ordered
        .into_iter()
        .map(|message| {
            let created_at = message.created_at.timestamp_micros().max(previous.saturating_add(1));
            previous = created_at;
            MessageRow {
                id: MessageId::new().to_string(),
                session_id: session.to_string(),
                role: message.role.as_str().to_owned(),
                content: message.content.clone(),
                created_at,
                token_count: message.token_count.map(i64::from),
            }
        })
        .collect()
}
