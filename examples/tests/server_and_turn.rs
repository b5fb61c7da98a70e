//! The library side of the tools: a chat turn through the core traits, and the HTTP server on
//! loopback, both with the real store and the real SmolLM2 model.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;

use common::{Setup, model};
use modelforge_core::{
    Actor, ChatMessage, GenerationParams, LoadedModel, MemoryExtractor, MemoryKind, NewSession, NewUser,
    Role, SessionId, SessionStore, UserRole,
};
use modelforge_examples::setup;
use modelforge_memory::{ChatOptions, Conversation, LlmExtractor, MemoryBank, MemoryMode, SUMMARY_HEADER};
use serde_json::{Value, json};

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

/// A user in a fresh store, the shared model, and a conversation with memory (no embedder).
struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn SessionStore>,
    actor: Actor,
    model: Arc<dyn LoadedModel>,
    bank: Arc<MemoryBank>,
    chat: Conversation,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_user(dir.path());
    let actor = store.login("lina", "correct-horse-9").unwrap().actor();
    let bank = Arc::new(MemoryBank::new(store.clone(), None));
    let chat = Conversation::new(model(), store.clone(), store.clone(), Arc::clone(&bank))
        .with_options(ChatOptions::default().with_system_prompt("Be brief."));
    Fixture { _dir: dir, store, actor, model: model(), bank, chat }
}

impl Fixture {
    fn session(&self, temporary: bool) -> SessionId {
        self.store
            .create_session_with(&self.actor, &NewSession { temporary, ..NewSession::default() })
            .unwrap()
            .id
    }

    fn turn(&self, session: SessionId, text: &str, max_tokens: u32) -> modelforge_memory::TurnOutcome {
        let params = GenerationParams { max_tokens, ..GenerationParams::greedy() };
        self.chat.turn(&self.actor, session, text, &params, &mut quiet()).unwrap()
    }
}

fn quiet() -> impl FnMut(&str) -> ControlFlow<()> {
    |_| ControlFlow::Continue(())
}

#[test]
fn memories_from_one_session_are_in_the_next_sessions_prompt() {
    let f = fixture();
    let (store, actor) = (&f.store, &f.actor);
    for statement in ["My name is Lina and I live in Lyon.", "I moved to Shanghai. My wife is called Ana."] {
        let outcome = f.turn(f.session(false), statement, 24);
        assert_eq!(outcome.memory, MemoryMode::On);
        let learned = f.chat.learn(actor, &outcome).unwrap();
        assert!(!learned.changed.is_empty() && learned.failures.is_empty(), "{learned:?}");
    }
    let memories = store.list_memories(actor).unwrap();
    assert_eq!(memories.len(), 3, "name, home (updated in place) and wife: {memories:?}");

    let outcome = f.turn(f.session(false), "Where do I live?", 24);
    let system = &outcome.prompt[0];
    assert_eq!(system.role, Role::System);
    assert!(system.content.starts_with("Be brief."));
    assert!(system.content.contains("The user lives in Shanghai."), "{}", system.content);
    assert!(!system.content.contains("Lyon"), "{}", system.content);
    let home = memories.iter().find(|m| m.content.contains("Shanghai")).unwrap();
    assert!(outcome.context.memories_used.contains(&home.id), "{:?}", outcome.context);
    let history: Vec<_> = outcome.prompt[1..].iter().map(|m| m.content.as_str()).collect();
    assert_eq!(history, ["Where do I live?"], "a new session carries no other session's history");
}

#[test]
fn temporary_sessions_and_memory_off_neither_read_nor_write_memory() {
    let f = fixture();
    let (store, actor) = (&f.store, &f.actor);
    f.bank.add(actor, MemoryKind::Profile, "The user lives in Lyon.").unwrap();

    let said = "Where do I live? I like olives.";
    let outcome = f.turn(f.session(true), said, 8);
    assert_eq!(outcome.memory, MemoryMode::Temporary);
    assert!(outcome.context.memories_used.is_empty());
    assert!(!outcome.prompt[0].content.contains("Lyon"));
    assert!(f.chat.learn(actor, &outcome).unwrap().changed.is_empty());

    store.set_memory_enabled(actor, actor.user_id, false).unwrap();
    let normal = f.session(false);
    let outcome = f.turn(normal, said, 8);
    assert_eq!(outcome.memory, MemoryMode::Off);
    assert!(outcome.context.memories_used.is_empty());
    assert!(f.chat.learn(actor, &outcome).unwrap().changed.is_empty());
    assert_eq!(store.list_memories(actor).unwrap().len(), 1, "nothing learned");

    store.set_memory_enabled(actor, actor.user_id, true).unwrap();
    let outcome = f.turn(normal, said, 8);
    assert_eq!(outcome.memory, MemoryMode::On);
    assert_eq!(outcome.context.memories_used.len(), 1);
    assert_eq!(f.chat.learn(actor, &outcome).unwrap().changed.len(), 1, "likes olives");
}

