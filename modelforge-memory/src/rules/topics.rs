//! Topics, for forgetting by topic: "forget what I said about my job" deletes every memory
//! about the user's work (job title, employer, workplace), and nothing else.
//!
//! A memory's topics come from the memory itself, so the store needs no side table: a sentence
//! the rules wrote names its slot by its frame ("The user works at Siemens." is work), and a
//! sentence from another extractor or typed by the user is read for topic words in English and
//! Chinese ([`topic_words`](super::topic_words)). A memory about a relative ("The user's sister
//! lives in Boston.") is about the family only: forgetting where the user lives keeps it.

use std::sync::LazyLock;

use regex::Regex;

use super::topic_words::{
    TOPIC_NAMES, TOPIC_SUFFIXES, TOPIC_WRAPPERS, about_a_relative, free_text_topics, is_outside_family,
    relation_group,
};
use crate::fact::{Fact, Slot};

/// What a request to forget may name as a whole.
///
/// The family has parts (partner, children, parents, siblings, pets): a memory about a part is
/// also about the family, so "forget my family" takes them all and "forget my kids" only theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topic {
    Name,
    /// Where the user lives: city, address, neighbourhood.
    Home,
    /// Job title, employer, workplace.
    Work,
    Family,
    Partner,
    Children,
    Parents,
    Siblings,
    Pets,
    /// Conditions, allergies, intolerances, pregnancy.
    Health,
    Allergies,
    /// Ways of eating and foods avoided.
    Diet,
    Languages,
    Pronouns,
    Car,
}

impl Topic {
    /// The topics `phrase` names as a whole: one ("my job", "where I live", "家人") or a
    /// Chinese list of them ("我的住址和工作"); none if anything else is said.
    pub(super) fn all_named_by(phrase: &str) -> Vec<Topic> {
        if let Some(topic) = Self::named_by(phrase) {
            return vec![topic];
        }
        let parts: Vec<&str> = ZH_LIST.split(phrase).collect();
        if parts.len() < 2 {
            return Vec::new();
        }
        parts.iter().map(|part| Self::named_by(part)).collect::<Option<Vec<Topic>>>().unwrap_or_default()
    }

    /// The topic `phrase` names as a whole, if any.
    ///
    /// The whole phrase must name the topic, after wrappers ("everything about", "关于") and
    /// tails ("details", "的事") are taken off: "my job" is a topic, "that I like my job" is not.
    fn named_by(phrase: &str) -> Option<Topic> {
        let mut phrase = phrase.trim().trim_end_matches(['.', '。', '!', '！', ',', '，']).to_lowercase();
        loop {
            if let Some(topic) = Self::listed(&phrase) {
                return Some(topic);
            }
            let shorter = TOPIC_WRAPPERS.replace(&phrase, "");
            let shorter = TOPIC_SUFFIXES.replace(shorter.trim(), "").trim().to_owned();
            if shorter == phrase || shorter.is_empty() {
                return None;
            }
            phrase = shorter;
        }
    }

    fn listed(phrase: &str) -> Option<Topic> {
        let named = |names: &str| names.split('|').any(|name| name == phrase);
        TOPIC_NAMES.iter().find(|(_, en, zh)| named(en) || named(zh)).map(|(topic, ..)| *topic)
    }
}

/// The topics of a stored memory, a part of the family always with the family itself.
pub(crate) fn topics_of(content: &str) -> Vec<Topic> {
    match Fact::parse(content) {
        Some(fact) if !matches!(fact.slot, Slot::Remember | Slot::Said) => fact_topics(&fact),
        Some(in_own_words) => text_topics(&in_own_words.value),
        None => text_topics(content),
    }
}

fn fact_topics(fact: &Fact) -> Vec<Topic> {
    use Topic::{Allergies, Car, Diet, Health, Home, Languages, Name, Pronouns, Work};
    match fact.slot {
        Slot::Name => vec![Name],
        Slot::Home | Slot::Address => vec![Home],
        Slot::Job | Slot::Employer | Slot::Workplace => vec![Work],
        Slot::Relative => relation_topics(&fact.key),
        Slot::Has => text_topics(&fact.content()),
        Slot::Allergy => vec![Allergies, Health],
        Slot::Condition | Slot::Medication => vec![Health],
        Slot::Diet | Slot::Avoids => vec![Diet],
        // "vegetarian" is a diet, "diabetic" health, "lactose intolerant" both, "left-handed"
        // neither.
        Slot::Trait => {
            free_text_topics(&fact.value).into_iter().filter(|t| [Health, Diet].contains(t)).collect()
        }
        Slot::Language | Slot::NativeLanguage | Slot::AnswerLanguage => vec![Languages],
        Slot::Pronouns => vec![Pronouns],
        Slot::Drives => vec![Car],
        Slot::Likes | Slot::Dislikes | Slot::Remember | Slot::Instruction | Slot::Said => Vec::new(),
    }
}

