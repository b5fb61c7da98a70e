//! Running models: [`Backend`] loads, [`LoadedModel`] generates, [`Embedder`] embeds.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use crate::chat::ChatMessage;
use crate::error::BackendError;
use crate::generation::{Generation, GenerationParams, TokenLogprob};
use crate::hub::CancelToken;
use crate::model::ModelInfo;

/// Settings for loading a model. `Default` picks sensible values for the machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Context window in tokens; `None` uses the model's training context, capped by the
    /// backend to keep memory reasonable.
    pub context_length: Option<u32>,
    /// Threads for inference; `None`: `MODELFORGE_THREADS` when set (llama.cpp), else every
    /// CPU the process may use (candle sizes its own pool, see `RAYON_NUM_THREADS`).
    pub threads: Option<u32>,
    /// Prompt-processing batch size; `None` uses the backend's default.
    pub batch_size: Option<u32>,
    /// Most sequences decoding together (continuous batching); `None` uses the backend's
    /// default.
    pub max_sequences: Option<u32>,
    /// Tokens of KV cache shared by all sequences, the memory limit for keeping several
    /// conversations warm; `None` uses the backend's default.
    pub cache_tokens: Option<u32>,
    /// The chat template to use instead of the model's own: the name of a known turn format
    /// (`chatml`, `gemma`, `llama3`, `llama2`, `mistral`, `phi3`, `zephyr`, `deepseek`,
    /// `plain`) or the path of a file holding a Jinja template. `None`: the model's template,
    /// else a format chosen from its vocabulary.
    pub chat_template: Option<String>,
}

/// Receives each piece of generated text as soon as it is complete UTF-8, and says whether to
/// go on.
///
/// This is a push model, like ripgrep's `Sink`: the backend drives the loop and the caller
/// reacts. It is the lowest common denominator of llama.cpp's token loop, candle's forward
/// passes and a server's SSE stream, and needs no async runtime. Return
/// [`ControlFlow::Break`] to stop; the generation then ends with
/// [`FinishReason::Cancelled`](crate::FinishReason::Cancelled).
pub type PieceCallback<'a> = dyn FnMut(&str) -> ControlFlow<()> + 'a;

/// Like [`PieceCallback`], with the tokens that completed each piece and their
/// log-probabilities (empty unless [`GenerationParams::logprobs`] asks for them). Tokens whose
/// text is never shown (the end of a stop string) are not reported.
pub type DetailedCallback<'a> = dyn FnMut(&str, &[TokenLogprob]) -> ControlFlow<()> + 'a;

/// Receives a generation started with [`LoadedModel::start_generation`]: its pieces as they
/// are made, then how it ended.
///
/// The backend calls it from a thread of its own (llama.cpp's worker, which serves every
/// sequence it batches), so a sink hands things on, to a channel say, and returns: it never
/// blocks or waits. A sink that panics stops its own generation and hears nothing more.
pub trait GenerationSink: Send {
    /// A piece of text with the tokens that completed it (see [`DetailedCallback`]).
    /// [`ControlFlow::Break`] stops the generation, which then ends as
    /// [`FinishReason::Cancelled`](crate::FinishReason::Cancelled) with the text handed out.
    fn piece(&mut self, text: &str, tokens: &[TokenLogprob]) -> ControlFlow<()>;

    /// How the generation ended: called once, after the last piece.
    fn done(self: Box<Self>, result: Result<Generation, BackendError>);
}

/// A model runtime (llama.cpp, candle, ...) that turns a model file into a [`LoadedModel`].
pub trait Backend: Send + Sync {
    /// A short name, e.g. `llama-cpp`.
    fn name(&self) -> &str;

    /// Loads the model at `path` (a GGUF file, or a safetensors directory).
    fn load(&self, path: &Path, options: &LoadOptions) -> Result<Arc<dyn LoadedModel>, BackendError>;
}

/// A model in memory, ready to generate. Safe to share between threads; implementations
/// serialize or batch concurrent generations as they see fit.
pub trait LoadedModel: Send + Sync {
    /// What was loaded.
    fn info(&self) -> &ModelInfo;

    /// The context window in effect, in tokens.
    fn context_length(&self) -> u32;

    /// How prompts are formatted, for lists and logs: e.g. `model's template`, or
    /// `gemma (detected)` for a model without one; `None` when the backend does not say.
    fn chat_format(&self) -> Option<String> {
        None
    }

    /// Token ids of `text`. `add_special` adds the beginning-of-sequence token if the model
    /// uses one; special-token text in `text` is parsed as special tokens.
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>, BackendError>;

