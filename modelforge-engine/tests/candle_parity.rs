//! One model, two backends: the candle backend against llama.cpp on SmolLM2-135M-Instruct
//! (tokenization and greedy continuations), and the same weights as safetensors against the
//! quantized GGUF under candle.
#![cfg(all(feature = "candle", feature = "llama-cpp"))]

mod common;

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use modelforge_core::{Backend, ChatMessage, GenerationParams, LoadOptions, LoadedModel};
use modelforge_engine::{CandleBackend, CandleModel, KvCacheType, LlamaCppBackend};

fn options() -> LoadOptions {
    LoadOptions { context_length: Some(1024), ..LoadOptions::default() }
}

/// A fresh llama.cpp model with the KV cache type `kv`. Fresh, because llama.cpp's results
/// depend on its batches: a prompt served from a warm cache reaches its logits through
/// another batch shape than a cold prefill, and rounds differently.
fn llama_cpp(kv: KvCacheType) -> Arc<dyn LoadedModel> {
    LlamaCppBackend::new()
        .with_kv_cache_type(kv)
        .load(&modelforge_testkit::smollm2_gguf(), &options())
        .unwrap()
}

fn candle_gguf_model() -> Arc<CandleModel> {
    static MODEL: OnceLock<Arc<CandleModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            Arc::new(
                CandleBackend::new().load_model(&modelforge_testkit::smollm2_gguf(), &options()).unwrap(),
            )
        })
        .clone()
}

fn candle_gguf() -> Arc<dyn LoadedModel> {
    candle_gguf_model()
}

/// The GGUF's weights dequantized into a safetensors directory, loaded by candle. The
/// directory lives for the whole test binary.
fn candle_safetensors() -> Arc<dyn LoadedModel> {
    static MODEL: OnceLock<Arc<dyn LoadedModel>> = OnceLock::new();
    MODEL.get_or_init(|| CandleBackend::new().load(export_dir(), &options()).unwrap()).clone()
}

/// The directory of [`candle_safetensors`], exported once per test binary.
fn export_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        common::export::export_gguf_as_safetensors(&modelforge_testkit::smollm2_gguf(), dir.path());
        dir
    })
    .path()
}

/// English, Chinese, emoji, code, whitespace runs, digits, special tokens and mixtures.
const CORPUS: &[&str] = &[
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say we've done what we'd planned, isn't it?",
    "我叫李娜，我住在北京。今天天气很好！",
    "机器学习是人工智能的一个分支。",
    "Emoji: 😀🎉👍🏽 and a family 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
    "def f(x):\n\treturn [i ** 2 for i in range(x) if i % 3 == 0]\n",
    "    leading spaces and trailing spaces    ",
    "tabs\t\tand\n\n\nnewlines\r\n and   multiple    spaces",
    "   ",
    "\n",
    "",
    "Numbers: 1234567890, 3.14159, -42, 1e-9, 0x1F",
    "Mixed 中文 and English 混合 text with 数字123",
    "Ünïcödé àccents: café, naïve, façade, Straße, Øresund",
    "Русский текст и ελληνικά και עברית וערבית عربي",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "Special inside words: foo<|endoftext|>bar <file_sep>baz",
    "URLs https://example.com/a/b?c=d&e=f#g and emails a.b@c.de",
    "!!!??? ... --- *** ### $$$ %%% ^^^ &&& ((())) [[[]]] {{{}}}",
    "A\u{00a0}non-breaking space and zero\u{200b}width",
    "日本語のテキスト、カタカナとひらがな。한국어 텍스트도.",
    "    indented code\n        more indented\n",
];

