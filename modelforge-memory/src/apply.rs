//! Applying an extractor's operations to a store.

use modelforge_core::{Actor, Memory, MemoryError, MemoryOp, NewMemory, SessionId, SessionStore};

/// Applies `ops` in order through `store` on behalf of `actor`, and returns the memories added
/// or updated, in the order of their operations (deletions return nothing).
///
/// New memories record `session` as the session they were learned in. The operations are not
/// a transaction: if one fails, those before it stay applied and the error is returned.
pub fn apply_ops(
    store: &dyn SessionStore,
    actor: &Actor,
    session: Option<SessionId>,
    ops: &[MemoryOp],
) -> Result<Vec<Memory>, MemoryError> {
    let mut changed = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            MemoryOp::Add { kind, content, .. } => {
                let memory = NewMemory { kind: *kind, content: content.clone(), source_session_id: session };
                changed.push(store.add_memory(actor, &memory)?);
            }
            MemoryOp::Update { id, content } => changed.push(store.update_memory(actor, *id, content)?),
            MemoryOp::Delete { id } => store.delete_memory(actor, *id)?,
        }
    }
    tracing::debug!(ops = ops.len(), changed = changed.len(), "applied memory operations");
    Ok(changed)
}
