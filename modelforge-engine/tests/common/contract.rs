//! What every backend must do with SmolLM2-135M-Instruct, written once: tests/llama_smollm2.rs
//! and tests/candle_smollm2.rs call these with their own model (loaded with a 1024-token
//! context) and backend.

use std::ops::ControlFlow;
use std::path::Path;

use modelforge_core::{
    Backend, BackendError, ChatMessage, FinishReason, Generation, GenerationParams, LoadOptions, LoadedModel,
    ModelFileError,
};

/// The context the tests load SmolLM2 with.
pub const CONTEXT: u32 = 1024;

pub fn greedy(max_tokens: u32) -> GenerationParams {
    GenerationParams { max_tokens, ..GenerationParams::greedy() }
}

/// One user turn, with the pieces as they were streamed.
pub fn chat(model: &dyn LoadedModel, question: &str, params: &GenerationParams) -> (Generation, Vec<String>) {
    let mut pieces = Vec::new();
    let reply = model
        .chat(&[ChatMessage::user(question)], params, &mut |piece| {
            pieces.push(piece.to_owned());
            ControlFlow::Continue(())
        })
        .expect("generation succeeds");
    (reply, pieces)
}

pub fn greedy_reply_is_deterministic_and_ends_at_end_of_turn(model: &dyn LoadedModel) {
    let question = "What is the capital of France? Answer in one word.";
    let (first, pieces) = chat(model, question, &greedy(200));
    let (second, _) = chat(model, question, &greedy(200));
    assert!(first.text.contains("Paris"), "{:?}", first.text);
    assert_eq!(first.text, second.text, "greedy decoding is deterministic");
    assert_eq!(first.finish_reason, FinishReason::Stop, "ends at <|im_end|>: {:?}", first.text);
    assert!(first.usage.completion_tokens < 200);
    assert!(first.usage.prompt_tokens > 10, "the prompt includes the template's system turn");
    assert_eq!(pieces.concat(), first.text, "the streamed pieces are the reply");
    assert!(!first.text.contains("<|im_end|>"), "control tokens are not printed");
}

pub fn max_tokens_ends_with_length(model: &dyn LoadedModel) {
    let (reply, _) = chat(model, "Write a long story about a dragon.", &greedy(5));
    assert_eq!(reply.finish_reason, FinishReason::Length);
    assert_eq!(reply.usage.completion_tokens, 5);
}

pub fn a_stop_string_ends_the_reply_early_and_is_not_shown(model: &dyn LoadedModel) {
    let (full, _) = chat(model, "Write a long story about a dragon.", &greedy(60));
    let words: Vec<&str> = full.text.split_whitespace().collect();
    assert!(words.len() > 6, "the story has some words: {:?}", full.text);
    let stop = words[5].to_owned();
    let cut = full.text.find(&stop).unwrap();
    let params = GenerationParams { stop: vec![stop.clone()], ..greedy(60) };
    let (stopped, pieces) = chat(model, "Write a long story about a dragon.", &params);
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert_eq!(stopped.text, full.text[..cut], "stopped right before {stop:?}");
    assert!(!pieces.concat().contains(&stop));
    assert!(stopped.usage.completion_tokens < full.usage.completion_tokens);
}

pub fn the_callback_can_cancel(model: &dyn LoadedModel) {
    let mut seen = 0;
    let reply = model
        .chat(&[ChatMessage::user("Count from one to twenty.")], &greedy(100), &mut |_| {
            seen += 1;
            if seen == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!(reply.finish_reason, FinishReason::Cancelled);
    assert_eq!(seen, 3);
}

pub fn multibyte_output_is_never_broken(model: &dyn LoadedModel) {
    let (reply, pieces) = chat(model, "请用中文介绍一下你自己。😀", &greedy(41));
    assert!(!reply.text.is_empty());
    for piece in &pieces {
        assert!(!piece.contains('\u{fffd}'), "a piece with a broken character: {piece:?}");
    }
}

pub fn a_prompt_longer_than_the_context_is_an_error_with_numbers(model: &dyn LoadedModel) {
    let long = "word ".repeat(3000);
    let err = model.generate(&long, &greedy(16), &mut |_| ControlFlow::Continue(())).unwrap_err();
    match err {
        BackendError::ContextOverflow { prompt_tokens, context_length, reserved } => {
            assert!(prompt_tokens > CONTEXT);
            assert_eq!(context_length, CONTEXT);
            assert_eq!(reserved, 16);
        }
        other => panic!("expected ContextOverflow, got {other:?}"),
    }
    // The prompt fits alone, but not with the reply's room.
    let fits_alone = "word ".repeat(1000);
    let err = model.generate(&fits_alone, &greedy(100), &mut |_| ControlFlow::Continue(())).unwrap_err();
    assert!(
        matches!(err, BackendError::ContextOverflow { reserved: 100, .. }),
        "the reply's room counts: {err}"
    );
}

pub fn the_rendered_prompt_uses_the_models_own_template(model: &dyn LoadedModel) {
    let prompt = model.render_chat(&[ChatMessage::user("Hi")], true).unwrap();
    assert!(prompt.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    assert!(prompt.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    assert_eq!(model.info().architecture.as_deref(), Some("llama"));
    assert_eq!(model.info().quantization.as_deref(), Some("Q4_1"));
    let ids = model.tokenize("<|im_start|>user\nHi<|im_end|>", false).unwrap();
    assert_eq!(ids.first(), Some(&1), "special-token text is parsed as the special token");
    assert_eq!(ids.last(), Some(&2));
}

/// Truncated, empty, foreign and missing files: each a clear error naming what is wrong.
pub fn broken_model_files_are_clear_errors_not_crashes(backend: &dyn Backend) {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(modelforge_testkit::smollm2_gguf()).unwrap();
    let half = dir.path().join("half.gguf");
    std::fs::write(&half, &real[..real.len() / 2]).unwrap();
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("readme.gguf");
    std::fs::write(&text, b"This is not a model, just text.\n").unwrap();
    let load = |p: &Path| backend.load(p, &LoadOptions::default()).err().expect("must fail");
    assert!(matches!(load(&half), BackendError::ModelFile(ModelFileError::Truncated { .. })));
    assert!(matches!(load(&empty), BackendError::ModelFile(ModelFileError::Empty { .. })));
    let err = load(&text);
    assert!(matches!(err, BackendError::ModelFile(ModelFileError::UnknownFormat { .. })));
    assert!(err.to_string().contains("readme.gguf"), "the error names the file: {err}");
    let missing = load(&dir.path().join("missing.gguf"));
    assert!(matches!(missing, BackendError::ModelFile(ModelFileError::Io { .. })));
}

/// One `#[test]` per contract check, for the backend and model the calling test file gives:
/// `contract_tests!(model(), CandleBackend::new());`.
#[allow(unused_macros)] // not every test file runs the contract
macro_rules! contract_tests {
    ($model:expr, $backend:expr) => {
        $crate::common::contract::contract_tests!(@model $model;
            greedy_reply_is_deterministic_and_ends_at_end_of_turn,
            max_tokens_ends_with_length,
            a_stop_string_ends_the_reply_early_and_is_not_shown,
            the_callback_can_cancel,
            multibyte_output_is_never_broken,
            a_prompt_longer_than_the_context_is_an_error_with_numbers,
            the_rendered_prompt_uses_the_models_own_template);

        #[test]
        fn broken_model_files_are_clear_errors_not_crashes() {
            $crate::common::contract::broken_model_files_are_clear_errors_not_crashes(&$backend);
        }
    };
    (@model $model:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                $crate::common::contract::$check(&*$model);
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use contract_tests;
