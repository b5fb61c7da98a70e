//! One user can never read or change another user's data by passing its id.
#![cfg(feature = "sqlite")]

mod common;

use common::TestStore;
use modelforge_core::{ChatMessage, MemoryId, MemoryKind, NewMemory, SessionId, SessionStore, StoreError};

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { what: found, .. }) => assert_eq!(found, what),
        other => panic!("expected {what} not found, got {other:?}"),
    }
}

#[test]
fn another_users_session_behaves_like_a_missing_one() {
    let t = TestStore::new();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let bobs = t.store.create_session(&bob, "bob's secrets").unwrap();
    t.store.append_message(&bob, bobs.id, &ChatMessage::user("my pin is 1234")).unwrap();
    let before = t.store.get_session(&bob, bobs.id).unwrap();
    let missing = SessionId::new();

    for id in [bobs.id, missing] {
        assert_not_found(t.store.get_session(&alice, id), "session");
        assert_not_found(t.store.rename_session(&alice, id, "mine now"), "session");
        assert_not_found(t.store.append_message(&alice, id, &ChatMessage::user("hi")), "session");
        assert_not_found(t.store.list_messages(&alice, id), "session");
        assert_not_found(t.store.delete_session(&alice, id), "session");
    }
    // Same error text for both, so the id's existence is not revealed.
    let foreign = t.store.get_session(&alice, bobs.id).unwrap_err().to_string();
    let absent = t.store.get_session(&alice, missing).unwrap_err().to_string();
    assert_eq!(foreign.replace(&bobs.id.to_string(), "ID"), absent.replace(&missing.to_string(), "ID"));

    assert!(t.store.list_sessions(&alice).unwrap().is_empty());
    assert_eq!(t.store.get_session(&bob, bobs.id).unwrap(), before, "bob's session is unchanged");
    let messages = t.store.list_messages(&bob, bobs.id).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].content, "my pin is 1234");
    assert_eq!(t.count_rows("messages"), 1, "alice's append wrote nothing");
}

#[test]
fn memories_are_scoped_to_their_owner() {
    let t = TestStore::new();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let fact = |content: &str| NewMemory {
        kind: MemoryKind::Fact,
        content: content.into(),
        source_session_id: None,
    };

    let alices = t.store.add_memory(&alice, &fact("Alice likes tea.")).unwrap();
    let bobs = t.store.add_memory(&bob, &fact("Bob likes coffee.")).unwrap();
    assert_eq!(alices.user_id, alice.user_id);

    let listed = t.store.list_memories(&alice).unwrap();
    assert_eq!(listed, vec![alices.clone()]);

    for id in [bobs.id, MemoryId::new()] {
        assert_not_found(t.store.update_memory(&alice, id, "Bob likes tea."), "memory");
        assert_not_found(t.store.delete_memory(&alice, id), "memory");
    }
    assert_eq!(t.store.list_memories(&bob).unwrap(), vec![bobs], "bob's memory is unchanged");

    let updated = t.store.update_memory(&alice, alices.id, "Alice likes green tea.").unwrap();
    assert_eq!(updated.content, "Alice likes green tea.");
    assert_eq!(updated.created_at, alices.created_at);
    assert_eq!(t.store.list_memories(&alice).unwrap(), vec![updated]);

    t.store.delete_memory(&alice, alices.id).unwrap();
    assert!(t.store.list_memories(&alice).unwrap().is_empty());
    assert_eq!(t.store.list_memories(&bob).unwrap().len(), 1);
}

#[test]
fn a_memory_cannot_cite_another_users_session() {
    let t = TestStore::new();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let bobs = t.store.create_session(&bob, "bob's").unwrap();
    let memory =
        NewMemory { kind: MemoryKind::Fact, content: "stolen".into(), source_session_id: Some(bobs.id) };
    assert_not_found(t.store.add_memory(&alice, &memory), "session");
    assert_eq!(t.count_rows("memories"), 0);
}
