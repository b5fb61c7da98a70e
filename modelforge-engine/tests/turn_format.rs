//! Choosing a chat format for a model without a template: the selection table over built
//! GGUF headers of each family, the rendered prompts, the stop strings, `--chat-template`,
//! and real models (SmolLM2 with its template removed, Gemma 3 which ships none) chatting
//! through both backends without turn markers in their replies.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use modelforge_core::gguf::GgufFile;
use modelforge_core::{
    Backend, BackendError, ChatMessage, FinishReason, GenerationParams, LoadOptions, LoadedModel,
};
use modelforge_engine::stream::TextStream;
use modelforge_engine::turn_format::{self, FormatSource, TurnFormat, Vocabulary};
use modelforge_engine::{CandleBackend, LlamaCppBackend};
use modelforge_testkit::gguf::{GgufBuilder, copy_without_keys};

/// Writes a GGUF header with these tokens (ids in order) and metadata, and parses it.
fn header(dir: &Path, arch: &str, name: Option<&str>, tokens: &[&str], template: Option<&str>) -> GgufFile {
    let mut builder = GgufBuilder::new().string("general.architecture", arch);
    if let Some(name) = name {
        builder = builder.string("general.name", name);
    }
    if let Some(template) = template {
        builder = builder.string("tokenizer.chat_template", template);
    }
    let eos = tokens.iter().position(|t| ["</s>", "<eos>", "<|endoftext|>"].contains(t)).unwrap_or(0);
    let bytes = builder
        .string_array("tokenizer.ggml.tokens", tokens)
        .u32("tokenizer.ggml.eos_token_id", eos as u32)
        .tensor_f32("token_embd.weight", 8)
        .build();
    let path = dir.join(format!("{arch}-{}.gguf", tokens.len()));
    std::fs::write(&path, bytes).unwrap();
    GgufFile::open(&path).unwrap()
}

fn detect(arch: &str, name: Option<&str>, tokens: &[&str]) -> Option<TurnFormat> {
    let dir = tempfile::tempdir().unwrap();
    TurnFormat::detect(&Vocabulary::from_gguf(&header(dir.path(), arch, name, tokens, None))).map(|(f, _)| f)
}

