//! Bad input: over-long values, NUL characters, invalid UTF-8, SQL metacharacters and ids of
//! other users. Each is a clear error, and nothing changes.

use modelforge_core::{
    ChatMessage, MemoryDetails, MemoryId, MemoryKind, MemoryUpdate, MessageId, NewMemory, NewUser, Page,
    SessionId, SessionQuery, StoreError,
};
use modelforge_store::limits::{EMBEDDING_MAX_DIMS, MEMORY_MAX_BYTES, MESSAGE_MAX_BYTES, TITLE_MAX_CHARS};

use crate::common::{Factory, TestStore, new_user};

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: &str) {
    match result {
        Err(StoreError::InvalidInput { field, .. }) => assert_eq!(field, expected),
        other => panic!("expected invalid {expected}, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { what: found, .. }) => assert_eq!(found, what),
        other => panic!("expected {what} not found, got {other:?}"),
    }
}

/// Row counts of every table, to show that a refused call wrote nothing.
fn snapshot(t: &TestStore) -> Vec<i64> {
    ["users", "sessions", "messages", "memories", "refresh_tokens"]
        .iter()
        .map(|table| t.count_rows(table))
        .collect()
}

fn fact(content: &str) -> NewMemory {
    NewMemory { kind: MemoryKind::Fact, content: content.into(), source_session_id: None }
}

pub fn over_long_values_are_rejected_and_nothing_is_stored(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let too_long_title = "t".repeat(TITLE_MAX_CHARS + 1);
    assert_invalid(t.store.create_session(&lina, &too_long_title), "title");
    assert_eq!(t.count_rows("sessions"), 0);

    let session = t.store.create_session(&lina, "ok").unwrap();
    let before = snapshot(&t);
    assert_invalid(t.store.rename_session(&lina, session.id, &too_long_title), "title");
    assert_eq!(t.store.get_session(&lina, session.id).unwrap(), session, "the failed rename changed nothing");
    let huge = ChatMessage::user("m".repeat(MESSAGE_MAX_BYTES + 1));
    assert_invalid(t.store.append_message(&lina, session.id, &huge, None), "message content");
    assert_eq!(t.store.get_session(&lina, session.id).unwrap(), session);
    assert_invalid(t.store.add_memory(&lina, &fact(&"m".repeat(MEMORY_MAX_BYTES + 1))), "memory content");
    assert_invalid(t.store.add_memory(&lina, &fact(" \n ")), "memory content");
    let big = MemoryDetails { confidence: 1.0, embedding: Some(vec![0.5; EMBEDDING_MAX_DIMS + 1]) };
    assert_invalid(t.store.add_memory_record(&lina, &fact("ok"), &big), "embedding");
    let nan = MemoryDetails { confidence: 1.0, embedding: Some(vec![f32::NAN]) };
    assert_invalid(t.store.add_memory_record(&lina, &fact("ok"), &nan), "embedding");
    let unsure = MemoryDetails { confidence: 1.5, embedding: None };
    assert_invalid(t.store.add_memory_record(&lina, &fact("ok"), &unsure), "confidence");
    let long_search = SessionQuery { search: Some("s".repeat(201)), ..SessionQuery::default() };
    assert_invalid(t.store.list_sessions(&lina, &long_search), "search");
    assert_invalid(
        t.store.list_sessions(&lina, &SessionQuery { page: Page::first(0), ..SessionQuery::default() }),
        "limit",
    );
    assert_invalid(t.store.list_messages_page(&lina, session.id, Page::first(Page::MAX_LIMIT + 1)), "limit");
    assert_invalid(t.store.create_user(&new_user("newbie", &"p".repeat(2000))), "password");
    assert_eq!(snapshot(&t), before);
}

pub fn sql_metacharacters_are_stored_verbatim_in_every_text_field(new_store: Factory) {
    let t = new_store();
    let nasty = "'; DROP TABLE users; -- \" \\ %_ ` $1 ? :name Robert'); DELETE FROM sessions;-- 你好 🎉";
    let password = format!("pw {nasty}");
    let email = "o'brien+%_\\\"x\"@example.org";
    let user = t
        .store
        .create_user(&NewUser { email: Some(email.into()), ..new_user("o.brien-_x", &password) })
        .unwrap();
    assert_eq!(user.email.as_deref(), Some(email));
    let lina = t.store.login("O.BRIEN-_X", &password).unwrap().actor();
    assert_invalid(t.store.create_user(&new_user("x'; --", "long enough")), "username");
    assert!(matches!(t.store.login("x' OR '1'='1", "' OR '1'='1"), Err(StoreError::InvalidCredentials)));

    let session = t.store.create_session(&lina, nasty).unwrap();
    let message = t.store.append_message(&lina, session.id, &ChatMessage::user(nasty), None).unwrap();
    let new = NewMemory {
        kind: MemoryKind::Preference,
        content: nasty.into(),
        source_session_id: Some(session.id),
    };
    let memory = t.store.add_memory(&lina, &new).unwrap();
    let renamed = t.store.rename_session(&lina, session.id, &format!("{nasty}!")).unwrap();

    assert_eq!(renamed.title, format!("{nasty}!"));
    assert_eq!(t.store.list_messages(&lina, session.id).unwrap(), vec![message]);
    assert_eq!(t.store.list_memories(&lina).unwrap(), vec![memory]);
    let query = SessionQuery { search: Some(nasty.into()), ..SessionQuery::default() };
    assert_eq!(t.store.list_sessions(&lina, &query).unwrap().sessions.len(), 1);
    assert_eq!(t.count_rows("users"), 1, "the users table is still there");
    assert_eq!(t.count_rows("sessions"), 1);
}

pub fn nul_characters_are_refused_everywhere(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "ok").unwrap();
    let memory = t.store.add_memory(&lina, &fact("kept")).unwrap();
    let before = snapshot(&t);
    assert_invalid(t.store.create_session(&lina, "a\0b"), "title");
    assert_invalid(t.store.rename_session(&lina, session.id, "a\0b"), "title");
    assert_invalid(
        t.store.append_message(&lina, session.id, &ChatMessage::user("a\0b"), None),
        "message content",
    );
    assert_invalid(t.store.add_memory(&lina, &fact("a\0b")), "memory content");
    let change = MemoryUpdate { content: Some("a\0b".into()), ..MemoryUpdate::default() };
    assert_invalid(t.store.update_memory_record(&lina, memory.id, &change), "memory content");
    let query = SessionQuery { search: Some("a\0b".into()), ..SessionQuery::default() };
    assert_invalid(t.store.list_sessions(&lina, &query), "search");
    assert_eq!(snapshot(&t), before);
    assert_eq!(t.store.list_memories(&lina).unwrap(), vec![memory]);
}

