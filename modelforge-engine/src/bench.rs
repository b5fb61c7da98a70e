//! llama-bench-style speed measurement, shared by every backend.

use serde::Serialize;

use modelforge_core::BackendError;

/// What to measure: one batch of `prompt_tokens` random tokens (prompt processing), then
/// `generated_tokens` single-token decodes (text generation), after a warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// Prompt tokens processed in one batch (`pp`).
    pub prompt_tokens: usize,
    /// Tokens generated one at a time (`tg`).
    pub generated_tokens: usize,
    /// Sequences decoding together; 1 measures a single stream.
    pub parallel: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self { prompt_tokens: 512, generated_tokens: 128, parallel: 1 }
    }
}

/// Measured speeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// Which backend ran, e.g. `llama-cpp`.
    pub backend: String,
    /// Prompt tokens per second.
    pub pp_tps: f64,
    /// Generated tokens per second, summed over all parallel sequences.
    pub tg_tps: f64,
    /// The configuration measured.
    #[serde(skip)]
    pub config: BenchConfig,
}

/// A model that can measure its own raw speed, below the chat layer.
pub trait Bench {
    /// Runs the measurement described by `config`.
    fn bench(&self, config: &BenchConfig) -> Result<BenchReport, BackendError>;
}
