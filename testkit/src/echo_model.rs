//! [`EchoModel`]: a deterministic [`LoadedModel`] for tests of code that drives a model (a
//! chat turn, summaries, saved state, streaming, cancellation), in milliseconds and without a
//! model file.
//!
//! Everything it does can be computed by the test that uses it:
//!
//! - **Tokens.** One token per whitespace-separated word; a word's id is a hash of it, so the
//!   same word always has the same id. No beginning-of-sequence token is ever added.
//! - **Chat template.** Each message is its role's marker (`<|system|>`, `<|user|>`,
//!   `<|assistant|>`) on a line of its own, then its content and a newline; the generation
//!   prompt is `<|assistant|>` and a newline:
//!
//!   ```text
//!   <|system|>
//!   Be brief.
//!   <|user|>
//!   Hello there
//!   <|assistant|>
//!   ```
//!
//!   So a message costs one token plus its words, and the generation prompt one token.
//! - **Replies.** `echo:` followed by the words of the last user message in the prompt (the
//!   whole prompt when it has no `<|user|>` line), unless [`EchoModel::with_reply`] or
//!   [`EchoModel::with_replies`] says otherwise. A reply is streamed one word per piece, each
//!   word after the first with the whitespace before it, so the pieces add up to the reply.
//! - **KV-cache reuse.** The model remembers one text: the last prompt it generated from, or
//!   the state it loaded last. A generation's `cached_tokens` is how many leading words its
//!   prompt shares with that text.
//! - **Concurrency.** It counts the generations running at once, and [`EchoModel::hold`]
//!   stops every generation after its first piece until released, so tests can prove that
//!   two generations overlapped, or never did, without timing guesses.
//!
//! ```
//! use std::ops::ControlFlow;
//!
//! use modelforge_core::{ChatMessage, FinishReason, GenerationParams, LoadedModel};
//! use modelforge_testkit::echo_model::EchoModel;
//!
//! let model = EchoModel::new();
//! let mut pieces = Vec::new();
//! let messages = [ChatMessage::system("Be brief."), ChatMessage::user("Hello there")];
//! let reply = model
//!     .chat(&messages, &GenerationParams::greedy(), &mut |piece| {
//!         pieces.push(piece.to_owned());
//!         ControlFlow::Continue(())
//!     })
//!     .unwrap();
//! assert_eq!(reply.text, "echo: Hello there");
//! assert_eq!(pieces, ["echo:", " Hello", " there"]);
//! assert_eq!(reply.finish_reason, FinishReason::Stop);
//! // Two messages of 1 + 2 words each, and the generation prompt.
//! assert_eq!(reply.usage.prompt_tokens, 7);
//! ```

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use modelforge_core::{
    BackendError, CancelToken, ChatMessage, FinishReason, Generation, GenerationParams, LoadedModel,
    ModelFormat, ModelInfo, PieceCallback, Role, Usage,
};

/// The context window unless [`EchoModel::with_context_length`] sets another.
pub const DEFAULT_CONTEXT_LENGTH: u32 = 4096;

const SYSTEM: &str = "<|system|>";
const USER: &str = "<|user|>";
const ASSISTANT: &str = "<|assistant|>";
const TOOL: &str = "<|tool|>";
const MARKERS: [&str; 4] = [SYSTEM, USER, ASSISTANT, TOOL];

/// The first line of every state file, so a file from anything else is refused.
const STATE_HEADER: &str = "modelforge-echo-state v1\n";

/// A deterministic stand-in for a loaded model; see the [module documentation](self).
pub struct EchoModel {
    info: ModelInfo,
    context_length: u32,
    reply: Reply,
    piece_delay: Duration,
    prompts: Mutex<Vec<String>>,
    /// The text the simulated KV cache holds.
    cache: Mutex<String>,
    activity: Arc<Activity>,
}

/// Where replies come from.
enum Reply {
    Echo,
    With(Box<dyn Fn(&str) -> String + Send + Sync>),
    /// Taken in order; once empty, the model echoes again.
    Script(Mutex<VecDeque<String>>),
}

