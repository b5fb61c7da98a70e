//! The statements the rule extractor writes, and reads back from stored memories.
//!
//! Every statement has a fixed English frame around a verbatim value ("The user lives in
//! 上海."), so the slot of an existing memory can be recognized from its prefix alone, without
//! keeping any side table next to the store.

use modelforge_core::MemoryKind;

/// What a statement is about. Name and home hold one value each; likes and dislikes are keyed
/// by the thing liked, so "likes jazz" and "dislikes jazz" compete for the same place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Name,
    Home,
    Likes,
    Dislikes,
}

impl Slot {
    const ALL: [Slot; 4] = [Slot::Name, Slot::Home, Slot::Likes, Slot::Dislikes];

    const fn prefix(self) -> &'static str {
        match self {
            Slot::Name => "The user's name is ",
            Slot::Home => "The user lives in ",
            Slot::Likes => "The user likes ",
            Slot::Dislikes => "The user dislikes ",
        }
    }

    pub(crate) const fn kind(self) -> MemoryKind {
        match self {
            Slot::Name | Slot::Home => MemoryKind::Profile,
            Slot::Likes | Slot::Dislikes => MemoryKind::Preference,
        }
    }

    pub(crate) const fn is_taste(self) -> bool {
        matches!(self, Slot::Likes | Slot::Dislikes)
    }
}

/// One normalized statement: a slot and the value the user gave, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fact {
    pub(crate) slot: Slot,
    pub(crate) value: String,
}

impl Fact {
    pub(crate) fn new(slot: Slot, value: impl Into<String>) -> Self {
        Self { slot, value: value.into() }
    }

    /// The memory content, e.g. "The user's name is Lina."
    pub(crate) fn content(&self) -> String {
        format!("{}{}.", self.slot.prefix(), self.value)
    }

    /// Reads a memory content written by [`Fact::content`]; `None` for anything else.
    pub(crate) fn parse(content: &str) -> Option<Fact> {
        let content = content.trim().replace('’', "'");
        Slot::ALL.into_iter().find_map(|slot| {
            let rest = content.strip_prefix(slot.prefix())?;
            let value = rest.strip_suffix('.').unwrap_or(rest).trim();
            (!value.is_empty()).then(|| Fact::new(slot, value))
        })
    }

    /// Whether `other` speaks about the same thing, so only one of the two can stand.
    pub(crate) fn same_subject(&self, other: &Fact) -> bool {
        match (self.slot.is_taste(), other.slot.is_taste()) {
            (true, true) => eq_ignore_case(&self.value, &other.value),
            (false, false) => self.slot == other.slot,
            _ => false,
        }
    }

    /// Whether `other` says exactly the same (ignoring letter case).
    pub(crate) fn same_as(&self, other: &Fact) -> bool {
        self.slot == other.slot && eq_ignore_case(&self.value, &other.value)
    }
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
            Fact::new(Slot::Likes, "jazz"),
            Fact::new(Slot::Dislikes, "olives"),
        ] {
            assert_eq!(Fact::parse(&fact.content()), Some(fact));
        }
    }

    #[test]
    fn unknown_contents_are_not_parsed() {
        assert_eq!(Fact::parse("The user has a cat."), None);
        assert_eq!(Fact::parse("The user likes ."), None);
    }

    #[test]
    fn a_like_and_a_dislike_of_the_same_thing_share_a_subject() {
        let likes = Fact::new(Slot::Likes, "Jazz");
        let dislikes = Fact::new(Slot::Dislikes, "jazz");
        assert!(likes.same_subject(&dislikes));
        assert!(!likes.same_as(&dislikes));
        assert!(!likes.same_subject(&Fact::new(Slot::Likes, "olives")));
        assert!(Fact::new(Slot::Home, "Lyon").same_subject(&Fact::new(Slot::Home, "Paris")));
        assert!(!Fact::new(Slot::Home, "Lyon").same_subject(&Fact::new(Slot::Name, "Lyon")));
    }
}
