//! The pattern table: each pattern finds one kind of fact in a clause, and its language's
//! rules cut and check the value. Who the user is, where they live and work, their family,
//! tastes and car are here; what keeps them safe and how to talk to them is in
//! [`care`](super::care).

use std::sync::LazyLock;

use regex::Regex;

use super::care;
use super::chinese::{ZH_JOBS, ZH_PARTICLES, chinese_value};
use super::english::{english_value, job_phrase};
use crate::fact::{Fact, Lang, Slot};

/// A pattern before compiling: its slot, language, check and regex source.
pub(super) type Source = (Slot, Lang, Check, String);

/// Extra checks a pattern's value must pass.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
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
    /// A Chinese pet name of two characters: "朵朵", "小雨", or any before a time word
    /// ("豆包下周来").
    Nickname,
}

/// One pattern of the table: what it finds, in which language, and how its value is checked.
pub(super) struct Pattern {
    slot: Slot,
    lang: Lang,
    check: Check,
    /// Captures the value as `v`, a relative's relation as `k`, for Chinese likes the verb as
    /// `verb`, and as `no` what makes a match say nothing ("对花生过敏的人", "this time").
    regex: Regex,
}

impl Pattern {
    /// The fact in `clause`, with its byte position, if the pattern matches and the value is
    /// plausible.
    pub(super) fn find(&self, clause: &str) -> Option<(usize, Fact)> {
        let caps = self.regex.captures(clause)?;
        if caps.name("no").is_some() || (care::needs_certainty(self.slot) && care::is_hedged(clause)) {
            return None;
        }
        let raw = caps.name("v")?.as_str();
        // "我爱好音乐" is "my hobby is music", not "I love 好音乐".
        if caps.name("verb").is_some_and(|verb| verb.as_str() == "爱") && raw.starts_with('好') {
            return None;
        }
        if caps.name("o").is_some_and(|o| !self.names_occupation(o.as_str())) {
            return None;
        }
        if self.check == Check::Nickname && !is_nickname(raw, caps.name("after").map_or("", |a| a.as_str())) {
            return None;
        }
        let value = match self.lang {
            Lang::English => english_value(self.slot, self.check, raw),
            Lang::Chinese => chinese_value(self.slot, self.check, raw),
        }?;
        let mut fact = Fact::new(street_or(self.slot, self.lang, &value), value).in_lang(self.lang);
        if self.slot == Slot::Relative {
            let key = caps.name("k").map_or("spouse", |k| k.as_str());
            fact = fact.with_key(key.to_lowercase());
        }
        Some((caps.get(0)?.start(), fact))
    }

    /// Whether the `o` group names an occupation ("a nurse", "会计").
    fn names_occupation(&self, o: &str) -> bool {
        match self.lang {
            Lang::English => job_phrase(o, true).is_some(),
            Lang::Chinese => ZH_JOBS.iter().any(|job| o.trim_end_matches(ZH_PARTICLES).ends_with(job)),
        }
    }
}

/// Words after a relation that show the two characters before them are a name ("豆包下周来").
const ZH_TIME_WORDS: [&str; 10] =
    ["今年", "下周", "上周", "明天", "昨天", "今天", "最近", "已经", "才", "刚"];
/// Two characters after a relation that look like a pet name but are words ("小学", "小时候").
const ZH_NOT_NICKNAMES: [&str; 6] = ["小学", "小时", "小区", "小孩", "小的", "阿姨"];

/// Whether `value`, two characters after a relation and before `after`, is a pet name:
/// doubled ("朵朵"), or before a time word ("豆包下周来"), or "小X"/"阿X" at the clause end.
fn is_nickname(value: &str, after: &str) -> bool {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() != 2 || ZH_NOT_NICKNAMES.contains(&value) {
        return false;
    }
    let doubled = chars[0] == chars[1];
    let prefixed =
        matches!(chars[0], '小' | '阿') && (after.is_empty() || after.starts_with(['，', '。', ',']));
    doubled || prefixed || ZH_TIME_WORDS.contains(&after)
}

