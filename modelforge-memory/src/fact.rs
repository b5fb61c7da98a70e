//! The statements the rule extractor writes, and reads back from stored memories.
//!
//! Every statement has a fixed frame around verbatim values, in the language the user spoke
//! ("The user lives in Lyon.", "用户住在上海。"), so the slot of an existing memory can be
//! recognized from its frame alone, without any side table next to the store, and a question
//! in the same language finds it by keyword.

use modelforge_core::MemoryKind;

/// What a statement is about.
///
/// Name, home, address, job, employer, workplace, car, first language, answer language and
/// pronouns hold one value each. Likes and dislikes are keyed by the thing, so "likes jazz" and
/// "dislikes jazz" compete for the same place. Relatives are keyed by the relation ("wife",
/// "女儿"); spoken languages by the language, whatever the level ("a bit of French", "fluent
/// French"); everything else by its whole value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Name,
    Home,
    Address,
    Job,
    Employer,
    Workplace,
    Relative,
    Has,
    Likes,
    Dislikes,
    Remember,
    Allergy,
    /// A diagnosed health condition ("type 2 diabetes", "糖尿病").
    Condition,
    /// A way of eating ("halal", "gluten-free", "吃素").
    Diet,
    /// Something the user does not eat ("pork", "海鲜").
    Avoids,
    Drives,
    /// An adjective for who the user is ("vegetarian", "pregnant", "left-handed", "左撇子").
    Trait,
    /// A language the user speaks, with its level if given ("a bit of French").
    Language,
    NativeLanguage,
    /// The language the user wants answers in.
    AnswerLanguage,
    Pronouns,
    /// A medicine the user takes ("warfarin", "胰岛素").
    Medication,
    /// A standing request about how to answer ("use metric units").
    Instruction,
    /// A statement about the user on a tracked topic that no pattern could read, kept in the
    /// user's own words ("we finally got the keys to the flat in Leith").
    Said,
}

/// The language of a statement's frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lang {
    English,
    Chinese,
}

impl Slot {
    /// The frame around the key (if any) and value: prefix, text between key and value, suffix.
    const fn frame(self, lang: Lang) -> (&'static str, &'static str, &'static str) {
        match (self, lang) {
            (Slot::Name, Lang::English) => ("The user's name is ", "", "."),
            (Slot::Home, Lang::English) => ("The user lives in ", "", "."),
            (Slot::Address, Lang::English) => ("The user's address is ", "", "."),
            (Slot::Job, Lang::English) => ("The user works as ", "", "."),
            (Slot::Employer, Lang::English) => ("The user works at ", "", "."),
            (Slot::Workplace, Lang::English) => ("The user works in ", "", "."),
            (Slot::Relative, Lang::English) => ("The user's ", " is called ", "."),
            (Slot::Has, Lang::English) => ("The user has ", "", "."),
            (Slot::Likes, Lang::English) => ("The user likes ", "", "."),
            (Slot::Dislikes, Lang::English) => ("The user dislikes ", "", "."),
            (Slot::Remember, Lang::English) => ("The user asked me to remember: ", "", "."),
            (Slot::Allergy, Lang::English) => ("The user is allergic to ", "", "."),
            (Slot::Condition, Lang::English) => ("The user has been diagnosed with ", "", "."),
            (Slot::Diet, Lang::English) => ("The user's diet is ", "", "."),
            (Slot::Avoids, Lang::English) => ("The user does not eat ", "", "."),
            (Slot::Drives, Lang::English) => ("The user drives ", "", "."),
            (Slot::Trait, Lang::English) => ("The user is ", "", "."),
            (Slot::Language, Lang::English) => ("The user speaks ", "", "."),
            (Slot::NativeLanguage, Lang::English) => ("The user's first language is ", "", "."),
            (Slot::AnswerLanguage, Lang::English) => ("The user prefers answers in ", "", "."),
            (Slot::Pronouns, Lang::English) => ("The user's pronouns are ", "", "."),
            (Slot::Medication, Lang::English) => ("The user takes the medication ", "", "."),
            (Slot::Instruction, Lang::English) => ("The user wants me to ", "", "."),
            (Slot::Said, Lang::English) => ("The user said: \"", "", "\"."),
            (Slot::Name, Lang::Chinese) => ("用户的名字是", "", "。"),
            (Slot::Home, Lang::Chinese) => ("用户住在", "", "。"),
            (Slot::Address, Lang::Chinese) => ("用户的地址是", "", "。"),
            (Slot::Job, Lang::Chinese) => ("用户的工作是", "", "。"),
            (Slot::Employer, Lang::Chinese) => ("用户在", "", "工作。"),
            (Slot::Workplace, Lang::Chinese) => ("用户的工作地点是", "", "。"),
            (Slot::Relative, Lang::Chinese) => ("用户的", "叫", "。"),
            (Slot::Has, Lang::Chinese) => ("用户有", "", "。"),
            (Slot::Likes, Lang::Chinese) => ("用户喜欢", "", "。"),
            (Slot::Dislikes, Lang::Chinese) => ("用户不喜欢", "", "。"),
            (Slot::Remember, Lang::Chinese) => ("用户让我记住：", "", "。"),
            (Slot::Allergy, Lang::Chinese) => ("用户对", "", "过敏。"),
            (Slot::Condition, Lang::Chinese) => ("用户患有", "", "。"),
            (Slot::Diet, Lang::Chinese) => ("用户的饮食要求是", "", "。"),
            (Slot::Avoids, Lang::Chinese) => ("用户不吃", "", "。"),
            (Slot::Drives, Lang::Chinese) => ("用户开的车是", "", "。"),
            (Slot::Trait, Lang::Chinese) => ("用户是", "", "。"),
            (Slot::Language, Lang::Chinese) => ("用户会说", "", "。"),
            (Slot::NativeLanguage, Lang::Chinese) => ("用户的母语是", "", "。"),
            (Slot::AnswerLanguage, Lang::Chinese) => ("用户希望用", "", "回答。"),
            (Slot::Pronouns, Lang::Chinese) => ("用户的代词是", "", "。"),
            (Slot::Medication, Lang::Chinese) => ("用户在服用药物", "", "。"),
            (Slot::Instruction, Lang::Chinese) => ("用户希望我", "", "。"),
            (Slot::Said, Lang::Chinese) => ("用户说过：“", "", "”。"),
        }
    }

