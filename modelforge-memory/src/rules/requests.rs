//! Requests to remember or forget: "remember that ...", "forget that I like olives",
//! "请记住……", "忘掉我的车牌号".

use std::sync::LazyLock;

use regex::Regex;

use super::said::{Said, clause_facts, clause_starts};
use super::topics::Topic;
use crate::clauses::clauses;
use crate::fact::{Fact, Lang, Slot};
use crate::keywords::is_han;

/// What a request asks for.
pub(super) enum Request {
    /// Forget what [`Said::Forget`] names; `then` holds what the rest of the sentence states
    /// ("forget that I live in Lyon, I moved to Paris").
    Forget { forget: Said, then: Vec<Fact> },
    /// Remember these facts.
    Remember(Vec<Fact>),
    /// A request that names nothing usable ("forget it").
    Nothing,
}

/// The request opening `rest_of_sentence`, if it opens with one; it takes the rest of the
/// sentence.
pub(super) fn request_in(rest_of_sentence: &str) -> Option<Request> {
    if let Some(rest) = forget_rest(rest_of_sentence) {
        return Some(forget(&rest));
    }
    if !REMEMBER.is_match(rest_of_sentence) {
        return None;
    }
    let Some(rest) = request(&REMEMBER, rest_of_sentence) else { return Some(Request::Nothing) };
    Some(Request::Remember(remembered(&rest)))
}

/// What a request to forget names, from its verb to the end of the sentence; "把我的住址忘了吧"
/// names it before the verb.
fn forget_rest(rest_of_sentence: &str) -> Option<String> {
    if let Some(caps) = FORGET_OBJECT_FIRST.captures(rest_of_sentence) {
        return Some(format!("{}{}", &caps["v"], &caps["tail"]));
    }
    // "家里人的信息你别记了": without "把", only a topic may come first.
    if let Some(caps) = FORGET_TOPIC_FIRST.captures(rest_of_sentence)
        && !Topic::all_named_by(&caps["v"]).is_empty()
    {
        return Some(format!("{}{}", &caps["v"], &caps["tail"]));
    }
    // "drop the stuff about my work": verbs with other meanings ("drop me a line") must name a
    // topic.
    if let Some(rest) = request(&FORGET_LOOSE, rest_of_sentence) {
        let first = clauses(&rest).into_iter().next().unwrap_or_default();
        if !Topic::all_named_by(&first).is_empty() {
            return Some(rest);
        }
    }
    let rest = request(&FORGET, rest_of_sentence)?;
    // "别记错了" is "don't get it wrong", not a request to forget.
    (!rest.starts_with(['错', '混'])).then_some(rest)
}

/// The request to forget `rest`: its first clause, and the clauses after it that go on
/// naming ("my job and where I live"); a clause that states something new ends it.
fn forget(rest: &str) -> Request {
    let parts = clauses(rest);
    let starts = clause_starts(rest, &parts);
    let mut named: Vec<&str> = Vec::new();
    let mut then: Vec<&str> = Vec::new();
    for (i, clause) in parts.iter().enumerate() {
        let gap =
            if i == 0 { "" } else { rest.get(starts[i - 1] + parts[i - 1].len()..starts[i]).unwrap_or("") };
        if i == 0 || (then.is_empty() && continues_request(gap, clause)) {
            named.push(clause);
        } else {
            then.push(clause);
        }
    }
    let then: Vec<Fact> = then.iter().flat_map(|c| clause_facts(c)).collect();
    let facts: Vec<Fact> = named.iter().flat_map(|c| clause_facts(c)).collect();
    let topics: Vec<Topic> = named.iter().flat_map(|c| Topic::all_named_by(c)).collect();
    let phrase = forget_phrase(named.first().copied().unwrap_or_default());
    if facts.is_empty() && phrase.is_empty() && topics.is_empty() {
        return Request::Nothing;
    }
    Request::Forget { forget: Said::Forget { facts, phrase, topics }, then }
}

/// Whether the clause after `gap` still names what to forget: joined by "and", opening with
/// "that", or naming a topic.
fn continues_request(gap: &str, clause: &str) -> bool {
    let gap = gap.to_lowercase();
    let joined = gap.contains("and") || gap.contains(['和', '、', '&']) || gap.contains("以及");
    joined || CONTINUES.is_match(clause) || !Topic::all_named_by(clause).is_empty()
}

/// A clause that goes on naming what to forget ("that I hate jazz", "还有我的地址").
static CONTINUES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:also\s+)?(?:that|about|the\s+fact\s+that|what\s+i)\s|^(?:还有|以及|和|也)")
        .expect("the continuation pattern compiles")
});

