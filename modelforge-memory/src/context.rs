//! Context assembly: the system prompt, what is remembered about the user, and as much recent
//! history as fits the token budget, with a report of everything left out.
//!
//! A context window is a hard limit, and a prompt that overflows it either fails in the backend
//! or is cut somewhere the caller did not choose. Assembly therefore decides up front what to
//! drop (oldest history first, then older memories), and says so in a [`ContextReport`]: nothing
//! is ever cut silently.

use std::fmt;

use modelforge_core::{ChatMessage, Memory, MemoryId, Role};
use serde::{Deserialize, Serialize};

/// Introduces the memories in the system message.
pub const MEMORY_HEADER: &str = "What you know about the user from earlier conversations:";

/// How many tokens the assembled prompt may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextBudget {
    /// The model's context window, in tokens.
    pub context_length: u32,
    /// Tokens reserved for the reply (the generation's `max_tokens`).
    pub max_tokens: u32,
    /// Tokens the chat template adds around each message (role markers, separators).
    pub per_message_overhead: u32,
}

impl ContextBudget {
    /// The template overhead assumed per message when none is given.
    pub const DEFAULT_PER_MESSAGE_OVERHEAD: u32 = 8;

    /// A budget with the default per-message overhead of 8 tokens.
    pub const fn new(context_length: u32, max_tokens: u32) -> Self {
        Self { context_length, max_tokens, per_message_overhead: Self::DEFAULT_PER_MESSAGE_OVERHEAD }
    }

    /// Tokens left for the prompt: the context length minus the reply's tokens.
    pub const fn prompt_budget(&self) -> u32 {
        self.context_length.saturating_sub(self.max_tokens)
    }
}

impl Default for ContextBudget {
    /// 4096 tokens of context, 512 of them for the reply.
    fn default() -> Self {
        Self::new(4096, 512)
    }
}

/// What to assemble a context from.
#[derive(Clone, Copy, Debug)]
pub struct ContextRequest<'a> {
    /// Instructions for the model; may be empty.
    pub system_prompt: &'a str,
    /// The user's memories worth mentioning (e.g. the results of retrieval).
    pub memories: &'a [Memory],
    /// The conversation, oldest first. The last message is the new user message and is always
    /// kept.
    pub history: &'a [ChatMessage],
}

/// The messages to render with the chat template, and what was left out to make them fit.
#[derive(Clone, Debug, PartialEq)]
pub struct AssembledContext {
    /// A system message (unless both prompt and memories are empty), then the kept history.
    pub messages: Vec<ChatMessage>,
    /// What was kept and left out.
    pub report: ContextReport,
}

/// What assembly kept and left out. All token figures come from the caller's counter, each
/// message costing its content's tokens plus the per-message overhead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextReport {
    /// Tokens available to the prompt (context length minus the reply's tokens).
    pub budget_tokens: u32,
    /// Tokens the assembled messages use; never more than `budget_tokens`.
    pub used_tokens: u32,
    /// Memories included in the system message, in the order they appear there.
    pub memories_used: Vec<MemoryId>,
    /// Memories that did not fit, newest first.
    pub memories_left_out: Vec<MemoryId>,
    /// History messages kept, including the new user message.
    pub history_used: usize,
    /// The oldest history messages dropped.
    pub history_left_out: usize,
}

impl ContextReport {
    /// Whether every memory and every history message made it in.
    pub fn is_complete(&self) -> bool {
        self.memories_left_out.is_empty() && self.history_left_out == 0
    }

    /// One line saying what was left out, e.g. "left out 4 older messages and 1 memory to fit
    /// 2048 tokens".
    pub fn summary(&self) -> String {
        let mut dropped = Vec::new();
        if self.history_left_out > 0 {
            dropped.push(count(self.history_left_out, "older message", "older messages"));
        }
        if !self.memories_left_out.is_empty() {
            dropped.push(count(self.memories_left_out.len(), "memory", "memories"));
        }
        if dropped.is_empty() {
            format!(
                "nothing left out: {} and {} use {} of {} tokens",
                count(self.history_used, "message", "messages"),
                count(self.memories_used.len(), "memory", "memories"),
                self.used_tokens,
                self.budget_tokens
            )
        } else {
            format!("left out {} to fit {} tokens", dropped.join(" and "), self.budget_tokens)
        }
    }
}

