//! Helpers shared by this crate's integration tests.

use chrono::DateTime;
use modelforge_core::{Memory, MemoryId, MemoryKind, UserId};

/// A stored memory of `kind` with `content`, created `second` seconds after the epoch, so tests
/// control which memory is newest.
pub fn memory_at(second: i64, kind: MemoryKind, content: &str) -> Memory {
    Memory {
        id: MemoryId::new(),
        user_id: UserId::new(),
        kind,
        content: content.to_owned(),
        source_session_id: None,
        created_at: DateTime::from_timestamp(second, 0).expect("a valid timestamp"),
    }
}
