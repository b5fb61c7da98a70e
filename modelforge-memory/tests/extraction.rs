//! The rule extractor through the `MemoryExtractor` trait: what it finds in English and
//! Chinese, and how it consolidates against existing memories.

mod common;

use std::sync::Arc;

use common::memory_at;
use modelforge_core::{ChatMessage, Memory, MemoryExtractor, MemoryKind, MemoryOp};
use modelforge_memory::RuleExtractor;

fn extract(text: &str, existing: &[Memory]) -> Vec<MemoryOp> {
    RuleExtractor::new().extract(&[ChatMessage::user(text)], existing).expect("rules never fail")
}

fn add(kind: MemoryKind, content: &str) -> MemoryOp {
    MemoryOp::Add { kind, content: content.to_owned(), confidence: 1.0 }
}

#[test]
fn english_name_and_home_in_one_sentence() {
    assert_eq!(
        extract("My name is Lina and I live in Lyon.", &[]),
        [
            add(MemoryKind::Profile, "The user's name is Lina."),
            add(MemoryKind::Profile, "The user lives in Lyon.")
        ]
    );
}

#[test]
fn chinese_name_and_home_keep_the_values_verbatim() {
    let ops = extract("我叫李娜，我住在上海。", &[]);
    assert_eq!(
        ops,
        [add(MemoryKind::Profile, "用户的名字是李娜。"), add(MemoryKind::Profile, "用户住在上海。")]
    );
    assert_eq!(
        extract("我的名字是王芳，我在北京住。", &[]),
        [add(MemoryKind::Profile, "用户的名字是王芳。"), add(MemoryKind::Profile, "用户住在北京。")]
    );
}

#[test]
fn other_english_phrasings() {
    assert_eq!(extract("I'm called Lina.", &[]), [add(MemoryKind::Profile, "The user's name is Lina.")]);
    assert_eq!(extract("Please call me Lina", &[]), [add(MemoryKind::Profile, "The user's name is Lina.")]);
    assert_eq!(extract("I'm from Lyon, France.", &[]), [add(MemoryKind::Profile, "The user lives in Lyon.")]);
}

#[test]
fn likes_and_dislikes_in_english() {
    assert_eq!(
        extract("I love jazz. I enjoy long walks, and I don't like olives. I hate rain!", &[]),
        [
            add(MemoryKind::Preference, "The user likes jazz."),
            add(MemoryKind::Preference, "The user likes long walks."),
            add(MemoryKind::Preference, "The user dislikes olives."),
            add(MemoryKind::Preference, "The user dislikes rain."),
        ]
    );
}

#[test]
fn likes_and_dislikes_in_chinese() {
    assert_eq!(
        extract("我喜欢爵士乐。我不喜欢香菜，我讨厌下雨天！", &[]),
        [
            add(MemoryKind::Preference, "用户喜欢爵士乐。"),
            add(MemoryKind::Preference, "用户不喜欢香菜。"),
            add(MemoryKind::Preference, "用户不喜欢下雨天。"),
        ]
    );
}

#[test]
fn ordinary_text_yields_nothing() {
    for text in [
        "The weather is nice today.",
        "I live in fear of deadlines.",
        "What is my name?",
        "Can you call me back later?",
        "I would like a summary of this article.",
        "今天天气很好。",
        "我叫什么名字？",
    ] {
        assert_eq!(extract(text, &[]), [], "{text}");
    }
}

#[test]
fn only_user_messages_are_read() {
    let turn =
        [ChatMessage::system("My name is Bot."), ChatMessage::assistant("I live in Paris and I love jazz.")];
    assert_eq!(RuleExtractor::new().extract(&turn, &[]).unwrap(), []);

    let turn = [
        ChatMessage::user("I live in Lyon."),
        ChatMessage::assistant("Lyon is lovely! I live in the cloud."),
    ];
    assert_eq!(
        RuleExtractor::new().extract(&turn, &[]).unwrap(),
        [add(MemoryKind::Profile, "The user lives in Lyon.")]
    );
}

#[test]
fn a_known_fact_gives_no_operation() {
    let existing = [
        memory_at(1, MemoryKind::Profile, "The user's name is Lina."),
        memory_at(2, MemoryKind::Preference, "The user likes jazz."),
        memory_at(3, MemoryKind::Profile, "The user lives in 上海."),
    ];
    assert_eq!(extract("My name is Lina.", &existing), []);
    assert_eq!(extract("I like Jazz!", &existing), [], "letter case does not make a new fact");
    assert_eq!(extract("我住在上海", &existing), []);
}

