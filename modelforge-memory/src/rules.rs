//! The rule-based extractor: English and Chinese patterns for who the user is and what they
//! like, consolidated against the user's existing memories.

use std::sync::LazyLock;

use modelforge_core::{ChatMessage, Memory, MemoryError, MemoryExtractor, MemoryOp, Role};
use regex::Regex;

use crate::clauses::{all_sentences, clauses};
use crate::consolidate::consolidate;
use crate::fact::{Fact, Lang, Slot};

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
///         MemoryOp::Add { kind: MemoryKind::Profile, content: "用户的名字是李娜。".into(), confidence: 1.0 },
///         MemoryOp::Add { kind: MemoryKind::Profile, content: "用户住在上海。".into(), confidence: 1.0 },
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
        let said = turn.iter().filter(|m| m.role == Role::User).flat_map(|m| said_in(&m.content));
        let ops = consolidate(said, existing);
        tracing::debug!(extractor = "rules", ops = ops.len(), "extracted memory operations");
        Ok(ops)
    }
}

/// What one message says about the user: facts, and requests to forget something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    /// A fact to remember.
    Fact(Fact),
    /// "Forget that I like olives": the facts named (if the rest parses as facts) and the
    /// phrase itself, for memories no pattern wrote.
    Forget { facts: Vec<Fact>, phrase: String },
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

/// Everything `text` says about the user, in order.
///
/// A request to remember or forget may open any clause ("I sold the car, so forget that I
/// drive a Jeep"); it takes the rest of the sentence, and the clauses before it are read as
/// usual.
pub(crate) fn said_in(text: &str) -> Vec<Said> {
    let mut out: Vec<Said> = Vec::new();
    let push_fact = |out: &mut Vec<Said>, fact: Fact| {
        if !out.iter().any(|s| matches!(s, Said::Fact(f) if f == &fact)) {
            out.push(Said::Fact(fact));
        }
    };
    for (sentence, is_question) in all_sentences(text) {
        let parts = clauses(&sentence);
        // Where each clause starts in the sentence, to test "the rest of the sentence from here".
        let mut cursor = 0;
        let starts: Vec<usize> = parts
            .iter()
            .map(|part| {
                let at = sentence[cursor..].find(part.as_str()).map_or(cursor, |i| cursor + i);
                cursor = at + part.len();
                at
            })
            .collect();
        let request_at = starts.iter().position(|&at| {
            let rest = &sentence[at..];
            FORGET.is_match(rest) || REMEMBER.is_match(rest)
        });
        // A question asks in its last clause ("I live in Chicago, any tips?"), unless it is a
        // request ("Can you forget that I hate durian?").
        let before = match request_at {
            Some(i) => &parts[..i],
            None if is_question => &parts[..parts.len().saturating_sub(1)],
            None => &parts[..],
        };
        let whole = if is_question { Vec::new() } else { whole_sentence_facts(&sentence) };
        for fact in whole.into_iter().chain(before.iter().flat_map(|c| clause_facts(c))) {
            push_fact(&mut out, fact);
        }
        let Some(i) = request_at else { continue };
        let rest_of_sentence = &sentence[starts[i]..];
        if let Some(rest) = request(&FORGET, rest_of_sentence) {
            let facts: Vec<Fact> = clauses(&rest).iter().flat_map(|c| clause_facts(c)).collect();
            let first = clauses(&rest).into_iter().next().unwrap_or_default();
            let phrase = forget_phrase(&first);
            if !facts.is_empty() || !phrase.is_empty() {
                out.push(Said::Forget { facts, phrase });
            }
        } else if let Some(rest) = request(&REMEMBER, rest_of_sentence) {
            let facts: Vec<Fact> = clauses(&rest).iter().flat_map(|c| clause_facts(c)).collect();
            if facts.is_empty() {
                let value = rest.trim_end_matches(['.', '。', '!', '！', ' ']).trim();
                let chars = value.chars().count();
                if (2..=200).contains(&chars) {
                    let lang = if value.chars().any(is_han) { Lang::Chinese } else { Lang::English };
                    push_fact(&mut out, Fact::new(Slot::Remember, value).in_lang(lang));
                }
            }
            for fact in facts {
                push_fact(&mut out, fact);
            }
        }
    }
    out
}

/// "Remember that ...", "请记住……": the rest of the sentence.
static REMEMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:please|also|oh|and|hey|btw|by the way)[,\s]+)*(?:(?:(?:can|could|would)\s+you\s+|you\s+(?:should|can|need\s+to)\s+)?(?:please\s+)?(?:remember|note|keep in mind|don't forget|do not forget|make a note)(?:\s+that|\s*:)?|(?:请|麻烦|帮我)?(?:你|您)?(?:能|可以|要)?(?:帮我)?(?:记住|记一下|记下|别忘了|不要忘了)(?:[，,：:]|这个)?)\s*(?P<v>.+)",
    )
    .expect("the remember pattern compiles")
});

