//! Pages into passages, and passages ranked against the question: by meaning (the embedder)
//! and by shared keywords, which is what finds names, numbers and Chinese text.

use std::collections::HashSet;

use modelforge_core::Embedder;

use crate::keywords::terms;

/// A passage aims at this many characters (about 100 English words).
const TARGET_CHARS: usize = 600;
/// A paragraph longer than this is split at sentence ends.
const MAX_CHARS: usize = 900;

/// Passages read from one page at most: the start of a long page says what it is about, and
/// ranking thousands of passages of a huge page would cost more than it finds.
pub const PASSAGES_PER_PAGE: usize = 40;

/// A piece of one page's text.
#[derive(Clone, Debug, PartialEq)]
pub struct Passage {
    /// Which page (index into the pages given to [`split`]'s caller).
    pub page: usize,
    /// The text.
    pub text: String,
    /// Relevance to the question, higher is better (0 until ranked).
    pub score: f32,
}

/// `paragraphs` of page `page` as at most [`PASSAGES_PER_PAGE`] passages of about
/// [`TARGET_CHARS`] characters: short paragraphs are joined, long ones split at sentence ends.
pub fn split(page: usize, paragraphs: &[String]) -> Vec<Passage> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut push = |text: &mut String| {
        if !text.trim().is_empty() {
            out.push(Passage { page, text: std::mem::take(text), score: 0.0 });
        }
        text.clear();
    };
    for paragraph in paragraphs {
        for piece in sentences_within(paragraph, MAX_CHARS) {
            if !current.is_empty() && current.chars().count() + piece.chars().count() > TARGET_CHARS {
                push(&mut current);
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(piece);
        }
    }
    push(&mut current);
    out.truncate(PASSAGES_PER_PAGE);
    out
}

/// `text` cut after sentence ends (`.`, `!`, `?`, `。`, `！`, `？`) into pieces of at most
/// about `max` characters; a sentence longer than `max` is cut at a character boundary.
fn sentences_within(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut last_end = 0;
    let mut count = 0;
    for (i, c) in text.char_indices() {
        count += 1;
        let end = i + c.len_utf8();
        if matches!(c, '.' | '!' | '?' | '。' | '！' | '？') {
            last_end = end;
        }
        if count >= max {
            let cut = if last_end > start { last_end } else { end };
            pieces.push(text[start..cut].trim());
            count = text[cut..end].chars().count();
            start = cut;
        }
    }
    if start < text.len() {
        pieces.push(text[start..].trim());
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// At most this many passages (the best by keywords) are embedded: a long page has hundreds,
/// and embedding them all would cost seconds on a small CPU.
pub const EMBED_AT_MOST: usize = 8;

/// Scores `passages` against `question` and sorts them best first: the share of the
/// question's keywords a passage holds, plus, for the [`EMBED_AT_MOST`] best by keywords, its
/// cosine similarity to the question when an embedder is given (an embedder that fails leaves
/// keywords alone to decide).
pub fn rank(question: &str, passages: &mut [Passage], embedder: Option<&dyn Embedder>) {
    let wanted: HashSet<String> = terms(question).into_iter().collect();
    for passage in passages.iter_mut() {
        let have: HashSet<String> = terms(&passage.text).into_iter().collect();
        let shared = wanted.iter().filter(|t| have.contains(*t)).count();
        passage.score = if wanted.is_empty() { 0.0 } else { shared as f32 / wanted.len() as f32 };
    }
    passages.sort_by(|a, b| b.score.total_cmp(&a.score));
    if let Some(embedder) = embedder.filter(|_| !passages.is_empty()) {
        let embedded = passages.len().min(EMBED_AT_MOST);
        let mut texts: Vec<&str> = vec![question];
        texts.extend(passages[..embedded].iter().map(|p| p.text.as_str()));
        match embedder.embed(&texts) {
            Ok(vectors) if vectors.len() == texts.len() => {
                for (passage, vector) in passages[..embedded].iter_mut().zip(&vectors[1..]) {
                    passage.score += vectors[0].iter().zip(vector).map(|(a, b)| a * b).sum::<f32>();
                }
            }
            Ok(_) => tracing::warn!("the embedder returned the wrong number of vectors; ranking by keywords"),
            Err(err) => tracing::warn!(%err, "embedding passages failed; ranking by keywords"),
        }
    }
    passages.sort_by(|a, b| b.score.total_cmp(&a.score));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_paragraphs_are_joined_and_long_ones_split_at_sentences() {
        let short = vec!["One.".to_owned(), "Two.".to_owned()];
        assert_eq!(split(3, &short), [Passage { page: 3, text: "One.\nTwo.".into(), score: 0.0 }]);
        let long = vec!["This is a sentence. ".repeat(100)];
        let passages = split(0, &long);
        assert!(passages.len() >= 3, "{}", passages.len());
        assert!(passages.iter().all(|p| p.text.chars().count() <= MAX_CHARS && p.text.ends_with('.')));
        let chinese = vec!["潮汐是由月球引起的。".repeat(200)];
        assert!(split(0, &chinese).iter().all(|p| p.text.ends_with('。')));
    }

    #[test]
    fn keywords_rank_the_passage_that_answers_first() {
        let mut passages = vec![
            Passage { page: 0, text: "Cats sleep sixteen hours a day.".into(), score: 0.0 },
            Passage { page: 1, text: "The Eiffel Tower is 330 metres tall.".into(), score: 0.0 },
        ];
        rank("How tall is the Eiffel Tower?", &mut passages, None);
        assert_eq!(passages[0].page, 1);
        assert!(passages[0].score > passages[1].score);
    }
}
