//! The rule-based extractor: English and Chinese patterns for who the user is and what they
//! like, consolidated against the user's existing memories.

use std::sync::LazyLock;

use modelforge_core::{ChatMessage, Memory, MemoryError, MemoryExtractor, MemoryOp, Role};
use regex::Regex;

use crate::clauses::statement_clauses;
use crate::consolidate::consolidate;
use crate::fact::{Fact, Slot};

/// Extracts the user's name, home, likes and dislikes with fixed English and Chinese patterns.
///
/// It needs no model, so it works the same beside a 0.5B model as beside a 70B one, costs
/// microseconds, and never invents anything: each memory is a fixed sentence around a value the
/// user typed, kept verbatim ("The user's name is 李娜."). Only user messages are read; what
/// the assistant says about the user is not evidence.
///
/// ```
/// use modelforge_core::{ChatMessage, MemoryExtractor, MemoryKind, MemoryOp};
/// use modelforge_memory::RuleExtractor;
///
/// let ops = RuleExtractor::new().extract(&[ChatMessage::user("我叫李娜，我住在上海。")], &[])?;
/// assert_eq!(
///     ops,
///     [
///         MemoryOp::Add { kind: MemoryKind::Profile, content: "The user's name is 李娜.".into() },
///         MemoryOp::Add { kind: MemoryKind::Profile, content: "The user lives in 上海.".into() },
///     ]
/// );
/// # Ok::<(), modelforge_core::MemoryError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleExtractor {
    _private: (),
}

impl RuleExtractor {
    /// A rule extractor. The patterns are compiled once per process, on first use.
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

impl MemoryExtractor for RuleExtractor {
    fn name(&self) -> &str {
        "rules"
    }

    fn extract(&self, turn: &[ChatMessage], existing: &[Memory]) -> Result<Vec<MemoryOp>, MemoryError> {
        let facts = turn.iter().filter(|m| m.role == Role::User).flat_map(|m| facts_in(&m.content));
        let ops = consolidate(facts, existing);
        tracing::debug!(extractor = "rules", ops = ops.len(), "extracted memory operations");
        Ok(ops)
    }
}

/// The facts stated in `text`, in order.
pub(crate) fn facts_in(text: &str) -> Vec<Fact> {
    let mut facts = Vec::new();
    for clause in statement_clauses(text) {
        let mut found: Vec<(usize, Fact)> = PATTERNS.iter().filter_map(|p| p.find(&clause)).collect();
        found.sort_by_key(|(start, _)| *start);
        for (_, fact) in found {
            if !facts.contains(&fact) {
                facts.push(fact);
            }
        }
    }
    facts
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    English,
    Chinese,
}

struct Pattern {
    slot: Slot,
    lang: Lang,
    /// Captures the rest of the clause as `v`, and for Chinese likes the verb as `verb`.
    regex: Regex,
}

impl Pattern {
    /// The fact in `clause`, with its byte position, if the pattern matches and the value is
    /// plausible.
    fn find(&self, clause: &str) -> Option<(usize, Fact)> {
        let caps = self.regex.captures(clause)?;
        let raw = caps.name("v")?.as_str();
        // "我爱好音乐" is "my hobby is music", not "I love 好音乐".
        if caps.name("verb").is_some_and(|verb| verb.as_str() == "爱") && raw.starts_with('好') {
            return None;
        }
        let value = match self.lang {
            Lang::English => english_value(self.slot, raw),
            Lang::Chinese => chinese_value(self.slot, raw),
        }?;
        Some((caps.get(0)?.start(), Fact::new(self.slot, value)))
    }
}

const EN_ADVERBS: &str =
    r"(?:(?:really|also|just|absolutely|truly|totally|actually|still|currently|now)\s+)*";
const ZH_ADVERBS: &str = "(?:很|非常|特别|真的|也|最|超级|超|挺|还|都|一直|比较|蛮|好|现在|目前|就)*";

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    use Lang::{Chinese, English};
    use Slot::{Dislikes, Home, Likes, Name};
    let a = EN_ADVERBS;
    let z = ZH_ADVERBS;
    let sources: Vec<(Slot, Lang, String)> = vec![
        (Name, English, r"(?i)\bmy\s+(?:first\s+)?name(?:\s+is|'s)\s+(?P<v>.+)".into()),
        (Name, English, r"(?i)\bi(?:'m|\s+am)\s+called\s+(?P<v>.+)".into()),
        (Name, English, r"(?i)\bcall\s+me\s+(?P<v>.+)".into()),
        (Home, English, format!(r"(?i)\bi\s+{a}live\s+in\s+(?P<v>.+)")),
        (Home, English, format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:living|based)\s+in\s+(?P<v>.+)")),
        (Home, English, r"(?i)\bi(?:'m|\s+am)\s+(?:originally\s+)?from\s+(?P<v>.+)".into()),
        (Home, English, r"(?i)\bi\s+(?:originally\s+)?come\s+from\s+(?P<v>.+)".into()),
        (Home, English, r"(?i)\bi(?:'ve|\s+have)?\s+(?:just\s+|recently\s+)?moved\s+to\s+(?P<v>.+)".into()),
        (
            Dislikes,
            English,
            format!(
                r"(?i)\bi\s+{a}(?:(?:don't|dont|do\s+not)\s+{a}(?:like|enjoy|love)|hate|dislike|detest|loathe|(?:can't|cant|cannot|can\s+not)\s+stand)\s+(?P<v>.+)"
            ),
        ),
        (Likes, English, format!(r"(?i)\bi\s+{a}(?:like|love|enjoy|adore)\s+(?P<v>.+)")),
        (Name, Chinese, "我叫(?P<v>.+)".into()),
        (Name, Chinese, "我的名字(?:是|叫)(?P<v>.+)".into()),
        (Name, Chinese, "我名叫(?P<v>.+)".into()),
        // Only at the start of a clause: "他叫我去吃饭" means "he told me to go and eat".
        (Name, Chinese, "^(?:你可以|你就|请|大家都|大家)?叫我(?P<v>.+)".into()),
        (Home, Chinese, "我(?:现在|目前|一直|也|还|就)?住在(?P<v>.+)".into()),
        (Home, Chinese, "我(?:现在|目前|一直|也|还|就)?在(?P<v>[^住]{1,12})住".into()),
        (Home, Chinese, "我来自(?P<v>.+)".into()),
        (Home, Chinese, "我(?:已经|刚|最近)?搬(?:到|去)了?(?P<v>.+)".into()),
        (Dislikes, Chinese, format!("我{z}(?:不太喜欢|不喜欢|不喜爱|不爱|讨厌|厌恶|受不了)(?P<v>.+)")),
        (Likes, Chinese, format!("我{z}(?P<verb>喜欢|喜爱|热爱|爱)(?P<v>.+)")),
    ];
    sources
        .into_iter()
        .map(|(slot, lang, source)| Pattern {
            slot,
            lang,
            regex: Regex::new(&source).expect("built-in memory patterns compile"),
        })
        .collect()
});