/// The facts of "remember that ...": the facts its patterns find, or else the rest itself.
fn remembered(rest: &str) -> Vec<Fact> {
    let mut facts: Vec<Fact> = clauses(rest).iter().flat_map(|c| clause_facts(c)).collect();
    let value = rest.trim_end_matches(['.', '。', '!', '！', ' ']).trim();
    // "remember that my sister Freya's wedding is on June 14th": the sister is named in
    // passing; the note is the wedding.
    let in_passing = facts.iter().any(|f| f.slot == Slot::Relative && words_after(value, &f.value) >= 2);
    if !facts.is_empty() && !in_passing {
        return facts;
    }
    let chars = value.chars().count();
    if !(2..=200).contains(&chars) {
        return facts;
    }
    let lang = if value.chars().any(is_han) { Lang::Chinese } else { Lang::English };
    facts.push(Fact::new(Slot::Remember, value).in_lang(lang));
    facts
}

/// How many words of `text` follow `value`.
fn words_after(text: &str, value: &str) -> usize {
    text.find(value).map_or(0, |i| text[i + value.len()..].split_whitespace().count())
}

/// "Remember that ...", "请记住……": the rest of the sentence.
static REMEMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:please|also|oh|and|hey|btw|by the way)[,\s]+)*(?:(?:(?:can|could|would)\s+you\s+|you\s+(?:should|can|need\s+to)\s+)?(?:please\s+)?(?:remember|note|keep in mind|don't forget|do not forget|make a note)(?:\s+that|\s*:)?|(?:请|麻烦|帮我)?(?:你|您)?(?:能|可以|要)?(?:帮我)?(?:记住|记一下|记下|别忘了|不要忘了)(?:[，,：:]|这个)?)\s*(?P<v>.+)",
    )
    .expect("the remember pattern compiles")
});

/// "Forget that I like olives", "stop remembering my address", "忘掉我的车牌号", "别记我的家人了":
/// the rest of the sentence.
static FORGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:please|also|oh|and|hey|actually|good\s+news|ok|okay|so|um|uh|hm+|ugh|well|btw|anyway|look|listen|yeah|on\s+second\s+thoughts?)[,\s]+)*(?:(?:(?:can|could|would)\s+you\s+|you\s+can\s+)?(?:please\s+)?(?:forget|delete|erase|remove|(?:stop|quit)\s+remembering|stop\s+(?:keeping\s+track\s+of|tracking|storing|saving)|(?:don't|do\s+not|no\s+need\s+to|there's\s+no\s+need\s+to|you\s+(?:don't|do\s+not)\s+(?:need|have)\s+to|no\s+longer)\s+remember|(?:i'd|i\s+would)\s+(?:prefer|rather)\s+(?:if\s+)?you\s+(?:not|didn't|did\s+not|don't|wouldn't)\s+(?:hold\s+on\s+to|hold\s+onto|keep|store|remember|save|record))\s+(?:(?:that|about|what\s+i\s+(?:said|told\s+you)\s+about|the\s+fact\s+that)\s+)?|(?:请|麻烦|帮我)?(?:你|您)?(?:能|可以|就)?(?:帮我)?(?:忘记|忘掉|忘了|删除|删掉|(?:别|不要|不用|不必|不需要)(?:再)?记(?:住|着|录)?|停止记(?:录|住)?)(?:关于)?)\s*(?P<v>.+)",
    )
    .expect("the forget pattern compiles")
});

/// "把我的住址忘了吧": what to forget (`v`) before the verb, then the rest of the sentence.
static FORGET_OBJECT_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        "^(?:请|麻烦你?|你|您|帮我|就|能不能|可以)*把(?P<v>[^，。！？,.!?]+?)(?:都|全|全部|全都)?(?:给我)?(?:给)?(?:忘了|忘掉|忘记|删了|删掉|删除|清除|清掉|抹掉)(?P<tail>.*)$",
    )
    .expect("the object-first forget pattern compiles")
});

/// "Can you drop the stuff about my work?": verbs that forget only when a topic follows.
static FORGET_LOOSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:please|also|oh|and|hey|actually|ok|okay|so|um|hm+|ugh|well|btw|anyway)[,\s]+)*(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?(?:wipe|clear|drop|scrap|ditch|get\s+rid\s+of|(?:don't|do\s+not)\s+(?:keep|store|save|record))\s+(?P<v>.+)",
    )
    .expect("the loose forget pattern compiles")
});

/// "家里人的信息你别记了", "之前说的关于我工作的那些，你都删掉吧": a topic (`v`), then the verb.
static FORGET_TOPIC_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        "^(?:之前|以前|刚才)?(?:我)?(?:说|讲|提|告诉你)?(?:过)?(?:的)?(?P<v>[^，。！？,.!?]+?)[，,]?(?:你|您)?(?:就|都|全|全部|全都|也)*(?:给我)?(?:忘了|忘掉|忘记|删了|删掉|删除|清除|清掉|抹掉|(?:别|不要|不用)(?:再)?记(?:了|啦|住|着)?)(?P<tail>.*)$",
    )
    .expect("the topic-first forget pattern compiles")
});