#[test]
fn the_model_extracts_facts_as_valid_json_under_its_grammar() {
    let f = fixture();
    let actor = &f.actor;
    let llm = LlmExtractor::new(Arc::clone(&f.model));
    let extractors: [&dyn MemoryExtractor; 1] = [&llm];
    let mut stored = 0;
    for said in [
        "I'm a nurse and I live in Lyon.",
        "I am allergic to peanuts.",
        "What is the capital of France?",
        "My daughter Emma loves painting and I drive a blue Volvo.",
        "我是一名护士，我住在上海。",
    ] {
        let learned = f.bank.learn(actor, None, &[ChatMessage::user(said)], &extractors).unwrap();
        // The grammar makes every answer parse: a failure here is an invalid answer.
        assert!(learned.failures.is_empty(), "{said}: {:?}", learned.failures);
        for memory in &learned.changed {
            assert!(
                memory.content.starts_with("The user ") || memory.content.starts_with("用户"),
                "{memory:?}"
            );
        }
        stored += learned.changed.len();
    }
    assert!(stored > 0, "a 135M model still finds something in five messages");
}

#[test]
fn older_turns_are_summarized_once_and_the_summary_is_reused() {
    let f = fixture();
    let (store, actor) = (&f.store, &f.actor);
    let session = store.create_session(actor, "trip").unwrap();
    // About 2,600 tokens of earlier conversation: more than the 2,048-token window.
    for i in 0..40 {
        let question = format!(
            "Day {i} of my trip to Kyoto: which temple should I visit, and how long does it take to walk there from the station?"
        );
        let answer = format!(
            "On day {i}, visit a quiet temple near the river; the walk from the station takes about twenty minutes along the canal."
        );
        store.append_message(actor, session.id, &ChatMessage::user(question), None).unwrap();
        store.append_message(actor, session.id, &ChatMessage::assistant(answer), None).unwrap();
    }
    let first = f.turn(session.id, "Summarize my plan.", 16);
    assert!(first.context.history_summarized > 0, "{:?}", first.context);
    assert_eq!(first.context.history_left_out, 0, "summarized, not dropped: {:?}", first.context);
    assert!(first.prompt[0].content.contains(SUMMARY_HEADER));
    let summary = store.session_summary(actor, session.id).unwrap().expect("the summary is stored");
    assert_eq!(summary.covered_messages as usize, first.context.history_summarized);

    let second = f.turn(session.id, "And on the last day?", 16);
    let again = store.session_summary(actor, session.id).unwrap().unwrap();
    assert_eq!(again, summary, "the next turn fits with the same summary: not remade");
    assert_eq!(second.context.history_summarized, first.context.history_summarized);
}

/// The app over `store` (with no system prompt), kept running with its directory until the
/// test ends; its base URL.
async fn serve(store: Arc<dyn SessionStore>) -> (String, tempfile::TempDir) {
    let setup = Setup { store: Some(store), system_prompt: None, ..Setup::default() };
    let server = common::serve_with(setup).await;
    (server.base, server.dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_logs_in_and_completes_chats() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _server_dir) = serve(store_with_user(dir.path())).await;
    let http = reqwest::Client::new();

    let bad = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "lina", "password": "nope-nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
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

async fn token(http: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let login: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().expect("logged in").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_manages_each_users_own_memories() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_user(dir.path());
    let other = NewUser {
        username: "omar".into(),
        password: "another-pass-7".into(),
        email: None,
        role: UserRole::User,
    };
    store.create_user(&other).unwrap();
    let (base, _server_dir) = serve(store).await;
    let http = reqwest::Client::new();
    let lina = token(&http, &base, "lina", "correct-horse-9").await;
    let omar = token(&http, &base, "omar", "another-pass-7").await;

    assert_eq!(http.get(format!("{base}/api/memories")).send().await.unwrap().status(), 401);
    let added = http
        .post(format!("{base}/api/memories"))
        .bearer_auth(&lina)
        .json(&json!({"content": "The user is allergic to peanuts.", "kind": "profile"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.unwrap();
    let id = added["id"].as_str().unwrap().to_owned();
    let blank = http
        .post(format!("{base}/api/memories"))
        .bearer_auth(&lina)
        .json(&json!({"content": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(blank.status(), 400);

    let search = |who: String, q: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let found: Value = http
                .get(format!("{base}/api/memories/search"))
                .query(&[("q", q)])
                .bearer_auth(who)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            found["data"].as_array().unwrap().clone()
        }
    };
    let hits = search(lina.clone(), "Am I allergic to anything?").await;
    assert_eq!(hits[0]["memory"]["id"], id.as_str());
    assert!(search(omar.clone(), "Am I allergic to anything?").await.is_empty(), "scoped to the caller");

    // Another user's memory id is not found, for editing and deleting alike.
    let url = format!("{base}/api/memories/{id}");
    let edit = json!({"content": "The user is allergic to cats."});
    assert_eq!(http.patch(&url).bearer_auth(&omar).json(&edit).send().await.unwrap().status(), 404);
    assert_eq!(http.delete(&url).bearer_auth(&omar).send().await.unwrap().status(), 404);
    let edited: Value =
        http.patch(&url).bearer_auth(&lina).json(&edit).send().await.unwrap().json().await.unwrap();
    assert_eq!(edited["content"], "The user is allergic to cats.");

    let off: Value = http
        .put(format!("{base}/api/memories/settings"))
        .bearer_auth(&lina)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(off["enabled"], false);

    assert_eq!(http.delete(&url).bearer_auth(&lina).send().await.unwrap().status(), 204);
    let list: Value = http
        .get(format!("{base}/api/memories"))
        .bearer_auth(&lina)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["data"].as_array().unwrap().is_empty());
}
