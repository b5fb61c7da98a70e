//! Turning freshly extracted facts into operations against what is already stored.
//!
//! Like Mem0's consolidation step: a fact already known is skipped, a new value for a
//! single-valued slot (name, home) updates the memory holding the old one, and a like that
//! contradicts a stored dislike of the same thing (or the reverse) updates it, so the store
//! never holds both sides of a contradiction. A request to forget deletes the memories it
//! names: by their fact ("forget that I like olives") or by the words it names ("forget my
//! passport number").

use modelforge_core::{Memory, MemoryId, MemoryOp};

use crate::fact::Fact;
use crate::keywords::terms;
use crate::rules::Said;

/// What is known so far: stored memories, then facts added earlier in the same turn.
struct Known {
    fact: Fact,
    /// The stored memory holding the fact, if it is stored.
    id: Option<MemoryId>,
    /// The operation of this turn that wrote the fact, if any; revised rather than duplicated.
    op: Option<usize>,
}

/// The operations that bring `existing` up to date with `facts` (in the order they were said).
pub(crate) fn consolidate(said: impl IntoIterator<Item = Said>, existing: &[Memory]) -> Vec<MemoryOp> {
    let mut stored: Vec<&Memory> = existing.iter().collect();
    // Oldest first, so the newest memory of a slot is the one found from the back.
    stored.sort_by_key(|m| m.created_at);
    let mut known: Vec<Known> = stored
        .iter()
        .filter_map(|m| Fact::parse(&m.content).map(|fact| Known { fact, id: Some(m.id), op: None }))
        .collect();
    let mut deleted: Vec<MemoryId> = Vec::new();

    let mut ops = Vec::new();
    for said in said {
        let fact = match said {
            Said::Fact(fact) => fact,
            Said::Forget { facts, phrase } => {
                // By fact ("forget that I like olives" names the olives memory, whichever way
                // it was stored) or by the words named ("forget my locker code").
                let by_fact = |m: &Memory| {
                    let stored = Fact::parse(&m.content);
                    facts.iter().any(|f| {
                        stored
                            .as_ref()
                            .is_some_and(|s| f.slot.is_taste() == s.slot.is_taste() && f.same_subject(s))
                            || contains_terms(&m.content, &f.value)
                    })
                };
                let by_phrase = |m: &Memory| facts.is_empty() && contains_terms(&m.content, &phrase);
                for memory in stored.iter().filter(|m| by_fact(m) || by_phrase(m)) {
                    if !deleted.contains(&memory.id) {
                        deleted.push(memory.id);
                        ops.push(MemoryOp::Delete { id: memory.id });
                    }
                }
                known.retain(|k| k.id.is_none_or(|id| !deleted.contains(&id)));
                continue;
            }
        };
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
                ops.push(MemoryOp::Add { kind: fact.slot.kind(), content: fact.content(), confidence: 1.0 });
                known.push(Known { fact, id: None, op: Some(ops.len() - 1) });
            }
        }
    }
    ops
}

/// Whether every keyword of `phrase` (at least one) occurs in `content`.
fn contains_terms(content: &str, phrase: &str) -> bool {
    let wanted = terms(phrase);
    let have = terms(content);
    !wanted.is_empty() && wanted.iter().all(|t| have.contains(t))
}

fn set_content(op: &mut MemoryOp, new_content: String) {
    match op {
        MemoryOp::Add { content, .. } | MemoryOp::Update { content, .. } => *content = new_content,
        // Consolidation never deletes, so it never has a delete to revise.
        MemoryOp::Delete { .. } => {}
    }
}
