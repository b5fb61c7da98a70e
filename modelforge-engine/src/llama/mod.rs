//! The llama.cpp backend (feature `llama-cpp`).
//!
//! [`LlamaCppBackend`] validates a GGUF file and maps it; the returned [`LlamaCppModel`] hands
//! generations to a worker thread (see `scheduler.rs`) that batches concurrent requests and
//! keeps recent conversations' KV caches warm.

mod embed;
mod scheduler;
mod state;

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use llama_cpp_2::context::params::KvCacheType as LlamaKvType;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use modelforge_core::{
    Backend, BackendError, BoxError, CancelToken, ChatMessage, DetailedCallback, Embedder, FinishReason,
    Generation, GenerationParams, GenerationSink, LoadOptions, LoadedModel, ModelFormat, ModelInfo,
    PieceCallback, TokenLogprob,
};

use self::scheduler::{Command, Event, Events, Request, SchedulerHandle, Settings, worker_stopped};
use crate::bench::{Bench, BenchConfig, BenchReport};
use crate::chat_template::ChatTemplate;
use crate::turn_format::{self, ChatFormat, Vocabulary};

/// Context window used when neither the options nor a smaller training context say otherwise:
/// large enough for long chats, small enough that the KV cache stays modest on a laptop.
pub const DEFAULT_CONTEXT_LENGTH: u32 = 4096;

/// Prompt tokens decoded per batch when the options do not say.
pub const DEFAULT_BATCH_SIZE: u32 = 512;

/// Sequences that can decode together when the options do not say.
pub const DEFAULT_MAX_SEQUENCES: u32 = 8;

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

fn inference_error(context: &str, err: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    BackendError::Inference { context: context.to_owned(), source: Some(Box::new(err) as BoxError) }
}

/// How llama.cpp keeps the keys and values of the KV cache (llama.cpp's `-ctk`/`-ctv` and
/// `-fa`, Ollama's `OLLAMA_KV_CACHE_TYPE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvCacheType {
    /// `Q8_0` where the model allows it (attention heads whose sizes are multiples of 32, the
    /// block size), else `F16`: the default.
    ///
    /// Not llama.cpp's default, for speed: on CPUs this build's flash attention slows down
    /// over an `F16` cache once the cache holds more than a few hundred tokens (its path for
    /// caches of 512 cells and more), and not over `Q8_0`. With SmolLM2 on 2 cores, decoding
    /// after a 1,256-token prompt ran at 37 tokens/s with `F16` and 66-71 with `Q8_0`, a
    /// server's single stream slowed from 111 to 77 tokens/s once 8 other conversations were
    /// cached (107 with `Q8_0`), and short fresh streams ran alike. Greedy replies under `Q8_0`
    /// stayed as close to `F32`'s as `F16`'s did.
    #[default]
    Auto,
    /// 16-bit floats, with flash attention where llama.cpp chooses it: llama.cpp's default.
    F16,
    /// 32-bit floats and attention without flash attention: twice the memory of `F16`, and the
    /// arithmetic of the candle backend, which the parity tests compare against.
    F32,
    /// 8-bit blocks with flash attention: about half the memory of `F16`, at a small loss of
    /// precision.
    Q8_0,
}

impl KvCacheType {
    /// The type `Auto` stands for with a model of architecture `arch` whose attention heads
    /// have `head_sizes` (keys, values); other types stand for themselves.
    pub(crate) fn resolve(self, arch: &str, head_sizes: (u32, u32)) -> KvCacheType {
        // llama.cpp refuses an 8-bit cache whose block size (32) does not divide a head, and
        // turns flash attention off, which a quantized cache needs, for Grok.
        let fits = head_sizes.0 > 0 && head_sizes.0 % 32 == 0 && head_sizes.1 > 0 && head_sizes.1 % 32 == 0;
        match self {
            KvCacheType::Auto if fits && arch != "grok" => KvCacheType::Q8_0,
            KvCacheType::Auto => KvCacheType::F16,
            other => other,
        }
    }

