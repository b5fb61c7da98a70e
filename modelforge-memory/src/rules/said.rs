//! Reading one message: its sentences, their clauses, and what each says about the user.

use std::sync::LazyLock;

use regex::Regex;

use super::care::{allergy_list, condition_list};
use super::chinese::chinese_value;
use super::english::english_value;
use super::languages::spoken_languages;
use super::patterns::Check;
use super::patterns::EN_RELATIONS;
use super::patterns::{PATTERNS, SENTENCE_PATTERNS};
use super::requests::{Request, request_in};
use super::topics::{Topic, topics_of};
use crate::clauses::{all_sentences, clauses, normalize};
use crate::fact::{Fact, Lang, Slot};
use crate::keywords::is_han;

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

/// The facts the patterns read in `text` as (slot, value) pairs, for tests that do not look at
/// keys; statements kept in the user's own words are left out.
#[cfg(test)]
pub(crate) fn slot_values(text: &str) -> Vec<(Slot, String)> {
    facts_in(text).into_iter().filter(|f| f.slot != Slot::Said).map(|f| (f.slot, f.value)).collect()
}

/// Everything `text` says about the user, statements in the user's own words included.
#[cfg(test)]
pub(crate) fn said_in(text: &str) -> Vec<Said> {
    read_message(text, true)
}

/// Everything `text` says about the user, in order.
///
/// A request to remember or forget may open any clause ("I sold the car, so forget that I
/// drive a Jeep"); it takes the rest of the sentence, and the clauses before it are read as
/// usual.
///
/// With `own_words`, a statement about the user on a tracked topic that no pattern reads is
/// kept in the user's own words ([`Slot::Said`]).
pub(crate) fn read_message(text: &str, own_words: bool) -> Vec<Said> {
    let mut out: Vec<Said> = Vec::new();
    for (sentence, is_question) in all_sentences(text) {
        read_sentence(&sentence, is_question, own_words, &mut out);
    }
    named_later(&normalize(text)).into_iter().for_each(|fact| push_fact(&mut out, fact));
    out
}

/// "my son's party!! his name is Otis", "our daughter's christening, she's called Maisie": a
/// relative named by a pronoun after the message mentions them.
static MENTION: LazyLock<Regex> = LazyLock::new(|| {
    let source = format!(
        r"(?i)\b(?:my|our)\s+(?:little\s+|baby\s+|eldest\s+|youngest\s+|older\s+|younger\s+|new\s+)?(?P<k>{EN_RELATIONS})(?:'s)?\b"
    );
    Regex::new(&source).unwrap_or_else(|err| panic!("mention pattern {source}: {err}"))
});

static NAMING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:(?P<p>he|she)(?:'s|\s+is)\s+(?:called|named)|(?P<q>his|her)\s+name(?:'s|\s+is))\s+(?P<v>.+)")
        .expect("the naming pattern compiles")
});

const FEMALE: [&str; 9] =
    ["wife", "girlfriend", "daughter", "sister", "mother", "mom", "mum", "granddaughter", "fiancee"];
const MALE: [&str; 8] = ["husband", "boyfriend", "son", "brother", "father", "dad", "grandson", "fiance"];

/// The relative a pronoun names: the nearest one mentioned before it, of a fitting sex.
fn named_later(text: &str) -> Vec<Fact> {
    let Some(naming) = NAMING.captures(text) else { return Vec::new() };
    let Some(at) = naming.get(0).map(|m| m.start()) else { return Vec::new() };
    let before = &text[..at];
    let Some(mention) = MENTION.captures_iter(before).last() else { return Vec::new() };
    let key = mention["k"].to_lowercase();
    let pronoun = naming.name("p").or(naming.name("q")).map_or("", |m| m.as_str()).to_lowercase();
    let female = pronoun.starts_with("she") || pronoun == "her";
    let fits = if female { !MALE.contains(&key.as_str()) } else { !FEMALE.contains(&key.as_str()) };
    let near = mention.get(0).is_some_and(|m| at - m.end() <= 120 && !before[m.end()..].contains('?'));
    match first_name(&naming["v"]) {
        Some(name) if fits && near => vec![Fact::new(Slot::Relative, name).with_key(key)],
        _ => Vec::new(),
    }
}