    /// Parse order: a frame that starts another is tried first ("The user has been diagnosed
    /// with " before "The user has "); relatives ("The user's … is called") come late, and
    /// "The user is " and "用户是", the shortest frames, last.
    const ALL: [Slot; 24] = [
        Slot::Said,
        Slot::Name,
        Slot::Home,
        Slot::Address,
        Slot::Job,
        Slot::Employer,
        Slot::Workplace,
        Slot::Condition,
        Slot::Has,
        Slot::Likes,
        Slot::Dislikes,
        Slot::Avoids,
        Slot::Remember,
        Slot::Allergy,
        Slot::Drives,
        Slot::Diet,
        Slot::Language,
        Slot::NativeLanguage,
        Slot::AnswerLanguage,
        Slot::Pronouns,
        Slot::Medication,
        Slot::Instruction,
        Slot::Relative,
        Slot::Trait,
    ];

    /// Who the user is, what keeps them safe and how to address them are profile memories, which
    /// every session sees; tastes are preferences; the rest are facts found when relevant.
    pub(crate) const fn kind(self) -> MemoryKind {
        match self {
            Slot::Likes | Slot::Dislikes => MemoryKind::Preference,
            Slot::Remember | Slot::Drives => MemoryKind::Fact,
            Slot::Name
            | Slot::Home
            | Slot::Address
            | Slot::Job
            | Slot::Employer
            | Slot::Workplace
            | Slot::Relative
            | Slot::Has
            | Slot::Allergy
            | Slot::Condition
            | Slot::Diet
            | Slot::Avoids
            | Slot::Trait
            | Slot::Language
            | Slot::NativeLanguage
            | Slot::AnswerLanguage
            | Slot::Pronouns
            | Slot::Medication
            | Slot::Instruction
            | Slot::Said => MemoryKind::Profile,
        }
    }

    pub(crate) const fn is_taste(self) -> bool {
        matches!(self, Slot::Likes | Slot::Dislikes)
    }

    /// Slots that hold a single value per user.
    pub(crate) const fn is_single(self) -> bool {
        matches!(
            self,
            Slot::Name
                | Slot::Home
                | Slot::Address
                | Slot::Job
                | Slot::Employer
                | Slot::Workplace
                | Slot::Drives
                | Slot::NativeLanguage
                | Slot::AnswerLanguage
                | Slot::Pronouns
        )
    }
}

