//! The candle backend (feature `candle`): llama-family generation and BERT embeddings in pure
//! Rust.
//!
//! [`CandleBackend`] loads quantized GGUF files of the llama architecture (through its own
//! quantized llama with a ggml-exact Q4_1 kernel) and safetensors llama directories (`config.json`,
//! `tokenizer.json`, one or more `.safetensors` files, through `llama`). It builds the same
//! prompt as the llama.cpp backend ([`ChatTemplate`](crate::ChatTemplate) from the model's
//! own template) and streams through the same text pipeline ([`crate::stream`]), so both
//! backends agree on stop strings, UTF-8 handling and finish reasons.
//!
//! A GGUF has no `tokenizer.json`: [`tokenizer_from_gguf`] rebuilds one from the file's
//! metadata that tokenizes exactly as llama.cpp does.
//!
//! [`BertEmbedder`] ([`MiniLmEmbedder`]) turns texts into L2-normalised sentence vectors.

mod bert;
mod model;
mod q4_1;
mod quantized;
mod sampler;
mod tokenizer;
mod weights;

pub use bert::{BertEmbedder, MiniLmEmbedder};
pub use model::{CANDLE_DEFAULT_CONTEXT_LENGTH, CandleBackend, CandleModel, candle_threads};
pub use tokenizer::tokenizer_from_gguf;
