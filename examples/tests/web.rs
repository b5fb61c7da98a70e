//! Web search in the reference tools, against the loopback search engine and web of
//! `modelforge_testkit::web_server`: the CLI with the real SmolLM2 model (queries written under
//! the JSON grammar, sources in `--json`, a search service that is down), and the server's
//! `web: true` with the echo model (sources in the `done` event, a clear 400 without a search
//! service).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use clap::Parser;
use modelforge_core::{CachedModel, Embedder, LoadOptions, ModelFormat, SessionStore};
use modelforge_engine::BertEmbedder;
use modelforge_examples::server::{AppState, ModelPool, app};
use modelforge_examples::setup::{self, WebArgs};
use modelforge_memory::{Conversation, MemoryBank};
use modelforge_store::{SqliteStore, StoreOptions};
use modelforge_testkit::echo_model::EchoModel;
use modelforge_testkit::web_server::{self as web, WebServer};
use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-9";

/// The settings of web search that come from the environment.
const WEB_ENV: [&str; 8] = [
    "MODELFORGE_SEARCH_URL",
    "MODELFORGE_SEARCH_PROVIDER",
    "MODELFORGE_SEARCH_JSON_RESULTS",
    "MODELFORGE_SEARCH_JSON_URL",
    "MODELFORGE_SEARCH_JSON_TITLE",
    "MODELFORGE_SEARCH_JSON_SNIPPET",
    "MODELFORGE_SEARCH_JSON_DATE",
    "MODELFORGE_WEB_ALLOW_PRIVATE",
];

fn modelforge(data_dir: &Path, args: &[&str]) -> Output {
    modelforge_with(data_dir, args, &[])
}

/// `modelforge args` with the web settings of the environment replaced by `env`.
fn modelforge_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelforge"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("MODELFORGE_PASSWORD", PASSWORD)
        .env("MODELFORGE_EMBEDDER", "none")
        .env_remove("MODELFORGE_DATA_DIR");
    for name in WEB_ENV {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).output().expect("the binary runs")
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
fn the_cli_searches_a_json_api_set_up_by_environment_and_ranks_with_the_embedder() {
    let server = WebServer::start();
    server.set_results(&[web::INJECTION, web::TIDES]);
    let dir = setup_cli();
    let model = modelforge_testkit::smollm2_gguf().display().to_string();
    let minilm = modelforge_testkit::minilm_dir().display().to_string();
    let template = server.json_template();
    let mut args = chat_args(&model, "What causes tides?");
    args.extend(["--json", "--web"]);
    let env = [
        ("MODELFORGE_SEARCH_PROVIDER", "json"),
        ("MODELFORGE_SEARCH_URL", template.as_str()),
        ("MODELFORGE_SEARCH_JSON_RESULTS", "data.items"),
        ("MODELFORGE_SEARCH_JSON_URL", "link"),
        ("MODELFORGE_SEARCH_JSON_TITLE", "name"),
        ("MODELFORGE_SEARCH_JSON_SNIPPET", "summary"),
        ("MODELFORGE_SEARCH_JSON_DATE", "date"),
        ("MODELFORGE_WEB_ALLOW_PRIVATE", "1"),
        ("MODELFORGE_EMBEDDER", minilm.as_str()),
    ];
    let output = modelforge_with(dir.path(), &args, &env);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(answer["web"]["error"].is_null(), "{answer}");
    let sources = answer["sources"].as_array().unwrap();
    assert_eq!(sources[0]["url"], server.page_url(web::TIDES), "{answer}");
    assert_eq!(sources[0]["title"], "What causes tides? | Ocean Facts", "{answer}");
    let requests = server.requests();
    assert!(requests.iter().any(|r| r.starts_with("GET /api/search?query=")), "{requests:?}");
    assert!(!requests.iter().any(|r| r.starts_with("GET /search")), "{requests:?}");
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

/// SearXNG at `search_url`, pages on loopback allowed.
fn searxng(search_url: Option<String>) -> WebArgs {
    WebArgs { search_url, web_allow_private: true, web_deadline: 5, ..WebArgs::default() }
}

/// The server in-process on `127.0.0.1:0` with the echo model, web search as `web` says,
/// ranked by `embedder` too if given.
async fn serve(dir: &Path, web: WebArgs, embedder: Option<Arc<dyn Embedder>>) -> String {
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
    if let Some(web) = setup::open_web(&web, embedder).unwrap() {
        chat = chat.with_web(web);
    }
    let state = AppState::new(store, Arc::new(pool), memory, chat);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    format!("http://{addr}")
}

/// Asks `question` with `web: true` in a new session of a new user; the `done` event's data.
async fn ask_with_web(base: &str, question: &str) -> Value {
    let http = reqwest::Client::new();
    let (token, messages) = session(&http, base).await;
    let body = json!({"content": question, "web": true, "params": {"max_tokens": 16}});
    let response = http.post(&messages).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    done_event(&response.text().await.unwrap())
}

/// The data of the `done` event of a reply's event stream.
fn done_event(events: &str) -> Value {
    let done = events
        .split("event: done\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no done event: {events}"));
    serde_json::from_str(done).unwrap()
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
    let base = serve(dir.path(), searxng(Some(web.url())), None).await;
    let done = ask_with_web(&base, "What causes tides?").await;
    let sources = done["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{done}");
    assert_eq!(
        sources[0],
        json!({"n": 1, "title": "What causes tides? | Ocean Facts", "url": web.page_url(web::TIDES)})
    );
    assert_eq!(sources[1]["n"], 2);
    assert!(done["web"]["error"].is_null(), "{done}");
}