/// "Forget that I like olives", "忘掉我的车牌号": the rest of the sentence.
static FORGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:please|also|oh|and|hey|actually|good news)[,\s]+)*(?:(?:(?:can|could|would)\s+you\s+|you\s+can\s+)?(?:please\s+)?(?:forget|delete|erase|remove)\s+(?:(?:that|about|what\s+i\s+(?:said|told\s+you)\s+about|the\s+fact\s+that)\s+)?|(?:请|麻烦|帮我)?(?:你|您)?(?:能|可以|就)?(?:帮我)?(?:忘记|忘掉|忘了|删除|删掉|别再记着|不要再记着)(?:关于)?)\s*(?P<v>.+)",
    )
    .expect("the forget pattern compiles")
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

/// The facts of one clause, in order. One fact per slot: patterns are listed most specific
/// first.
fn clause_facts(clause: &str) -> Vec<Fact> {
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
    // "I've got a cat called Pepper": the named cat says more than "has a cat".
    let named: Vec<String> =
        found.iter().filter(|(_, f)| f.slot == Slot::Relative).map(|(_, f)| f.key.clone()).collect();
    found.retain(|(_, f)| {
        f.slot != Slot::Has || !named.iter().any(|key| f.value.to_lowercase().contains(key.as_str()))
    });
    found.into_iter().map(|(_, fact)| fact).collect()
}

/// Facts whose pattern spans a comma ("我养了一只猫，叫咪咪"), read from the whole sentence.
fn whole_sentence_facts(sentence: &str) -> Vec<Fact> {
    SENTENCE_PATTERNS.iter().filter_map(|p| p.find(sentence)).map(|(_, fact)| fact).collect()
}

/// Clauses that deny or refuse rather than state ("don't call me Elizabeth").
static NOT_ABOUT_ME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:don't|do\s+not|stop|never|no\s+longer)\s+call(?:ing)?\s+me|不要叫我|别叫我")
        .expect("the refusal pattern compiles")
});

static SENTENCE_PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let sources = [
        (Slot::Relative, Lang::Chinese, format!("有(?:一)?只叫(?P<v>[^，。,的]{{1,4}})的(?P<k>{ZH_PETS})")),
        (
            Slot::Relative,
            Lang::Chinese,
            format!(
                "我(?:们家)?(?:养了|有|养着)(?:一|两)(?:只|条|匹)(?P<k>{ZH_PETS})[，,]?(?:它|牠)?(?:叫|名叫|名字叫)(?P<v>[^，。！!]+)"
            ),
        ),
    ];
    sources
        .into_iter()
        .map(|(slot, lang, source)| Pattern {
            slot,
            lang,
            check: Check::None,
            regex: Regex::new(&source).unwrap_or_else(|err| panic!("memory pattern {source}: {err}")),
        })
        .collect()
});

/// Extra checks a pattern's value must pass.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    /// A bare "I'm X": X must look like a name, not a nationality or mood.
    BareName,
    /// A bare "I'm a X" / "我是X": X must be a known occupation.
    Occupation,
    /// "我是X" as a name: X must start with a common surname.
    Surname,
    /// The `o` group before the value must name an occupation ("a nurse in Leeds").
    OccupationBefore,
    /// The `o` group after the value must name an occupation ("在杭州做会计").
    OccupationAfter,
}

struct Pattern {
    slot: Slot,
    lang: Lang,
    check: Check,
    /// Captures the value as `v`, a relative's relation as `k`, and for Chinese likes the
    /// verb as `verb`.
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
        if let Some(o) = caps.name("o") {
            let named = match self.lang {
                Lang::English => job_phrase(o.as_str(), true).is_some(),
                Lang::Chinese => {
                    ZH_JOBS.iter().any(|job| o.as_str().trim_end_matches(ZH_PARTICLES).ends_with(job))
                }
            };
            if !named {
                return None;
            }
        }
        let value = match self.lang {
            Lang::English => english_value(self.slot, self.check, raw),
            Lang::Chinese => chinese_value(self.slot, self.check, raw),
        }?;
        let mut fact = Fact::new(self.slot, value).in_lang(self.lang);
        if self.slot == Slot::Relative {
            let key = caps.name("k").map_or("spouse", |k| k.as_str());
            fact = fact.with_key(key.to_lowercase());
        }
        Some((caps.get(0)?.start(), fact))
    }
}

const EN_ADVERBS: &str =
    r"(?:(?:really|also|just|absolutely|truly|totally|actually|still|currently|now|recently|finally)\s+)*";
const ZH_ADVERBS: &str =
    "(?:很|非常|特别|真的|也|最|超级|超|挺|还|都|一直|比较|蛮|好|现在|目前|就|自己|平时|平常|一般|更)*";
