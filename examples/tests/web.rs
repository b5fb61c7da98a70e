//! Web search in the reference tools, against the loopback search engine and web of
//! `modelforge_testkit::web_server`: the CLI with the real SmolLM2 model (queries written under
//! the JSON grammar, sources in `--json`, a search service that is down), and the server's
//! `web: true` with the echo model (sources in the `done` event, a clear 400 without a search
//! service).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use modelforge_core::{CachedModel, LoadOptions, ModelFormat, SessionStore};
use modelforge_examples::server::{AppState, ModelPool, app};
use modelforge_examples::setup::{self, WebArgs};
use modelforge_memory::{Conversation, MemoryBank};
use modelforge_store::{SqliteStore, StoreOptions};
use modelforge_testkit::echo_model::EchoModel;
use modelforge_testkit::web_server::{self as web, WebServer};
use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-9";

fn modelforge(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_modelforge"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("MODELFORGE_PASSWORD", PASSWORD)
        .env("MODELFORGE_EMBEDDER", "none")
        .env_remove("MODELFORGE_DATA_DIR")
        .env_remove("MODELFORGE_SEARCH_URL")
        .env_remove("MODELFORGE_WEB_ALLOW_PRIVATE")
        .output()
        .expect("the binary runs")
}

fn setup_cli() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(modelforge(dir.path(), &["user", "add", "lina"]).status.success());
    dir
}

fn chat_args<'a>(model: &'a str, message: &'a str) -> Vec<&'a str> {
    vec![
        "chat",
        "--user",
        "lina",
        "--model",
        model,
        "--temperature",
        "0",
        "--max-tokens",
        "32",
        "--message",
        message,
    ]
}

#[test]
fn the_cli_answers_from_web_sources_with_the_real_model() {
    let server = WebServer::start();
    server.set_results(&[web::TIDES, web::CHINESE, web::INJECTION]);
    let dir = setup_cli();
    let model = modelforge_testkit::smollm2_gguf().display().to_string();
    let url = server.url();
    let mut args = chat_args(&model, "What causes tides?");
    args.extend(["--json", "--web", "--search-url", &url, "--web-allow-private"]);
    let output = modelforge(dir.path(), &args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(!answer["reply"].as_str().unwrap().trim().is_empty(), "{answer}");
    let sources = answer["sources"].as_array().unwrap();
    assert!(!sources.is_empty(), "{answer}");
    for (i, source) in sources.iter().enumerate() {
        assert_eq!(source["n"], i + 1);
        assert!(source["url"].as_str().unwrap().starts_with(&format!("{url}/pages/")), "{source}");
        assert!(!source["title"].as_str().unwrap().is_empty());
    }
    assert!(sources.iter().any(|s| s["url"] == server.page_url(web::TIDES)), "{answer}");
    // llama.cpp samples under the queries grammar, so the model's queries always parse.
    assert_eq!(answer["web"]["queries_by"], "model", "{answer}");
    assert!(answer["web"]["error"].is_null());
    assert_eq!(answer["context"]["sources_used"], sources.len());
    assert!(server.requests().iter().any(|r| r.starts_with("GET /search?q=")));
}

#[test]
fn the_cli_still_answers_when_the_search_service_is_down_and_says_so() {
    let dir = setup_cli();
    let model = modelforge_testkit::smollm2_gguf().display().to_string();
    // A port nobody listens on: the server was started and stopped.
    let url = WebServer::start().url();
    let mut args = chat_args(&model, "What causes tides?");
    args.extend(["--web", "--search-url", &url, "--web-allow-private"]);
    let output = modelforge(dir.path(), &args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[web search failed: cannot reach the search service"), "{stderr}");
}

#[test]
fn the_cli_refuses_web_without_a_search_service() {
    let dir = setup_cli();
    let mut args = chat_args("unused.gguf", "hi");
    args.push("--web");
    let output = modelforge(dir.path(), &args);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--web needs a search service: give --search-url URL or set MODELFORGE_SEARCH_URL"),
        "{stderr}"
    );
}

/// The server in-process on `127.0.0.1:0` with the echo model, web search over `search_url`.
async fn serve(dir: &Path, search_url: Option<String>) -> String {
    let options = StoreOptions::with_secret(b"web-tests-secret-0123456789abcdef".to_vec());
    let store: Arc<dyn SessionStore> = Arc::new(SqliteStore::open(&dir.join("db.sqlite"), options).unwrap());
    let model = Arc::new(EchoModel::new());
    let served = CachedModel {
        name: "echo".into(),
        size_bytes: 0,
        path: dir.join("echo.gguf"),
        format: ModelFormat::Gguf,
        quantization: None,
    };
    let pool = ModelPool::new(
        dir.to_owned(),
        vec![served],
        "echo".into(),
        LoadOptions::default(),
        Default::default(),
        1,
    );
    pool.insert("echo", model.clone());
    let memory = Arc::new(MemoryBank::new(store.clone(), None));
    let mut chat = Conversation::new(model, store.clone(), store.clone(), Arc::clone(&memory));
    let args = WebArgs { search_url, web_allow_private: true, web_deadline: 5 };
    if let Some(web) = setup::open_web(&args).unwrap() {
        chat = chat.with_web(web);
    }
    let state = AppState::new(store, Arc::new(pool), memory, chat);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    format!("http://{addr}")
}

/// Registers a user and opens a session; the token and the messages address.
async fn session(http: &reqwest::Client, base: &str) -> (String, String) {
    let login: Value = http
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"username": "lina", "password": "a long enough password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("a token").to_owned();
    let session: Value = http
        .post(format!("{base}/api/sessions"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (token, format!("{base}/api/sessions/{}/messages", session["id"].as_str().unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_returns_the_sources_in_the_done_event() {
    let web = WebServer::start();
    web.set_results(&[web::TIDES, web::CHINESE]);
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path(), Some(web.url())).await;
    let http = reqwest::Client::new();
    let (token, messages) = session(&http, &base).await;
    let body = json!({"content": "What causes tides?", "web": true, "params": {"max_tokens": 16}});
    let response = http.post(&messages).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let events = response.text().await.unwrap();
    let done = events
        .split("event: done\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no done event: {events}"));
    let done: Value = serde_json::from_str(done).unwrap();
    let sources = done["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{done}");
    assert_eq!(
        sources[0],
        json!({"n": 1, "title": "What causes tides? | Ocean Facts", "url": web.page_url(web::TIDES)})
    );
    assert_eq!(sources[1]["n"], 2);
    assert!(done["web"]["error"].is_null(), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_on_a_server_without_a_search_service_is_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path(), None).await;
    let http = reqwest::Client::new();
    let (token, messages) = session(&http, &base).await;
    let body = json!({"content": "What causes tides?", "web": true});
    let response = http.post(&messages).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "web_search_not_configured", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("--search-url"), "{error}");
}
