//! Text derived from messages: automatic session titles and list previews.

/// How long an automatic title may be, in characters (before the ellipsis).
pub(crate) const AUTO_TITLE_CHARS: usize = 60;
/// How long a last-message preview may be, in characters (before the ellipsis).
pub(crate) const PREVIEW_CHARS: usize = 120;

/// A title from the first non-blank line of a message, cut at a word boundary if it is long.
pub(crate) fn auto_title(message: &str) -> String {
    let line = message.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("");
    shorten(line, AUTO_TITLE_CHARS)
}

/// A one-line preview of a message.
pub(crate) fn preview(message: &str) -> String {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    shorten(&one_line, PREVIEW_CHARS)
}

/// `text` if it fits in `max` characters, else its first `max` characters cut back to the
/// last space (when there is one in the second half) with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    let at_word = match cut.rfind(' ') {
        Some(space) if cut[..space].chars().count() >= max / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}…", at_word.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_line_and_cut_at_words() {
        assert_eq!(auto_title("\n  Plan a trip to Lyon \nmore"), "Plan a trip to Lyon");
        let long = "word ".repeat(30);
        let title = auto_title(&long);
        assert!(title.ends_with("word…"), "{title}");
        assert!(title.chars().count() <= AUTO_TITLE_CHARS + 1);
        let unbroken = "x".repeat(100);
        assert_eq!(auto_title(&unbroken).chars().count(), AUTO_TITLE_CHARS + 1);
        assert_eq!(auto_title("é".repeat(61).as_str()).chars().count(), AUTO_TITLE_CHARS + 1);
    }

    #[test]
    fn previews_are_one_line() {
        assert_eq!(preview("a\n\nb   c"), "a b c");
        assert!(preview(&"long ".repeat(100)).chars().count() <= PREVIEW_CHARS + 1);
    }
}