impl Default for EchoModel {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoModel {
    /// An echo model with a context window of [`DEFAULT_CONTEXT_LENGTH`] tokens and no delay.
    pub fn new() -> Self {
        Self {
            info: ModelInfo {
                path: PathBuf::from("echo"),
                format: ModelFormat::Gguf,
                name: "echo".into(),
                architecture: Some("echo".into()),
                context_length: Some(DEFAULT_CONTEXT_LENGTH),
                quantization: None,
                chat_template: None,
                size_bytes: 0,
            },
            context_length: DEFAULT_CONTEXT_LENGTH,
            reply: Reply::Echo,
            piece_delay: Duration::ZERO,
            prompts: Mutex::default(),
            cache: Mutex::default(),
            activity: Arc::default(),
        }
    }

    /// Sets the context window, in tokens (words).
    pub fn with_context_length(mut self, tokens: u32) -> Self {
        self.context_length = tokens;
        self.info.context_length = Some(tokens);
        self
    }

    /// Replies with `reply(prompt)` instead of echoing. Replaces any earlier reply setting.
    pub fn with_reply(mut self, reply: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.reply = Reply::With(Box::new(reply));
        self
    }

    /// Replies with these texts, one per generation in order, then echoes again once they are
    /// used up. Replaces any earlier reply setting.
    pub fn with_replies(mut self, replies: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.reply = Reply::Script(Mutex::new(replies.into_iter().map(Into::into).collect()));
        self
    }

    /// Sleeps this long before each piece, so that generations on several threads overlap.
    pub fn with_piece_delay(mut self, delay: Duration) -> Self {
        self.piece_delay = delay;
        self
    }

    /// Every prompt the model was asked to generate from, in order, including those refused
    /// for not fitting in the context window.
    pub fn prompts(&self) -> Vec<String> {
        lock(&self.prompts).clone()
    }

    /// How many generations are running now.
    pub fn generations_in_flight(&self) -> usize {
        lock(&self.activity.counts).in_flight
    }

    /// The most generations that ever ran at the same time.
    pub fn max_generations_in_flight(&self) -> usize {
        lock(&self.activity.counts).max_in_flight
    }

    /// Waits until at least `n` generations are running, at most `timeout`; returns whether
    /// they are. With [`hold`](Self::hold), this proves generations overlap without sleeping.
    pub fn wait_for_generations_in_flight(&self, n: usize, timeout: Duration) -> bool {
        let counts = lock(&self.activity.counts);
        let (counts, _) = self
            .activity
            .changed
            .wait_timeout_while(counts, timeout, |c| c.in_flight < n)
            .unwrap_or_else(PoisonError::into_inner);
        counts.in_flight >= n
    }

    /// Closes the gate: until the returned guard (and every other one) is dropped, each
    /// generation stops right after delivering its first piece, and stays counted as in
    /// flight. A generation checks the gate once, after its first piece only; one with no
    /// piece to emit, or whose callback stops at the first piece, is not held.
    pub fn hold(&self) -> HoldGuard {
        lock(&self.activity.counts).holds += 1;
        HoldGuard { activity: Arc::clone(&self.activity) }
    }

    /// The reply to `prompt`, before stop strings and `max_tokens` apply.
    fn reply_to(&self, prompt: &str) -> String {
        match &self.reply {
            Reply::Echo => echo(prompt),
            Reply::With(reply) => reply(prompt),
            Reply::Script(replies) => lock(replies).pop_front().unwrap_or_else(|| echo(prompt)),
        }
    }

    /// How many leading words `prompt` shares with the cached text; the cache then holds
    /// `prompt`, as a real KV cache would after processing it.
    fn reuse_cache(&self, prompt: &str) -> u32 {
        let mut cache = lock(&self.cache);
        let shared =
            cache.split_whitespace().zip(prompt.split_whitespace()).take_while(|(a, b)| a == b).count();
        *cache = prompt.to_owned();
        saturating_u32(shared)
    }

