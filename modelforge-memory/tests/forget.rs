//! Forgetting by topic through the `MemoryExtractor` trait: each phrasing, English or
//! Chinese, deletes every memory about its topic, whichever extractor wrote it, and nothing
//! else.

mod common;

use common::memory_at;
use modelforge_core::{ChatMessage, Memory, MemoryExtractor, MemoryKind, MemoryOp};
use modelforge_memory::RuleExtractor;

const NAME: &[&str] = &["The user's name is Lina.", "用户的名字是李娜。"];
const HOME: &[&str] = &[
    "The user lives in Lyon.",
    "The user's address is 12 Rue Oberkampf.",
    "The user's apartment is near the Croix-Rousse market.",
    "用户住在上海。",
    "用户的地址是浦东新区世纪大道100号。",
    "用户家住在浦东的一个小区。",
];
const WORK: &[&str] = &[
    "The user works as a nurse.",
    "The user works at Mercy Hospital.",
    "The user's office is in the Part-Dieu district.",
    "用户的工作是护士。",
    "用户在华为工作。",
];
const FAMILY: &[&str] = &[
    "The user's wife is called Ana.",
    "The user has two daughters.",
    "The user's dog is called Rex.",
    "The user's son Leo is seven years old.",
    "The user's sister lives in Boston.",
    "用户的女儿叫小雨。",
    "用户有两个孩子。",
    "用户的老公叫李强。",
];
const HEALTH: &[&str] = &[
    "The user is allergic to peanuts.",
    "The user has been diagnosed with type 2 diabetes.",
    "The user is pregnant.",
    "The user takes insulin every morning.",
    "The user has a cat allergy.",
    "用户对花生过敏。",
    "用户患有糖尿病。",
];
/// Memories no topic request may touch: tastes, a car, a note, a diet, languages, pronouns,
/// and look-alikes ("works out" is no work, "afraid of dogs" no pet).
const OTHERS: &[&str] = &[
    "The user likes jazz.",
    "The user dislikes olives.",
    "The user drives a blue Volvo.",
    "The user asked me to remember: my locker code is 4172.",
    "The user is vegetarian.",
    "The user speaks Portuguese.",
    "The user prefers answers in Spanish.",
    "The user's pronouns are they/them.",
    "The user works out every morning.",
    "The user is afraid of dogs.",
    "用户喜欢爵士乐。",
    "用户不喜欢香菜。",
    "用户的母语是粤语。",
];

fn stored() -> Vec<Memory> {
    let all = [NAME, HOME, WORK, FAMILY, HEALTH, OTHERS].concat();
    all.iter().enumerate().map(|(i, content)| memory_at(i as i64, MemoryKind::Fact, content)).collect()
}

/// The contents `text` deletes from `memories`, sorted; any other operation fails the test.
fn deleted(text: &str, memories: &[Memory]) -> Vec<String> {
    let ops = RuleExtractor::new().extract(&[ChatMessage::user(text)], memories).expect("rules never fail");
    let mut contents: Vec<String> = ops
        .iter()
        .map(|op| match op {
            MemoryOp::Delete { id } => {
                memories.iter().find(|m| m.id == *id).expect("a stored id").content.clone()
            }
            other => panic!("{text}: only deletions expected, got {other:?}"),
        })
        .collect();
    contents.sort();
    contents
}

fn sorted(contents: &[&str]) -> Vec<String> {
    let mut contents: Vec<String> = contents.iter().map(|c| (*c).to_owned()).collect();
    contents.sort();
    contents
}

#[test]
fn forgetting_a_job_deletes_title_employer_and_workplace() {
    let memories = stored();
    for text in [
        "Forget what I said about my job.",
        "Please forget where I work.",
        "Forget about my job, I quit.",
        "忘掉我工作的事",
        "请忘掉所有关于我工作的信息。",
        "帮我把关于我工作的记忆删掉",
    ] {
        assert_eq!(deleted(text, &memories), sorted(WORK), "{text}");
    }
}

#[test]
fn forgetting_where_i_live_deletes_city_address_and_neighbourhood() {
    let memories = stored();
    for text in [
        "Forget everything about where I live.",
        "Stop remembering my address.",
        "You don't need to remember my home address anymore.",
        "不要再记我住哪儿了",
        "把我的住址忘了吧",
        "别再记着我的地址。",
    ] {
        assert_eq!(deleted(text, &memories), sorted(HOME), "{text}");
    }
}