    /// How many tokens `text` takes, without special tokens added.
    fn count_tokens(&self, text: &str) -> Result<usize, BackendError> {
        Ok(self.tokenize(text, false)?.len())
    }

    /// Renders `messages` with the model's own chat template. With `add_generation_prompt`,
    /// the prompt ends where the assistant's reply begins.
    fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError>;

    /// Renders `messages` with `tools` (OpenAI-style function definitions) for a template that
    /// renders them; `Ok(None)` when the model's template has no place for tools, so the
    /// caller can describe them another way.
    fn render_chat_with_tools(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        add_generation_prompt: bool,
    ) -> Result<Option<String>, BackendError> {
        let _ = (messages, tools, add_generation_prompt);
        Ok(None)
    }

    /// Generates a continuation of `prompt` (already rendered), streaming pieces to
    /// `on_piece`. A prompt that does not fit in the context window with room for
    /// `params.max_tokens` is an error, never silently cut.
    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError>;

    /// Like [`generate`](Self::generate), and stops early (with
    /// [`FinishReason::Cancelled`](crate::FinishReason::Cancelled)) once `cancel` is cancelled
    /// from any thread. Backends that can check the token while processing the prompt override
    /// this; the default checks it before each piece.
    fn generate_cancellable(
        &self,
        prompt: &str,
        params: &GenerationParams,
        cancel: &CancelToken,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        self.generate(prompt, params, &mut |piece| {
            if cancel.is_cancelled() { std::ops::ControlFlow::Break(()) } else { on_piece(piece) }
        })
    }

    /// Like [`generate_cancellable`](Self::generate_cancellable), and hands the callback each
    /// piece's tokens with their log-probabilities when [`GenerationParams::logprobs`] is set.
    /// The default reports no tokens and refuses `logprobs` as unsupported.
    fn generate_detailed(
        &self,
        prompt: &str,
        params: &GenerationParams,
        cancel: &CancelToken,
        on_piece: &mut DetailedCallback<'_>,
    ) -> Result<Generation, BackendError> {
        if params.logprobs.is_some() {
            return Err(BackendError::Unsupported {
                what: "token log-probabilities".into(),
                backend: self.info().name.clone(),
            });
        }
        self.generate_cancellable(prompt, params, cancel, &mut |piece| on_piece(piece, &[]))
    }

    /// Starts a generation and returns at once: `sink` receives the pieces and then the
    /// result that [`generate_detailed`](Self::generate_detailed) would give, errors included
    /// (a prompt beyond the context reaches [`GenerationSink::done`]). For a server, which
    /// then needs no thread parked per generation.
    ///
    /// The default runs `generate_detailed` on a thread of its own. The llama.cpp backend
    /// queues the request and calls `sink` from its worker, one thread hop fewer per piece.
    fn start_generation(
        self: Arc<Self>,
        prompt: String,
        params: GenerationParams,
        cancel: CancelToken,
        mut sink: Box<dyn GenerationSink>,
    ) where
        Self: 'static,
    {
        std::thread::spawn(move || {
            let result = self
                .generate_detailed(&prompt, &params, &cancel, &mut |piece, tokens| sink.piece(piece, tokens));
            sink.done(result);
        });
    }

    /// Saves the cached state (KV cache) of the conversation `prompt` to `path`, so a later
    /// process can [`load_state`](Self::load_state) it instead of processing the prompt again.
    /// Returns how many tokens were saved.
    fn save_state(&self, prompt: &str, path: &Path) -> Result<usize, BackendError> {
        let _ = (prompt, path);
        Err(BackendError::Unsupported { what: "saving state".into(), backend: self.info().name.clone() })
    }

    /// Restores a state saved by [`save_state`](Self::save_state); the next generation whose
    /// prompt starts with the saved conversation skips those tokens. Returns how many tokens
    /// were restored. A file from another model, or a damaged one, is an error and changes
    /// nothing.
    fn load_state(&self, path: &Path) -> Result<usize, BackendError> {
        let _ = path;
        Err(BackendError::Unsupported { what: "loading state".into(), backend: self.info().name.clone() })
    }

    /// Renders `messages` and generates the assistant's reply.
    fn chat(
        &self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        let prompt = self.render_chat(messages, true)?;
        self.generate(&prompt, params, on_piece)
    }
}

/// Turns texts into vectors for similarity search.
pub trait Embedder: Send + Sync {
    /// The length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// One vector per text, in order. Vectors are L2-normalised, so a dot product is the
    /// cosine similarity.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, BackendError>;

    /// How many tokens the embedder reads of `text` (for usage reports); `None` when it
    /// cannot say.
    fn count_tokens(&self, text: &str) -> Option<usize> {
        let _ = text;
        None
    }
}
