//! Models beyond the test model, as a new user meets them: a GGUF without a chat template
//! (SmolLM2 with its template removed; Gemma 3, which ships none) chats in its own format
//! through the CLI and the server, with no turn markers and a natural end; `--chat-template`
//! overrides the choice; `models list` and `/api/models` tell the format, backend and chat
//! format of each model; a safetensors directory chats and benches through candle.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

mod common;
#[path = "../../modelforge-engine/tests/common/export.rs"]
#[allow(dead_code)]
mod export;

const PASSWORD: &str = "correct-horse-9";

/// Turn markers of the families involved, whole or in part.
const MARKERS: &[&str] = &[
    "<|im_start|>",
    "<|im_end|>",
    "im_start",
    "im_end",
    "<start_of_turn>",
    "<end_of_turn>",
    "<eos>",
    "<|endoftext|>",
];

fn assert_no_markers(reply: &str) {
    for marker in MARKERS {
        assert!(!reply.contains(marker), "the reply shows `{marker}`: {reply:?}");
    }
}

fn modelforge(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelforge"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("MODELFORGE_PASSWORD", PASSWORD)
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", data_dir.join("hf"))
        .env("MODELFORGE_EMBEDDER", "none")
        .env_remove("MODELFORGE_DATA_DIR")
        .output()
        .expect("the binary runs")
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "command failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn json_of(output: Output) -> Value {
    serde_json::from_str(&ok(output)).expect("valid JSON")
}

/// A data dir with a user, and DATA_DIR/models holding SmolLM2 without its template.
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    ok(modelforge(dir.path(), &["user", "add", "lina"]));
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let stripped = models.join("smollm2-no-template.gguf");
    let dropped = modelforge_testkit::gguf::copy_without_keys(
        &modelforge_testkit::smollm2_gguf(),
        &stripped,
        &["tokenizer.chat_template"],
    )
    .unwrap();
    assert_eq!(dropped, 1);
    (dir, stripped)
}

/// One greedy `chat --json` turn (memory on: the rules learn, keywords search).
fn chat(dir: &Path, model: &str, message: &str, max_tokens: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "chat",
        "--user",
        "lina",
        "--model",
        model,
        "--temperature",
        "0",
        "--max-tokens",
        max_tokens,
        "--ctx-size",
        "2048",
        "--message",
        message,
        "--json",
    ];
    args.extend_from_slice(extra);
    json_of(modelforge(dir, &args))
}

