//! The library side of the tools: a chat turn through the core traits, and the HTTP server on
//! loopback, both with the real store and the real SmolLM2 model.

use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use modelforge_core::{GenerationParams, LoadOptions, LoadedModel, NewUser, Role, SessionStore, UserRole};
use modelforge_examples::server::{AppState, router};
use modelforge_examples::setup;
use modelforge_examples::turn::Turn;
use modelforge_memory::RuleExtractor;
use serde_json::{Value, json};

fn model() -> Arc<dyn LoadedModel> {
    static MODEL: OnceLock<Arc<dyn LoadedModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = modelforge_testkit::smollm2_gguf();
            let options = LoadOptions { context_length: Some(2048), ..LoadOptions::default() };
            setup::load_model(std::path::Path::new("."), path.to_str().unwrap(), &options).unwrap()
        })
        .clone()
}

fn store_with_user(dir: &std::path::Path) -> Arc<dyn SessionStore> {
    let store = setup::open_store(dir).unwrap();
    let new_user = NewUser {
        username: "lina".into(),
        password: "correct-horse-9".into(),
        email: None,
        role: UserRole::User,
    };
    store.create_user(&new_user).unwrap();
    store
}

#[test]
fn memories_from_one_session_are_in_the_next_sessions_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_user(dir.path());
    let actor = store.login("lina", "correct-horse-9").unwrap().actor();
    let model = model();
    let extractor = RuleExtractor::new();
    let params = GenerationParams { max_tokens: 24, ..GenerationParams::greedy() };
    let turn = Turn {
        store: store.as_ref(),
        model: model.as_ref(),
        extractor: &extractor,
        system_prompt: "Be brief.",
        params: &params,
        state_dir: None,
    };
    for statement in ["My name is Lina and I live in Lyon.", "我叫李娜，我住在上海。"] {
        let session = turn.new_session(&actor, statement).unwrap();
        turn.run(&actor, session.id, statement, &mut |_| ControlFlow::Continue(())).unwrap();
    }
    let fresh = turn.new_session(&actor, "Hi").unwrap();
    let outcome = turn.run(&actor, fresh.id, "Who am I?", &mut |_| ControlFlow::Continue(())).unwrap();
    let system = &outcome.prompt_messages[0];
    assert_eq!(system.role, Role::System);
    assert!(system.content.starts_with("Be brief."));
    // "I live in Lyon" was later replaced by "I live in Shanghai": one home, not two.
    for value in ["上海", "李娜"] {
        assert!(system.content.contains(value), "{value} missing from the system prompt: {}", system.content);
    }
    let memories = store.list_memories(&actor).unwrap();
    assert_eq!(memories.len(), 2, "name and home, each updated in place: {memories:?}");
    let history: Vec<_> = outcome.prompt_messages[1..].iter().map(|m| m.content.as_str()).collect();
    assert_eq!(history, ["Who am I?"], "a new session carries no other session's history");
}

async fn serve(store: Arc<dyn SessionStore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState { store, model: model(), model_id: "smollm2".into() };
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_logs_in_and_completes_chats() {
    let dir = tempfile::tempdir().unwrap();
    let base = serve(store_with_user(dir.path())).await;
    let http = reqwest::Client::new();

    let bad = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": "lina", "password": "nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let login: Value = http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"username": "lina", "password": "correct-horse-9"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();

    assert_eq!(http.get(format!("{base}/v1/models")).send().await.unwrap().status(), 401);
    let tampered = format!("{}x", token);
    assert_eq!(
        http.get(format!("{base}/v1/models")).bearer_auth(&tampered).send().await.unwrap().status(),
        401
    );
    let models: Value =
        http.get(format!("{base}/v1/models")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "smollm2");

    let request = json!({"messages": [{"role": "user", "content": "What is 2+2?"}], "temperature": 0, "max_tokens": 32});
    let reply: Value = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&request)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    assert!(!text.is_empty());
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    assert!(reply["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let mut streamed_request = request.clone();
    streamed_request["stream"] = json!(true);
    let body = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&streamed_request)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let streamed: String = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Value>(e).unwrap())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(streamed, text, "streaming gives the same greedy reply");

    let too_long = json!({"messages": [{"role": "user", "content": "word ".repeat(3000)}], "max_tokens": 16});
    let resp = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&too_long)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains("too many"), "{err}");
}