/// Vocabularies of each family: a few ordinary tokens and the family's special tokens.
#[test]
fn the_format_is_chosen_from_the_vocabulary_of_each_family() {
    let common = ["<unk>", "hello", "world"];
    let with =
        |special: &[&'static str]| common.iter().copied().chain(special.iter().copied()).collect::<Vec<_>>();
    let cases: &[(&str, &[&str], Option<TurnFormat>)] = &[
        ("gemma3", &["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"], Some(TurnFormat::Gemma)),
        (
            "llama",
            &[
                "<|begin_of_text|>",
                "<|end_of_text|>",
                "<|start_header_id|>",
                "<|end_header_id|>",
                "<|eot_id|>",
            ],
            Some(TurnFormat::Llama3),
        ),
        ("qwen2", &["<|endoftext|>", "<|im_start|>", "<|im_end|>"], Some(TurnFormat::ChatMl)),
        // SmolLM2: llama architecture, ChatML tokens.
        ("llama", &["<|endoftext|>", "<|im_start|>", "<|im_end|>"], Some(TurnFormat::ChatMl)),
        ("llama", &["<s>", "</s>", "[INST]", "[/INST]"], Some(TurnFormat::Mistral)),
        (
            "phi3",
            &["<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|system|>", "<|end|>", "<|user|>"],
            Some(TurnFormat::Phi3),
        ),
        ("llama", &["<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"], Some(TurnFormat::Zephyr)),
        (
            "deepseek2",
            &["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"],
            Some(TurnFormat::DeepSeek),
        ),
        // No markers: the architecture decides where it can.
        ("gemma2", &["<pad>", "<eos>", "<bos>"], Some(TurnFormat::Gemma)),
        ("qwen3", &["<|endoftext|>"], Some(TurnFormat::ChatMl)),
        ("phi3", &["<s>", "</s>"], Some(TurnFormat::Phi3)),
        // A llama base model with nothing recognisable.
        ("llama", &["<s>", "</s>"], None),
        ("gpt2", &["<|endoftext|>"], None),
    ];
    for (arch, special, expected) in cases {
        assert_eq!(detect(arch, None, &with(special)), *expected, "{arch} {special:?}");
    }
    // Llama 2 and the first Mistral write their markers as text: the name tells them apart.
    let spm = with(&["<s>", "</s>"]);
    assert_eq!(detect("llama", Some("Llama-2-7b-chat"), &spm), Some(TurnFormat::Llama2));
    assert_eq!(detect("llama", Some("Mistral 7B Instruct v0.1"), &spm), Some(TurnFormat::Mistral));
    assert_eq!(detect("llama", Some("TinyLlama 1.1B Chat v1.0"), &spm), Some(TurnFormat::Zephyr));
    assert_eq!(detect("llama", Some("open_llama_3b"), &spm), None);
}

fn conversation() -> Vec<ChatMessage> {
    vec![
        ChatMessage::system("Be brief."),
        ChatMessage::user("Hi"),
        ChatMessage::assistant("Hello!"),
        ChatMessage::user("Bye"),
    ]
}

fn render(format: TurnFormat, bos: &str, eos: &str) -> String {
    let t = modelforge_engine::ChatTemplate::new(Some(format.template()), bos, eos).unwrap();
    t.render(&conversation(), true).unwrap()
}

/// The built-in templates write what each family's own template writes.
#[test]
fn the_built_in_templates_render_each_family_s_turns() {
    let cases: &[(TurnFormat, &str, &str, &str)] = &[
        (
            TurnFormat::Gemma,
            "<bos>",
            "<eos>",
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n",
        ),
        (
            TurnFormat::Llama3,
            "<|begin_of_text|>",
            "<|eot_id|>",
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n\
             Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        (
            TurnFormat::ChatMl,
            "",
            "",
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n\
             Hello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
        ),
        (
            TurnFormat::Llama2,
            "<s>",
            "</s>",
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]",
        ),
        (TurnFormat::Mistral, "<s>", "</s>", "<s>[INST] Be brief.\n\nHi [/INST]Hello!</s>[INST] Bye [/INST]"),
        (
            TurnFormat::Phi3,
            "<s>",
            "</s>",
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n",
        ),
        (
            TurnFormat::Zephyr,
            "<s>",
            "</s>",
            "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n",
        ),
        (
            TurnFormat::DeepSeek,
            "<｜begin▁of▁sentence｜>",
            "<｜end▁of▁sentence｜>",
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>",
        ),
        (TurnFormat::Plain, "", "", "Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Bye\nAssistant:"),
    ];
    for (format, bos, eos, expected) in cases {
        assert_eq!(render(*format, bos, eos), *expected, "{format:?}");
    }
}

fn info_of(gguf: &GgufFile) -> modelforge_core::ModelInfo {
    modelforge_core::inspect(&gguf.path).unwrap()
}

fn options(chat_template: Option<&str>) -> LoadOptions {
    LoadOptions { chat_template: chat_template.map(str::to_owned), ..LoadOptions::default() }
}

/// A model's own template wins; without one the vocabulary decides, and its end markers and
/// end-of-generation tokens become stops; with nothing recognisable, plain text.
#[test]
fn setup_prefers_the_model_s_template_then_the_vocabulary_then_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let gemma_tokens = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "hi"];
    let own = header(dir.path(), "gemma3", None, &gemma_tokens, Some("{{ messages[0].content }}!"));
    let setup =
        turn_format::setup(&info_of(&own), &Vocabulary::from_gguf(&own), &options(None), "<bos>", "<eos>")
            .unwrap();
    assert_eq!(setup.format.source, FormatSource::Model);
    assert_eq!(setup.format.family, Some(TurnFormat::Gemma));
    assert_eq!(setup.template.render(&[ChatMessage::user("Hi")], true).unwrap(), "Hi!");
    // Gemma's markers end the reply even under the model's own template.
    assert!(setup.stops.contains(&"<end_of_turn>".to_owned()), "{:?}", setup.stops);
    let mut end_tokens = setup.end_tokens.clone();
    end_tokens.sort_unstable();
    assert_eq!(end_tokens, vec![3, 4]);

    let dir2 = tempfile::tempdir().unwrap();
    let bare = header(dir2.path(), "gemma3", None, &gemma_tokens, None);
    let vocab = Vocabulary::from_gguf(&bare);
    assert_eq!(vocab.end_of_generation, ["<eos>"]);
    let setup = turn_format::setup(&info_of(&bare), &vocab, &options(None), "<bos>", "<eos>").unwrap();
    assert_eq!(setup.format.source, FormatSource::Detected);
    assert_eq!(setup.format.name, "gemma");
    assert_eq!(setup.format.to_string(), "gemma (detected)");
    assert_eq!(
        setup.template.render(&[ChatMessage::user("Hi")], true).unwrap(),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    for stop in ["<end_of_turn>", "<start_of_turn>", "<eos>"] {
        assert!(setup.stops.contains(&stop.to_owned()), "{stop} missing from {:?}", setup.stops);
    }

    let plain = header(dir.path(), "gpt2", None, &["<|endoftext|>", "a", "b"], None);
    let setup =
        turn_format::setup(&info_of(&plain), &Vocabulary::from_gguf(&plain), &options(None), "", "").unwrap();
    assert_eq!(setup.format.source, FormatSource::Fallback);
    assert_eq!(setup.format.name, "plain");
    assert_eq!(setup.template.render(&[ChatMessage::user("Hi")], true).unwrap(), "User: Hi\nAssistant:");
    assert!(setup.stops.contains(&"\nUser:".to_owned()));
    assert!(setup.stops.contains(&"<|endoftext|>".to_owned()));
}