/// A home that is a street is an address: "住在玉林路那边".
fn street_or(slot: Slot, lang: Lang, value: &str) -> Slot {
    let place =
        ["那边", "附近", "一带", "这边"].iter().fold(value, |v, tail| v.strip_suffix(tail).unwrap_or(v));
    let street = place.ends_with(['路', '街', '巷', '道']);
    if slot == Slot::Home && lang == Lang::Chinese && street { Slot::Address } else { slot }
}

/// Adverbs allowed between "I" and the verb ("I really like").
pub(super) const EN_ADVERBS: &str =
    r"(?:(?:really|also|just|absolutely|truly|totally|actually|still|currently|now|recently|finally)\s+)*";
/// Adverbs allowed between "我" and the verb ("我很喜欢").
pub(super) const ZH_ADVERBS: &str =
    "(?:很|非常|特别|真的|也|最|超级|超|挺|还|都|一直|比较|蛮|好|现在|目前|就|自己|平时|平常|一般|更)*";
pub(super) const EN_RELATIONS: &str = "wife|husband|partner|girlfriend|boyfriend|fianc[eé]e?|son|daughter|brother|sister|mother|mom|mum|father|dad|dog|cat|puppy|kitten|baby|grandson|granddaughter|twins|kids|children|sons|daughters|ex-boyfriend|ex-girlfriend|ex-husband|ex-wife|ex-partner|ex";
/// When a job starts: "starting monday as", "started last week as".
const WHEN: &str = r"(?:(?:on\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|today|next\s+\w+|this\s+\w+|last\s+\w+|in\s+\w+)\s+)?";
/// A time of day or a shift worked: "I work nights at a bakery".
const SHIFTS: &str = r"(?:nights|days|evenings|weekends|shifts|nights\s+and\s+weekends|part[-\s]time|full[-\s]time|from\s+home|remotely)";
/// What makes "I'm in Paris" a visit rather than a home.
const VISITING: &str = r"for|this|next|until|till|visiting|on\s+(?:holiday|vacation|business|a\s+trip)|today|tonight|tomorrow|right\s+now|at\s+the\s+moment|a\s+(?:meeting|hurry|rush|queue|line)|trouble|love|charge|pain|hospital|bed";
/// Openings allowed before a bare "I'm X" ("hiya, I'm Imogen", "also I'm Juno").
const GREETING: &str =
    r"(?:(?:hi|hello|hey|hiya|yo|also|oh|and|btw|anyway|ok|okay|so|well)(?:\s+there)?[,\s]+)*";
const ZH_RELATIONS: &str = "前男友|前女友|前夫|前妻|妻子|老婆|太太|丈夫|老公|先生|儿子|女儿|哥哥|姐姐|弟弟|妹妹|妈妈|母亲|爸爸|父亲|男朋友|女朋友|小狗|小猫|狗狗|狗|猫咪|猫|宝宝|孩子|外孙女|外孙|孙女|孙子";
const EN_KIN: &str = "kids?|children|child|sons?|daughters?|brothers?|sisters?|dogs?|cats?|grandchildren|grandkids|siblings|twins|puppies|kittens|parrots?|rabbits?|hamsters?";
const ZH_PETS: &str =
    "猫|狗|猫咪|狗狗|小猫|小狗|兔子|鹦鹉|仓鼠|乌龟|金毛|柯基|泰迪|哈士奇|拉布拉多|布偶|英短|橘猫";
const EN_PETS: &str = "dog|cat|puppy|kitten|beagle|labrador|lab|poodle|terrier|retriever|spaniel|collie|husky|corgi|pug|dachshund|bulldog|shepherd|parrot|rabbit|hamster|tortoise|turtle";
const ZH_KIN: &str = "孩子|儿子|女儿|哥哥|姐姐|弟弟|妹妹|狗|猫|宝宝|兄弟|姐妹|孙子|孙女";

/// Every clause pattern, most specific first within a slot.
pub(super) static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let mut sources = who_and_where();
    sources.extend(care::clause_sources());
    compile(sources)
});

/// Patterns that span clauses, tried on a whole sentence.
pub(super) static SENTENCE_PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let mut sources = sentence_sources();
    sources.extend(care::sentence_sources());
    compile(sources)
});

