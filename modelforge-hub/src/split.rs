//! GGUF files split into shards by `llama-gguf-split`: `name-00001-of-00003.gguf`.
//!
//! llama.cpp loads a split model from its first shard and finds the others by name, so the
//! catalogue shows the shards as one model, reached through the first.

/// The parts of a shard's file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SplitName<'a> {
    /// The name before `-00001-of-00003.gguf`.
    pub(crate) stem: &'a str,
    /// This shard's number, from 1.
    pub(crate) index: u32,
    /// How many shards there are.
    pub(crate) count: u32,
}

/// Parses `stem-NNNNN-of-MMMMM.gguf` (extension case-insensitive).
pub(crate) fn parse_split_name(file_name: &str) -> Option<SplitName<'_>> {
    const EXT: &str = ".gguf";
    const SUFFIX_LEN: usize = "-00001-of-00003".len();
    let cut = file_name.len().checked_sub(EXT.len())?;
    if !file_name.is_char_boundary(cut) || !file_name[cut..].eq_ignore_ascii_case(EXT) {
        return None;
    }
    let base = &file_name[..cut];
    let split_at = base.len().checked_sub(SUFFIX_LEN)?;
    if !base.is_char_boundary(split_at) {
        return None;
    }
    let (stem, suffix) = base.split_at(split_at);
    let digits = |s: &str| (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?;
    let (index, count) = suffix.strip_prefix('-')?.split_once("-of-")?;
    let (index, count) = (digits(index)?, digits(count)?);
    (!stem.is_empty() && (1..=count).contains(&index)).then_some(SplitName { stem, index, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_parse_and_others_do_not() {
        assert_eq!(
            parse_split_name("model-bf16-00002-of-00003.GGUF"),
            Some(SplitName { stem: "model-bf16", index: 2, count: 3 })
        );
        for name in
            ["model.gguf", "model-00001-of-00002.bin", "-00001-of-00002.gguf", "m-00003-of-00002.gguf"]
        {
            assert_eq!(parse_split_name(name), None, "{name}");
        }
        assert_eq!(parse_split_name("m-0001-of-00002.gguf"), None);
        assert_eq!(parse_split_name("é.gguf"), None);
    }
}