/// A capitalized first word, the name ("Otis and he's ..." gives "Otis").
fn first_name(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?.trim_end_matches(|c: char| !c.is_alphanumeric());
    let ok =
        word.chars().next().is_some_and(char::is_uppercase) && word.chars().count() >= 2 && word != "I'm";
    ok.then(|| word.to_owned())
}

fn read_sentence(sentence: &str, is_question: bool, own_words: bool, out: &mut Vec<Said>) {
    let parts = clauses(sentence);
    let starts = clause_starts(sentence, &parts);
    let request = starts.iter().enumerate().find_map(|(i, &at)| request_in(&sentence[at..]).map(|r| (i, r)));
    // A question asks in its last clause ("I live in Chicago, any tips?"), unless it is a
    // request ("Can you forget that I hate durian?", "could you reply in Spanish from now on?").
    let asks_for = is_question && parts.last().is_some_and(|last| ASKS_FOR.is_match(last));
    let (before, stated) = match &request {
        Some((i, _)) => (&parts[..*i], &sentence[..starts[*i]]),
        None if is_question && !asks_for => (&parts[..parts.len().saturating_sub(1)], ""),
        None => (&parts[..], sentence),
    };
    // Patterns across clauses read statements only.
    let whole = if is_question { "" } else { stated };
    let facts = stated_facts(whole, before);
    let left: Vec<Said> = before.iter().filter_map(|clause| left_employer(clause)).collect();
    if own_words && facts.is_empty() && request.is_none() && left.is_empty() {
        // What a question states before it asks ("as a night nurse, how do I ...").
        let stated = match starts.last() {
            Some(&last) if is_question => &sentence[..last],
            _ => sentence,
        };
        out.extend(in_own_words(stated).map(Said::Fact));
    }
    facts.into_iter().for_each(|fact| push_fact(out, fact));
    out.extend(left);
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
    // "I'm in Brooklyn, Park Slope": the whole place, not also the first part of it.
    let all = facts.clone();
    facts.retain(|f| !all.iter().any(|g| says_more(g, f)));
    facts
}

/// Whether `more` says what `less` says and more, in a slot that holds one value ("Brooklyn,
/// Park Slope" and "Brooklyn"; the twins "Ottilie and Rex" and "Ottilie").
fn says_more(more: &Fact, less: &Fact) -> bool {
    let one_value = less.slot.is_single() || (less.slot == Slot::Relative && less.key == more.key);
    more.slot == less.slot
        && one_value
        && more.value.len() > less.value.len()
        && more.value.contains(&less.value)
}

/// "I'm no longer at Amazon", "i quit Deloitte", "我已经不在腾讯上班了": the employer named
/// is forgotten.
fn left_employer(clause: &str) -> Option<Said> {
    let caps = LEFT_EMPLOYER.captures(clause)?;
    let (value, lang) = match caps.name("v") {
        Some(v) => (english_value(Slot::Employer, Check::None, v.as_str())?, Lang::English),
        None => (chinese_value(Slot::Employer, Check::None, caps.name("z")?.as_str())?, Lang::Chinese),
    };
    let fact = Fact::new(Slot::Employer, value.clone()).in_lang(lang);
    Some(Said::Forget { facts: vec![fact], phrase: value, topics: Vec::new() })
}

static LEFT_EMPLOYER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:i'm\s+no\s+longer\s+(?:at|with|working\s+(?:at|for))|i\s+no\s+longer\s+work\s+(?:at|for)|i\s+(?:just\s+|finally\s+)?(?:left|quit)(?:\s+my\s+job\s+at)?|i\s+don't\s+work\s+(?:at|for))\s+(?P<v>.+)|我(?:已经)?(?:不在|从)(?P<z>[^，。,！!]{2,12}?)(?:工作|上班|干|辞职|离职)了",
    )
    .expect("the leaving pattern compiles")
});

