//! Sessions, messages and memories: ordering, paging, titles, search, persistence, deletion,
//! export and import.

use modelforge_core::{
    ChatMessage, MemoryDetails, MemoryKind, MemoryUpdate, MessageId, NewMemory, Page, Role, SessionQuery,
    SessionStore, StoreError,
};

use crate::common::{Factory, options, password_of};

fn titles(store: &dyn SessionStore, actor: &modelforge_core::Actor, query: &SessionQuery) -> Vec<String> {
    store.list_sessions(actor, query).unwrap().sessions.into_iter().map(|s| s.title).collect()
}

pub fn sessions_and_messages_survive_a_restart(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "Trip").unwrap();
    t.store.append_message(&lina, session.id, &ChatMessage::system("Be brief."), None).unwrap();
    t.store.append_message(&lina, session.id, &ChatMessage::user("Hello"), Some(2)).unwrap();
    t.store.append_message(&lina, session.id, &ChatMessage::assistant("Hi!"), Some(3)).unwrap();
    let session = t.store.get_session(&lina, session.id).unwrap();
    let messages = t.store.list_messages(&lina, session.id).unwrap();
    let token = t.store.issue_token(&lina).unwrap();

    let reopened = t.reopen(options());
    assert_eq!(reopened.verify_token(&token).unwrap(), lina, "the same secret keeps tokens valid");
    assert_eq!(reopened.get_session(&lina, session.id).unwrap(), session);
    assert_eq!(reopened.list_messages(&lina, session.id).unwrap(), messages);
    let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::System, Role::User, Role::Assistant]);
    assert_eq!(messages.iter().map(|m| m.token_count).collect::<Vec<_>>(), [None, Some(2), Some(3)]);
    assert!(reopened.login("lina", &password_of("lina")).is_ok());
}

pub fn messages_keep_insertion_order_with_strictly_increasing_times(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "burst").unwrap();
    let sent: Vec<String> = (0..200).map(|i| format!("message {i}")).collect();
    for content in &sent {
        t.store.append_message(&lina, session.id, &ChatMessage::user(content.clone()), None).unwrap();
    }
    let listed = t.store.list_messages(&lina, session.id).unwrap();
    let contents: Vec<&str> = listed.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, sent.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(listed.windows(2).all(|w| w[0].created_at < w[1].created_at), "times are strictly increasing");
}

pub fn messages_with_equal_timestamps_come_back_in_id_order(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "same instant").unwrap();
    // Three ids minted in order, stored in another order, all with one timestamp (as rows of
    // older versions may be): only the id tie-break can restore the order they were made in.
    let ids: Vec<MessageId> = (0..3).map(|_| MessageId::new()).collect();
    for index in [2, 0, 1] {
        t.execute(&format!(
            "INSERT INTO messages (id, session_id, role, content, created_at) \
             VALUES ('{}', '{}', 'user', 'made {index}', 1700000000000000)",
            ids[index], session.id
        ));
    }
    let listed = t.store.list_messages(&lina, session.id).unwrap();
    assert_eq!(listed.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    assert_eq!(listed[0].content, "made 0");
}

