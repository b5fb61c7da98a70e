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
    let push = |out: &mut Vec<Passage>, text: &mut String| {
        if !text.trim().is_empty() {
            out.push(Passage { page, text: std::mem::take(text), score: 0.0 });
        }
        text.clear();
    };
    for paragraph in paragraphs {
        if out.len() >= PASSAGES_PER_PAGE {
            break; // the rest of a long page is not read
        }
        for piece in sentences_within(paragraph, MAX_CHARS) {
            if !current.is_empty() && current.chars().count() + piece.chars().count() > TARGET_CHARS {
                push(&mut out, &mut current);
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(piece);
        }
    }
    push(&mut out, &mut current);
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
/// and embedding them all would cost seconds on a small CPU. As many as a prompt takes by
/// default ([`WebOptions::max_passages`](crate::WebOptions::max_passages)): 8 cost a third
/// more time and a turn's search went over its 300 ms budget (`web-bench`).
pub const EMBED_AT_MOST: usize = 6;

/// The tokens of a passage the embedder reads, special tokens included: its start (about 70
/// English words) says what it is about, all-MiniLM-L6-v2 was trained on texts of at most 128
/// tokens, and a transformer's cost grows faster than its input (a 900-character Chinese
/// passage is 512 tokens whole).
pub const EMBED_TOKENS: usize = 96;

/// Scores `passages` against `question` and sorts them best first: the share of the
/// question's keywords a passage holds, plus, for the [`EMBED_AT_MOST`] best by keywords, the
/// cosine similarity of its first [`EMBED_TOKENS`] tokens to the question when an embedder is
/// given (an embedder that fails leaves keywords alone to decide).
///
/// The question is embedded alone and the passages in order of length, so no text is padded
/// to a much longer one.
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
        match similarities(question, &passages[..embedded], embedder) {
            Ok(similarities) => {
                for (passage, similarity) in passages.iter_mut().zip(similarities) {
                    passage.score += similarity;
                }
            }
            Err(err) => tracing::warn!(%err, "embedding passages failed; ranking by keywords"),
        }
    }
    passages.sort_by(|a, b| b.score.total_cmp(&a.score));
}

/// The cosine similarity of each passage's head to `question`, in the passages' order.
fn similarities(question: &str, passages: &[Passage], embedder: &dyn Embedder) -> Result<Vec<f32>, String> {
    let question = embedder.embed(&[question]).map_err(|e| e.to_string())?;
    let question = question.first().ok_or("the embedder returned no vector")?;
    let heads: Vec<&str> = passages.iter().map(|p| head(&p.text, EMBED_TOKENS, embedder)).collect();
    let mut order: Vec<usize> = (0..heads.len()).collect();
    order.sort_by_key(|&i| heads[i].len());
    let sorted: Vec<&str> = order.iter().map(|&i| heads[i]).collect();
    let vectors = embedder.embed(&sorted).map_err(|e| e.to_string())?;
    if vectors.len() != sorted.len() {
        return Err("the embedder returned the wrong number of vectors".into());
    }
    let mut out = vec![0.0; heads.len()];
    for (&i, vector) in order.iter().zip(&vectors) {
        out[i] = question.iter().zip(vector).map(|(a, b)| a * b).sum();
    }
    Ok(out)
}

/// The start of `text` that the embedder reads as at most `tokens` tokens, cut at a word
/// boundary where there is one; the whole text if the embedder cannot count its tokens and
/// the text is short. Without a count, a token is taken as 4 characters of alphabetic text
/// and 1 of Chinese.
fn head<'t>(text: &'t str, tokens: usize, embedder: &dyn Embedder) -> &'t str {
    let mut cut = text;
    for _ in 0..4 {
        let counted = embedder.count_tokens(cut).unwrap_or_else(|| estimate_tokens(cut));
        if counted <= tokens {
            return cut;
        }
        // Proportionally shorter, with a margin, then back to the last space if it is near.
        let chars = cut.chars().count() * (tokens.saturating_sub(4)) / counted;
        let end = cut.char_indices().nth(chars.max(1)).map_or(cut.len(), |(i, _)| i);
        let at_space = cut[..end].rfind(char::is_whitespace).filter(|&i| i * 5 > end * 4);
        cut = &cut[..at_space.unwrap_or(end)];
    }
    cut
}