/// A statement about the user on a topic the rules track (home, work, family, health, diet,
/// languages, pronouns, name) that no pattern could read, kept in the user's own words, so a
/// fact said in an unusual way is not lost. Only what the user says of themself counts: a
/// statement whose subject is someone else ("my dad's diabetic so ..."), a hypothetical, a
/// denial ("i'm not vegan but ..."), a request, or a sentence too short or too long to be one
/// fact is left out.
fn in_own_words(stated: &str) -> Option<Fact> {
    let text = stated.trim().trim_end_matches([',', '，', ';', '；', ':', '：', '-', '—']).trim();
    let chinese = text.chars().any(is_han);
    let length = text.chars().count();
    let fits = if chinese { (6..=80).contains(&length) } else { (12..=200).contains(&length) };
    let about_me = if chinese { ZH_SUBJECT.is_match(text) } else { EN_SUBJECT.is_match(text) };
    if !fits || !about_me || SOMEONE_ELSE.is_match(text) || NOT_A_FACT.is_match(text) {
        return None;
    }
    // "I practically live on them" says nothing about a home, and "a biography of Steve Jobs"
    // nothing about work: topic words are read outside names.
    let plain = NAMES.replace_all(&LIVE_ON.replace_all(text, ""), "").into_owned();
    if topics_of(&plain).is_empty() {
        return None;
    }
    let text = text.trim_end_matches(['.', '。', '!', '！', '~', '…']).trim();
    Some(Fact::new(Slot::Said, text).in_lang(if chinese { Lang::Chinese } else { Lang::English }))
}

/// The speaker as the subject of an English sentence.
static EN_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:i|i'm|i've|i'd|i'll|we|we're|we've|we'll)\b").expect("the subject pattern compiles")
});

/// The speaker as the subject of a Chinese sentence: 我 or 我们家, not 我的…, 我们组…, 我妈….
static ZH_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"我(?:们家|[^们的爸妈哥姐弟妹老爷奶外婆公朋同邻室儿女孙表堂舅姑姨叔伯男先太媳闺领])")
        .expect("the subject pattern compiles")
});

/// A sentence that opens with someone else as its subject ("my sister is a dentist", "Niamh's
/// brother lives in Galway", "one of my clients is based in Vienna").
static SOMEONE_ELSE: LazyLock<Regex> = LazyLock::new(|| {
    let source = format!(
        r"(?i)^(?:(?:oh|so|and|but|also|well|lol|haha|ok|okay|btw|yeah|anyway)[,\s]+)*(?:(?:my|our)\s+(?:\w+\s+)?(?:{EN_RELATIONS}|friend|friends|mate|colleague|coworker|co-worker|boss|manager|neighbou?r|roommate|flatmate|cousin|aunt|uncle|grandma|grandpa|nan|client|clients|teacher|doctor|brother-in-law|sister-in-law|in-laws|family)\b|one\s+of\s+my\b|(?-i:[A-Z][a-z]+)'s\s|(?:he|she|they)\b)"
    );
    Regex::new(&source).unwrap_or_else(|err| panic!("someone-else pattern {source}: {err}"))
});

/// Capitalized words after the first word, but "I" ("Steve Jobs", "Boots").
static NAMES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s(?:[A-Z][a-z][\w'-]*)").expect("the name pattern compiles"));

static LIVE_ON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\blive\s+(?:on|off|for|without|in\s+(?:fear|hope|denial|the\s+moment|the\s+past))\b")
        .expect("the live-on pattern compiles")
});

/// What is not a fact about the speaker now: hypotheticals, wishes, denials, requests.
static NOT_A_FACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:if|would|wish|imagine|pretend|suppose|let's\s+say|role-?play|i'm\s+not|i\s+am\s+not|i\s+need\s+help|help\s+me|can\s+you|could\s+you|please|pls|plz|forget|question|wondering|curious|might|maybe|perhaps|probably|i\s+think|not\s+sure|don't\s+(?:keep|save|store|remember)|looking\s+for|any\s+(?:ideas|tips|suggestions|recommendations))\b|如果|假如|要是|假设|我不是|帮我|请你|给我|能不能|可不可以",
    )
    .expect("the hypothetical pattern compiles")
});

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
    // "I work as a barista at a little cafe": an unnamed workplace adds nothing to the job.
    if facts.iter().any(|f| f.slot == Slot::Job) {
        facts.retain(|f| {
            let unnamed = ["a ", "an ", "the "].iter().any(|article| f.value.starts_with(article));
            f.slot != Slot::Employer || !unnamed || f.lang != Lang::English
        });
    }
    // "I prefer answers in Spanish" is how to answer, not a taste for answers.
    if facts.iter().any(|f| f.slot == Slot::AnswerLanguage) {
        facts.retain(|f| f.slot != Slot::Likes);
    }
}