    /// The generation itself; `cancelled` is checked before each piece.
    fn run(
        &self,
        prompt: &str,
        params: &GenerationParams,
        cancelled: &dyn Fn() -> bool,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        let _running = self.activity.start();
        lock(&self.prompts).push(prompt.to_owned());
        let prompt_tokens = saturating_u32(word_count(prompt));
        if u64::from(prompt_tokens) + u64::from(params.max_tokens) > u64::from(self.context_length) {
            return Err(BackendError::ContextOverflow {
                prompt_tokens,
                reserved: params.max_tokens,
                context_length: self.context_length,
            });
        }
        let cached_tokens = self.reuse_cache(prompt);
        let reply = cut_at_stop(self.reply_to(prompt), &params.stop);
        let mut text = String::new();
        let mut emitted = 0;
        let mut finish_reason = FinishReason::Stop;
        for piece in pieces(&reply) {
            if emitted == params.max_tokens {
                finish_reason = FinishReason::Length;
                break;
            }
            std::thread::sleep(self.piece_delay);
            if cancelled() {
                finish_reason = FinishReason::Cancelled;
                break;
            }
            text.push_str(piece);
            emitted += 1;
            if on_piece(piece).is_break() {
                finish_reason = FinishReason::Cancelled;
                break;
            }
            if emitted == 1 {
                self.activity.wait_while_held();
            }
        }
        let usage = Usage { prompt_tokens, completion_tokens: emitted, cached_tokens };
        Ok(Generation { text, finish_reason, usage })
    }
}

impl LoadedModel for EchoModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn context_length(&self) -> u32 {
        self.context_length
    }

    /// One id per word, a hash of the word; `add_special` adds nothing (no BOS token).
    fn tokenize(&self, text: &str, _add_special: bool) -> Result<Vec<u32>, BackendError> {
        Ok(text.split_whitespace().map(token_id).collect())
    }

    fn count_tokens(&self, text: &str) -> Result<usize, BackendError> {
        Ok(word_count(text))
    }

    fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, BackendError> {
        let mut out = String::new();
        for message in messages {
            let marker = match message.role {
                Role::System => SYSTEM,
                Role::User => USER,
                Role::Assistant => ASSISTANT,
                Role::Tool => TOOL,
            };
            out.push_str(&format!("{marker}\n{}\n", message.content));
        }
        if add_generation_prompt {
            out.push_str(ASSISTANT);
            out.push('\n');
        }
        Ok(out)
    }

    /// Streams the reply (see the [module documentation](self)). `params.grammar` is not
    /// enforced: script a reply that follows it. A prompt whose words plus
    /// `params.max_tokens` exceed the context window is [`BackendError::ContextOverflow`].
    fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        self.run(prompt, params, &|| false, on_piece)
    }

    /// Checks `cancel` before each piece, so the text never holds a piece the callback did
    /// not receive. A generation held by [`EchoModel::hold`] sees the cancellation once
    /// released.
    fn generate_cancellable(
        &self,
        prompt: &str,
        params: &GenerationParams,
        cancel: &CancelToken,
        on_piece: &mut PieceCallback<'_>,
    ) -> Result<Generation, BackendError> {
        self.run(prompt, params, &|| cancel.is_cancelled(), on_piece)
    }

    /// Writes `prompt` to `path` behind a header line; returns its word count.
    fn save_state(&self, prompt: &str, path: &Path) -> Result<usize, BackendError> {
        std::fs::write(path, format!("{STATE_HEADER}{prompt}"))
            .map_err(|e| state_error(path, "cannot write it", Some(e)))?;
        Ok(word_count(prompt))
    }

    /// Reads a file written by [`save_state`](Self::save_state) into the simulated cache;
    /// returns its word count. Any other file is [`BackendError::Inference`] and changes
    /// nothing.
    fn load_state(&self, path: &Path) -> Result<usize, BackendError> {
        let bytes = std::fs::read(path).map_err(|e| state_error(path, "cannot read it", Some(e)))?;
        let text = String::from_utf8(bytes)
            .ok()
            .and_then(|text| text.strip_prefix(STATE_HEADER).map(str::to_owned))
            .ok_or_else(|| state_error(path, "not a state file saved by the echo model", None))?;
        let tokens = word_count(&text);
        *lock(&self.cache) = text;
        Ok(tokens)
    }
}