/// A rough token count for an embedder that cannot count: CJK characters one each, other
/// text a token per 4 characters.
fn estimate_tokens(text: &str) -> usize {
    let (mut cjk, mut other) = (0usize, 0usize);
    for c in text.chars() {
        if ('\u{2e80}'..='\u{9fff}').contains(&c) || ('\u{f900}'..='\u{faff}').contains(&c) {
            cjk += 1;
        } else {
            other += 1;
        }
    }
    cjk + other.div_ceil(4) + 2
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

    /// Records what it is asked to embed; a text's vector says whether it mentions the Moon.
    #[derive(Default)]
    struct Recorder {
        calls: std::sync::Mutex<Vec<Vec<String>>>,
    }

    impl Embedder for Recorder {
        fn dimensions(&self) -> usize {
            2
        }

        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, modelforge_core::BackendError> {
            self.calls.lock().unwrap().push(texts.iter().map(|t| (*t).to_owned()).collect());
            Ok(texts
                .iter()
                .map(|t| if t.contains("Moon") { vec![1.0, 0.0] } else { vec![0.0, 1.0] })
                .collect())
        }
    }

    #[test]
    fn the_question_is_embedded_alone_and_the_best_passages_by_their_heads_shortest_first() {
        let filler = "Waves, weather and ships along the coast. ".repeat(40);
        let mut passages: Vec<Passage> = (0..12)
            .map(|i| Passage { page: i, text: format!("Tides {i}. {}", &filler[..100 + i * 50]), score: 0.0 })
            .collect();
        passages.push(Passage {
            page: 99,
            text: format!("Tides happen as the Moon pulls. {filler}"),
            score: 0.0,
        });
        let embedder = Recorder::default();
        rank("Why do tides happen? The Moon?", &mut passages, Some(&embedder));
        let calls = embedder.calls.lock().unwrap();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0], ["Why do tides happen? The Moon?"]);
        assert_eq!(calls[1].len(), EMBED_AT_MOST);
        let lengths: Vec<usize> = calls[1].iter().map(String::len).collect();
        assert!(lengths.is_sorted(), "{lengths:?}");
        for text in &calls[1] {
            assert!(estimate_tokens(text) <= EMBED_TOKENS, "{} tokens: {text}", estimate_tokens(text));
            // Each is the start of a passage, cut before a space.
            let whole =
                passages.iter().find(|p| p.text.starts_with(text.as_str())).expect("a passage's head");
            assert!(whole.text[text.len()..].chars().next().is_none_or(char::is_whitespace), "{text}");
        }
        assert!(calls[1].iter().any(|t| passages.iter().all(|p| p.text != *t)), "some heads were cut");
        // The passage about the Moon holds both keywords and is closest in meaning.
        assert_eq!(passages[0].page, 99);
        assert!(passages[0].score > 1.9, "{}", passages[0].score);
    }

    #[test]
    fn heads_are_cut_at_words_or_chinese_characters() {
        let embedder = Recorder::default();
        let english = "word ".repeat(1000);
        let head_en = head(&english, 128, &embedder);
        assert!(estimate_tokens(head_en) <= 128 && estimate_tokens(head_en) > 100, "{}", head_en.len());
        assert!(head_en.ends_with("word"), "{head_en:?}");
        let chinese = "潮汐是由月球引起的。".repeat(100);
        let head_zh = head(&chinese, 128, &embedder);
        assert!((100..=128).contains(&head_zh.chars().count()), "{}", head_zh.chars().count());
        assert_eq!(head("short", 128, &embedder), "short");
    }
}
