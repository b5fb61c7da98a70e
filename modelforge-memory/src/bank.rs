//! A user's knowledge base: the store's memories with an in-memory search index per user, kept
//! in step with every change made through the bank.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use modelforge_core::{
    Actor, ChatMessage, Embedder, Memory, MemoryDetails, MemoryError, MemoryExtractor, MemoryId, MemoryKind,
    MemoryOp, MemoryRecord, MemoryStore, MemoryUpdate, NewMemory, SessionId, UserId,
};
use serde::{Deserialize, Serialize};

use crate::fact::Fact;
use crate::index::{Hit, MemoryIndex, SearchOptions};
use crate::keywords::terms;

/// How [`MemoryBank::recall`] chooses the memories for a prompt.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecallOptions {
    /// How the memories that compete for room are ranked, and how many of them are taken.
    pub search: SearchOptions,
    /// The tokens memories may take in the prompt (their share of the context budget).
    pub budget_tokens: usize,
    /// The session being answered: memories learned in it are left out.
    pub exclude_session: Option<SessionId>,
}

impl Default for RecallOptions {
    /// The default search, 448 tokens (25% of a 2048-token context less a 256-token reply),
    /// no session excluded.
    fn default() -> Self {
        Self { search: SearchOptions::default(), budget_tokens: 448, exclude_session: None }
    }
}

/// Words of memories about health and diet: an assistant that forgets them can hurt someone.
const SAFETY_WORDS: [&str; 24] = [
    "allerg",
    "intoleran",
    "celiac",
    "coeliac",
    "diabet",
    "vegetarian",
    "vegan",
    "halal",
    "kosher",
    "gluten",
    "pregnan",
    "asthma",
    "epilep",
    "health",
    "medic",
    "过敏",
    "不耐受",
    "糖尿病",
    "素食",
    "清真",
    "怀孕",
    "哮喘",
    "癫痫",
    "忌口",
];

fn keeps_the_user_safe(memory: &Memory) -> bool {
    let text = memory.content.to_lowercase();
    SAFETY_WORDS.iter().any(|word| text.contains(word))
}

/// When a new fact counts as a memory already known, or as a new version of one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationOptions {
    /// How many of the most similar memories a new fact is compared with (Mem0 uses 5).
    pub compare_with: usize,
    /// At or above this cosine similarity (or an identical text) the fact is already known:
    /// nothing is stored.
    pub duplicate_similarity: f32,
    /// At or above this similarity, a fact of the same kind replaces the memory it resembles
    /// ("works at Acme" after "works at Initech").
    pub update_similarity: f32,
}

impl Default for ConsolidationOptions {
    /// Compare with 5, duplicates at 0.92, updates at 0.8.
    fn default() -> Self {
        Self { compare_with: 5, duplicate_similarity: 0.92, update_similarity: 0.8 }
    }
}

/// What [`MemoryBank::learn`] did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// Memories added or updated, in order.
    pub changed: Vec<Memory>,
    /// Memories deleted (the user asked to forget them).
    pub deleted: Vec<MemoryId>,
    /// New facts skipped because a memory already says the same.
    pub duplicates: usize,
    /// Extractors that failed, with their error; the others' results are kept.
    pub failures: Vec<String>,
}

/// The memories of every user, searchable by meaning and keywords, scoped to the acting user.
///
/// The store stays the source of truth: the bank loads a user's memories on first use (and
/// embeds and saves any that have no vector yet), then applies every change to the store first
/// and to its index second. Changes made to the store behind the bank's back (another process)
/// are seen after [`MemoryBank::reload`].
pub struct MemoryBank {
    store: Arc<dyn MemoryStore>,
    embedder: Option<Arc<dyn Embedder>>,
    consolidation: ConsolidationOptions,
    indexes: Mutex<HashMap<UserId, Arc<Mutex<MemoryIndex>>>>,
}

impl MemoryBank {
    /// A bank over `store` (any [`MemoryStore`]; an `Arc<dyn SessionStore>` coerces to it); with
    /// an `embedder`, search uses meaning as well as keywords.
    pub fn new(store: Arc<dyn MemoryStore>, embedder: Option<Arc<dyn Embedder>>) -> Self {
        Self { store, embedder, consolidation: ConsolidationOptions::default(), indexes: Mutex::default() }
    }

