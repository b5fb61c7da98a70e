//! Serving features of the llama.cpp backend with the real SmolLM2 model: context reuse,
//! saved state, concurrent generations, cancellation from another thread, embeddings.
#![cfg(feature = "llama-cpp")]

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use modelforge_core::{
    BackendError, CancelToken, ChatMessage, Embedder, FinishReason, Generation, GenerationParams,
    GenerationSink, LoadOptions, LoadedModel, TokenLogprob,
};
use modelforge_engine::{Bench, BenchConfig, KvCacheType, LlamaCppBackend, LlamaCppModel};
use modelforge_testkit::sink::{Heard, start_and_wait};

fn load(options: LoadOptions) -> LlamaCppModel {
    LlamaCppBackend::new().load_model(&modelforge_testkit::smollm2_gguf(), &options).expect("SmolLM2 loads")
}

fn greedy(max_tokens: u32) -> GenerationParams {
    GenerationParams { max_tokens, ..GenerationParams::greedy() }
}

fn run(model: &dyn LoadedModel, prompt: &str, max_tokens: u32) -> Generation {
    model.generate(prompt, &greedy(max_tokens), &mut |_| ControlFlow::Continue(())).unwrap()
}

/// A conversation of `turns` exchanges, rendered with the model's template.
fn conversation(model: &dyn LoadedModel, turns: usize) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::system("You are a helpful assistant.")];
    for i in 0..turns {
        messages.push(ChatMessage::user(format!("Tell me one fact about the number {i}.")));
        messages.push(ChatMessage::assistant(format!(
            "The number {i} comes after {} and before {}.",
            i as i64 - 1,
            i + 1
        )));
    }
    let _ = model;
    messages
}

#[test]
fn the_next_turn_reuses_the_cached_prefix() {
    let model = load(LoadOptions { context_length: Some(2048), ..LoadOptions::default() });
    let mut messages = conversation(&model, 10);
    messages.push(ChatMessage::user("And the number 10?"));
    let first_prompt = model.render_chat(&messages, true).unwrap();
    let first = run(&model, &first_prompt, 16);
    assert_eq!(first.usage.cached_tokens, 0, "nothing cached yet");

    messages.push(ChatMessage::assistant(first.text.clone()));
    messages.push(ChatMessage::user("Thanks!"));
    let second_prompt = model.render_chat(&messages, true).unwrap();
    let second = run(&model, &second_prompt, 16);
    let reused = second.usage.cached_tokens;
    assert!(
        reused + 8 >= first.usage.prompt_tokens,
        "turn two reuses turn one's prompt: {reused} of {} cached",
        second.usage.prompt_tokens
    );
    assert!(reused < second.usage.prompt_tokens);
    // Reuse changes nothing in the output: a fresh model gives the same reply.
    let fresh = load(LoadOptions { context_length: Some(2048), ..LoadOptions::default() });
    assert_eq!(run(&fresh, &second_prompt, 16).text, second.text);
}

#[test]
fn least_recently_used_conversations_are_evicted_first() {
    // Room for two of these 250-token conversations, not three.
    let model =
        load(LoadOptions { context_length: Some(512), cache_tokens: Some(700), ..LoadOptions::default() });
    let prompts: Vec<String> = (0..3)
        .map(|i| {
            let body = format!("Conversation {i}: ") + &"lorem ipsum dolor sit amet ".repeat(20);
            model.render_chat(&[ChatMessage::user(body)], true).unwrap()
        })
        .collect();
    for prompt in &prompts {
        run(&model, prompt, 4);
    }
    // Conversation 0 was the least recently used when conversation 2 needed room: only the
    // template prefix all three share can still come from the cache.
    let tokens = |p: &str| model.tokenize(p, true).unwrap();
    let shared = tokens(&prompts[0]).iter().zip(&tokens(&prompts[2])).take_while(|(a, b)| a == b).count();
    assert!(shared < 60);
    assert!(run(&model, &prompts[0], 4).usage.cached_tokens as usize <= shared);
    let len = |p: &str| model.tokenize(p, true).unwrap().len();
    assert!((220..340).contains(&len(&prompts[0])), "{} tokens", len(&prompts[0]));
    assert!(run(&model, &prompts[2], 4).usage.cached_tokens > 200, "the most recent stays warm");
}

