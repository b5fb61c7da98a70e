//! The text side of a generation loop, shared by every backend.
//!
//! Whatever produces the tokens (llama.cpp's decode, candle's forward pass, one sequence of a
//! batch), turning them into what the caller sees is the same: token bytes go through a
//! [`Utf8Decoder`] so no piece ends inside a character, then through a [`StopMatcher`] so no
//! part of a stop string is shown, then to the caller's callback, which may cancel. The token
//! budget and the finish reason follow from the same few rules. [`TextStream`] holds that state
//! for one sequence and is driven one token at a time, which also suits batched decoding where
//! several sequences advance in one step; [`run`] is the whole loop for a backend that decodes
//! one sequence, given a [`TokenSource`].
//!
//! ```
//! use std::ops::ControlFlow;
//! use modelforge_core::{FinishReason, GenerationParams};
//! use modelforge_engine::stream::TextStream;
//!
//! let params = GenerationParams { stop: vec!["END".into()], ..GenerationParams::greedy() };
//! let mut shown = String::new();
//! let mut on_piece = |piece: &str| {
//!     shown.push_str(piece);
//!     ControlFlow::Continue(())
//! };
//! let mut stream = TextStream::new(&params, &mut on_piece);
//! // "é" split over two tokens, then a stop string split over two more.
//! for token in [&b"caf\xc3"[..], b"\xa9 E", b"ND!"] {
//!     if let ControlFlow::Break(reason) = stream.push_token(token) {
//!         assert_eq!(reason, FinishReason::Stop);
//!         break;
//!     }
//! }
//! let done = stream.finish(FinishReason::Stop);
//! assert_eq!(done.text, "café ");
//! assert_eq!(done.completion_tokens, 3);
//! assert_eq!(shown, "café ");
//! ```

use std::borrow::Cow;
use std::ops::ControlFlow;

use modelforge_core::{BackendError, FinishReason, Generation, GenerationParams, PieceCallback, Usage};

use crate::stop::{StopCheck, StopMatcher};
use crate::utf8::Utf8Decoder;

/// The text state of one generating sequence: UTF-8 decoding, stop strings, the token budget
/// and the callback `F` that is shown each piece and may cancel.
pub struct TextStream<F> {
    decoder: Utf8Decoder,
    stops: StopMatcher,
    text: String,
    on_piece: F,
    completion_tokens: u32,
    max_tokens: u32,
}

/// What a finished [`TextStream`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Everything shown to the callback: no stop string, no control token.
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Tokens generated (end-of-generation tokens are not counted).
    pub completion_tokens: u32,
}

impl Completion {
    /// The [`Generation`] for a prompt of `prompt_tokens` tokens.
    pub fn into_generation(self, prompt_tokens: u32) -> Generation {
        Generation {
            text: self.text,
            finish_reason: self.finish_reason,
            usage: Usage { prompt_tokens, completion_tokens: self.completion_tokens, ..Usage::default() },
        }
    }
}

impl<F> std::fmt::Debug for TextStream<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextStream")
            .field("completion_tokens", &self.completion_tokens)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(&str) -> ControlFlow<()>> TextStream<F> {
    /// A stream with the budget and stop strings of `params`, showing pieces to `on_piece`.
    pub fn new(params: &GenerationParams, on_piece: F) -> Self {
        Self {
            decoder: Utf8Decoder::new(),
            stops: StopMatcher::new(&params.stop),
            text: String::new(),
            on_piece,
            completion_tokens: 0,
            max_tokens: params.max_tokens,
        }
    }

    /// Whether the token budget is used up; check before sampling the first token (a budget
    /// of zero generates nothing).
    pub fn is_exhausted(&self) -> bool {
        self.completion_tokens >= self.max_tokens
    }

    /// Tokens pushed so far.
    pub fn completion_tokens(&self) -> u32 {
        self.completion_tokens
    }

    /// Adds one generated token's bytes (not an end-of-generation token: the caller ends
    /// with [`FinishReason::Stop`] for those) and shows whatever text became final.
    ///
    /// Returns `Break` with the reason when generation must end now: a stop string was met
    /// (`Stop`), the callback asked to stop (`Cancelled`) or the budget is used up (`Length`).
    /// The token that triggered it need not be decoded by the model.
    pub fn push_token(&mut self, bytes: &[u8]) -> ControlFlow<FinishReason> {
        self.completion_tokens += 1;
        let piece = self.decoder.push(bytes);
        match self.stops.push(&piece) {
            StopCheck::Stop(rest) => {
                // The caller cannot cancel what has ended anyway.
                let _ = self.emit(rest);
                return ControlFlow::Break(FinishReason::Stop);
            }
            StopCheck::Continue(piece) => {
                if self.emit(piece).is_break() {
                    return ControlFlow::Break(FinishReason::Cancelled);
                }
            }
        }
        if self.is_exhausted() { ControlFlow::Break(FinishReason::Length) } else { ControlFlow::Continue(()) }
    }

    /// Ends the stream for `reason`: text held back as a possible stop-string start is shown
    /// (unless the caller cancelled), and bytes of an unfinished character are dropped.
    pub fn finish(mut self, reason: FinishReason) -> Completion {
        let dropped = self.decoder.finish();
        if dropped > 0 {
            tracing::debug!(dropped, "generation ended inside a multi-byte character");
        }
        if reason != FinishReason::Cancelled {
            let rest = self.stops.finish();
            let _ = self.emit(rest);
        }
        Completion { text: self.text, finish_reason: reason, completion_tokens: self.completion_tokens }
    }

    fn emit(&mut self, piece: String) -> ControlFlow<()> {
        if piece.is_empty() {
            return ControlFlow::Continue(());
        }
        self.text.push_str(&piece);
        (self.on_piece)(&piece)
    }
}

