//! Memory for ModelForge: learn facts about the user from conversations, keep them in a
//! per-user knowledge base, find the ones relevant to a new message, and assemble each prompt
//! from the system prompt, those memories and as much history as fits.
//!
//! [`Conversation`] puts it together: the chat turn with memory that the CLI, the server and
//! the memory evaluation all run, and any app can hold in an `Arc` (see its example).
//!
//! Five decisions shape the crate.
//!
//! **Extraction starts with rules.** [`RuleExtractor`] recognizes a user's name, home, job,
//! employer, family, likes, dislikes, allergies, car and a few traits, plus "remember that
//! ..." and "forget ..." requests, with fixed English and Chinese patterns, and writes each as a
//! fixed sentence in the user's language around the value the user typed ("The user lives in
//! Lyon.", "用户住在上海。"). It needs no model and cannot hallucinate. [`LlmExtractor`] asks
//! the loaded model for facts as JSON under a grammar ([`FACTS_GRAMMAR`]), so even a 135M
//! model cannot break the format; its facts must share a word with the message to be kept.
//!
//! **Consolidation like Mem0.** [`MemoryBank::learn`] compares each new fact with the five most
//! similar memories: a repeat is skipped, a new value of the same thing (a move, a new job)
//! updates the old memory in place, a forget request deletes, anything else is added.
//!
//! **Retrieval by meaning and by keyword.** [`MemoryIndex`] keeps a user's vectors (from any
//! [`Embedder`](modelforge_core::Embedder), all-MiniLM-L6-v2 by default) as 8-bit integers and
//! their keywords in an inverted index; a search adds the similarity's rise above the query's
//! baseline to the share of matching keywords, which is what finds Chinese text and names an
//! English embedder cannot.
//!
//! **Recall a person would trust.** [`MemoryBank::recall`] does not leave the prompt to word
//! overlap: when all of a user's memories fit their share of the budget, all go in; when they
//! do not, what keeps the user safe or says who they are (allergies, diet, health, name,
//! family) goes first, whatever the question, and search decides the rest.
//!
//! **Assembly reports what it drops.** A context window is a hard limit. [`assemble_context`]
//! gives memories at most their share of the budget (25% by default), takes a summary of older
//! turns ([`summarize`]) when the caller has one, never drops the new message, and returns a
//! [`ContextReport`] so the CLI and server can show "left out 4 older messages to fit 2048
//! tokens" instead of cutting silently.
//!
//! ```
//! use modelforge_core::{ChatMessage, Memory, MemoryExtractor, MemoryId, MemoryOp, UserId};
//! use modelforge_memory::{ContextBudget, ContextRequest, RuleExtractor, assemble_context};
//!
//! let said = [ChatMessage::user("My name is Lina and I live in Lyon.")];
//! let ops = RuleExtractor::new().extract(&said, &[])?;
//! assert_eq!(ops.len(), 2);
//!
//! // A `MemoryBank` would consolidate and store the operations; here they become memories directly.
//! let user = UserId::new();
//! let memories: Vec<Memory> = ops
//!     .into_iter()
//!     .filter_map(|op| match op {
//!         MemoryOp::Add { kind, content, .. } => Some(Memory {
//!             id: MemoryId::new(),
//!             user_id: user,
//!             kind,
//!             content,
//!             source_session_id: None,
//!             created_at: chrono::Utc::now(),
//!         }),
//!         _ => None,
//!     })
//!     .collect();
//!
//! let history = [ChatMessage::user("Where do I live?")];
//! let request = ContextRequest {
//!     system_prompt: "You are a helpful assistant.",
//!     memories: &memories,
//!     summary: None,
//!     summarized_messages: 0,
//!     history: &history,
//! };
//! let words = |text: &str| text.split_whitespace().count();
//! let context = assemble_context(&request, &ContextBudget::new(2048, 256), &words)?;
//!
//! assert!(context.messages[0].content.contains("The user lives in Lyon."));
//! assert_eq!(context.messages[1], history[0]);
//! assert!(context.report.is_complete(), "{}", context.report.summary());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
// Library code returns errors; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod bank;
mod clauses;
mod consolidate;
mod context;
mod conversation;
mod fact;
mod index;
mod keywords;
mod llm;
mod rules;
mod sources;
mod state;
mod summary;
#[cfg(feature = "web")]
pub mod web;

pub use bank::{ConsolidationOptions, Learned, MemoryBank, RecallOptions};
pub use context::{
    AssembledContext, ContextBudget, ContextError, ContextReport, ContextRequest, MEMORY_HEADER,
    SUMMARY_HEADER, assemble_context,
};
pub use conversation::{
    ChatError, ChatOptions, Conversation, DEFAULT_SYSTEM_PROMPT, MemoryMode, TurnOptions, TurnOutcome,
};
pub use index::{Hit, MemoryIndex, SearchOptions};
pub use llm::{FACTS_GRAMMAR, LlmExtractor};
pub use rules::RuleExtractor;
pub use sources::{
    PageFailure, QUESTION_HEADER, QueriesBy, SOURCES_HEADER, Source, SourceRef, WEB_FAILED_RULES, WEB_RULES,
    WebReport, WebTimings, with_sources,
};
pub use state::{DirStateCache, StateCache};
pub use summary::{SUMMARY_MAX_TOKENS, summarize};
#[cfg(feature = "web")]
pub use web::{JsonFields, JsonProvider, SearxngProvider, WebOptions, WebSearch};
