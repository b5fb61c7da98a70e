//! Stop strings over streamed text.
//!
//! A stop string can arrive split over several pieces ("<|e" then "nd|>"), so text that could
//! be the start of a stop string is held back until it is known not to be one. The caller
//! never sees any part of a stop string.

/// What to do after text was added.
#[derive(Debug, PartialEq, Eq)]
pub enum StopCheck {
    /// Emit this text (possibly empty) and go on.
    Continue(String),
    /// Emit this text, then stop: a stop string was found.
    Stop(String),
}

/// Finds stop strings in streamed text.
#[derive(Debug)]
pub struct StopMatcher {
    stops: Vec<String>,
    text: String,
    emitted: usize,
}

impl StopMatcher {
    /// Watches for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            text: String::new(),
            emitted: 0,
        }
    }

    /// Adds a piece of generated text.
    pub fn push(&mut self, piece: &str) -> StopCheck {
        // Only the new text and a stop string's length before it can hold a new match.
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let mut search_from = self.text.len().saturating_sub(longest);
        while !self.text.is_char_boundary(search_from) {
            search_from -= 1;
        }
        self.text.push_str(piece);
        let found = self.stops.iter().filter_map(|s| self.text[search_from..].find(s.as_str())).min();
        if let Some(at) = found {
            let end = search_from + at;
            self.text.truncate(end);
            let out = self.text[self.emitted.min(end)..].to_owned();
            self.emitted = end;
            return StopCheck::Stop(out);
        }
        let held = self.held_back();
        let release = self.text.len() - held;
        let out = self.text[self.emitted..release].to_owned();
        self.emitted = release;
        StopCheck::Continue(out)
    }

    /// Releases text held back as a possible stop-string start, at the end of generation.
    pub fn finish(&mut self) -> String {
        let out = self.text[self.emitted..].to_owned();
        self.emitted = self.text.len();
        out
    }

    /// All text accepted so far, without any stop string.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Length of the longest suffix of the text that is a proper prefix of a stop string.
    fn held_back(&self) -> usize {
        let unemitted = self.text.len() - self.emitted;
        self.stops
            .iter()
            .flat_map(|s| (1..s.len().min(unemitted + 1)).rev().map(move |n| (s, n)))
            .filter(|(s, n)| s.is_char_boundary(*n) && self.text.ends_with(&s[..*n]))
            .map(|(_, n)| n)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (Vec<String>, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = Vec::new();
        for p in pieces {
            match m.push(p) {
                StopCheck::Continue(s) => out.push(s),
                StopCheck::Stop(s) => {
                    out.push(s);
                    return (out, true);
                }
            }
        }
        out.push(m.finish());
        (out, false)
    }

    #[test]
    fn a_stop_string_split_over_pieces_is_never_emitted() {
        let (out, stopped) = run(&["END"], &["Hello E", "N", "D more"]);
        assert!(stopped);
        assert_eq!(out.concat(), "Hello ");
        assert!(out.iter().all(|p| !p.contains('E')));
    }

    #[test]
    fn held_back_text_is_released_when_it_is_not_a_stop() {
        let (out, stopped) = run(&["END"], &["a E", "x"]);
        assert!(!stopped);
        assert_eq!(out, ["a ", "Ex", ""]);
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        let (out, stopped) = run(&["world", "lo w"], &["hello world"]);
        assert!(stopped);
        assert_eq!(out.concat(), "hel");
    }

    #[test]
    fn multibyte_stops_and_text() {
        let (out, stopped) = run(&["。"], &["我叫李娜", "。我住"]);
        assert!(stopped);
        assert_eq!(out.concat(), "我叫李娜");
    }

    #[test]
    fn without_stops_everything_passes_through() {
        let (out, stopped) = run(&[], &["a", "b"]);
        assert!(!stopped);
        assert_eq!(out.concat(), "ab");
    }
}