    /// Changes how new facts are compared with known ones.
    pub fn with_consolidation(mut self, options: ConsolidationOptions) -> Self {
        self.consolidation = options;
        self
    }

    /// Drops the cached index of `user`, so the next call reads the store again.
    pub fn reload(&self, user: UserId) {
        lock(&self.indexes).remove(&user);
    }

    /// The acting user's memories with their details, oldest first. Vectors are left out:
    /// they are the search index's business, and would swamp any listing or export.
    pub fn list(&self, actor: &Actor) -> Result<Vec<MemoryRecord>, MemoryError> {
        let mut records = self.store.list_memory_records(actor)?;
        for record in &mut records {
            record.embedding = None;
        }
        Ok(records)
    }

    /// The acting user's memories as the bank holds them (no store query after the first use).
    pub fn memories(&self, actor: &Actor) -> Result<Vec<Memory>, MemoryError> {
        let index = self.index(actor)?;
        let memories = lock(&index).memories().to_vec();
        Ok(memories)
    }

    /// The memories best matching `text`, best first, within `options`.
    pub fn search(
        &self,
        actor: &Actor,
        text: &str,
        options: &SearchOptions,
    ) -> Result<Vec<Hit>, MemoryError> {
        let index = self.index(actor)?;
        let query = self.embed_one(text)?;
        let hits = lock(&index).search(text, query.as_deref(), options);
        tracing::debug!(hits = hits.len(), "memory search");
        Ok(hits)
    }