const QUOTES: &[char] = &['"', '\'', '“', '”', '「', '」', '『', '』', '(', ')', '（', '）', ':', '：'];

/// The value of an English pattern: capitalized words for names and places, a short phrase for
/// tastes. A name or place in Chinese characters ("My name is 李娜") is taken as a Han run.
fn english_value(slot: Slot, raw: &str) -> Option<String> {
    let raw = raw.trim().trim_matches(QUOTES).trim();
    if raw.chars().next().is_some_and(is_han) && !slot.is_taste() {
        let run: String = raw.chars().take_while(|&c| is_han(c)).collect();
        return (2..=10).contains(&run.chars().count()).then_some(run);
    }
    match slot {
        Slot::Name => proper_noun(raw, false),
        Slot::Home => proper_noun(raw, true),
        Slot::Likes | Slot::Dislikes => taste_phrase(raw),
    }
}

/// Lowercase words that may sit between capitalized ones ("Rio de Janeiro").
const NAME_CONNECTORS: [&str; 12] =
    ["de", "da", "del", "di", "du", "la", "le", "van", "von", "der", "of", "upon"];

/// Leading capitalized words ("Lina Chen", "New York"), so "I live in fear" gives nothing and
/// "I live in Lyon now" gives "Lyon". With `allow_the`, "the UK" keeps its article.
fn proper_noun(raw: &str, allow_the: bool) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    let capitalized = |i: usize| {
        words.get(i).is_some_and(|w| {
            let pronoun = *w == "I" || w.starts_with("I'");
            !pronoun && w.chars().next().is_some_and(char::is_uppercase)
        })
    };
    let mut end = usize::from(allow_the && words.first().is_some_and(|w| w.eq_ignore_ascii_case("the")));
    let start = end;
    let mut names = 0;
    while names < 5 {
        if capitalized(end) {
            end += 1;
        } else if words.get(end).is_some_and(|w| NAME_CONNECTORS.contains(w)) && capitalized(end + 1) {
            end += 2;
        } else {
            break;
        }
        names += 1;
    }
    (end > start).then(|| words[..end].join(" ").trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned())
}