const EN_RELATIONS: &str = "wife|husband|partner|girlfriend|boyfriend|fianc[eé]e?|son|daughter|brother|sister|mother|mom|mum|father|dad|dog|cat|puppy|kitten|baby|grandson|granddaughter";
const ZH_RELATIONS: &str = "妻子|老婆|太太|丈夫|老公|先生|儿子|女儿|哥哥|姐姐|弟弟|妹妹|妈妈|母亲|爸爸|父亲|男朋友|女朋友|小狗|小猫|狗狗|狗|猫咪|猫|宝宝|孩子";
const EN_KIN: &str = "kids?|children|child|sons?|daughters?|brothers?|sisters?|dogs?|cats?|grandchildren|grandkids|siblings|twins|puppies|kittens|parrots?|rabbits?|hamsters?";
const EN_TRAITS: &str = "vegetarian|vegan|pescatarian|left-handed|right-handed|diabetic|lactose intolerant|gluten intolerant|colou?r-?blind|celiac|coeliac|teetotal|asthmatic|epileptic";
const ZH_TRAITS: &str = "左撇子|素食者|素食主义者|糖尿病人|糖尿病患者|色盲|孕妇|哮喘病人";
const ZH_PETS: &str =
    "猫|狗|猫咪|狗狗|小猫|小狗|兔子|鹦鹉|仓鼠|乌龟|金毛|柯基|泰迪|哈士奇|拉布拉多|布偶|英短|橘猫";
