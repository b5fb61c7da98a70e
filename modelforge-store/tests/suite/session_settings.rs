//! What a server needs of sessions beside their messages: the model each one chats with, one
//! call that changes several settings together, and lists of only pinned or unpinned ones.

use modelforge_core::{ChatMessage, NewSession, Page, Session, SessionId, SessionQuery, SessionUpdate};
use modelforge_store::limits::{MODEL_MAX_CHARS, TITLE_MAX_CHARS};

use crate::common::{Factory, assert_invalid, assert_not_found, options};

const QWEN: &str = "bartowski/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M";
const SMOL: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

fn with_model(title: &str, model: &str) -> NewSession {
    NewSession { title: title.into(), model: Some(model.into()), ..NewSession::default() }
}

fn model_change(model: Option<&str>) -> SessionUpdate {
    SessionUpdate { model: Some(model.map(str::to_owned)), ..SessionUpdate::default() }
}

pub fn sessions_choose_a_model_at_creation_and_by_update(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let default = t.store.create_session(&lina, "default").unwrap();
    assert_eq!(default.model, None, "the server's default");
    let chosen = t.store.create_session_with(&lina, &with_model("chosen", QWEN)).unwrap();
    assert_eq!(chosen.model.as_deref(), Some(QWEN));
    assert_eq!(t.store.get_session(&lina, chosen.id).unwrap(), chosen, "stored exactly");
    let listed = t.store.list_sessions(&lina, &SessionQuery::default()).unwrap().sessions;
    let models: Vec<(SessionId, Option<&str>)> = listed.iter().map(|s| (s.id, s.model.as_deref())).collect();
    assert_eq!(models, [(chosen.id, Some(QWEN)), (default.id, None)]);

    // Choosing a model is a setting, not new content: `updated_at` stays.
    let switched = t.store.update_session(&lina, default.id, &model_change(Some(SMOL))).unwrap();
    assert_eq!(switched.model.as_deref(), Some(SMOL));
    assert_eq!(switched.updated_at, default.updated_at);
    let back = t.store.update_session(&lina, chosen.id, &model_change(None)).unwrap();
    assert_eq!(back.model, None, "`Some(None)` returns to the server's default");
    assert_eq!(back.updated_at, chosen.updated_at);

    // Messages do not touch it, and it is stored.
    t.store.append_message(&lina, default.id, &ChatMessage::user("Hello"), None).unwrap();
    let reopened = t.reopen(options());
    assert_eq!(reopened.get_session(&lina, default.id).unwrap().model.as_deref(), Some(SMOL));
    assert_eq!(reopened.get_session(&lina, chosen.id).unwrap().model, None);
}

pub fn one_update_changes_several_settings_at_once(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let before = t.store.create_session(&lina, "Trip").unwrap();
    let change = SessionUpdate {
        title: None,
        pinned: Some(true),
        archived: Some(true),
        temporary: Some(true),
        model: Some(Some(QWEN.into())),
    };
    let changed = t.store.update_session(&lina, before.id, &change).unwrap();
    assert!(changed.pinned && changed.archived && changed.temporary, "{changed:?}");
    assert_eq!((changed.title.as_str(), changed.model.as_deref()), ("Trip", Some(QWEN)));
    assert_eq!(changed.updated_at, before.updated_at, "settings are not an update of the contents");
    assert_eq!(t.store.get_session(&lina, before.id).unwrap(), changed);

    // A new title moves `updated_at`, whatever else changes with it.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let rename =
        SessionUpdate { title: Some("Trip to Lyon".into()), pinned: Some(false), ..SessionUpdate::default() };
    let renamed = t.store.update_session(&lina, before.id, &rename).unwrap();
    assert_eq!(renamed.title, "Trip to Lyon");
    assert!(!renamed.pinned && renamed.archived && renamed.temporary, "untouched fields stay: {renamed:?}");
    assert_eq!(renamed.model.as_deref(), Some(QWEN));
    assert!(renamed.updated_at > before.updated_at);

    // An empty update changes nothing and returns the session as it is.
    assert_eq!(t.store.update_session(&lina, before.id, &SessionUpdate::default()).unwrap(), renamed);
    // The single-setting calls are the same update.
    let pinned = t.store.set_session_pinned(&lina, before.id, true).unwrap();
    assert_eq!(pinned, Session { pinned: true, ..renamed.clone() });
    assert_eq!(t.reopen(options()).get_session(&lina, before.id).unwrap(), pinned);
}

