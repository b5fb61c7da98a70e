//! `modelforge-server`'s HTTP API end to end, over loopback with the real SmolLM2 model:
//! accounts and tokens, API keys, sessions, chat over server-sent events (regenerate, edit,
//! stop, readers that leave or follow), memory across sessions, many users at once, two
//! replicas sharing PostgreSQL, and `/health` and `/metrics`.
//!
//! Most tests serve [`app`] in-process on `127.0.0.1:0` with one model loaded per test binary;
//! the tests of command-line flags and of replicas run the `modelforge-server` binary. Replies
//! are greedy and a few tokens long, so the whole file takes under a minute on two cores.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{MODEL, SECRET, Setup, options};
use modelforge_core::{ChatMessage, NewUser, SessionId, SessionStore, TokenStore as _, UserRole};
use modelforge_examples::server::{MAX_BODY_BYTES, Registration};
use modelforge_examples::setup;
use modelforge_store::{PgStore, SqliteStore, StoreOptions};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// The longest any one read, start or reply may take before a test fails.
const PATIENCE: Duration = Duration::from_secs(90);
/// A prompt SmolLM2 answers at length, for replies that must still be running when a test
/// acts on them.
const COUNTING: &str = "Count from 1 to 300, separated by commas.";

// ---------------------------------------------------------------------------------------------
// Servers

/// The app on `127.0.0.1:0` over a fresh SQLite store, with the shared model.
struct Server {
    api: Api,
    store: Arc<dyn SessionStore>,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

async fn serve() -> Server {
    serve_with(Registration::Open).await
}

async fn serve_with(registration: Registration) -> Server {
    let served = common::serve_with(Setup { registration, ..Setup::default() }).await;
    Server { api: Api::new(served.base), store: served.store, db: served.db, _dir: served.dir }
}

/// A `modelforge-server` process and a client of it, the process killed on drop.
struct Process {
    api: Api,
    inner: common::ServerProcess,
}

impl Process {
    /// Starts the binary with `args` and `env` on a port the system picks (read from the line
    /// it prints once serving: a port found free beforehand can be taken by another test before
    /// the server binds it) and waits until `/health` answers 200; fails with the server's log if
    /// it exits or takes too long.
    async fn start(args: &[String], env: &[(&str, &str)], log: PathBuf) -> Process {
        let mut command = common::ServerProcess::command();
        command.args(args).envs(env.iter().copied());
        let inner = tokio::task::spawn_blocking(move || common::ServerProcess::start(command, log, PATIENCE))
            .await
            .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
        Process { api: Api::new(inner.base.clone()), inner }
    }

