//! The llama.cpp backend (feature `llama-cpp`).

use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use modelforge_core::{
    Backend, BackendError, BoxError, ChatMessage, FinishReason, Generation, GenerationParams, LoadOptions,
    LoadedModel, ModelFormat, ModelInfo, PieceCallback, Usage,
};

use crate::chat_template::ChatTemplate;
use crate::sampling::sampler_chain;
use crate::stop::{StopCheck, StopMatcher};
use crate::utf8::Utf8Decoder;

/// Context window used when neither the options nor a smaller training context say otherwise:
/// large enough for long chats, small enough that the KV cache stays modest on a laptop.
pub const DEFAULT_CONTEXT_LENGTH: u32 = 4096;

/// Prompt tokens decoded per batch when the options do not say.
pub const DEFAULT_BATCH_SIZE: u32 = 512;

/// llama.cpp may be initialised once per process; every model shares this.
fn llama_backend() -> Result<&'static LlamaBackend, BackendError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| BackendError::Inference {
            context: format!("initialising llama.cpp: {reason}"),
            source: None,
        })
}

/// Loads GGUF models through llama.cpp.
#[derive(Clone, Debug, Default)]
pub struct LlamaCppBackend;

impl LlamaCppBackend {
    /// The backend. llama.cpp itself is initialised on first load.
    pub fn new() -> Self {
        Self
    }

    /// Loads a GGUF file, returning the concrete model type.
    ///
    /// The file's structure is validated first, so a truncated or foreign file is a clear
    /// error instead of a crash inside llama.cpp.
    pub fn load_model(&self, path: &Path, options: &LoadOptions) -> Result<LlamaCppModel, BackendError> {
        let _span = tracing::info_span!("load_model", path = %path.display()).entered();
        let info = modelforge_core::inspect(path)?;
        if info.format != ModelFormat::Gguf {
            return Err(BackendError::Load {
                path: path.to_owned(),
                reason: "the llama.cpp backend needs a GGUF file; this is a safetensors model".into(),
            });
        }
        let backend = llama_backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).map_err(|e| {
            BackendError::Load { path: path.to_owned(), reason: format!("llama.cpp refused the file ({e})") }
        })?;
        let vocab = model.vocab();
        let special_text = |token: LlamaToken| {
            if token.0 < 0 {
                String::new()
            } else {
                String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned()
            }
        };
        let bos_text = special_text(vocab.bos());
        let eos_text = special_text(vocab.eos());
        let template = ChatTemplate::new(info.chat_template.as_deref(), &bos_text, &eos_text)?;
        let train_ctx = model.n_ctx_train().max(1);
        let context_length = options.context_length.unwrap_or(DEFAULT_CONTEXT_LENGTH.min(train_ctx)).max(16);
        let threads = options.threads.map_or_else(default_threads, |t| t.max(1) as i32);
        let batch_size = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).clamp(1, context_length);
        tracing::info!(context_length, threads, batch_size, "model loaded");
        Ok(LlamaCppModel {
            model,
            info,
            template,
            bos_text,
            context_length,
            threads,
            batch_size,
            busy: Mutex::new(()),
        })
    }
}

fn default_threads() -> i32 {
    std::thread::available_parallelism().map_or(4, |n| n.get() as i32)
}

impl Backend for LlamaCppBackend {
    fn name(&self) -> &str {
        "llama-cpp"
    }

    fn load(&self, path: &Path, options: &LoadOptions) -> Result<Arc<dyn LoadedModel>, BackendError> {
        Ok(Arc::new(self.load_model(path, options)?))
    }
}

/// A GGUF model loaded by llama.cpp (memory-mapped).
pub struct LlamaCppModel {
    model: LlamaModel,
    info: ModelInfo,
    template: ChatTemplate,
    bos_text: String,
    context_length: u32,
    threads: i32,
    batch_size: u32,
    /// One generation at a time: each builds its own context on this model.
    busy: Mutex<()>,
}

impl std::fmt::Debug for LlamaCppModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaCppModel")
            .field("info", &self.info)
            .field("context_length", &self.context_length)
            .finish()
    }
}

fn inference_error(context: &str, err: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Inference { context: context.to_owned(), source: Some(Box::new(err) as BoxError) }
}