/// `--chat-template NAME|FILE` overrides the model's own template; a bad one is an error
/// naming the model and the template.
#[test]
fn chat_template_names_and_files_override_and_bad_ones_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let gguf = header(dir.path(), "llama", Some("Tiny Chat"), &tokens, Some("{{ messages[0].content }}"));
    let (info, vocab) = (info_of(&gguf), Vocabulary::from_gguf(&gguf));
    let hi = [ChatMessage::user("Hi")];

    let by_name =
        turn_format::setup(&info, &vocab, &options(Some("llama3")), "<|begin_of_text|>", "").unwrap();
    assert_eq!(by_name.format.source, FormatSource::Override);
    assert_eq!(by_name.format.to_string(), "llama3 (--chat-template)");
    assert!(
        by_name.template.render(&hi, true).unwrap().starts_with("<|begin_of_text|><|start_header_id|>user")
    );
    assert!(by_name.stops.contains(&"<|eot_id|>".to_owned()));

    let file = dir.path().join("mine.jinja");
    std::fs::write(
        &file,
        "{% for m in messages %}<<{{ m.role }}>> {{ m.content }}\n{% endfor %}<<assistant>>",
    )
    .unwrap();
    let by_file = turn_format::setup(&info, &vocab, &options(file.to_str()), "", "").unwrap();
    assert_eq!(by_file.template.render(&hi, true).unwrap(), "<<user>> Hi\n<<assistant>>");

    let unknown = turn_format::setup(&info, &vocab, &options(Some("klingon")), "", "").unwrap_err();
    let message = unknown.to_string();
    assert!(message.contains("klingon") && message.contains("gemma"), "{message}");

    // A template that compiles but fails to render, and one that does not compile.
    std::fs::write(&file, "{{ raise_exception('no roles here') }}").unwrap();
    let err = turn_format::setup(&info, &vocab, &options(file.to_str()), "", "").unwrap_err();
    assert!(matches!(err, BackendError::Template { .. }));
    let message = err.to_string();
    assert!(
        message.contains("Tiny Chat") && message.contains("mine.jinja") && message.contains("no roles here"),
        "{message}"
    );
    std::fs::write(&file, "{% for %}").unwrap();
    let message = turn_format::setup(&info, &vocab, &options(file.to_str()), "", "").unwrap_err().to_string();
    assert!(message.contains("Tiny Chat") && message.contains("mine.jinja"), "{message}");
}

/// A reply that writes a turn marker as text (not as its special token) stops there and
/// never shows it, even split over pieces.
#[test]
fn turn_markers_written_as_text_end_the_reply_and_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = header(
        dir.path(),
        "gemma3",
        None,
        &["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"],
        None,
    );
    let setup =
        turn_format::setup(&info_of(&gguf), &Vocabulary::from_gguf(&gguf), &options(None), "<bos>", "<eos>")
            .unwrap();
    let params = GenerationParams { stop: setup.stops.clone(), ..GenerationParams::greedy() };
    let mut shown = String::new();
    let mut on_piece = |piece: &str| {
        shown.push_str(piece);
        ControlFlow::Continue(())
    };
    let mut stream = TextStream::new(&params, &mut on_piece);
    let mut reason = None;
    for piece in ["Sure", ", bye.", "<end_", "of_turn>", "\n<start_of_turn>user\nmore"] {
        if let ControlFlow::Break(r) = stream.push_token(piece.as_bytes()) {
            reason = Some(r);
            break;
        }
    }
    assert_eq!(reason, Some(FinishReason::Stop));
    let done = stream.finish(FinishReason::Stop);
    assert_eq!(done.text, "Sure, bye.");
    assert_eq!(shown, "Sure, bye.");
}

const MARKERS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<eos>",
    "<bos>",
    "im_start",
    "im_end",
    "end_of_turn",
];

fn assert_no_markers(reply: &str) {
    for marker in MARKERS {
        assert!(!reply.contains(marker), "the reply shows `{marker}`: {reply:?}");
    }
}

/// SmolLM2's GGUF without `tokenizer.chat_template`, in a temporary directory.
fn smollm2_without_template(dir: &Path) -> PathBuf {
    let path = dir.join("SmolLM2-no-template.gguf");
    let dropped =
        copy_without_keys(&modelforge_testkit::smollm2_gguf(), &path, &["tokenizer.chat_template"]).unwrap();
    assert_eq!(dropped, 1, "SmolLM2's GGUF carries a chat template to remove");
    assert_eq!(GgufFile::open(&path).unwrap().chat_template(), None);
    path
}

