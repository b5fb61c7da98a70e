//! Reading one message: its sentences, their clauses, and what each says about the user.

use std::sync::LazyLock;

use regex::Regex;

use super::care::{allergy_list, condition_list};
use super::languages::spoken_languages;
use super::patterns::{PATTERNS, SENTENCE_PATTERNS};
use super::requests::{Request, request_in};
use super::topics::Topic;
use crate::clauses::{all_sentences, clauses};
use crate::fact::{Fact, Slot};

/// What one message says about the user: facts, and requests to forget something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    /// A fact to remember.
    Fact(Fact),
    /// "Forget that I like olives": the facts named (if the rest parses as facts), the
    /// phrase itself, for memories no pattern wrote, and the topics named as a whole ("forget
    /// my job": every memory about it).
    Forget { facts: Vec<Fact>, phrase: String, topics: Vec<Topic> },
}

/// The facts stated in `text`, in order (requests to forget are left out).
#[cfg(test)]
pub(crate) fn facts_in(text: &str) -> Vec<Fact> {
    said_in(text)
        .into_iter()
        .filter_map(|said| match said {
            Said::Fact(fact) => Some(fact),
            Said::Forget { .. } => None,
        })
        .collect()
}

/// The facts stated in `text` as (slot, value) pairs, for tests that do not look at keys.
#[cfg(test)]
pub(crate) fn slot_values(text: &str) -> Vec<(Slot, String)> {
    facts_in(text).into_iter().map(|f| (f.slot, f.value)).collect()
}

/// Everything `text` says about the user, in order.
///
/// A request to remember or forget may open any clause ("I sold the car, so forget that I
/// drive a Jeep"); it takes the rest of the sentence, and the clauses before it are read as
/// usual.
pub(crate) fn said_in(text: &str) -> Vec<Said> {
    let mut out: Vec<Said> = Vec::new();
    for (sentence, is_question) in all_sentences(text) {
        read_sentence(&sentence, is_question, &mut out);
    }
    out
}

fn read_sentence(sentence: &str, is_question: bool, out: &mut Vec<Said>) {
    let parts = clauses(sentence);
    let starts = clause_starts(sentence, &parts);
    let request = starts.iter().enumerate().find_map(|(i, &at)| request_in(&sentence[at..]).map(|r| (i, r)));
    // A question asks in its last clause ("I live in Chicago, any tips?"), unless it is a
    // request ("Can you forget that I hate durian?").
    let (before, stated) = match &request {
        Some((i, _)) => (&parts[..*i], &sentence[..starts[*i]]),
        None if is_question => (&parts[..parts.len().saturating_sub(1)], ""),
        None => (&parts[..], sentence),
    };
    // Patterns across clauses read statements only.
    let whole = if is_question { "" } else { stated };
    stated_facts(whole, before).into_iter().for_each(|fact| push_fact(out, fact));
    match request {
        Some((_, Request::Forget { forget, then })) => {
            out.push(forget);
            then.into_iter().for_each(|fact| push_fact(out, fact));
        }
        Some((_, Request::Remember(facts))) => facts.into_iter().for_each(|fact| push_fact(out, fact)),
        Some((_, Request::Nothing)) | None => {}
    }
}

/// The facts of the statement `whole` (empty for a question), made of `clauses`: those of
/// patterns that span clauses ("我养了一只猫，叫咪咪"), of each clause, then of lists the
/// clauses cut ("I speak Portuguese and a bit of French").
fn stated_facts(whole: &str, clauses: &[String]) -> Vec<Fact> {
    let mut facts: Vec<Fact> =
        SENTENCE_PATTERNS.iter().filter_map(|p| p.find(whole)).map(|(_, f)| f).collect();
    facts.extend(clauses.iter().flat_map(|c| clause_facts(c)));
    facts.extend(allergy_list(whole));
    facts.extend(condition_list(whole));
    facts.extend(spoken_languages(whole));
    // "I can't eat shellfish, I'm allergic": the allergy says why, no need for both.
    let allergies: Vec<String> =
        facts.iter().filter(|f| f.slot == Slot::Allergy).map(|f| f.value.to_lowercase()).collect();
    facts.retain(|f| f.slot != Slot::Avoids || !allergies.contains(&f.value.to_lowercase()));
    facts
}

