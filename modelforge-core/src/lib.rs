//! The domain types and stable traits of ModelForge.
//!
//! ModelForge is a family of crates for running local language models with users, chat
//! sessions and memory. This crate holds what they share: ids, chat types, generation
//! settings, model-file inspection, and the traits each other crate implements:
//!
//! - [`Backend`] and [`LoadedModel`]: load a model and generate (`modelforge-engine`);
//! - [`Embedder`]: text to vectors (`modelforge-engine`);
//! - [`SessionStore`]: users, auth, sessions, messages, memories (`modelforge-store`), the
//!   sum of six slices a caller can hold alone: [`UserStore`], [`TokenStore`],
//!   [`ApiKeyStore`], [`ChatStore`], [`MemoryStore`] and [`ExportStore`];
//! - [`MemoryExtractor`]: conversation to memory operations (`modelforge-memory`);
//! - [`ModelHub`]: find and fetch models (`modelforge-hub`);
//! - [`SearchProvider`]: web search results for grounded answers (`modelforge-memory`, feature
//!   `web`).
//!
//! The traits are synchronous and object safe. Inference is CPU-bound and diesel is
//! blocking, so async would only hide the cost; a server moves calls onto a blocking pool, and
//! applications assemble implementations as `Arc<dyn Trait>`. Generation is push-style: the
//! backend drives the token loop and hands each piece of text to a callback that decides
//! whether to go on, which fits llama.cpp, candle and an SSE stream alike.
//!
//! This crate has no heavy dependencies: depending on it never builds llama.cpp or a
//! database driver.
//!
//! ```
//! use std::ops::ControlFlow;
//! use modelforge_core::{ChatMessage, GenerationParams, LoadedModel};
//!
//! /// Works with any backend: llama.cpp, candle, or a test double.
//! fn ask(model: &dyn LoadedModel, question: &str) -> Result<String, modelforge_core::BackendError> {
//!     let messages = [ChatMessage::user(question)];
//!     let reply = model.chat(&messages, &GenerationParams::greedy(), &mut |piece| {
//!         print!("{piece}");
//!         ControlFlow::Continue(())
//!     })?;
//!     Ok(reply.text)
//! }
//! ```
#![deny(missing_docs)]
// Library code returns errors; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod backend;
mod chat;
mod error;
mod generation;
pub mod gguf;
mod hub;
mod ids;
pub mod json_schema;
mod memory;
mod model;
mod search;
mod store;

pub use backend::{
    Backend, DetailedCallback, Embedder, GenerationSink, LoadOptions, LoadedModel, PieceCallback,
};
pub use chat::{ChatMessage, Role, ToolCall};
pub use error::{BackendError, BoxError, HubError, MemoryError, ModelFileError, StoreError};
pub use generation::{FinishReason, Generation, GenerationParams, TokenLogprob, TopLogprob, Usage};
pub use hub::{CachedModel, CancelToken, ModelHub, Progress, RepoFile, RepoSummary};
pub use ids::{ApiKeyId, InvalidId, MemoryId, MessageId, SessionId, UserId};
pub use memory::{MemoryExtractor, MemoryOp};
pub use model::{ModelFormat, ModelInfo, detect_format, inspect};
pub use search::{SearchError, SearchHit, SearchProvider, WebSearchOptions};
pub use store::{
    Actor, ApiKey, ApiKeyStore, ChatStore, CreatedApiKey, ExportStore, ImportSummary, Memory, MemoryDetails,
    MemoryKind, MemoryRecord, MemoryStore, MemoryUpdate, Message, MessagePage, NewMemory, NewSession,
    NewUser, Page, Session, SessionExport, SessionPage, SessionQuery, SessionStore, SessionSummary,
    SessionUpdate, TokenPair, TokenStore, User, UserExport, UserRole, UserStore,
};
