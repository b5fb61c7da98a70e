//! [`CandleBackend`] and [`CandleModel`]: llama-family generation on candle.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use modelforge_core::gguf::GgufFile;
use modelforge_core::{
    Backend, BackendError, ChatMessage, Generation, GenerationParams, LoadOptions, LoadedModel, ModelFormat,
    ModelInfo, PieceCallback,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokenizers::Tokenizer;

use super::sampler::Sampler;
use super::tokenizer::{ModelTokenizer, gguf_eos_ids, tokenizer_from_gguf};
use super::weights::{self, Decoder, Weights, inference_error};
use crate::bench::{Bench, BenchConfig, BenchReport};
use crate::chat_template::ChatTemplate;
use crate::stream::{self, TokenSource};
use crate::turn_format::{self, ChatFormat, Vocabulary};

/// Context window used when the options do not say and the model allows it; the same default
/// as the llama.cpp backend.
pub const CANDLE_DEFAULT_CONTEXT_LENGTH: u32 = 4096;

/// Prompt tokens run per forward pass when the options do not say.
const DEFAULT_CHUNK: u32 = 512;

/// Loads llama-family models through candle: quantized GGUF files and safetensors directories.
///
/// candle runs on the CPU with its SIMD kernels (build with `-C target-cpu=native`). Its thread
/// count is process-wide: candle sizes its pool once, from `CANDLE_NUM_THREADS`, else
/// `RAYON_NUM_THREADS`, else the physical core count (which a virtual machine may report as
/// half its CPUs). `LoadOptions::threads` cannot change it; a load that asks for another count
/// logs a warning naming the variable. Set `RAYON_NUM_THREADS` in any case: without it candle
/// re-reads `/proc/cpuinfo` on every float matrix product, which cost about 15% of the
/// generation speed of SmolLM2 on 2 cores. Its quantized kernels run on a spinning pool that
/// collapses when it has more threads than free cores: measured on 2 cores with SmolLM2 Q4_1,
/// generation ran at about 55 tokens/s with 2 threads, 36 with 1, and 3 with 3.
#[derive(Clone, Debug, Default)]
pub struct CandleBackend;

impl CandleBackend {
    /// The backend.
    pub fn new() -> Self {
        Self
    }

    /// Loads a GGUF file or a safetensors directory, returning the concrete model type.
    ///
    /// The file is validated with [`modelforge_core::inspect`] first, so a truncated or
    /// foreign file is a clear error before candle reads it.
    pub fn load_model(&self, path: &Path, options: &LoadOptions) -> Result<CandleModel, BackendError> {
        let _span = tracing::info_span!("load_model", backend = "candle", path = %path.display()).entered();
        let info = modelforge_core::inspect(path)?;
        let (weights, mut tokenizer, vocab) = match info.format {
            ModelFormat::Gguf => load_gguf(path, &info)?,
            ModelFormat::Safetensors => load_safetensors(path)?,
        };
        let chat = turn_format::setup(&info, &vocab, options, &tokenizer.bos_text, &tokenizer.eos_text)?;
        tokenizer.add_end_of_generation(&chat.end_tokens);
        let trained = info.context_length.unwrap_or(CANDLE_DEFAULT_CONTEXT_LENGTH).max(16);
        let wanted = options.context_length.unwrap_or(CANDLE_DEFAULT_CONTEXT_LENGTH.min(trained)).max(16);
        let context_length = wanted.min(weights.max_context());
        if context_length < wanted {
            tracing::warn!(wanted, context_length, "candle's llama supports a shorter context; capped");
        }
        let chunk = options.batch_size.unwrap_or(DEFAULT_CHUNK).clamp(1, context_length) as usize;
        let threads = candle_threads();
        if let Some(wanted) = options.threads.filter(|&t| t as usize != threads) {
            tracing::warn!(
                wanted,
                threads,
                "candle's thread count is set per process: set RAYON_NUM_THREADS before the first load"
            );
        }
        tracing::info!(context_length, threads, vocab = tokenizer.vocab_size(), "model loaded");
        Ok(CandleModel {
            info,
            tokenizer,
            template: chat.template,
            chat_format: chat.format,
            stops: chat.stops,
            weights,
            context_length,
            chunk,
        })
    }
}

impl Backend for CandleBackend {
    fn name(&self) -> &str {
        "candle"
    }

    fn load(&self, path: &Path, options: &LoadOptions) -> Result<Arc<dyn LoadedModel>, BackendError> {
        Ok(Arc::new(self.load_model(path, options)?))
    }
}

/// The threads candle's quantized kernels run on in this process: its pool's workers and the
/// calling thread.
pub fn candle_threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

fn load_gguf(path: &Path, info: &ModelInfo) -> Result<(Weights, ModelTokenizer, Vocabulary), BackendError> {
    if info.architecture.as_deref() != Some("llama") {
        return Err(BackendError::Load {
            path: path.to_owned(),
            reason: format!(
                "the candle backend runs GGUF models of the llama architecture; this one is `{}`",
                info.architecture.as_deref().unwrap_or("unknown")
            ),
        });
    }
    let gguf = GgufFile::open(path)?;
    let tokenizer = tokenizer_from_gguf(&gguf)?;
    let bos = gguf.get_u64("tokenizer.ggml.bos_token_id").map(|id| id as u32);
    let tokenizer = ModelTokenizer::new(tokenizer, &gguf_eos_ids(&gguf), bos);
    Ok((weights::load_gguf(path)?, tokenizer, Vocabulary::from_gguf(&gguf)))
}

fn load_safetensors(dir: &Path) -> Result<(Weights, ModelTokenizer, Vocabulary), BackendError> {
    if !dir.is_dir() {
        return Err(BackendError::Load {
            path: dir.to_owned(),
            reason: "the candle backend loads safetensors models from a directory with config.json and \
                     tokenizer.json"
                .into(),
        });
    }
    let config = weights::read_config(dir)?;
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| BackendError::Load {
        path: tokenizer_path.clone(),
        reason: format!("cannot read the tokenizer: {e}"),
    })?;
    let mut eos_ids = config.eos_ids.clone();
    if let Some(id) = special_token_from_config(dir, "eos_token").and_then(|t| tokenizer.token_to_id(&t)) {
        eos_ids.push(id);
    }
    let bos = config
        .bos_id
        .or_else(|| special_token_from_config(dir, "bos_token").and_then(|t| tokenizer.token_to_id(&t)));
    let tokenizer = ModelTokenizer::new(tokenizer, &eos_ids, bos);
    let vocab = Vocabulary::from_safetensors_dir(dir);
    Ok((weights::load_safetensors(dir, &config.config)?, tokenizer, vocab))
}

