//! The candle backend with the real SmolLM2-135M-Instruct GGUF: the same contract as the
//! llama.cpp backend (tests/llama_smollm2.rs), plus the bench.
#![cfg(feature = "candle")]

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use modelforge_core::{
    Backend, BackendError, ChatMessage, FinishReason, Generation, GenerationParams, LoadOptions, LoadedModel,
    ModelFileError,
};
use modelforge_engine::{Bench, BenchConfig, CandleBackend, CandleModel};

/// One model for the whole test binary: loading is the slow part.
fn model() -> Arc<CandleModel> {
    static MODEL: OnceLock<Arc<CandleModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let options = LoadOptions { context_length: Some(1024), ..LoadOptions::default() };
            Arc::new(
                CandleBackend::new()
                    .load_model(&modelforge_testkit::smollm2_gguf(), &options)
                    .expect("SmolLM2 loads"),
            )
        })
        .clone()
}

fn chat(question: &str, params: &GenerationParams) -> (Generation, Vec<String>) {
    let mut pieces = Vec::new();
    let reply = model()
        .chat(&[ChatMessage::user(question)], params, &mut |piece| {
            pieces.push(piece.to_owned());
            ControlFlow::Continue(())
        })
        .expect("generation succeeds");
    (reply, pieces)
}

fn greedy(max_tokens: u32) -> GenerationParams {
    GenerationParams { max_tokens, ..GenerationParams::greedy() }
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
fn greedy_reply_is_deterministic_and_ends_at_end_of_turn() {
    let (first, pieces) = chat("What is the capital of France? Answer in one word.", &greedy(200));
    let (second, _) = chat("What is the capital of France? Answer in one word.", &greedy(200));
    assert!(first.text.contains("Paris"), "{:?}", first.text);
    assert_eq!(first.text, second.text, "greedy decoding is deterministic");
    assert_eq!(first.finish_reason, FinishReason::Stop, "ends at <|im_end|>: {:?}", first.text);
    assert!(first.usage.completion_tokens < 200);
    assert!(first.usage.prompt_tokens > 10, "the prompt includes the template's system turn");
    assert_eq!(pieces.concat(), first.text, "the streamed pieces are the reply");
    assert!(!first.text.contains("<|im_end|>"), "control tokens are not printed");
}

#[test]
fn max_tokens_ends_with_length() {
    let (reply, _) = chat("Write a long story about a dragon.", &greedy(5));
    assert_eq!(reply.finish_reason, FinishReason::Length);
    assert_eq!(reply.usage.completion_tokens, 5);
}

#[test]
fn a_stop_string_ends_the_reply_early_and_is_not_shown() {
    let (full, _) = chat("Write a long story about a dragon.", &greedy(60));
    let words: Vec<&str> = full.text.split_whitespace().collect();
    assert!(words.len() > 6, "the story has some words: {:?}", full.text);
    let stop = words[5].to_owned();
    let cut = full.text.find(&stop).unwrap();
    let params = GenerationParams { stop: vec![stop.clone()], ..greedy(60) };
    let (stopped, pieces) = chat("Write a long story about a dragon.", &params);
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert_eq!(stopped.text, full.text[..cut], "stopped right before {stop:?}");
    assert!(!pieces.concat().contains(&stop));
    assert!(stopped.usage.completion_tokens < full.usage.completion_tokens);
}

#[test]
fn the_callback_can_cancel() {
    let mut seen = 0;
    let reply = model()
        .chat(&[ChatMessage::user("Count from one to twenty.")], &greedy(100), &mut |_| {
            seen += 1;
            if seen == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!(reply.finish_reason, FinishReason::Cancelled);
    assert_eq!(seen, 3);
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
fn multibyte_output_is_never_broken() {
    let (reply, pieces) = chat("请用中文介绍一下你自己。😀", &greedy(41));
    assert!(!reply.text.is_empty());
    for piece in &pieces {
        assert!(!piece.contains('\u{fffd}'), "a piece with a broken character: {piece:?}");
    }
}

#[test]
fn a_prompt_longer_than_the_context_is_an_error_with_numbers() {
    let long = "word ".repeat(3000);
    let err = model().generate(&long, &greedy(16), &mut |_| ControlFlow::Continue(())).unwrap_err();
    match err {
        BackendError::ContextOverflow { prompt_tokens, context_length, reserved } => {
            assert!(prompt_tokens > 1024);
            assert_eq!(context_length, 1024);
            assert_eq!(reserved, 16);
        }
        other => panic!("expected ContextOverflow, got {other:?}"),
    }
    let fits_alone = "word ".repeat(1000);
    let err = model().generate(&fits_alone, &greedy(100), &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert!(
        matches!(err, BackendError::ContextOverflow { reserved: 100, .. }),
        "the reply's room counts: {err}"
    );
}

#[test]
fn the_rendered_prompt_uses_the_models_own_template() {
    let prompt = model().render_chat(&[ChatMessage::user("Hi")], true).unwrap();
    assert!(prompt.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    assert!(prompt.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    let ids = model().tokenize("<|im_start|>user\nHi<|im_end|>", false).unwrap();
    assert_eq!(ids.first(), Some(&1), "special-token text is parsed as the special token");
    assert_eq!(ids.last(), Some(&2));
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
fn broken_model_files_are_clear_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(modelforge_testkit::smollm2_gguf()).unwrap();
    let half = dir.path().join("half.gguf");
    std::fs::write(&half, &real[..real.len() / 2]).unwrap();
    let text = dir.path().join("readme.gguf");
    std::fs::write(&text, b"This is not a model, just text.\n").unwrap();
    let backend = CandleBackend::new();
    let load = |p: &std::path::Path| backend.load(p, &LoadOptions::default()).err().expect("must fail");
    assert!(matches!(load(&half), BackendError::ModelFile(ModelFileError::Truncated { .. })));
    let err = load(&text);
    assert!(matches!(err, BackendError::ModelFile(ModelFileError::UnknownFormat { .. })));
    assert!(err.to_string().contains("readme.gguf"), "the error names the file: {err}");

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