/// Keeps [`EchoModel::hold`]'s gate closed until dropped.
#[must_use = "the gate opens again as soon as the guard is dropped"]
pub struct HoldGuard {
    activity: Arc<Activity>,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        lock(&self.activity.counts).holds -= 1;
        self.activity.changed.notify_all();
    }
}

/// Generations running and gates closed, shared with the hold guards. One mutex and condvar
/// rather than atomics, so tests can wait for a count instead of polling it.
#[derive(Default)]
struct Activity {
    counts: Mutex<Counts>,
    changed: Condvar,
}

#[derive(Default)]
struct Counts {
    in_flight: usize,
    max_in_flight: usize,
    holds: usize,
}

impl Activity {
    /// Counts a generation as running until the returned value is dropped, even when the
    /// caller's callback panics.
    fn start(&self) -> Running<'_> {
        let mut counts = lock(&self.counts);
        counts.in_flight += 1;
        counts.max_in_flight = counts.max_in_flight.max(counts.in_flight);
        drop(counts);
        self.changed.notify_all();
        Running(self)
    }

    fn wait_while_held(&self) {
        let counts = lock(&self.counts);
        drop(self.changed.wait_while(counts, |c| c.holds > 0).unwrap_or_else(PoisonError::into_inner));
    }
}

/// One running generation; see [`Activity::start`].
struct Running<'a>(&'a Activity);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.0.counts).in_flight -= 1;
        self.0.changed.notify_all();
    }
}

/// Locks `mutex`, ignoring poisoning: a test that panicked in a callback must not turn every
/// later call into a second, unrelated panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// FNV-1a: stable across runs and Rust versions, unlike std's hasher.
fn token_id(word: &str) -> u32 {
    word.bytes().fold(0x811c_9dc5, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// `echo:` and the words of the last user message in `prompt`.
fn echo(prompt: &str) -> String {
    let lines: Vec<&str> = prompt.lines().collect();
    let words: Vec<&str> = match lines.iter().rposition(|line| *line == USER) {
        Some(start) => lines[start + 1..]
            .iter()
            .take_while(|line| !MARKERS.contains(line))
            .flat_map(|line| line.split_whitespace())
            .collect(),
        None => prompt.split_whitespace().collect(),
    };
    let mut reply = String::from("echo:");
    for word in words {
        reply.push(' ');
        reply.push_str(word);
    }
    reply
}

/// `reply` up to the earliest of the (non-empty) stop strings.
fn cut_at_stop(mut reply: String, stops: &[String]) -> String {
    let cut = stops.iter().filter(|s| !s.is_empty()).filter_map(|s| reply.find(s.as_str())).min();
    if let Some(cut) = cut {
        reply.truncate(cut);
    }
    reply
}

/// `text` split into one piece per word, each with the whitespace before it; trailing
/// whitespace stays on the last piece, so the pieces add up to `text` (when it has a word).
fn pieces(text: &str) -> Vec<&str> {
    let mut ends = Vec::new();
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() && in_word {
            ends.push(i);
        }
        in_word = !c.is_whitespace();
    }
    if in_word {
        ends.push(text.len());
    }
    if let Some(last) = ends.last_mut() {
        *last = text.len();
    }
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let piece = &text[start..end];
            start = end;
            piece
        })
        .collect()
}