/// A single sequence's token loop, as [`run`] drives it.
pub trait TokenSource {
    /// The backend's token type.
    type Token: Copy;

    /// Picks the next token from the model's current output (the logits after the prompt, or
    /// after the last [`accept`](Self::accept)ed token).
    fn next_token(&mut self) -> Result<Self::Token, BackendError>;

    /// Whether `token` ends the model's turn (end of generation / end of turn).
    fn is_end_of_generation(&self, token: Self::Token) -> bool;

    /// The bytes `token` stands for in generated text; empty for control tokens.
    fn token_bytes(&self, token: Self::Token) -> Cow<'_, [u8]>;

    /// Feeds `token` to the model, so the next [`next_token`](Self::next_token) follows it.
    fn accept(&mut self, token: Self::Token) -> Result<(), BackendError>;
}

/// Runs a whole generation: sample, stop at end of generation, stream the text, feed the token
/// back, until a stop string, the budget or the callback ends it.
pub fn run<S: TokenSource>(
    source: &mut S,
    params: &GenerationParams,
    on_piece: &mut PieceCallback<'_>,
) -> Result<Completion, BackendError> {
    let mut stream = TextStream::new(params, on_piece);
    let reason = loop {
        if stream.is_exhausted() {
            break FinishReason::Length;
        }
        let token = source.next_token()?;
        if source.is_end_of_generation(token) {
            break FinishReason::Stop;
        }
        if let ControlFlow::Break(reason) = stream.push_token(&source.token_bytes(token)) {
            break reason;
        }
        source.accept(token)?;
    };
    Ok(stream.finish(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays fixed tokens; token 0 is end of generation.
    struct Script {
        tokens: Vec<&'static str>,
        next: usize,
        accepted: usize,
    }

    impl TokenSource for Script {
        type Token = usize;

        fn next_token(&mut self) -> Result<usize, BackendError> {
            let i = self.next;
            self.next += 1;
            Ok(if i < self.tokens.len() { i + 1 } else { 0 })
        }

        fn is_end_of_generation(&self, token: usize) -> bool {
            token == 0
        }

        fn token_bytes(&self, token: usize) -> Cow<'_, [u8]> {
            Cow::Borrowed(self.tokens[token - 1].as_bytes())
        }

        fn accept(&mut self, _token: usize) -> Result<(), BackendError> {
            self.accepted += 1;
            Ok(())
        }
    }

    fn go(
        tokens: &[&'static str],
        params: &GenerationParams,
        cancel_after: usize,
    ) -> (Completion, Vec<String>, usize) {
        let mut script = Script { tokens: tokens.to_vec(), next: 0, accepted: 0 };
        let mut pieces = Vec::new();
        let done = run(&mut script, params, &mut |p| {
            pieces.push(p.to_owned());
            if pieces.len() == cancel_after { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
        (done, pieces, script.accepted)
    }

    #[test]
    fn end_of_generation_stops_and_releases_held_text() {
        let params = GenerationParams { stop: vec!["XYZ".into()], ..GenerationParams::greedy() };
        let (done, pieces, _) = go(&["Hello", " X"], &params, 0);
        assert_eq!(done.finish_reason, FinishReason::Stop);
        assert_eq!(done.text, "Hello X");
        assert_eq!(pieces, ["Hello", " ", "X"]);
        assert_eq!(done.completion_tokens, 2);
    }

    #[test]
    fn the_budget_ends_with_length_without_decoding_the_last_token() {
        let params = GenerationParams { max_tokens: 2, ..GenerationParams::greedy() };
        let (done, _, accepted) = go(&["a", "b", "c"], &params, 0);
        assert_eq!(done.finish_reason, FinishReason::Length);
        assert_eq!(done.text, "ab");
        assert_eq!(accepted, 1, "the last token of the budget is never fed back");
        let zero = GenerationParams { max_tokens: 0, ..GenerationParams::greedy() };
        assert_eq!(go(&["a"], &zero, 0).0.completion_tokens, 0);
    }

    #[test]
    fn cancelling_keeps_what_was_shown() {
        let (done, pieces, _) = go(&["a", "b", "c"], &GenerationParams::greedy(), 2);
        assert_eq!(done.finish_reason, FinishReason::Cancelled);
        assert_eq!(pieces.concat(), "ab");
        assert_eq!(done.text, "ab");
    }

    #[test]
    fn a_stop_string_on_the_last_budget_token_is_a_stop() {
        let params = GenerationParams { max_tokens: 2, stop: vec!["b".into()], ..GenerationParams::greedy() };
        let (done, _, _) = go(&["a", "b"], &params, 0);
        assert_eq!(done.finish_reason, FinishReason::Stop);
        assert_eq!(done.text, "a");
    }
}