    /// The memories to put in a prompt about `text`, most important first, for
    /// [`assemble_context`](crate::assemble_context) to take in that order until their share
    /// of the budget is full.
    ///
    /// A person trusts memory that behaves like an attentive friend's, so the choice is not
    /// left to word overlap alone:
    /// - when all of the user's memories fit `options.budget_tokens`, all of them are
    ///   returned: ranking only decides what to leave out when something must be;
    /// - otherwise what keeps the user safe or says who they are ([`MemoryKind::Profile`]:
    ///   allergies, diet and health first, then name, language, pronouns, family, home, work)
    ///   comes first, whatever the question ("I'm lactose intolerant" must reach "what should
    ///   I cook tonight?"), followed by the `options.search.top_k` best search hits for `text`.
    ///
    /// Memories learned in `options.exclude_session` are left out: that session's own history
    /// already says them, and adding them would change the system prompt and void the
    /// conversation's cached prefix. `count_tokens` is the model's token counter.
    pub fn recall(
        &self,
        actor: &Actor,
        text: &str,
        options: &RecallOptions,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Result<Vec<Memory>, MemoryError> {
        let eligible = |m: &Memory| options.exclude_session.is_none_or(|s| m.source_session_id != Some(s));
        let all: Vec<Memory> = self.memories(actor)?.into_iter().filter(|m| eligible(m)).collect();
        let header = count_tokens(crate::MEMORY_HEADER);
        let needed = all.iter().fold(header, |sum, m| sum + count_tokens(&format!("\n- {}", m.content)));
        if needed <= options.budget_tokens {
            return Ok(all);
        }
        let mut chosen: Vec<Memory> = all.iter().filter(|m| m.kind == MemoryKind::Profile).cloned().collect();
        // Safety first, then the newest: the tail is what assembly drops when room runs out.
        chosen.sort_by_key(|m| (!keeps_the_user_safe(m), std::cmp::Reverse(m.created_at)));
        let search = SearchOptions { top_k: options.search.top_k + chosen.len(), ..options.search };
        let hits = self.search(actor, text, &search)?;
        let mut found = 0;
        for hit in hits.into_iter().filter(|h| eligible(&h.memory)) {
            if found == options.search.top_k {
                break;
            }
            if !chosen.iter().any(|m| m.id == hit.memory.id) {
                chosen.push(hit.memory);
                found += 1;
            }
        }
        Ok(chosen)
    }

    /// Stores a memory the user wrote themselves (full confidence).
    pub fn add(&self, actor: &Actor, kind: MemoryKind, content: &str) -> Result<Memory, MemoryError> {
        let index = self.index(actor)?;
        let vector = self.embed_one(content)?;
        let memory = NewMemory { kind, content: content.to_owned(), source_session_id: None };
        self.insert(actor, &index, memory, 1.0, vector)
    }

    /// Replaces a memory's text (and its vector).
    pub fn edit(&self, actor: &Actor, id: MemoryId, content: &str) -> Result<Memory, MemoryError> {
        let index = self.index(actor)?;
        let vector = self.embed_one(content)?;
        self.replace(actor, &index, id, content, vector)
    }

    /// Deletes a memory.
    pub fn delete(&self, actor: &Actor, id: MemoryId) -> Result<(), MemoryError> {
        let index = self.index(actor)?;
        self.remove(actor, &index, id)
    }

    /// The acting user's memories with their details as pretty JSON (vectors left out).
    pub fn export_json(&self, actor: &Actor) -> Result<Vec<u8>, MemoryError> {
        serde_json::to_vec_pretty(&self.list(actor)?).map_err(|source| MemoryError::Serialize { source })
    }

    /// Runs `extractors` over a finished turn and applies what they found, consolidating each
    /// new fact like Mem0: it is compared with the most similar memories and becomes an add,
    /// an update of the memory it supersedes, or nothing when it is already known. Rule
    /// extractors see every memory (their slots decide updates and deletions themselves).
    pub fn learn(
        &self,
        actor: &Actor,
        session: Option<SessionId>,
        turn: &[ChatMessage],
        extractors: &[&dyn MemoryExtractor],
    ) -> Result<Learned, MemoryError> {
        let index = self.index(actor)?;
        let mut learned = Learned::default();
        for extractor in extractors {
            let existing: Vec<Memory> = lock(&index).memories().to_vec();
            let ops = match extractor.extract(turn, &existing) {
                Ok(ops) => ops,
                Err(err) => {
                    tracing::warn!(extractor = extractor.name(), %err, "memory extraction failed");
                    learned.failures.push(format!("{}: {err}", extractor.name()));
                    continue;
                }
            };
            for op in ops {
                // The new text's vector is embedded once, for both the comparison and the store.
                match op {
                    MemoryOp::Add { kind, content, confidence } => {
                        let vector = self.embed_one(&content)?;
                        let memory = match self.consolidate(&index, kind, &content, vector.as_deref()) {
                            Decision::Known => {
                                learned.duplicates += 1;
                                continue;
                            }
                            Decision::Supersedes(id) => self.replace(actor, &index, id, &content, vector)?,
                            Decision::New => {
                                let memory = NewMemory { kind, content, source_session_id: session };
                                self.insert(actor, &index, memory, confidence, vector)?
                            }
                        };
                        learned.changed.push(memory);
                    }
                    MemoryOp::Update { id, content } => {
                        let vector = self.embed_one(&content)?;
                        learned.changed.push(self.replace(actor, &index, id, &content, vector)?);
                    }
                    MemoryOp::Delete { id } => {
                        self.remove(actor, &index, id)?;
                        learned.deleted.push(id);
                    }
                }
            }
        }
        tracing::debug!(
            changed = learned.changed.len(),
            deleted = learned.deleted.len(),
            duplicates = learned.duplicates,
            "learned from a turn"
        );
        Ok(learned)
    }

    /// Whether a new fact is known, supersedes a memory, or is new.
    fn consolidate(
        &self,
        index: &Mutex<MemoryIndex>,
        kind: MemoryKind,
        content: &str,
        vector: Option<&[f32]>,
    ) -> Decision {
        let options =
            SearchOptions { top_k: self.consolidation.compare_with, min_score: 0.0, keyword_weight: 0.5 };
        // A rule fact is compared with every memory of the user, not only the most similar:
        // among many memories, "lives in Berlin" may not rank "lives in Paris" in its top five,
        // and leaving both would put a stale home into every prompt. A rule fact that no stored
        // fact speaks about is new, however alike the sentences look ("likes jazz" does not
        // replace "likes blues").
        if let Some(new) = Fact::parse(content) {
            let all = lock(index).memories().to_vec();
            for memory in all.iter().rev() {
                if let Some(old) = Fact::parse(&memory.content).filter(|old| new.same_subject(old)) {
                    return if new.same_as(&old) { Decision::Known } else { Decision::Supersedes(memory.id) };
                }
            }
            return Decision::New;
        }
        let similar = lock(index).search(content, vector, &options);
        let normalized = normalize(content);
        if similar.iter().any(|hit| normalize(&hit.memory.content) == normalized) {
            return Decision::Known;
        }
        let best =
            similar.iter().filter(|_| vector.is_some()).max_by(|a, b| a.similarity.total_cmp(&b.similarity));
        match best {
            Some(hit) if hit.similarity >= self.consolidation.duplicate_similarity => Decision::Known,
            Some(hit)
                if hit.similarity >= self.consolidation.update_similarity && hit.memory.kind == kind =>
            {
                Decision::Supersedes(hit.memory.id)
            }
            _ => Decision::New,
        }
    }

    // Each change goes to the store first and to the index second, so the index never holds
    // what the store refused. `vector` is the embedding of the new text (none without an
    // embedder).

    fn insert(
        &self,
        actor: &Actor,
        index: &Mutex<MemoryIndex>,
        memory: NewMemory,
        confidence: f32,
        vector: Option<Vec<f32>>,
    ) -> Result<Memory, MemoryError> {
        let details = MemoryDetails { confidence: confidence.clamp(0.0, 1.0), embedding: vector.clone() };
        let record = self.store.add_memory_record(actor, &memory, &details)?;
        lock(index).insert(record.memory.clone(), vector.as_deref());
        Ok(record.memory)
    }

    fn replace(
        &self,
        actor: &Actor,
        index: &Mutex<MemoryIndex>,
        id: MemoryId,
        content: &str,
        vector: Option<Vec<f32>>,
    ) -> Result<Memory, MemoryError> {
        let update = MemoryUpdate {
            content: Some(content.to_owned()),
            embedding: Some(vector.clone()),
            ..MemoryUpdate::default()
        };
        let record = self.store.update_memory_record(actor, id, &update)?;
        lock(index).insert(record.memory.clone(), vector.as_deref());
        Ok(record.memory)
    }

    fn remove(&self, actor: &Actor, index: &Mutex<MemoryIndex>, id: MemoryId) -> Result<(), MemoryError> {
        self.store.delete_memory(actor, id)?;
        lock(index).remove(id);
        Ok(())
    }

    /// The user's index, loaded from the store on first use. Memories stored without a vector
    /// (or with one from an embedder of another size) are embedded now and saved.
    fn index(&self, actor: &Actor) -> Result<Arc<Mutex<MemoryIndex>>, MemoryError> {
        if let Some(index) = lock(&self.indexes).get(&actor.user_id) {
            return Ok(Arc::clone(index));
        }
        let dims = self.embedder.as_ref().map_or(0, |e| e.dimensions());
        let records = self.store.list_memory_records(actor)?;
        let missing: Vec<usize> = (0..records.len())
            .filter(|&i| dims > 0 && records[i].embedding.as_ref().is_none_or(|e| e.len() != dims))
            .collect();
        let mut fresh: HashMap<usize, Vec<f32>> = HashMap::new();
        if let Some(embedder) = &self.embedder {
            for batch in missing.chunks(32) {
                let texts: Vec<&str> = batch.iter().map(|&i| records[i].memory.content.as_str()).collect();
                for (&i, vector) in batch.iter().zip(embedder.embed(&texts)?) {
                    let update =
                        MemoryUpdate { embedding: Some(Some(vector.clone())), ..MemoryUpdate::default() };
                    self.store.update_memory_record(actor, records[i].memory.id, &update)?;
                    fresh.insert(i, vector);
                }
            }
        }
        let mut index = MemoryIndex::new(dims);
        for (i, record) in records.into_iter().enumerate() {
            let vector = fresh.remove(&i).or(record.embedding);
            index.insert(record.memory, vector.as_deref());
        }
        tracing::debug!(memories = index.len(), embedded = missing.len(), "memory index loaded");
        let index = Arc::new(Mutex::new(index));
        Ok(Arc::clone(lock(&self.indexes).entry(actor.user_id).or_insert(index)))
    }

    fn embed_one(&self, text: &str) -> Result<Option<Vec<f32>>, MemoryError> {
        let Some(embedder) = &self.embedder else { return Ok(None) };
        Ok(embedder.embed(&[text])?.pop())
    }
}

enum Decision {
    Known,
    Supersedes(MemoryId),
    New,
}

/// Text compared for exact repeats: keyword terms, so case, punctuation and "lives"/"live"
/// do not matter.
fn normalize(text: &str) -> Vec<String> {
    let mut terms = terms(text);
    terms.sort();
    terms
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