pub fn bad_imports_change_nothing(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "source").unwrap();
    t.store.append_message(&lina, session.id, &ChatMessage::user("hello"), None).unwrap();
    let good = t.store.export_json(&lina).unwrap();
    let before = snapshot(&t);

    let mut not_utf8 = good.clone();
    let at = not_utf8.iter().position(|&b| b == b'h').unwrap();
    not_utf8[at] = 0xff;
    match t.store.import_json(&lina, &not_utf8) {
        Err(StoreError::InvalidInput { field: "import", reason }) => {
            assert!(reason.contains("UTF-8"), "{reason}")
        }
        other => panic!("expected invalid UTF-8 to be refused, got {other:?}"),
    }
    assert_invalid(t.store.import_json(&lina, &good[..good.len() / 2]), "import");
    assert_invalid(t.store.import_json(&lina, b"{\"format_version\": 1}"), "import");
    assert_invalid(t.store.import_json(&lina, b""), "import");

    // One bad message deep inside refuses the whole import.
    let mut export = t.store.export_user_data(&lina).unwrap();
    let mut second = export.sessions[0].clone();
    second.messages[0].content = "x".repeat(MESSAGE_MAX_BYTES + 1);
    export.sessions.push(second);
    assert_invalid(t.store.import_user_data(&lina, &export), "message content");
    export.sessions.pop();
    export.format_version = 99;
    assert_invalid(t.store.import_user_data(&lina, &export), "import");
    assert_eq!(snapshot(&t), before);
}

