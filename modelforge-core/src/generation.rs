//! Generation settings and results.

use serde::{Deserialize, Serialize};

/// How to sample a reply. `Default` gives a sensible chat setting; [`GenerationParams::greedy`]
/// gives reproducible output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationParams {
    /// The most tokens to generate.
    pub max_tokens: u32,
    /// Softmax temperature; `0.0` means greedy (always the most likely token).
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    /// `1.0` disables it.
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; `0` disables it.
    pub top_k: u32,
    /// Drop tokens less likely than `min_p` times the most likely one; `0.0` disables it.
    pub min_p: f32,
    /// Penalty for repeating recent tokens; `1.0` disables it.
    pub repeat_penalty: f32,
    /// Seed of the random sampler, for reproducible sampling.
    pub seed: u64,
    /// Generation ends when the output contains one of these; the stop string itself is not
    /// part of the reply.
    pub stop: Vec<String>,
    /// A grammar in llama.cpp's GBNF notation (start rule `root`) that every generated token
    /// must follow, e.g. to force valid JSON from a small model. `None` leaves output free.
    /// Backends without grammar sampling answer
    /// [`BackendError::Unsupported`](crate::BackendError::Unsupported) rather than ignore it.
    pub grammar: Option<String>,
    /// OpenAI's frequency penalty: subtracted from a token's logit once per time it already
    /// appeared in the reply; `0.0` disables it.
    pub frequency_penalty: f32,
    /// OpenAI's presence penalty: subtracted from the logit of every token that already
    /// appeared in the reply; `0.0` disables it.
    pub presence_penalty: f32,
    /// Added to the logits of these token ids before sampling (OpenAI's `logit_bias`; `-100`
    /// practically bans a token).
    pub logit_bias: Vec<(u32, f32)>,
    /// Report each generated token's log-probability and this many of the most likely
    /// alternatives (see [`TokenLogprob`]); `None` reports nothing. Backends that cannot
    /// answer [`BackendError::Unsupported`](crate::BackendError::Unsupported).
    pub logprobs: Option<u32>,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: 0.7,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            repeat_penalty: 1.0,
            seed: 42,
            stop: Vec::new(),
            grammar: None,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            logit_bias: Vec::new(),
            logprobs: None,
        }
    }
}

impl GenerationParams {
    /// Greedy decoding: the same prompt always gives the same reply.
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_p: 1.0, top_k: 0, min_p: 0.0, ..Self::default() }
    }

    /// Whether these settings pick the most likely token every time.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn (end-of-turn or end-of-generation token) or a stop string
    /// was met.
    Stop,
    /// `max_tokens` was reached, or the context window is full.
    Length,
    /// The caller's callback asked to stop.
    Cancelled,
}

impl FinishReason {
    /// The name used by the OpenAI API (`stop`, `length`) and by `--json` output.
    pub const fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// Token counts of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Prompt tokens whose processing was skipped because the backend had them cached from an
    /// earlier turn (context reuse); included in `prompt_tokens`.
    #[serde(default)]
    pub cached_tokens: u32,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub const fn total_tokens(&self) -> u32 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The result of one generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated text, without any stop string or end-of-turn token.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
}

/// A generated token with its log-probability, and the most likely alternatives at its place
/// (when [`GenerationParams::logprobs`] asks for them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The token's text (lossy when the token holds part of a multi-byte character).
    pub token: String,
    /// The token's exact bytes.
    pub bytes: Vec<u8>,
    /// Natural log of the token's probability under the model.
    pub logprob: f32,
    /// The most likely tokens at this place, most likely first.
    pub top: Vec<TopLogprob>,
}

/// One alternative of a [`TokenLogprob`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    /// The token's text (lossy, like [`TokenLogprob::token`]).
    pub token: String,
    /// The token's exact bytes.
    pub bytes: Vec<u8>,
    /// Natural log of its probability.
    pub logprob: f32,
}