/// The server's web flags, as `modelforge-server` reads them.
#[derive(Parser)]
struct ServerFlags {
    #[command(flatten)]
    web: WebArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_searches_a_json_api_given_by_flags_and_ranks_with_the_embedder() {
    let web = WebServer::start();
    web.set_results(&[web::INJECTION, web::TIDES]);
    let template = web.json_template();
    let flags = ServerFlags::try_parse_from([
        "modelforge-server",
        "--search-provider",
        "json",
        "--search-url",
        template.as_str(),
        "--search-json-results",
        "data.items",
        "--search-json-url",
        "link",
        "--search-json-title",
        "name",
        "--search-json-snippet",
        "summary",
        "--web-allow-private",
    ])
    .unwrap();
    let embedder: Arc<dyn Embedder> = Arc::new(BertEmbedder::load(modelforge_testkit::minilm_dir()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path(), flags.web, Some(embedder)).await;
    let done = ask_with_web(&base, "What causes tides?").await;
    assert!(done["web"]["error"].is_null(), "{done}");
    let sources = done["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{done}");
    assert_eq!(
        sources[0],
        json!({"n": 1, "title": "What causes tides? | Ocean Facts", "url": web.page_url(web::TIDES)})
    );
    let requests = web.requests();
    assert!(requests.iter().any(|r| r.starts_with("GET /api/search?query=What")), "{requests:?}");
}

#[test]
fn json_field_paths_without_the_json_provider_are_a_clear_error() {
    let flags =
        ServerFlags::try_parse_from(["s", "--search-url", "http://127.0.0.1:1", "--search-json-url", "link"])
            .unwrap();
    let err = setup::open_web(&flags.web, None).err().expect("an error");
    assert!(err.to_string().contains("add --search-provider json"), "{err}");
    let flags =
        ServerFlags::try_parse_from(["s", "--search-provider", "json", "--search-url", "http://x/api"])
            .unwrap();
    let err = setup::open_web(&flags.web, None).err().expect("an error");
    assert!(err.to_string().contains("no {query} placeholder"), "{err}");
    let err = ServerFlags::try_parse_from(["s", "--search-provider", "bing"]).err().expect("an error");
    assert!(err.to_string().contains("possible values: searxng, json"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_on_a_server_without_a_search_service_is_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(dir.path(), searxng(None), None).await;
    let http = reqwest::Client::new();
    let (token, messages) = session(&http, &base).await;
    let body = json!({"content": "What causes tides?", "web": true});
    let response = http.post(&messages).bearer_auth(&token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "web_search_not_configured", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("--search-url"), "{error}");
}
