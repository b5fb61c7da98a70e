//! The knowledge base against a real SQLite store: applying operations, learning from turns
//! (consolidation, forgetting), search scoped to one user, user control, and retrieval by
//! meaning with the real all-MiniLM-L6-v2 embedder.

use std::sync::{Arc, OnceLock};

use modelforge_core::{
    Actor, ChatMessage, Embedder, MemoryError, MemoryExtractor, MemoryKind, MemoryOp, NewMemory, NewUser,
    SessionId, SessionStore, StoreError, UserRole,
};
use modelforge_engine::BertEmbedder;
use modelforge_memory::{MemoryBank, RecallOptions, RuleExtractor, SearchOptions};
use modelforge_store::{SqliteStore, StoreOptions};

struct Fixture {
    store: Arc<dyn SessionStore>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("m.db"), StoreOptions::with_secret(vec![3; 32])).unwrap();
    Fixture { store: Arc::new(store), _dir: dir }
}

fn user(store: &dyn SessionStore, name: &str) -> Actor {
    let new = NewUser {
        username: name.into(),
        password: "a long enough password".into(),
        email: None,
        role: UserRole::User,
    };
    store.create_user(&new).unwrap().actor()
}

fn contents(store: &dyn SessionStore, actor: &Actor) -> Vec<String> {
    let mut all: Vec<String> = store.list_memories(actor).unwrap().into_iter().map(|m| m.content).collect();
    all.sort();
    all
}

fn embedder() -> Arc<dyn Embedder> {
    static EMBEDDER: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    EMBEDDER.get_or_init(|| Arc::new(BertEmbedder::load(modelforge_testkit::minilm_dir()).unwrap())).clone()
}

/// One token per word, like the echo model.
fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[test]
fn recall_takes_everything_that_fits_and_safety_first_when_not_everything_does() {
    let f = fixture();
    let lina = user(&*f.store, "lina");
    let bank = MemoryBank::new(f.store.clone(), None);
    let allergy = bank.add(&lina, MemoryKind::Profile, "The user is lactose intolerant.").unwrap();
    let name = bank.add(&lina, MemoryKind::Profile, "The user's name is Lina.").unwrap();
    let tennis = bank.add(&lina, MemoryKind::Preference, "The user likes tennis.").unwrap();
    let question = "What should I cook tonight?";

    let roomy = RecallOptions { budget_tokens: 1000, ..RecallOptions::default() };
    let all = bank.recall(&lina, question, &roomy, &words).unwrap();
    assert_eq!(all.len(), 3, "everything fits, so everything is recalled: {all:?}");

    for i in 0..40 {
        bank.add(&lina, MemoryKind::Fact, &format!("The user once noted errand number {i} of the week."))
            .unwrap();
    }
    let tight = RecallOptions { budget_tokens: 60, ..RecallOptions::default() };
    let chosen = bank.recall(&lina, question, &tight, &words).unwrap();
    assert_eq!(chosen[0].id, allergy.id, "what keeps the user safe comes first: {chosen:?}");
    assert_eq!(chosen[1].id, name.id, "then who they are");
    assert!(!chosen.iter().any(|m| m.id == tennis.id), "tennis has nothing to do with cooking");
    let about_tennis = bank.recall(&lina, "any tennis tips?", &tight, &words).unwrap();
    assert!(about_tennis.iter().any(|m| m.id == tennis.id), "a search hit joins them: {about_tennis:?}");

    let elsewhere = RecallOptions { exclude_session: Some(SessionId::new()), ..roomy };
    assert_eq!(bank.recall(&lina, question, &elsewhere, &words).unwrap().len(), 43);
}

#[test]
fn another_users_memory_is_not_found() {
    let f = fixture();
    let owner = user(&*f.store, "owner");
    let other = user(&*f.store, "other");
    let bank = MemoryBank::new(f.store.clone(), None);
    let mine = bank.add(&owner, MemoryKind::Fact, "The user has a cat.").unwrap();

    let err = bank.delete(&other, mine.id).unwrap_err();
    assert!(matches!(err, MemoryError::Store(StoreError::NotFound { what: "memory", .. })), "{err}");
    let err = bank.edit(&other, mine.id, "The user has a dog.").unwrap_err();
    assert!(matches!(err, MemoryError::Store(StoreError::NotFound { .. })), "{err}");
    assert!(bank.search(&other, "cat", &SearchOptions::default()).unwrap().is_empty());
    assert_eq!(bank.search(&owner, "cat", &SearchOptions::default()).unwrap()[0].memory.id, mine.id);
}