fn state_error(path: &Path, reason: &str, source: Option<std::io::Error>) -> BackendError {
    BackendError::Inference {
        context: format!("state file {}: {reason}", path.display()),
        source: source.map(|e| Box::new(e) as _),
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// Generates from `prompt`, returning the pieces streamed and the result.
    fn stream(model: &EchoModel, prompt: &str, params: &GenerationParams) -> (Vec<String>, Generation) {
        let mut pieces = Vec::new();
        let generation = model
            .generate(prompt, params, &mut |piece| {
                pieces.push(piece.to_owned());
                ControlFlow::Continue(())
            })
            .unwrap();
        (pieces, generation)
    }

    fn prompt_for(model: &EchoModel, user: &str) -> String {
        model.render_chat(&[ChatMessage::system("Be brief."), ChatMessage::user(user)], true).unwrap()
    }

    /// A temporary file path unique to this process and `name`.
    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("modelforge-echo-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_token_is_a_word_with_a_stable_id() {
        let model = EchoModel::new();
        let ids = model.tokenize("hello  world\nhello", true).unwrap();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids[0], ids[2]);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(ids, model.tokenize("hello world hello", false).unwrap());
        // FNV-1a of "a", fixed forever so ids never change between runs.
        assert_eq!(model.tokenize("a", false).unwrap(), [0xe40c_292c]);
        assert_eq!(model.count_tokens(" one two\tthree ").unwrap(), 3);
        assert_eq!(model.count_tokens("").unwrap(), 0);
    }

    #[test]
    fn the_chat_template_is_markers_on_their_own_lines() {
        let model = EchoModel::new();
        let messages =
            [ChatMessage::system("Be brief."), ChatMessage::user("Hi"), ChatMessage::assistant("Hello")];
        let closed = model.render_chat(&messages, false).unwrap();
        assert_eq!(closed, "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello\n");
        let open = model.render_chat(&messages, true).unwrap();
        assert_eq!(open, format!("{closed}<|assistant|>\n"));
        // One token per marker plus the words.
        assert_eq!(model.count_tokens(&open).unwrap(), 3 + 4 + 1);
    }

    #[test]
    fn the_reply_echoes_the_last_user_message_word_by_word() {
        let model = EchoModel::new();
        let history = [
            ChatMessage::user("first question"),
            ChatMessage::assistant("first answer"),
            ChatMessage::user("how are\nyou"),
        ];
        let prompt = model.render_chat(&history, true).unwrap();
        let (pieces, generation) = stream(&model, &prompt, &GenerationParams::default());
        assert_eq!(pieces, ["echo:", " how", " are", " you"]);
        assert_eq!(generation.text, "echo: how are you");
        assert_eq!(generation.finish_reason, FinishReason::Stop);
        let usage = Usage { prompt_tokens: 11, completion_tokens: 4, cached_tokens: 0 };
        assert_eq!(generation.usage, usage);
        // A prompt without chat markers is echoed whole.
        assert_eq!(stream(&model, "plain text", &GenerationParams::default()).1.text, "echo: plain text");
    }

    #[test]
    fn max_tokens_ends_the_reply_with_length() {
        let model = EchoModel::new();
        let prompt = prompt_for(&model, "one two three");
        let params = GenerationParams { max_tokens: 2, ..GenerationParams::default() };
        let (pieces, generation) = stream(&model, &prompt, &params);
        assert_eq!(pieces, ["echo:", " one"]);
        assert_eq!(generation.finish_reason, FinishReason::Length);
        assert_eq!(generation.usage.completion_tokens, 2);
        // Exactly enough room is a natural end.
        let params = GenerationParams { max_tokens: 4, ..GenerationParams::default() };
        assert_eq!(stream(&model, &prompt, &params).1.finish_reason, FinishReason::Stop);
    }

    #[test]
    fn a_stop_string_cuts_the_reply_before_it() {
        let model = EchoModel::new();
        let prompt = prompt_for(&model, "alpha beta gamma");
        let params =
            GenerationParams { stop: vec!["gam".into(), "a b".into()], ..GenerationParams::default() };
        let (pieces, generation) = stream(&model, &prompt, &params);
        assert_eq!(pieces, ["echo:", " alph"]);
        assert_eq!(generation.text, "echo: alph");
        assert_eq!(generation.finish_reason, FinishReason::Stop);
        assert_eq!(generation.usage.completion_tokens, 2);
    }

    #[test]
    fn a_break_from_the_callback_cancels_with_the_text_so_far() {
        let model = EchoModel::new();
        let prompt = prompt_for(&model, "a b c d");
        let mut seen = 0;
        let generation = model
            .generate(&prompt, &GenerationParams::default(), &mut |_| {
                seen += 1;
                if seen == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
            })
            .unwrap();
        assert_eq!(generation.text, "echo: a");
        assert_eq!(generation.finish_reason, FinishReason::Cancelled);
        assert_eq!(generation.usage.completion_tokens, 2);
    }

    #[test]
    fn a_cancel_token_stops_before_the_next_piece() {
        let model = EchoModel::new();
        let prompt = prompt_for(&model, "a b c");
        let cancel = CancelToken::new();
        let mut pieces = Vec::new();
        let generation = model
            .generate_cancellable(&prompt, &GenerationParams::default(), &cancel, &mut |piece| {
                pieces.push(piece.to_owned());
                cancel.cancel();
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(pieces, ["echo:"]);
        assert_eq!(generation.text, "echo:");
        assert_eq!(generation.finish_reason, FinishReason::Cancelled);
    }

    #[test]
    fn a_prompt_that_does_not_fit_is_an_overflow_with_the_numbers() {
        let model = EchoModel::new().with_context_length(10);
        let params = GenerationParams { max_tokens: 4, ..GenerationParams::default() };
        let err = model.generate("w w w w w w w", &params, &mut |_| ControlFlow::Continue(())).unwrap_err();
        assert!(
            matches!(
                err,
                BackendError::ContextOverflow { prompt_tokens: 7, reserved: 4, context_length: 10 }
            ),
            "{err:?}"
        );
        assert_eq!(model.generations_in_flight(), 0);
        // Six words and four reply tokens fill the window exactly.
        assert!(model.generate("w w w w w w", &params, &mut |_| ControlFlow::Continue(())).is_ok());
        assert_eq!(model.prompts().len(), 2, "refused prompts are recorded too");
    }

    #[test]
    fn cached_tokens_are_the_prefix_shared_with_the_previous_prompt() {
        let model = EchoModel::new();
        let first = prompt_for(&model, "hello");
        assert_eq!(stream(&model, &first, &GenerationParams::default()).1.usage.cached_tokens, 0);
        let second = format!("{first}echo: hello\n<|user|>\nmore\n<|assistant|>\n");
        assert_eq!(stream(&model, &second, &GenerationParams::default()).1.usage.cached_tokens, 6);
        let other = prompt_for(&model, "different");
        assert_eq!(stream(&model, &other, &GenerationParams::default()).1.usage.cached_tokens, 4);
        assert_eq!(model.prompts(), [first, second, other]);
    }

    #[test]
    fn replies_can_be_computed_or_scripted() {
        let model =
            EchoModel::new().with_reply(|prompt| format!("{} words", prompt.split_whitespace().count()));
        assert_eq!(stream(&model, "a b c", &GenerationParams::default()).1.text, "3 words");

        let model = EchoModel::new().with_replies(["first  reply\n", "second"]);
        let (pieces, generation) = stream(&model, "x", &GenerationParams::default());
        assert_eq!(pieces, ["first", "  reply\n"]);
        assert_eq!(generation.text, "first  reply\n");
        assert_eq!(stream(&model, "x", &GenerationParams::default()).1.text, "second");
        assert_eq!(stream(&model, "x", &GenerationParams::default()).1.text, "echo: x");
    }

    #[test]
    fn the_piece_delay_slows_each_piece() {
        let model = EchoModel::new().with_piece_delay(Duration::from_millis(20));
        let started = Instant::now();
        stream(&model, "a b", &GenerationParams::default());
        assert!(started.elapsed() >= Duration::from_millis(60), "three pieces, 20 ms each");
    }

    #[test]
    fn a_hold_stops_each_generation_after_its_first_piece() {
        let model = EchoModel::new();
        let gate = model.hold();
        let (sender, pieces) = mpsc::channel();
        std::thread::scope(|scope| {
            let running = scope.spawn(|| {
                model.generate("a b c", &GenerationParams::default(), &mut |piece| {
                    sender.send(piece.to_owned()).unwrap();
                    ControlFlow::Continue(())
                })
            });
            assert_eq!(pieces.recv_timeout(WAIT).unwrap(), "echo:");
            assert!(pieces.recv_timeout(Duration::from_millis(100)).is_err(), "held after one piece");
            assert_eq!(model.generations_in_flight(), 1);
            drop(gate);
            assert_eq!(running.join().unwrap().unwrap().text, "echo: a b c");
        });
        assert_eq!(pieces.try_iter().collect::<Vec<_>>(), [" a", " b", " c"]);
        assert_eq!(model.generations_in_flight(), 0);
    }

    #[test]
    fn overlapping_generations_are_counted() {
        let model = EchoModel::new();
        let gate = model.hold();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| stream(&model, "a b", &GenerationParams::default()));
            }
            assert!(model.wait_for_generations_in_flight(2, WAIT));
            drop(gate);
        });
        assert_eq!(model.generations_in_flight(), 0);
        assert_eq!(model.max_generations_in_flight(), 2);

        let sequential = EchoModel::new();
        stream(&sequential, "a", &GenerationParams::default());
        stream(&sequential, "b", &GenerationParams::default());
        assert_eq!(sequential.max_generations_in_flight(), 1);
        assert!(!sequential.wait_for_generations_in_flight(1, Duration::from_millis(10)));
    }

    #[test]
    fn a_saved_state_is_reused_by_the_next_generation() {
        let path = temp_path("state.kv");
        let saver = EchoModel::new();
        let conversation = saver
            .render_chat(&[ChatMessage::user("hello"), ChatMessage::assistant("echo: hello")], false)
            .unwrap();
        assert_eq!(saver.save_state(&conversation, &path).unwrap(), 5);

        let model = EchoModel::new();
        assert_eq!(model.load_state(&path).unwrap(), 5);
        let next = format!("{conversation}<|user|>\nagain\n<|assistant|>\n");
        assert_eq!(stream(&model, &next, &GenerationParams::default()).1.usage.cached_tokens, 5);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_foreign_or_missing_state_file_is_refused_and_changes_nothing() {
        let model = EchoModel::new();
        stream(&model, "a b c", &GenerationParams::default());
        let foreign = temp_path("foreign.kv");
        std::fs::write(&foreign, "a b c").unwrap();
        let err = model.load_state(&foreign).unwrap_err();
        assert!(err.to_string().contains("not a state file saved by the echo model"), "{err}");
        assert!(model.load_state(&temp_path("missing.kv")).is_err());
        assert_eq!(stream(&model, "a b c d", &GenerationParams::default()).1.usage.cached_tokens, 3);
        let _ = std::fs::remove_file(&foreign);
    }

    #[test]
    fn info_names_the_echo_model() {
        let model = EchoModel::new().with_context_length(128);
        assert_eq!(model.info().name, "echo");
        assert_eq!(model.info().context_length, Some(128));
        assert_eq!(model.context_length(), 128);
        assert_eq!(EchoModel::default().context_length(), DEFAULT_CONTEXT_LENGTH);
    }

    #[test]
    fn it_is_shareable_between_threads_as_a_trait_object() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<EchoModel>();
        send_sync::<HoldGuard>();
        let model: Arc<dyn LoadedModel> = Arc::new(EchoModel::new());
        let reply = model.chat(&[ChatMessage::user("hi")], &GenerationParams::greedy(), &mut |_| {
            ControlFlow::Continue(())
        });
        assert_eq!(reply.unwrap().text, "echo: hi");
    }

    #[test]
    fn pieces_add_up_to_the_text() {
        assert_eq!(pieces("a  b\nc "), ["a", "  b", "\nc "]);
        assert_eq!(pieces("  lead"), ["  lead"]);
        assert!(pieces("   ").is_empty());
        assert!(pieces("").is_empty());
    }
}