pub fn a_refused_session_update_changes_nothing(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let session = t.store.create_session_with(&lina, &with_model("kept", QWEN)).unwrap();
    let too_long_title = "t".repeat(TITLE_MAX_CHARS + 1);
    let too_long_model = "m".repeat(MODEL_MAX_CHARS + 1);
    let refused = [
        (SessionUpdate { title: Some("  ".into()), pinned: Some(true), ..SessionUpdate::default() }, "title"),
        (
            SessionUpdate { title: Some(too_long_title), archived: Some(true), ..SessionUpdate::default() },
            "title",
        ),
        (SessionUpdate { title: Some("a\0b".into()), ..SessionUpdate::default() }, "title"),
        (SessionUpdate { pinned: Some(true), ..model_change(Some("")) }, "model"),
        (SessionUpdate { title: Some("fine".into()), ..model_change(Some(" \t ")) }, "model"),
        (model_change(Some(&too_long_model)), "model"),
        (model_change(Some("a\0b")), "model"),
    ];
    for (change, field) in &refused {
        assert_invalid(t.store.update_session(&lina, session.id, change), field);
        assert_eq!(t.store.get_session(&lina, session.id).unwrap(), session, "{change:?} changed nothing");
    }

    // Creation checks the model the same way.
    for bad in ["", "   ", "a\0b", too_long_model.as_str()] {
        assert_invalid(t.store.create_session_with(&lina, &with_model("new", bad)), "model");
    }
    assert_eq!(t.count_rows("sessions"), 1);

    // At the limit is fine, and any text is stored verbatim.
    let longest = "é".repeat(MODEL_MAX_CHARS);
    let at_limit = t.store.update_session(&lina, session.id, &model_change(Some(&longest))).unwrap();
    assert_eq!(at_limit.model, Some(longest));
    let nasty = "'; DROP TABLE sessions; -- \" \\ %_ 你好";
    let created = t.store.create_session_with(&lina, &with_model("nasty", nasty)).unwrap();
    assert_eq!(t.store.get_session(&lina, created.id).unwrap().model.as_deref(), Some(nasty));
    assert_eq!(t.count_rows("sessions"), 2);
}

pub fn another_users_session_is_not_found_for_updates(new_store: Factory) {
    let t = new_store();
    let (_, alice) = t.register("alice");
    let (_, bob) = t.register("bob");
    let bobs = t.store.create_session_with(&bob, &with_model("bob's secrets", SMOL)).unwrap();
    let missing = SessionId::new();
    let take_over = SessionUpdate {
        title: Some("mine now".into()),
        pinned: Some(true),
        archived: Some(true),
        temporary: Some(true),
        model: Some(Some(QWEN.into())),
    };

    for id in [bobs.id, missing] {
        assert_not_found(t.store.update_session(&alice, id, &take_over), "session");
        assert_not_found(t.store.update_session(&alice, id, &model_change(None)), "session");
        assert_not_found(t.store.update_session(&alice, id, &SessionUpdate::default()), "session");
    }
    // The same error text for both, so the id's existence is not revealed.
    let text = |id: SessionId| {
        let err = t.store.update_session(&alice, id, &take_over).unwrap_err().to_string();
        err.replace(&id.to_string(), "ID")
    };
    assert_eq!(text(bobs.id), text(missing));
    assert_eq!(t.store.get_session(&bob, bobs.id).unwrap(), bobs, "bob's session is unchanged");
    assert!(t.store.list_sessions(&alice, &SessionQuery::default()).unwrap().sessions.is_empty());
}