    /// The llama.cpp storage type and flash-attention policy (`Auto` is resolved at load).
    fn llama_params(self) -> (LlamaKvType, llama_cpp_sys_2::llama_flash_attn_type) {
        match self {
            KvCacheType::Auto | KvCacheType::F16 => {
                (LlamaKvType::F16, llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO)
            }
            KvCacheType::F32 => (LlamaKvType::F32, llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED),
            // llama.cpp only reads a quantized V cache with flash attention.
            KvCacheType::Q8_0 => (LlamaKvType::Q8_0, llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED),
        }
    }
}

/// The sizes of a model's attention heads (keys, values), from its GGUF metadata.
fn head_sizes(model: &LlamaModel, arch: &str) -> (u32, u32) {
    let meta = |key: &str| model.meta_val_str(&format!("{arch}.attention.{key}")).ok()?.parse::<u32>().ok();
    let per_head = u32::try_from(model.n_embd()).unwrap_or(0) / model.n_head().max(1);
    let keys = meta("key_length").unwrap_or(per_head);
    (keys, meta("value_length").unwrap_or(keys))
}

/// Loads GGUF models through llama.cpp.
#[derive(Clone, Debug, Default)]
pub struct LlamaCppBackend {
    kv_cache: KvCacheType,
}

impl LlamaCppBackend {
    /// The backend, with the default KV cache ([`KvCacheType::Auto`]). llama.cpp itself is
    /// initialised on first load.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same backend with another KV cache type for the models it loads.
    pub fn with_kv_cache_type(self, kv_cache: KvCacheType) -> Self {
        Self { kv_cache }
    }

    /// Loads a GGUF file, returning the concrete model type.
    ///
    /// The file's structure is validated first, so a truncated or foreign file is a clear
    /// error instead of a crash inside llama.cpp. The weights are memory-mapped; the KV cache
    /// is allocated on the first generation.
    pub fn load_model(&self, path: &Path, options: &LoadOptions) -> Result<LlamaCppModel, BackendError> {
        let _span = tracing::info_span!("load_model", path = %path.display()).entered();
        let info = modelforge_core::inspect(path)?;
        if info.format != ModelFormat::Gguf {
            return Err(BackendError::Load {
                path: path.to_owned(),
                reason: "the llama.cpp backend needs a GGUF file; this is a safetensors model".into(),
            });
        }
        let model = LlamaModel::load_from_file(llama_backend()?, path, &LlamaModelParams::default())
            .map_err(|e| BackendError::Load {
                path: path.to_owned(),
                reason: format!("llama.cpp refused the file ({e})"),
            })?;
        let model = Arc::new(model);
        let vocab = model.vocab();
        let special_text = |token: LlamaToken| {
            if token.0 < 0 {
                String::new()
            } else {
                String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned()
            }
        };
        let bos_text = special_text(vocab.bos());
        let words = Vocabulary::from_gguf(&modelforge_core::gguf::GgufFile::open(path)?);
        let chat = turn_format::setup(&info, &words, options, &bos_text, &special_text(vocab.eos()))?;
        let end_tokens = chat.end_tokens.iter().map(|&id| LlamaToken(id as i32)).collect();
        let settings = settings(&model, options, self.kv_cache);
        tracing::info!(?settings, "model loaded");
        let scheduler = SchedulerHandle::spawn(model.clone(), settings)?;
        let fingerprint = state::model_fingerprint(path)?;
        Ok(LlamaCppModel {
            model,
            info,
            template: chat.template,
            chat_format: chat.format,
            stops: chat.stops,
            end_tokens,
            bos_text,
            settings,
            fingerprint,
            scheduler,
        })
    }
}

fn settings(model: &LlamaModel, options: &LoadOptions, kv_cache: KvCacheType) -> Settings {
    let arch = model.meta_val_str("general.architecture").unwrap_or_default();
    let kv_cache = kv_cache.resolve(&arch, head_sizes(model, &arch));
    let train_ctx = model.n_ctx_train().max(1);
    let context_length = options.context_length.unwrap_or(DEFAULT_CONTEXT_LENGTH.min(train_ctx)).max(16);
    let max_sequences = options.max_sequences.unwrap_or(DEFAULT_MAX_SEQUENCES).clamp(1, 256);
    // By default the cache holds two full conversations; more stay warm when they are short.
    let cache_tokens = options.cache_tokens.unwrap_or(2 * context_length).max(context_length);
    let batch_size = options.batch_size.unwrap_or(DEFAULT_BATCH_SIZE).clamp(max_sequences, cache_tokens);
    let threads = options.threads.map_or_else(default_threads, |t| t.max(1) as i32);
    Settings { context_length, cache_tokens, max_sequences, batch_size, threads, kv_cache }
}