/// The topics of a relative's memory by the relation: a part of the family, someone outside
/// it (a friend), or else a pet ("a gecko called Ziggy").
fn relation_topics(key: &str) -> Vec<Topic> {
    match relation_group(key) {
        Some(Topic::Family) => vec![Topic::Family],
        Some(part) => vec![Topic::Family, part],
        None if is_outside_family(key) => Vec::new(),
        None => vec![Topic::Family, Topic::Pets],
    }
}

/// The topics of free text: only the family's if it is about a relative.
fn text_topics(text: &str) -> Vec<Topic> {
    let topics = free_text_topics(text);
    if about_a_relative(text) {
        return topics.into_iter().filter(|t| t.is_family()).collect();
    }
    topics
}

impl Topic {
    /// Topics of which a person has one at a time: a new statement about one makes the old
    /// stale.
    pub(crate) const fn has_one_value(self) -> bool {
        matches!(self, Topic::Name | Topic::Home | Topic::Work | Topic::Pronouns)
    }

    /// The family and its parts.
    pub(crate) const fn is_family(self) -> bool {
        matches!(
            self,
            Topic::Family | Topic::Partner | Topic::Children | Topic::Parents | Topic::Siblings | Topic::Pets
        )
    }
}

/// What joins the topics of a list ("我的住址和工作", "my address or where I live").
static ZH_LIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)和|、|跟|以及|还有|\s+(?:or|and|nor)\s+|\s*,\s*(?:or\s+|and\s+)?")
        .expect("the list pattern compiles")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_a_topic_as_a_whole() {
        for (phrase, topic) in [
            ("my job", Topic::Work),
            ("everything about where I live", Topic::Home),
            ("my family details", Topic::Family),
            ("anything about my health", Topic::Health),
            ("my kids' names", Topic::Children),
            ("all the info about my diet", Topic::Diet),
            ("我住哪儿了", Topic::Home),
            ("我工作的事", Topic::Work),
            ("我的家人了", Topic::Family),
            ("关于我健康状况的信息", Topic::Health),
        ] {
            assert_eq!(Topic::all_named_by(phrase), [topic], "{phrase}");
        }
        assert_eq!(Topic::all_named_by("我的住址和工作"), [Topic::Home, Topic::Work]);
        for phrase in [
            "that I like my job",
            "the locker code 4172",
            "family drama",
            "我喜欢香菜",
            "my name from the letter",
        ] {
            assert_eq!(Topic::all_named_by(phrase), [], "{phrase}");
        }
    }

    #[test]
    fn rule_memories_by_their_frame() {
        assert_eq!(topics_of("The user works at Siemens."), [Topic::Work]);
        assert_eq!(topics_of("用户住在上海。"), [Topic::Home]);
        assert_eq!(topics_of("The user's dog is called Rex."), [Topic::Family, Topic::Pets]);
        assert_eq!(topics_of("用户有两个孩子。"), [Topic::Family, Topic::Children]);
        assert_eq!(topics_of("The user is allergic to peanuts."), [Topic::Allergies, Topic::Health]);
        assert_eq!(topics_of("The user is lactose intolerant."), [Topic::Health, Topic::Diet]);
        assert_eq!(topics_of("The user is left-handed."), []);
        assert_eq!(topics_of("The user likes dogs."), [], "a taste is no pet");
        assert_eq!(topics_of("The user asked me to remember: my work badge is 5531."), [Topic::Work]);
    }

    #[test]
    fn free_text_by_its_words() {
        assert_eq!(topics_of("The user's office is in the Part-Dieu district."), [Topic::Work]);
        assert_eq!(topics_of("The user lives in the Croix-Rousse neighbourhood."), [Topic::Home]);
        assert_eq!(topics_of("The user has a dog named Rex."), [Topic::Family, Topic::Pets]);
        assert_eq!(topics_of("The user's sister lives in Boston."), [Topic::Family, Topic::Siblings]);
        assert_eq!(topics_of("用户家住在浦东的一个小区。"), [Topic::Home]);
        assert_eq!(topics_of("The user is afraid of dogs."), []);
        assert_eq!(topics_of("The user works out every morning."), []);
        assert!(!topics_of("The user has a cat allergy.").contains(&Topic::Pets));
    }
}
