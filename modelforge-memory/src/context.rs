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

/// Introduces the summary of older turns in the system message.
pub const SUMMARY_HEADER: &str = "Summary of the earlier part of this conversation:";

/// How many tokens the assembled prompt may use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextBudget {
    /// The model's context window, in tokens.
    pub context_length: u32,
    /// Tokens reserved for the reply (the generation's `max_tokens`).
    pub max_tokens: u32,
    /// Tokens the chat template adds around each message (role markers, separators).
    pub per_message_overhead: u32,
    /// The most of the prompt budget memories may take, from 0 to 1 (default 0.25).
    pub memory_share: f32,
}

impl ContextBudget {
    /// The template overhead assumed per message when none is given.
    pub const DEFAULT_PER_MESSAGE_OVERHEAD: u32 = 8;

    /// The share of the prompt budget memories may take when none is given.
    pub const DEFAULT_MEMORY_SHARE: f32 = 0.25;

    /// A budget with the default per-message overhead of 8 tokens and memory share of 25%.
    pub const fn new(context_length: u32, max_tokens: u32) -> Self {
        Self {
            context_length,
            max_tokens,
            per_message_overhead: Self::DEFAULT_PER_MESSAGE_OVERHEAD,
            memory_share: Self::DEFAULT_MEMORY_SHARE,
        }
    }

    /// The same budget with memories limited to `share` of the prompt budget.
    pub const fn with_memory_share(mut self, share: f32) -> Self {
        self.memory_share = share;
        self
    }

    /// The most tokens memories may take.
    pub fn memory_budget(&self) -> u32 {
        (self.prompt_budget() as f32 * self.memory_share.clamp(0.0, 1.0)) as u32
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
    /// The user's memories worth mentioning, most relevant first (e.g. the results of
    /// retrieval): when they do not all fit, the last ones are left out.
    pub memories: &'a [Memory],
    /// A summary of the conversation before `history`, if older turns were summarized.
    pub summary: Option<&'a str>,
    /// How many messages `summary` stands for (reported back).
    pub summarized_messages: usize,
    /// The conversation after the summarized part, oldest first. The last message is the new
    /// user message and is always kept.
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
    /// Memories included in the system message, in the order they appear there (oldest
    /// first).
    pub memories_used: Vec<MemoryId>,
    /// Memories that did not fit, in the order they were given.
    pub memories_left_out: Vec<MemoryId>,
    /// History messages kept, including the new user message.
    pub history_used: usize,
    /// Older messages stood for by a summary in the system message.
    #[serde(default)]
    pub history_summarized: usize,
    /// The oldest history messages dropped (not summarized).
    pub history_left_out: usize,
    /// Web sources put into the prompt (with the new message).
    #[serde(default)]
    pub sources_used: usize,
    /// Web sources found but left out to fit their share of the budget.
    #[serde(default)]
    pub sources_left_out: usize,
}

impl ContextReport {
    /// Whether every memory and every history message made it in.
    pub fn is_complete(&self) -> bool {
        self.memories_left_out.is_empty() && self.history_left_out == 0 && self.sources_left_out == 0
    }