/// `MODELFORGE_THREADS` when it is a positive number, else every CPU the process may use.
///
/// The variable lets one setting reach every model a process loads, and lets a machine that
/// runs several models at once give each fewer threads: llama.cpp's threads spin while they
/// wait for each other, so two 2-thread models on 2 cores run several times slower together
/// than one after the other, while two 1-thread models keep their full speed.
fn default_threads() -> i32 {
    let from_env =
        std::env::var(THREADS_ENV).ok().and_then(|v| v.trim().parse::<i32>().ok()).filter(|&n| n > 0);
    from_env.unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get() as i32))
}

/// The environment variable that sets llama.cpp's default thread count.
const THREADS_ENV: &str = "MODELFORGE_THREADS";

impl Backend for LlamaCppBackend {
    fn name(&self) -> &str {
        "llama-cpp"
    }

    fn load(&self, path: &Path, options: &LoadOptions) -> Result<Arc<dyn LoadedModel>, BackendError> {
        Ok(Arc::new(self.load_model(path, options)?))
    }
}

/// A GGUF model loaded by llama.cpp (memory-mapped), with a worker thread that runs its
/// generations.
pub struct LlamaCppModel {
    model: Arc<LlamaModel>,
    info: ModelInfo,
    template: ChatTemplate,
    chat_format: ChatFormat,
    /// Stop strings every generation gets: the model's turn markers.
    stops: Vec<String>,
    end_tokens: Arc<[LlamaToken]>,
    bos_text: String,
    settings: Settings,
    fingerprint: String,
    scheduler: SchedulerHandle,
}

impl std::fmt::Debug for LlamaCppModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaCppModel").field("info", &self.info).field("settings", &self.settings).finish()
    }
}

impl LlamaCppModel {
    /// The chat format the model is prompted with.
    pub fn chat_format(&self) -> &ChatFormat {
        &self.chat_format
    }

    /// The KV cache type this model runs with (never `Auto`: resolved when it loaded).
    pub fn kv_cache_type(&self) -> KvCacheType {
        self.settings.kv_cache
    }

    fn prompt_tokens(&self, prompt: &str) -> Vec<LlamaToken> {
        // A template that already writes the BOS token must not get a second one.
        let add_bos = self.bos_text.is_empty() || !prompt.starts_with(&self.bos_text);
        self.model.vocab().tokenize(prompt.as_bytes(), add_bos, true)
    }

    /// The prompt's tokens, refused when empty or when it leaves no room for the reply.
    fn checked_prompt(
        &self,
        prompt: &str,
        params: &GenerationParams,
    ) -> Result<Vec<LlamaToken>, BackendError> {
        let tokens = self.prompt_tokens(prompt);
        if tokens.is_empty() {
            return Err(BackendError::Inference { context: "the prompt is empty".into(), source: None });
        }
        let prompt_tokens = tokens.len() as u32;
        if prompt_tokens.saturating_add(params.max_tokens) > self.settings.context_length {
            return Err(BackendError::ContextOverflow {
                prompt_tokens,
                reserved: params.max_tokens,
                context_length: self.settings.context_length,
            });
        }
        Ok(tokens)
    }

    /// A request for the worker, with the model's own stop strings and end tokens.
    fn request(
        &self,
        tokens: Vec<LlamaToken>,
        params: &GenerationParams,
        events: Events,
        cancel: [CancelToken; 2],
    ) -> Request {
        let mut params = params.clone();
        params.stop.extend(self.stops.iter().cloned());
        Request { tokens, params, events, cancel, end_tokens: Arc::clone(&self.end_tokens) }
    }

