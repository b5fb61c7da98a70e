//! The chat turn's logic with the test doubles (an echo model, an in-memory store): order and
//! pairing under concurrency, sessions running side by side, stopping, regenerate and edit,
//! memory in and out, and what a failed turn leaves behind. The real model and store run the
//! same code in `examples/tests/server_and_turn.rs`.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modelforge_core::{
    Actor, ChatStore, FinishReason, GenerationParams, MemoryKind, MemoryStore, Message, NewSession, NewUser,
    Role, SessionId, UserRole, UserStore,
};
use modelforge_memory::{ChatError, ChatOptions, Conversation, DirStateCache, MemoryBank, MemoryMode};
use modelforge_testkit::echo_model::EchoModel;
use modelforge_testkit::memory_store::InMemoryStore;
use modelforge_testkit::prompt_only::PromptOnly;

struct Fixture {
    store: Arc<InMemoryStore>,
    model: Arc<EchoModel>,
    chat: Arc<Conversation>,
    lina: Actor,
}

fn fixture_with(model: EchoModel) -> Fixture {
    let store = Arc::new(InMemoryStore::new());
    let lina = user(&store, "lina");
    let model = Arc::new(model);
    let bank = Arc::new(MemoryBank::new(store.clone(), None));
    let chat = Arc::new(Conversation::new(model.clone(), store.clone(), store.clone(), bank));
    Fixture { store, model, chat, lina }
}

fn fixture() -> Fixture {
    fixture_with(EchoModel::new())
}

fn user(store: &InMemoryStore, name: &str) -> Actor {
    let new = NewUser {
        username: name.into(),
        password: "a long enough password".into(),
        email: None,
        role: UserRole::User,
    };
    store.create_user(&new).unwrap().actor()
}

fn params() -> GenerationParams {
    GenerationParams { max_tokens: 64, ..GenerationParams::greedy() }
}

fn quiet() -> impl FnMut(&str) -> ControlFlow<()> {
    |_| ControlFlow::Continue(())
}

impl Fixture {
    fn session(&self) -> SessionId {
        self.store.create_session_with(&self.lina, &NewSession::default()).unwrap().id
    }

    fn say(&self, session: SessionId, text: &str) -> modelforge_memory::TurnOutcome {
        self.chat.turn(&self.lina, session, text, &params(), &mut quiet()).unwrap()
    }

    fn messages(&self, session: SessionId) -> Vec<Message> {
        self.store.list_messages(&self.lina, session).unwrap()
    }
}

/// Waits, at most 10 seconds, until `done` holds.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every message alternates user, assistant, and each reply answers the message before it.
fn assert_paired(messages: &[Message]) {
    for pair in messages.chunks(2) {
        assert_eq!(pair.len(), 2, "an unanswered message: {messages:#?}");
        assert_eq!((pair[0].role, pair[1].role), (Role::User, Role::Assistant), "{messages:#?}");
        assert!(pair[1].content.contains(&pair[0].content), "{:?} does not answer {:?}", pair[1], pair[0]);
    }
}

#[test]
fn concurrent_turns_on_one_session_keep_order_and_pairing() {
    let f = fixture_with(EchoModel::new().with_piece_delay(Duration::from_millis(2)));
    let session = f.session();
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let f = &f;
            scope.spawn(move || {
                for turn in 0..3 {
                    f.say(session, &format!("thread {thread} turn {turn}"));
                }
            });
        }
    });
    let messages = f.messages(session);
    assert_eq!(messages.len(), 24);
    assert_paired(&messages);
    assert_eq!(f.model.max_generations_in_flight(), 1, "turns of one session never overlap");
}

#[test]
fn turns_of_different_sessions_run_at_the_same_time() {
    let f = fixture();
    let (a, b) = (f.session(), f.session());
    let held = f.model.hold();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| f.say(a, "first session"));
        let second = scope.spawn(|| f.say(b, "second session"));
        // Both generations are inside the model at once: neither waits for the other.
        wait_for("two generations in flight", || f.model.generations_in_flight() == 2);
        drop(held);
        first.join().unwrap();
        second.join().unwrap();
    });
    assert_paired(&f.messages(a));
    assert_paired(&f.messages(b));
}

#[test]
fn a_second_turn_on_a_busy_session_waits_and_sees_the_first() {
    let f = fixture();
    let session = f.session();
    let held = f.model.hold();
    std::thread::scope(|scope| {
        let first = scope.spawn(|| f.say(session, "first question"));
        wait_for("the first generation", || f.model.generations_in_flight() == 1);
        let second = scope.spawn(|| f.say(session, "second question"));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(f.model.generations_in_flight(), 1, "the second turn waits for the first");
        drop(held);
        first.join().unwrap();
        let second = second.join().unwrap();
        let history: Vec<&str> = second.prompt.iter().map(|m| m.content.as_str()).collect();
        assert!(history.contains(&"first question"), "the second turn sees the first: {history:?}");
    });
    assert_paired(&f.messages(session));
}

