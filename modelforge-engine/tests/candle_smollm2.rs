//! The candle backend with the real SmolLM2-135M-Instruct GGUF: the contract every backend
//! keeps (tests/common/contract.rs), plus what is candle's own.
#![cfg(feature = "candle")]

mod common;

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use modelforge_core::{
    Backend, BackendError, ChatMessage, Generation, GenerationParams, LoadOptions, LoadedModel,
};
use modelforge_engine::{Bench, BenchConfig, CandleBackend, CandleModel};

use common::contract::{self, greedy};

/// One model for the whole test binary: loading is the slow part.
fn model() -> Arc<CandleModel> {
    static MODEL: OnceLock<Arc<CandleModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let options = LoadOptions { context_length: Some(contract::CONTEXT), ..LoadOptions::default() };
            Arc::new(
                CandleBackend::new()
                    .load_model(&modelforge_testkit::smollm2_gguf(), &options)
                    .expect("SmolLM2 loads"),
            )
        })
        .clone()
}

contract::contract_tests!(model(), CandleBackend::new());

fn chat(question: &str, params: &GenerationParams) -> (Generation, Vec<String>) {
    contract::chat(&*model(), question, params)
}

#[test]
fn the_backend_is_called_candle_and_loads_through_the_trait() {
    let backend = CandleBackend::new();
    assert_eq!(backend.name(), "candle");
    let options = LoadOptions { context_length: Some(256), ..LoadOptions::default() };
    let model = backend.load(&modelforge_testkit::smollm2_gguf(), &options).unwrap();
    assert_eq!(model.context_length(), 256);
    assert_eq!(model.info().architecture.as_deref(), Some("llama"));
    assert_eq!(model.info().quantization.as_deref(), Some("Q4_1"));
}

#[test]
fn sampling_with_a_seed_is_reproducible_and_the_seed_matters() {
    let params =
        |seed| GenerationParams { temperature: 1.2, seed, max_tokens: 24, ..GenerationParams::default() };
    let (a, _) = chat("Tell me a fun fact.", &params(7));
    let (b, _) = chat("Tell me a fun fact.", &params(7));
    assert_eq!(a.text, b.text);
    assert!(!a.text.is_empty());
    let others: Vec<String> = (8..12).map(|seed| chat("Tell me a fun fact.", &params(seed)).0.text).collect();
    assert!(others.iter().any(|t| *t != a.text), "different seeds give different samples");
}

#[test]
fn bench_reports_positive_speeds() {
    let config = BenchConfig { prompt_tokens: 32, generated_tokens: 4, parallel: 2 };
    let report = model().bench(&config).unwrap();
    assert_eq!(report.backend, "candle");
    assert!(report.pp_tps > 0.0 && report.pp_tps.is_finite(), "{report:?}");
    assert!(report.tg_tps > 0.0 && report.tg_tps.is_finite(), "{report:?}");
}

#[test]
fn a_safetensors_directory_missing_a_tensor_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let load =
        |p: &std::path::Path| CandleBackend::new().load(p, &LoadOptions::default()).err().expect("must fail");

    // A safetensors directory whose weights lack a tensor: the error names it.
    let st = dir.path().join("st");
    std::fs::create_dir(&st).unwrap();
    std::fs::write(
        st.join("config.json"),
        r#"{"model_type":"llama","hidden_size":8,"intermediate_size":16,"vocab_size":4,"num_hidden_layers":1,
            "num_attention_heads":2,"num_key_value_heads":1,"rms_norm_eps":1e-5,"max_position_embeddings":32,
            "tie_word_embeddings":true}"#,
    )
    .unwrap();
    let embed =
        candle_core::Tensor::zeros((4, 8), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("model.embed_tokens.weight", embed)]),
        st.join("model.safetensors"),
    )
    .unwrap();
    std::fs::write(
        st.join("tokenizer.json"),
        modelforge_engine::candle::tokenizer_from_gguf(
            &modelforge_core::gguf::GgufFile::open(modelforge_testkit::smollm2_gguf()).unwrap(),
        )
        .unwrap()
        .to_string(false)
        .unwrap(),
    )
    .unwrap();
    let err = load(&st);
    assert!(err.to_string().contains("model.norm.weight"), "the missing tensor is named: {err}");
}

#[test]
fn a_grammar_is_refused_rather_than_ignored() {
    let params = GenerationParams { grammar: Some(r#"root ::= "yes""#.into()), ..greedy(8) };
    let err =
        model().chat(&[ChatMessage::user("hi")], &params, &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, BackendError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("grammar"), "{err}");
}