#[test]
fn the_tokenizer_rebuilt_from_gguf_matches_llama_cpp() {
    let (reference, candle) = (llama_cpp(KvCacheType::F16), candle_gguf());
    let mut mismatches = Vec::new();
    for text in CORPUS {
        for add_special in [false, true] {
            let expected = reference.tokenize(text, add_special).unwrap();
            let actual = candle.tokenize(text, add_special).unwrap();
            if expected != actual {
                mismatches.push(format!(
                    "{text:?} (add_special {add_special}):\n  llama.cpp {expected:?}\n  candle    {actual:?}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    // The corpus exercises more than single-token strings.
    assert!(reference.tokenize(CORPUS[5], false).unwrap().len() > 10);
}

/// Plain-text prompts (no chat template): completions with a clear continuation.
const PROMPTS: &[&str] = &[
    "The capital of France is",
    "Once upon a time, there was a little girl who",
    "def fibonacci(n):\n",
    "The three primary colors are",
    "Water boils at a temperature of",
    "The first president of the United States was",
    "import numpy as np\nimport",
    "Monday, Tuesday, Wednesday,",
    "The chemical symbol for gold is",
    "In 1969, Neil Armstrong became the first person to",
];

/// The greedy continuation of each prompt as token ids, at most 16 tokens.
fn greedy_continuations(model: &dyn LoadedModel) -> Vec<Vec<u32>> {
    let params = GenerationParams { max_tokens: 16, ..GenerationParams::greedy() };
    PROMPTS
        .iter()
        .map(|prompt| {
            let reply = model.generate(prompt, &params, &mut |_| ControlFlow::Continue(())).unwrap();
            assert!(!reply.text.trim().is_empty(), "{prompt:?} has a continuation");
            candle_gguf().tokenize(&reply.text, false).unwrap()
        })
        .collect()
}

/// How many of the first tokens two continuations share.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Reports how many continuations are identical, and requires at least `min_whole` of 10
/// and a common start (3 tokens) for 9 of 10.
fn assert_agree(name: &str, a: &[Vec<u32>], b: &[Vec<u32>], min_whole: usize) {
    let prefixes: Vec<usize> = a.iter().zip(b).map(|(x, y)| common_prefix(x, y)).collect();
    let whole = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let start = prefixes.iter().filter(|&&n| n >= 3).count();
    let report = |v: &[Vec<u32>]| v.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join("\n");
    eprintln!("{name}: {whole}/10 identical, common prefixes {prefixes:?}");
    assert!(
        start >= 9 && whole >= min_whole,
        "{name}: common prefixes {prefixes:?}, {whole}/10 identical\n{}\n--\n{}",
        report(a),
        report(b)
    );
}

/// With an F32 KV cache and no flash attention llama.cpp does the arithmetic candle does
/// (candle's Q4_1 kernel is ggml's), and the greedy continuations are the same.
#[test]
fn greedy_continuations_agree_between_llama_cpp_and_candle() {
    let reference = greedy_continuations(&*llama_cpp(KvCacheType::F32));
    let candle = greedy_continuations(&*candle_gguf());
    // 9/10 on the machines these bounds were first set on; 6/10 on an AMD EPYC with AVX2 and
    // no AVX-512, where llama.cpp and candle take other quantized dot-product kernels (the same
    // at the commit before this bound changed: the CPU, not the code).
    assert_agree("llama.cpp (F32 KV cache) vs candle (GGUF)", &reference, &candle, 6);
}

/// llama.cpp's default F16 KV cache with flash attention rounds keys, values and partial sums
/// to 16 bits, which flips near-ties: on these prompts llama.cpp with F16 agreed with itself
/// with F32 on 7 of the 10 whole continuations (5 on another CPU). The texts must still start
/// the same; the token-by-token test below measures the rest.
#[test]
fn greedy_continuations_with_llama_cpps_default_cache_start_the_same() {
    let reference = greedy_continuations(&*llama_cpp(KvCacheType::F16));
    let candle = greedy_continuations(&*candle_gguf());
    assert_agree("llama.cpp (F16 KV cache) vs candle (GGUF)", &reference, &candle, 5);
}

/// The GGUF run quantizes activations to 8 bits before each Q4_1 product, as llama.cpp does;
/// the dequantized export multiplies them in full precision. That rounding flips near-ties,
/// so whole continuations agree less often than between the two backends above (llama.cpp
/// itself, which computes what the GGUF run computes, scores the same against the export).
#[test]
fn the_dequantized_safetensors_export_agrees_with_the_quantized_gguf() {
    let quantized = greedy_continuations(&*candle_gguf());
    let full = greedy_continuations(&*candle_safetensors());
    assert_agree("candle GGUF vs candle safetensors", &quantized, &full, 6);
    let model = candle_safetensors();
    assert_eq!(model.info().format, modelforge_core::ModelFormat::Safetensors);
    assert_eq!(model.tokenize(CORPUS[3], false).unwrap(), candle_gguf().tokenize(CORPUS[3], false).unwrap());
    let prompt = model.render_chat(&[ChatMessage::user("Hi")], true).unwrap();
    assert!(prompt.starts_with("<|im_start|>system\n"), "the chat template comes from tokenizer_config.json");
}

/// transformers 5 saves SmolLM2's tied embeddings once, as `lm_head.weight`: such a directory
/// loads, and computes exactly what the export with `model.embed_tokens.weight` computes.
#[test]
fn tied_embeddings_saved_as_the_output_layer_load_as_the_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(export_dir().join(file), dir.path().join(file)).unwrap();
    }
    let cpu = candle_core::Device::Cpu;
    let mut tensors = candle_core::safetensors::load(export_dir().join("model.safetensors"), &cpu).unwrap();
    let embeddings = tensors.remove("model.embed_tokens.weight").unwrap();
    tensors.insert("lm_head.weight".to_owned(), embeddings);
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();

    let renamed = CandleBackend::new().load_model(dir.path(), &options()).unwrap();
    let export = CandleBackend::new().load_model(export_dir(), &options()).unwrap();
    let prompt = export.tokenize("The capital of France is", true).unwrap();
    let continuation = export.tokenize(" Paris, which is", false).unwrap();
    assert_eq!(
        renamed.forced_logits(&prompt, &continuation).unwrap(),
        export.forced_logits(&prompt, &continuation).unwrap()
    );
}

/// What teacher forcing found over some steps.
#[derive(Default)]
struct Forced {
    steps: usize,
    agree: usize,
    /// The widest gap, in candle's logits, between candle's top token and the reference's.
    widest: f32,
    /// Candle's lead of its top token over the second, at each step.
    margins: Vec<f32>,
    /// The steps where the two part.
    parted: Vec<String>,
}

impl Forced {
    /// Teacher forcing, which free-running greedy texts cannot show: at each step of the
    /// reference's `continuation` of `prompt`, the token `candle` ranks first, given the same
    /// history. Where they differ, the gap between candle's choice and the reference's in
    /// candle's own logits says whether it is a near-tie that rounding flips or a real
    /// disagreement.
    fn add(&mut self, candle: &CandleModel, label: &str, prompt: &[u32], continuation: &[u32]) {
        let logits = candle.forced_logits(prompt, continuation).unwrap();
        for (step, (row, &chosen)) in logits.iter().zip(continuation).enumerate() {
            let mut sorted = row.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            self.margins.push(sorted[0] - sorted[1]);
            let top = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            self.steps += 1;
            if top == chosen as usize {
                self.agree += 1;
            } else {
                let gap = row[top] - row[chosen as usize];
                self.widest = self.widest.max(gap);
                self.parted
                    .push(format!("{label} step {step}: candle {top}, reference {chosen}, gap {gap:.3}"));
            }
        }
    }

    fn report(mut self, name: &str) -> (usize, usize, f32) {
        self.margins.sort_by(f32::total_cmp);
        eprintln!(
            "{name}: {}/{} steps agree, widest gap {:.3} (median lead of the top token {:.3})\n{}",
            self.agree,
            self.steps,
            self.widest,
            self.margins[self.margins.len() / 2],
            self.parted.join("\n")
        );
        (self.agree, self.steps, self.widest)
    }
}

/// [`Forced`] over the reference's greedy continuations of the fixed prompts. Returns the
/// steps that agree, the steps, and the widest gap.
fn forced_agreement(name: &str, reference: &dyn LoadedModel, candle: &CandleModel) -> (usize, usize, f32) {
    let continuations = greedy_continuations(reference);
    let mut forced = Forced::default();
    for (prompt, tokens) in PROMPTS.iter().zip(&continuations) {
        forced.add(candle, &format!("{prompt:?}"), &candle.tokenize(prompt, true).unwrap(), tokens);
    }
    let (agree, steps, widest) = forced.report(name);
    assert!(steps >= 150, "{name}: {steps} steps compared");
    (agree, steps, widest)
}

#[test]
fn candle_follows_llama_cpp_token_by_token() {
    let reference = llama_cpp(KvCacheType::F32);
    let (agree, steps, widest) =
        forced_agreement("llama.cpp (F32) vs candle", &*reference, &candle_gguf_model());
    // 98 % and gaps under 0.1 where first measured; 155/160 and a widest gap of 0.281 (the
    // median lead of the top token: 1.17) on an AVX2-only AMD EPYC, whose kernels round
    // differently (see `greedy_continuations_agree_between_llama_cpp_and_candle`).
    assert!(agree * 100 >= steps * 96, "{agree}/{steps} steps agree");
    assert!(widest < 0.35, "a disagreement that is not a near-tie: gap {widest}");
    let reference = llama_cpp(KvCacheType::F16);
    let (agree, steps, widest) =
        forced_agreement("llama.cpp (F16) vs candle", &*reference, &candle_gguf_model());
    assert!(agree * 100 >= steps * 95, "{agree}/{steps} steps agree");
    assert!(widest < 0.5, "a disagreement that is not a near-tie: gap {widest}");
}

/// The bound is wider than between the backends: 8-bit activations against full precision
/// moved one choice by 0.67 logits (measured), while a loading mistake (a transposed or
/// misnamed tensor, a wrong rotary layout) moves nearly every step by several.
#[test]
fn the_quantized_gguf_follows_the_safetensors_export_token_by_token() {
    let (agree, steps, widest) =
        forced_agreement("safetensors vs GGUF under candle", &*candle_safetensors(), &candle_gguf_model());
    assert!(agree * 100 >= steps * 95, "{agree}/{steps} steps agree");
    assert!(widest < 1.0, "a disagreement that is not a near-tie: gap {widest}");
}

/// The same model requantized from Q4_1 to Q8_0 and Q4_0 goes through candle's own kernels
/// for those types (the quantized llama stacks and multiplies any type candle knows). They
/// round activations unlike ggml (`1/d` and ties away from zero, against `127/max` and ties to
/// even), so near-ties part more often than with Q4_1: measured 150/160 steps for Q8_0, the
/// widest gap 0.38 logits. A loading or layout mistake would part nearly every step.
#[test]
fn other_quantizations_run_through_candles_kernels_and_follow_llama_cpp() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in [candle_core::quantized::GgmlDType::Q8_0, candle_core::quantized::GgmlDType::Q4_0] {
        let path = dir.path().join(format!("SmolLM2-{dtype:?}.gguf"));
        common::export::requantize_gguf(&modelforge_testkit::smollm2_gguf(), &path, dtype);
        let reference =
            LlamaCppBackend::new().with_kv_cache_type(KvCacheType::F32).load(&path, &options()).unwrap();
        let candle = CandleBackend::new().load_model(&path, &options()).unwrap();
        assert_eq!(candle.info().quantization.as_deref(), Some(format!("{dtype:?}").as_str()));
        let (agree, steps, widest) =
            forced_agreement(&format!("llama.cpp vs candle, {dtype:?}"), &*reference, &candle);
        assert!(agree * 100 >= steps * 90, "{dtype:?}: {agree}/{steps} steps agree");
        assert!(widest < 0.5, "{dtype:?}: a disagreement that is not a near-tie: gap {widest}");
    }
}

/// A prompt longer than candle's prompt chunk (512 tokens) and its KV cache step (256): the
/// chunks must continue each other's positions and the cache must grow without losing keys,
/// which teacher forcing against llama.cpp shows step by step.
#[test]
fn a_long_prompt_runs_in_chunks_and_still_follows_llama_cpp() {
    let story = "The lighthouse keeper counted the ships that passed the rocks each night, and wrote \
                 their names in a book. ";
    let prompt = format!("{}The keeper's book was full of", story.repeat(30));
    let candle = candle_gguf_model();
    let tokens = candle.tokenize(&prompt, true).unwrap();
    assert!(tokens.len() > 600, "{} tokens", tokens.len());
    let params = GenerationParams { max_tokens: 16, ..GenerationParams::greedy() };
    let run = |model: &dyn LoadedModel| {
        let reply = model.generate(&prompt, &params, &mut |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(reply.usage.prompt_tokens as usize, tokens.len());
        candle.tokenize(&reply.text, false).unwrap()
    };
    let reference = run(&*llama_cpp(KvCacheType::F32));
    let mut forced = Forced::default();
    forced.add(&candle, "long prompt", &tokens, &reference);
    let (agree, steps, widest) = forced.report("long prompt");
    // Measured: 15/16, one near-tie (0.06) at the first step; llama.cpp's batched prefill
    // rounds a little differently from its single-token steps. A lost or misplaced key would
    // part every step by whole logits.
    assert!(steps >= 8 && agree + 2 >= steps, "{agree}/{steps} steps agree");
    assert!(widest < 0.2, "gap {widest}");
    assert_eq!(run(&*candle).len(), 16, "candle generates after the long prompt too");
}