#[test]
fn the_same_fact_twice_in_one_message_is_added_once() {
    assert_eq!(
        extract("I live in Lyon. Yes, I live in Lyon.", &[]),
        [add(MemoryKind::Profile, "The user lives in Lyon.")]
    );
}

#[test]
fn moving_updates_the_home_memory() {
    let home = memory_at(1, MemoryKind::Profile, "The user lives in Lyon.");
    let other = memory_at(2, MemoryKind::Preference, "The user likes jazz.");
    let ops = extract("I live in Paris now.", &[home.clone(), other]);
    assert_eq!(ops, [MemoryOp::Update { id: home.id, content: "The user lives in Paris.".into() }]);
}

#[test]
fn what_no_pattern_reads_is_kept_in_the_users_words_and_goes_stale_like_a_fact() {
    let extract = |text: &str, existing: &[Memory]| {
        RuleExtractor::new().with_own_words(true).extract(&[ChatMessage::user(text)], existing).unwrap()
    };
    let text = "we finally got the keys to our apartment in leith";
    assert_eq!(RuleExtractor::new().extract(&[ChatMessage::user(text)], &[]).unwrap(), [], "off by default");
    let note = "The user said: \"we finally got the keys to our apartment in leith\".";
    assert_eq!(extract(text, &[]), [add(MemoryKind::Profile, note)]);

    // A newer statement about where the user lives makes the note stale, and a note that tells
    // of a move makes the home fact stale.
    let said = memory_at(1, MemoryKind::Profile, note);
    let jazz = memory_at(2, MemoryKind::Preference, "The user likes jazz.");
    let ops = extract("I live in Glasgow.", &[said.clone(), jazz.clone()]);
    assert_eq!(
        ops,
        [MemoryOp::Delete { id: said.id }, add(MemoryKind::Profile, "The user lives in Glasgow.")]
    );
    let home = memory_at(1, MemoryKind::Profile, "The user lives in Bristol.");
    let moved = "we relocated up north for good, the whole family's living near the coast";
    let ops = extract(moved, &[home.clone(), jazz.clone()]);
    assert_eq!(ops[0], MemoryOp::Delete { id: home.id }, "{ops:?}");
    assert_eq!(ops.len(), 2, "{ops:?}");

    // Leaving a job forgets the employer.
    let employer = memory_at(1, MemoryKind::Profile, "The user works at Amazon.");
    let ops = extract("I switched jobs, I'm no longer at Amazon.", &[employer.clone(), jazz]);
    assert_eq!(ops, [MemoryOp::Delete { id: employer.id }]);
}

#[test]
fn a_new_name_updates_the_name_memory_across_languages() {
    let name = memory_at(1, MemoryKind::Profile, "The user's name is Lina.");
    let ops = extract("我叫李娜", std::slice::from_ref(&name));
    assert_eq!(ops, [MemoryOp::Update { id: name.id, content: "用户的名字是李娜。".into() }]);
}

#[test]
fn the_newest_memory_of_a_slot_is_the_one_updated() {
    // Listed out of order on purpose: recency comes from created_at.
    let newer = memory_at(20, MemoryKind::Profile, "The user lives in Lyon.");
    let older = memory_at(10, MemoryKind::Profile, "The user lives in Nice.");
    let ops = extract("I live in Paris.", &[newer.clone(), older]);
    assert_eq!(ops, [MemoryOp::Update { id: newer.id, content: "The user lives in Paris.".into() }]);
}

#[test]
fn a_like_contradicting_a_dislike_updates_it_and_back() {
    let dislike = memory_at(1, MemoryKind::Preference, "The user dislikes olives.");
    assert_eq!(
        extract("Actually I love olives now.", std::slice::from_ref(&dislike)),
        [MemoryOp::Update { id: dislike.id, content: "The user likes olives.".into() }]
    );

    let like = memory_at(1, MemoryKind::Preference, "The user likes 香菜.");
    assert_eq!(
        extract("我不喜欢香菜了", std::slice::from_ref(&like)),
        [MemoryOp::Update { id: like.id, content: "用户不喜欢香菜。".into() }]
    );
}

#[test]
fn a_different_like_is_added_beside_existing_ones() {
    let existing = [memory_at(1, MemoryKind::Preference, "The user likes jazz.")];
    assert_eq!(extract("I like blues", &existing), [add(MemoryKind::Preference, "The user likes blues.")]);
}

#[test]
fn a_change_of_mind_within_one_message_gives_one_operation() {
    assert_eq!(
        extract("I live in Lyon. Well, I just moved to Paris.", &[]),
        [add(MemoryKind::Profile, "The user lives in Paris.")]
    );
    let home = memory_at(1, MemoryKind::Profile, "The user lives in Nice.");
    assert_eq!(
        extract("I moved to Berlin. No, I moved to Paris.", std::slice::from_ref(&home)),
        [MemoryOp::Update { id: home.id, content: "The user lives in Paris.".into() }]
    );
}

