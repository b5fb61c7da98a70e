//! Memory for ModelForge: learn facts about the user from conversations, and assemble each
//! prompt from the system prompt, those facts and as much history as fits.
//!
//! Two decisions shape the crate.
//!
//! **Extraction starts with rules.** [`RuleExtractor`] recognizes a user's name, home, likes
//! and dislikes with fixed English and Chinese patterns, and writes each as a fixed sentence
//! around the value the user typed ("The user lives in 上海."). It needs no model, so it works
//! the same with a 0.5B model on a laptop as with a large one, and it cannot hallucinate. It
//! consolidates like Mem0: a fact already known is skipped, a changed one updates the memory
//! that held the old value. Model-based extractors implement the same
//! [`MemoryExtractor`](modelforge_core::MemoryExtractor) trait, and [`apply_ops`] applies
//! anyone's operations through a [`SessionStore`](modelforge_core::SessionStore).
//!
//! **Assembly reports what it drops.** A context window is a hard limit; a prompt that
//! overflows it fails or gets cut where nobody chose. [`assemble_context`] decides up front
//! (oldest history first, then older memories), never drops the new message, and returns a
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
//! // A store would persist the operations (see `apply_ops`); here they become memories directly.
//! let user = UserId::new();
//! let memories: Vec<Memory> = ops
//!     .into_iter()
//!     .filter_map(|op| match op {
//!         MemoryOp::Add { kind, content } => Some(Memory {
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
//! let request = ContextRequest { system_prompt: "You are a helpful assistant.", memories: &memories, history: &history };
//! let words = |text: &str| text.split_whitespace().count();
//! let context = assemble_context(&request, &ContextBudget::new(2048, 256), &words)?;
//!
//! assert!(context.messages[0].content.contains("The user lives in Lyon."));
//! assert_eq!(context.messages[1], history[0]);
//! assert!(context.report.is_complete(), "{}", context.report.summary());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod apply;
mod clauses;
mod consolidate;
mod context;
mod fact;
mod rules;

pub use apply::apply_ops;
pub use context::{
    AssembledContext, ContextBudget, ContextError, ContextReport, ContextRequest, MEMORY_HEADER,
    assemble_context,
};
pub use rules::RuleExtractor;