    /// One line saying what was left out, e.g. "left out 4 older messages and 1 memory to fit
    /// 2048 tokens".
    pub fn summary(&self) -> String {
        let mut dropped = Vec::new();
        if self.history_left_out > 0 {
            dropped.push(count(self.history_left_out, "older message", "older messages"));
        }
        let summarized = if self.history_summarized > 0 {
            format!("; {} summarized", count(self.history_summarized, "older message", "older messages"))
        } else {
            String::new()
        };
        if !self.memories_left_out.is_empty() {
            dropped.push(count(self.memories_left_out.len(), "memory", "memories"));
        }
        if self.sources_left_out > 0 {
            dropped.push(count(self.sources_left_out, "web source", "web sources"));
        }
        if dropped.is_empty() {
            format!(
                "nothing left out: {} and {} use {} of {} tokens{summarized}",
                count(self.history_used, "message", "messages"),
                count(self.memories_used.len(), "memory", "memories"),
                self.used_tokens,
                self.budget_tokens
            )
        } else {
            format!("left out {} to fit {} tokens{summarized}", dropped.join(" and "), self.budget_tokens)
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
/// The system prompt (with the summary of older turns, if any) and the newest history message
/// are required; if they do not fit, the result is [`ContextError::TooLong`]. Memories come
/// next, in the order given (most relevant first), until one does not fit in the memory share
/// of the budget, and are rendered oldest first so the system message is stable; then
/// history, newest first, until one does not fit. Kept history never starts with an assistant
/// message whose question was dropped.
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

    let memory_limit = budget.memory_budget().saturating_add(counter.system_cost(&base_system(req)));
    let memories =
        select_memories(req, &counter, memory_limit.min(budget_tokens.saturating_sub(newest_cost)));
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
        history_summarized: if req.summary.is_some() { req.summarized_messages } else { 0 },
        history_left_out: req.history.len() - history_used,
        sources_used: 0,
        sources_left_out: 0,
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

/// The system prompt (and summary) before any memory is added.
fn base_system(req: &ContextRequest<'_>) -> String {
    system_text_with(req, &[])
}

/// The system message with as many memories as fit in `limit`, in the order given. The whole
/// message is recounted for each addition, so the figure is exact for any tokenizer.
fn select_memories(req: &ContextRequest<'_>, counter: &Counter<'_>, limit: u32) -> SelectedMemories {
    let mut chosen: Vec<&Memory> = Vec::new();
    let mut system_text = base_system(req);
    let mut system_cost = counter.system_cost(&system_text);
    for (i, memory) in req.memories.iter().enumerate() {
        chosen.push(memory);
        let text = system_text_with(req, &chosen);
        let cost = counter.system_cost(&text);
        if cost > limit {
            chosen.pop();
            let left_out = req.memories[i..].iter().map(|m| m.id).collect();
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
    let used = in_time_order(chosen).iter().map(|m| m.id).collect();
    SelectedMemories { system_text, system_cost, used, left_out }
}

/// Memories are chosen by relevance but rendered oldest first, so the same memories always
/// give the same system message, whatever the question: a conversation's cached prefix (KV
/// cache) stays valid from one turn to the next.
fn in_time_order<'m>(memories: &[&'m Memory]) -> Vec<&'m Memory> {
    let mut sorted = memories.to_vec();
    sorted.sort_by_key(|m| (m.created_at, m.id));
    sorted
}

/// The system prompt, the memories section and the summary of older turns.
fn system_text_with(req: &ContextRequest<'_>, memories: &[&Memory]) -> String {
    let mut text = req.system_prompt.to_owned();
    let mut section = |header: &str, body: &mut dyn Iterator<Item = String>| {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(header);
        for line in body {
            text.push_str(&line);
        }
    };
    if !memories.is_empty() {
        section(MEMORY_HEADER, &mut in_time_order(memories).iter().map(|m| format!("\n- {}", m.content)));
    }
    if let Some(summary) = req.summary.filter(|s| !s.trim().is_empty()) {
        section(SUMMARY_HEADER, &mut std::iter::once(format!("\n{}", summary.trim())));
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
        ContextBudget { context_length, max_tokens: 0, per_message_overhead: 0, memory_share: 1.0 }
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
        let req = ContextRequest {
            system_prompt: "",
            memories: &[],
            summary: None,
            summarized_messages: 0,
            history: &history,
        };
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
            history_summarized: 0,
            history_left_out: 4,
            sources_used: 0,
            sources_left_out: 0,
        };
        assert_eq!(report.summary(), "left out 4 older messages and 1 memory to fit 2048 tokens");
        assert!(!report.is_complete());
        let complete = ContextReport { memories_left_out: vec![], history_left_out: 0, ..report };
        assert_eq!(complete.summary(), "nothing left out: 2 messages and 0 memories use 2000 of 2048 tokens");
        assert!(complete.is_complete());
    }
}