#[test]
fn learning_consolidates_moves_repeats_and_forget_requests() {
    let f = fixture();
    let lina = user(&*f.store, "lina");
    let bank = MemoryBank::new(f.store.clone(), None);
    let rules = RuleExtractor::new();
    let extractors: [&dyn MemoryExtractor; 1] = [&rules];
    let say = |text: &str| bank.learn(&lina, None, &[ChatMessage::user(text)], &extractors).unwrap();

    let first = say("My name is Lina and I live in Lyon. I like olives.");
    assert_eq!(first.changed.len(), 3);
    let again = say("My name is Lina and I live in Lyon.");
    assert!(again.changed.is_empty(), "the same facts twice are stored once: {again:?}");

    let moved = say("I moved from Lyon to Paris last month.");
    assert_eq!(moved.changed.len(), 1);
    assert_eq!(moved.changed[0].id, first.changed[1].id, "the home memory is updated in place");
    assert_eq!(
        contents(&*f.store, &lina),
        ["The user likes olives.", "The user lives in Paris.", "The user's name is Lina."]
    );

    let forgot = say("Please forget that I like olives.");
    assert_eq!(forgot.deleted, [first.changed[2].id]);
    say("Remember that my locker code is 4172.");
    assert!(contents(&*f.store, &lina).iter().any(|c| c.contains("4172")));
    say("I changed jobs, so forget the locker code 4172.");
    assert_eq!(contents(&*f.store, &lina), ["The user lives in Paris.", "The user's name is Lina."]);
    // The index followed every change.
    let hits = bank.search(&lina, "Where do I live?", &SearchOptions::default()).unwrap();
    assert_eq!(hits[0].memory.content, "The user lives in Paris.");
    assert!(bank.search(&lina, "olives", &SearchOptions::default()).unwrap().is_empty());
}

#[test]
fn chinese_memories_are_found_by_chinese_questions() {
    let f = fixture();
    let wang = user(&*f.store, "wang");
    let bank = MemoryBank::new(f.store.clone(), None);
    let rules = RuleExtractor::new();
    bank.learn(&wang, None, &[ChatMessage::user("我叫王磊，住在上海。我在华为工作。")], &[&rules]).unwrap();
    bank.learn(&wang, None, &[ChatMessage::user("我上个月从上海搬到杭州了。")], &[&rules]).unwrap();
    let top = |q: &str| bank.search(&wang, q, &SearchOptions::default()).unwrap()[0].memory.content.clone();
    assert_eq!(top("我现在住在哪里？"), "用户住在杭州。");
    assert_eq!(top("我在哪家公司工作？"), "用户在华为工作。");
    assert_eq!(top("我叫什么名字？"), "用户的名字是王磊。");
}

#[test]
fn user_control_add_edit_delete_export_and_reload() {
    let f = fixture();
    let lina = user(&*f.store, "lina");
    let bank = MemoryBank::new(f.store.clone(), None);
    let added = bank.add(&lina, MemoryKind::Fact, "The user is training for a marathon.").unwrap();
    let edited = bank.edit(&lina, added.id, "The user is training for a half marathon.").unwrap();
    assert_eq!(edited.id, added.id);
    let json: serde_json::Value = serde_json::from_slice(&bank.export_json(&lina).unwrap()).unwrap();
    assert_eq!(json[0]["content"], "The user is training for a half marathon.");
    assert!(json[0]["embedding"].is_null(), "vectors stay out of the export");

    // Written behind the bank's back: seen after reload.
    let rows = NewMemory {
        kind: MemoryKind::Fact,
        content: "The user rows on Sundays.".into(),
        source_session_id: None,
    };
    f.store.add_memory(&lina, &rows).unwrap();
    assert!(bank.search(&lina, "rows Sundays", &SearchOptions::default()).unwrap().is_empty());
    bank.reload(lina.user_id);
    assert_eq!(bank.search(&lina, "rows Sundays", &SearchOptions::default()).unwrap().len(), 1);

    bank.delete(&lina, added.id).unwrap();
    assert_eq!(contents(&*f.store, &lina), ["The user rows on Sundays."]);
}

