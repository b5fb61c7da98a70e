//! The llama.cpp backend with the real SmolLM2-135M-Instruct model.
#![cfg(feature = "llama-cpp")]

mod common;

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use modelforge_core::{
    Backend, BackendError, ChatMessage, FinishReason, Generation, GenerationParams, LoadOptions, LoadedModel,
};
use modelforge_engine::LlamaCppBackend;

use common::contract::{self, greedy};

/// One model for the whole test binary: loading is the slow part.
fn model() -> Arc<dyn LoadedModel> {
    static MODEL: OnceLock<Arc<dyn LoadedModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let options = LoadOptions { context_length: Some(contract::CONTEXT), ..LoadOptions::default() };
            LlamaCppBackend::new().load(&modelforge_testkit::smollm2_gguf(), &options).expect("SmolLM2 loads")
        })
        .clone()
}

contract::contract_tests!(model(), LlamaCppBackend::new());

fn chat(question: &str, params: &GenerationParams) -> (Generation, Vec<String>) {
    contract::chat(&*model(), question, params)
}

#[test]
fn sampling_with_a_seed_is_reproducible() {
    let params =
        GenerationParams { temperature: 0.9, seed: 7, max_tokens: 24, ..GenerationParams::default() };
    seeded_samples_repeat(&params);
}

/// OpenAI's defaults (no top-k or min-p, top-p 1) draw from the whole vocabulary on a path of
/// their own (`sampling::WholeVocabulary`).
#[test]
fn sampling_from_the_whole_vocabulary_with_a_seed_is_reproducible() {
    let params = GenerationParams {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 7,
        max_tokens: 24,
        ..GenerationParams::default()
    };
    seeded_samples_repeat(&params);
    let seeds: std::collections::HashSet<String> = (20..24)
        .map(|seed| {
            let params = GenerationParams { seed, ..params.clone() };
            chat("Tell me a fun fact.", &params).0.text
        })
        .collect();
    assert!(seeds.len() > 1, "different seeds give different samples: {seeds:?}");
}

fn seeded_samples_repeat(params: &GenerationParams) {
    let params = params.clone();
    // Fresh model instances: the shared one batches with other tests and reuses cached
    // prefixes, and llama.cpp's kernels are not bit-identical across batch shapes, which a
    // sampled (not greedy) token can notice.
    let run = || {
        let model = LlamaCppBackend::new()
            .load(
                &modelforge_testkit::smollm2_gguf(),
                &LoadOptions { context_length: Some(512), ..LoadOptions::default() },
            )
            .unwrap();
        model
            .chat(&[ChatMessage::user("Tell me a fun fact.")], &params, &mut |_| ControlFlow::Continue(()))
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.text, b.text);
    assert!(!a.text.is_empty());
    let other = GenerationParams { seed: 8, ..params.clone() };
    let model = model();
    let c = model
        .chat(&[ChatMessage::user("Tell me a fun fact.")], &other, &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert!(!c.text.is_empty());
}

#[test]
fn a_grammar_constrains_every_token_and_a_bad_grammar_is_a_clear_error() {
    // Without the grammar the model answers in prose; with it, only this JSON shape is possible.
    let grammar = r#"root ::= "{\"city\": \"" [A-Za-z ]{1,20} "\", \"sunny\": " ("true" | "false") "}""#;
    // The reply has the grammar's shape, and the grammar's end ends it.
    let follows_grammar = |question: &str, params: &GenerationParams, what: &str| {
        let (reply, _) = chat(question, params);
        let value: serde_json::Value =
            serde_json::from_str(&reply.text).unwrap_or_else(|err| panic!("{what}: {err}: {:?}", reply.text));
        assert!(value["city"].is_string() && value["sunny"].is_boolean(), "{what}: {value}");
        assert_eq!(reply.finish_reason, FinishReason::Stop, "{what}: the grammar's end ends the reply");
    };
    let params = GenerationParams { grammar: Some(grammar.into()), ..greedy(64) };
    for question in ["What is the weather like in Paris?", "Tell me a joke.", "你好"] {
        follows_grammar(question, &params, question);
    }
    // Drawn from the whole vocabulary at a temperature (OpenAI's defaults), a token the
    // grammar refuses is drawn again among those it allows.
    for seed in 1..5 {
        let params = GenerationParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed,
            max_tokens: 64,
            grammar: Some(grammar.into()),
            ..GenerationParams::default()
        };
        follows_grammar("What is the weather like in Paris?", &params, &format!("seed {seed}"));
    }
    let (free, _) = chat("What is the weather like in Paris?", &greedy(64));
    assert!(serde_json::from_str::<serde_json::Value>(&free.text).is_err(), "unconstrained: {:?}", free.text);

    let bad = GenerationParams { grammar: Some("root ::= (".into()), ..greedy(8) };
    let err = model().chat(&[ChatMessage::user("hi")], &bad, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, BackendError::InvalidRequest { .. }), "{err}");
    assert!(err.to_string().contains("grammar"), "{err}");
}
