//! The languages a user speaks: their names in English and Chinese, and the lists that name
//! several ("I speak Portuguese and a bit of French", "我会说英语和一点法语").

use std::sync::LazyLock;

use regex::Regex;

use crate::clauses::list_items;
use crate::fact::{Fact, Lang, Slot};

/// Languages by their English names, as written in memories, split at "|".
pub(super) const LANGUAGES: &str = "English|Spanish|French|German|Italian|Portuguese|Dutch|Swedish|Norwegian|Danish|Finnish|Icelandic|Polish|Czech|Slovak|Slovenian|Hungarian|Romanian|Bulgarian|Serbian|Croatian|Bosnian|Albanian|Greek|Turkish|Russian|Ukrainian|Lithuanian|Latvian|Estonian|Georgian|Armenian|Arabic|Hebrew|Persian|Farsi|Kurdish|Hindi|Urdu|Bengali|Punjabi|Tamil|Telugu|Marathi|Gujarati|Malayalam|Kannada|Nepali|Sinhala|Chinese|Mandarin|Cantonese|Japanese|Korean|Vietnamese|Thai|Khmer|Lao|Burmese|Indonesian|Malay|Tagalog|Filipino|Swahili|Amharic|Yoruba|Igbo|Hausa|Zulu|Catalan|Basque|Welsh";

/// Languages by their Chinese names, split at "|".
pub(super) const ZH_LANGUAGES: &str = "普通话|中文|汉语|国语|粤语|广东话|闽南语|闽南话|上海话|四川话|客家话|潮汕话|东北话|英语|英文|法语|法文|德语|德文|日语|日文|韩语|韩文|西班牙语|葡萄牙语|意大利语|俄语|阿拉伯语|泰语|越南语|印尼语|马来语|印地语|土耳其语|荷兰语|希腊语|藏语|维吾尔语|蒙古语|手语|繁体中文|简体中文|繁体字|简体字|繁体|简体";

/// "I speak Portuguese and a bit of French": one fact per language named.
static SPEAKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:^|[,;]\s*|\b(?:and|but|so|also)\s+)i\s+(?:also\s+|can\s+(?:also\s+)?|do\s+)?speak\s+(?P<list>.+)|(?:^|[,;]\s*|\b(?:and|but|so|also)\s+)i(?:'m|\s+am)\s+(?:also\s+)?(?P<fluent>fluent|bilingual)\s+in\s+(?P<flist>.+)",
    )
    .expect("the speaks pattern compiles")
});

static ZH_SPEAKS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("我(?:也|还)?(?:会|能|可以)(?:说|讲)(?P<list>.+)")
        .expect("the Chinese speaks pattern compiles")
});

static LANGUAGE_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^(?:(?P<level>a\s+(?:bit|little)\s+of|a\s+little|some|basic|conversational|fluent|native|broken|decent|good|rusty|一点点|一点|一些|流利的|简单的)\s*)?(?:(?P<lang>{LANGUAGES})\b|(?P<zh>{ZH_LANGUAGES}))"
    ))
    .expect("the language item pattern compiles")
});

/// The languages a sentence says the user speaks, one fact each, in order.
pub(super) fn spoken_languages(sentence: &str) -> Vec<Fact> {
    if let Some(caps) = SPEAKS.captures(sentence) {
        let fluent = caps.name("fluent").map(|f| f.as_str().to_lowercase());
        let list = caps.name("list").or_else(|| caps.name("flist")).map_or("", |m| m.as_str());
        return language_items(list, fluent.as_deref(), Lang::English);
    }
    match ZH_SPEAKS.captures(sentence) {
        Some(caps) => language_items(&caps["list"], None, Lang::Chinese),
        None => Vec::new(),
    }
}

/// One fact per item of `list` up to the first that is not a language.
fn language_items(list: &str, level: Option<&str>, lang: Lang) -> Vec<Fact> {
    let mut facts = Vec::new();
    for item in list_items(list.trim_end_matches(['.', '。', '!', '！'])) {
        let Some(caps) = LANGUAGE_ITEM.captures(item.trim()) else { break };
        let name =
            caps.name("lang").map_or_else(|| caps["zh"].to_owned(), |m| canonical_language(m.as_str()));
        let value = match caps.name("level").map(|l| l.as_str().to_lowercase()).or(level.map(str::to_owned)) {
            Some(level) if lang == Lang::Chinese => format!("{level}{name}"),
            Some(level) if level == "bilingual" => name,
            Some(level) => format!("{level} {name}"),
            None => name,
        };
        facts.push(Fact::new(Slot::Language, value).in_lang(lang));
    }
    facts
}

/// A language's name as listed ("spanish" gives "Spanish"); Chinese names as they are.
pub(super) fn canonical_language(name: &str) -> String {
    LANGUAGES.split('|').find(|l| l.eq_ignore_ascii_case(name)).unwrap_or(name).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spoken(sentence: &str) -> Vec<String> {
        spoken_languages(sentence).into_iter().map(|f| f.value).collect()
    }

    #[test]
    fn one_fact_per_language_with_its_level() {
        assert_eq!(spoken("I speak Portuguese and a bit of French"), ["Portuguese", "a bit of French"]);
        assert_eq!(spoken("I'm fluent in french and Spanish"), ["fluent French", "fluent Spanish"]);
        assert_eq!(spoken("I speak English at work, Spanish at home"), ["English", "Spanish"]);
        assert_eq!(spoken("我会说英语和一点法语"), ["英语", "一点法语"]);
    }

    #[test]
    fn nothing_without_a_language() {
        for sentence in
            ["I speak to my mother every day", "I don't speak Spanish", "I speak my mind", "我会说服他的"]
        {
            assert!(spoken(sentence).is_empty(), "{sentence}");
        }
    }
}
