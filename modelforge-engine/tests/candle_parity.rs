//! One model, two backends: the candle backend against llama.cpp on SmolLM2-135M-Instruct
//! (tokenization and greedy continuations), and the same weights as safetensors against the
//! quantized GGUF under candle.
#![cfg(all(feature = "candle", feature = "llama-cpp"))]

mod common;

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use modelforge_core::{Backend, ChatMessage, GenerationParams, LoadOptions, LoadedModel};
use modelforge_engine::{CandleBackend, CandleModel, LlamaCppBackend};

fn options() -> LoadOptions {
    LoadOptions { context_length: Some(1024), ..LoadOptions::default() }
}

fn llama_cpp() -> Arc<dyn LoadedModel> {
    static MODEL: OnceLock<Arc<dyn LoadedModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| LlamaCppBackend::new().load(&modelforge_testkit::smollm2_gguf(), &options()).unwrap())
        .clone()
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
    static MODEL: OnceLock<(tempfile::TempDir, Arc<dyn LoadedModel>)> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            common::export::export_gguf_as_safetensors(&modelforge_testkit::smollm2_gguf(), dir.path());
            let model = CandleBackend::new().load(dir.path(), &options()).unwrap();
            (dir, model)
        })
        .1
        .clone()
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
    let (reference, candle) = (llama_cpp(), candle_gguf());
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

/// Free-running greedy texts are a blunt check: different kernels (llama.cpp: F16 KV cache and
/// flash attention; candle: F32 KV cache and plain attention) round differently, a 135M model at
/// 4 bits often has near-ties that a rounding difference flips, and from there the texts part.
/// llama.cpp against itself with an F32 KV cache and flash attention off agreed on only 5 of
/// these 10 continuations. So: nearly every continuation must start the same, whole
/// continuations must agree for a good share, and the token-by-token tests below hold the
/// real measure.
fn assert_agree(name: &str, a: &[Vec<u32>], b: &[Vec<u32>], min_whole: usize) {
    let prefixes: Vec<usize> = a.iter().zip(b).map(|(x, y)| common_prefix(x, y)).collect();
    let whole = a.iter().zip(b).filter(|(x, y)| x == y).count();
    let start = prefixes.iter().filter(|&&n| n >= 3).count();
    let report = |v: &[Vec<u32>]| v.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join("\n");
    assert!(
        start >= 9 && whole >= min_whole,
        "{name}: common prefixes {prefixes:?}, {whole}/10 identical\n{}\n--\n{}",
        report(a),
        report(b)
    );
}

#[test]
fn greedy_continuations_agree_between_llama_cpp_and_candle() {
    let reference = greedy_continuations(&*llama_cpp());
    let candle = greedy_continuations(&*candle_gguf());
    assert_agree("llama.cpp vs candle (GGUF)", &reference, &candle, 5);
}

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

/// Teacher forcing, which free-running greedy texts cannot show: at each of the 16 steps of
/// the reference's greedy continuation, the token `candle` ranks first, given the same history.
/// Where they differ, the gap between candle's choice and the reference's in candle's own
/// logits says whether it is a near-tie that rounding flips or a real disagreement. Returns
/// the steps that agree, the steps, and the widest gap.
fn forced_agreement(name: &str, reference: &dyn LoadedModel, candle: &CandleModel) -> (usize, usize, f32) {
    let continuations = greedy_continuations(reference);
    let (mut steps, mut agree, mut widest) = (0, 0, 0f32);
    let (mut parted, mut margins) = (Vec::new(), Vec::new());
    for (prompt, tokens) in PROMPTS.iter().zip(&continuations) {
        let prompt_tokens = candle.tokenize(prompt, true).unwrap();
        let logits = candle.forced_logits(&prompt_tokens, tokens).unwrap();
        for (step, (row, &chosen)) in logits.iter().zip(tokens).enumerate() {
            let mut sorted = row.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            margins.push(sorted[0] - sorted[1]);
            let top = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            steps += 1;
            if top == chosen as usize {
                agree += 1;
            } else {
                let gap = row[top] - row[chosen as usize];
                widest = widest.max(gap);
                parted
                    .push(format!("{prompt:?} step {step}: candle {top}, reference {chosen}, gap {gap:.3}"));
            }
        }
    }
    margins.sort_by(f32::total_cmp);
    eprintln!(
        "{name}: {agree}/{steps} steps agree, widest gap {widest:.3} (median lead of the top token {:.3})\n{}",
        margins[margins.len() / 2],
        parted.join("\n")
    );
    assert!(steps >= 150, "{name}: {steps} steps compared");
    (agree, steps, widest)
}

#[test]
fn candle_follows_llama_cpp_token_by_token() {
    let (agree, steps, widest) = forced_agreement("llama.cpp vs candle", &*llama_cpp(), &candle_gguf_model());
    assert!(agree * 100 >= steps * 95, "{agree}/{steps} steps agree");
    assert!(widest < 0.5, "a disagreement that is not a near-tie: gap {widest}");
}

#[test]
fn the_quantized_gguf_follows_the_safetensors_export_token_by_token() {
    let (agree, steps, widest) =
        forced_agreement("safetensors vs GGUF under candle", &*candle_safetensors(), &candle_gguf_model());
    assert!(agree * 100 >= steps * 95, "{agree}/{steps} steps agree");
    assert!(widest < 0.5, "a disagreement that is not a near-tie: gap {widest}");
}
