//! One user's memories in memory, searchable by meaning and by keyword.
//!
//! Vectors are kept as 8-bit integers with one scale per vector (a quarter of the memory of
//! `f32`, and the scan reads a quarter of the bytes): for L2-normalized 384-dimensional
//! sentence embeddings the cosine changes by about 0.001, far below any useful threshold, and
//! 100,000 memories scan in a few milliseconds on one core. Keywords live in an inverted index
//! weighted by inverse document frequency, so a rare name or a Chinese word pair counts for
//! more than a common one.

use std::collections::HashMap;

use modelforge_core::{Memory, MemoryId};
use serde::{Deserialize, Serialize};

use crate::keywords::{query_terms, terms};

/// The fewest memories with vectors for the average similarity to serve as a baseline.
const BASELINE_MIN_MEMORIES: usize = 10;

/// How to rank and cut search results.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchOptions {
    /// The most results to return.
    pub top_k: usize,
    /// Results scoring below this are dropped.
    pub min_score: f32,
    /// How much a full keyword match adds to the cosine similarity (0 turns keywords off).
    pub keyword_weight: f32,
}

impl Default for SearchOptions {
    /// Top 5, score at least 0.25, keywords weighted 1.
    fn default() -> Self {
        Self { top_k: 5, min_score: 0.25, keyword_weight: 1.0 }
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The memory found.
    pub memory: Memory,
    /// What results are ranked by: the similarity's rise above the query's average
    /// similarity to all of the user's memories, plus `keyword_weight * keywords`.
    pub score: f32,
    /// Cosine similarity of the embeddings (0 when either has none).
    pub similarity: f32,
    /// The share of the query's keyword weight that the memory contains, from 0 to 1 (words
    /// no memory holds do not count).
    pub keywords: f32,
}

/// A user's memories with their vectors and keywords.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    dims: usize,
    memories: Vec<Memory>,
    position: HashMap<MemoryId, usize>,
    /// `dims` quantized components per memory (zeros when it has no vector).
    vectors: Vec<i8>,
    /// Per memory: the factor turning a quantized dot product back into a cosine.
    scales: Vec<f32>,
    terms: Vec<Vec<String>>,
    postings: HashMap<String, Vec<u32>>,
}

impl MemoryIndex {
    /// An empty index for vectors of `dims` dimensions (0 for keywords only).
    pub fn new(dims: usize) -> Self {
        Self { dims, ..Self::default() }
    }

    /// The vector length this index holds.
    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// How many memories it holds.
    pub fn len(&self) -> usize {
        self.memories.len()
    }

    /// Whether it holds no memories.
    pub fn is_empty(&self) -> bool {
        self.memories.is_empty()
    }

    /// The memories, in no particular order.
    pub fn memories(&self) -> &[Memory] {
        &self.memories
    }

    /// One memory by id.
    pub fn get(&self, id: MemoryId) -> Option<&Memory> {
        self.position.get(&id).map(|&i| &self.memories[i])
    }

    /// Adds a memory, or replaces the one with the same id. An embedding of the wrong length
    /// or with non-finite values is ignored (the memory is then found by keywords only).
    pub fn insert(&mut self, memory: Memory, embedding: Option<&[f32]>) {
        self.remove(memory.id);
        let (quantized, scale) = match embedding.filter(|e| e.len() == self.dims && self.dims > 0) {
            Some(vector) if vector.iter().all(|x| x.is_finite()) => quantize(vector),
            _ => (vec![0; self.dims], 0.0),
        };
        let i = self.memories.len();
        let memory_terms = terms(&memory.content);
        for term in &memory_terms {
            self.postings.entry(term.clone()).or_default().push(i as u32);
        }
        self.position.insert(memory.id, i);
        self.memories.push(memory);
        self.vectors.extend_from_slice(&quantized);
        self.scales.push(scale);
        self.terms.push(memory_terms);
    }

    /// Removes a memory; `false` if it was not there.
    pub fn remove(&mut self, id: MemoryId) -> bool {
        let Some(i) = self.position.remove(&id) else { return false };
        let last = self.memories.len() - 1;
        self.unpost(i);
        if i != last {
            self.unpost(last);
        }
        self.memories.swap_remove(i);
        self.scales.swap_remove(i);
        self.terms.swap_remove(i);
        if self.dims > 0 {
            let (head, tail) = self.vectors.split_at_mut(last * self.dims);
            if i != last {
                head[i * self.dims..(i + 1) * self.dims].copy_from_slice(&tail[..self.dims]);
            }
            self.vectors.truncate(last * self.dims);
        }
        if i != last {
            let moved = self.memories[i].id;
            self.position.insert(moved, i);
            for term in &self.terms[i] {
                self.postings.entry(term.clone()).or_default().push(i as u32);
            }
        }
        true
    }

