//! The statements the rule extractor writes, and reads back from stored memories.
//!
//! Every statement has a fixed frame around verbatim values, in the language the user spoke
//! ("The user lives in Lyon.", "用户住在上海。"), so the slot of an existing memory can be
//! recognized from its frame alone, without any side table next to the store, and a question
//! in the same language finds it by keyword.

use modelforge_core::MemoryKind;

/// What a statement is about.
///
/// Name, home, job and employer hold one value each. Likes and dislikes are keyed by the thing,
/// so "likes jazz" and "dislikes jazz" compete for the same place. Relatives are keyed by the
/// relation ("wife", "女儿"); "has" and "remember" statements by their whole value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Name,
    Home,
    Job,
    Employer,
    Relative,
    Has,
    Likes,
    Dislikes,
    Remember,
    Allergy,
    Drives,
    Trait,
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
            (Slot::Job, Lang::English) => ("The user works as ", "", "."),
            (Slot::Employer, Lang::English) => ("The user works at ", "", "."),
            (Slot::Relative, Lang::English) => ("The user's ", " is called ", "."),
            (Slot::Has, Lang::English) => ("The user has ", "", "."),
            (Slot::Likes, Lang::English) => ("The user likes ", "", "."),
            (Slot::Dislikes, Lang::English) => ("The user dislikes ", "", "."),
            (Slot::Remember, Lang::English) => ("The user asked me to remember: ", "", "."),
            (Slot::Allergy, Lang::English) => ("The user is allergic to ", "", "."),
            (Slot::Drives, Lang::English) => ("The user drives ", "", "."),
            (Slot::Trait, Lang::English) => ("The user is ", "", "."),
            (Slot::Name, Lang::Chinese) => ("用户的名字是", "", "。"),
            (Slot::Home, Lang::Chinese) => ("用户住在", "", "。"),
            (Slot::Job, Lang::Chinese) => ("用户的工作是", "", "。"),
            (Slot::Employer, Lang::Chinese) => ("用户在", "", "工作。"),
            (Slot::Relative, Lang::Chinese) => ("用户的", "叫", "。"),
            (Slot::Has, Lang::Chinese) => ("用户有", "", "。"),
            (Slot::Likes, Lang::Chinese) => ("用户喜欢", "", "。"),
            (Slot::Dislikes, Lang::Chinese) => ("用户不喜欢", "", "。"),
            (Slot::Remember, Lang::Chinese) => ("用户让我记住：", "", "。"),
            (Slot::Allergy, Lang::Chinese) => ("用户对", "", "过敏。"),
            (Slot::Drives, Lang::Chinese) => ("用户开的车是", "", "。"),
            (Slot::Trait, Lang::Chinese) => ("用户是", "", "。"),
        }
    }

    /// Parse order: more specific frames first ("用户的名字是" before "用户的…叫", "用户不喜欢"
    /// before "用户喜欢" cannot clash since prefixes differ, but relatives must come last).
    const ALL: [Slot; 12] = [
        Slot::Name,
        Slot::Home,
        Slot::Job,
        Slot::Employer,
        Slot::Has,
        Slot::Likes,
        Slot::Dislikes,
        Slot::Remember,
        Slot::Allergy,
        Slot::Drives,
        Slot::Relative,
        // "The user is " and "用户是" are the shortest frames: tried after the others.
        Slot::Trait,
    ];

    pub(crate) const fn kind(self) -> MemoryKind {
        match self {
            Slot::Name | Slot::Home | Slot::Job | Slot::Employer | Slot::Relative | Slot::Has => {
                MemoryKind::Profile
            }
            Slot::Likes | Slot::Dislikes => MemoryKind::Preference,
            Slot::Remember | Slot::Allergy | Slot::Drives | Slot::Trait => MemoryKind::Fact,
        }
    }

    pub(crate) const fn is_taste(self) -> bool {
        matches!(self, Slot::Likes | Slot::Dislikes)
    }

    /// Slots that hold a single value per user.
    const fn is_single(self) -> bool {
        matches!(self, Slot::Name | Slot::Home | Slot::Job | Slot::Employer | Slot::Drives)
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
                let rest = rest.strip_suffix(suffix).unwrap_or(rest).trim();
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
        if self.slot != other.slot {
            return false;
        }
        match self.slot {
            _ if self.slot.is_single() => true,
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
        let home = Fact::new(Slot::Home, "上海");
        assert!(home.same_as(&Fact::new(Slot::Home, "上海").in_lang(Lang::Chinese)));
    }
}