/// SmolLM2 without its template chats in ChatML, chosen from its vocabulary, and ends its
/// turn by itself; the same copy forced into plain text still shows no marker.
#[test]
fn the_cli_chats_with_a_gguf_that_has_no_template() {
    let (dir, stripped) = data_dir();
    let model = stripped.to_str().unwrap();
    // Greedy SmolLM2 ends short answers by itself, but which ones depends on the CPU's kernels:
    // on AVX-512 it answers the France question and stops; on AVX2 alone it loops in French
    // until the budget, and ends "Say hello." after 23 tokens. (Told "Hello! My name is Lina
    // and I live in Lyon." it loops everywhere, markers or not: a 135M model's limit.) Without
    // the end-of-turn marker as a stop, every one of them would run to the budget.
    let mut turns = Vec::new();
    for question in ["Say hello.", "What is the capital of France?", "What is 2 + 2?"] {
        let turn = chat(dir.path(), model, question, "200", &[]);
        let stopped = turn["finish_reason"] == "stop";
        turns.push(turn);
        if stopped {
            break;
        }
    }
    let turn = turns.last().unwrap();
    assert_eq!(turn["finish_reason"], "stop", "no answer ended by itself: {turns:?}");
    let reply = turn["reply"].as_str().unwrap();
    assert!(!reply.trim().is_empty(), "{turn}");
    assert_no_markers(reply);
    let forced =
        chat(dir.path(), model, "What is the capital of France?", "64", &["--chat-template", "plain"]);
    assert_no_markers(forced["reply"].as_str().unwrap());

    // A template file that fails to render is an error naming the model and the file.
    let bad = dir.path().join("broken.jinja");
    std::fs::write(&bad, "{{ raise_exception('this template is broken') }}").unwrap();
    let out = modelforge(
        dir.path(),
        &[
            "chat",
            "--user",
            "lina",
            "--model",
            model,
            "--message",
            "Hi",
            "--chat-template",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.jinja") && err.contains("this template is broken"), "{err}");
    assert!(err.contains("Smollm2") || err.contains("smollm2"), "names the model: {err}");
    let out = modelforge(
        dir.path(),
        &["chat", "--user", "lina", "--model", model, "--message", "Hi", "--chat-template", "nonsense"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nonsense") && err.contains("chatml"), "{err}");
}

/// `models list` tells each model's format, backend and chat format.
#[test]
fn models_list_shows_format_backend_and_chat_format() {
    let (dir, _) = data_dir();
    let models = dir.path().join("models");
    std::os::unix::fs::symlink(modelforge_testkit::smollm2_gguf(), models.join("smollm2.gguf")).unwrap();
    std::os::unix::fs::symlink(modelforge_testkit::gemma3_gguf(), models.join("gemma3.gguf")).unwrap();
    let listed = json_of(modelforge(dir.path(), &["models", "list", "--json"]));
    let find = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {listed}"))
            .clone()
    };
    let stripped = find("smollm2-no-template");
    assert_eq!(
        (&stripped["format"], &stripped["backend"], &stripped["chat_format"]),
        (&json!("gguf"), &json!("llama-cpp"), &json!("chatml (detected)"))
    );
    assert_eq!(find("smollm2")["chat_format"], "model's template");
    assert_eq!(find("gemma3")["chat_format"], "gemma (detected)");
    let table = ok(modelforge(dir.path(), &["models", "list"]));
    let line = table.lines().find(|l| l.starts_with("gemma3 ")).unwrap_or_else(|| panic!("{table}"));
    assert!(line.contains("llama-cpp") && line.contains("gemma (detected)"), "{line}");
}

/// Gemma 3 (a second architecture; its GGUF has no template) is prompted in Gemma's format.
/// It is a base model: it need not end its turn, but no marker may show.
#[test]
fn the_cli_chats_with_gemma3_in_gemma_s_format() {
    let (dir, _) = data_dir();
    let gemma = modelforge_testkit::gemma3_gguf();
    let turn = chat(dir.path(), gemma.to_str().unwrap(), "What is the capital of France?", "48", &[]);
    assert!(["stop", "length"].contains(&turn["finish_reason"].as_str().unwrap()), "{turn}");
    assert_no_markers(turn["reply"].as_str().unwrap());
}

fn start_server(dir: &Path, args: &[&str]) -> common::ServerProcess {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut command = common::ServerProcess::command();
    command
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .args(["--no-auth", "--ctx-size", "2048", "--embedder", "none"])
        .env("HF_HUB_CACHE", dir.join("hf"));
    common::ServerProcess::start(command, dir.join(format!("server-{n}.log")), Duration::from_secs(120))
}

/// Tiny blocking HTTP over reqwest's async client, for a plain `#[test]`.
mod http {
    use reqwest::{Client, Method};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// Status and JSON body of a request with an optional bearer token and JSON body.
    pub fn blocking_json(
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        runtime().block_on(async {
            let mut request = Client::new().request(method, url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(serde_json::Value::Null))
        })
    }
}

fn completion(server: &common::ServerProcess, model: &str, question: &str) -> Value {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": question}],
        "temperature": 0,
        "max_tokens": 200,
    });
    let (status, answer) =
        http::blocking_json(Method::POST, &format!("{}/v1/chat/completions", server.base), None, Some(body));
    assert_eq!(status, 200, "{answer}");
    answer
}

fn api_models(server: &common::ServerProcess) -> Value {
    let url = |path: &str| format!("{}{path}", server.base);
    // `lina` was made with `modelforge user add` (see `data_dir`).
    let user = json!({"username": "lina", "password": PASSWORD});
    let (_, login) = http::blocking_json(Method::POST, &url("/api/auth/login"), None, Some(user));
    let token = login["access_token"].as_str().unwrap_or_else(|| panic!("{login}")).to_owned();
    let (status, models) = http::blocking_json(Method::GET, &url("/api/models"), Some(&token), None);
    assert_eq!(status, 200, "{models}");
    models
}

/// Through the server: the GGUF without a template ends its turn with no marker, and
/// `/api/models` tells its chat format and backend.
#[test]
fn the_server_chats_with_a_gguf_that_has_no_template_and_lists_its_format() {
    let (dir, stripped) = data_dir();
    let server = start_server(dir.path(), &["--model", stripped.to_str().unwrap()]);
    let models = api_models(&server);
    let entry = &models["data"][0];
    assert_eq!(entry["name"], "smollm2-no-template", "{models}");
    assert_eq!(
        (&entry["backend"], &entry["chat_format"]),
        (&json!("llama-cpp"), &json!("chatml (detected)")),
        "{models}"
    );
    for question in ["What is the capital of France?", "Say hello in one short sentence."] {
        let answer = completion(&server, "smollm2-no-template", question);
        let choice = &answer["choices"][0];
        assert_eq!(choice["finish_reason"], "stop", "{question}: {answer}");
        assert_no_markers(choice["message"]["content"].as_str().unwrap());
    }
}

/// `--chat-template` reaches the server's models.
#[test]
fn the_server_takes_a_chat_template_override() {
    let (dir, stripped) = data_dir();
    let server =
        start_server(dir.path(), &["--model", stripped.to_str().unwrap(), "--chat-template", "plain"]);
    let models = api_models(&server);
    assert_eq!(models["data"][0]["chat_format"], "plain (--chat-template)", "{models}");
    let answer = completion(&server, "smollm2-no-template", "What is the capital of France?");
    assert_no_markers(answer["choices"][0]["message"]["content"].as_str().unwrap());
}

/// SmolLM2's GGUF dequantized into a safetensors directory (config.json, tokenizer.json,
/// tokenizer_config.json with the chat template, model.safetensors).
fn smollm2_safetensors(dir: &Path) -> PathBuf {
    let out = dir.join("models").join("smollm2-safetensors");
    std::fs::create_dir_all(&out).unwrap();
    export::export_gguf_as_safetensors(&modelforge_testkit::smollm2_gguf(), &out);
    out
}

/// A safetensors directory chats through candle, chosen by its format, with the template of
/// its tokenizer_config.json; `--backend llama-cpp` on it is a clear error; `models list`
/// says candle serves it; `bench` measures it with candle by default.
#[test]
fn a_safetensors_directory_chats_and_benches_through_candle() {
    let (dir, _) = data_dir();
    let st = smollm2_safetensors(dir.path());
    let model = st.to_str().unwrap();
    let question = "What is the capital of France?";
    let turn = chat(dir.path(), model, question, "200", &[]);
    assert_eq!(turn["finish_reason"], "stop", "{turn}");
    let reply = turn["reply"].as_str().unwrap().to_owned();
    assert_no_markers(&reply);
    // The same weights as a GGUF through llama.cpp (f32 KV cache, the arithmetic closest to
    // candle's) start the same greedy answer.
    let gguf = modelforge_testkit::smollm2_gguf();
    let reference = chat(dir.path(), gguf.to_str().unwrap(), question, "200", &["--kv-cache", "f32"]);
    let reference = reference["reply"].as_str().unwrap();
    let first_words = |s: &str| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    assert_eq!(first_words(&reply), first_words(reference), "candle: {reply:?}\nllama.cpp: {reference:?}");

    let out = modelforge(
        dir.path(),
        &["chat", "--user", "lina", "--model", model, "--message", "Hi", "--backend", "llama-cpp"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GGUF") && err.contains("safetensors") && err.lines().count() == 1, "{err}");

    let listed = json_of(modelforge(dir.path(), &["models", "list", "--json"]));
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "smollm2-safetensors")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!((&entry["format"], &entry["backend"]), (&json!("safetensors"), &json!("candle")), "{entry}");
    assert_eq!(entry["chat_format"], "model's template", "{entry}");

    let bench =
        json_of(modelforge(dir.path(), &["bench", "--model", model, "--pp", "16", "--tg", "8", "--json"]));
    assert_eq!(bench["backend"], "candle");
    assert!(bench["tg_tps"].as_f64().unwrap() > 0.0, "{bench}");
}

/// An architecture no backend runs is a one-line error naming it and what is supported.
#[test]
fn an_unsupported_safetensors_architecture_is_a_one_line_error() {
    let (dir, _) = data_dir();
    let out = modelforge(
        dir.path(),
        &[
            "chat",
            "--user",
            "lina",
            "--model",
            modelforge_testkit::minilm_dir().to_str().unwrap(),
            "--message",
            "Hi",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`bert`") && err.contains("llama"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// The server serves a safetensors directory through candle.
#[test]
fn the_server_serves_a_safetensors_directory_through_candle() {
    let (dir, _) = data_dir();
    let st = smollm2_safetensors(dir.path());
    let server = start_server(dir.path(), &["--model", st.to_str().unwrap()]);
    let models = api_models(&server);
    assert_eq!(models["data"][0]["backend"], "candle", "{models}");
    let answer = completion(&server, "smollm2-safetensors", "What is the capital of France?");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop", "{answer}");
    assert_no_markers(answer["choices"][0]["message"]["content"].as_str().unwrap());
}
