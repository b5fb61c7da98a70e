//! What the memory layer relies on: temporary sessions, the per-user memory switch, and one
//! cached conversation summary per session.

use modelforge_core::{ChatMessage, Message, MessageId, NewSession, SessionId, SessionQuery, StoreError};

use crate::common::{Factory, TestStore, options, password_of};

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound { what: found, .. }) => assert_eq!(found, what),
        other => panic!("expected {what} not found, got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, expected: &str) {
    match result {
        Err(StoreError::InvalidInput { field, .. }) => assert_eq!(field, expected),
        other => panic!("expected invalid {expected}, got {other:?}"),
    }
}

/// `count` user messages `turn 0`, `turn 1`, ... in `session`.
fn turns(t: &TestStore, actor: &modelforge_core::Actor, session: SessionId, count: usize) -> Vec<Message> {
    (0..count)
        .map(|i| {
            t.store.append_message(actor, session, &ChatMessage::user(format!("turn {i}")), None).unwrap()
        })
        .collect()
}

pub fn temporary_sessions_are_marked_at_creation_and_can_be_switched(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let ordinary = t.store.create_session(&lina, "ordinary").unwrap();
    assert!(!ordinary.temporary, "create_session makes ordinary sessions");
    let private =
        t.store.create_session_with(&lina, &NewSession { temporary: true, ..NewSession::default() });
    let private = private.unwrap();
    assert!(private.temporary);
    assert_eq!(private.title, "", "an untitled request stays untitled until the first message");
    let named = NewSession { title: "named".into(), temporary: false, model: None };
    assert!(!t.store.create_session_with(&lina, &named).unwrap().temporary);
    assert_invalid(
        t.store
            .create_session_with(&lina, &NewSession { title: "a\0b".into(), temporary: true, model: None }),
        "title",
    );

    // A temporary session stores its messages like any other.
    t.store.append_message(&lina, private.id, &ChatMessage::user("Just between us"), None).unwrap();
    let read = t.store.get_session(&lina, private.id).unwrap();
    assert!(read.temporary && read.message_count == 1 && read.title == "Just between us", "{read:?}");
    let listed = t.store.list_sessions(&lina, &SessionQuery::default()).unwrap().sessions;
    let flags: Vec<(SessionId, bool)> = listed.iter().map(|s| (s.id, s.temporary)).collect();
    assert!(flags.contains(&(private.id, true)) && flags.contains(&(ordinary.id, false)), "{flags:?}");

    // Switching is not an update of the contents: `updated_at` stays.
    let switched = t.store.set_session_temporary(&lina, ordinary.id, true).unwrap();
    assert!(switched.temporary);
    assert_eq!(switched.updated_at, ordinary.updated_at);
    assert_eq!(t.store.get_session(&lina, ordinary.id).unwrap(), switched);
    let back = t.store.set_session_temporary(&lina, private.id, false).unwrap();
    assert!(!back.temporary);

    let reopened = t.reopen(options());
    assert!(reopened.get_session(&lina, ordinary.id).unwrap().temporary, "the flag is stored");
    assert!(!reopened.get_session(&lina, private.id).unwrap().temporary);
}

pub fn exports_and_imports_keep_temporary_sessions(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let (_, copy) = t.register("copy");
    let (_, older) = t.register("older");
    let ordinary = t.store.create_session(&lina, "ordinary").unwrap();
    let private = t
        .store
        .create_session_with(&lina, &NewSession { title: "private".into(), temporary: true, model: None })
        .unwrap();
    t.store.append_message(&lina, private.id, &ChatMessage::user("hello"), None).unwrap();

    let export = t.store.export_user_data(&lina).unwrap();
    let flags: Vec<(SessionId, bool)> =
        export.sessions.iter().map(|e| (e.session.id, e.session.temporary)).collect();
    assert_eq!(flags, [(ordinary.id, false), (private.id, true)]);
    let json = t.store.export_json(&lina).unwrap();
    assert_eq!(t.store.import_json(&copy, &json).unwrap().sessions, 2);
    let imported = t.store.export_user_data(&copy).unwrap();
    let flags: Vec<(String, bool)> =
        imported.sessions.iter().map(|e| (e.session.title.clone(), e.session.temporary)).collect();
    assert_eq!(flags, [("ordinary".to_owned(), false), ("private".to_owned(), true)]);
    assert_ne!(imported.sessions[1].session.id, private.id, "fresh ids");
    assert!(t.store.get_session(&copy, imported.sessions[1].session.id).unwrap().temporary);

    // Exports written before the flag existed import as ordinary sessions.
    let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    for entry in value["sessions"].as_array_mut().unwrap() {
        assert!(entry["session"].as_object_mut().unwrap().remove("temporary").is_some());
    }
    assert!(value["user"].as_object_mut().unwrap().remove("memory_enabled").is_some());
    let without = serde_json::to_vec(&value).unwrap();
    assert_eq!(t.store.import_json(&older, &without).unwrap().sessions, 2);
    let sessions = t.store.export_user_data(&older).unwrap().sessions;
    assert!(sessions.iter().all(|e| !e.session.temporary));
}

