//! The rule-based extractor: English and Chinese patterns for who the user is, what keeps them
//! safe and what they like, consolidated against the user's existing memories.
//!
//! A message is read sentence by sentence and clause by clause (`said`). Each clause is tried
//! against the pattern table (`patterns` for name, home, work, family, tastes and car; `care`
//! for allergies, diet, health, languages and pronouns), and each value is cut and checked by
//! the rules of its language (`english`, `chinese`). Requests to remember or forget
//! (`requests`) take the rest of their sentence; a request to forget may name a whole topic
//! ("forget my job"), recognized in the request and in stored memories by `topics` with the
//! words of `topic_words`. What was said is then turned into operations against the stored
//! memories by `crate::consolidate`.

mod care;
mod chinese;
mod english;
mod languages;
mod patterns;
mod requests;
mod said;
mod topic_words;
mod topics;

use modelforge_core::{ChatMessage, Memory, MemoryError, MemoryExtractor, MemoryOp, Role};

use crate::consolidate::consolidate;

pub(crate) use said::Said;
pub(crate) use topics::{Topic, topics_of};

/// Extracts who the user is, what keeps them safe and what they like with fixed English and
/// Chinese patterns, and deletes what they ask to forget.
///
/// Name, home, work, family, allergies, diet, health conditions, languages and pronouns become
/// [`MemoryKind::Profile`](modelforge_core::MemoryKind::Profile) memories, which every session
/// sees; likes and dislikes are preferences; the car and "remember that ..." notes are facts.
/// "Forget that I like olives" deletes that memory; "forget my job" or "别记我的家人了" deletes
/// every memory about the topic, whichever extractor wrote it, and nothing else.
///
/// It needs no model, so it works the same beside a 0.5B model as beside a 70B one, costs
/// microseconds, and never invents anything: each memory is a fixed sentence around a value the
/// user typed, kept verbatim ("The user's name is 李娜."). Only user messages are read; what
/// the assistant says about the user is not evidence.
///
/// ```
/// use modelforge_core::{ChatMessage, MemoryExtractor, MemoryKind, MemoryOp};
/// use modelforge_memory::RuleExtractor;
///
/// let ops = RuleExtractor::new().extract(&[ChatMessage::user("我叫李娜，我住在上海。")], &[])?;
/// assert_eq!(
///     ops,
///     [
///         MemoryOp::Add { kind: MemoryKind::Profile, content: "用户的名字是李娜。".into(), confidence: 1.0 },
///         MemoryOp::Add { kind: MemoryKind::Profile, content: "用户住在上海。".into(), confidence: 1.0 },
///     ]
/// );
/// # Ok::<(), modelforge_core::MemoryError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleExtractor {
    own_words: bool,
}

impl RuleExtractor {
    /// A rule extractor. The patterns are compiled once per process, on first use.
    pub const fn new() -> Self {
        Self { own_words: false }
    }

    /// With `on`, also keeps, in the user's own words, what they say about themself on a topic the
    /// patterns track (home, work, family, health, diet, languages, pronouns, name) when no
    /// pattern reads it: `The user said: "we finally got the keys to our apartment in leith".`
    ///
    /// Hypotheticals, hedges, requests and sentences about someone else are left out; a newer
    /// statement about a topic of one value (home, work, name, pronouns), or one that tells of a
    /// change, replaces older ones, and forgetting by topic removes them like any memory. It
    /// finds more of what people say in passing, at a cost in precision and in stale values:
    /// on `memory-eval`'s held-out sets written blind, the answer was in the prompt 0.71 and
    /// 0.50 of the time with it against 0.64 and 0.43 without, stale or forgotten values were
    /// kept out 0.60 and 0.63 against 0.53 and 0.73, and 0.93 and 0.85 of what it wrote was
    /// right against 0.97 and 0.94. Off by default.
    pub const fn with_own_words(mut self, on: bool) -> Self {
        self.own_words = on;
        self
    }
}

impl MemoryExtractor for RuleExtractor {
    fn name(&self) -> &str {
        "rules"
    }

    fn extract(&self, turn: &[ChatMessage], existing: &[Memory]) -> Result<Vec<MemoryOp>, MemoryError> {
        let said = turn
            .iter()
            .filter(|m| m.role == Role::User)
            .flat_map(|m| said::read_message(&m.content, self.own_words));
        let ops = consolidate(said, existing);
        tracing::debug!(extractor = "rules", ops = ops.len(), "extracted memory operations");
        Ok(ops)
    }
}