    fn log_text(&self) -> String {
        self.inner.log_text()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A client of one server.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

/// A status and the JSON body (`null` when empty).
type Answer = (u16, Value);

impl Api {
    fn new(base: String) -> Self {
        Self { http: reqwest::Client::new(), base }
    }

    /// A request to `path`, as `token` (none when empty).
    fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        if token.is_empty() { request } else { request.bearer_auth(token) }
    }

    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let request = self.request(method, path, token);
        read(match body {
            Some(body) => request.json(&body),
            None => request,
        })
        .await
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Registers `name` (password [`password_of`]); the login answer.
    async fn register(&self, name: &str) -> Value {
        let (status, body) = self
            .post("/api/auth/register", "", json!({"username": name, "password": password_of(name)}))
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn login(&self, name: &str, password: &str) -> Answer {
        self.post("/api/auth/login", "", json!({"username": name, "password": password})).await
    }

    /// A new session of `token`'s user; its id.
    async fn session(&self, token: &str, body: Value) -> String {
        let (status, session) = self.post("/api/sessions", token, body).await;
        assert_eq!(status, 201, "{session}");
        session["id"].as_str().unwrap().to_owned()
    }

    /// Every message of `session`, oldest first, and whether a reply is being written.
    async fn messages(&self, token: &str, session: &str) -> (Vec<Value>, bool) {
        let (status, body) = self.get(&format!("/api/sessions/{session}/messages?limit=200"), token).await;
        assert_eq!(status, 200, "{body}");
        (body["data"].as_array().unwrap().clone(), body["reply_in_progress"].as_bool().unwrap())
    }

    /// Sends `content` to `session` and returns the reply's events.
    async fn start_chat(&self, token: &str, session: &str, content: &str, max_tokens: u32) -> Events {
        let body = json!({"content": content, "params": params(max_tokens)});
        let request =
            self.request(Method::POST, &format!("/api/sessions/{session}/messages"), token).json(&body);
        Events::open(request).await
    }

    /// Sends `content` to `session` and reads the reply to its `done`.
    async fn chat(&self, token: &str, session: &str, content: &str, max_tokens: u32) -> Turn {
        self.start_chat(token, session, content, max_tokens).await.finish().await
    }
}

/// Sends `request` and reads its answer as JSON.
async fn read(request: RequestBuilder) -> Answer {
    let response = tokio::time::timeout(PATIENCE, request.send()).await.expect("an answer in time").unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{status} answered with no JSON ({err}): {text:.300}"))
    };
    (status, body)
}

fn password_of(name: &str) -> String {
    format!("password of {name}")
}

/// Greedy sampling of at most `max_tokens` tokens.
fn params(max_tokens: u32) -> Value {
    json!({"max_tokens": max_tokens, "temperature": 0.0, "seed": 7})
}

fn token(login: &Value) -> String {
    login["access_token"].as_str().expect("an access token").to_owned()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_else(|| panic!("not a string: {value}"))
}

/// Fails unless `answer` is the one error shape with `status` and `code`.
#[track_caller]
fn assert_error(answer: &Answer, status: u16, code: &str) {
    let (got, body) = answer;
    assert_eq!((*got, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only `error`: {body}");
    let error = body["error"].as_object().unwrap();
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    assert!(!text(&error["message"]).is_empty(), "{body}");
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    assert_eq!(error["type"], kind, "{body}");
}

/// Asks `method template` as `token` with someone else's ids (`theirs`: placeholder and id),
/// then with made-up ids: both must be the same 404 once the ids are masked, so an id that
/// exists for someone else cannot be told from one that exists for nobody.
async fn assert_hidden(
    api: &Api,
    token: &str,
    method: Method,
    template: &str,
    body: Option<Value>,
    theirs: &[(&str, &str)],
) {
    let made_up: Vec<(&str, String)> =
        theirs.iter().map(|(placeholder, _)| (*placeholder, SessionId::new().to_string())).collect();
    let mut answers = Vec::new();
    for ids in [theirs.iter().map(|(p, id)| (*p, id.to_string())).collect::<Vec<_>>(), made_up] {
        let path = ids.iter().fold(template.to_owned(), |path, (p, id)| path.replace(p, id));
        let answer = api.call(method.clone(), &path, token, body.clone()).await;
        assert_error(&answer, 404, answer.1["error"]["code"].as_str().unwrap_or("?"));
        let masked = ids.iter().fold(answer.1.to_string(), |text, (p, id)| text.replace(id, p));
        answers.push(masked);
    }
    assert_eq!(answers[0], answers[1], "{method} {template}: someone else's ids answer differently");
}

/// A reply's server-sent events.
struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// The pieces read so far, joined.
    text: String,
}

/// A reply read to its end.
struct Turn {
    /// The pieces, joined.
    text: String,
    /// The `done` event's data.
    done: Value,
}

impl Events {
    async fn open(request: RequestBuilder) -> Events {
        let response =
            tokio::time::timeout(PATIENCE, request.send()).await.expect("an answer in time").unwrap();
        let status = response.status();
        let kind =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if status != 200 || !kind.starts_with("text/event-stream") {
            panic!(
                "expected an event stream, got {status} {kind}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Events { response, buffer: Vec::new(), text: String::new() }
    }

    /// The next event's name and data; `None` when the stream ends.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let raw = String::from_utf8(raw).expect("events are UTF-8");
                let mut name = "message".to_owned();
                let mut data = String::new();
                for line in raw.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data: Value = serde_json::from_str(&data).unwrap();
                if name == "piece" {
                    self.text.push_str(text(&data["text"]));
                }
                return Some((name, data));
            }
            let chunk =
                tokio::time::timeout(PATIENCE, self.response.chunk()).await.expect("an event in time");
            self.buffer.extend_from_slice(&chunk.expect("the stream reads")?);
        }
    }

    /// The next event, which must be a piece; its text.
    async fn piece(&mut self) -> String {
        match self.next().await {
            Some((name, data)) if name == "piece" => text(&data["text"]).to_owned(),
            other => panic!("expected a piece, got {other:?}"),
        }
    }

    /// Reads to the `done` event, which must come after pieces only and end the stream.
    async fn finish(mut self) -> Turn {
        loop {
            match self.next().await {
                Some((name, _)) if name == "piece" => {}
                Some((name, done)) if name == "done" => {
                    assert_eq!(self.next().await, None, "nothing after done");
                    return Turn { text: self.text, done };
                }
                other => panic!("expected pieces then done, got {other:?} after {:?}", self.text),
            }
        }
    }
}

/// Polls `check` until it says the condition holds, for at most [`PATIENCE`]; `check` answers
/// `Err(what it saw)` meanwhile, printed if time runs out.
async fn eventually<F: std::future::Future<Output = Result<(), String>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let started = Instant::now();
    while let Err(seen) = check().await {
        assert!(started.elapsed() < PATIENCE, "{what}: not in time; last seen: {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts and keys

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_register_log_in_refresh_log_out_and_change_passwords() {
    let server = serve().await;
    let api = &server.api;

    let alice = api.register("alice").await;
    assert_eq!(alice["user"]["role"], "admin", "the first account is the admin: {alice}");
    assert!(alice["user"].as_object().unwrap().keys().all(|k| !k.contains("password")), "{alice}");
    let bob = api.register("bob").await;
    assert_eq!(bob["user"]["role"], "user");
    let taken = api
        .post("/api/auth/register", "", json!({"username": "ALICE", "password": "another long one"}))
        .await;
    assert_error(&taken, 409, "conflict");
    let weak = api.post("/api/auth/register", "", json!({"username": "carol", "password": "short"})).await;
    assert_error(&weak, 400, "invalid_request");

    let wrong = api.login("alice", "not the password").await;
    assert_error(&wrong, 401, "invalid_credentials");
    assert_eq!(
        api.login("nobody", "not the password").await,
        wrong,
        "an unknown user looks like a wrong password"
    );

    let (status, login) = api.login("alice", &password_of("alice")).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["token_type"], "bearer");
    assert!((1..=900).contains(&login["expires_in"].as_i64().unwrap()), "{login}");
    let (access, refresh) = (token(&login), text(&login["refresh_token"]).to_owned());
    assert!(access.starts_with("eyJ") && refresh != access);
    let (status, me) = api.get("/api/auth/me", &access).await;
    assert_eq!(
        (status, &me["user"]["username"], &me["registration_open"]),
        (200, &json!("alice"), &json!(true))
    );

    // Refresh rotates the pair; the old refresh token is refused, and presenting it revokes
    // the family it belongs to.
    let (status, pair) = api.post("/api/auth/refresh", "", json!({"refresh_token": refresh})).await;
    assert_eq!(status, 200, "{pair}");
    let refreshed = text(&pair["refresh_token"]).to_owned();
    assert_ne!(refreshed, refresh);
    assert_eq!(api.get("/api/auth/me", &token(&pair)).await.0, 200);
    assert_error(
        &api.post("/api/auth/refresh", "", json!({"refresh_token": refresh})).await,
        401,
        "invalid_token",
    );
    assert_error(
        &api.post("/api/auth/refresh", "", json!({"refresh_token": refreshed})).await,
        401,
        "invalid_token",
    );

    // Logout ends the refresh token.
    let (_, login) = api.login("alice", &password_of("alice")).await;
    let refresh = text(&login["refresh_token"]).to_owned();
    assert_eq!(api.post("/api/auth/logout", "", json!({"refresh_token": refresh})).await.0, 204);
    assert_error(
        &api.post("/api/auth/refresh", "", json!({"refresh_token": refresh})).await,
        401,
        "invalid_token",
    );

    // A new password: the old one and every token issued before stop working.
    let (_, login) = api.login("alice", &password_of("alice")).await;
    let (access, refresh) = (token(&login), text(&login["refresh_token"]).to_owned());
    let change = |current: &str| json!({"current_password": current, "new_password": "a brand new secret"});
    assert_error(
        &api.put("/api/auth/password", &access, change("a wrong guess")).await,
        401,
        "invalid_credentials",
    );
    assert_eq!(api.put("/api/auth/password", &access, change(&password_of("alice"))).await.0, 204);
    assert_error(&api.login("alice", &password_of("alice")).await, 401, "invalid_credentials");
    assert_error(&api.get("/api/auth/me", &access).await, 401, "invalid_token");
    assert_error(
        &api.post("/api/auth/refresh", "", json!({"refresh_token": refresh})).await,
        401,
        "invalid_token",
    );
    let (status, login) = api.login("alice", "a brand new secret").await;
    assert_eq!(status, 200, "{login}");
    let alice = token(&login);

    // Tokens that are missing, malformed, expired or not signed with the server's key.
    let bob = token(&bob);
    let bob_actor = server.store.verify_token(&bob).unwrap();
    let expired =
        SqliteStore::open(&server.db, StoreOptions { access_token_ttl: Duration::ZERO, ..options() })
            .unwrap()
            .issue_tokens(&bob_actor)
            .unwrap()
            .access_token;
    let forged = SqliteStore::open(
        &server.db,
        StoreOptions::with_secret(b"another-secret-0123456789abcdef-xyz".to_vec()),
    )
    .unwrap()
    .issue_tokens(&bob_actor)
    .unwrap()
    .access_token;
    let payload = bob.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    assert_error(&api.get("/api/auth/me", "").await, 401, "unauthorized");
    for bad in ["not-a-token", expired.as_str(), forged.as_str(), unsigned.as_str(), &format!("{bob}x")] {
        assert_error(&api.get("/api/auth/me", bad).await, 401, "invalid_token");
    }
    assert_eq!(api.get("/api/auth/me", &bob).await.0, 200);

    // Only an admin closes registration; then nobody registers until it reopens.
    let close = json!({"registration_open": false});
    assert_error(&api.put("/api/admin/settings", &bob, close.clone()).await, 403, "forbidden");
    assert_error(&api.get("/api/admin/users", &bob).await, 403, "forbidden");
    assert_eq!(
        api.put("/api/admin/settings", &alice, close).await,
        (200, json!({"registration_open": false}))
    );
    let carol = json!({"username": "carol", "password": password_of("carol")});
    assert_error(&api.post("/api/auth/register", "", carol.clone()).await, 403, "forbidden");
    assert_eq!(api.get("/api/auth/me", &bob).await.1["registration_open"], false);
    let (status, users) = api.get("/api/admin/users", &alice).await;
    assert_eq!((status, users["data"].as_array().unwrap().len()), (200, 2), "{users}");
    assert_eq!(api.put("/api/admin/settings", &alice, json!({"registration_open": true})).await.0, 200);
    assert_eq!(api.post("/api/auth/register", "", carol).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_work_on_both_apis_and_die_when_revoked() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let bob = token(&api.register("bob").await);

    let (status, created) = api.post("/api/keys", &alice, json!({"name": "laptop editor"})).await;
    assert_eq!(status, 201, "{created}");
    let key = text(&created["key"]).to_owned();
    let prefix = text(&created["prefix"]);
    assert!(key.starts_with("mf_") && key.starts_with(prefix) && prefix.len() + 16 <= key.len(), "{created}");
    let id = text(&created["id"]).to_owned();

    let (_, listed) = api.get("/api/keys", &alice).await;
    let keys = listed["data"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    assert_eq!((&keys[0]["id"], &keys[0]["name"]), (&json!(id), &json!("laptop editor")));
    assert!(keys[0]["last_used_at"].is_null(), "{listed}");
    assert!(!listed.to_string().contains(&key[prefix.len()..]), "the secret is shown once: {listed}");

    assert_eq!(api.get("/api/auth/me", &key).await.1["user"]["username"], "alice");
    assert_eq!(api.get("/api/sessions", &key).await.0, 200);
    let (status, models) = api.get("/v1/models", &key).await;
    assert_eq!((status, &models["data"][0]["id"]), (200, &json!(MODEL)), "{models}");
    let (_, listed) = api.get("/api/keys", &alice).await;
    assert!(listed["data"][0]["last_used_at"].is_string(), "its use is recorded: {listed}");

    // Bob neither sees nor revokes it.
    assert_eq!(api.get("/api/keys", &bob).await.1["data"], json!([]));
    assert_hidden(api, &bob, Method::DELETE, "/api/keys/{key}", None, &[("{key}", &id)]).await;
    assert_eq!(api.get("/api/auth/me", &key).await.0, 200);

    assert_eq!(api.delete(&format!("/api/keys/{id}"), &alice).await.0, 204);
    assert_error(&api.get("/api/sessions", &key).await, 401, "invalid_token");
    assert_error(&api.get("/v1/models", &key).await, 401, "invalid_token");
    assert_error(&api.get("/api/auth/me", "mf_0123456789abcdef0123456789abcdef").await, 401, "invalid_token");
    assert_eq!(api.get("/api/keys", &alice).await.1["data"], json!([]));
}

/// The `data:` events of a server-sent event stream, without the final `[DONE]`, which must
/// be there.
fn sse_events(body: &str) -> Vec<Value> {
    let data: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{body}");
    data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect()
}

/// With tools and `tool_choice: "auto"` the model decides: an answer that is a call streams as
/// `tool_calls` deltas (id, type and name first, then the arguments in pieces) with
/// `finish_reason: "tool_calls"` and never as content; an answer that only starts like one
/// (`{"note": ...}`) comes out as content once it is clearly not a call. The model is the echo
/// test double answering what the test scripts (SmolLM2-135M answers these requests as text,
/// so it cannot show the call path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_auto_tool_choice_a_streamed_call_comes_as_tool_call_deltas() {
    let call =
        r#"<tool_call> {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}} </tool_call>"#;
    let not_a_call = r#"{"note": "the weather is fine"}"#;
    let forced = r#"{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}"#;
    let echo =
        modelforge_testkit::echo_model::EchoModel::new().with_replies([call, not_a_call, call, forced]);
    let served = common::serve_with(Setup { model: Some(Arc::new(echo)), ..Setup::default() }).await;
    let api = Api::new(served.base);
    let alice = token(&api.register("alice").await);
    let request = |stream: bool| {
        json!({
            "model": MODEL, "stream": stream, "tool_choice": "auto",
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}}}}],
        })
    };
    let stream = |body: Value| {
        let api = api.clone();
        let alice = alice.clone();
        async move {
            let response =
                api.request(Method::POST, "/v1/chat/completions", &alice).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            sse_events(&response.text().await.unwrap())
        }
    };

    let events = stream(request(true)).await;
    let ids: HashSet<&str> = events.iter().map(|e| text(&e["id"])).collect();
    assert_eq!(ids.len(), 1, "one id for every chunk: {events:?}");
    let deltas: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["delta"]).collect();
    assert!(deltas.iter().all(|d| d["content"].as_str().is_none_or(str::is_empty)), "no content: {events:?}");
    let calls: Vec<&Value> = deltas.iter().filter_map(|d| d["tool_calls"].get(0)).collect();
    assert!(calls.len() >= 2, "the call, then its arguments: {events:?}");
    assert_eq!((&calls[0]["index"], &calls[0]["type"]), (&json!(0), &json!("function")), "{events:?}");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert!(text(&calls[0]["id"]).starts_with("call_"), "{events:?}");
    let arguments: String =
        calls.iter().map(|c| c["function"]["arguments"].as_str().unwrap_or_default()).collect();
    let arguments: Value = serde_json::from_str(&arguments).unwrap();
    assert_eq!(arguments, json!({"city": "Paris", "unit": "c"}));
    let finishes: Vec<&Value> =
        events.iter().map(|e| &e["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
    assert_eq!(finishes, [&json!("tool_calls")], "{events:?}");

    // Text that only began like a call is content in the end, all of it.
    let events = stream(request(true)).await;
    let content: String =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, not_a_call);
    assert!(events.iter().all(|e| e["choices"][0]["delta"]["tool_calls"].is_null()), "{events:?}");
    let finishes: Vec<&Value> =
        events.iter().map(|e| &e["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
    assert_eq!(finishes, [&json!("stop")], "{events:?}");

    // The same call whole.
    let (status, whole) = api.post("/v1/chat/completions", &alice, request(false)).await;
    assert_eq!(status, 200, "{whole}");
    let choice = &whole["choices"][0];
    assert_eq!(
        (&choice["finish_reason"], &choice["message"]["content"]),
        (&json!("tool_calls"), &Value::Null)
    );
    let function = &choice["message"]["tool_calls"][0]["function"];
    assert_eq!(function["name"], "get_weather");
    assert_eq!(serde_json::from_str::<Value>(text(&function["arguments"])).unwrap(), arguments);

    // A forced call streams as it is written: the header once the name is known, then each
    // piece of the arguments the model writes (the echo model writes a word per piece), without
    // the call's own closing brace.
    let mut body = request(true);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let events = stream(body).await;
    let calls: Vec<&Value> =
        events.iter().filter_map(|e| e["choices"][0]["delta"]["tool_calls"].get(0)).collect();
    assert_eq!(calls[0]["function"], json!({"name": "get_weather", "arguments": ""}), "{events:?}");
    let pieces: Vec<&str> = calls[1..].iter().map(|c| text(&c["function"]["arguments"])).collect();
    assert_eq!(pieces, [r#"{"city":"#, r#" "Paris","#, r#" "unit":"#, r#" "c"}"#]);
    let finishes: Vec<&Value> =
        events.iter().map(|e| &e["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
    assert_eq!(finishes, [&json!("tool_calls")], "{events:?}");
}

// ---------------------------------------------------------------------------------------------
// Sessions and malformed requests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_searched_changed_paged_exported_and_deleted() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);

    let kyoto = api.session(&alice, json!({"title": "Trip to Kyoto"})).await;
    let groceries = api.session(&alice, json!({"title": "Groceries for the week"})).await;
    let work = api.session(&alice, json!({"title": "Work notes"})).await;
    let titles = |answer: &Answer| -> Vec<String> {
        assert_eq!(answer.0, 200, "{}", answer.1);
        answer.1["data"].as_array().unwrap().iter().map(|s| text(&s["title"]).to_owned()).collect()
    };
    assert_eq!(titles(&api.get("/api/sessions", &alice).await).len(), 3);
    assert_eq!(titles(&api.get("/api/sessions?query=kyoto", &alice).await), ["Trip to Kyoto"]);

    let (status, pinned) =
        api.patch(&format!("/api/sessions/{groceries}"), &alice, json!({"pinned": true})).await;
    assert_eq!((status, &pinned["pinned"]), (200, &json!(true)), "{pinned}");
    assert_eq!(api.patch(&format!("/api/sessions/{work}"), &alice, json!({"archived": true})).await.0, 200);
    assert_eq!(titles(&api.get("/api/sessions?pinned=true", &alice).await), ["Groceries for the week"]);
    assert_eq!(titles(&api.get("/api/sessions?pinned=false", &alice).await), ["Trip to Kyoto"]);
    assert_eq!(
        titles(&api.get("/api/sessions", &alice).await),
        ["Groceries for the week", "Trip to Kyoto"],
        "pinned first, archived left out"
    );
    assert_eq!(titles(&api.get("/api/sessions?archived=true", &alice).await), ["Work notes"]);
    let first = api.get("/api/sessions?limit=1", &alice).await;
    assert_eq!(
        (titles(&first), &first.1["next_offset"]),
        (vec!["Groceries for the week".to_owned()], &json!(1))
    );
    let second = api.get("/api/sessions?limit=1&offset=1", &alice).await;
    assert_eq!((titles(&second), &second.1["next_offset"]), (vec!["Trip to Kyoto".to_owned()], &Value::Null));
    assert_error(&api.get("/api/sessions?limit=0", &alice).await, 400, "invalid_request");

    let renamed =
        api.patch(&format!("/api/sessions/{kyoto}"), &alice, json!({"title": "Kyoto in spring"})).await;
    assert_eq!((renamed.0, &renamed.1["title"]), (200, &json!("Kyoto in spring")));
    let (status, shown) = api.get(&format!("/api/sessions/{kyoto}"), &alice).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&shown["title"], &shown["reply_in_progress"], &shown["model"]),
        (&json!("Kyoto in spring"), &json!(false), &Value::Null)
    );

    // Messages page in the order they were written.
    let actor = server.store.verify_token(&alice).unwrap();
    let said: Vec<String> = (0..5).map(|i| format!("message number {i}")).collect();
    for (i, content) in said.iter().enumerate() {
        let message = if i % 2 == 0 { ChatMessage::user(content) } else { ChatMessage::assistant(content) };
        server.store.append_message(&actor, kyoto.parse().unwrap(), &message, None).unwrap();
    }
    let page = |offset: u32| {
        let path = format!("/api/sessions/{kyoto}/messages?limit=2&offset={offset}");
        let alice = alice.clone();
        async move { api.get(&path, &alice).await.1 }
    };
    let contents = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|m| text(&m["content"]).to_owned()).collect()
    };
    let (first, last) = (page(0).await, page(4).await);
    assert_eq!((contents(&first), &first["next_offset"]), (said[..2].to_vec(), &json!(2)));
    assert_eq!((contents(&last), &last["next_offset"]), (said[4..].to_vec(), &Value::Null));
    assert_eq!(first["data"][1]["role"], "assistant");
    assert_error(
        &api.get(&format!("/api/sessions/{kyoto}/messages?limit=abc"), &alice).await,
        400,
        "invalid_request",
    );

    let export =
        api.request(Method::GET, &format!("/api/sessions/{kyoto}/export"), &alice).send().await.unwrap();
    let disposition = export.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment") && disposition.contains(&kyoto), "{disposition}");
    let export: Value = export.json().await.unwrap();
    assert_eq!(
        (&export["session"]["id"], contents(&json!({"data": export["messages"]}))),
        (&json!(kyoto), said)
    );

    assert_eq!(api.delete(&format!("/api/sessions/{work}"), &alice).await.0, 204);
    assert_error(&api.get(&format!("/api/sessions/{work}"), &alice).await, 404, "not_found");
    assert_eq!(titles(&api.get("/api/sessions?archived=true", &alice).await), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_ids_are_answered_like_ids_that_do_not_exist() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let bob = token(&api.register("bob").await);
    let session = api.session(&alice, json!({"title": "private"})).await;
    let actor = server.store.verify_token(&alice).unwrap();
    let message =
        server.store.append_message(&actor, session.parse().unwrap(), &ChatMessage::user("secret"), None);
    let message = message.unwrap().id.to_string();
    let (_, memory) =
        api.post("/api/memories", &alice, json!({"content": "The user is allergic to peanuts."})).await;
    let memory = text(&memory["id"]).to_owned();
    let own = api.session(&bob, json!({})).await;

    let ids = [("{s}", session.as_str())];
    let send = json!({"content": "hello", "params": params(8)});
    for (method, path, body) in [
        (Method::GET, "/api/sessions/{s}", None),
        (Method::PATCH, "/api/sessions/{s}", Some(json!({"title": "mine now"}))),
        (Method::DELETE, "/api/sessions/{s}", None),
        (Method::GET, "/api/sessions/{s}/messages", None),
        (Method::POST, "/api/sessions/{s}/messages", Some(send.clone())),
        (Method::POST, "/api/sessions/{s}/regenerate", Some(json!({"params": params(8)}))),
        (Method::POST, "/api/sessions/{s}/stop", None),
        (Method::GET, "/api/sessions/{s}/stream", None),
        (Method::GET, "/api/sessions/{s}/export", None),
    ] {
        assert_hidden(api, &bob, method, path, body, &ids).await;
    }
    let both = [("{s}", session.as_str()), ("{m}", message.as_str())];
    assert_hidden(api, &bob, Method::PUT, "/api/sessions/{s}/messages/{m}", Some(send.clone()), &both).await;
    let in_own = format!("/api/sessions/{own}/messages/{{m}}");
    assert_hidden(api, &bob, Method::PUT, &in_own, Some(send), &[("{m}", &message)]).await;
    let edit = Some(json!({"content": "The user likes peanuts."}));
    assert_hidden(api, &bob, Method::PATCH, "/api/memories/{id}", edit, &[("{id}", &memory)]).await;
    assert_hidden(api, &bob, Method::DELETE, "/api/memories/{id}", None, &[("{id}", &memory)]).await;

    // Nothing of Alice's changed, and Bob's own session did not gain a message.
    let (messages, _) = api.messages(&alice, &session).await;
    assert_eq!((messages.len(), &messages[0]["content"]), (1, &json!("secret")));
    assert_eq!(api.get(&format!("/api/sessions/{session}"), &alice).await.1["title"], "private");
    assert_eq!(api.get("/api/memories", &alice).await.1["data"].as_array().unwrap().len(), 1);
    assert!(api.messages(&bob, &own).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_error_shape() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let session = api.session(&alice, json!({})).await;

    for (method, path) in [(Method::GET, "/api/nope"), (Method::GET, "/nope"), (Method::POST, "/v1/nope")] {
        assert_error(&api.call(method, path, &alice, None).await, 404, "not_found");
    }
    let send = json!({"content": "hello", "params": params(8)});
    for (method, path, body) in [
        (Method::GET, "/api/sessions/not-an-id".to_owned(), None),
        (Method::GET, "/api/sessions/123/messages".to_owned(), None),
        (Method::PUT, format!("/api/sessions/{session}/messages/not-an-id"), Some(send)),
    ] {
        assert_error(&api.call(method, &path, &alice, body).await, 404, "not_found");
    }
    assert_error(&api.patch("/api/memories/xyz", &alice, json!({"content": "x"})).await, 404, "not_found");
    assert_error(&api.delete("/api/keys/xyz", &alice).await, 404, "not_found");

    let raw = |path: &str, kind: &str, body: &str| {
        let request =
            api.request(Method::POST, path, &alice).header("content-type", kind).body(body.to_owned());
        read(request)
    };
    assert_error(&raw("/api/auth/login", "application/json", "{\"username\": ").await, 400, "invalid_json");
    assert_error(&raw("/api/auth/login", "text/plain", "{}").await, 415, "unsupported_media_type");
    let login = api.post("/api/auth/login", "", json!({"username": 5, "password": "long enough"})).await;
    assert_error(&login, 422, "invalid_fields");
    assert_error(&api.post("/api/sessions", &alice, json!({"title": 5})).await, 422, "invalid_fields");
    assert_error(&api.post("/api/sessions", &alice, json!({"titel": "typo"})).await, 422, "invalid_fields");
    let patch = api.patch(&format!("/api/sessions/{session}"), &alice, json!({"pinned": "yes"})).await;
    assert_error(&patch, 422, "invalid_fields");
    let messages = format!("/api/sessions/{session}/messages");
    assert_error(&api.post(&messages, &alice, json!({"content": ["hi"]})).await, 422, "invalid_fields");
    let unknown_param = json!({"content": "hi", "params": {"max_tokens": 8, "bogus": 1}});
    assert_error(&api.post(&messages, &alice, unknown_param).await, 422, "invalid_fields");
    assert_error(&api.get("/api/sessions?pinned=maybe", &alice).await, 400, "invalid_request");
    assert!(api.messages(&alice, &session).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_405_in_the_error_shape() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let answer = api.delete("/api/auth/me", &alice).await;
    assert_eq!(answer.0, 405, "{}", answer.1);
    assert_error(&answer, 405, answer.1["error"]["code"].as_str().unwrap_or("(no JSON error)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_within_the_limit_is_read() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    // 3 MiB: under the server's 4 MiB limit, so it reaches the store, which refuses the title.
    let title = "a".repeat(3 << 20);
    assert!(title.len() < MAX_BODY_BYTES);
    let answer = api.post("/api/sessions", &alice, json!({"title": title})).await;
    assert_error(&answer, 400, "invalid_request");
    assert!(text(&answer.1["error"]["message"]).contains("title"), "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_in_the_error_shape() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let title = "a".repeat(MAX_BODY_BYTES);
    let request = api.request(Method::POST, "/api/sessions", &alice).json(&json!({"title": title}));
    let response = request.send().await.unwrap();
    let (status, body) = (response.status().as_u16(), response.text().await.unwrap());
    assert_eq!(status, 413, "{body:.300}");
    let body: Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("413 answered with no JSON: {body:.300}"));
    assert_error(&(status, body), 413, "body_too_large");
}

// ---------------------------------------------------------------------------------------------
// Chat

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_streams_what_is_stored_and_regenerate_and_edit_replace_it() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let session = api.session(&alice, json!({})).await;

    let question = "What is the capital of France?";
    let turn = api.chat(&alice, &session, question, 16).await;
    let done = &turn.done;
    assert!(!turn.text.trim().is_empty());
    assert_eq!(turn.text, text(&done["reply"]["content"]), "the pieces add up to the stored reply");
    let (user_id, reply_id) = (done["user_message"]["id"].clone(), done["reply"]["id"].clone());
    assert_eq!(done["message_ids"], json!([user_id, reply_id]));
    assert_eq!((&done["session_id"], &done["memory"]), (&json!(session), &json!("on")));
    assert!(["stop", "length"].contains(&text(&done["finish_reason"])), "{done}");
    let usage = &done["usage"];
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=16).contains(&completion), "{usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(usage["prompt_tokens"].as_u64().unwrap() + completion));
    assert_eq!(done["context"]["history_used"], 1, "{done}");
    assert!(text(&done["context_summary"]).contains("summarized"), "{done}");
    let (messages, writing) = api.messages(&alice, &session).await;
    assert!(!writing);
    let view = |messages: &[Value]| -> Vec<(Value, Value, Value)> {
        messages.iter().map(|m| (m["id"].clone(), m["role"].clone(), m["content"].clone())).collect()
    };
    assert_eq!(
        view(&messages),
        [
            (user_id.clone(), json!("user"), json!(question)),
            (reply_id.clone(), json!("assistant"), json!(turn.text))
        ]
    );
    let shown = api.get(&format!("/api/sessions/{session}"), &alice).await.1;
    assert_eq!(shown["message_count"], 2, "{shown}");

    // Regenerate: the same question, a new reply in place of the old one.
    let regenerate = api
        .request(Method::POST, &format!("/api/sessions/{session}/regenerate"), &alice)
        .json(&json!({"params": params(12)}));
    let again = Events::open(regenerate).await.finish().await;
    let new_reply = again.done["reply"]["id"].clone();
    assert_ne!(new_reply, reply_id);
    assert_eq!(again.text, text(&again.done["reply"]["content"]));
    let (messages, _) = api.messages(&alice, &session).await;
    assert_eq!(
        view(&messages),
        [
            (user_id.clone(), json!("user"), json!(question)),
            (new_reply, json!("assistant"), json!(again.text))
        ]
    );

    // Edit the first question: what followed it goes.
    let second = api.chat(&alice, &session, "And of Spain?", 8).await;
    assert_eq!(api.messages(&alice, &session).await.0.len(), 4);
    let edit_path = |id: &Value| format!("/api/sessions/{session}/messages/{}", text(id));
    let not_user = api
        .put(&edit_path(&second.done["reply"]["id"]), &alice, json!({"content": "x", "params": params(8)}))
        .await;
    assert_error(&not_user, 400, "invalid_request");
    let edited = json!({"content": "What is the capital of Italy?", "params": params(8)});
    let edited = Events::open(api.request(Method::PUT, &edit_path(&user_id), &alice).json(&edited))
        .await
        .finish()
        .await;
    let (messages, _) = api.messages(&alice, &session).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        (&messages[0]["content"], &messages[1]["content"], &messages[1]["id"]),
        (&json!("What is the capital of Italy?"), &json!(edited.text), &edited.done["reply"]["id"])
    );
    let dropped = [&second.done["user_message"]["id"], &second.done["reply"]["id"]];
    assert!(messages.iter().all(|m| !dropped.contains(&&m["id"])), "{messages:?}");

    // Requests that cannot be answered leave the session as it was.
    let messages_path = format!("/api/sessions/{session}/messages");
    let long = json!({"content": "word ".repeat(3000), "params": params(16)});
    let overflow = api.post(&messages_path, &alice, long).await;
    assert_error(&overflow, 400, "context_overflow");
    assert!(text(&overflow.1["error"]["message"]).contains("2032"), "the numbers: {}", overflow.1);
    let too_many = api.post(&messages_path, &alice, json!({"content": "hi", "params": params(4096)})).await;
    assert_error(&too_many, 400, "invalid_request");
    assert!(text(&too_many.1["error"]["message"]).contains("2047"), "{}", too_many.1);
    for bad in [
        json!({"content": "hi", "params": {"temperature": 5.0}}),
        json!({"content": "  "}),
        json!({"content": "hi", "params": params(0)}),
    ] {
        assert_error(&api.post(&messages_path, &alice, bad).await, 400, "invalid_request");
    }
    assert_eq!(api.messages(&alice, &session).await.0.len(), 2);
    let nothing = api.session(&alice, json!({})).await;
    let regenerate =
        api.post(&format!("/api/sessions/{nothing}/regenerate"), &alice, json!({"params": params(8)})).await;
    assert_error(&regenerate, 400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_may_bring_its_own_system_prompt() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let prompt_tokens = |turn: &Turn| turn.done["usage"]["prompt_tokens"].as_u64().unwrap();
    let ask = |system: Option<&str>| {
        let mut body = json!({"content": "Say hello.", "params": params(4)});
        if let Some(system) = system {
            body["system"] = json!(system);
        }
        body
    };
    let mut used = Vec::new();
    for system in
        [None, Some("   "), Some(&*"You are a pirate who answers every question in rhyme. ".repeat(6))]
    {
        let session = api.session(&alice, json!({})).await;
        let request = api
            .request(Method::POST, &format!("/api/sessions/{session}/messages"), &alice)
            .json(&ask(system));
        used.push(prompt_tokens(&Events::open(request).await.finish().await));
    }
    assert_eq!(used[0], used[1], "a blank system prompt is the server's: {used:?}");
    assert!(used[2] > used[0] + 40, "the caller's system prompt replaces the server's: {used:?}");

    // Regenerate takes one too.
    let session = api.session(&alice, json!({})).await;
    api.chat(&alice, &session, "Say hello.", 4).await;
    let request = api
        .request(Method::POST, &format!("/api/sessions/{session}/regenerate"), &alice)
        .json(&json!({"params": params(4), "system": "You are a pirate who answers every question in rhyme. ".repeat(6)}));
    assert!(prompt_tokens(&Events::open(request).await.finish().await) > used[0] + 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_name_only_models_the_server_has() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    assert_error(
        &api.post("/api/sessions", &alice, json!({"model": "no/such-model"})).await,
        404,
        "model_not_found",
    );
    let session = api.session(&alice, json!({"model": MODEL})).await;
    let path = format!("/api/sessions/{session}");
    assert_error(&api.patch(&path, &alice, json!({"model": "no-such-model"})).await, 404, "model_not_found");
    assert_eq!(api.get(&path, &alice).await.1["model"], MODEL);
    assert_eq!(api.patch(&path, &alice, json!({"model": null})).await.1["model"], Value::Null);
    let (status, models) = api.get("/api/models", &alice).await;
    assert_eq!(
        (status, &models["data"][0]["name"], &models["data"][0]["default"]),
        (200, &json!(MODEL), &json!(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_learned_in_one_session_is_brought_into_the_next() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);

    let told = api.session(&alice, json!({})).await;
    let learned = api.chat(&alice, &told, "I'm allergic to peanuts.", 8).await;
    let changed = learned.done["memories_learned"].as_array().unwrap();
    assert!(changed.iter().any(|m| text(&m["content"]).contains("peanuts")), "{}", learned.done);
    let (_, memories) = api.get("/api/memories", &alice).await;
    let allergy =
        memories["data"].as_array().unwrap().iter().find(|m| text(&m["content"]).contains("peanuts"));
    let allergy = allergy.unwrap_or_else(|| panic!("stored: {memories}"))["id"].clone();

    let asked = api.session(&alice, json!({})).await;
    let turn = api.chat(&alice, &asked, "What should I cook tonight?", 16).await;
    let injected = turn.done["memories_injected"].as_array().unwrap();
    assert!(injected.iter().any(|m| m["id"] == allergy), "{}", turn.done);
    assert!(turn.done["context"]["memories_used"].as_array().unwrap().contains(&allergy));
    assert!(
        text(&turn.done["context_summary"]).starts_with(&format!("{} memor", injected.len())),
        "{}",
        turn.done
    );

    // A temporary session neither reads nor writes memories.
    let private = api.session(&alice, json!({"temporary": true})).await;
    let turn = api.chat(&alice, &private, "What should I cook tonight? I live in Oslo.", 8).await;
    assert_eq!((&turn.done["memory"], &turn.done["memories_injected"]), (&json!("temporary"), &json!([])));
    assert_eq!(turn.done["memories_learned"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_outlives_its_reader_and_can_be_followed() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let session = api.session(&alice, json!({})).await;
    let stream = format!("/api/sessions/{session}/stream");
    assert_eq!(api.get(&stream, &alice).await, (204, Value::Null), "nothing to follow yet");

    let mut first = api.start_chat(&alice, &session, COUNTING, 200).await;
    let piece = first.piece().await;
    let follower = Events::open(api.request(Method::GET, &stream, &alice)).await;
    drop(first);
    let (_, writing) = api.messages(&alice, &session).await;
    assert!(writing, "the reply goes on after its reader left");
    let followed = follower.finish().await;
    assert!(followed.text.starts_with(&piece), "a follower gets the reply from its start");
    assert_eq!(followed.text, text(&followed.done["reply"]["content"]));
    assert!(followed.text.len() > piece.len() * 4, "{followed:?}", followed = followed.text);
    let (messages, writing) = api.messages(&alice, &session).await;
    assert!(!writing);
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (&messages[1]["id"], &messages[1]["content"]),
        (&followed.done["reply"]["id"], &json!(followed.text))
    );
    assert_eq!(api.get(&stream, &alice).await.0, 204);

    // Nobody follows this one: it is still finished and stored in full.
    let mut events = api.start_chat(&alice, &session, COUNTING, 60).await;
    let piece = events.piece().await;
    drop(events);
    eventually("the unread reply is stored", || async {
        match api.messages(&alice, &session).await {
            (messages, false) if messages.len() == 4 => Ok(()),
            (messages, writing) => Err(format!("reply in progress: {writing}, messages: {messages:?}")),
        }
    })
    .await;
    let (messages, _) = api.messages(&alice, &session).await;
    let stored = text(&messages[3]["content"]);
    assert!(stored.starts_with(&piece) && stored.len() > piece.len() * 4, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_reply_as_cancelled_and_keeps_what_was_written() {
    let server = serve().await;
    let api = &server.api;
    let alice = token(&api.register("alice").await);
    let session = api.session(&alice, json!({})).await;
    let stop = format!("/api/sessions/{session}/stop");
    let nothing = api.call(Method::POST, &stop, &alice, None).await;
    assert_error(&nothing, 409, "no_reply_in_progress");

    let mut events = api.start_chat(&alice, &session, COUNTING, 200).await;
    events.piece().await;
    let busy = api
        .post(
            &format!("/api/sessions/{session}/messages"),
            &alice,
            json!({"content": "hi", "params": params(8)}),
        )
        .await;
    assert_error(&busy, 409, "reply_in_progress");
    assert_eq!(api.call(Method::POST, &stop, &alice, None).await, (200, json!({"stopped": true})));
    let turn = events.finish().await;
    assert_eq!(turn.done["finish_reason"], "cancelled", "{}", turn.done);
    assert!(turn.done["usage"]["completion_tokens"].as_u64().unwrap() < 200, "{}", turn.done);
    assert!(!turn.text.is_empty());
    assert_eq!(turn.text, text(&turn.done["reply"]["content"]));
    let (messages, writing) = api.messages(&alice, &session).await;
    assert!(!writing);
    let stored: Vec<&Value> = messages.iter().map(|m| &m["content"]).collect();
    assert_eq!(stored, [&json!(COUNTING), &json!(turn.text)], "the partial reply is stored");
    assert_error(&api.call(Method::POST, &stop, &alice, None).await, 409, "no_reply_in_progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_users_chat_at_once_each_in_their_own_session() {
    let server = serve().await;
    let api = &server.api;
    let mut joining = Vec::new();
    for i in 0..16 {
        let api = api.clone();
        joining.push(tokio::spawn(async move {
            let token = token(&api.register(&format!("user{i:02}")).await);
            let session = api.session(&token, json!({})).await;
            (token, session)
        }));
    }
    let mut users = Vec::new();
    for joined in joining {
        users.push(joined.await.unwrap());
    }
    let said = |i: usize| format!("My lucky number is {}. Say hello.", 1000 + i);
    let start = Arc::new(tokio::sync::Barrier::new(users.len()));
    let mut chatting = Vec::new();
    for (i, (token, session)) in users.iter().cloned().enumerate() {
        let (api, start, content) = (api.clone(), Arc::clone(&start), said(i));
        chatting.push(tokio::spawn(async move {
            start.wait().await;
            api.chat(&token, &session, &content, 8).await
        }));
    }
    let mut ids = HashSet::new();
    for (i, chatted) in chatting.into_iter().enumerate() {
        let turn = chatted.await.unwrap();
        let (token, session) = &users[i];
        let (messages, writing) = api.messages(token, session).await;
        assert!(!writing && messages.len() == 2, "{messages:?}");
        assert_eq!((&messages[0]["role"], &messages[0]["content"]), (&json!("user"), &json!(said(i))));
        assert_eq!((&messages[1]["role"], &messages[1]["content"]), (&json!("assistant"), &json!(turn.text)));
        assert_eq!(messages[1]["id"], turn.done["reply"]["id"]);
        for message in &messages {
            assert_eq!(message["session_id"], json!(session));
            assert!(ids.insert(text(&message["id"]).to_owned()), "a message in two sessions: {message}");
            let others = (0..16).filter(|&j| j != i).map(|j| (1000 + j).to_string());
            for other in others.collect::<Vec<_>>() {
                assert!(!text(&message["content"]).contains(&other), "another user's words: {message}");
            }
        }
        let (_, listed) = api.get("/api/sessions", token).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1, "only their own session: {listed}");
    }
    assert_eq!(ids.len(), 32);
}

// ---------------------------------------------------------------------------------------------
// The binary: flags, replicas, operations

fn model_path() -> String {
    modelforge_testkit::smollm2_gguf().to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_keeps_registration_closed_honours_its_context_size_and_reports_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = setup::open_store(&data).unwrap();
        let lina = NewUser {
            username: "lina".into(),
            password: password_of("lina"),
            email: None,
            role: UserRole::User,
        };
        store.create_user(&lina).unwrap();
    }
    let args: Vec<String> =
        ["--registration", "closed", "--ctx-size", "512", "--embedder", "none", "--model"]
            .iter()
            .map(|s| s.to_string())
            .chain([model_path(), "--data-dir".into(), data.display().to_string()])
            .collect();
    let server = Process::start(&args, &[], dir.path().join("server.log")).await;
    let api = &server.api;

    let (status, health) = api.get("/health", "").await;
    assert_eq!(
        (status, &health["status"], &health["models_loaded"]),
        (200, &json!("ok"), &json!(1)),
        "{health}"
    );

    let register = json!({"username": "omar", "password": password_of("omar")});
    assert_error(&api.post("/api/auth/register", "", register.clone()).await, 403, "forbidden");
    let lina = token(&api.login("lina", &password_of("lina")).await.1);
    assert_eq!(api.get("/api/auth/me", &lina).await.1["registration_open"], false);
    // The flag wins over the stored setting.
    assert_eq!(api.put("/api/admin/settings", &lina, json!({"registration_open": true})).await.0, 200);
    assert_eq!(api.get("/api/admin/settings", &lina).await.1["closed_by_flag"], true);
    assert_error(&api.post("/api/auth/register", "", register).await, 403, "forbidden");

    let session = api.session(&lina, json!({})).await;
    let turn = api.chat(&lina, &session, "Hello!", 8).await;
    assert!(!turn.text.is_empty());
    let messages = format!("/api/sessions/{session}/messages");
    let long = json!({"content": "word ".repeat(600), "params": params(16)});
    let overflow = api.post(&messages, &lina, long).await;
    assert_error(&overflow, 400, "context_overflow");
    assert!(
        text(&overflow.1["error"]["message"]).contains("496"),
        "512 - 16 tokens for the prompt: {}",
        overflow.1
    );
    let too_many = api.post(&messages, &lina, json!({"content": "hi", "params": params(512)})).await;
    assert!(text(&too_many.1["error"]["message"]).contains("511"), "{}", too_many.1);

    let response = api.request(Method::GET, "/metrics", "").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let metrics = response.text().await.unwrap();
    let line = |prefix: &str| -> Option<f64> {
        let line = metrics.lines().find(|l| l.starts_with(prefix))?;
        line.rsplit(' ').next()?.parse().ok()
    };
    let chats =
        r#"modelforge_http_requests_total{method="POST",route="/api/sessions/{id}/messages",status="200"} "#;
    assert_eq!(line(chats), Some(1.0), "{metrics}");
    let refused =
        r#"modelforge_http_requests_total{method="POST",route="/api/sessions/{id}/messages",status="400"} "#;
    assert_eq!(line(refused), Some(2.0), "{metrics}");
    let generated = line("modelforge_tokens_generated_total ").unwrap();
    assert_eq!(generated, turn.done["usage"]["completion_tokens"].as_f64().unwrap(), "{metrics}");
    assert_eq!(line("modelforge_models_loaded "), Some(1.0));
    assert_eq!(line("modelforge_replies_in_progress "), Some(0.0));
    assert_eq!(line("modelforge_time_to_first_token_seconds_count "), Some(1.0));
    assert!(!metrics.contains(&session), "routes, never ids");
}

/// SIGTERM while a reply is being written: the reply finishes and is stored, new replies and
/// `/health` get a 503 meanwhile, and the process exits on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_lets_a_running_reply_finish_and_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args: Vec<String> = ["--embedder", "none", "--shutdown-grace", "600", "--model"]
        .iter()
        .map(|s| s.to_string())
        .chain([model_path(), "--data-dir".into(), data.display().to_string()])
        .collect();
    let mut server = Process::start(&args, &[], dir.path().join("server.log")).await;
    let api = server.api.clone();
    let token = token(&api.register("quinn").await);
    let (first, second) = (api.session(&token, json!({})).await, api.session(&token, json!({})).await);
    let mut long = api.start_chat(&token, &first, "Write a long story about a lighthouse.", 120).await;
    long.piece().await;

    let pid = server.inner.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    eventually("/health says the server is stopping", || async {
        match api.get("/health", "").await {
            (503, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let refused =
        api.post(&format!("/api/sessions/{second}/messages"), &token, json!({"content": "hi"})).await;
    assert_error(&refused, 503, "shutting_down");

    let turn = long.finish().await;
    assert_ne!(turn.done["finish_reason"], "cancelled", "{}", turn.done);
    let started = Instant::now();
    let exited = loop {
        if let Some(status) = server.inner.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < PATIENCE, "the server did not exit:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited}: {}", server.log_text());

    let store = setup::open_store(&data).unwrap();
    let actor = store.login("quinn", &password_of("quinn")).unwrap().actor();
    let session: modelforge_core::SessionId = first.parse().unwrap();
    let stored = store.list_messages(&actor, session).unwrap();
    assert_eq!(stored.len(), 2, "the finished reply is stored");
    assert_eq!(stored[1].content, turn.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_accounts_sessions_and_memories_through_postgresql() {
    let url = std::env::var("MODELFORGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    // Migrated here; both replicas open it through the URL. Dropped (with its data) last.
    let scratch = PgStore::open_scratch(&url, options()).unwrap_or_else(|err| {
        panic!("PostgreSQL is required for this test but {url} is unusable: {err}. Start it or set MODELFORGE_TEST_POSTGRES_URL.")
    });
    let schema = scratch.schema().unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    let database_url = format!("{url}{separator}options=-csearch_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    let args = |name: &str| -> Vec<String> {
        let data = dir.path().join(name).display().to_string();
        let args = [
            "--data-dir",
            &data,
            "--database-url",
            &database_url,
            "--embedder",
            "none",
            "--ctx-size",
            "2048",
        ];
        args.iter().map(|s| s.to_string()).chain(["--model".into(), model_path()]).collect()
    };
    let env = [("MODELFORGE_JWT_SECRET", SECRET)];
    let (args_a, args_b) = (args("a"), args("b"));
    let (a, b) = tokio::join!(
        Process::start(&args_a, &env, dir.path().join("a.log")),
        Process::start(&args_b, &env, dir.path().join("b.log")),
    );
    let (a, b) = (&a.api, &b.api);

    let lina = token(&a.register("lina").await);
    assert_eq!(b.get("/api/auth/me", &lina).await.1["user"]["username"], "lina", "B accepts A's token");

    // One session, a turn on each replica: A's prompt holds B's turn.
    let session = b.session(&lina, json!({})).await;
    let on_b = b.chat(&lina, &session, "Hello! Tell me a fun fact about cats.", 12).await;
    let on_a = a.chat(&lina, &session, "Tell me another one.", 12).await;
    assert!(!on_a.text.trim().is_empty());
    assert_eq!(on_a.done["context"]["history_used"], 3, "B's question and reply, then A's: {}", on_a.done);
    assert!(on_a.done["usage"]["prompt_tokens"].as_u64() > on_b.done["usage"]["prompt_tokens"].as_u64());
    let expected = [
        json!("Hello! Tell me a fun fact about cats."),
        json!(on_b.text),
        json!("Tell me another one."),
        json!(on_a.text),
    ];
    for replica in [a, b] {
        let (messages, _) = replica.messages(&lina, &session).await;
        let contents: Vec<Value> = messages.iter().map(|m| m["content"].clone()).collect();
        assert_eq!(contents, expected);
    }

    // Learned on A, recalled on B (which had read Lina's memories before A learned).
    let told = a.session(&lina, json!({})).await;
    let learned = a.chat(&lina, &told, "My name is Lina and I live in Lyon.", 12).await;
    let changed = learned.done["memories_learned"].as_array().unwrap();
    assert!(changed.iter().any(|m| text(&m["content"]).contains("Lyon")), "{}", learned.done);
    let asked = b.session(&lina, json!({})).await;
    let recalled = b.chat(&lina, &asked, "Where do I live?", 12).await;
    let injected = recalled.done["memories_injected"].as_array().unwrap();
    assert!(injected.iter().any(|m| text(&m["content"]).contains("Lyon")), "{}", recalled.done);

    // Only the replica writing a reply can stop it, and the other one says so.
    let mut writing = a.start_chat(&lina, &told, COUNTING, 200).await;
    writing.piece().await;
    let stop = format!("/api/sessions/{told}/stop");
    let elsewhere = b.call(Method::POST, &stop, &lina, None).await;
    assert_error(&elsewhere, 409, "no_reply_in_progress");
    assert!(text(&elsewhere.1["error"]["message"]).contains("replica"), "{}", elsewhere.1);
    assert_eq!(a.call(Method::POST, &stop, &lina, None).await.0, 200);
    assert_eq!(writing.finish().await.done["finish_reason"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_pull_models_with_progress_and_remove_them() {
    use modelforge_testkit::hub_server::{HubServer, QUANTS_REPO};
    let hub = HubServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let hf_home = dir.path().join("hf").display().to_string();
    let args: Vec<String> =
        ["--data-dir", &data, "--model", &model_path(), "--embedder", "none"].map(String::from).to_vec();
    let env = [("HF_ENDPOINT", hub.url()), ("HF_HUB_OFFLINE", "0".into()), ("HF_HOME", hf_home)];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Process::start(&args, &env, dir.path().join("server.log")).await;
    let api = &server.api;
    let admin = token(&api.register("ada").await);
    let user = token(&api.register("bob").await);
    let reference = format!("{QUANTS_REPO}:Q8_0");

    let refused = api.post("/api/models/pull", &user, json!({ "ref": reference })).await;
    assert_error(&refused, 403, "forbidden");
    let bad = api.post("/api/models/pull", &admin, json!({ "ref": "not a reference!" })).await;
    assert_error(&bad, 400, "invalid_request");

    let request = api.request(Method::POST, "/api/models/pull", &admin).json(&json!({ "ref": reference }));
    let mut events = Events::open(request).await;
    let mut progress = 0;
    let done = loop {
        match events.next().await {
            Some((name, data)) if name == "progress" => {
                assert!(data["downloaded"].as_u64().unwrap() <= data["total"].as_u64().unwrap(), "{data}");
                progress += 1;
            }
            Some((name, data)) if name == "done" => break data,
            other => panic!("expected progress then done, got {other:?}"),
        }
    };
    assert!(progress > 0, "progress is reported");
    let name = text(&done["name"]).to_owned();
    let listed = api.get("/api/models", &user).await;
    let names: Vec<&str> = listed.1["data"].as_array().unwrap().iter().map(|m| text(&m["name"])).collect();
    assert!(names.contains(&name.as_str()), "{names:?} lists {name}");

    let request =
        api.request(Method::POST, "/api/models/pull", &admin).json(&json!({ "ref": "nobody/nothing-GGUF" }));
    match Events::open(request).await.next().await {
        Some((event, data)) if event == "error" => {
            assert!(text(&data["error"]["message"]).contains("nobody/nothing-GGUF"), "{data}")
        }
        other => panic!("expected an error event, got {other:?}"),
    }

    assert_error(&api.delete(&format!("/api/models/{name}"), &user).await, 403, "forbidden");
    let removed = api.delete(&format!("/api/models/{name}"), &admin).await;
    assert_eq!(removed.0, 200, "{:?}", removed.1);
    let listed = api.get("/api/models", &user).await;
    assert!(!listed.1["data"].as_array().unwrap().iter().any(|m| text(&m["name"]) == name), "removed");
}

#[test]
fn a_server_with_no_model_anywhere_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_modelforge-server"))
        .args(["--data-dir", dir.path().join("data").to_str().unwrap(), "--addr", "127.0.0.1:0"])
        .env_remove("MODELFORGE_DATABASE_URL")
        .env_remove("HF_HUB_CACHE")
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", &empty)
        .env("MODELFORGE_TEST_MODELS", &empty)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("--model") && lines[0].contains("modelforge pull"), "{stderr}");
}