/// One normalized statement: a slot, a key for relatives, and the value the user gave,
/// kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fact {
    pub(crate) slot: Slot,
    /// The relation for [`Slot::Relative`] ("wife", "女儿"); empty otherwise.
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) lang: Lang,
}

impl Fact {
    pub(crate) fn new(slot: Slot, value: impl Into<String>) -> Self {
        Self { slot, key: String::new(), value: value.into(), lang: Lang::English }
    }

    pub(crate) fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    pub(crate) fn in_lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }

    /// The memory content, e.g. "The user's name is Lina." or "用户住在上海。"
    pub(crate) fn content(&self) -> String {
        let (prefix, middle, suffix) = self.slot.frame(self.lang);
        if self.slot == Slot::Relative {
            format!("{prefix}{}{middle}{}{suffix}", self.key, self.value)
        } else {
            format!("{prefix}{}{suffix}", self.value)
        }
    }

    /// Reads a memory content written by [`Fact::content`]; `None` for anything else.
    pub(crate) fn parse(content: &str) -> Option<Fact> {
        let content = content.trim().replace('’', "'");
        for lang in [Lang::English, Lang::Chinese] {
            for slot in Slot::ALL {
                let (prefix, middle, suffix) = slot.frame(lang);
                let Some(rest) = content.strip_prefix(prefix) else { continue };
                let Some(rest) = strip_frame_suffix(rest, suffix) else { continue };
                let (key, value) = if middle.is_empty() {
                    ("", rest)
                } else {
                    let Some((key, value)) = rest.split_once(middle) else { continue };
                    (key.trim(), value.trim())
                };
                let key_ok = middle.is_empty() || (!key.is_empty() && key.chars().count() <= 20);
                if key_ok && !value.is_empty() {
                    return Some(Fact { slot, key: key.to_owned(), value: value.to_owned(), lang });
                }
            }
        }
        None
    }

    /// Whether `other` speaks about the same thing, so only one of the two can stand.
    pub(crate) fn same_subject(&self, other: &Fact) -> bool {
        if self.slot.is_taste() && other.slot.is_taste() {
            return eq_ignore_case(&self.value, &other.value);
        }
        // One way of eating replaces another ("I've gone vegan" after "I'm pescatarian", "改成
        // 素食了" after 生酮); restrictions such as halal or gluten-free stand beside them.
        if is_eating_pattern(self) && is_eating_pattern(other) {
            return true;
        }
        if self.slot != other.slot {
            return false;
        }
        match self.slot {
            _ if self.slot.is_single() => true,
            Slot::Language => eq_ignore_case(language_of(&self.value), language_of(&other.value)),
            Slot::Relative => relation(&self.key) == relation(&other.key),
            _ => eq_ignore_case(&self.value, &other.value),
        }
    }

    /// Whether `other` says exactly the same (ignoring letter case and language).
    pub(crate) fn same_as(&self, other: &Fact) -> bool {
        self.slot == other.slot
            && relation(&self.key) == relation(&other.key)
            && eq_ignore_case(&self.value, &other.value)
    }
}

/// Ways of eating a person follows one at a time, in English (lowercase) and Chinese.
const EATING_PATTERNS: [&str; 24] = [
    "vegan",
    "vegetarian",
    "pescatarian",
    "plant-based",
    "plant based",
    "keto",
    "paleo",
    "mediterranean",
    "low-carb",
    "low carb",
    "carnivore",
    "whole30",
    "atkins",
    "素食",
    "吃素",
    "素食者",
    "素食主义者",
    "全素",
    "纯素",
    "生酮",
    "生酮饮食",
    "地中海饮食",
    "低碳饮食",
    "低碳水饮食",
];

/// Whether `fact` is a way of eating (a diet or a trait such as "vegan").
pub(crate) fn is_eating_pattern(fact: &Fact) -> bool {
    matches!(fact.slot, Slot::Diet | Slot::Trait)
        && EATING_PATTERNS.contains(&fact.value.to_lowercase().as_str())
}