fn greedy(max_tokens: u32) -> GenerationParams {
    GenerationParams { max_tokens, ..GenerationParams::greedy() }
}

fn chat(model: &dyn LoadedModel, question: &str, max_tokens: u32) -> modelforge_core::Generation {
    let mut shown = String::new();
    let messages = [ChatMessage::user(question)];
    let generation = model
        .chat(&messages, &greedy(max_tokens), &mut |piece| {
            shown.push_str(piece);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(shown, generation.text, "what was streamed is the reply");
    generation
}

/// An instruct model whose file lost its template: its vocabulary says ChatML, so it is
/// prompted in ChatML and ends its turn by itself, with no marker in the reply, through
/// both backends.
#[test]
fn smollm2_without_its_template_chats_in_chatml_and_stops_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = smollm2_without_template(dir.path());
    let options = LoadOptions { context_length: Some(1024), ..LoadOptions::default() };
    let backends: [Box<dyn Backend>; 2] = [Box::new(LlamaCppBackend::new()), Box::new(CandleBackend::new())];
    for backend in backends {
        let model = backend.load(&path, &options).unwrap();
        assert_eq!(model.chat_format().as_deref(), Some("chatml (detected)"), "{}", backend.name());
        let prompt = model.render_chat(&[ChatMessage::user("Hi")], true).unwrap();
        assert_eq!(prompt, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        for question in ["What is the capital of France?", "Say hello in one short sentence."] {
            let reply = chat(model.as_ref(), question, 200);
            assert_eq!(
                reply.finish_reason,
                FinishReason::Stop,
                "{}: {question}: {:?}",
                backend.name(),
                reply.text
            );
            assert!(!reply.text.trim().is_empty(), "{}: empty reply to {question}", backend.name());
            assert_no_markers(&reply.text);
        }
    }
}

/// The same file prompted in a format it was never trained on (`--chat-template plain`)
/// still never shows a marker: the vocabulary's turn tokens end the reply.
#[test]
fn a_forced_foreign_format_still_shows_no_markers() {
    let dir = tempfile::tempdir().unwrap();
    let path = smollm2_without_template(dir.path());
    let options = LoadOptions {
        context_length: Some(1024),
        chat_template: Some("plain".into()),
        ..LoadOptions::default()
    };
    let model = LlamaCppBackend::new().load(&path, &options).unwrap();
    assert_eq!(model.chat_format().as_deref(), Some("plain (--chat-template)"));
    let reply = chat(model.as_ref(), "What is the capital of France?", 64);
    assert_no_markers(&reply.text);
    assert!(!reply.text.contains("\nUser:"), "{:?}", reply.text);
}

/// Gemma 3 (a second architecture, whose GGUF has no template): the Gemma format is chosen
/// from its vocabulary and the prompt is Gemma's. It is a base model, so whether it ends its
/// turn is not asserted; its reply must hold no turn marker.
#[test]
fn gemma3_without_a_template_is_prompted_in_gemma_s_format() {
    let path = modelforge_testkit::gemma3_gguf();
    assert_eq!(GgufFile::open(&path).unwrap().chat_template(), None);
    let options = LoadOptions { context_length: Some(1024), ..LoadOptions::default() };
    let model = LlamaCppBackend::new().load(&path, &options).unwrap();
    assert_eq!(model.chat_format().as_deref(), Some("gemma (detected)"));
    let prompt =
        model.render_chat(&[ChatMessage::system("Be brief."), ChatMessage::user("Hi")], true).unwrap();
    assert_eq!(prompt, "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    // The markers are single special tokens, not text.
    // The template writes the BOS itself (the backends add none to such a prompt).
    let tokens = model.tokenize(&prompt, false).unwrap();
    assert_eq!(tokens.iter().filter(|&&t| t == 2).count(), 1, "one BOS: {tokens:?}");
    assert!(tokens.contains(&105) && tokens.contains(&106), "{tokens:?}");
    let reply = chat(model.as_ref(), "What is the capital of France?", 48);
    assert_no_markers(&reply.text);
    assert_ne!(reply.finish_reason, FinishReason::Cancelled);
    // `describe` (what `models list` shows) agrees without loading.
    let info = modelforge_core::inspect(&path).unwrap();
    assert_eq!(turn_format::describe(&info, None).unwrap().to_string(), "gemma (detected)");
    assert_eq!(turn_format::describe(&info, Some("chatml")).unwrap().to_string(), "chatml (--chat-template)");
}
