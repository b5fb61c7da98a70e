//! Incremental UTF-8 decoding of token bytes.
//!
//! A token is a run of bytes, not characters: an emoji or a CJK character is often split over
//! two or three tokens. Pieces are only released once their characters are complete, so a
//! callback never sees half a character.

/// Buffers token bytes and releases complete UTF-8 text.
#[derive(Debug, Default)]
pub struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bytes` and returns the text that is now complete. Bytes that can never be valid
    /// UTF-8 become U+FFFD; an incomplete sequence at the end waits for the next call.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).expect("validated prefix"));
                    match e.error_len() {
                        // Incomplete at the end: keep it for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream. Bytes still pending are the start of a character that generation
    /// stopped in the middle of (`max_tokens` reached): they are dropped rather than shown as
    /// a broken character. Returns how many bytes were dropped.
    pub fn finish(&mut self) -> usize {
        let dropped = self.pending.len();
        self.pending.clear();
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_over_tokens_is_released_whole() {
        let bytes = "é上😀".as_bytes();
        let mut d = Utf8Decoder::new();
        let mut pieces = Vec::new();
        for b in bytes {
            pieces.push(d.push(std::slice::from_ref(b)));
        }
        assert!(pieces.iter().all(|p| p.is_empty() || p.chars().count() == 1));
        assert_eq!(pieces.concat(), "é上😀");
        assert_eq!(d.finish(), 0);
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut d = Utf8Decoder::new();
        assert_eq!(d.push(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(d.push(b"\xe4\xb8"), "");
        assert_eq!(d.finish(), 2, "a character cut off at the end is dropped, not shown broken");
    }
}
