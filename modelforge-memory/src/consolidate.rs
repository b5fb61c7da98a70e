//! Turning freshly extracted facts into operations against what is already stored.
//!
//! Like Mem0's consolidation step: a fact already known is skipped, a new value for a
//! single-valued slot (name, home) updates the memory holding the old one, and a like that
//! contradicts a stored dislike of the same thing (or the reverse) updates it, so the store
//! never holds both sides of a contradiction. A request to forget deletes the memories it
//! names: by their fact ("forget that I like olives"), by topic ("forget my job": every memory
//! about the user's work), or by the words it names ("forget my passport number"). A statement
//! kept in the user's own words goes stale when a newer statement speaks about its topic (see
//! `Turn::supersede`).

use std::sync::LazyLock;

use modelforge_core::{Memory, MemoryId, MemoryOp};
use regex::Regex;

use crate::fact::{Fact, Slot, is_eating_pattern};
use crate::keywords::terms;
use crate::rules::{Said, Topic, topics_of};

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
    let mut turn = Turn::new(existing);
    for said in said {
        match said {
            Said::Fact(fact) => turn.learn(fact),
            Said::Forget { facts, phrase, topics } => turn.forget(&facts, &phrase, &topics),
        }
    }
    turn.ops
}

/// The state of one turn's consolidation.
struct Turn<'m> {
    /// The stored memories, oldest first, so the newest memory of a slot is found from the back.
    stored: Vec<&'m Memory>,
    known: Vec<Known>,
    deleted: Vec<MemoryId>,
    ops: Vec<MemoryOp>,
}

impl<'m> Turn<'m> {
    fn new(existing: &'m [Memory]) -> Self {
        let mut stored: Vec<&Memory> = existing.iter().collect();
        stored.sort_by_key(|m| m.created_at);
        let known = stored
            .iter()
            .filter_map(|m| Fact::parse(&m.content).map(|fact| Known { fact, id: Some(m.id), op: None }))
            .collect();
        Self { stored, known, deleted: Vec::new(), ops: Vec::new() }
    }

    /// Skips a known fact, updates the memory it revises, or adds it.
    fn learn(&mut self, fact: Fact) {
        let known = self.known.iter().rposition(|k| k.fact.same_subject(&fact));
        if known.is_none_or(|i| !self.known[i].fact.same_as(&fact)) {
            self.supersede(&fact);
        }
        match self.known.iter().rposition(|k| k.fact.same_subject(&fact)) {
            Some(i) if self.known[i].fact.same_as(&fact) => {}
            Some(i) => {
                let entry = &mut self.known[i];
                let content = fact.content();
                if let Some(op) = entry.op {
                    set_content(&mut self.ops[op], content);
                } else if let Some(id) = entry.id {
                    entry.op = Some(self.ops.len());
                    self.ops.push(MemoryOp::Update { id, content });
                }
                entry.fact = fact;
            }
            None => {
                let op = MemoryOp::Add { kind: fact.slot.kind(), content: fact.content(), confidence: 1.0 };
                self.ops.push(op);
                self.known.push(Known { fact, id: None, op: Some(self.ops.len() - 1) });
            }
        }
    }

    /// Deletes the stored memories a new statement makes stale: older statements in the
    /// user's own words about the same topic of one value (name, home, work, pronouns), or
    /// about any topic when the new statement tells of a change ("gave up keto") or is a way
    /// of eating ("vegan");
    /// and, when the new statement is itself in the user's own words and tells of a change
    /// ("we've moved up to Glasgow"), the facts of its topics of one value.
    fn supersede(&mut self, fact: &Fact) {
        let content = fact.content();
        // A new way of eating is a change too ("vegan" after "keto").
        let changes = tells_of_change(&fact.value) || is_eating_pattern(fact);
        let topics: Vec<Topic> =
            topics_of(&content).into_iter().filter(|t| changes || t.has_one_value()).collect();
        if topics.is_empty() {
            return;
        }
        for memory in &self.stored {
            let Some(old) = Fact::parse(&memory.content) else { continue };
            let stale = match old.slot {
                Slot::Said => true,
                slot => fact.slot == Slot::Said && changes && slot.is_single(),
            };
            let about = topics_of(&memory.content).iter().any(|t| topics.contains(t));
            if stale && about && !self.deleted.contains(&memory.id) {
                self.deleted.push(memory.id);
                self.ops.push(MemoryOp::Delete { id: memory.id });
            }
        }
        let deleted = &self.deleted;
        self.known.retain(|k| k.id.is_none_or(|id| !deleted.contains(&id)));
    }

    /// Deletes every stored memory the request names.
    fn forget(&mut self, facts: &[Fact], phrase: &str, topics: &[Topic]) {
        // A memory rewritten earlier in this turn says what the user says now ("I moved to
        // Paris, so forget that I live in Lyon").
        let rewritten: Vec<MemoryId> =
            self.known.iter().filter(|k| k.op.is_some()).filter_map(|k| k.id).collect();
        for memory in &self.stored {
            let named = !rewritten.contains(&memory.id) && forgets(facts, phrase, topics, memory);
            if named && !self.deleted.contains(&memory.id) {
                self.deleted.push(memory.id);
                self.ops.push(MemoryOp::Delete { id: memory.id });
            }
        }
        let deleted = &self.deleted;
        self.known.retain(|k| k.id.is_none_or(|id| !deleted.contains(&id)));
    }
}

/// Whether a request to forget `facts`, `phrase` and `topics` names `memory`.
///
/// By topic ("forget my job" names every memory about work); by fact ("forget that I like
/// olives" names the olives memory, whichever way it was stored, and any taste or free text
/// that mentions olives, but not "The user's dog is called Olive."); or else by the words
/// named ("forget my locker code").
fn forgets(facts: &[Fact], phrase: &str, topics: &[Topic], memory: &Memory) -> bool {
    if !topics.is_empty() && topics_of(&memory.content).iter().any(|t| topics.contains(t)) {
        return true;
    }
    let stored = Fact::parse(&memory.content);
    let by_fact = facts.iter().any(|f| match &stored {
        Some(s) if !matches!(s.slot, Slot::Remember | Slot::Said) => names_stored_fact(f, s, &memory.content),
        _ => contains_terms(&memory.content, &f.value),
    });
    by_fact || (facts.is_empty() && topics.is_empty() && contains_terms(&memory.content, phrase))
}

/// Whether a fact to forget names a stored one: a like or dislike any taste about the same
/// thing, anything else a fact of its own slot about the same subject; for a slot of one value,
/// a word of the value must be in common ("forget that I live in Lyon" keeps "lives in Paris").
fn names_stored_fact(forget: &Fact, stored: &Fact, content: &str) -> bool {
    let comparable = forget.slot == stored.slot || (forget.slot.is_taste() && stored.slot.is_taste());
    let mentioned = contains_terms(content, &forget.value);
    if forget.slot.is_single() {
        return comparable && mentioned;
    }
    comparable && (forget.same_subject(stored) || mentioned)
}

/// Words that tell of a change ("moved", "new job", "switched", "搬到", "辞职").
static CHANGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:moved|relocated|new\s+(?:job|role|position|place|flat|house|apartment|home|name)|switched|quit|no\s+longer|anymore|retired|got\s+promoted|changed|gave\s+up|stopped)\b|搬到|搬去|搬家|换了|辞职|辞掉|转行|新工作|不再|已经不|退休|跳槽|入职|改名|改成|戒了",
    )
    .expect("the change pattern compiles")
});

fn tells_of_change(text: &str) -> bool {
    CHANGE.is_match(text)
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