pub fn another_users_session_behaves_like_a_missing_one(new_store: Factory) {
    let t = new_store();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let bobs = t.store.create_session(&bob, "bob's secrets").unwrap();
    let bobs_message =
        t.store.append_message(&bob, bobs.id, &ChatMessage::user("my pin is 1234"), None).unwrap();
    let before = t.store.get_session(&bob, bobs.id).unwrap();
    let rows = snapshot(&t);
    let missing = SessionId::new();

    for id in [bobs.id, missing] {
        assert_not_found(t.store.get_session(&alice, id), "session");
        assert_not_found(t.store.rename_session(&alice, id, "mine now"), "session");
        assert_not_found(t.store.set_session_pinned(&alice, id, true), "session");
        assert_not_found(t.store.set_session_archived(&alice, id, true), "session");
        assert_not_found(t.store.append_message(&alice, id, &ChatMessage::user("hi"), None), "session");
        assert_not_found(t.store.list_messages(&alice, id), "session");
        assert_not_found(t.store.list_messages_page(&alice, id, Page::default()), "session");
        assert_not_found(t.store.delete_messages_after(&alice, id, bobs_message.id), "session");
        assert_not_found(t.store.delete_session(&alice, id), "session");
    }
    // Same error text for both, so the id's existence is not revealed.
    let foreign = t.store.get_session(&alice, bobs.id).unwrap_err().to_string();
    let absent = t.store.get_session(&alice, missing).unwrap_err().to_string();
    assert_eq!(foreign.replace(&bobs.id.to_string(), "ID"), absent.replace(&missing.to_string(), "ID"));

    // Alice's own session with bob's message id: not found either.
    let alices = t.store.create_session(&alice, "mine").unwrap();
    assert_not_found(t.store.delete_messages_after(&alice, alices.id, bobs_message.id), "message");
    assert_not_found(t.store.delete_messages_after(&alice, alices.id, MessageId::new()), "message");
    t.store.delete_session(&alice, alices.id).unwrap();

    let search = SessionQuery { search: Some("pin".into()), ..SessionQuery::default() };
    assert!(t.store.list_sessions(&alice, &search).unwrap().sessions.is_empty());
    assert!(t.store.list_sessions(&alice, &SessionQuery::default()).unwrap().sessions.is_empty());
    assert_eq!(t.store.get_session(&bob, bobs.id).unwrap(), before, "bob's session is unchanged");
    assert_eq!(t.store.list_messages(&bob, bobs.id).unwrap(), vec![bobs_message]);
    assert_eq!(snapshot(&t), rows, "alice's calls wrote nothing");
}

pub fn memories_are_scoped_to_their_owner(new_store: Factory) {
    let t = new_store();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let alices = t.store.add_memory(&alice, &fact("Alice likes tea.")).unwrap();
    let bobs = t.store.add_memory(&bob, &fact("Bob likes coffee.")).unwrap();
    assert_eq!(alices.user_id, alice.user_id);
    assert_eq!(t.store.list_memories(&alice).unwrap(), vec![alices.clone()]);

    for id in [bobs.id, MemoryId::new()] {
        assert_not_found(t.store.update_memory(&alice, id, "Bob likes tea."), "memory");
        let change = MemoryUpdate { confidence: Some(0.1), ..MemoryUpdate::default() };
        assert_not_found(t.store.update_memory_record(&alice, id, &change), "memory");
        assert_not_found(t.store.delete_memory(&alice, id), "memory");
    }
    assert_eq!(t.store.list_memories(&bob).unwrap(), vec![bobs], "bob's memory is unchanged");

    let bobs_session = t.store.create_session(&bob, "bob's").unwrap();
    let citing = NewMemory { source_session_id: Some(bobs_session.id), ..fact("stolen") };
    assert_not_found(t.store.add_memory(&alice, &citing), "session");
    assert_eq!(t.count_rows("memories"), 2);
}

pub fn exports_hold_only_the_actors_data(new_store: Factory) {
    let t = new_store();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    t.store.create_session(&bob, "bob's").unwrap();
    t.store.add_memory(&bob, &fact("Bob likes coffee.")).unwrap();
    let export = t.store.export_user_data(&alice).unwrap();
    assert_eq!(export.user.id, alice.user_id);
    assert!(export.sessions.is_empty() && export.memories.is_empty());
}

pub fn deleting_an_account_removes_all_its_data(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    for actor in [admin, lina] {
        let session = t.store.create_session(&actor, "s").unwrap();
        t.store.append_message(&actor, session.id, &ChatMessage::user("m"), None).unwrap();
        t.store.add_memory(&actor, &NewMemory { source_session_id: Some(session.id), ..fact("f") }).unwrap();
        t.store.issue_tokens(&actor).unwrap();
    }
    let token = t.store.issue_token(&lina).unwrap();
    t.store.delete_user(&lina, lina.user_id).unwrap();
    assert_eq!(snapshot(&t), [1, 1, 1, 1, 1], "only the admin's rows are left");
    assert!(matches!(t.store.verify_token(&token), Err(StoreError::InvalidToken { .. })));
    assert_not_found(t.store.current_user(&lina), "user");
    assert_eq!(t.store.list_sessions(&admin, &SessionQuery::default()).unwrap().sessions.len(), 1);
}