const EN_PETS: &str = "dog|cat|puppy|kitten|beagle|labrador|lab|poodle|terrier|retriever|spaniel|collie|husky|corgi|pug|dachshund|bulldog|shepherd|parrot|rabbit|hamster|tortoise|turtle";
const ZH_KIN: &str = "孩子|儿子|女儿|哥哥|姐姐|弟弟|妹妹|狗|猫|宝宝|兄弟|姐妹|孙子|孙女";

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    use Check::{BareName, Occupation, OccupationAfter, OccupationBefore, Surname};
    use Lang::{Chinese, English};
    use Slot::{Allergy, Dislikes, Drives, Employer, Has, Home, Job, Likes, Name, Relative, Trait};
    let a = EN_ADVERBS;
    let z = ZH_ADVERBS;
    let none = Check::None;
    let sources: Vec<(Slot, Lang, Check, String)> = vec![
        (Name, English, none, r"(?i)\bmy\s+(?:first\s+)?name(?:\s+is|'s)\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\bi(?:'m|\s+am)\s+called\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\b(?:just\s+)?call\s+me\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\bthis\s+is\s+(?P<v>.+?)\s+(?:speaking|here|writing)\b".into()),
        (Name, English, BareName, r"(?i)^(?:(?:hi|hello|hey)\s+)?this\s+is\s+(?P<v>\S+(?:\s+\S+)?)$".into()),
        (Name, English, none, r"(?i)^(?:my\s+)?name's\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\bi\s+(?:now\s+)?go\s+by\s+(?P<v>.+)".into()),
        (Name, English, BareName, r"(?i)^(?:(?:hi|hello|hey|hiya)\s+)?(?P<v>\S+)\s+here$".into()),
        (Name, English, none, r"(?i)\bchanged\s+my\s+name\s+to\s+(?P<v>.+)".into()),
        (Name, English, BareName, r"(?i)^(?:(?:hi|hello|hey)(?:\s+there)?\s+)?i(?:'m|\s+am)\s+(?P<v>.+)".into()),
        (Home, English, none, format!(r"(?i)\b(?:i|we)\s+{a}live\s+in\s+(?P<v>.+)")),
        (Home, English, none, format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:living|based)\s+in\s+(?P<v>.+)")),
        (Home, English, none, r"(?i)\bi(?:'m|\s+am)\s+(?:originally\s+)?from\s+(?P<v>.+)".into()),
        (Home, English, none, r"(?i)\bi\s+(?:originally\s+)?come\s+from\s+(?P<v>.+)".into()),
        (
            Home,
            English,
            none,
            format!(
                r"(?i)(?:\b(?:i|we)(?:'ve|\s+have|'re|\s+are|'m|\s+am)?\s+|^){a}(?:moved|relocated|relocating|moving)\s+(?:from\s+.+?\s+)?to\s+(?P<v>.+)"
            ),
        ),
        (Home, English, none, r"(?i)\bmy\s+(?:new\s+)?home\s+is\s+(?:in\s+)?(?P<v>.+)".into()),
        // "I'm a nurse in Adelaide", "a pastry chef in Milwaukee": an occupation, then a place.
        (
            Home,
            English,
            OccupationBefore,
            r"(?i)(?:\bi(?:'m|\s+am)\s+(?:now\s+)?|^)(?P<o>an?\s+[\w\s-]{2,40}?)\s+(?:in|from|based\s+in)\s+(?P<v>.+)".into(),
        ),
        (Job, English, none, format!(r"(?i)(?:\bi\s+|^){a}work\s+as\s+(?P<v>.+)")),
        (Job, English, none, format!(r"(?i)\bi\s+{a}work\s+(?:at|for)\s+.+?\s+as\s+(?P<v>.+)")),
        (Job, English, none, format!(r"(?i)\bi\s+{a}got\s+a\s+(?:new\s+)?job\s+as\s+(?P<v>.+)")),
        (Job, English, none, format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:working|employed)\s+as\s+(?P<v>.+)")),
        (Job, English, none, r"(?i)\bmy\s+(?:new\s+)?(?:job|occupation|profession)\s+is\s+(?P<v>.+)".into()),
        (Job, English, Occupation, format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:now\s+)?(?P<v>an?\s+.+)")),
        (Job, English, Occupation, r"(?i)^(?P<v>an?\s+[\w\s-]{2,40}?)\s+(?:in|at|from)\s+[A-Z]".into()),
        (Job, English, Occupation, r"(?i)^(?P<v>an?\s+[\w\s-]{2,40})$".into()),
        (Job, English, none, r"(?i)\b(?:started|starting|began)\s+(?:work(?:ing)?\s+)?as\s+(?P<v>.+)".into()),
        (Home, English, none, r"(?i)\b(?:here|back\s+home)\s+in\s+(?P<v>.+)".into()),
        (Home, English, none, r"(?i)\bwe(?:'re|\s+are)\s+(?:based\s+)?in\s+(?P<v>.+)".into()),
        (
            Job,
            English,
            none,
            format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:starting|hired|employed|working)\s+(?:now\s+)?as\s+(?P<v>.+)"),
        ),
        (Job, English, Occupation, format!(r"(?i)\bi\s+{a}became\s+(?P<v>an?\s+.+)")),
        (
            Employer,
            English,
            none,
            format!(
                r"(?i)(?:\bi(?:'m|\s+am)?\s+|^){a}work(?:ing)?\s+(?:as\s+.+?\s+)?(?:at|for)\s+(?:an?\s+[\w\s]+?\s+(?:called|named)\s+)?(?P<v>.+)"
            ),
        ),
        (
            Employer,
            English,
            none,
            format!(
                r"(?i)\bi\s+{a}(?:got\s+a\s+(?:new\s+)?job|started\s+(?:a\s+(?:new\s+)?job|working)|joined)\s+(?:as\s+.+?\s+)?(?:at|with|for)?\s*(?P<v>.+)"
            ),
        ),
        (
            Relative,
            English,
            none,
            format!(
                r"(?i)\bmy\s+(?:little\s+|older\s+|younger\s+|big\s+|baby\s+)?(?P<k>{EN_RELATIONS})(?:'s\s+name\s+is|\s+is\s+(?:called|named))\s+(?P<v>.+)"
            ),
        ),
        (
            Employer,
            English,
            none,
            r"(?i)\bi(?:'m|\s+am)\s+(?:now\s+)?an?\s+[\w\s-]+?\s+at\s+(?P<v>.+)".into(),
        ),
        (
            Relative,
            English,
            none,
            r"(?i)\bi(?:'m|\s+am)\s+married\s+to\s+(?P<v>.+)".into(),
        ),
        (
            Relative,
            English,
            none,
            format!(r"(?i)\bmy\s+(?:little\s+|older\s+|younger\s+|big\s+|baby\s+|twin\s+)?(?P<k>{EN_RELATIONS})\s+(?P<v>[A-Z].*)"),
        ),
        (
            Relative,
            English,
            none,
            format!(
                r"(?i)\b(?:my|an?)\s+(?:\w+\s+){{0,2}}?(?P<k>{EN_RELATIONS})\s+(?:named|called)\s+(?P<v>.+)"
            ),
        ),
        (
            Relative,
            English,
            none,
            format!(
                r"(?i)\b(?:i|we)(?:'ve|\s+have)?\s+{a}(?:adopted|got|have|bought|rescued)\s+(?:a|an)\s+(?:\w+\s+)?(?P<k>\w+)\s+(?:named|called)\s+(?P<v>.+)"
            ),
        ),
        (Relative, English, none, format!(r"(?i)\b(?:my|our)\s+(?:\w+\s+)?(?P<k>{EN_PETS})\s+(?P<v>[A-Z].*)")),
        (
            Has,
            English,
            none,
            format!(
                r"(?i)\b(?:(?:i|we)(?:'ve\s+got|\s+{a}(?:have|have\s+got|'ve\s+got))|with\s+my)\s+(?P<v>(?:a|an|one|two|three|four|five|six|\d+)\s+(?:\w+\s+){{0,2}}?(?:{EN_KIN}))\b"
            ),
        ),
        (
            Dislikes,
            English,
            none,
            format!(
                r"(?i)\bi\s+{a}(?:(?:don't|dont|do\s+not)\s+{a}(?:like|enjoy|love)|hate|dislike|detest|loathe|(?:can't|cant|cannot|can\s+not)\s+stand)\s+(?P<v>.+)"
            ),
        ),
        (Dislikes, English, none, r"(?i)(?:\bi(?:'m|\s+am)\s+|^)not\s+a\s+(?:big\s+)?fan\s+of\s+(?P<v>.+)".into()),
        (
            Likes,
            English,
            none,
            format!(
                r"(?i)\b(?:i|we)\s+{a}(?:both\s+)?(?:like|love|enjoy|adore|prefer|loved|liked|enjoyed)\s+(?P<v>.+)"
            ),
        ),
        (
            Allergy,
            English,
            none,
            format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:severely\s+|very\s+|deathly\s+|highly\s+)?allergic\s+to\s+(?P<v>.+)"),
        ),
        (Allergy, English, none, r"(?i)\bi\s+have\s+an?\s+(?P<v>\w+(?:\s+\w+)?)\s+allergy\b".into()),
        (Drives, English, none, format!(r"(?i)\bi\s+{a}(?:drive|ride)\s+(?P<v>(?:a|an|the|my)\s+.+)")),
        (Trait, English, none, format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:an?\s+)?(?P<v>{EN_TRAITS})\b")),
        (
            Likes,
            English,
            none,
            format!(r"(?i)\bi(?:'ve|\s+have)?\s+{a}(?:started|begun|come)\s+to\s+(?:like|love|enjoy)\s+(?P<v>.+)"),
        ),
        (Likes, English, none, r"(?i)\bi(?:'m|\s+am)\s+(?:a\s+)?(?:big|huge|great)\s+(?P<v>.+?)\s+fan\b".into()),
        (
            Likes,
            English,
            none,
            r"(?i)\bi(?:'m|\s+am)\s+(?:(?:much\s+)?(?:more|really|totally|now|also)\s+)*(?:a\s+(?:big|huge)\s+fan\s+of|into|crazy\s+about|obsessed\s+with)\s+(?P<v>.+)".into(),
        ),
        (Likes, English, none, r"(?i)\bmy\s+favou?rite\s+\w+\s+is\s+(?P<v>.+)".into()),
        (Name, Chinese, none, "我叫(?P<v>.+)".into()),
        (Name, Chinese, none, "我的名字(?:是|叫)(?P<v>.+)".into()),
        (Name, Chinese, none, "我名叫(?P<v>.+)".into()),
        (Name, Chinese, none, "名字(?:从.{1,8}?)?改(?:成|为)了?(?P<v>.+)".into()),
        (Name, Chinese, Surname, "^(?:大家好|你好)?[，,]?我是(?P<v>.+)".into()),
        // Only at the start of a clause: "他叫我去吃饭" means "he told me to go and eat".
        (Name, Chinese, none, "^(?:你可以|你就|请|大家都|大家)?叫我(?P<v>.+)".into()),
        (Home, Chinese, none, "我(?:们)?(?:现在|目前|一直|也|还|就)?住在(?P<v>.+)".into()),
        (Home, Chinese, none, "我(?:们)?(?:刚|最近|已经)?(?:来|到)(?P<v>[^，。,]{2,6}?)(?:工作|上班|生活|定居)".into()),
        (Home, Chinese, none, "我(?:现在|目前|一直|也|还|就)?在(?P<v>[^住，。]{1,12}?)(?:工作和|上班和)?(?:住|生活|定居)".into()),
        (Home, Chinese, none, "^(?:现在|目前|一直|也)?住在(?P<v>.+)".into()),
        (Home, Chinese, none, "我来自(?P<v>.+)".into()),
        (Home, Chinese, none, "我(?:们)?(?:全家|一家)?(?:已经|刚|最近|上个月|去年)?(?:从.{1,10}?)?搬(?:到|去)了?(?P<v>.+)".into()),
        (Job, Chinese, none, "(?:我|^)(?:现在|目前)?是一(?:名|位)(?P<v>.+)".into()),
        (Job, Chinese, none, "我(?:现在|目前)?(?:的)?(?:工作|职业)是(?P<v>.+)".into()),
        (Job, Chinese, Occupation, "(?:我|^)(?:现在|目前)?(?:在.{1,12}?)?(?:当|做)(?P<v>[^，。]{1,8}?)(?:工作)?$".into()),
        (Job, Chinese, Occupation, "我(?:现在|目前)?是(?P<v>.+)".into()),
        (Employer, Chinese, none, "(?:我|^)(?:现在|目前|一直)?在(?P<v>[^，。住]{1,15}?)(?:工作|上班|任职|实习)".into()),
        // "在一家书店当店员", "在腾讯做产品经理": an organisation, then an occupation.
        (
            Employer,
            Chinese,
            OccupationAfter,
            "(?:我|^)(?:现在|目前|一直)?在(?P<v>[^，。,的]{2,12}?)(?:的[^，。]{1,10}?)?(?:做|当)(?P<o>[^，。,]{1,6})".into(),
        ),
        (Job, Chinese, Occupation, "在[^，。,]{2,16}?(?:做|当)(?P<v>[^，。,]{1,6})".into()),
        (Employer, Chinese, none, "我(?:已经|刚|最近)?(?:加入了|入职了|跳槽到了?|去了)(?P<v>.+)".into()),
        (Relative, Chinese, none, format!("我(?:家)?(?:的)?(?P<k>{ZH_RELATIONS})(?:的名字)?(?:叫|名叫|是叫)(?P<v>.+)")),
        (Relative, Chinese, Surname, format!("我(?:的)?(?P<k>{ZH_RELATIONS})(?P<v>[^，。]{{2,6}})")),
        (Has, Chinese, none, format!("我(?:们家)?有(?P<v>(?:一|两|二|三|四|五|六|\\d)(?:个|只|条|位)?(?:[^，。]{{0,3}}?)(?:{ZH_KIN}))")),
        (Dislikes, Chinese, none, format!("我{z}(?:不太喜欢|不喜欢|不喜爱|不爱|讨厌|厌恶|受不了)(?P<v>.+)")),
        (Likes, Chinese, none, format!("我{z}(?P<verb>喜欢|喜爱|热爱|爱)(?P<v>.+)")),
        (Likes, Chinese, none, format!("^(?:改|转而|开始)?{z}(?:喜欢|热爱|爱上)了?(?P<v>.+)")),
        (Likes, Chinese, none, format!("(?:我|^){z}(?:最近|现在)?(?:迷上|爱上|喜欢上)了?(?P<v>.+)")),
        (Allergy, Chinese, none, format!("(?:我|^){z}对(?P<v>[^，。]{{1,10}}?)过敏")),
        (Drives, Chinese, none, "我(?:现在|目前)?开(?:一辆|的是|的车是|着一辆)(?P<v>.+)".into()),
        (Trait, Chinese, none, format!("我(?:是|是一个|是一名|是个)(?P<v>{ZH_TRAITS})")),
    ];
    sources
        .into_iter()
        .map(|(slot, lang, check, source)| Pattern {
            slot,
            lang,
            check,
            regex: Regex::new(&source).unwrap_or_else(|err| panic!("memory pattern {source}: {err}")),
        })
        .collect()
});

