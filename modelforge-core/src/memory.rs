//! Turning conversations into memories: the [`MemoryExtractor`] trait.

use serde::{Deserialize, Serialize};

use crate::chat::ChatMessage;
use crate::error::MemoryError;
use crate::ids::MemoryId;
use crate::store::{Memory, MemoryKind};

/// One change to a user's knowledge base, decided by an extractor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum MemoryOp {
    /// Store a new memory.
    Add {
        /// Kind.
        kind: MemoryKind,
        /// The statement.
        content: String,
        /// How sure the extractor is, from 0 to 1 (rules: 1).
        #[serde(default = "full_confidence")]
        confidence: f32,
    },
    /// Replace an existing memory's content (e.g. the user moved).
    Update {
        /// The memory to change.
        id: MemoryId,
        /// The new statement.
        content: String,
    },
    /// Remove a memory (e.g. the user asked to forget it).
    Delete {
        /// The memory to remove.
        id: MemoryId,
    },
}

fn full_confidence() -> f32 {
    1.0
}

/// Reads a conversation turn and decides what to remember.
///
/// Like Mem0's consolidation step, the extractor sees the user's existing memories, so it can
/// update or delete instead of piling up contradictions.
pub trait MemoryExtractor: Send + Sync {
    /// A short name, e.g. `rules`.
    fn name(&self) -> &str;

    /// The operations implied by `turn` (usually the latest user message and reply), given
    /// the user's `existing` memories.
    fn extract(&self, turn: &[ChatMessage], existing: &[Memory]) -> Result<Vec<MemoryOp>, MemoryError>;
}