#[test]
fn memories_written_elsewhere_are_left_alone() {
    let existing = [memory_at(1, MemoryKind::Fact, "The user has a cat named Miso.")];
    assert_eq!(extract("I live in Lyon", &existing), [add(MemoryKind::Profile, "The user lives in Lyon.")]);
}

#[test]
fn it_is_an_object_safe_extractor_named_rules() {
    let extractor: Arc<dyn MemoryExtractor> = Arc::new(RuleExtractor::default());
    assert_eq!(extractor.name(), "rules");
    let ops = extractor.extract(&[ChatMessage::user("I hate olives")], &[]).unwrap();
    assert_eq!(ops, [add(MemoryKind::Preference, "The user dislikes olives.")]);
}

#[test]
fn what_keeps_the_user_safe_is_a_profile_memory() {
    let profile = |text: &str, content: &str| {
        assert_eq!(extract(text, &[]), [add(MemoryKind::Profile, content)], "{text}");
    };
    profile("I'm allergic to peanuts.", "The user is allergic to peanuts.");
    profile("I can't eat shellfish, allergic.", "The user is allergic to shellfish.");
    profile("我对花生过敏", "用户对花生过敏。");
    profile("I'm lactose intolerant.", "The user is lactose intolerant.");
    profile("我乳糖不耐受", "用户是乳糖不耐受者。");
    profile("I'm vegan.", "The user is vegan.");
    profile("I only eat halal.", "The user's diet is halal.");
    profile("I keep kosher.", "The user's diet is kosher.");
    profile("I'm gluten-free.", "The user's diet is gluten-free.");
    profile("我吃素。", "用户的饮食要求是吃素。");
    profile("I don't eat pork.", "The user does not eat pork.");
    profile("I have type 2 diabetes.", "The user has been diagnosed with type 2 diabetes.");
    profile("我有糖尿病", "用户患有糖尿病。");
    profile("I'm pregnant!", "The user is pregnant.");
    profile("我怀孕了", "用户是孕妇（正在怀孕）。");
}

#[test]
fn lists_who_the_user_is_and_how_to_talk_to_them_are_profile_memories() {
    let profile = |text: &str, contents: &[&str]| {
        let expected: Vec<MemoryOp> = contents.iter().map(|c| add(MemoryKind::Profile, c)).collect();
        assert_eq!(extract(text, &[]), expected, "{text}");
    };
    profile("My pronouns are they/them.", &["The user's pronouns are they/them."]);
    profile(
        "I speak Portuguese and a bit of French.",
        &["The user speaks Portuguese.", "The user speaks a bit of French."],
    );
    profile("My first language is Tamil.", &["The user's first language is Tamil."]);
    profile("Please answer in Spanish.", &["The user prefers answers in Spanish."]);
    profile("我母语是粤语", &["用户的母语是粤语。"]);
    profile(
        "I have asthma and epilepsy.",
        &["The user has been diagnosed with asthma.", "The user has been diagnosed with epilepsy."],
    );
    profile("我有糖尿病和高血压。", &["用户患有糖尿病。", "用户患有高血压。"]);
    profile("我会说英语和一点法语", &["用户会说英语。", "用户会说一点法语。"]);
    profile("请用中文回答", &["用户希望用中文回答。"]);
    profile(
        "My wife is called Ana and we have two kids.",
        &["The user's wife is called Ana.", "The user has two kids."],
    );
    profile("I'm Lina.", &["The user's name is Lina."]);
}

#[test]
fn other_peoples_health_and_questions_are_not_about_the_user() {
    for text in [
        "My friend is allergic to cats.",
        "Is it safe to eat peanuts if you're allergic?",
        "My son has type 2 diabetes.",
        "I think I might have asthma.",
        "My wife is pregnant.",
        "Do you speak Portuguese?",
        "How do you say thank you in Tamil?",
        "Please answer in English this time.",
        "我朋友对花生过敏。",
        "对花生过敏的人能吃什么？",
        "我爸有糖尿病。",
        "请用英文解释一下这个词。",
    ] {
        assert_eq!(extract(text, &[]), [], "{text}");
    }
}

#[test]
fn a_new_level_of_a_language_updates_it() {
    let french = memory_at(1, MemoryKind::Profile, "The user speaks a bit of French.");
    assert_eq!(
        extract("I speak fluent French now.", std::slice::from_ref(&french)),
        [MemoryOp::Update { id: french.id, content: "The user speaks fluent French.".into() }]
    );
}
