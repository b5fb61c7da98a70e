//! Cutting a message into clauses that each state at most one thing.
//!
//! "My name is Lina and I live in Lyon." holds two facts; the patterns of the rule extractor
//! match one clause at a time, so values end where the clause ends instead of running on.

use std::sync::LazyLock;

use regex::Regex;

/// Commas, semicolons and conjunctions that join two statements.
static CLAUSE_BREAK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[,，;；:：]|\s+[—–-]+\s+|—|–|\s+(?i:and|but|so|because|although|though|while|whereas)\s+|但是|不过|可是|而且|并且|所以|因为",
    )
    .expect("the clause pattern compiles")
});

/// What joins the items of a list: "peanuts, shellfish and penicillin", "英语和一点法语".
static LIST_SEPARATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\s*,\s*(?:and\s+)?|\s+and\s+|\s+as\s+well\s+as\s+|\s*&\s*|\s+plus\s+|和|跟|、|，|以及|还有|也会说|还会说",
    )
    .expect("the list pattern compiles")
});

/// Words after which a period does not end a sentence ("Dr. Smith").
const ABBREVIATIONS: [&str; 10] = ["Mr", "Mrs", "Ms", "Dr", "St", "Mt", "Prof", "Jr", "Sr", "Ft"];

/// The clauses of `text`'s statements, in order, trimmed and non-empty. Questions are skipped
/// whole: "Do I like jazz?" states nothing about the user.
/// The clauses of `text` that state something: all clauses of statements, and of a question
/// all but the last ("I live in Chicago, any tips?").
#[cfg(test)]
pub(crate) fn statement_clauses(text: &str) -> Vec<String> {
    all_sentences(text)
        .into_iter()
        .flat_map(|(sentence, is_question)| {
            let mut parts = clauses(&sentence);
            if is_question {
                parts.pop();
            }
            parts
        })
        .collect()
}

/// Contractions typed without their apostrophe ("im", "ive", "dont"), which the patterns
/// would otherwise miss in quickly typed lowercase chat.
static BARE_CONTRACTIONS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?P<w>i|don|can|didn|doesn|isn|wasn|haven)(?P<t>m|ve|t)\b")
        .expect("the contraction pattern compiles")
});

/// `text` with curly apostrophes made straight and bare contractions given their apostrophe.
pub(crate) fn normalize(text: &str) -> String {
    let text = text.replace(['’', '‘'], "'");
    BARE_CONTRACTIONS
        .replace_all(&text, |caps: &regex::Captures| {
            let (w, t) = (&caps["w"], &caps["t"]);
            let fits = w.eq_ignore_ascii_case("i") != t.eq_ignore_ascii_case("t");
            if fits { format!("{w}'{t}") } else { caps[0].to_owned() }
        })
        .into_owned()
}

/// Every sentence of `text`, trimmed and non-empty, normalized by [`normalize`], and whether it
/// is a question.
pub(crate) fn all_sentences(text: &str) -> Vec<(String, bool)> {
    let text = normalize(text);
    sentences(&text)
        .into_iter()
        .map(|sentence| (sentence.text.trim().to_owned(), sentence.is_question))
        .filter(|(sentence, _)| !sentence.is_empty())
        .collect()
}

/// The clauses of one sentence, trimmed and non-empty.
pub(crate) fn clauses(sentence: &str) -> Vec<String> {
    CLAUSE_BREAK
        .split(sentence)
        .map(str::trim)
        .filter(|clause| !clause.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The items of a list, trimmed, in order; what follows the list comes out as its last items
/// ("cats, so no pets" gives "cats", "so no pets"), for the caller to stop at.
pub(crate) fn list_items(list: &str) -> Vec<&str> {
    LIST_SEPARATOR.split(list).map(str::trim).filter(|item| !item.is_empty()).collect()
}

struct Sentence<'a> {
    text: &'a str,
    is_question: bool,
}

fn sentences(text: &str) -> Vec<Sentence<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = match c {
            '!' | '?' | '。' | '！' | '？' | '\n' | '…' => true,
            '.' => is_full_stop(&text[..i], chars.peek().map(|&(_, next)| next)),
            _ => false,
        };
        if ends {
            out.push(Sentence { text: &text[start..i], is_question: matches!(c, '?' | '？') });
            start = i + c.len_utf8();
        }
    }
    out.push(Sentence { text: &text[start..], is_question: false });
    out
}

/// A period ends a sentence unless it sits inside a token ("3.5", "example.com") or closes an
/// abbreviation.
fn is_full_stop(before: &str, next: Option<char>) -> bool {
    if next.is_some_and(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let last_word = before.rsplit(|c: char| !c.is_alphabetic()).next().unwrap_or("");
    !ABBREVIATIONS.contains(&last_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_sentence_ends_commas_and_conjunctions() {
        assert_eq!(
            statement_clauses("My name is Lina and I live in Lyon."),
            ["My name is Lina", "I live in Lyon"]
        );
        assert_eq!(statement_clauses("我叫李娜，我住在上海。"), ["我叫李娜", "我住在上海"]);
        assert_eq!(
            statement_clauses("Hi! I like jazz, but I hate olives"),
            ["Hi", "I like jazz", "I hate olives"]
        );
    }

    #[test]
    fn keeps_decimals_and_abbreviations_inside_a_clause() {
        assert_eq!(
            statement_clauses("Call me Dr. Smith. I paid 3.5 euros"),
            ["Call me Dr. Smith", "I paid 3.5 euros"]
        );
    }

    #[test]
    fn skips_questions() {
        assert_eq!(statement_clauses("Do I like jazz? I like blues."), ["I like blues"]);
        assert_eq!(statement_clauses("I live in Chicago, any tips?"), ["I live in Chicago"]);
        assert!(statement_clauses("我叫什么名字？").is_empty());
    }

    #[test]
    fn normalizes_curly_apostrophes() {
        assert_eq!(statement_clauses("I’m called Lina"), ["I'm called Lina"]);
    }

    #[test]
    fn gives_bare_contractions_their_apostrophe() {
        assert_eq!(
            normalize("im allergic, ive tried, i dont know, cant stop"),
            "i'm allergic, i've tried, i don't know, can't stop"
        );
        assert_eq!(normalize("Im fine, IT team, ivy, dont"), "I'm fine, IT team, ivy, don't");
        assert_eq!(normalize("the canton, a donut, him"), "the canton, a donut, him");
    }
}