/// A question that asks the assistant to answer in some way from now on.
static ASKS_FOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:also|and|so|oh|btw)[,\s]+)*(?:can|could|would|will)\s+you\s+(?:please\s+)?(?:always\s+|only\s+)?(?:answer|reply|respond|write|talk|speak|use|give\s+me)\b.*\b(?:from\s+now\s+on|going\s+forward|in\s+(?:the\s+)?future|always|with\s+me)\b",
    )
    .expect("the request pattern compiles")
});

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

#[cfg(test)]
mod how_people_write {
    use super::*;

    fn facts(text: &str) -> Vec<(Slot, String)> {
        slot_values(text)
    }

    fn has(text: &str, slot: Slot, value: &str) -> bool {
        facts(text).iter().any(|(s, v)| *s == slot && v == value)
    }

    #[test]
    fn asides_greetings_and_lowercase_contractions() {
        assert!(has("hiya, I'm Imogen. trying to meal prep", Slot::Name, "Imogen"));
        assert!(has("Also I'm Juno, forgot to say", Slot::Name, "Juno"));
        assert!(has("oh and fyi im allergic to penicillin", Slot::Allergy, "penicillin"));
        assert!(has("I'm Yusuf, living in Leicester, looking for ideas", Slot::Home, "Leicester"));
        assert!(has(
            "hey can you help? I'm in Brooklyn, Park Slope specifically",
            Slot::Home,
            "Brooklyn, Park Slope"
        ));
        assert!(has("I live in Portland, Oregon", Slot::Home, "Portland, Oregon"));
        assert!(has(
            "I live in a village near Harrogate, lots of paths",
            Slot::Home,
            "a village near Harrogate"
        ));
        assert!(has("Just moved into a flat in Hackney, right on Mare Street", Slot::Home, "Hackney"));
        assert!(has("Just moved into a flat in Hackney, right on Mare Street", Slot::Address, "Mare Street"));
        for text in
            ["I'm in Paris for the weekend", "I'm in a meeting", "I'm in London this week", "I'm in love"]
        {
            assert!(!facts(text).iter().any(|(s, _)| *s == Slot::Home), "{text}");
        }
    }

    #[test]
    fn homes_jobs_and_people_said_in_passing() {
        assert_eq!(facts("finally a Bristol resident!"), vec![(Slot::Home, "Bristol".to_owned())]);
        assert_eq!(facts("my aunt is a Bristol resident"), []);
        assert_eq!(facts("we bought a house in Dundee"), vec![(Slot::Home, "Dundee".to_owned())]);
        assert_eq!(facts("hello! paediatrician here"), vec![(Slot::Job, "paediatrician".to_owned())]);
        assert_eq!(facts("pizza here"), []);
        assert_eq!(
            facts("starting tomorrow as a sous chef at Mirabel"),
            [(Slot::Job, "a sous chef".to_owned()), (Slot::Employer, "Mirabel".to_owned())]
        );
        assert_eq!(facts("my ex Tobias called"), vec![(Slot::Relative, "Tobias".to_owned())]);
        assert_eq!(facts("我平时住在大连"), vec![(Slot::Home, "大连".to_owned())]);
        assert_eq!(facts("我现在住成都"), vec![(Slot::Home, "成都".to_owned())]);
        assert_eq!(facts("最近搬到了青岛"), vec![(Slot::Home, "青岛".to_owned())]);
        assert_eq!(facts("我们家已经从成都搬到了厦门"), vec![(Slot::Home, "厦门".to_owned())]);
        assert_eq!(facts("我转岗了，现在是设计师"), vec![(Slot::Job, "设计师".to_owned())]);
        assert_eq!(facts("现在是下午三点"), vec![]);
        assert_eq!(facts("家里有只橘猫叫年糕"), vec![(Slot::Relative, "年糕".to_owned())]);
        assert_eq!(facts("前女友李悦又联系我了"), vec![(Slot::Relative, "李悦".to_owned())]);
    }