fn compile(sources: Vec<Source>) -> Vec<Pattern> {
    sources
        .into_iter()
        .map(|(slot, lang, check, source)| Pattern {
            slot,
            lang,
            check,
            regex: Regex::new(&source).unwrap_or_else(|err| panic!("memory pattern {source}: {err}")),
        })
        .collect()
}

/// Name, home, work, family, tastes and car, English then Chinese.
fn who_and_where() -> Vec<Source> {
    use Check::{BareName, Nickname, Occupation, OccupationAfter, OccupationBefore, Surname};
    use Lang::{Chinese, English};
    use Slot::{Dislikes, Drives, Employer, Has, Home, Job, Likes, Name, Relative, Workplace};
    let a = EN_ADVERBS;
    let z = ZH_ADVERBS;
    let none = Check::None;
    vec![
        (Name, English, none, r"(?i)\bmy\s+(?:first\s+)?name(?:\s+is|'s)\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\bi(?:'m|\s+am)\s+called\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\b(?:just\s+)?call\s+me\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\bthis\s+is\s+(?P<v>.+?)\s+(?:speaking|here|writing)\b".into()),
        (Name, English, BareName, r"(?i)^(?:(?:hi|hello|hey)\s+)?this\s+is\s+(?P<v>\S+(?:\s+\S+)?)$".into()),
        (Name, English, none, r"(?i)^(?:my\s+)?name's\s+(?P<v>.+)".into()),
        (Name, English, none, r"(?i)\bi\s+(?:now\s+)?go\s+by\s+(?P<v>.+)".into()),
        (Name, English, BareName, r"(?i)^(?:(?:hi|hello|hey|hiya)\s+)?(?P<v>\S+)\s+here$".into()),
        (Name, English, none, r"(?i)\bchanged\s+my\s+name\s+to\s+(?P<v>.+)".into()),
        (Name, English, BareName, format!(r"(?i)^{GREETING}i(?:'m|\s+am)\s+(?P<v>.+)")),
        (Home, English, none, format!(r"(?i)\b(?:i|we)\s+{a}live\s+in\s+(?P<v>.+)")),
        (Home, English, none, format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:living|based)\s+in\s+(?P<v>.+)")),
        (Home, English, none, r"(?i)\bi(?:'m|\s+am)\s+(?:originally\s+)?from\s+(?P<v>.+)".into()),
        // "I'm Yusuf, living in Leicester": the clause after a name.
        (Home, English, none, format!(r"(?i)^{a}(?:living|based)\s+in\s+(?P<v>.+)")),
        // "I'm in Brooklyn", but not "I'm in Paris for the weekend".
        (
            Home,
            English,
            none,
            format!(r"(?i)\b(?:i(?:'m|\s+am)|we(?:'re|\s+are))\s+{a}in\s+(?P<v>\S.*?)(?:(?P<no>\s+(?:{VISITING})\b.*)|$)"),
        ),
        (Home, English, none, r"(?i)\bi\s+(?:originally\s+)?come\s+from\s+(?P<v>.+)".into()),
        (
            Home,
            English,
            none,
            format!(
                r"(?i)(?:\b(?:i|we)(?:'ve|\s+have|'re|\s+are|'m|\s+am)?\s+|^){a}(?:moved|relocated|relocating|moving)\s+(?:from\s+.+?\s+)?(?:in)?to\s+(?:an?\s+(?:new\s+|little\s+|small\s+|tiny\s+|bigger\s+)?(?:flat|house|place|apartment|home|studio|condo|cottage)\s+(?:in|near)\s+)?(?P<v>.+)"
            ),
        ),
        (Home, English, none, r"(?i)\bmy\s+(?:new\s+)?home\s+is\s+(?:in\s+)?(?P<v>.+)".into()),
        // "officially a Glasgow resident now", "I'm a Leeds local".
        (
            Home,
            English,
            none,
            r"(?:^|\b(?i:i'm|i\s+am)\s+)(?i:(?:officially|now|finally|proudly)\s+)?(?i:an?)\s+(?P<v>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2})\s+(?i:resident|local)\b".into(),
        ),
        // "we're renting a place on Hollis Road in Oxford now".
        (
            Home,
            English,
            none,
            format!(
                r"(?i)\b(?:i|we)(?:'re|\s+are|'ve|\s+have|'m|\s+am)?\s+{a}(?:renting|rent|rented|bought|own|got)\s+an?\s+(?:new\s+|little\s+|small\s+|tiny\s+)?(?:flat|house|place|apartment|home|studio|condo|cottage)\s+(?:(?:on|off)\s+.+?\s+)?in\s+(?P<v>.+)"
            ),
        ),
        (Workplace, English, none, format!(r"(?i)\bi\s+{a}work\s+in\s+(?P<v>.+)")),
        (Workplace, English, none, r"(?i)\bmy\s+(?:new\s+)?(?:office|workplace)\s+is\s+(?:in|at)\s+(?P<v>.+)".into()),
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
        // "marine biologist here": an introduction by trade.
        (Job, English, Occupation, format!(r"(?i)^{GREETING}(?P<v>(?:an?\s+)?[\w-]+(?:\s+[\w-]+){{0,3}}?)\s+here$")),
        (Job, English, Occupation, r"(?i)^(?P<v>an?\s+[\w\s-]{2,40}?)\s+(?:in|at|from)\s+[A-Z]".into()),
        (Job, English, Occupation, r"(?i)^(?P<v>an?\s+[\w\s-]{2,40})$".into()),
        (Job, English, none, format!(r"(?i)\b(?:started|starting|began)\s+(?:work(?:ing)?\s+)?{WHEN}as\s+(?P<v>.+)")),
        (
            Employer,
            English,
            none,
            format!(r"(?i)(?:\bi\s+|^){a}(?:started|starting|began)\s+(?:work(?:ing)?\s+)?{WHEN}as\s+.+?\s+(?:at|with|for)\s+(?P<v>.+)"),
        ),
        // "being a sous chef at Dishoom is killing me": the user's own job, said in passing.
        (Job, English, Occupation, r"(?i)^(?:but\s+|and\s+|so\s+)?being\s+(?P<v>an?\s+[\w\s-]{2,40}?)\s+at\s+\S".into()),
        (Employer, English, OccupationBefore, r"(?i)^(?:but\s+|and\s+|so\s+)?being\s+(?P<o>an?\s+[\w\s-]{2,40}?)\s+at\s+(?P<v>.+)".into()),
        // "I work nights at a bakery in Leeds": where the workplace is.
        (
            Workplace,
            English,
            none,
            format!(r"(?i)\bi\s+{a}work\s+(?:{SHIFTS}\s+)?(?:as\s+.+?\s+)?(?:at|for)\s+an?\s+[\w\s-]+?\s+in\s+(?P<v>.+)"),
        ),
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
                r"(?i)(?:\bi(?:'m|\s+am)?\s+|^){a}work(?:ing)?\s+(?:{SHIFTS}\s+)?(?:as\s+.+?\s+)?(?:at|for)\s+(?:an?\s+[\w\s]+?\s+(?:called|named)\s+)?(?P<v>.+)"
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
        // "my dog is a greyhound named Pickle".
        (
            Relative,
            English,
            none,
            format!(
                r"(?i)\b(?:my|our)\s+(?P<k>{EN_RELATIONS})\s+is\s+an?\s+(?:[\w-]+\s+){{0,3}}?(?:named|called)\s+(?P<v>.+)"
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
        (Drives, English, none, format!(r"(?i)\bi\s+{a}(?:drive|ride)\s+(?P<v>(?:a|an|the|my)\s+.+)")),
        // "sold the Outback, now I'm driving a Tacoma".
        (Drives, English, none, r"(?i)\b(?:now\s+i'm|i'm\s+now)\s+driving\s+(?P<v>(?:a|an|my)\s+.+)".into()),
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
        (Home, Chinese, none, format!("我(?:们)?{z}住在(?P<v>.+)")),
        // "我现在住温哥华": 住 without 在, the place ending the clause.
        (Home, Chinese, none, format!("我(?:们)?{z}住(?P<v>[^在的了过着得宿，。,！？]{{2,8}}?)(?:这边|那边|附近|一带)?$")),
        (Home, Chinese, none, "我(?:们)?(?:刚|最近|已经)?(?:来|到)(?P<v>[^，。,]{2,6}?)(?:工作|上班|生活|定居)".into()),
        (Home, Chinese, none, "我(?:现在|目前|一直|也|还|就)?在(?P<v>[^住，。]{1,12}?)(?:工作和|上班和)?(?:住|生活|定居)".into()),
        (Home, Chinese, none, "^(?:现在|目前|一直|也)?住在(?P<v>.+)".into()),
        (Home, Chinese, none, "我来自(?P<v>.+)".into()),
        (Home, Chinese, none, "(?:我(?:们)?|^)(?:全家|一家|家)?(?:已经|刚刚|刚|最近|上个月|去年|上周|前段时间|终于)*(?:从.{1,10}?)?搬(?:到|去)了?(?P<v>.+)".into()),
        (Job, Chinese, none, "(?:我|^)(?:现在|目前)?是一(?:名|位)(?P<v>.+)".into()),
        (Job, Chinese, none, "我(?:现在|目前)?(?:的)?(?:工作|职业)是(?P<v>.+)".into()),
        (Job, Chinese, Occupation, format!("(?:我|^){z}(?:在.{{1,12}}?)?(?:当|做|开)(?P<v>[^，。]{{1,8}}?)(?:工作)?$")),
        (Job, Chinese, Occupation, "我(?:现在|目前)?是(?P<v>.+)".into()),
        // "我转岗了，现在是产品经理": the clause opens with the time word.
        (Job, Chinese, Occupation, "^(?:现在|目前)(?:已经)?是(?P<v>.+)".into()),
        // "辞掉了数学老师的工作，转行做产品经理了".
        (Job, Chinese, none, "(?:我|^)(?:已经|刚)?转行(?:做|当|成)了?(?P<v>[^，。,！!]{2,8}?)了?$".into()),
        (Employer, Chinese, none, "(?:我|^)(?:现在|目前|一直)?在(?P<v>[^，。住]{1,15}?)(?:工作|上班|任职|实习)".into()),
        // "在一家书店当店员", "在腾讯做产品经理": an organisation, then an occupation.
        (
            Employer,
            Chinese,
            OccupationAfter,
            "(?:我|^)(?:现在|目前|一直)?在(?P<v>[^，。,的]{2,12}?)(?:的[^，。]{1,10}?)?(?:做|当|开)(?P<o>[^，。,]{1,6})".into(),
        ),
        (
            Job,
            Chinese,
            Occupation,
            "(?:^[^，。,他她它]{0,4}?|我[^，。,他她它]{0,4}?)在[^，。,]{2,16}?(?:做|当|开)(?P<v>[^，。,]{1,6})".into(),
        ),
        // "我在家开淘宝店", "我开了一家咖啡馆": a shop of the user's own.
        (
            Employer,
            Chinese,
            none,
            format!("(?:我|^){z}(?:在家)?开(?:了)?(?:一家|一个|个|家)?(?P<v>[^，。,]{{1,10}}?(?:店|工作室|餐厅|饭馆|公司|网店))"),
        ),
        (Employer, Chinese, none, "我(?:已经|刚|最近)?(?:加入了|入职了|跳槽到了?|去了)(?P<v>.+)".into()),
        (Workplace, Chinese, none, "我(?:的)?(?:工作地点|办公室|公司)(?:现在)?在(?P<v>.+)".into()),
        (Relative, Chinese, none, format!("我(?:家)?(?:的)?(?P<k>{ZH_RELATIONS})(?:的名字)?(?:叫|名叫|是叫)(?P<v>.+)")),
        (Relative, Chinese, Surname, format!("(?:我|^)(?:的)?(?P<k>{ZH_RELATIONS})(?P<v>[^，。]{{2,6}})")),
        // "我们女儿朵朵今年三岁了", "儿子乐乐上二年级了", "我孙子豆包下周来": a child's pet name.
        (
            Relative,
            Chinese,
            Nickname,
            format!("(?:我|我们|^)(?:家)?(?:的)?(?P<k>{ZH_RELATIONS})(?P<v>\\p{{Han}}{{2}})(?P<after>今年|下周|上周|明天|昨天|今天|最近|已经|才|刚|上|下个?|[，。,]|$)"),
        ),
        (Has, Chinese, none, format!("我(?:们家)?有(?P<v>(?:一|两|二|三|四|五|六|\\d)(?:个|只|条|位)?(?:[^，。]{{0,3}}?)(?:{ZH_KIN}))")),
        (Dislikes, Chinese, none, format!("我{z}(?:不太喜欢|不喜欢|不喜爱|不爱|讨厌|厌恶|受不了)(?P<v>.+)")),
        (Likes, Chinese, none, format!("我{z}(?P<verb>喜欢|喜爱|热爱|爱)(?P<v>.+)")),
        (Likes, Chinese, none, format!("^(?:改|转而|开始)?{z}(?:喜欢|热爱|爱上)了?(?P<v>.+)")),
        (Likes, Chinese, none, "^(?:平时|平常|一般)?(?:最|特别|超级?|很|非常)爱(?P<v>.+)".into()),
        (Likes, Chinese, none, format!("(?:我|^){z}(?:最近|现在)?(?:迷上|爱上|喜欢上)了?(?P<v>.+)")),
        (Drives, Chinese, none, "我(?:现在|目前)?开(?:一辆|的是|的车是|着一辆)(?P<v>.+)".into()),
    ]
}

/// A pet named after a comma ("我养了一只猫，叫咪咪"), and a whole address ("My address is 12
/// Rue Oberkampf, 75011 Paris").
fn sentence_sources() -> Vec<Source> {
    let none = Check::None;
    vec![
        (
            Slot::Address,
            Lang::English,
            none,
            r"(?i)\bmy\s+(?:home\s+|new\s+|postal\s+|mailing\s+|street\s+|current\s+)?address\s+is\s+(?P<v>[^.;!?]+)".into(),
        ),
        (Slot::Address, Lang::English, none, r"(?i)\bi\s+(?:now\s+|currently\s+)?live\s+at\s+(?P<v>\d[^.;!?]+)".into()),
        // "moved into a flat in Hackney, right on Mare Street": the street of the user's home.
        (
            Slot::Address,
            Lang::English,
            none,
            r"(?i:(?:^|\b(?:i|we|my|our)\b)[^.!?]*?\b(?:live|living|moved|flat|house|apartment|place)\b)[^.!?]*?\b(?i:on|off)\s+(?P<v>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,3}\s+(?:Street|St|Road|Rd|Avenue|Ave|Lane|Way|Drive|Boulevard|Square|Terrace|Crescent|Close|Row|Gardens|Hill))\b".into(),
        ),
        // "I'm in Brooklyn, Park Slope specifically", "I live in Portland, Oregon".
        (
            Slot::Home,
            Lang::English,
            none,
            r"(?i:\b(?:i(?:'m|\s+am)|we(?:'re|\s+are)|i\s+live|we\s+live|living|based))\s+in\s+(?P<v>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*,\s+[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)".into(),
        ),
        // "my twins Ottilie and Rex are 9": the clauses would cut the names apart.
        (
            Slot::Relative,
            Lang::English,
            none,
            r"(?i:\bmy\s+(?P<k>twins|kids|children|sons|daughters|boys|girls))\s+(?P<v>[A-Z]\w+(?:,\s+[A-Z]\w+)*,?\s+(?:and|&)\s+[A-Z]\w+)".into(),
        ),
        (
            Slot::Address,
            Lang::Chinese,
            none,
            "我(?:家)?的?(?:家庭|现在的|新的?)?(?:住址|地址)(?:是|在)(?P<v>[^。！？!?]{2,60})".into(),
        ),
        (Slot::Relative, Lang::Chinese, none, format!("有(?:一)?只叫(?P<v>[^，。,的]{{1,4}})的(?P<k>{ZH_PETS})")),
        (
            Slot::Relative,
            Lang::Chinese,
            none,
            format!(
                "(?:我们家|我家|我|^家里|^家)(?:养了|有|养着)(?:一|两)?(?:只|条|匹)(?P<k>{ZH_PETS})[，,]?(?:它|牠)?(?:叫|名叫|名字叫)(?P<v>[^，。！!]+)"
            ),
        ),
    ]
}

/// Quotes and brackets around a value.
pub(super) const QUOTES: &[char] =
    &['"', '\'', '“', '”', '「', '」', '『', '』', '(', ')', '（', '）', ':', '：'];