pub fn sessions_list_pinned_then_newest_with_counts_previews_and_pages(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let first = t.store.create_session(&lina, "first").unwrap();
    let second = t.store.create_session(&lina, "second").unwrap();
    let third = t.store.create_session(&lina, "third").unwrap();
    assert_eq!(titles(t.store.as_ref(), &lina, &SessionQuery::default()), ["third", "second", "first"]);

    // A new message makes the oldest session the most recently updated.
    let message = t.store.append_message(&lina, first.id, &ChatMessage::user("bump"), None).unwrap();
    t.store.append_message(&lina, first.id, &ChatMessage::assistant("Sure.\n\nHere   it is."), None).unwrap();
    let page = t.store.list_sessions(&lina, &SessionQuery::default()).unwrap();
    assert_eq!(page.sessions[0].id, first.id);
    assert_eq!(page.sessions[0].message_count, 2);
    assert_eq!(page.sessions[0].last_message_preview.as_deref(), Some("Sure. Here it is."));
    assert_eq!(page.sessions[1].message_count, 0);
    assert_eq!(page.sessions[1].last_message_preview, None);
    assert!(page.sessions[0].updated_at >= message.created_at);
    assert_eq!(page.sessions[0].created_at, first.created_at);
    assert_eq!(page.next, None);

    let renamed = t.store.rename_session(&lina, second.id, "renamed").unwrap();
    assert_eq!(renamed.title, "renamed");
    assert_eq!(titles(t.store.as_ref(), &lina, &SessionQuery::default()), ["renamed", "first", "third"]);

    // Pinning lists a session first without counting as an update.
    let pinned = t.store.set_session_pinned(&lina, third.id, true).unwrap();
    assert!(pinned.pinned);
    assert_eq!(pinned.updated_at, third.updated_at);
    assert_eq!(titles(t.store.as_ref(), &lina, &SessionQuery::default()), ["third", "renamed", "first"]);

    // Archived sessions leave the default list and have one of their own.
    t.store.set_session_archived(&lina, first.id, true).unwrap();
    assert_eq!(titles(t.store.as_ref(), &lina, &SessionQuery::default()), ["third", "renamed"]);
    let archived = SessionQuery { archived: true, ..SessionQuery::default() };
    assert_eq!(titles(t.store.as_ref(), &lina, &archived), ["first"]);
    t.store.set_session_archived(&lina, first.id, false).unwrap();

    // Pages of two.
    let query = SessionQuery { page: Page::first(2), ..SessionQuery::default() };
    let one = t.store.list_sessions(&lina, &query).unwrap();
    assert_eq!(one.sessions.len(), 2);
    let next = one.next.expect("a third session is left");
    let two = t.store.list_sessions(&lina, &SessionQuery { page: next, ..query }).unwrap();
    assert_eq!(two.sessions.iter().map(|s| s.title.as_str()).collect::<Vec<_>>(), ["first"]);
    assert_eq!(two.next, None);
}

pub fn untitled_sessions_are_named_by_their_first_user_message(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "").unwrap();
    assert_eq!(session.title, "");
    t.store.append_message(&lina, session.id, &ChatMessage::system("You are terse."), None).unwrap();
    assert_eq!(t.store.get_session(&lina, session.id).unwrap().title, "", "system messages do not name it");
    let question = format!(
        "\n  Which trains go from Lyon to Geneva on Sunday mornings {}\nsecond line",
        "please ".repeat(10)
    );
    t.store.append_message(&lina, session.id, &ChatMessage::user(question), None).unwrap();
    let title = t.store.get_session(&lina, session.id).unwrap().title;
    assert!(title.starts_with("Which trains go from Lyon to Geneva"), "{title}");
    assert!(title.ends_with('…') && title.chars().count() <= 61 && !title.contains("  "), "{title}");
    t.store.append_message(&lina, session.id, &ChatMessage::user("Another question"), None).unwrap();
    assert_eq!(t.store.get_session(&lina, session.id).unwrap().title, title, "only the first one names it");

    let named = t.store.create_session(&lina, "Given").unwrap();
    t.store.append_message(&lina, named.id, &ChatMessage::user("Hello"), None).unwrap();
    assert_eq!(t.store.get_session(&lina, named.id).unwrap().title, "Given");
    let blank = t.store.rename_session(&lina, named.id, "   ");
    assert!(matches!(blank, Err(StoreError::InvalidInput { field: "title", .. })), "{blank:?}");
}