    #[test]
    fn work_said_in_passing() {
        assert!(has("oh also I work nights at a bakery in Leeds", Slot::Employer, "a bakery"));
        assert!(has("oh also I work nights at a bakery in Leeds", Slot::Workplace, "Leeds"));
        assert!(has("so I just started as a junior actuary at Aviva", Slot::Employer, "Aviva"));
        assert!(has("but being a sous chef at Dishoom is killing me", Slot::Job, "a sous chef"));
        assert!(has("but being a sous chef at Dishoom is killing me", Slot::Employer, "Dishoom"));
        assert_eq!(
            facts("I work as a barista at a little cafe"),
            [(Slot::Job, "a barista".to_owned())],
            "an unnamed workplace adds nothing to the job"
        );
        for text in [
            "being a parent at Christmas is hard",
            "my sister works nights at a bakery",
            "I started a new hobby",
        ] {
            assert!(!facts(text).iter().any(|(s, _)| matches!(s, Slot::Job | Slot::Employer)), "{text}");
        }
    }

    #[test]
    fn family_and_pets_named_later_or_together() {
        assert!(has(
            "Planning my son's 6th bday party!! his name is Otis and he's picky",
            Slot::Relative,
            "Otis"
        ));
        let christening =
            facts_in("my husband Idris and I are planning our daughter's christening, she's called Maisie");
        assert!(christening.iter().any(|f| f.key == "daughter" && f.value == "Maisie"), "{christening:?}");
        assert!(christening.iter().any(|f| f.key == "husband" && f.value == "Idris"), "{christening:?}");
        assert!(has("my twins Ottilie and Rex are 9", Slot::Relative, "Ottilie and Rex"));
        assert!(has("my dog is a greyhound named Pickle, very lazy", Slot::Relative, "Pickle"));
        assert!(has("我们女儿朵朵今年三岁了", Slot::Relative, "朵朵"));
        assert!(has("儿子乐乐上二年级了", Slot::Relative, "乐乐"));
        assert!(has("我孙子豆包下周来我家住", Slot::Relative, "豆包"));
        for text in [
            "my friend's son is great, his name is Leo",
            "my husband is lovely. she's called Maisie",
            "我女儿生病了",
            "我女儿喜欢画画",
            "我儿子小学三年级",
        ] {
            assert!(!facts(text).iter().any(|(s, _)| *s == Slot::Relative), "{text}");
        }
    }

    #[test]
    fn health_medication_and_standing_requests() {
        assert!(has(
            "one thing - I have photosensitive epilepsy, so no strobes",
            Slot::Condition,
            "photosensitive epilepsy"
        ));
        assert!(has("I've had a pacemaker since 2019", Slot::Condition, "a pacemaker"));
        assert!(has("I've had a pacemaker since 2019 and I'm on warfarin", Slot::Medication, "warfarin"));
        assert!(has("I've been vegan for about three years now", Slot::Trait, "vegan"));
        assert!(has("my asthma is playing up again", Slot::Condition, "asthma"));
        assert!(has(
            "please use metric units with me, I have no idea",
            Slot::Instruction,
            "use metric units"
        ));
        assert!(has("also could you reply in Spanish from now on?", Slot::AnswerLanguage, "Spanish"));
        assert!(has("老哥，我叫王大力，最近痛风又犯了", Slot::Condition, "痛风"));
        assert!(has("我每天都要打胰岛素", Slot::Medication, "胰岛素"));
        assert!(has("平时只吃清真的", Slot::Diet, "只吃清真"));
        assert!(has("以后回答我请用繁体字", Slot::AnswerLanguage, "繁体字"));
        for text in [
            "My dad is on warfarin.",
            "I'm on the train.",
            "Is it safe to take ibuprofen if you're on warfarin?",
            "I'm not vegan but I like tofu.",
            "if I were vegan what would I eat?",
            "my friend has photosensitive epilepsy",
            "please use a for loop",
            "could you reply in Spanish?",
            "我爸在吃华法林",
            "如果我是素食者怎么办",
        ] {
            let found = facts(text);
            assert!(
                !found.iter().any(|(s, _)| matches!(
                    s,
                    Slot::Medication
                        | Slot::Trait
                        | Slot::Condition
                        | Slot::Instruction
                        | Slot::AnswerLanguage
                        | Slot::Diet
                )),
                "{text}: {found:?}"
            );
        }
    }