pub fn sessions_are_listed_by_pinned_state(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let (_, bob) = t.register("bob");
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|title| t.store.create_session(&lina, title).unwrap());
    let bobs = t.store.create_session(&bob, "bob's").unwrap();
    t.store.set_session_pinned(&bob, bobs.id, true).unwrap();
    t.store.set_session_pinned(&lina, b.id, true).unwrap();
    let both = SessionUpdate { pinned: Some(true), archived: Some(true), ..SessionUpdate::default() };
    t.store.update_session(&lina, c.id, &both).unwrap();

    let ids = |archived: bool, pinned: Option<bool>, page: Page| {
        let query = SessionQuery { archived, pinned, page, ..SessionQuery::default() };
        let listed = t.store.list_sessions(&lina, &query).unwrap();
        (listed.sessions.into_iter().map(|s| s.id).collect::<Vec<_>>(), listed.next)
    };
    let all = Page::default();
    assert_eq!(ids(false, None, all).0, [b.id, d.id, a.id], "pinned first, then newest");
    assert_eq!(ids(false, Some(true), all).0, [b.id], "only pinned, only lina's");
    assert_eq!(ids(false, Some(false), all).0, [d.id, a.id], "only unpinned");
    assert_eq!(ids(true, Some(true), all).0, [c.id], "with the archive");
    assert!(ids(true, Some(false), all).0.is_empty());

    // The filter applies before paging.
    let (first, next) = ids(false, Some(false), Page::first(1));
    assert_eq!(first, [d.id]);
    let (second, after) = ids(false, Some(false), next.expect("one more unpinned session"));
    assert_eq!((second, after), (vec![a.id], None));

    let search = SessionQuery { search: Some("b".into()), pinned: Some(false), ..SessionQuery::default() };
    assert!(t.store.list_sessions(&lina, &search).unwrap().sessions.is_empty(), "b is pinned");
}

pub fn exports_and_imports_keep_the_model(new_store: Factory) {
    let t = new_store();
    let (_, lina) = t.register("lina");
    let (_, copy) = t.register("copy");
    let (_, older) = t.register("older");
    let chosen = t.store.create_session_with(&lina, &with_model("chosen", QWEN)).unwrap();
    t.store.append_message(&lina, chosen.id, &ChatMessage::user("hello"), None).unwrap();
    t.store.create_session(&lina, "default").unwrap();

    let export = t.store.export_user_data(&lina).unwrap();
    let models: Vec<Option<&str>> = export.sessions.iter().map(|e| e.session.model.as_deref()).collect();
    assert_eq!(models, [Some(QWEN), None]);
    let json = t.store.export_json(&lina).unwrap();
    assert_eq!(t.store.import_json(&copy, &json).unwrap().sessions, 2);
    let imported = t.store.export_user_data(&copy).unwrap();
    let models: Vec<(&str, Option<&str>)> =
        imported.sessions.iter().map(|e| (e.session.title.as_str(), e.session.model.as_deref())).collect();
    assert_eq!(models, [("chosen", Some(QWEN)), ("default", None)]);
    assert_eq!(
        t.store.get_session(&copy, imported.sessions[0].session.id).unwrap().model.as_deref(),
        Some(QWEN)
    );

    // Exports written before sessions chose models import with the server's default.
    let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
    for entry in value["sessions"].as_array_mut().unwrap() {
        assert!(entry["session"].as_object_mut().unwrap().remove("model").is_some());
    }
    assert_eq!(t.store.import_json(&older, &serde_json::to_vec(&value).unwrap()).unwrap().sessions, 2);
    assert!(t.store.export_user_data(&older).unwrap().sessions.iter().all(|e| e.session.model.is_none()));

    // A model no call would have accepted refuses the whole import.
    let sessions_before = t.count_rows("sessions");
    let mut bad = export.clone();
    bad.sessions[1].session.model = Some(" ".into());
    assert_invalid(t.store.import_user_data(&copy, &bad), "model");
    bad.sessions[1].session.model = Some("m".repeat(MODEL_MAX_CHARS + 1));
    assert_invalid(t.store.import_user_data(&copy, &bad), "model");
    assert_eq!(t.count_rows("sessions"), sessions_before);
    assert_eq!(t.store.import_user_data(&copy, &export).unwrap().sessions, 2, "the good one still imports");
}
