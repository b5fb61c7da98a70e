//! Sessions, messages and memories: ordering, limits, persistence and deletion.
#![cfg(feature = "sqlite")]

mod common;

use std::sync::Arc;

use common::{TestStore, open_at};
use modelforge_core::{ChatMessage, MemoryKind, NewMemory, Role, SessionStore, StoreError};
use modelforge_store::limits::{MEMORY_MAX_BYTES, MESSAGE_MAX_BYTES, TITLE_MAX_CHARS};

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: &str) {
    match result {
        Err(StoreError::InvalidInput { field, .. }) => assert_eq!(field, expected),
        other => panic!("expected invalid {expected}, got {other:?}"),
    }
}

#[test]
fn sessions_and_messages_survive_a_restart() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "Trip").unwrap();
    t.store.append_message(&lina, session.id, &ChatMessage::system("Be brief.")).unwrap();
    t.store.append_message(&lina, session.id, &ChatMessage::user("Hello")).unwrap();
    t.store.append_message(&lina, session.id, &ChatMessage::assistant("Hi!")).unwrap();
    let session = t.store.get_session(&lina, session.id).unwrap();
    let messages = t.store.list_messages(&lina, session.id).unwrap();
    let token = t.store.issue_token(&lina).unwrap();

    let TestStore { store, dir } = t;
    drop(store);
    let reopened = open_at(&common::db_path(dir.path()));

    assert_eq!(reopened.verify_token(&token).unwrap(), lina, "the same secret keeps tokens valid");
    assert_eq!(reopened.get_session(&lina, session.id).unwrap(), session);
    assert_eq!(reopened.list_messages(&lina, session.id).unwrap(), messages);
    let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::System, Role::User, Role::Assistant]);
    assert!(reopened.login("lina", &common::password_of("lina")).is_ok());
}

#[test]
fn messages_keep_insertion_order_within_one_millisecond() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "burst").unwrap();
    let sent: Vec<String> = (0..200).map(|i| format!("message {i}")).collect();
    for content in &sent {
        t.store.append_message(&lina, session.id, &ChatMessage::user(content.clone())).unwrap();
    }
    let listed = t.store.list_messages(&lina, session.id).unwrap();
    let contents: Vec<&str> = listed.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, sent.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(listed.windows(2).all(|w| w[0].created_at <= w[1].created_at));
}

#[test]
fn messages_with_equal_timestamps_come_back_in_id_order() {
    use diesel::RunQueryDsl;
    use diesel::sql_types::{BigInt, Text};
    use modelforge_core::MessageId;

    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "same instant").unwrap();
    // Three ids minted in order, stored in another order, all with one timestamp: only the
    // id tie-break can restore the order they were made in.
    let ids: Vec<MessageId> = (0..3).map(|_| MessageId::new()).collect();
    let mut conn = common::raw_connection(&t.db_path());
    for index in [2, 0, 1] {
        diesel::sql_query(
            "INSERT INTO messages (id, session_id, role, content, created_at) VALUES (?, ?, 'user', ?, ?)",
        )
        .bind::<Text, _>(ids[index].to_string())
        .bind::<Text, _>(session.id.to_string())
        .bind::<Text, _>(format!("made {index}"))
        .bind::<BigInt, _>(1_700_000_000_000_000_i64)
        .execute(&mut conn)
        .unwrap();
    }
    let listed = t.store.list_messages(&lina, session.id).unwrap();
    assert_eq!(listed.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert_eq!(listed[0].content, "made 0");
}

#[test]
fn sessions_list_newest_first_with_message_counts() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let first = t.store.create_session(&lina, "first").unwrap();
    let second = t.store.create_session(&lina, "second").unwrap();
    let ids: Vec<_> = t.store.list_sessions(&lina).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(ids, [second.id, first.id]);

    // A new message makes the older session the most recently updated.
    let message = t.store.append_message(&lina, first.id, &ChatMessage::user("bump")).unwrap();
    t.store.append_message(&lina, first.id, &ChatMessage::assistant("ok")).unwrap();
    let listed = t.store.list_sessions(&lina).unwrap();
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [first.id, second.id]);
    assert_eq!(listed[0].message_count, 2);
    assert_eq!(listed[1].message_count, 0);
    assert!(listed[0].updated_at >= message.created_at);
    assert!(listed[0].updated_at > first.updated_at);
    assert_eq!(listed[0].created_at, first.created_at);

    let renamed = t.store.rename_session(&lina, second.id, "renamed").unwrap();
    assert_eq!(renamed.title, "renamed");
    assert_eq!(t.store.list_sessions(&lina).unwrap()[0].id, second.id, "a rename counts as an update");
}