pub fn memory_is_on_by_default_and_switched_by_the_user_or_an_admin(new_store: Factory) {
    let t = new_store();
    let (admin_user, admin) = t.register("admin");
    let (lina_user, lina) = t.register("lina");
    let (_, bob) = t.register("bob");
    assert!(admin_user.memory_enabled && lina_user.memory_enabled, "on for new accounts");
    assert!(t.store.current_user(&lina).unwrap().memory_enabled);
    assert!(t.store.login("lina", &password_of("lina")).unwrap().memory_enabled);

    let off = t.store.set_memory_enabled(&lina, lina.user_id, false).unwrap();
    assert!(!off.memory_enabled);
    assert_eq!(off.id, lina.user_id);
    assert!(!t.store.current_user(&lina).unwrap().memory_enabled);
    assert!(!t.reopen(options()).current_user(&lina).unwrap().memory_enabled, "the switch is stored");
    assert!(!t.store.export_user_data(&lina).unwrap().user.memory_enabled);
    assert!(t.store.current_user(&bob).unwrap().memory_enabled, "other users keep theirs");

    // Another user may not touch it, with the same rule as revoking tokens.
    let refused = t.store.set_memory_enabled(&bob, lina.user_id, true);
    assert!(matches!(refused, Err(StoreError::PermissionDenied { .. })), "{refused:?}");
    let refused = t.store.revoke_tokens(&bob, lina.user_id);
    assert!(matches!(refused, Err(StoreError::PermissionDenied { .. })), "{refused:?}");
    assert!(!t.store.current_user(&lina).unwrap().memory_enabled, "unchanged by the refused call");

    // An admin may.
    assert!(t.store.set_memory_enabled(&admin, lina.user_id, true).unwrap().memory_enabled);
    assert!(t.store.current_user(&lina).unwrap().memory_enabled);
    assert!(!t.store.set_memory_enabled(&admin, bob.user_id, false).unwrap().memory_enabled);
    let users = t.store.list_users(&admin, modelforge_core::Page::default()).unwrap();
    let flags: Vec<(&str, bool)> = users.iter().map(|u| (u.username.as_str(), u.memory_enabled)).collect();
    assert_eq!(flags, [("admin", true), ("lina", true), ("bob", false)]);
    assert_not_found(t.store.set_memory_enabled(&admin, modelforge_core::UserId::new(), false), "user");
}

pub fn a_summary_is_replaced_and_goes_with_its_messages_and_session(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "long").unwrap();
    let other = t.store.create_session(&lina, "other").unwrap();
    let sent = turns(&t, &lina, session.id, 6);
    let elsewhere = turns(&t, &lina, other.id, 1);
    assert_eq!(t.store.session_summary(&lina, session.id).unwrap(), None, "none until saved");

    let first =
        t.store.save_session_summary(&lina, session.id, sent[1].id, 2, "Lina said hello twice.").unwrap();
    assert_eq!((first.session_id, first.through_message), (session.id, sent[1].id));
    assert_eq!((first.covered_messages, first.content.as_str()), (2, "Lina said hello twice."));
    assert_eq!(t.store.session_summary(&lina, session.id).unwrap(), Some(first.clone()), "stored exactly");

    // One per session: a new one replaces the old.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let second = t.store.save_session_summary(&lina, session.id, sent[3].id, 4, "Four turns.").unwrap();
    assert_eq!(t.store.session_summary(&lina, session.id).unwrap(), Some(second.clone()));
    assert!(second.created_at > first.created_at);
    assert_eq!(t.count("session_summaries"), 1);
    let other_summary = t.store.save_session_summary(&lina, other.id, elsewhere[0].id, 1, "Other.").unwrap();
    assert_eq!(t.count("session_summaries"), 2);

    // Refused input changes nothing.
    assert_invalid(t.store.save_session_summary(&lina, session.id, sent[4].id, 5, " \n "), "summary content");
    assert_invalid(t.store.save_session_summary(&lina, session.id, sent[4].id, 5, "a\0b"), "summary content");
    assert_invalid(
        t.store.save_session_summary(&lina, session.id, sent[4].id, 0, "none"),
        "covered_messages",
    );
    assert_eq!(t.store.session_summary(&lina, session.id).unwrap(), Some(second.clone()));

    // Deleting messages after the summary's last one keeps it; deleting that one drops it.
    assert_eq!(t.store.delete_messages_after(&lina, session.id, sent[4].id).unwrap(), 1);
    assert_eq!(
        t.store.session_summary(&lina, session.id).unwrap(),
        Some(second),
        "still covers kept messages"
    );
    assert_eq!(t.store.delete_messages_after(&lina, session.id, sent[3].id).unwrap(), 1);
    assert!(t.store.session_summary(&lina, session.id).unwrap().is_some(), "its own message is kept");
    assert_eq!(t.store.delete_messages_after(&lina, session.id, sent[2].id).unwrap(), 1);
    assert_eq!(t.store.session_summary(&lina, session.id).unwrap(), None, "its last message is gone");
    assert_eq!(t.store.session_summary(&lina, other.id).unwrap(), Some(other_summary.clone()), "others stay");

    // Deleting the session deletes its summary.
    t.store.save_session_summary(&lina, session.id, sent[1].id, 2, "Again.").unwrap();
    assert_eq!(t.count("session_summaries"), 2);
    t.store.delete_session(&lina, session.id).unwrap();
    assert_eq!(t.count("session_summaries"), 1);
    assert_eq!(t.count(&format!("session_summaries WHERE session_id = '{}'", session.id)), 0);
    assert_not_found(t.store.session_summary(&lina, session.id), "session");
    assert_eq!(t.reopen(options()).session_summary(&lina, other.id).unwrap(), Some(other_summary));
}