/// Adds `fact` unless the message already said it.
fn push_fact(out: &mut Vec<Said>, fact: Fact) {
    if !out.iter().any(|s| matches!(s, Said::Fact(f) if f == &fact)) {
        out.push(Said::Fact(fact));
    }
}

/// Where each clause starts in the sentence, to test "the rest of the sentence from here".
pub(super) fn clause_starts(sentence: &str, parts: &[String]) -> Vec<usize> {
    let mut cursor = 0;
    parts
        .iter()
        .map(|part| {
            let at = sentence[cursor..].find(part.as_str()).map_or(cursor, |i| cursor + i);
            cursor = at + part.len();
            at
        })
        .collect()
}

/// The facts of one clause, in order. One fact per slot: patterns are listed most specific
/// first.
pub(super) fn clause_facts(clause: &str) -> Vec<Fact> {
    if NOT_ABOUT_ME.is_match(clause) {
        return Vec::new();
    }
    let mut found: Vec<(usize, Fact)> = Vec::new();
    for (start, fact) in PATTERNS.iter().filter_map(|p| p.find(clause)) {
        if !found.iter().any(|(_, f)| f.slot == fact.slot) {
            found.push((start, fact));
        }
    }
    found.sort_by_key(|(start, _)| *start);
    let mut facts: Vec<Fact> = found.into_iter().map(|(_, fact)| fact).collect();
    drop_less_specific(&mut facts);
    facts
}

/// Drops what another fact of the same clause says better.
fn drop_less_specific(facts: &mut Vec<Fact>) {
    // "I've got a cat called Pepper": the named cat says more than "has a cat".
    let named: Vec<String> =
        facts.iter().filter(|f| f.slot == Slot::Relative).map(|f| f.key.clone()).collect();
    facts.retain(|f| {
        f.slot != Slot::Has || !named.iter().any(|key| f.value.to_lowercase().contains(key.as_str()))
    });
    // "I prefer answers in Spanish" is how to answer, not a taste for answers.
    if facts.iter().any(|f| f.slot == Slot::AnswerLanguage) {
        facts.retain(|f| f.slot != Slot::Likes);
    }
}

