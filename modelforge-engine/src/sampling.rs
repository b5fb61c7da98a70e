//! The llama.cpp sampler chain built from [`GenerationParams`].
//!
//! A grammar is not part of the chain: checking every token of the vocabulary against a
//! grammar at every step is slow (tens of milliseconds with a 50k vocabulary), so, as
//! llama.cpp's own `common_sampler` does, [`Sampler::sample`] first samples without the
//! grammar, checks only that token, and filters the whole vocabulary only when the grammar
//! refuses it.

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use modelforge_core::{BackendError, GenerationParams};

/// How many recent tokens the repeat penalty looks at (llama.cpp's default).
const PENALTY_LAST_N: i32 = 64;

/// Builds the chain in llama.cpp's own order: logit biases, penalties, top-k, top-p, min-p,
/// temperature, then a seeded draw. Greedy settings skip straight to picking the most likely
/// token. A grammar comes first, so every later step only sees tokens the grammar allows.
pub(crate) fn sampler_chain(params: &GenerationParams, model: &LlamaModel) -> Result<Sampler, BackendError> {
    let grammar = match &params.grammar {
        Some(grammar) => Some(LlamaSampler::grammar(model, grammar, "root").map_err(|err| {
            BackendError::InvalidRequest { reason: format!("the grammar was rejected by llama.cpp: {err}") }
        })?),
        None => None,
    };
    Ok(Sampler { chain: chain(params, model)?, grammar, eos: model.vocab().eos() })
}

/// A sampler chain and, apart from it, the grammar its tokens must follow.
pub(crate) struct Sampler {
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
    eos: LlamaToken,
}

impl Sampler {
    /// Picks the next token from the logits at batch index `at`, and records it.
    pub fn sample(&mut self, ctx: &LlamaContext<'_>, at: i32) -> LlamaToken {
        let Some(grammar) = self.grammar.as_mut() else { return self.chain.sample(ctx, at) };
        let pick = |chain: &mut LlamaSampler, grammar: Option<&mut LlamaSampler>| {
            let mut candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(at), false);
            if let Some(grammar) = grammar {
                candidates.apply_sampler(grammar);
            }
            candidates.apply_sampler(chain);
            candidates.selected_token()
        };
        let mut token = pick(&mut self.chain, None);
        let allowed = token.is_some_and(|t| {
            let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(t, 1.0, 0.0)], false);
            single.apply_sampler(grammar);
            single.data.first().is_some_and(|d| d.logit().is_finite())
        });
        if !allowed {
            token = pick(&mut self.chain, Some(grammar));
        }
        // Every sampler has a token to select; end of generation is the grammar's last resort.
        let token = token.unwrap_or(self.eos);
        self.chain.accept(token);
        grammar.accept(token);
        token
    }
}

fn chain(params: &GenerationParams, model: &LlamaModel) -> Result<LlamaSampler, BackendError> {
    let n_vocab = model.n_vocab();
    let mut chain = Vec::new();
    if !params.logit_bias.is_empty() {
        let mut biases = Vec::with_capacity(params.logit_bias.len());
        for &(token, bias) in &params.logit_bias {
            if i64::from(token) >= i64::from(n_vocab) {
                return Err(BackendError::InvalidRequest {
                    reason: format!(
                        "logit_bias names token {token}, but the vocabulary has {n_vocab} tokens"
                    ),
                });
            }
            biases.push(LlamaLogitBias::new(LlamaToken(token as i32), bias));
        }
        chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
    }
    if params.repeat_penalty != 1.0 || params.frequency_penalty != 0.0 || params.presence_penalty != 0.0 {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            PENALTY_LAST_N,
            params.repeat_penalty,
            params.frequency_penalty,
            params.presence_penalty,
        ));
    }
    if params.is_greedy() {
        chain.push(LlamaSampler::greedy());
        return Ok(LlamaSampler::chain_simple(chain));
    }
    if params.top_k > 0 {
        chain.push(LlamaSampler::top_k(params.top_k as i32));
    }
    if params.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(params.top_p, 1));
    }
    if params.min_p > 0.0 {
        chain.push(LlamaSampler::min_p(params.min_p, 1));
    }
    chain.push(LlamaSampler::temp(params.temperature));
    // llama.cpp seeds are 32-bit; fold the high half in so every u64 seed matters.
    chain.push(LlamaSampler::dist((params.seed ^ (params.seed >> 32)) as u32));
    Ok(LlamaSampler::chain_simple(chain))
}