#[test]
fn over_long_values_are_rejected_and_nothing_is_stored() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let too_long_title = "t".repeat(TITLE_MAX_CHARS + 1);
    assert_invalid(t.store.create_session(&lina, &too_long_title), "title");
    assert!(t.store.list_sessions(&lina).unwrap().is_empty());
    assert_eq!(t.count_rows("sessions"), 0);

    let session = t.store.create_session(&lina, "ok").unwrap();
    assert_invalid(t.store.rename_session(&lina, session.id, &too_long_title), "title");
    assert_eq!(t.store.get_session(&lina, session.id).unwrap(), session, "the failed rename changed nothing");

    let huge = ChatMessage::user("m".repeat(MESSAGE_MAX_BYTES + 1));
    assert_invalid(t.store.append_message(&lina, session.id, &huge), "message content");
    assert_eq!(t.count_rows("messages"), 0);
    assert_eq!(t.store.get_session(&lina, session.id).unwrap().updated_at, session.updated_at);

    let memory = NewMemory {
        kind: MemoryKind::Fact,
        content: "m".repeat(MEMORY_MAX_BYTES + 1),
        source_session_id: None,
    };
    assert_invalid(t.store.add_memory(&lina, &memory), "memory content");
    let blank = NewMemory { content: " \n ".into(), ..memory };
    assert_invalid(t.store.add_memory(&lina, &blank), "memory content");
    assert_eq!(t.count_rows("memories"), 0);
}

#[test]
fn sql_metacharacters_are_stored_verbatim() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let nasty = "'; DROP TABLE users; -- \" \\ %_ \0 Robert'); DELETE FROM sessions;-- 你好 🎉";
    let session = t.store.create_session(&lina, nasty).unwrap();
    let message = t.store.append_message(&lina, session.id, &ChatMessage::user(nasty)).unwrap();
    let memory = t
        .store
        .add_memory(
            &lina,
            &NewMemory {
                kind: MemoryKind::Preference,
                content: nasty.into(),
                source_session_id: Some(session.id),
            },
        )
        .unwrap();

    assert_eq!(t.store.get_session(&lina, session.id).unwrap().title, nasty);
    assert_eq!(t.store.list_messages(&lina, session.id).unwrap(), vec![message]);
    assert_eq!(t.store.list_memories(&lina).unwrap(), vec![memory]);
    assert_eq!(t.count_rows("users"), 1, "the users table is still there");
    assert!(t.store.login("lina", &common::password_of("lina")).is_ok());
}

#[test]
fn deleting_a_session_deletes_its_messages_and_unlinks_memories() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let doomed = t.store.create_session(&lina, "doomed").unwrap();
    let kept = t.store.create_session(&lina, "kept").unwrap();
    for i in 0..3 {
        t.store.append_message(&lina, doomed.id, &ChatMessage::user(format!("doomed {i}"))).unwrap();
    }
    t.store.append_message(&lina, kept.id, &ChatMessage::user("kept")).unwrap();
    let memory =
        NewMemory { kind: MemoryKind::Fact, content: "learned".into(), source_session_id: Some(doomed.id) };
    let memory = t.store.add_memory(&lina, &memory).unwrap();
    assert_eq!(memory.source_session_id, Some(doomed.id));
    assert_eq!(t.count_rows("messages"), 4);

    t.store.delete_session(&lina, doomed.id).unwrap();
    assert_eq!(t.count_rows("messages"), 1, "the deleted session's messages are gone");
    assert!(matches!(t.store.get_session(&lina, doomed.id), Err(StoreError::NotFound { .. })));
    assert_eq!(t.store.list_messages(&lina, kept.id).unwrap().len(), 1);
    let memories = t.store.list_memories(&lina).unwrap();
    assert_eq!(memories.len(), 1, "the memory outlives its source session");
    assert_eq!(memories[0].source_session_id, None);
}

#[test]
fn memories_list_oldest_first_with_their_kind() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let kinds = [MemoryKind::Profile, MemoryKind::Preference, MemoryKind::Fact];
    for (i, kind) in kinds.into_iter().enumerate() {
        t.store
            .add_memory(&lina, &NewMemory { kind, content: format!("memory {i}"), source_session_id: None })
            .unwrap();
    }
    let listed = t.store.list_memories(&lina).unwrap();
    assert_eq!(listed.iter().map(|m| m.kind).collect::<Vec<_>>(), kinds);
    assert_eq!(listed[2].content, "memory 2");
}

#[test]
fn concurrent_writers_all_succeed() {
    let t = TestStore::new();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "busy").unwrap();
    let store = Arc::new(t.store);
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    store
                        .append_message(&lina, session.id, &ChatMessage::user(format!("{thread}-{i}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.get_session(&lina, session.id).unwrap().message_count, 100);
    let messages = store.list_messages(&lina, session.id).unwrap();
    // Each thread's own messages stay in the order it sent them.
    for thread in 0..4 {
        let mine: Vec<&str> = messages
            .iter()
            .map(|m| m.content.as_str())
            .filter(|c| c.starts_with(&format!("{thread}-")))
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("{thread}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

#[test]
fn open_creates_parent_directories_and_reports_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b").join("store.db");
    let store = open_at(&nested);
    assert!(nested.is_file());
    assert_eq!(store.path(), nested);

    // A directory where the file should be cannot be opened as a database.
    let err = modelforge_store::SqliteStore::open(
        dir.path(),
        modelforge_store::StoreOptions::with_secret(common::SECRET.to_vec()),
    )
    .unwrap_err();
    match err {
        StoreError::Database { context, .. } => {
            assert!(context.contains("opening the database"), "{context}")
        }
        other => panic!("expected a database error, got {other:?}"),
    }
}