/// `bos_token` / `eos_token` of `tokenizer_config.json`: a string or `{"content": ..}`.
fn special_token_from_config(dir: &Path, key: &str) -> Option<String> {
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer_config.json")).ok()?).ok()?;
    let value = config.get(key)?;
    value.as_str().or_else(|| value.get("content")?.as_str()).map(str::to_owned)
}

/// A llama-family model loaded by candle. Every generation gets its own KV cache, so several
/// can run at once.
pub struct CandleModel {
    info: ModelInfo,
    tokenizer: ModelTokenizer,
    template: ChatTemplate,
    chat_format: ChatFormat,
    /// Stop strings every generation gets: the model's turn markers.
    stops: Vec<String>,
    weights: Weights,
    context_length: u32,
    chunk: usize,
}

impl std::fmt::Debug for CandleModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleModel")
            .field("info", &self.info)
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

impl CandleModel {
    /// The chat format the model is prompted with.
    pub fn chat_format(&self) -> &ChatFormat {
        &self.chat_format
    }

    fn prompt_tokens(&self, prompt: &str) -> Result<Vec<u32>, BackendError> {
        // A template that already writes the BOS token must not get a second one.
        let bos = &self.tokenizer.bos_text;
        self.tokenizer.encode(prompt, bos.is_empty() || !prompt.starts_with(bos.as_str()))
    }

    /// Refuses an empty prompt, and one that leaves no room in the context for `reserved` more
    /// tokens.
    fn check_fits(&self, prompt: &[u32], reserved: u32) -> Result<(), BackendError> {
        if prompt.is_empty() {
            return Err(BackendError::Inference { context: "the prompt is empty".into(), source: None });
        }
        let prompt_tokens = prompt.len() as u32;
        if prompt_tokens.saturating_add(reserved) > self.context_length {
            return Err(BackendError::ContextOverflow {
                prompt_tokens,
                reserved,
                context_length: self.context_length,
            });
        }
        Ok(())
    }

    /// Teacher forcing: runs `prompt`, then `continuation` one token at a time, and returns for
    /// each token of `continuation` the logits the model gave just before it. Set beside the
    /// tokens another backend chose, these show where two implementations part and by how much.
    pub fn forced_logits(&self, prompt: &[u32], continuation: &[u32]) -> Result<Vec<Vec<f32>>, BackendError> {
        self.check_fits(prompt, continuation.len() as u32)?;
        let mut decoder = self.weights.decoder()?;
        let mut logits = decoder.feed(prompt, 0, self.chunk)?;
        let mut out = Vec::with_capacity(continuation.len());
        for (i, &token) in continuation.iter().enumerate() {
            let next = if i + 1 < continuation.len() {
                decoder.feed(&[token], prompt.len() + i, 1)?
            } else {
                Vec::new()
            };
            out.push(std::mem::replace(&mut logits, next));
        }
        Ok(out)
    }

    /// The tokenizer in use: the model's `tokenizer.json`, or the one rebuilt from GGUF
    /// metadata.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer.inner
    }
}

/// The candle side of [`stream::run`]: logits in, tokens out, one forward pass per token.
struct CandleSource<'m> {
    model: &'m CandleModel,
    decoder: Decoder,
    sampler: Sampler,
    logits: Vec<f32>,
    pos: usize,
}