    fn unpost(&mut self, i: usize) {
        for term in &self.terms[i] {
            if let Some(list) = self.postings.get_mut(term) {
                list.retain(|&j| j as usize != i);
                if list.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
    }

    /// The best matches for `text` (with its embedding, if there is one), best first.
    pub fn search(&self, text: &str, embedding: Option<&[f32]>, options: &SearchOptions) -> Vec<Hit> {
        let n = self.memories.len();
        if n == 0 || options.top_k == 0 {
            return Vec::new();
        }
        let mut similarity = vec![0f32; n];
        // What the embedder gives this query against anything: an English model scores every
        // Chinese text alike, so only the rise above this baseline says "related".
        let mut baseline = 0f32;
        if let Some(query) = embedding.filter(|e| e.len() == self.dims && self.dims > 0) {
            let (q, q_scale) = quantize(query);
            for (i, (row, scale)) in self.vectors.chunks_exact(self.dims).zip(&self.scales).enumerate() {
                similarity[i] = dot_i8(&q, row) as f32 * q_scale * scale;
            }
            // A handful of memories says nothing about the baseline.
            let with_vectors = self.scales.iter().filter(|&&s| s > 0.0).count();
            if with_vectors >= BASELINE_MIN_MEMORIES {
                baseline = similarity.iter().sum::<f32>() / with_vectors as f32;
            }
        }
        let mut keyword = vec![0f32; n];
        if options.keyword_weight > 0.0 {
            let query_terms = query_terms(text);
            // Terms no memory holds cannot tell memories apart, so they weigh nothing: a
            // question full of question words still gives its one matching word full weight.
            let weights: Vec<f32> = query_terms
                .iter()
                .map(|t| match self.postings.get(t).map_or(0, Vec::len) {
                    0 => 0.0,
                    df => (1.0 + n as f32 / df as f32).ln(),
                })
                .collect();
            let total: f32 = weights.iter().sum();
            if total > 0.0 {
                for (term, weight) in query_terms.iter().zip(&weights) {
                    for &i in self.postings.get(term).map_or(&[][..], Vec::as_slice) {
                        keyword[i as usize] += weight / total;
                    }
                }
            }
        }
        let score = |i: usize| (similarity[i] - baseline).max(0.0) + options.keyword_weight * keyword[i];
        let mut candidates: Vec<usize> = (0..n).filter(|&i| score(i) >= options.min_score).collect();
        let k = options.top_k.min(candidates.len());
        if k < candidates.len() {
            candidates.select_nth_unstable_by(k, |&a, &b| score(b).total_cmp(&score(a)));
            candidates.truncate(k);
        }
        candidates.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
        candidates
            .into_iter()
            .map(|i| Hit {
                memory: self.memories[i].clone(),
                score: score(i),
                similarity: similarity[i],
                keywords: keyword[i],
            })
            .collect()
    }
}

/// Components scaled so the largest magnitude is 127, and the factor that undoes it.
fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let max = vector.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; vector.len()], 0.0);
    }
    let scale = 127.0 / max;
    (vector.iter().map(|x| (x * scale).round() as i8).collect(), 1.0 / scale)
}

/// A dot product written so the compiler vectorizes it (16-bit products summed in 32 bits).
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 32;
    let mut acc = [0i32; LANES];
    let chunks = a.len() / LANES * LANES;
    for (ca, cb) in a[..chunks].chunks_exact(LANES).zip(b[..chunks].chunks_exact(LANES)) {
        for lane in 0..LANES {
            acc[lane] += i32::from(ca[lane]) * i32::from(cb[lane]);
        }
    }
    let tail: i32 = a[chunks..].iter().zip(&b[chunks..]).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum();
    acc.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use modelforge_core::{MemoryKind, UserId};

    use super::*;

    fn memory(content: &str) -> Memory {
        Memory {
            id: MemoryId::new(),
            user_id: UserId::new(),
            kind: MemoryKind::Fact,
            content: content.into(),
            source_session_id: None,
            created_at: Utc::now(),
        }
    }

    fn unit(values: &[f32]) -> Vec<f32> {
        let norm = values.iter().map(|x| x * x).sum::<f32>().sqrt();
        values.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn quantized_cosine_is_close_to_the_exact_one() {
        let a = unit(&(0..384).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect::<Vec<_>>());
        let b = unit(&(0..384).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect::<Vec<_>>());
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let (qa, sa) = quantize(&a);
        let (qb, sb) = quantize(&b);
        let approx = dot_i8(&qa, &qb) as f32 * sa * sb;
        assert!((exact - approx).abs() < 0.005, "{exact} vs {approx}");
    }

    #[test]
    fn vectors_and_keywords_rank_and_removal_keeps_the_rest_findable() {
        let mut index = MemoryIndex::new(3);
        let lyon = memory("The user lives in Lyon.");
        let jazz = memory("The user likes jazz.");
        let shanghai = memory("用户住在上海。");
        index.insert(lyon.clone(), Some(&unit(&[1.0, 0.0, 0.0])));
        index.insert(jazz.clone(), Some(&unit(&[0.0, 1.0, 0.0])));
        index.insert(shanghai.clone(), None);
        let options = SearchOptions { top_k: 2, min_score: 0.1, keyword_weight: 0.5 };

        let hits = index.search("Where do I live?", Some(&unit(&[0.9, 0.1, 0.0])), &options);
        assert_eq!(hits[0].memory.id, lyon.id);
        assert!(hits[0].similarity > 0.95 && hits[0].keywords > 0.99, "{hits:?}");

        let hits = index.search("我住在哪里？", None, &options);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].memory.id, shanghai.id);

        assert!(index.remove(lyon.id));
        assert!(!index.remove(lyon.id));
        assert_eq!(index.len(), 2);
        let hits = index.search("music", Some(&unit(&[0.0, 1.0, 0.0])), &options);
        assert_eq!(hits[0].memory.id, jazz.id);
        assert_eq!(index.search("我住在哪里？", None, &options)[0].memory.id, shanghai.id);
        assert!(
            index
                .search("Where do I live?", Some(&unit(&[1.0, 0.0, 0.0])), &options)
                .iter()
                .all(|h| h.memory.id != lyon.id)
        );
    }

    #[test]
    fn replacing_a_memory_updates_its_keywords() {
        let mut index = MemoryIndex::new(0);
        let mut home = memory("The user lives in Lyon.");
        index.insert(home.clone(), None);
        home.content = "The user lives in Paris.".into();
        index.insert(home.clone(), None);
        let options = SearchOptions::default();
        assert_eq!(index.len(), 1);
        assert!(index.search("Lyon", None, &options).is_empty());
        assert_eq!(index.search("Paris", None, &options)[0].memory.content, home.content);
    }
}