    fn ask<T>(
        &self,
        command: impl FnOnce(std::sync::mpsc::Sender<Result<T, BackendError>>) -> Command,
    ) -> Result<T, BackendError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.scheduler.send(command(tx))?;
        rx.recv().map_err(|_| worker_stopped())?
    }
}

impl LoadedModel for LlamaCppModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn context_length(&self) -> u32 {
        self.settings.context_length
    }

    fn chat_format(&self) -> Option<String> {
        Some(self.chat_format.to_string())
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

    fn render_chat_with_tools(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        add_generation_prompt: bool,
    ) -> Result<Option<String>, BackendError> {
        if !self.template.renders_tools() {
            return Ok(None);
        }
        self.template.render_with_tools(messages, tools, add_generation_prompt).map(Some)
    }

    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        self.generate_cancellable(prompt, params, &CancelToken::new(), on_piece)
    }

    fn generate_cancellable(
        &self,
        prompt: &str,
        params: &GenerationParams,
        cancel: &CancelToken,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        self.generate_detailed(prompt, params, cancel, &mut |piece, _| on_piece(piece))
    }

    fn generate_detailed(
        &self,
        prompt: &str,
        params: &GenerationParams,
        cancel: &CancelToken,
        on_piece: &mut DetailedCallback<'_>,
    ) -> Result<Generation, BackendError> {
        let _span = tracing::info_span!("generate", max_tokens = params.max_tokens).entered();
        let tokens = self.checked_prompt(prompt, params)?;
        let (events, rx) = std::sync::mpsc::channel();
        let mut relay = Relay::new(cancel.clone());
        self.scheduler.send(Command::Generate(self.request(
            tokens,
            params,
            Events::channel(events),
            relay.tokens(),
        )))?;
        loop {
            let Ok(event) = rx.recv() else { return Err(worker_stopped()) };
            if let Some(result) = relay.relay(event, on_piece) {
                return result;
            }
        }
    }

    fn start_generation(
        self: Arc<Self>,
        prompt: String,
        params: GenerationParams,
        cancel: CancelToken,
        sink: Box<dyn GenerationSink>,
    ) {
        let tokens = match self.checked_prompt(&prompt, &params) {
            Ok(tokens) => tokens,
            Err(err) => return sink.done(Err(err)),
        };
        let relay = Relay::new(cancel);
        let cancel = relay.tokens();
        let mut detached = Detached { relay, sink: Some(sink) };
        let events = Events::new(move |event| detached.event(event));
        // A worker that has stopped drops the request, and with it the sink, which then hears so.
        let _ = self.scheduler.send(Command::Generate(self.request(tokens, &params, events, cancel)));
    }

    fn save_state(&self, prompt: &str, path: &Path) -> Result<usize, BackendError> {
        let tokens = self.prompt_tokens(prompt);
        let saved = self.ask(|reply| Command::SaveState { tokens, path: path.to_owned(), reply })?;
        state::write_meta(path, &self.fingerprint, self.settings.kv_cache, saved)?;
        Ok(saved)
    }

    fn load_state(&self, path: &Path) -> Result<usize, BackendError> {
        let meta = state::verify(path, &self.fingerprint, self.settings.kv_cache)?;
        let loaded = self.ask(|reply| Command::LoadState { path: path.to_owned(), reply })?;
        if loaded != meta.tokens {
            tracing::warn!(expected = meta.tokens, loaded, "state file token count differs from its .meta");
        }
        Ok(loaded)
    }
}

/// Hands a generation's events to the caller's callback: a piece with the tokens that
/// completed it, then the result. Once the callback asks to stop (or the caller's token is
/// cancelled) it passes nothing more on, and the result is cancelled with the text handed out.
struct Relay {
    cancel: CancelToken,
    /// Cancelled when the callback asks to stop; the worker watches it with `cancel`.
    stop: CancelToken,
    shown: String,
    /// Tokens whose text has not been shown yet.
    unshown: Vec<TokenLogprob>,
}

impl Relay {
    fn new(cancel: CancelToken) -> Self {
        Self { cancel, stop: CancelToken::new(), shown: String::new(), unshown: Vec::new() }
    }