impl TokenSource for CandleSource<'_> {
    type Token = u32;

    fn next_token(&mut self) -> Result<u32, BackendError> {
        Ok(self.sampler.sample(&mut self.logits))
    }

    fn is_end_of_generation(&self, token: u32) -> bool {
        self.model.tokenizer.is_end_of_generation(token)
    }

    fn token_bytes(&self, token: u32) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.model.tokenizer.token_bytes(token))
    }

    fn accept(&mut self, token: u32) -> Result<(), BackendError> {
        self.logits = self.decoder.feed(&[token], self.pos, 1)?;
        self.pos += 1;
        Ok(())
    }
}

impl LoadedModel for CandleModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn context_length(&self) -> u32 {
        self.context_length
    }

    fn chat_format(&self) -> Option<String> {
        Some(self.chat_format.to_string())
    }

    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, BackendError> {
        self.tokenizer.encode(text, add_special)
    }

    fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        self.template.render(messages, add_generation_prompt)
    }

    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        let _span =
            tracing::info_span!("generate", backend = "candle", max_tokens = params.max_tokens).entered();
        check_sampling_options(params)?;
        let tokens = self.prompt_tokens(prompt)?;
        let prompt_tokens = tokens.len() as u32;
        self.check_fits(&tokens, params.max_tokens)?;
        let mut params = params.clone();
        params.stop.extend(self.stops.iter().cloned());
        let params = &params;
        let mut decoder = self.weights.decoder()?;
        let logits = decoder.feed(&tokens, 0, self.chunk)?;
        let mut source =
            CandleSource { model: self, decoder, sampler: Sampler::new(params), logits, pos: tokens.len() };
        let completion = stream::run(&mut source, params, on_piece)?;
        tracing::debug!(prompt_tokens, completion_tokens = completion.completion_tokens, finish_reason = ?completion.finish_reason, "generation done");
        Ok(completion.into_generation(prompt_tokens))
    }
}

/// The sampling options this backend lacks: one error naming every one the request set.
fn check_sampling_options(params: &GenerationParams) -> Result<(), BackendError> {
    let unsupported: Vec<&str> = [
        ("grammar", params.grammar.is_some()),
        ("logit_bias", !params.logit_bias.is_empty()),
        ("frequency_penalty", params.frequency_penalty != 0.0),
        ("presence_penalty", params.presence_penalty != 0.0),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    Err(BackendError::Unsupported {
        what: format!("the sampling option(s) {}", unsupported.join(", ")),
        backend: "the candle backend (the llama.cpp backend has them)".into(),
    })
}

impl Bench for CandleModel {
    /// Like llama-bench: a warm-up, then `pp` random tokens in one forward pass from an empty
    /// cache, then `tg` single-token decodes from an empty cache (with `parallel` sequences,
    /// one batched forward pass per step).
    fn bench(&self, config: &BenchConfig) -> Result<BenchReport, BackendError> {
        let _span = tracing::info_span!("bench", backend = "candle").entered();
        let vocab = self.tokenizer.vocab_size() as u32;
        let mut rng = StdRng::seed_from_u64(1234);
        let mut random = |n: usize| (0..n).map(|_| rng.gen_range(0..vocab)).collect::<Vec<u32>>();
        let parallel = config.parallel.max(1);

        let mut warm = self.weights.decoder()?;
        warm.feed(&random(16), 0, 16)?;
        warm.feed(&random(1), 16, 1)?;

        let pp_tps = if config.prompt_tokens == 0 {
            0.0
        } else {
            let prompt = random(config.prompt_tokens);
            let mut decoder = self.weights.decoder()?;
            let start = Instant::now();
            decoder.feed(&prompt, 0, config.prompt_tokens)?;
            config.prompt_tokens as f64 / start.elapsed().as_secs_f64()
        };

        let tg_tps = if config.generated_tokens == 0 {
            0.0
        } else {
            let mut decoder = self.weights.decoder()?;
            let start = Instant::now();
            for pos in 0..config.generated_tokens {
                let step = Tensor::new(random(parallel), &Device::Cpu)
                    .and_then(|t| t.unsqueeze(1))
                    .map_err(|e| inference_error("building the input tensor", e))?;
                let logits =
                    decoder.forward(&step, pos).map_err(|e| inference_error("decoding a token", e))?;
                // Reading the logits is part of every real step.
                logits.to_vec2::<f32>().map_err(|e| inference_error("reading the logits", e))?;
            }
            (config.generated_tokens * parallel) as f64 / start.elapsed().as_secs_f64()
        };
        Ok(BenchReport { backend: "candle".into(), pp_tps, tg_tps, config: *config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_sampling_options_are_named_together() {
        assert!(check_sampling_options(&GenerationParams::default()).is_ok());
        let params = GenerationParams {
            logit_bias: vec![(1, 2.0)],
            presence_penalty: 0.5,
            ..GenerationParams::default()
        };
        let err = check_sampling_options(&params).unwrap_err().to_string();
        assert!(err.contains("logit_bias, presence_penalty"), "{err}");
        assert!(!err.contains("grammar") && !err.contains("frequency_penalty"), "{err}");
    }
}