impl fmt::Display for ContextReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What went wrong while assembling a context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// Even the system prompt and the new message alone exceed the budget.
    #[error(
        "the system prompt and the new message need {needed} tokens but only {budget} are left for \
         the prompt (context length minus the reply's max tokens); shorten the message or the system \
         prompt, or lower max tokens"
    )]
    TooLong {
        /// Tokens the system prompt and the new message need, overhead included.
        needed: u32,
        /// Tokens available to the prompt.
        budget: u32,
    },
}

/// Assembles the messages for one reply within `budget`, counting tokens with `count_tokens`
/// (e.g. the loaded model's tokenizer).
///
/// The system prompt and the newest history message are required; if they do not fit, the
/// result is [`ContextError::TooLong`]. Memories come next, newest first, until one does not
/// fit; then history, newest first, until one does not fit. Kept history never starts with an
/// assistant message whose question was dropped.
pub fn assemble_context(
    req: &ContextRequest<'_>,
    budget: &ContextBudget,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Result<AssembledContext, ContextError> {
    let counter = Counter { count_tokens, overhead: budget.per_message_overhead };
    let budget_tokens = budget.prompt_budget();
    let (older, newest) = match req.history.split_last() {
        Some((newest, older)) => (older, Some(newest)),
        None => (req.history, None),
    };
    let newest_cost = newest.map_or(0, |m| counter.cost(&m.content));

    let memories = select_memories(req, &counter, budget_tokens.saturating_sub(newest_cost));
    let needed = memories.system_cost.saturating_add(newest_cost);
    if needed > budget_tokens {
        return Err(ContextError::TooLong { needed, budget: budget_tokens });
    }

    let (kept_older, history_cost) = select_history(older, &counter, budget_tokens - needed);
    let mut messages = Vec::with_capacity(kept_older.len() + 2);
    if !memories.system_text.is_empty() {
        messages.push(ChatMessage::system(memories.system_text));
    }
    messages.extend(kept_older.iter().cloned());
    messages.extend(newest.cloned());

    let history_used = kept_older.len() + usize::from(newest.is_some());
    let report = ContextReport {
        budget_tokens,
        used_tokens: needed + history_cost,
        memories_used: memories.used,
        memories_left_out: memories.left_out,
        history_used,
        history_left_out: req.history.len() - history_used,
    };
    if !report.is_complete() {
        tracing::debug!(summary = %report.summary(), "context assembled with omissions");
    }
    Ok(AssembledContext { messages, report })
}

/// Token costs as the chat template sees them.
struct Counter<'a> {
    count_tokens: &'a dyn Fn(&str) -> usize,
    overhead: u32,
}

impl Counter<'_> {
    /// The tokens of one message with `content`.
    fn cost(&self, content: &str) -> u32 {
        let tokens = u32::try_from((self.count_tokens)(content)).unwrap_or(u32::MAX);
        tokens.saturating_add(self.overhead)
    }

    /// The tokens of the system message with `text`; none when there is no system message.
    fn system_cost(&self, text: &str) -> u32 {
        if text.is_empty() { 0 } else { self.cost(text) }
    }
}

struct SelectedMemories {
    system_text: String,
    system_cost: u32,
    used: Vec<MemoryId>,
    left_out: Vec<MemoryId>,
}

/// The system message with as many memories as fit in `limit`, newest first. The whole
/// message is recounted for each addition, so the figure is exact for any tokenizer.
fn select_memories(req: &ContextRequest<'_>, counter: &Counter<'_>, limit: u32) -> SelectedMemories {
    let mut newest_first: Vec<&Memory> = req.memories.iter().rev().collect();
    newest_first.sort_by_key(|m| std::cmp::Reverse(m.created_at));

    let mut chosen: Vec<&Memory> = Vec::new();
    let mut system_text = req.system_prompt.to_owned();
    let mut system_cost = counter.system_cost(&system_text);
    for (i, memory) in newest_first.iter().enumerate() {
        chosen.push(memory);
        let text = system_text_with(req.system_prompt, &chosen);
        let cost = counter.system_cost(&text);
        if cost > limit {
            chosen.pop();
            let left_out = newest_first[i..].iter().map(|m| m.id).collect();
            return finish(system_text, system_cost, &chosen, left_out);
        }
        (system_text, system_cost) = (text, cost);
    }
    finish(system_text, system_cost, &chosen, Vec::new())
}