const QUOTES: &[char] = &['"', '\'', '“', '”', '「', '」', '『', '』', '(', ')', '（', '）', ':', '：'];

/// The value of an English pattern: capitalized words for names and places, a short phrase for
/// tastes. A name or place in Chinese characters ("My name is 李娜") is taken as a Han run.
fn english_value(slot: Slot, check: Check, raw: &str) -> Option<String> {
    let raw = raw.trim().trim_matches(QUOTES).trim();
    if raw.chars().next().is_some_and(is_han) && matches!(slot, Slot::Name | Slot::Home | Slot::Relative) {
        let run: String = raw.chars().take_while(|&c| is_han(c)).collect();
        return (2..=10).contains(&run.chars().count()).then_some(run);
    }
    match slot {
        Slot::Name if check == Check::BareName => {
            let name = proper_noun(raw, false)?;
            let first = name.split_whitespace().next().unwrap_or_default();
            let ok = name.split_whitespace().count() <= 3 && !NOT_NAMES.contains(&first);
            ok.then_some(name)
        }
        Slot::Name | Slot::Relative => proper_noun(raw, false),
        Slot::Home => proper_noun(raw, true),
        Slot::Employer => proper_noun(raw, true),
        Slot::Job => job_phrase(raw, check == Check::Occupation),
        Slot::Has => Some(raw.split_whitespace().collect::<Vec<_>>().join(" ")),
        Slot::Likes | Slot::Dislikes | Slot::Allergy => taste_phrase(raw),
        Slot::Drives => job_phrase(raw, false),
        Slot::Trait => Some(raw.to_lowercase()),
        Slot::Remember => None,
    }
}