#[test]
fn forgetting_my_family_deletes_partner_children_pets_and_relatives() {
    let memories = stored();
    for text in [
        "Please forget my family details.",
        "Can you forget everything you know about my family?",
        "别记我的家人了",
        "忘记关于我家人的一切",
        "把我家人的信息都删了吧",
    ] {
        assert_eq!(deleted(text, &memories), sorted(FAMILY), "{text}");
    }
}

#[test]
fn forgetting_my_health_deletes_conditions_allergies_and_pregnancy() {
    let memories = stored();
    for text in [
        "Don't remember anything about my health.",
        "Please forget my medical history.",
        "不用再记我的健康状况了",
        "忘掉我身体的情况吧",
    ] {
        assert_eq!(deleted(text, &memories), sorted(HEALTH), "{text}");
    }
}

#[test]
fn a_part_of_a_topic_deletes_only_that_part() {
    let memories = stored();
    assert_eq!(
        deleted("Stop remembering my kids' names.", &memories),
        sorted(&[
            "The user has two daughters.",
            "The user's son Leo is seven years old.",
            "用户的女儿叫小雨。",
            "用户有两个孩子。"
        ])
    );
    assert_eq!(deleted("Forget my pet's name.", &memories), sorted(&["The user's dog is called Rex."]));
    assert_eq!(
        deleted("忘掉我的过敏", &memories),
        sorted(&["The user has a cat allergy.", "The user is allergic to peanuts.", "用户对花生过敏。"])
    );
    assert_eq!(deleted("Forget my name.", &memories), sorted(NAME));
    assert_eq!(deleted("Forget my pronouns.", &memories), sorted(&["The user's pronouns are they/them."]));
}

#[test]
fn two_topics_in_one_request() {
    let memories = stored();
    assert_eq!(deleted("Forget my job and where I live.", &memories), sorted(&[WORK, HOME].concat()));
    assert_eq!(deleted("忘掉我的住址和工作", &memories), sorted(&[WORK, HOME].concat()));
}

#[test]
fn forgetting_a_fact_still_deletes_only_that_fact() {
    let memories = stored();
    assert_eq!(deleted("Forget that I like olives.", &memories), sorted(&["The user dislikes olives."]));
    assert_eq!(deleted("Forget the locker code 4172.", &memories), sorted(&[OTHERS[3]]));
    assert_eq!(deleted("忘记我不喜欢香菜吧", &memories), sorted(&["用户不喜欢香菜。"]));
    assert_eq!(deleted("Forget that I'm allergic to peanuts.", &memories), sorted(&[HEALTH[0]]));
}

#[test]
fn a_forget_request_never_deletes_unrelated_memories() {
    let cat = memory_at(1, MemoryKind::Profile, "The user's cat is called Olive.");
    let paris = memory_at(2, MemoryKind::Profile, "The user lives in Paris.");
    let memories = [cat, paris];
    for text in [
        "Forget that I like olives.",
        "Forget that I like cats.",
        "Forget that I live in Lyon.",
        "Forget the family drama, let's talk about work.",
        "Remove my name from the cover letter.",
        "I don't remember my password.",
        "I keep forgetting my keys.",
        "Forget it.",
        "别记错了",
    ] {
        assert_eq!(deleted(text, &memories), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn what_follows_a_forget_request_is_learned() {
    let lyon = memory_at(1, MemoryKind::Profile, "The user lives in Lyon.");
    let ops = RuleExtractor::new()
        .extract(
            &[ChatMessage::user("Forget that I live in Lyon, I moved to Paris.")],
            std::slice::from_ref(&lyon),
        )
        .unwrap();
    assert_eq!(
        ops,
        [
            MemoryOp::Delete { id: lyon.id },
            MemoryOp::Add {
                kind: MemoryKind::Profile,
                content: "The user lives in Paris.".into(),
                confidence: 1.0
            }
        ]
    );
    let moved = RuleExtractor::new()
        .extract(
            &[ChatMessage::user("I moved to Paris, so forget that I live in Lyon.")],
            std::slice::from_ref(&lyon),
        )
        .unwrap();
    assert_eq!(moved, [MemoryOp::Update { id: lyon.id, content: "The user lives in Paris.".into() }]);
}