#[test]
fn saved_state_restores_in_a_new_model_instance_and_bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("session.state");
    let mut messages = conversation(&load(LoadOptions::default()), 8);
    messages.push(ChatMessage::user("What comes next?"));
    let prompt = {
        let model = load(LoadOptions::default());
        let prompt = model.render_chat(&messages, true).unwrap();
        let reply = run(&model, &prompt, 8);
        let saved = model.save_state(&prompt, &state).unwrap();
        assert!(saved + 2 >= reply.usage.prompt_tokens as usize, "saved {saved} tokens");
        prompt
    };
    // "After a restart": a new model instance.
    let model = load(LoadOptions::default());
    let restored = model.load_state(&state).unwrap();
    assert!(restored > 100);
    let again = run(&model, &prompt, 8);
    assert!(again.usage.cached_tokens as usize + 1 >= restored.min(again.usage.prompt_tokens as usize - 1));

    // A damaged file is refused before it reaches llama.cpp; generation still works.
    let mut bytes = std::fs::read(&state).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&state, &bytes).unwrap();
    let err = model.load_state(&state).unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(!run(&model, &prompt, 4).text.is_empty());

    // A state saved for another model is refused.
    let other = dir.path().join("other.gguf");
    let mut gguf = std::fs::read(modelforge_testkit::smollm2_gguf()).unwrap();
    // Change the first letter of `general.name`'s value: key, type (u32), length (u64), text.
    let key = b"general.name";
    let key_at = gguf.windows(key.len()).position(|w| w == key).expect("the name is in the header");
    let value_at = key_at + key.len() + 4 + 8;
    gguf[value_at] ^= 0x20;
    std::fs::write(&other, gguf).unwrap();
    let other_model = LlamaCppBackend::new().load_model(&other, &LoadOptions::default()).unwrap();
    let good = dir.path().join("good.state");
    model.save_state(&prompt, &good).unwrap();
    let err = other_model.load_state(&good).unwrap_err();
    assert!(err.to_string().contains("another model"), "{err}");
    assert!(other_model.load_state(Path::new("/nonexistent.state")).is_err());
}

#[test]
fn every_kv_cache_type_generates_and_a_state_needs_its_own_type() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("session.state");
    let prompt = "<|im_start|>user\nWrite a story about a dragon.<|im_end|>\n<|im_start|>assistant\n";
    let load_with = |kv| {
        LlamaCppBackend::new()
            .with_kv_cache_type(kv)
            .load_model(&modelforge_testkit::smollm2_gguf(), &LoadOptions::default())
            .unwrap()
    };
    let (mut replies, mut sizes) = (Vec::new(), Vec::new());
    for kv in [KvCacheType::F16, KvCacheType::F32, KvCacheType::Q8_0] {
        let model = load_with(kv);
        let reply = run(&model, prompt, 12);
        assert_eq!(reply.usage.completion_tokens, 12, "{kv:?}: {:?}", reply.text);
        replies.push(model.tokenize(&reply.text, false).unwrap());
        let file = dir.path().join(format!("{kv:?}.state"));
        model.save_state(prompt, &file).unwrap();
        sizes.push(std::fs::metadata(&file).unwrap().len() as f64);
    }
    std::fs::rename(dir.path().join("F16.state"), &state).unwrap();
    std::fs::rename(dir.path().join("F16.state.meta"), dir.path().join("session.state.meta")).unwrap();
    // The types round differently, but not so much that the first tokens part.
    assert!(replies.iter().all(|r| r[..3] == replies[0][..3]), "{replies:?}");
    // The same tokens take 4, 2 and 34/32 bytes per value.
    let (f32_ratio, q8_ratio) = (sizes[1] / sizes[0], sizes[2] / sizes[0]);
    assert!((1.8..2.1).contains(&f32_ratio) && (0.45..0.6).contains(&q8_ratio), "state sizes {sizes:?}");

    // A state saved with F16 is refused by an F32 model, with the reason, and generation goes on.
    let f32_model = load_with(KvCacheType::F32);
    let err = f32_model.load_state(&state).unwrap_err();
    assert!(err.to_string().contains("F16 KV cache"), "{err}");
    assert!(!run(&f32_model, prompt, 4).text.is_empty());
    let f16_model = load_with(KvCacheType::F16);
    assert!(f16_model.load_state(&state).unwrap() > 10, "the F16 model takes it");

    // The default picks Q8_0 for SmolLM2 (64-wide heads): its states are Q8_0 states.
    let default_model = load(LoadOptions::default());
    assert_eq!(default_model.kv_cache_type(), KvCacheType::Q8_0);
    assert_eq!(f16_model.kv_cache_type(), KvCacheType::F16);
    let err = default_model.load_state(&state).unwrap_err();
    assert!(err.to_string().contains("F16 KV cache"), "{err}");
    assert!(default_model.load_state(&dir.path().join("Q8_0.state")).unwrap() > 10);
}

#[test]
fn concurrent_generations_are_batched_and_each_completes() {
    let model: Arc<LlamaCppModel> =
        Arc::new(load(LoadOptions { max_sequences: Some(4), ..LoadOptions::default() }));
    let questions = ["What is 2+2?", "Name a colour.", "Say hello.", "What is the capital of Italy?"];
    let prompts: Vec<String> =
        questions.iter().map(|q| model.render_chat(&[ChatMessage::user(*q)], true).unwrap()).collect();
    let sequential: Vec<String> = prompts.iter().map(|p| run(model.as_ref(), p, 24).text).collect();
    let handles: Vec<_> = prompts
        .iter()
        .cloned()
        .map(|p| {
            let model = model.clone();
            std::thread::spawn(move || run(model.as_ref(), &p, 24))
        })
        .collect();
    let concurrent: Vec<Generation> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (c, s) in concurrent.iter().zip(&sequential) {
        assert!(!c.text.is_empty());
        assert!(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= 24);
        assert_ne!(c.finish_reason, FinishReason::Cancelled);
        // The same first greedy token; later tokens may differ because llama.cpp's kernels are
        // not bit-identical across batch shapes.
        let first = |text: &str| model.tokenize(text, false).unwrap().first().copied();
        assert_eq!(first(&c.text), first(s), "{:?} vs {:?}", c.text, s);
    }
}

