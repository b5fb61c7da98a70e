//! Turning freshly extracted facts into operations against what is already stored.
//!
//! Like Mem0's consolidation step: a fact already known is skipped, a new value for a
//! single-valued slot (name, home) updates the memory holding the old one, and a like that
//! contradicts a stored dislike of the same thing (or the reverse) updates it, so the store
//! never holds both sides of a contradiction.

use modelforge_core::{Memory, MemoryId, MemoryOp};

use crate::fact::Fact;

/// What is known so far: stored memories, then facts added earlier in the same turn.
struct Known {
    fact: Fact,
    /// The stored memory holding the fact, if it is stored.
    id: Option<MemoryId>,
    /// The operation of this turn that wrote the fact, if any; revised rather than duplicated.
    op: Option<usize>,
}

/// The operations that bring `existing` up to date with `facts` (in the order they were said).
pub(crate) fn consolidate(facts: impl IntoIterator<Item = Fact>, existing: &[Memory]) -> Vec<MemoryOp> {
    let mut stored: Vec<&Memory> = existing.iter().collect();
    // Oldest first, so the newest memory of a slot is the one found from the back.
    stored.sort_by_key(|m| m.created_at);
    let mut known: Vec<Known> = stored
        .into_iter()
        .filter_map(|m| Fact::parse(&m.content).map(|fact| Known { fact, id: Some(m.id), op: None }))
        .collect();

    let mut ops = Vec::new();
    for fact in facts {
        match known.iter().rposition(|k| k.fact.same_subject(&fact)) {
            Some(i) if known[i].fact.same_as(&fact) => {}
            Some(i) => {
                let entry = &mut known[i];
                let content = fact.content();
                if let Some(op) = entry.op {
                    set_content(&mut ops[op], content);
                } else if let Some(id) = entry.id {
                    entry.op = Some(ops.len());
                    ops.push(MemoryOp::Update { id, content });
                }
                entry.fact = fact;
            }
            None => {
                ops.push(MemoryOp::Add { kind: fact.slot.kind(), content: fact.content() });
                known.push(Known { fact, id: None, op: Some(ops.len() - 1) });
            }
        }
    }
    ops
}

fn set_content(op: &mut MemoryOp, new_content: String) {
    match op {
        MemoryOp::Add { content, .. } | MemoryOp::Update { content, .. } => *content = new_content,
        // Consolidation never deletes, so it never has a delete to revise.
        MemoryOp::Delete { .. } => {}
    }
}