#[test]
fn a_stopped_turn_keeps_what_was_shown_and_one_stopped_early_keeps_nothing() {
    let f = fixture();
    let session = f.session();
    let mut pieces = 0;
    let outcome = f
        .chat
        .turn(&f.lina, session, "one two three four five six", &params(), &mut |_| {
            pieces += 1;
            if pieces == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!(outcome.generation.finish_reason, FinishReason::Cancelled);
    let messages = f.messages(session);
    assert_eq!(messages.len(), 2, "the message and the partial reply");
    assert_eq!(messages[1].content, outcome.generation.text);
    assert_eq!(Some(&messages[1]), outcome.reply.as_ref());

    // Stopped while the prompt was still being read: no word was shown, nothing is kept.
    let stopped = PromptOnly::new(Arc::new(EchoModel::new()), "", FinishReason::Cancelled);
    let stopped_early = f.chat.for_model(Arc::new(stopped));
    let outcome = stopped_early.turn(&f.lina, session, "never answered", &params(), &mut quiet()).unwrap();
    assert_eq!(outcome.generation.finish_reason, FinishReason::Cancelled);
    assert!(outcome.user_message.is_none() && outcome.reply.is_none(), "{outcome:?}");
    assert_eq!(f.messages(session).len(), 2, "nothing half-written is stored");
    assert!(f.chat.learn(&f.lina, &outcome).unwrap().changed.is_empty());
}

#[test]
fn stop_ends_the_running_turn_of_its_owner_only() {
    let f = fixture();
    let omar = user(&f.store, "omar");
    let session = f.session();
    assert!(!f.chat.stop(&f.lina, session), "nothing runs yet");
    let held = f.model.hold();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| f.say(session, "a long answer please"));
        wait_for("the generation", || f.model.generations_in_flight() == 1);
        assert!(!f.chat.stop(&omar, session), "another user cannot stop it");
        assert!(f.chat.stop(&f.lina, session));
        drop(held);
        let outcome = running.join().unwrap();
        assert_eq!(outcome.generation.finish_reason, FinishReason::Cancelled);
    });
    assert!(!f.chat.stop(&f.lina, session), "the turn is over");
}

#[test]
fn regenerate_replaces_the_last_reply_and_edit_drops_what_followed() {
    let f = fixture();
    let session = f.session();
    f.say(session, "first question");
    f.say(session, "second question");
    let before = f.messages(session);

    let again = f.chat.regenerate(&f.lina, session, &params(), &mut quiet()).unwrap();
    let after = f.messages(session);
    assert_eq!(after.len(), 4);
    assert_eq!(after[..3], before[..3], "only the last reply changes");
    assert_ne!(after[3].id, before[3].id);
    assert_eq!(Some(&after[3]), again.reply.as_ref());
    assert_eq!(again.user_message.as_ref(), Some(&before[2]), "the same question, answered again");

    let edited =
        f.chat.edit(&f.lina, session, before[2].id, "a better second question", &params(), &mut quiet());
    edited.unwrap();
    let after = f.messages(session);
    assert_eq!(after.len(), 4);
    assert_eq!(after[..2], before[..2]);
    assert_eq!(after[2].content, "a better second question");
    assert_paired(&after);

    f.chat.edit(&f.lina, session, after[0].id, "start over", &params(), &mut quiet()).unwrap();
    let after = f.messages(session);
    assert_eq!(after.len(), 2, "editing the first message restarts the conversation");
    assert_eq!(after[0].content, "start over");
    assert_paired(&after);

    let err = f.chat.edit(&f.lina, session, after[1].id, "not mine", &params(), &mut quiet()).unwrap_err();
    assert!(matches!(err, ChatError::NotAUserMessage { .. }), "{err}");
    let empty = f.session();
    let err = f.chat.regenerate(&f.lina, empty, &params(), &mut quiet()).unwrap_err();
    assert!(matches!(err, ChatError::NothingToRegenerate { .. }), "{err}");
}

#[test]
fn another_users_session_is_not_found_and_untouched() {
    let f = fixture();
    let omar = user(&f.store, "omar");
    let session = f.session();
    f.say(session, "mine");
    let err = f.chat.turn(&omar, session, "hijack", &params(), &mut quiet()).unwrap_err();
    assert!(matches!(err, ChatError::Store(modelforge_core::StoreError::NotFound { .. })), "{err}");
    let err = f.chat.regenerate(&omar, session, &params(), &mut quiet()).unwrap_err();
    assert!(matches!(err, ChatError::Store(modelforge_core::StoreError::NotFound { .. })), "{err}");
    assert_eq!(f.messages(session).len(), 2);
}