/// Capitalized words after "I'm" that are not names.
const NOT_NAMES: [&str; 40] = [
    "English",
    "French",
    "German",
    "Italian",
    "Spanish",
    "Chinese",
    "Japanese",
    "American",
    "British",
    "Canadian",
    "Australian",
    "Indian",
    "Korean",
    "Russian",
    "Mexican",
    "Brazilian",
    "Dutch",
    "Swiss",
    "Swedish",
    "Irish",
    "Scottish",
    "Polish",
    "Vietnamese",
    "Thai",
    "Catholic",
    "Christian",
    "Muslim",
    "Jewish",
    "Buddhist",
    "Sorry",
    "Fine",
    "Good",
    "Happy",
    "Glad",
    "Back",
    "Here",
    "Ready",
    "Sure",
    "Not",
    "OK",
];

/// Occupations a bare "I'm a ..." must name to count as a job.
const OCCUPATIONS: [&str; 155] = [
    "engineer",
    "developer",
    "programmer",
    "teacher",
    "nurse",
    "doctor",
    "physician",
    "lawyer",
    "accountant",
    "designer",
    "architect",
    "chef",
    "cook",
    "student",
    "scientist",
    "researcher",
    "writer",
    "journalist",
    "artist",
    "musician",
    "photographer",
    "pilot",
    "driver",
    "manager",
    "consultant",
    "analyst",
    "pharmacist",
    "dentist",
    "vet",
    "veterinarian",
    "electrician",
    "plumber",
    "carpenter",
    "mechanic",
    "farmer",
    "baker",
    "barista",
    "waiter",
    "waitress",
    "librarian",
    "professor",
    "lecturer",
    "translator",
    "editor",
    "firefighter",
    "officer",
    "soldier",
    "surgeon",
    "therapist",
    "psychologist",
    "paramedic",
    "cashier",
    "entrepreneur",
    "freelancer",
    "physicist",
    "chemist",
    "biologist",
    "economist",
    "banker",
    "secretary",
    "receptionist",
    "tailor",
    "painter",
    "actor",
    "actress",
    "dancer",
    "singer",
    "coach",
    "tutor",
    "administrator",
    "technician",
    "intern",
    "midwife",
    "hairdresser",
    "optician",
    "surveyor",
    "cleaner",
    "carer",
    "caregiver",
    "worker",
    "clerk",
    "agent",
    "realtor",
    "broker",
    "trader",
    "investor",
    "mathematician",
    "statistician",
    "influencer",
    "streamer",
    "blogger",
    "coder",
    "janitor",
    "lifeguard",
    "guide",
    "instructor",
    "trainer",
    "builder",
    "welder",
    "roofer",
    "gardener",
    "landscaper",
    "florist",
    "butcher",
    "bartender",
    "sommelier",
    "nanny",
    "housekeeper",
    "jeweler",
    "comedian",
    "poet",
    "novelist",
    "author",
    "illustrator",
    "animator",
    "producer",
    "director",
    "filmmaker",
    "composer",
    "pianist",
    "violinist",
    "guitarist",
    "drummer",
    "founder",
    "owner",
    "retiree",
    "paralegal",
    "attorney",
    "judge",
    "tester",
    "marketer",
    "recruiter",
    "dietitian",
    "nutritionist",
    "physiotherapist",
    "physio",
    "radiologist",
    "psychiatrist",
    "counselor",
    "counsellor",
    "postman",
    "courier",
    "sailor",
    "fisherman",
    "miner",
    "auditor",
    "controller",
    "assistant",
    "specialist",
    "coordinator",
    "supervisor",
    "inspector",
    "operator",
    "dispatcher",
    "pharmacologist",
];