/// `rest` without the frame's `suffix`. A missing final full stop is forgiven ("The user lives
/// in Lyon"); missing words are not, since they tell frames apart ("用户对花生过敏" is an
/// allergy, "用户对乳糖不耐受" is not).
fn strip_frame_suffix<'a>(rest: &'a str, suffix: &str) -> Option<&'a str> {
    let words = suffix.trim_end_matches(['.', '。']);
    let rest = rest
        .strip_suffix(suffix)
        .or_else(|| rest.strip_suffix(['.', '。']).unwrap_or(rest).strip_suffix(words))?;
    Some(rest.trim())
}

/// Levels said before a language ("a bit of French", "一点法语").
const LANGUAGE_LEVELS: [&str; 14] = [
    "a bit of ",
    "a little ",
    "some ",
    "basic ",
    "conversational ",
    "fluent ",
    "native ",
    "broken ",
    "一点点",
    "一点",
    "一些",
    "流利的",
    "简单的",
    "少量",
];

/// The language a spoken-language value names, without its level.
fn language_of(value: &str) -> &str {
    let mut language = value.trim();
    while let Some(rest) = LANGUAGE_LEVELS.iter().find_map(|level| strip_prefix_ignore_case(language, level))
    {
        language = rest.trim_start();
    }
    language
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

/// One word per relation, so "mom" and "mother", "老婆" and "妻子" are the same person.
fn relation(key: &str) -> String {
    let key = key.to_lowercase();
    let same = match key.as_str() {
        "mom" | "mum" | "mother" | "妈妈" | "母亲" => "mother",
        "dad" | "father" | "爸爸" | "父亲" => "father",
        "wife" | "妻子" | "老婆" | "太太" => "wife",
        "husband" | "丈夫" | "老公" | "先生" => "husband",
        "son" | "儿子" => "son",
        "daughter" | "女儿" => "daughter",
        "dog" | "狗" | "小狗" => "dog",
        "cat" | "猫" | "小猫" => "cat",
        "girlfriend" | "女朋友" => "girlfriend",
        "boyfriend" | "男朋友" => "boyfriend",
        _ => return key,
    };
    same.to_owned()
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_round_trip_through_parse() {
        for fact in [
            Fact::new(Slot::Name, "李娜"),
            Fact::new(Slot::Home, "New York"),
            Fact::new(Slot::Job, "a nurse"),
            Fact::new(Slot::Employer, "Siemens"),
            Fact::new(Slot::Relative, "Ana").with_key("wife"),
            Fact::new(Slot::Has, "two daughters"),
            Fact::new(Slot::Likes, "jazz"),
            Fact::new(Slot::Dislikes, "olives"),
            Fact::new(Slot::Remember, "my passport expires in March"),
            Fact::new(Slot::Name, "李娜").in_lang(Lang::Chinese),
            Fact::new(Slot::Home, "上海").in_lang(Lang::Chinese),
            Fact::new(Slot::Job, "护士").in_lang(Lang::Chinese),
            Fact::new(Slot::Employer, "华为").in_lang(Lang::Chinese),
            Fact::new(Slot::Relative, "小雨").with_key("女儿").in_lang(Lang::Chinese),
            Fact::new(Slot::Has, "两个孩子").in_lang(Lang::Chinese),
            Fact::new(Slot::Likes, "爬山").in_lang(Lang::Chinese),
            Fact::new(Slot::Dislikes, "香菜").in_lang(Lang::Chinese),
            Fact::new(Slot::Remember, "我的车牌号是沪A12345").in_lang(Lang::Chinese),
            Fact::new(Slot::Allergy, "peanuts"),
            Fact::new(Slot::Drives, "a blue Volvo"),
            Fact::new(Slot::Trait, "vegetarian"),
            Fact::new(Slot::Allergy, "花生").in_lang(Lang::Chinese),
            Fact::new(Slot::Drives, "白色的比亚迪").in_lang(Lang::Chinese),
            Fact::new(Slot::Trait, "左撇子").in_lang(Lang::Chinese),
            Fact::new(Slot::Address, "12 Rue Oberkampf"),
            Fact::new(Slot::Workplace, "Canary Wharf"),
            Fact::new(Slot::Condition, "type 2 diabetes"),
            Fact::new(Slot::Diet, "halal"),
            Fact::new(Slot::Avoids, "pork"),
            Fact::new(Slot::Language, "a bit of French"),
            Fact::new(Slot::NativeLanguage, "Tamil"),
            Fact::new(Slot::AnswerLanguage, "Spanish"),
            Fact::new(Slot::Pronouns, "they/them"),
            Fact::new(Slot::Address, "朝阳区建国路88号").in_lang(Lang::Chinese),
            Fact::new(Slot::Workplace, "陆家嘴").in_lang(Lang::Chinese),
            Fact::new(Slot::Condition, "糖尿病").in_lang(Lang::Chinese),
            Fact::new(Slot::Diet, "吃素").in_lang(Lang::Chinese),
            Fact::new(Slot::Avoids, "猪肉").in_lang(Lang::Chinese),
            Fact::new(Slot::Language, "粤语").in_lang(Lang::Chinese),
            Fact::new(Slot::NativeLanguage, "粤语").in_lang(Lang::Chinese),
            Fact::new(Slot::AnswerLanguage, "中文").in_lang(Lang::Chinese),
            Fact::new(Slot::Pronouns, "他").in_lang(Lang::Chinese),
            Fact::new(Slot::Medication, "warfarin"),
            Fact::new(Slot::Medication, "胰岛素").in_lang(Lang::Chinese),
            Fact::new(Slot::Instruction, "use metric units"),
            Fact::new(Slot::Instruction, "用繁体字回答").in_lang(Lang::Chinese),
        ] {
            assert_eq!(Fact::parse(&fact.content()), Some(fact.clone()), "{}", fact.content());
        }
    }

    #[test]
    fn unknown_contents_are_not_parsed() {
        assert_eq!(Fact::parse("The user has a cat."), Some(Fact::new(Slot::Has, "a cat")));
        assert_eq!(Fact::parse("The user owns a cat."), None);
        assert_eq!(Fact::parse("The user likes ."), None);
        assert_eq!(Fact::parse("用户的体重很重要。"), None);
        assert_eq!(Fact::parse("The user lives in Lyon"), Some(Fact::new(Slot::Home, "Lyon")));
        let allergy = Fact::new(Slot::Allergy, "花生").in_lang(Lang::Chinese);
        assert_eq!(Fact::parse("用户对花生过敏"), Some(allergy));
        assert_eq!(Fact::parse("用户对乳糖不耐受。"), None, "the words of a suffix must be there");
    }

    #[test]
    fn subjects_decide_what_competes() {
        let likes = Fact::new(Slot::Likes, "Jazz");
        let dislikes = Fact::new(Slot::Dislikes, "jazz");
        assert!(likes.same_subject(&dislikes));
        assert!(!likes.same_as(&dislikes));
        assert!(!likes.same_subject(&Fact::new(Slot::Likes, "olives")));
        assert!(Fact::new(Slot::Home, "Lyon").same_subject(&Fact::new(Slot::Home, "Paris")));
        assert!(!Fact::new(Slot::Home, "Lyon").same_subject(&Fact::new(Slot::Name, "Lyon")));
        let wife = Fact::new(Slot::Relative, "Ana").with_key("wife");
        assert!(
            wife.same_subject(&Fact::new(Slot::Relative, "安娜").with_key("妻子").in_lang(Lang::Chinese))
        );
        assert!(!wife.same_subject(&Fact::new(Slot::Relative, "Ana").with_key("daughter")));
        assert!(!Fact::new(Slot::Has, "a dog").same_subject(&Fact::new(Slot::Has, "a cat")));
        let french = Fact::new(Slot::Language, "a bit of French");
        assert!(french.same_subject(&Fact::new(Slot::Language, "fluent French")));
        assert!(!french.same_subject(&Fact::new(Slot::Language, "Portuguese")));
        let home = Fact::new(Slot::Home, "上海");
        assert!(home.same_as(&Fact::new(Slot::Home, "上海").in_lang(Lang::Chinese)));
        let vegan = Fact::new(Slot::Trait, "vegan");
        assert!(vegan.same_subject(&Fact::new(Slot::Trait, "pescatarian")));
        assert!(vegan.same_subject(&Fact::new(Slot::Diet, "keto")));
        assert!(!vegan.same_subject(&Fact::new(Slot::Diet, "halal")));
        assert!(!vegan.same_subject(&Fact::new(Slot::Trait, "left-handed")));
        assert!(Fact::new(Slot::Diet, "素食").same_subject(&Fact::new(Slot::Diet, "生酮饮食")));
    }
}