/// Words a taste may not start with: pronouns and clauses say nothing reusable ("I love it",
/// "I like how you put it").
const TASTE_REJECT: [&str; 26] = [
    "it", "it's", "this", "that", "these", "those", "them", "they", "you", "your", "yours", "him", "her",
    "me", "us", "myself", "how", "what", "when", "where", "why", "who", "which", "if", "whether", "to",
];
/// Verbs allowed after "to": "I like to swim" is a taste, "I like to think that" is not.
const TASTE_TO_REJECT: [&str; 5] = ["think", "believe", "say", "know", "be"];
/// Nouns after "the" that introduce a clause: "I like the idea that ...", "the way you ...".
const TASTE_THE_REJECT: [&str; 4] = ["idea", "way", "fact", "thought"];
const TASTE_FILLERS: [&str; 12] = [
    " very much",
    " so much",
    " a lot",
    " too",
    " as well",
    " anymore",
    " any more",
    " really",
    " now",
    " these days",
    " nowadays",
    " lately",
];

/// A short noun or verb phrase ("jazz", "hiking in the Alps"), at most eight words.
fn taste_phrase(raw: &str) -> Option<String> {
    let mut value = raw.trim_matches(QUOTES).trim();
    while let Some(shorter) =
        TASTE_FILLERS.iter().find_map(|f| strip_suffix_ignore_case(value, f)).map(str::trim_end)
    {
        value = shorter;
    }
    let words: Vec<&str> = value.split_whitespace().collect();
    let first = words.first()?.to_lowercase();
    let second = words.get(1).map(|w| w.to_lowercase());
    let rejected = if first == "to" {
        second.is_none_or(|verb| TASTE_TO_REJECT.contains(&verb.as_str()))
    } else if first == "the" {
        second.is_some_and(|noun| TASTE_THE_REJECT.contains(&noun.as_str()))
    } else {
        TASTE_REJECT.contains(&first.as_str())
    };
    (!rejected && words.len() <= 8).then(|| words.join(" "))
}

fn strip_suffix_ignore_case<'a>(value: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = value.len().checked_sub(suffix.len())?;
    let tail = value.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &value[..cut])
}

/// Where a Chinese value ends when no punctuation ends it: a new "我" clause or a connective.
const ZH_STOPS: [&str; 8] = ["我", "但是", "不过", "可是", "而且", "并且", "所以", "因为"];
const ZH_NAME_STOPS: [&str; 7] = ["今年", "是", "在", "住", "来自", "和", "也"];
const ZH_HOME_STOPS: [&str; 8] = ["已经", "和", "工作", "上班", "上学", "读书", "生活", "住"];
const ZH_TASTE_STOPS: [&str; 5] = ["也喜欢", "还喜欢", "也爱", "也不喜欢", "也讨厌"];
const ZH_PARTICLES: &[char] = &['了', '啊', '呀', '哦', '的', '呢', '吧', '啦', '哈', '嘛', '哟', '喔'];
/// Values starting with these are pronouns or grammar, not names, places or things.
const ZH_REJECT_START: [&str; 12] =
    ["你", "您", "他", "她", "它", "这", "那", "了", "的", "自己", "大家", "谁"];
/// Question words: "我叫什么" asks, it does not tell.
const ZH_QUESTION: [&str; 5] = ["什么", "谁", "哪", "吗", "怎么"];