    #[test]
    fn what_no_pattern_reads_is_kept_in_own_words() {
        for (text, note) in [
            (
                "we finally got the keys to our apartment in leith, the commute is brutal though",
                "we finally got the keys to our apartment in leith, the commute is brutal though",
            ),
            (
                "I wrecked my knee skiing in march and i'm still in physio.",
                "I wrecked my knee skiing in march and i'm still in physio",
            ),
            ("我最近在一家做芯片的公司上班，挺累的", "我最近在一家做芯片的公司上班，挺累的"),
        ] {
            let found = facts_in(text);
            assert!(found.iter().any(|f| f.slot == Slot::Said && f.value == note), "{text}: {found:?}");
        }
        for text in [
            "the weather is awful today",
            "if i lived in leith would the commute be bad?",
            "my friend works at the hospital and i visit her",
            "my dad's diabetic so I'm used to reading labels",
            "Niamh's brother lives in Galway and we visit",
            "i'm not vegan but i've been eating plant burgers",
            "I need help prepping for a job interview",
            "I have a question about diabetes.",
            "I'm reading a biography of Steve Jobs.",
            "just don't keep any of it, I'm job hunting",
            "My go-to order is a flat white, I practically live on them",
            "我表妹住在重庆，她说重庆更热",
            "what's a good job for someone who likes maps?",
            "我们组新来的实习生是北京人",
            "帮我列一个一周的素食菜单吧",
            "如果我住在上海会怎么样",
            "I live in Lyon.",
        ] {
            assert!(!facts_in(text).iter().any(|f| f.slot == Slot::Said), "{text}");
        }
    }

    #[test]
    fn leaving_a_job_forgets_the_employer_and_changes_replace() {
        let forgets = |text: &str| {
            said_in(text).into_iter().find_map(|said| match said {
                Said::Forget { facts, .. } => Some(facts.into_iter().map(|f| f.value).collect::<Vec<_>>()),
                Said::Fact(_) => None,
            })
        };
        assert_eq!(forgets("I switched jobs, I'm no longer at Amazon."), Some(vec!["Amazon".to_owned()]));
        assert_eq!(forgets("i quit Deloitte last week"), Some(vec!["Deloitte".to_owned()]));
        assert_eq!(forgets("我已经不在腾讯上班了"), Some(vec!["腾讯".to_owned()]));
        assert_eq!(forgets("I'm no longer at the mercy of my landlord"), None);
        assert!(!facts_in("I switched jobs, I'm no longer at Amazon.").iter().any(|f| f.slot == Slot::Said));
        assert!(has(
            "Finally sold the Subaru, now I'm driving a Toyota Tacoma",
            Slot::Drives,
            "a Toyota Tacoma"
        ));
        assert!(has("最近我辞掉了数学老师的工作，转行做产品经理了", Slot::Job, "产品经理"));
        assert!(!has("I'm driving a rental to the airport", Slot::Drives, "a rental to the airport"));
    }

    #[test]
    fn chinese_work_and_home_in_passing() {
        assert!(has("最近好累，我在德勤做审计，年底忙得要死", Slot::Employer, "德勤"));
        assert!(has("最近好累，我在德勤做审计，年底忙得要死", Slot::Job, "审计"));
        assert!(has("我叫阿杰，平时做自由摄影师", Slot::Job, "自由摄影师"));
        assert!(has("我在天津开出租车，一开就是十二个小时", Slot::Job, "出租车"));
        assert!(has("我现在住在成都,白天还在一家火锅店当服务员", Slot::Job, "服务员"));
        assert!(has("我辞职啦，现在在家开淘宝店，卖手工饰品", Slot::Employer, "淘宝店"));
        assert!(has("我刚搬到成都，住在玉林路那边", Slot::Home, "成都"));
        assert!(has("我刚搬到成都，住在玉林路那边", Slot::Address, "玉林路那边"));
        assert!(has("平时最爱喝啤酒撸串，唉", Slot::Likes, "喝啤酒撸串"));
        for text in ["我在家开会", "他在天津开出租车", "我朋友开了一家咖啡店"] {
            assert!(!facts(text).iter().any(|(s, _)| matches!(s, Slot::Job | Slot::Employer)), "{text}");
        }
    }
}