#[test]
fn the_embedder_finds_memories_by_meaning_and_vectors_are_stored() {
    let f = fixture();
    let lina = user(&*f.store, "lina");
    let bank = MemoryBank::new(f.store.clone(), Some(embedder()));
    for text in [
        "The user is allergic to peanuts.",
        "The user plays the cello in an orchestra.",
        "The user drives a blue Volvo.",
        "The user has read Dune twice.",
        "The user grows tomatoes on the balcony.",
    ] {
        bank.add(&lina, MemoryKind::Fact, text).unwrap();
    }
    // No keyword in common with the memory it should find.
    let top = |q: &str| bank.search(&lina, q, &SearchOptions::default()).unwrap()[0].memory.content.clone();
    assert_eq!(top("Which foods make me sick?"), "The user is allergic to peanuts.");
    assert_eq!(
        top("What musical instrument do I perform with?"),
        "The user plays the cello in an orchestra."
    );
    assert_eq!(top("What car do I own?"), "The user drives a blue Volvo.");
    let records = f.store.list_memory_records(&lina).unwrap();
    assert!(records.iter().all(|r| r.embedding.as_ref().is_some_and(|e| e.len() == 384)));

    // A new bank (another process) loads the stored vectors instead of embedding again.
    let reopened = MemoryBank::new(f.store.clone(), Some(embedder()));
    let hits = reopened.search(&lina, "What car do I own?", &SearchOptions::default()).unwrap();
    assert_eq!(hits[0].memory.content, "The user drives a blue Volvo.");
    assert!(hits[0].similarity > 0.3, "{hits:?}");
}

#[test]
fn memories_stored_without_vectors_are_embedded_and_saved_on_first_use() {
    let f = fixture();
    let lina = user(&*f.store, "lina");
    let plain =
        NewMemory { kind: MemoryKind::Fact, content: "The user keeps bees.".into(), source_session_id: None };
    f.store.add_memory(&lina, &plain).unwrap();
    let bank = MemoryBank::new(f.store.clone(), Some(embedder()));
    let hits = bank.search(&lina, "Do I have any insects as a hobby?", &SearchOptions::default()).unwrap();
    assert_eq!(hits[0].memory.content, "The user keeps bees.");
    assert!(f.store.list_memory_records(&lina).unwrap()[0].embedding.is_some(), "the vector was saved");
}

#[test]
fn a_paraphrased_fact_from_the_model_updates_or_is_skipped() {
    // Mem0-style consolidation of free-text facts: a near-identical one is known, a close one
    // of the same kind replaces the old one.
    let f = fixture();
    let lina = user(&*f.store, "lina");
    let bank = MemoryBank::new(f.store.clone(), Some(embedder()));
    struct Said(Vec<MemoryOp>);
    impl MemoryExtractor for Said {
        fn name(&self) -> &str {
            "fixed"
        }
        fn extract(
            &self,
            _: &[ChatMessage],
            _: &[modelforge_core::Memory],
        ) -> Result<Vec<MemoryOp>, MemoryError> {
            Ok(self.0.clone())
        }
    }
    let add =
        |content: &str| MemoryOp::Add { kind: MemoryKind::Fact, content: content.into(), confidence: 0.9 };
    let turn = [ChatMessage::user("(a turn)")];
    let first =
        bank.learn(&lina, None, &turn, &[&Said(vec![add("The user is allergic to peanuts.")])]).unwrap();
    assert_eq!(first.changed.len(), 1);
    let same =
        bank.learn(&lina, None, &turn, &[&Said(vec![add("the user is allergic to peanuts")])]).unwrap();
    assert_eq!((same.changed.len(), same.duplicates), (0, 1));
    let other = bank.learn(&lina, None, &turn, &[&Said(vec![add("The user collects stamps.")])]).unwrap();
    assert_eq!(other.changed.len(), 1);
    assert_eq!(f.store.list_memories(&lina).unwrap().len(), 2);
    let record = &f.store.list_memory_records(&lina).unwrap()[0];
    assert!((record.confidence - 0.9).abs() < 1e-6, "the extractor's confidence is stored");
}

#[test]
fn a_move_replaces_the_old_home_however_many_memories_stand_between_them() {
    let f = fixture();
    let lina = user(&*f.store, "lina");
    let bank = MemoryBank::new(f.store.clone(), None);
    let rules: [&dyn MemoryExtractor; 1] = [&RuleExtractor::new()];
    bank.learn(&lina, None, &[ChatMessage::user("I live in Paris.")], &rules).unwrap();
    for i in 0..60 {
        bank.add(
            &lina,
            MemoryKind::Fact,
            &format!("The user's neighbour number {i} lives in a house with a garden."),
        )
        .unwrap();
    }
    let learned = bank.learn(&lina, None, &[ChatMessage::user("I just moved to Berlin.")], &rules).unwrap();
    assert_eq!(learned.changed.len(), 1, "{learned:?}");
    let homes: Vec<String> =
        contents(&*f.store, &lina).into_iter().filter(|m| m.starts_with("The user lives")).collect();
    assert_eq!(homes, ["The user lives in Berlin."], "the stale home is gone");
}