/// Clauses that deny or refuse rather than state ("don't call me Elizabeth").
static NOT_ABOUT_ME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:don't|do\s+not|stop|never|no\s+longer)\s+call(?:ing)?\s+me|不要叫我|别叫我")
        .expect("the refusal pattern compiles")
});

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> Vec<(Slot, String)> {
        slot_values(text)
    }

    fn one(slot: Slot, value: &str) -> Vec<(Slot, String)> {
        vec![(slot, value.to_owned())]
    }

    #[test]
    fn nothing_from_ordinary_text_or_vague_values() {
        for text in [
            "The weather is nice today.",
            "I live in fear of deadlines.",
            "I love it!",
            "I like how you explained that.",
            "I would like a coffee.",
            "call me back tomorrow",
            "Do I like jazz?",
            "I like to think that it works.",
            "I like the idea of it.",
            "我爱你",
            "我爱好音乐",
            "他叫我去吃饭",
            "我叫什么名字",
            "我在家住",
            "I'm from the",
        ] {
            assert_eq!(facts(text), [], "{text}");
        }
    }

    #[test]
    fn several_facts_in_one_message() {
        assert_eq!(
            facts("My name is Lina and I live in Lyon. I like jazz but I hate olives."),
            [
                (Slot::Name, "Lina".to_owned()),
                (Slot::Home, "Lyon".to_owned()),
                (Slot::Likes, "jazz".to_owned()),
                (Slot::Dislikes, "olives".to_owned()),
            ]
        );
        assert_eq!(
            facts("我叫李娜，我住在上海。我喜欢猫，我不喜欢香菜！"),
            [
                (Slot::Name, "李娜".to_owned()),
                (Slot::Home, "上海".to_owned()),
                (Slot::Likes, "猫".to_owned()),
                (Slot::Dislikes, "香菜".to_owned()),
            ]
        );
    }

    #[test]
    fn a_fact_said_twice_in_one_message_is_listed_once() {
        assert_eq!(facts("I like jazz. I like jazz!"), one(Slot::Likes, "jazz"));
    }

    #[test]
    fn work_and_family() {
        assert_eq!(
            facts("I work as a nurse at Mercy Hospital"),
            [(Slot::Job, "a nurse".to_owned()), (Slot::Employer, "Mercy Hospital".to_owned()),]
        );
        assert_eq!(facts("I'm a software engineer."), one(Slot::Job, "a software engineer"));
        assert_eq!(facts("I'm a big fan of jazz"), one(Slot::Likes, "jazz"));
        assert_eq!(facts("I just started working at Siemens"), one(Slot::Employer, "Siemens"));
        assert_eq!(facts("My wife is called Ana"), one(Slot::Relative, "Ana"));
        assert_eq!(facts_in("My wife's name is Ana")[0].key, "wife");
        assert_eq!(facts("I have two daughters."), one(Slot::Has, "two daughters"));
        assert_eq!(facts("我是一名护士"), one(Slot::Job, "护士"));
        assert_eq!(facts("我在华为工作"), one(Slot::Employer, "华为"));
        assert_eq!(facts("我女儿叫小雨"), one(Slot::Relative, "小雨"));
        assert_eq!(facts("我有两个孩子"), one(Slot::Has, "两个孩子"));
        assert_eq!(facts("我是王芳"), one(Slot::Name, "王芳"));
        assert_eq!(facts("我是程序员"), one(Slot::Job, "程序员"));
        assert_eq!(facts("Hi, I'm Tom"), one(Slot::Name, "Tom"));
        for text in [
            "I'm Italian",
            "I'm a bit tired",
            "我是北京人",
            "我有一个问题",
            "我在家做饭",
            "My friend works at Google",
        ] {
            assert_eq!(facts(text), [], "{text}");
        }
    }

    #[test]
    fn moves_say_where_to() {
        assert_eq!(facts("I moved from Lyon to Paris last month."), one(Slot::Home, "Paris"));
        assert_eq!(facts("我从上海搬到了深圳"), one(Slot::Home, "深圳"));
    }

    #[test]
    fn facts_inside_longer_messages_and_requests() {
        assert_eq!(
            facts("I'm a nurse in Adelaide and I need a garden plan."),
            [(Slot::Home, "Adelaide".to_owned()), (Slot::Job, "a nurse".to_owned())]
        );
        assert_eq!(facts("Hey, Rafael here."), one(Slot::Name, "Rafael"));
        assert_eq!(facts("Our beagle Pickles has a sensitive stomach."), one(Slot::Relative, "Pickles"));
        assert_eq!(facts("Not a fan of comedy podcasts though."), one(Slot::Dislikes, "comedy podcasts"));
        assert_eq!(
            facts("I'm really into true crime — anything like Serial?"),
            one(Slot::Likes, "true crime")
        );
        assert!(
            matches!(&said_in("Can you forget that I hate durian?")[..], [Said::Forget { facts, .. }] if facts.len() == 1)
        );
        assert_eq!(
            facts("我在一家书店当店员。"),
            [(Slot::Job, "店员".to_owned()), (Slot::Employer, "一家书店".to_owned())]
        );
        assert_eq!(facts("I can't stand the stuff."), []);
        assert_eq!(facts("我家的猫叫团子"), one(Slot::Relative, "团子"));
        assert_eq!(facts("我老公李强特别爱吃甜食"), [(Slot::Relative, "李强".to_owned())]);
        assert_eq!(facts("我已经把名字从周婷婷改成周雨桐了"), one(Slot::Name, "周雨桐"));
        for text in ["I'm interested in Python.", "Hey there!", "我在家做饭", "我在公司做项目"] {
            assert_eq!(facts(text), [], "{text}");
        }
    }
}