/// A job phrase ("a nurse", "software engineer"): up to where the clause goes on about
/// something else, at most six words; with `need_occupation`, one word must be an occupation.
fn job_phrase(raw: &str, need_occupation: bool) -> Option<String> {
    let mut value = raw.trim_matches(QUOTES).trim();
    for cut in
        [" at ", " for ", " in ", " with ", " since ", " now", " these days", " by profession", " online"]
    {
        if let Some(i) = value.to_lowercase().find(cut) {
            value = value[..i].trim();
        }
    }
    let words: Vec<&str> = value.split_whitespace().collect();
    let first = words.first()?.to_lowercase();
    if words.len() > 6 || TASTE_REJECT.contains(&first.as_str()) {
        return None;
    }
    let occupation = words.iter().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        OCCUPATIONS.contains(&w.as_str()) || OCCUPATIONS.contains(&w.trim_end_matches('s'))
    });
    (!need_occupation || occupation).then(|| words.join(" ").trim_end_matches(['.', '!', ',']).to_owned())
}

/// Lowercase words that may sit between capitalized ones ("Rio de Janeiro").
const NAME_CONNECTORS: [&str; 13] =
    ["de", "da", "del", "di", "du", "la", "le", "van", "von", "der", "of", "upon", "&"];

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
const TASTE_THE_REJECT: [&str; 7] = ["idea", "way", "fact", "thought", "stuff", "thing", "things"];
const TASTE_FILLERS: [&str; 16] = [
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
    " instead",
    " online",
    " though",
    " too much",
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
const ZH_NAME_STOPS: [&str; 24] = [
    "今年", "是", "在", "住", "来自", "和", "也", "特别", "很", "非常", "最", "说", "他", "她", "每", "经常",
    "总是", "今天", "明天", "昨天", "又", "都", "还", "就",
];
const ZH_HOME_STOPS: [&str; 8] = ["已经", "和", "工作", "上班", "上学", "读书", "生活", "住"];
const ZH_JOB_STOPS: [&str; 5] = ["已经", "了", "在", "工作", "，"];
/// Endings of occupations ("护士", "软件工程师", "程序员").
const ZH_JOBS: [&str; 47] = [
    "师",
    "员",
    "医生",
    "护士",
    "工人",
    "司机",
    "记者",
    "经理",
    "会计",
    "警察",
    "农民",
    "老板",
    "主管",
    "总监",
    "博士",
    "学生",
    "教授",
    "作家",
    "画家",
    "演员",
    "歌手",
    "保安",
    "销售",
    "主播",
    "翻译",
    "编辑",
    "导演",
    "秘书",
    "店长",
    "校长",
    "人事",
    "财务",
    "行政",
    "设计",
    "运营",
    "客服",
    "前台",
    "保洁",
    "厨师",
    "护工",
    "老师",
    "律师",
    "助理",
    "服务员",
    "店员",
    "技术员",
    "教研员",
];
/// The most common Chinese surnames, for "我是王芳" (a name) against "我是北京人" (not one).
const ZH_SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧";
const ZH_TASTE_STOPS: [&str; 8] =
    ["也喜欢", "还喜欢", "也爱", "也不喜欢", "也讨厌", "这件事", "这个事", "这事"];
const ZH_PARTICLES: &[char] = &['了', '啊', '呀', '哦', '的', '呢', '吧', '啦', '哈', '嘛', '哟', '喔'];
/// Values starting with these are pronouns or grammar, not names, places or things.
const ZH_REJECT_START: [&str; 12] =
    ["你", "您", "他", "她", "它", "这", "那", "了", "的", "自己", "大家", "谁"];
/// Question words: "我叫什么" asks, it does not tell.
const ZH_QUESTION: [&str; 5] = ["什么", "谁", "哪", "吗", "怎么"];

/// The value of a Chinese pattern: the rest of the clause up to a stop word, without trailing
/// particles, taken verbatim.
fn chinese_value(slot: Slot, check: Check, raw: &str) -> Option<String> {
    let mut value = raw.trim();
    if slot.is_taste() {
        // "我最喜欢的是饺子": the thing is after "的是".
        value = value.strip_prefix("的就是").or_else(|| value.strip_prefix("的是")).unwrap_or(value);
    }
    let extra: &[&str] = match slot {
        Slot::Name | Slot::Relative => &ZH_NAME_STOPS,
        Slot::Home => &ZH_HOME_STOPS,
        Slot::Job => &ZH_JOB_STOPS,
        // "我喜欢猫也喜欢狗": the first thing ends where the next taste begins.
        Slot::Likes | Slot::Dislikes => &ZH_TASTE_STOPS,
        Slot::Employer | Slot::Has | Slot::Remember | Slot::Allergy | Slot::Drives | Slot::Trait => &[],
    };
    let cut = ZH_STOPS.iter().chain(extra).filter_map(|stop| value.find(stop)).min().unwrap_or(value.len());
    let value = value[..cut].trim().trim_end_matches(ZH_PARTICLES).trim_matches(QUOTES).trim();

    let chars = value.chars().count();
    let (min, max) = match slot {
        Slot::Name | Slot::Home | Slot::Employer | Slot::Has => (2, 20),
        Slot::Relative | Slot::Job | Slot::Likes | Slot::Dislikes | Slot::Remember => (1, 20),
        Slot::Allergy | Slot::Drives | Slot::Trait => (1, 20),
    };
    let is_job = || ZH_JOBS.iter().any(|job| value.ends_with(job));
    let checked = match check {
        Check::Occupation => is_job(),
        Check::Surname => {
            (2..=3).contains(&chars)
                && value.chars().next().is_some_and(|c| ZH_SURNAMES.contains(c))
                && !is_job()
        }
        Check::None | Check::BareName | Check::OccupationBefore | Check::OccupationAfter => true,
    };
    let plausible = checked
        && (min..=max).contains(&chars)
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
    fn remember_and_forget_requests() {
        assert_eq!(
            facts("Please remember that my passport expires in March."),
            one(Slot::Remember, "my passport expires in March")
        );
        assert_eq!(facts("Remember that I hate olives"), one(Slot::Dislikes, "olives"));
        assert_eq!(facts("记住，我的车牌号是沪A12345。"), one(Slot::Remember, "我的车牌号是沪A12345"));
        let forget = said_in("Forget that I like olives.");
        assert_eq!(
            forget,
            [Said::Forget { facts: vec![Fact::new(Slot::Likes, "olives")], phrase: "I like olives".into() }]
        );
        let jeep = said_in("I sold the car, so forget that I drive a green Jeep.");
        assert_eq!(
            jeep,
            [Said::Forget {
                facts: vec![Fact::new(Slot::Drives, "a green Jeep")],
                phrase: "I drive a green Jeep".into()
            }]
        );
        assert_eq!(facts("Forget that I like olives."), []);
        assert!(
            matches!(&said_in("忘掉我的车牌号")[..], [Said::Forget { facts, phrase }] if facts.is_empty() && phrase == "车牌号")
        );
        assert_eq!(said_in("I forgot my keys."), []);
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
