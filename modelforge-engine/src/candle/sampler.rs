//! Token sampling from [`GenerationParams`], in llama.cpp's order.
//!
//! The llama.cpp backend chains repeat penalty, top-k, top-p, min-p, temperature and a seeded
//! draw; this sampler applies the same steps in the same order so a setting means the same
//! thing on both backends (the random streams differ, so sampled text does too).

use modelforge_core::GenerationParams;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How many recent generated tokens the repeat penalty looks at (llama.cpp's default).
const PENALTY_LAST_N: usize = 64;

/// Picks tokens from logits.
#[derive(Debug)]
pub(crate) struct Sampler {
    params: GenerationParams,
    rng: StdRng,
    recent: Vec<u32>,
}

impl Sampler {
    pub(crate) fn new(params: &GenerationParams) -> Self {
        Self { params: params.clone(), rng: StdRng::seed_from_u64(params.seed), recent: Vec::new() }
    }

    /// Picks the next token from `logits` and remembers it for the repeat penalty.
    pub(crate) fn sample(&mut self, logits: &mut [f32]) -> u32 {
        self.apply_repeat_penalty(logits);
        let token = if self.params.is_greedy() { argmax(logits) } else { self.draw(logits) };
        if self.recent.len() == PENALTY_LAST_N {
            self.recent.remove(0);
        }
        self.recent.push(token);
        token
    }

    fn apply_repeat_penalty(&self, logits: &mut [f32]) {
        let penalty = self.params.repeat_penalty;
        if penalty == 1.0 {
            return;
        }
        let mut seen = self.recent.clone();
        seen.sort_unstable();
        seen.dedup();
        for token in seen {
            if let Some(logit) = logits.get_mut(token as usize) {
                *logit = if *logit > 0.0 { *logit / penalty } else { *logit * penalty };
            }
        }
    }

    fn draw(&mut self, logits: &[f32]) -> u32 {
        let p = &self.params;
        let mut candidates: Vec<(u32, f32)> =
            logits.iter().enumerate().filter(|(_, l)| l.is_finite()).map(|(i, &l)| (i as u32, l)).collect();
        if candidates.is_empty() {
            return argmax(logits);
        }
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1);
        let k = p.top_k as usize;
        if k > 0 && k < candidates.len() {
            candidates.select_nth_unstable_by(k - 1, by_logit);
            candidates.truncate(k);
        }
        candidates.sort_unstable_by(by_logit);
        if p.top_p < 1.0 {
            let probs = softmax(&candidates, 1.0);
            let mut total = 0.0;
            let keep = probs
                .iter()
                .position(|&prob| {
                    total += prob;
                    total >= p.top_p
                })
                .map_or(candidates.len(), |i| i + 1);
            candidates.truncate(keep.max(1));
        }
        if p.min_p > 0.0 {
            // p_i >= min_p * p_max  <=>  logit_i >= logit_max + ln(min_p)
            let floor = candidates[0].1 + p.min_p.ln();
            let keep = candidates.iter().take_while(|c| c.1 >= floor).count();
            candidates.truncate(keep.max(1));
        }
        let probs = softmax(&candidates, p.temperature);
        let mut x: f32 = self.rng.r#gen();
        for (c, prob) in candidates.iter().zip(&probs) {
            if x < *prob {
                return c.0;
            }
            x -= prob;
        }
        candidates[candidates.len() - 1].0
    }
}

/// The first index of the largest logit.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Probabilities of candidates sorted by logit, largest first, at `temperature`.
fn softmax(candidates: &[(u32, f32)], temperature: f32) -> Vec<f32> {
    let t = temperature.max(1e-6);
    let max = candidates[0].1;
    let exps: Vec<f32> = candidates.iter().map(|c| ((c.1 - max) / t).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(f: impl FnOnce(&mut GenerationParams)) -> GenerationParams {
        let mut p =
            GenerationParams { temperature: 1.0, top_p: 1.0, top_k: 0, min_p: 0.0, ..Default::default() };
        f(&mut p);
        p
    }

    #[test]
    fn greedy_takes_the_first_largest() {
        let mut s = Sampler::new(&GenerationParams::greedy());
        assert_eq!(s.sample(&mut [0.1, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_whatever_the_seed() {
        for seed in 0..20 {
            let mut s = Sampler::new(&params(|p| {
                p.top_k = 1;
                p.seed = seed;
            }));
            assert_eq!(s.sample(&mut [1.0, 2.0, 1.9]), 1);
        }
    }

    #[test]
    fn min_p_and_top_p_cut_unlikely_tokens() {
        // Token 2 has probability e^-10 relative to token 0: min_p 0.01 removes it.
        for seed in 0..50 {
            let mut s = Sampler::new(&params(|p| {
                p.min_p = 0.01;
                p.seed = seed;
            }));
            assert_ne!(s.sample(&mut [10.0, 9.5, 0.0]), 2);
            let mut s = Sampler::new(&params(|p| {
                p.top_p = 0.5;
                p.seed = seed;
            }));
            assert_eq!(s.sample(&mut [10.0, 8.0, 0.0]), 0, "top_p 0.5 keeps only the top token");
        }
    }

    #[test]
    fn a_seed_reproduces_and_sampling_varies() {
        let draw = |seed| {
            let mut s = Sampler::new(&params(|p| p.seed = seed));
            (0..16).map(|_| s.sample(&mut [1.0, 1.0, 1.0, 1.0])).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(7).iter().any(|&t| t != draw(7)[0]));
    }

    #[test]
    fn repeat_penalty_discourages_recent_tokens() {
        let mut s = Sampler::new(&GenerationParams { repeat_penalty: 2.0, ..GenerationParams::greedy() });
        assert_eq!(s.sample(&mut [2.0, 1.5]), 0);
        assert_eq!(s.sample(&mut [2.0, 1.5]), 1, "2.0 / 2 < 1.5 once token 0 was generated");
    }
}