#[test]
fn a_message_beyond_the_context_is_a_clear_error_and_stores_nothing() {
    let f = fixture_with(EchoModel::new().with_context_length(256));
    let session = f.session();
    let err = f.chat.turn(&f.lina, session, &"word ".repeat(400), &params(), &mut quiet()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("192") && text.contains("tokens"), "names the numbers: {text}");
    assert!(f.messages(session).is_empty());
}

#[test]
fn what_keeps_the_user_safe_reaches_an_unrelated_question_in_a_later_session() {
    let f = fixture();
    let first = f.session();
    let outcome = f.say(first, "I'm lactose intolerant, by the way.");
    let learned = f.chat.learn(&f.lina, &outcome).unwrap();
    assert_eq!(learned.changed.len(), 1, "{learned:?}");

    let later = f.session();
    let outcome = f.say(later, "What should I cook tonight?");
    assert_eq!(outcome.memory, MemoryMode::On);
    assert!(outcome.memories.iter().any(|m| m.content.contains("lactose")), "{:?}", outcome.memories);
    assert!(outcome.prompt[0].content.contains("lactose"), "{}", outcome.prompt[0].content);
    assert_eq!(outcome.context.memories_used.len(), outcome.memories.len());

    // The session it was learned in does not repeat it: its history already says it.
    let same = f.say(first, "What should I cook tonight?");
    assert!(same.memories.is_empty(), "{:?}", same.memories);
}

#[test]
fn temporary_sessions_and_memory_off_neither_read_nor_write() {
    let f = fixture();
    f.chat.memory().add(&f.lina, MemoryKind::Profile, "The user lives in Lyon.").unwrap();
    let temporary = f
        .store
        .create_session_with(&f.lina, &NewSession { temporary: true, ..NewSession::default() })
        .unwrap();
    let outcome = f.say(temporary.id, "Where do I live? I like olives.");
    assert_eq!(outcome.memory, MemoryMode::Temporary);
    assert!(outcome.memories.is_empty() && !outcome.prompt[0].content.contains("Lyon"));
    assert!(f.chat.learn(&f.lina, &outcome).unwrap().changed.is_empty());

    f.store.set_memory_enabled(&f.lina, f.lina.user_id, false).unwrap();
    let outcome = f.say(f.session(), "Where do I live? I like olives.");
    assert_eq!(outcome.memory, MemoryMode::Off);
    assert!(outcome.memories.is_empty());
    assert!(f.chat.learn(&f.lina, &outcome).unwrap().changed.is_empty());

    let always = f.chat.for_model(f.model.clone()).with_options(ChatOptions::default().with_temporary(true));
    f.store.set_memory_enabled(&f.lina, f.lina.user_id, true).unwrap();
    let outcome = always.turn(&f.lina, f.session(), "Where do I live?", &params(), &mut quiet()).unwrap();
    assert_eq!(outcome.memory, MemoryMode::Temporary);
    assert_eq!(f.store.list_memories(&f.lina).unwrap().len(), 1, "nothing learned");
}

#[test]
fn older_turns_are_summarized_once_and_the_summary_is_reused() {
    let f = fixture_with(EchoModel::new().with_context_length(512));
    let session = f.session();
    for i in 0..30 {
        f.say(session, &format!("day {i} of the trip: which temple should I visit near the river station"));
    }
    let first = f.say(session, "Summarize my plan.");
    assert!(first.context.history_summarized > 0, "{:?}", first.context);
    assert_eq!(first.context.history_left_out, 0, "summarized, not dropped: {:?}", first.context);
    let summary = f.store.session_summary(&f.lina, session).unwrap().expect("stored");
    assert_eq!(summary.covered_messages as usize, first.context.history_summarized);

    let second = f.say(session, "And on the last day?");
    assert_eq!(f.store.session_summary(&f.lina, session).unwrap(), Some(summary), "not remade");
    assert_eq!(second.context.history_summarized, first.context.history_summarized);
}

#[test]
fn a_saved_state_lets_a_new_process_skip_the_conversation_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(InMemoryStore::new());
    let lina = user(&store, "lina");
    let session = store.create_session(&lina, "").unwrap().id;
    let chat_with = |model: Arc<EchoModel>| {
        let bank = Arc::new(MemoryBank::new(store.clone(), None));
        Conversation::new(model, store.clone(), store.clone(), bank)
            .with_state_cache(Arc::new(DirStateCache::new(dir.path())))
    };
    let first = chat_with(Arc::new(EchoModel::new()));
    first.turn(&lina, session, "hello there", &params(), &mut quiet()).unwrap();
    // A new model instance, as in the next run of the CLI.
    let second = chat_with(Arc::new(EchoModel::new()));
    let outcome = second.turn(&lina, session, "and again", &params(), &mut quiet()).unwrap();
    assert!(outcome.generation.usage.cached_tokens > 0, "{:?}", outcome.generation.usage);
    second.forget_state(session);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
