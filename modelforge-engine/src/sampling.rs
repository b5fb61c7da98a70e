//! The llama.cpp sampler chain built from [`GenerationParams`].
//!
//! A grammar is not part of the chain: checking every token of the vocabulary against a
//! grammar at every step is slow (tens of milliseconds with a 50k vocabulary), so, as
//! llama.cpp's own `common_sampler` does, [`Sampler::sample`] first samples without the
//! grammar, checks only that token, and filters the whole vocabulary only when the grammar
//! refuses it.
//!
//! The most common request of the OpenAI API (a temperature, and nothing else: OpenAI has no
//! top-k or min-p and `top_p` defaults to 1) draws from the whole vocabulary. llama.cpp's
//! chain does that with a scalar `expf` per token of the vocabulary, about half a millisecond
//! with a 50k vocabulary: 5-10 % of a small model's step, spent on one core while the other
//! inference threads wait. [`WholeVocabulary`] draws from the same distribution in one
//! vectorized pass instead.

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
    if let Some(draw) = WholeVocabulary::for_params(params) {
        return Ok(Sampler { chain: Chain::Whole(draw), grammar: None, eos: model.vocab().eos() });
    }
    let grammar = match &params.grammar {
        Some(grammar) => Some(LlamaSampler::grammar(model, grammar, "root").map_err(|err| {
            BackendError::InvalidRequest { reason: format!("the grammar was rejected by llama.cpp: {err}") }
        })?),
        None => None,
    };
    Ok(Sampler { chain: Chain::Llama(chain(params, model)?), grammar, eos: model.vocab().eos() })
}

/// A sampler chain and, apart from it, the grammar its tokens must follow.
pub(crate) struct Sampler {
    chain: Chain,
    grammar: Option<LlamaSampler>,
    eos: LlamaToken,
}

/// How the next token is picked.
enum Chain {
    /// llama.cpp's sampler chain.
    Llama(LlamaSampler),
    /// A draw from the whole vocabulary (never with a grammar).
    Whole(WholeVocabulary),
}

impl Sampler {
    /// Picks the next token from the logits at batch index `at`, and records it.
    pub fn sample(&mut self, ctx: &LlamaContext<'_>, at: i32) -> LlamaToken {
        let chain = match &mut self.chain {
            Chain::Whole(draw) => return LlamaToken(draw.draw(ctx.get_logits_ith(at)) as i32),
            Chain::Llama(chain) => chain,
        };
        let Some(grammar) = self.grammar.as_mut() else { return chain.sample(ctx, at) };
        let pick = |chain: &mut LlamaSampler, grammar: Option<&mut LlamaSampler>| {
            let mut candidates = LlamaTokenDataArray::from_iter(ctx.candidates_ith(at), false);
            if let Some(grammar) = grammar {
                candidates.apply_sampler(grammar);
            }
            candidates.apply_sampler(chain);
            candidates.selected_token()
        };
        let mut token = pick(chain, None);
        let allowed = token.is_some_and(|t| {
            let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(t, 1.0, 0.0)], false);
            single.apply_sampler(grammar);
            single.data.first().is_some_and(|d| d.logit().is_finite())
        });
        if !allowed {
            token = pick(chain, Some(grammar));
        }
        // Every sampler has a token to select; end of generation is the grammar's last resort.
        let token = token.unwrap_or(self.eos);
        chain.accept(token);
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
    if penalized(params) {
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

/// Whether any of the repeat, frequency or presence penalties is set.
fn penalized(params: &GenerationParams) -> bool {
    params.repeat_penalty != 1.0 || params.frequency_penalty != 0.0 || params.presence_penalty != 0.0
}

/// A draw from softmax(logits / temperature) over the whole vocabulary: the distribution of
/// llama.cpp's `temp` then `dist`, computed with an exponential the compiler vectorizes.
pub(crate) struct WholeVocabulary {
    temperature: f32,
    /// SplitMix64's state: every bit of the 64-bit seed matters.
    state: u64,
    /// The weights of the last draw, kept to reuse the allocation.
    weights: Vec<f32>,
}

impl WholeVocabulary {
    /// The draw for `params` when nothing but a temperature shapes the distribution.
    pub(crate) fn for_params(params: &GenerationParams) -> Option<Self> {
        let plain = params.temperature > 0.0
            && params.top_k == 0
            && params.top_p >= 1.0
            && params.min_p <= 0.0
            && params.grammar.is_none()
            && params.logit_bias.is_empty()
            && !penalized(params);
        plain.then(|| Self::new(params.temperature, params.seed))
    }

    fn new(temperature: f32, seed: u64) -> Self {
        Self { temperature, state: seed, weights: Vec::new() }
    }

    /// A uniform number in [0, 1) (SplitMix64, then the top 53 bits).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The index of the drawn token. Logits that are NaN count as impossible.
    pub(crate) fn draw(&mut self, logits: &[f32]) -> usize {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return 0;
        }
        let scale = 1.0 / self.temperature;
        self.weights.clear();
        self.weights.extend(logits.iter().map(|&l| exp_nonpositive((l - max) * scale)));
        // Summed in eight lanes, which vectorizes and loses less precision than one running sum.
        let mut lanes = [0f32; 8];
        for chunk in self.weights.chunks(8) {
            for (lane, w) in lanes.iter_mut().zip(chunk) {
                *lane += w;
            }
        }
        let total: f64 = lanes.iter().map(|&l| f64::from(l)).sum();
        let target = self.uniform() * total;
        let mut running = 0f64;
        let mut last = 0;
        for (i, &w) in self.weights.iter().enumerate() {
            if w > 0.0 {
                running += f64::from(w);
                last = i;
                if running > target {
                    return i;
                }
            }
        }
        last // rounding left the target just past the end: the last possible token
    }
}