fn finish(
    system_text: String,
    system_cost: u32,
    chosen: &[&Memory],
    left_out: Vec<MemoryId>,
) -> SelectedMemories {
    // Rendered oldest first (see `system_text_with`), so report them in that order.
    let used = chosen.iter().rev().map(|m| m.id).collect();
    SelectedMemories { system_text, system_cost, used, left_out }
}

/// The system prompt followed by the memories section. `newest_first` is rendered oldest
/// first, so the list reads in the order things were learned.
fn system_text_with(system_prompt: &str, newest_first: &[&Memory]) -> String {
    let mut text = system_prompt.to_owned();
    if newest_first.is_empty() {
        return text;
    }
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(MEMORY_HEADER);
    for memory in newest_first.iter().rev() {
        text.push_str("\n- ");
        text.push_str(&memory.content);
    }
    text
}

/// The longest suffix of `older` that fits in `limit`, and its cost. If messages were dropped,
/// leading assistant messages are dropped too, so the kept history does not open with a reply
/// to a question the model cannot see.
fn select_history<'h>(
    older: &'h [ChatMessage],
    counter: &Counter<'_>,
    limit: u32,
) -> (&'h [ChatMessage], u32) {
    let mut start = older.len();
    let mut cost = 0u32;
    while start > 0 {
        let next = cost.saturating_add(counter.cost(&older[start - 1].content));
        if next > limit {
            break;
        }
        cost = next;
        start -= 1;
    }
    if start > 0 {
        while start < older.len() && older[start].role == Role::Assistant {
            cost -= counter.cost(&older[start].content);
            start += 1;
        }
    }
    (&older[start..], cost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn budget(context_length: u32) -> ContextBudget {
        ContextBudget { context_length, max_tokens: 0, per_message_overhead: 0 }
    }

    #[test]
    fn history_is_cut_at_the_oldest_whole_message() {
        let older = [ChatMessage::assistant("a b"), ChatMessage::user("c d e"), ChatMessage::assistant("f")];
        let counter = Counter { count_tokens: &words, overhead: 1 };
        // Costs: 3, 4, 2. With 6, the last two fit.
        let (kept, cost) = select_history(&older, &counter, 6);
        assert_eq!(kept, &older[1..]);
        assert_eq!(cost, 6);
    }

    #[test]
    fn a_leading_assistant_message_is_dropped_after_a_cut() {
        let older = [ChatMessage::user("a b c"), ChatMessage::assistant("d"), ChatMessage::user("e")];
        let counter = Counter { count_tokens: &words, overhead: 0 };
        let (kept, cost) = select_history(&older, &counter, 2);
        assert_eq!(kept, &older[2..]);
        assert_eq!(cost, 1);
    }

    #[test]
    fn an_opening_assistant_greeting_is_kept_when_nothing_was_cut() {
        let older = [ChatMessage::assistant("hello"), ChatMessage::user("hi")];
        let counter = Counter { count_tokens: &words, overhead: 0 };
        let (kept, _) = select_history(&older, &counter, 100);
        assert_eq!(kept, &older[..]);
    }

    #[test]
    fn an_empty_prompt_without_memories_gives_no_system_message() {
        let history = [ChatMessage::user("hi")];
        let req = ContextRequest { system_prompt: "", memories: &[], history: &history };
        let ctx = assemble_context(&req, &budget(10), &words).unwrap();
        assert_eq!(ctx.messages, history);
        assert_eq!(ctx.report.used_tokens, 1);
    }

    #[test]
    fn summary_names_what_was_left_out() {
        let report = ContextReport {
            budget_tokens: 2048,
            used_tokens: 2000,
            memories_used: vec![],
            memories_left_out: vec![MemoryId::new()],
            history_used: 2,
            history_left_out: 4,
        };
        assert_eq!(report.summary(), "left out 4 older messages and 1 memory to fit 2048 tokens");
        assert!(!report.is_complete());
        let complete = ContextReport { memories_left_out: vec![], history_left_out: 0, ..report };
        assert_eq!(complete.summary(), "nothing left out: 2 messages and 0 memories use 2000 of 2048 tokens");
        assert!(complete.is_complete());
    }
}