/// The value of a Chinese pattern: the rest of the clause up to a stop word, without trailing
/// particles, taken verbatim.
fn chinese_value(slot: Slot, raw: &str) -> Option<String> {
    let mut value = raw.trim();
    if slot.is_taste() {
        // "我最喜欢的是饺子": the thing is after "的是".
        value = value.strip_prefix("的就是").or_else(|| value.strip_prefix("的是")).unwrap_or(value);
    }
    let extra: &[&str] = match slot {
        Slot::Name => &ZH_NAME_STOPS,
        Slot::Home => &ZH_HOME_STOPS,
        // "我喜欢猫也喜欢狗": the first thing ends where the next taste begins.
        Slot::Likes | Slot::Dislikes => &ZH_TASTE_STOPS,
    };
    let cut = ZH_STOPS.iter().chain(extra).filter_map(|stop| value.find(stop)).min().unwrap_or(value.len());
    let value = value[..cut].trim().trim_end_matches(ZH_PARTICLES).trim_matches(QUOTES).trim();

    let chars = value.chars().count();
    let (min, max) = match slot {
        Slot::Name | Slot::Home => (2, 20),
        Slot::Likes | Slot::Dislikes => (1, 20),
    };
    let plausible = (min..=max).contains(&chars)
        && !ZH_REJECT_START.iter().any(|p| value.starts_with(p))
        && !ZH_QUESTION.iter().any(|q| value.contains(q));
    plausible.then(|| value.to_owned())
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2EBEF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> Vec<(Slot, String)> {
        facts_in(text).into_iter().map(|f| (f.slot, f.value)).collect()
    }

    fn one(slot: Slot, value: &str) -> Vec<(Slot, String)> {
        vec![(slot, value.to_owned())]
    }

    #[test]
    fn english_names() {
        assert_eq!(facts("My name is Lina."), one(Slot::Name, "Lina"));
        assert_eq!(facts("my name's Lina Chen"), one(Slot::Name, "Lina Chen"));
        assert_eq!(facts("Hi, I'm called Lina"), one(Slot::Name, "Lina"));
        assert_eq!(facts("You can call me Dr. Smith"), one(Slot::Name, "Dr. Smith"));
        assert_eq!(facts("Call me Ishmael!"), one(Slot::Name, "Ishmael"));
        assert_eq!(facts("My name is 李娜"), one(Slot::Name, "李娜"));
    }

    #[test]
    fn english_homes() {
        assert_eq!(facts("I live in Lyon now"), one(Slot::Home, "Lyon"));
        assert_eq!(facts("I'm from New York City"), one(Slot::Home, "New York City"));
        assert_eq!(facts("I am based in Rio de Janeiro"), one(Slot::Home, "Rio de Janeiro"));
        assert_eq!(facts("I live in the UK"), one(Slot::Home, "the UK"));
        assert_eq!(facts("I just moved to Paris."), one(Slot::Home, "Paris"));
        assert_eq!(facts("I currently live in Berlin"), one(Slot::Home, "Berlin"));
    }

    #[test]
    fn english_tastes() {
        assert_eq!(facts("I love jazz very much."), one(Slot::Likes, "jazz"));
        assert_eq!(facts("I really like tea these days"), one(Slot::Likes, "tea"));
        assert_eq!(facts("I really enjoy hiking in the Alps"), one(Slot::Likes, "hiking in the Alps"));
        assert_eq!(facts("I like to swim"), one(Slot::Likes, "to swim"));
        assert_eq!(facts("I don't like olives."), one(Slot::Dislikes, "olives"));
        assert_eq!(facts("I really do not like mushrooms"), one(Slot::Dislikes, "mushrooms"));
        assert_eq!(facts("I hate cilantro"), one(Slot::Dislikes, "cilantro"));
        assert_eq!(facts("I can't stand traffic"), one(Slot::Dislikes, "traffic"));
    }

    #[test]
    fn chinese_values_are_kept_verbatim() {
        assert_eq!(facts("我叫李娜"), one(Slot::Name, "李娜"));
        assert_eq!(facts("我的名字是王小明。"), one(Slot::Name, "王小明"));
        assert_eq!(facts("你可以叫我小李"), one(Slot::Name, "小李"));
        assert_eq!(facts("我住在上海"), one(Slot::Home, "上海"));
        assert_eq!(facts("我在北京住了三年"), one(Slot::Home, "北京"));
        assert_eq!(facts("我现在住在上海浦东已经五年了"), one(Slot::Home, "上海浦东"));
        assert_eq!(facts("我很喜欢爵士乐"), one(Slot::Likes, "爵士乐"));
        assert_eq!(facts("我最喜欢的是饺子"), one(Slot::Likes, "饺子"));
        assert_eq!(facts("我不喜欢橄榄"), one(Slot::Dislikes, "橄榄"));
        assert_eq!(facts("我喜欢猫也喜欢狗"), one(Slot::Likes, "猫"));
        assert_eq!(facts("我真的讨厌下雨天"), one(Slot::Dislikes, "下雨天"));
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
}