impl LlamaCppModel {
    fn prompt_tokens(&self, prompt: &str) -> Vec<LlamaToken> {
        // A template that already writes the BOS token must not get a second one.
        let add_bos = self.bos_text.is_empty() || !prompt.starts_with(&self.bos_text);
        self.model.vocab().tokenize(prompt.as_bytes(), add_bos, true)
    }

    fn new_context(&self) -> Result<LlamaContext<'_>, BackendError> {
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.context_length))
            .with_n_batch(self.batch_size)
            .with_n_ubatch(self.batch_size)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        self.model
            .new_context(llama_backend()?, params)
            .map_err(|e| inference_error("creating a llama.cpp context", e))
    }

    /// Decodes `tokens` starting at position 0, in batches; logits only for the last token.
    fn prefill(
        &self,
        ctx: &mut LlamaContext<'_>,
        tokens: &[LlamaToken],
    ) -> Result<LlamaBatch<'static>, BackendError> {
        let mut batch = LlamaBatch::new(self.batch_size as usize, 1);
        let last = tokens.len() - 1;
        for (chunk_index, chunk) in tokens.chunks(self.batch_size as usize).enumerate() {
            batch.clear();
            for (i, &token) in chunk.iter().enumerate() {
                let pos = chunk_index * self.batch_size as usize + i;
                batch
                    .add(token, pos as i32, &[0], pos == last)
                    .map_err(|e| inference_error("building a batch", e))?;
            }
            ctx.decode(&mut batch).map_err(|e| inference_error("decoding the prompt", e))?;
        }
        Ok(batch)
    }
}

impl LoadedModel for LlamaCppModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn context_length(&self) -> u32 {
        self.context_length
    }

    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, BackendError> {
        Ok(self
            .model
            .vocab()
            .tokenize(text.as_bytes(), add_special, true)
            .into_iter()
            .map(|t| t.0 as u32)
            .collect())
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
        let _span = tracing::info_span!("generate", max_tokens = params.max_tokens).entered();
        let tokens = self.prompt_tokens(prompt);
        let prompt_tokens = tokens.len() as u32;
        if tokens.is_empty() {
            return Err(BackendError::Inference { context: "the prompt is empty".into(), source: None });
        }
        if prompt_tokens + params.max_tokens > self.context_length {
            return Err(BackendError::ContextOverflow {
                prompt_tokens,
                reserved: params.max_tokens,
                context_length: self.context_length,
            });
        }
        let _busy = self.busy.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut ctx = self.new_context()?;
        let mut batch = self.prefill(&mut ctx, &tokens)?;
        let vocab = self.model.vocab();
        let mut sampler = sampler_chain(params, self.model.n_vocab());
        let mut decoder = Utf8Decoder::new();
        let mut stops = StopMatcher::new(&params.stop);
        let mut text = String::new();
        let mut emit = |piece: String, text: &mut String| -> ControlFlow<()> {
            if piece.is_empty() {
                return ControlFlow::Continue(());
            }
            text.push_str(&piece);
            on_piece(&piece)
        };
        let mut completion_tokens = 0u32;
        let mut pos = prompt_tokens as i32;
        let finish_reason = loop {
            if completion_tokens == params.max_tokens {
                break FinishReason::Length;
            }
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break FinishReason::Stop;
            }
            completion_tokens += 1;
            let piece = decoder.push(&vocab.token_to_piece(token, false, None));
            match stops.push(&piece) {
                StopCheck::Stop(rest) => {
                    let _ = emit(rest, &mut text);
                    break FinishReason::Stop;
                }
                StopCheck::Continue(piece) => {
                    if emit(piece, &mut text).is_break() {
                        break FinishReason::Cancelled;
                    }
                }
            }
            batch.clear();
            batch.add(token, pos, &[0], true).map_err(|e| inference_error("building a batch", e))?;
            ctx.decode(&mut batch).map_err(|e| inference_error("decoding a generated token", e))?;
            pos += 1;
        };
        let dropped = decoder.finish();
        if dropped > 0 {
            tracing::debug!(dropped, "generation ended inside a multi-byte character");
        }
        if finish_reason != FinishReason::Cancelled {
            let _ = emit(stops.finish(), &mut text);
        }
        tracing::debug!(prompt_tokens, completion_tokens, ?finish_reason, "generation done");
        Ok(Generation { text, finish_reason, usage: Usage { prompt_tokens, completion_tokens } })
    }
}
