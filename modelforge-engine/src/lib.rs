//! Model backends for ModelForge.
//!
//! `modelforge-engine` implements [`modelforge_core::Backend`]. The `llama-cpp` feature (on
//! by default) runs GGUF models through llama.cpp: [`LlamaCppBackend`] validates the file,
//! maps it, renders the model's own chat template with minijinja ([`ChatTemplate`]), and
//! streams UTF-8-safe pieces through a callback that can stop generation at any time.
//!
//! The `candle` feature (on by default) runs llama-family GGUF and safetensors models in pure
//! Rust ([`CandleBackend`]) and embeds text with BERT-family models ([`BertEmbedder`]). Both
//! backends share the chat template and the streaming text pipeline ([`stream`]).
//!
//! Generation is push-style (see [`modelforge_core::PieceCallback`]): the backend drives the
//! token loop because that is where llama.cpp's batching and sampling live, and a callback is
//! all a CLI, a test or an SSE stream needs. Stop strings are matched across pieces and never
//! shown, and a character split over two tokens is only released once complete.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use std::path::Path;
//! use modelforge_core::{Backend, ChatMessage, GenerationParams, LoadOptions};
//! use modelforge_engine::LlamaCppBackend;
//!
//! let model = LlamaCppBackend::new().load(Path::new("SmolLM2-135M-Instruct.Q4_1.gguf"), &LoadOptions::default())?;
//! let reply = model.chat(&[ChatMessage::user("Hi!")], &GenerationParams::greedy(), &mut |piece| {
//!     print!("{piece}");
//!     ControlFlow::Continue(())
//! })?;
//! println!("\n[{} after {} tokens]", reply.finish_reason.as_str(), reply.usage.completion_tokens);
//! # Ok::<(), modelforge_core::BackendError>(())
//! ```
#![deny(missing_docs)]
// Library code returns errors; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bench;
pub mod chat_template;
pub mod stop;
pub mod stream;
pub mod turn_format;
pub mod utf8;

#[cfg(feature = "candle")]
pub mod candle;

#[cfg(feature = "llama-cpp")]
mod llama;
#[cfg(feature = "llama-cpp")]
mod sampling;

pub use bench::{Bench, BenchConfig, BenchReport};
#[cfg(feature = "candle")]
pub use candle::{BertEmbedder, CandleBackend, CandleModel, MiniLmEmbedder};
pub use chat_template::{ChatTemplate, FALLBACK_TEMPLATE};
#[cfg(feature = "llama-cpp")]
pub use llama::{
    DEFAULT_BATCH_SIZE, DEFAULT_CONTEXT_LENGTH, DEFAULT_MAX_SEQUENCES, KvCacheType, LlamaCppBackend,
    LlamaCppModel,
};
pub use turn_format::{ChatFormat, ChatSetup, FormatSource, TurnFormat, Vocabulary};