fn request(pattern: &Regex, sentence: &str) -> Option<String> {
    let caps = pattern.captures(sentence)?;
    let rest = caps.name("v")?.as_str().trim();
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// The words of a forget request that name what to forget: "my passport number" gives
/// "passport number", "我的车牌号" gives "车牌号".
fn forget_phrase(rest: &str) -> String {
    let mut phrase = rest.trim().trim_end_matches(['.', '。', '!', '！', '吧', '了', '啊']).trim();
    for prefix in ["my ", "My ", "the ", "The ", "about ", "that ", "我的", "我", "关于"] {
        if let Some(shorter) = phrase.strip_prefix(prefix) {
            phrase = shorter.trim();
        }
    }
    phrase.to_owned()
}

#[cfg(test)]
mod tests {
    use crate::fact::{Fact, Slot};
    use crate::rules::said::{Said, said_in, slot_values as facts};
    use crate::rules::topics::Topic;

    fn one(slot: Slot, value: &str) -> Vec<(Slot, String)> {
        vec![(slot, value.to_owned())]
    }

    #[test]
    fn remember_and_forget_requests() {
        assert_eq!(
            facts("Please remember that my passport expires in March."),
            one(Slot::Remember, "my passport expires in March")
        );
        assert_eq!(facts("Remember that I hate olives"), one(Slot::Dislikes, "olives"));
        assert_eq!(facts("记住，我的车牌号是沪A12345。"), one(Slot::Remember, "我的车牌号是沪A12345"));
        assert_eq!(
            facts("remember that my sister Freya's wedding is on June 14th"),
            [
                (Slot::Relative, "Freya".to_owned()),
                (Slot::Remember, "my sister Freya's wedding is on June 14th".to_owned())
            ]
        );
        assert_eq!(facts("Remember that my wife is called Ana."), one(Slot::Relative, "Ana"));
        let forget = said_in("Forget that I like olives.");
        assert_eq!(
            forget,
            [Said::Forget {
                facts: vec![Fact::new(Slot::Likes, "olives")],
                phrase: "I like olives".into(),
                topics: vec![]
            }]
        );
        let jeep = said_in("I sold the car, so forget that I drive a green Jeep.");
        assert_eq!(
            jeep,
            [Said::Forget {
                facts: vec![Fact::new(Slot::Drives, "a green Jeep")],
                phrase: "I drive a green Jeep".into(),
                topics: vec![]
            }]
        );
        assert_eq!(facts("Forget that I like olives."), []);
        assert!(
            matches!(&said_in("忘掉我的车牌号")[..], [Said::Forget { facts, phrase, .. }] if facts.is_empty() && phrase == "车牌号")
        );
        assert_eq!(said_in("I forgot my keys."), []);
    }

    fn topics(text: &str) -> Vec<Topic> {
        match &said_in(text)[..] {
            [Said::Forget { topics, .. }, ..] => topics.clone(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn requests_to_forget_a_topic() {
        assert_eq!(topics("Forget what I said about my job."), [Topic::Work]);
        assert_eq!(topics("Forget everything about where I live."), [Topic::Home]);
        assert_eq!(topics("Please forget my family details."), [Topic::Family]);
        assert_eq!(topics("Stop remembering my address."), [Topic::Home]);
        assert_eq!(topics("Don't remember anything about my health."), [Topic::Health]);
        assert_eq!(topics("You don't need to remember my kids' names anymore."), [Topic::Children]);
        assert_eq!(topics("Forget my job and where I live."), [Topic::Work, Topic::Home]);
        assert_eq!(topics("不要再记我住哪儿了"), [Topic::Home]);
        assert_eq!(topics("忘掉我工作的事"), [Topic::Work]);
        assert_eq!(topics("别记我的家人了"), [Topic::Family]);
        assert_eq!(topics("把我的住址忘了吧"), [Topic::Home]);
        assert_eq!(topics("ok can you forget everything I told you about my job?"), [Topic::Work]);
        assert_eq!(topics("Can you drop the stuff about my work?"), [Topic::Work]);
        assert_eq!(
            topics("on second thought I'd prefer you not hold on to my address or where I live."),
            [Topic::Home, Topic::Home]
        );
        assert_eq!(topics("家里人的信息你别记了，之前说的都删掉吧"), [Topic::Family]);
        assert_eq!(topics("之前说的关于我工作的那些，你都删掉吧，公司和职位都别留"), [Topic::Work]);
        assert_eq!(topics("Forget that I like olives."), []);
    }

    #[test]
    fn what_follows_a_request_to_forget_is_a_statement() {
        let said = said_in("Forget that I live in Lyon, I moved to Paris.");
        assert!(matches!(&said[..], [Said::Forget { facts, .. }, Said::Fact(paris)]
            if facts == &[Fact::new(Slot::Home, "Lyon")] && paris == &Fact::new(Slot::Home, "Paris")));
        let both = said_in("Forget that I like olives and that I hate jazz.");
        assert!(matches!(&both[..], [Said::Forget { facts, .. }] if facts.len() == 2));
    }

    #[test]
    fn look_alikes_are_no_requests() {
        for text in [
            "I don't remember my password.",
            "I keep forgetting my keys.",
            "别记错了",
            "I'd rather you not use bullet points.",
            "Drop me a line.",
        ] {
            assert!(!said_in(text).iter().any(|s| matches!(s, Said::Forget { .. })), "{text}");
        }
        assert_eq!(facts("别记错了，我住在北京"), one(Slot::Home, "北京"));
    }
}