/// e^x for x <= 0 (NaN gives 0), within 2 units in the last place: Cody-Waite range reduction
/// and a degree-7 polynomial, without branches, so a loop over logits vectorizes.
fn exp_nonpositive(x: f32) -> f32 {
    // Below this e^x is under f32's smallest normal number: call it 0.
    let x = if x >= -87.0 { x } else { -104.0 };
    let n = (x * std::f32::consts::LOG2_E).round();
    // ln 2 split in two, so that n * ln 2 is subtracted exactly.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    // Taylor to degree 7: |r| <= ln 2 / 2, so the first term left out is under 5e-9.
    const C: [f32; 8] = [1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0];
    let p = C.iter().rev().fold(0.0, |acc, &c| acc * r + c);
    let scale = f32::from_bits(((n as i32 + 127).max(0) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exponential_is_within_two_ulp_of_the_standard_one() {
        let mut worst = 0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) / 10_000.0;
            let (ours, std) = (exp_nonpositive(x), x.exp());
            worst = worst.max((ours - std).abs() / std);
        }
        assert!(worst < 2.5e-7, "largest relative error {worst}");
        assert_eq!(exp_nonpositive(-200.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(f32::NAN), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
    }

    #[test]
    fn draws_follow_the_softmax_at_the_temperature() {
        let logits = [2.0f32, 1.0, 0.0, -1.0, f32::NEG_INFINITY, 0.5];
        for temperature in [0.5f32, 1.0, 2.0] {
            let mut draw = WholeVocabulary::new(temperature, 7);
            let draws = 200_000;
            let mut counts = [0usize; 6];
            for _ in 0..draws {
                counts[draw.draw(&logits)] += 1;
            }
            let weights: Vec<f64> = logits.iter().map(|&l| f64::from(l / temperature).exp()).collect();
            let total: f64 = weights.iter().sum();
            for (i, (&count, w)) in counts.iter().zip(&weights).enumerate() {
                let expected = w / total;
                let seen = count as f64 / draws as f64;
                // Four standard deviations of a binomial share.
                let tolerance = 4.0 * (expected * (1.0 - expected) / draws as f64).sqrt() + 1e-9;
                assert!(
                    (seen - expected).abs() <= tolerance,
                    "T={temperature} token {i}: drawn {seen:.4}, softmax {expected:.4}"
                );
            }
            assert_eq!(counts[4], 0, "a token of logit -inf is never drawn");
        }
    }

    #[test]
    fn the_seed_decides_the_draws() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32) / 25.0).collect();
        let run = |seed| {
            let mut draw = WholeVocabulary::new(1.0, seed);
            (0..50).map(|_| draw.draw(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        assert_ne!(run(1), run(1 << 40), "the high half of the seed matters");
    }

    #[test]
    fn only_a_plain_temperature_takes_the_whole_vocabulary_path() {
        let plain = GenerationParams { top_k: 0, top_p: 1.0, min_p: 0.0, ..GenerationParams::default() };
        assert!(WholeVocabulary::for_params(&plain).is_some());
        assert!(WholeVocabulary::for_params(&GenerationParams::default()).is_none(), "top-k 40");
        assert!(WholeVocabulary::for_params(&GenerationParams::greedy()).is_none());
        let biased = GenerationParams { logit_bias: vec![(1, 5.0)], ..plain.clone() };
        assert!(WholeVocabulary::for_params(&biased).is_none());
        let grammar = GenerationParams { grammar: Some("root ::= \"a\"".into()), ..plain.clone() };
        assert!(WholeVocabulary::for_params(&grammar).is_none());
        let penalized = GenerationParams { presence_penalty: 0.5, ..plain };
        assert!(WholeVocabulary::for_params(&penalized).is_none());
    }
}