pub fn a_summary_through_a_message_of_another_session_is_not_found(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let (_, bob) = t.register("bob");
    let session = t.store.create_session(&lina, "mine").unwrap();
    let other = t.store.create_session(&lina, "also mine").unwrap();
    let mine = turns(&t, &lina, session.id, 2);
    let elsewhere = turns(&t, &lina, other.id, 1);
    let bobs_session = t.store.create_session(&bob, "bob's").unwrap();
    let bobs = turns(&t, &bob, bobs_session.id, 1);

    for message in [elsewhere[0].id, bobs[0].id, MessageId::new()] {
        assert_not_found(t.store.save_session_summary(&lina, session.id, message, 1, "wrong"), "message");
    }
    assert_eq!(t.count("session_summaries"), 0, "nothing was stored");
    assert_eq!(t.store.session_summary(&lina, session.id).unwrap(), None);
    assert!(t.store.save_session_summary(&lina, session.id, mine[1].id, 2, "right").is_ok());
}

pub fn another_users_session_is_not_found_for_temporary_and_summary_calls(new_store: Factory) {
    let t = new_store();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let bobs = t.store.create_session(&bob, "bob's secrets").unwrap();
    let bobs_messages = turns(&t, &bob, bobs.id, 2);
    let bobs_summary =
        t.store.save_session_summary(&bob, bobs.id, bobs_messages[0].id, 1, "Bob's pin.").unwrap();
    let before = t.store.get_session(&bob, bobs.id).unwrap();
    let missing = SessionId::new();

    for id in [bobs.id, missing] {
        assert_not_found(t.store.set_session_temporary(&alice, id, true), "session");
        assert_not_found(t.store.session_summary(&alice, id), "session");
        assert_not_found(
            t.store.save_session_summary(&alice, id, bobs_messages[1].id, 2, "Alice's now."),
            "session",
        );
    }
    // The same error text for both, so the id's existence is not revealed.
    let text = |id: SessionId| {
        let err = t.store.session_summary(&alice, id).unwrap_err().to_string();
        err.replace(&id.to_string(), "ID")
    };
    assert_eq!(text(bobs.id), text(missing));

    assert_eq!(t.store.get_session(&bob, bobs.id).unwrap(), before, "bob's session is unchanged");
    assert!(!before.temporary);
    assert_eq!(t.store.session_summary(&bob, bobs.id).unwrap(), Some(bobs_summary), "bob's summary too");
    assert_eq!(t.count("session_summaries"), 1);
    assert_eq!(t.count("sessions WHERE temporary"), 0);
}

/// Deleting an account removes its summaries with its sessions.
pub fn deleting_an_account_removes_its_summaries(new_store: Factory) {
    let t = new_store();
    let (_, admin) = t.register("admin");
    let (_, lina) = t.register("lina");
    for actor in [admin, lina] {
        let session = t.store.create_session(&actor, "s").unwrap();
        let sent = turns(&t, &actor, session.id, 1);
        t.store.save_session_summary(&actor, session.id, sent[0].id, 1, "summary").unwrap();
    }
    assert_eq!(t.count("session_summaries"), 2);
    t.store.delete_user(&lina, lina.user_id).unwrap();
    assert_eq!(t.count("session_summaries"), 1);
}