    /// The tokens the worker watches.
    fn tokens(&self) -> [CancelToken; 2] {
        [self.cancel.clone(), self.stop.clone()]
    }

    fn stopped(&self) -> bool {
        self.stop.is_cancelled() || self.cancel.is_cancelled()
    }

    /// Passes `event` on; the generation's result once it is over.
    fn relay(
        &mut self,
        event: Event,
        on_piece: &mut DetailedCallback<'_>,
    ) -> Option<Result<Generation, BackendError>> {
        match event {
            Event::Token(token) => self.unshown.push(token),
            Event::Piece(piece) if !self.stopped() => {
                self.shown.push_str(&piece);
                let tokens = std::mem::take(&mut self.unshown);
                if on_piece(&piece, &tokens).is_break() {
                    self.stop.cancel();
                }
            }
            Event::Piece(_) => {}
            Event::Done(result) => {
                return Some(result.map(|mut generation| {
                    if self.stopped() {
                        generation.finish_reason = FinishReason::Cancelled;
                        generation.text = std::mem::take(&mut self.shown);
                    }
                    generation
                }));
            }
        }
        None
    }
}

/// A generation's events handed to a [`GenerationSink`] on the worker thread.
struct Detached {
    relay: Relay,
    /// Until `done` is called.
    sink: Option<Box<dyn GenerationSink>>,
}

impl Detached {
    /// Hands `event` to the sink. A sink that panics stops its own generation, not the worker
    /// that serves every other one.
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        let handed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Some(sink) = self.sink.as_mut() else { return };
            if let Some(result) = self.relay.relay(event, &mut |piece, tokens| sink.piece(piece, tokens))
                && let Some(sink) = self.sink.take()
            {
                sink.done(result);
            }
        }));
        if handed.is_err() {
            tracing::error!("a generation sink panicked: its generation stops");
            // Dropped now (a server's request then hears its channel close), and kept from
            // taking the worker down should its drop panic too.
            let sink = self.sink.take();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(sink)));
            return ControlFlow::Break(());
        }
        if self.sink.is_none() || self.relay.stopped() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl Drop for Detached {
    /// A request dropped unanswered (the worker stopped) still ends its sink.
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            sink.done(Err(worker_stopped()));
        }
    }
}

impl Bench for LlamaCppModel {
    fn bench(&self, config: &BenchConfig) -> Result<BenchReport, BackendError> {
        let config = *config;
        self.ask(|reply| Command::Bench { config, reply })
    }
}

impl Embedder for LlamaCppModel {
    fn dimensions(&self) -> usize {
        self.model.n_embd() as usize
    }

    /// Mean-pooled (or the model's own pooling), L2-normalised embeddings. Meant for GGUF
    /// embedding models; a chat model gives vectors too, of lower quality.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BackendError> {
        embed::embed(&self.model, &self.info, texts, self.settings.threads)
    }
}

#[cfg(test)]
mod tests {
    use super::KvCacheType;

    #[test]
    fn auto_is_q8_0_where_the_block_divides_every_head_and_f16_elsewhere() {
        let auto = KvCacheType::Auto;
        assert_eq!(auto.resolve("llama", (64, 64)), KvCacheType::Q8_0);
        assert_eq!(auto.resolve("gemma3", (256, 256)), KvCacheType::Q8_0);
        // Phi-2's 80-wide heads, a value head of another size, unknown sizes, Grok.
        assert_eq!(auto.resolve("phi2", (80, 80)), KvCacheType::F16);
        assert_eq!(auto.resolve("deepseek2", (192, 72)), KvCacheType::F16);
        assert_eq!(auto.resolve("llama", (0, 0)), KvCacheType::F16);
        assert_eq!(auto.resolve("grok", (128, 128)), KvCacheType::F16);
        // A type chosen by name is kept, even where Auto would not pick it.
        assert_eq!(KvCacheType::Q8_0.resolve("phi2", (80, 80)), KvCacheType::Q8_0);
        assert_eq!(KvCacheType::F32.resolve("llama", (64, 64)), KvCacheType::F32);
    }
}