#[test]
fn another_thread_can_cancel_a_generation() {
    let model = Arc::new(load(LoadOptions::default()));
    let cancel = CancelToken::new();
    let canceller = {
        let cancel = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            cancel.cancel();
        })
    };
    let prompt =
        model.render_chat(&[ChatMessage::user("Write a very long story about dragons.")], true).unwrap();
    let params = GenerationParams { max_tokens: 2000, ..GenerationParams::greedy() };
    let mut pieces = 0;
    let reply = model
        .generate_cancellable(&prompt, &params, &cancel, &mut |_| {
            pieces += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    canceller.join().unwrap();
    assert_eq!(reply.finish_reason, FinishReason::Cancelled);
    assert!(reply.usage.completion_tokens < 2000);
    // The model is free again afterwards.
    assert!(!run(model.as_ref(), &prompt, 4).text.is_empty());
}

/// Starts a generation through `start_generation`: what its sink heard, all of it on the
/// worker thread.
fn start(model: &Arc<LlamaCppModel>, prompt: &str, params: GenerationParams, stop_after: usize) -> Heard {
    let heard = start_and_wait(Arc::clone(model) as Arc<dyn LoadedModel>, prompt, params, stop_after);
    assert!(heard.threads.iter().all(|t| t.as_deref() == Some("llama-scheduler")), "{:?}", heard.threads);
    heard
}

#[test]
fn a_started_generation_streams_to_its_sink_from_the_worker() {
    let model = Arc::new(load(LoadOptions { context_length: Some(256), ..LoadOptions::default() }));
    let prompt = model.render_chat(&[ChatMessage::user("Name three fruits.")], true).unwrap();
    let expected = run(model.as_ref(), &prompt, 24);

    let heard = start(&model, &prompt, greedy(24), usize::MAX);
    let generation = heard.result.unwrap();
    assert_eq!(heard.pieces.concat(), expected.text);
    assert_eq!(generation.text, expected.text);
    assert_eq!(generation.finish_reason, expected.finish_reason);
    assert_eq!(generation.usage.completion_tokens, expected.usage.completion_tokens);

    // A sink that asks to stop ends the generation as cancelled, with the text it was handed.
    let heard = start(&model, &prompt, greedy(24), 3);
    let generation = heard.result.unwrap();
    assert_eq!(heard.pieces.len(), 3);
    assert_eq!(generation.finish_reason, FinishReason::Cancelled);
    assert_eq!(generation.text, heard.pieces.concat());

    // A prompt beyond the context is refused through the sink, with nothing generated.
    let heard = start(&model, &"word ".repeat(400), greedy(24), usize::MAX);
    assert!(heard.pieces.is_empty());
    let result = heard.result;
    assert!(matches!(result, Err(BackendError::ContextOverflow { context_length: 256, .. })), "{result:?}");

    // A sink that panics (the message below in the test's output is expected) stops only its
    // own generation: the worker lives on, and the model answers as before.
    struct Panicking;
    impl GenerationSink for Panicking {
        fn piece(&mut self, _: &str, _: &[TokenLogprob]) -> ControlFlow<()> {
            panic!("a sink's own bug (expected by this test)")
        }
        fn done(self: Box<Self>, _: Result<Generation, BackendError>) {}
    }
    Arc::clone(&model).start_generation(prompt.clone(), greedy(24), CancelToken::new(), Box::new(Panicking));
    assert_eq!(run(model.as_ref(), &prompt, 24).text, expected.text);
}

#[test]
fn embeddings_are_normalised_batched_and_deterministic() {
    let model = load(LoadOptions::default());
    let texts =
        ["The cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."];
    let batch = model.embed(&texts).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].len(), model.dimensions());
    for v in &batch {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    let one = model.embed(&texts[1..2]).unwrap();
    let dot: f32 = one[0].iter().zip(&batch[1]).map(|(a, b)| a * b).sum();
    assert!(dot > 0.999, "batched and single embeddings agree: {dot}");
}

#[test]
fn bench_reports_positive_speeds() {
    let model = load(LoadOptions { max_sequences: Some(2), ..LoadOptions::default() });
    let report = model.bench(&BenchConfig { prompt_tokens: 64, generated_tokens: 8, parallel: 2 }).unwrap();
    assert_eq!(report.backend, "llama-cpp");
    assert!(report.pp_tps > 0.0 && report.tg_tps > 0.0);
    let err = model.bench(&BenchConfig { prompt_tokens: 8, generated_tokens: 8, parallel: 3 }).unwrap_err();
    assert!(err.to_string().contains("--parallel 3"), "{err}");
}