pub fn sessions_are_found_by_title_and_content(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let (_, bob) = t.register("bob");
    let trip = t.store.create_session(&lina, "Trip to Lyon").unwrap();
    let shopping = t.store.create_session(&lina, "Groceries").unwrap();
    t.store
        .append_message(&lina, shopping.id, &ChatMessage::user("Buy OLIVES and 100% juice"), None)
        .unwrap();
    t.store.append_message(&lina, trip.id, &ChatMessage::user("Trains on Sunday?"), None).unwrap();
    let bobs = t.store.create_session(&bob, "Olives for bob").unwrap();

    let search = |text: &str| {
        let query = SessionQuery { search: Some(text.to_owned()), ..SessionQuery::default() };
        t.store.list_sessions(&lina, &query).unwrap().sessions.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(search("lyon"), [trip.id], "title, any case");
    assert_eq!(search("olives"), [shopping.id], "content, any case, and only lina's");
    assert_eq!(search("SUNDAY"), [trip.id]);
    assert_eq!(search("100%"), [shopping.id]);
    assert_eq!(search("%"), [shopping.id], "`%` is literal");
    assert!(search("_").is_empty(), "`_` is literal");
    assert!(search("nothing like this").is_empty());
    assert!(!search("o").contains(&bobs.id));
}

pub fn message_pages_and_token_counts(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "paged").unwrap();
    for i in 0..25_u32 {
        t.store.append_message(&lina, session.id, &ChatMessage::user(format!("m{i}")), Some(i)).unwrap();
    }
    let mut page = Page::first(10);
    let mut seen = Vec::new();
    loop {
        let got = t.store.list_messages_page(&lina, session.id, page).unwrap();
        seen.extend(got.messages);
        match got.next {
            Some(next) => page = next,
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen, t.store.list_messages(&lina, session.id).unwrap());
    assert!(
        seen.iter().enumerate().all(|(i, m)| m.content == format!("m{i}") && m.token_count == Some(i as u32))
    );
}

pub fn messages_after_one_are_deleted_for_regeneration(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session(&lina, "regen").unwrap();
    let other = t.store.create_session(&lina, "other").unwrap();
    let sent: Vec<_> = (0..6)
        .map(|i| {
            t.store.append_message(&lina, session.id, &ChatMessage::user(format!("turn {i}")), None).unwrap()
        })
        .collect();
    let foreign = t.store.append_message(&lina, other.id, &ChatMessage::user("elsewhere"), None).unwrap();

    assert_eq!(t.store.delete_messages_after(&lina, session.id, sent[2].id).unwrap(), 3);
    let left = t.store.list_messages(&lina, session.id).unwrap();
    assert_eq!(left, sent[..3].to_vec());
    let after = t.store.get_session(&lina, session.id).unwrap();
    assert_eq!(after.message_count, 3);
    assert_eq!(after.last_message_preview.as_deref(), Some("turn 2"));
    assert_eq!(t.store.delete_messages_after(&lina, session.id, sent[2].id).unwrap(), 0);

    // Appending again continues after the kept message.
    let regenerated =
        t.store.append_message(&lina, session.id, &ChatMessage::assistant("again"), None).unwrap();
    assert!(regenerated.created_at > sent[2].created_at);
    let missing = t.store.delete_messages_after(&lina, session.id, foreign.id);
    assert!(matches!(missing, Err(StoreError::NotFound { what: "message", .. })), "{missing:?}");
    assert_eq!(t.store.list_messages(&lina, other.id).unwrap(), vec![foreign]);
}

pub fn a_message_and_those_after_it_are_deleted_for_an_edit(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let (_, omar) = t.register("omar");
    let session = t.store.create_session(&lina, "edit").unwrap();
    let sent: Vec<_> = (0..4)
        .map(|i| {
            t.store.append_message(&lina, session.id, &ChatMessage::user(format!("turn {i}")), None).unwrap()
        })
        .collect();
    t.store.save_session_summary(&lina, session.id, sent[1].id, 2, "turns 0 and 1").unwrap();
    let foreign = t.store.delete_messages_from(&omar, session.id, sent[0].id);
    assert!(matches!(foreign, Err(StoreError::NotFound { what: "session", .. })), "{foreign:?}");

    assert_eq!(t.store.delete_messages_from(&lina, session.id, sent[2].id).unwrap(), 2);
    assert_eq!(t.store.list_messages(&lina, session.id).unwrap(), sent[..2].to_vec());
    assert!(t.store.session_summary(&lina, session.id).unwrap().is_some(), "it covers kept messages");

    // The first message too: the conversation starts over, and the summary of it goes.
    assert_eq!(t.store.delete_messages_from(&lina, session.id, sent[0].id).unwrap(), 2);
    assert!(t.store.list_messages(&lina, session.id).unwrap().is_empty());
    assert!(t.store.session_summary(&lina, session.id).unwrap().is_none());
    let after = t.store.get_session(&lina, session.id).unwrap();
    assert_eq!((after.message_count, after.last_message_preview), (0, None));
}

pub fn deleting_a_session_deletes_its_messages_and_unlinks_memories(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let doomed = t.store.create_session(&lina, "doomed").unwrap();
    let kept = t.store.create_session(&lina, "kept").unwrap();
    for i in 0..3 {
        t.store.append_message(&lina, doomed.id, &ChatMessage::user(format!("doomed {i}")), None).unwrap();
    }
    t.store.append_message(&lina, kept.id, &ChatMessage::user("kept"), None).unwrap();
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

pub fn memories_keep_kind_confidence_and_embedding(new_store: Factory) {
    let t = new_store();
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

    let embedding = vec![0.25_f32, -1.5, 3.0e-8, f32::MAX];
    let details = MemoryDetails { confidence: 0.75, embedding: Some(embedding.clone()) };
    let new =
        NewMemory { kind: MemoryKind::Preference, content: "Likes jazz.".into(), source_session_id: None };
    let record = t.store.add_memory_record(&lina, &new, &details).unwrap();
    assert_eq!((record.confidence, record.embedding.as_deref()), (0.75, Some(embedding.as_slice())));
    assert_eq!(record.updated_at, record.memory.created_at);
    assert_eq!(t.store.list_memory_records(&lina).unwrap().last(), Some(&record), "stored exactly");

    std::thread::sleep(std::time::Duration::from_millis(2));
    let change = MemoryUpdate {
        kind: Some(MemoryKind::Fact),
        content: Some("Loves jazz.".into()),
        confidence: Some(0.5),
        embedding: Some(None),
    };
    let updated = t.store.update_memory_record(&lina, record.memory.id, &change).unwrap();
    assert_eq!(updated.memory.kind, MemoryKind::Fact);
    assert_eq!(updated.memory.content, "Loves jazz.");
    assert_eq!((updated.confidence, updated.embedding.as_ref()), (0.5, None));
    assert_eq!(updated.memory.created_at, record.memory.created_at);
    assert!(updated.updated_at > record.updated_at);
    assert_eq!(t.store.list_memory_records(&lina).unwrap().last(), Some(&updated));

    let content_only = t.store.update_memory(&lina, record.memory.id, "Adores jazz.").unwrap();
    assert_eq!(content_only.kind, MemoryKind::Fact, "untouched fields stay");
    t.store.delete_memory(&lina, record.memory.id).unwrap();
    assert_eq!(t.store.list_memories(&lina).unwrap().len(), 3);
}

pub fn exports_import_back_with_new_ids(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let (_, copy) = t.register("copy");
    let trip = t.store.create_session(&lina, "Trip").unwrap();
    t.store.append_message(&lina, trip.id, &ChatMessage::user("Hello 你好 🎉"), Some(4)).unwrap();
    t.store.append_message(&lina, trip.id, &ChatMessage::assistant("Hi"), Some(1)).unwrap();
    t.store.set_session_pinned(&lina, trip.id, true).unwrap();
    let empty = t.store.create_session(&lina, "Empty").unwrap();
    t.store.set_session_archived(&lina, empty.id, true).unwrap();
    let details = MemoryDetails { confidence: 0.9, embedding: Some(vec![1.0, 2.0, 3.0]) };
    let new = NewMemory {
        kind: MemoryKind::Profile,
        content: "Name is Lina.".into(),
        source_session_id: Some(trip.id),
    };
    t.store.add_memory_record(&lina, &new, &details).unwrap();

    let json = t.store.export_json(&lina).unwrap();
    let export = t.store.export_user_data(&lina).unwrap();
    assert_eq!(export.user.username, "lina");
    assert!(!String::from_utf8_lossy(&json).contains("argon2"), "no password hash in exports");
    let summary = t.store.import_json(&copy, &json).unwrap();
    assert_eq!((summary.sessions, summary.messages, summary.memories), (2, 2, 1));

    let imported = t.store.export_user_data(&copy).unwrap();
    assert_eq!(imported.sessions.len(), 2);
    for (original, copied) in export.sessions.iter().zip(&imported.sessions) {
        assert_ne!(original.session.id, copied.session.id, "fresh ids");
        assert_eq!(copied.session.user_id, copy.user_id);
        let strip = |s: &modelforge_core::Session| {
            (
                s.title.clone(),
                s.created_at,
                s.updated_at,
                s.pinned,
                s.archived,
                s.message_count,
                s.last_message_preview.clone(),
            )
        };
        assert_eq!(strip(&original.session), strip(&copied.session));
        let msgs = |m: &[modelforge_core::Message]| {
            m.iter().map(|m| (m.role, m.content.clone(), m.token_count, m.created_at)).collect::<Vec<_>>()
        };
        assert_eq!(msgs(&original.messages), msgs(&copied.messages));
    }
    let memory = &imported.memories[0];
    assert_eq!(memory.memory.content, "Name is Lina.");
    assert_eq!(memory.embedding.as_deref(), Some([1.0, 2.0, 3.0].as_slice()));
    assert_eq!(memory.confidence, 0.9);
    assert_eq!(
        memory.memory.source_session_id,
        Some(imported.sessions[0].session.id),
        "links follow the new ids"
    );
    assert_eq!(t.store.export_user_data(&lina).unwrap().sessions, export.sessions, "the source is untouched");
}
