//! Keyword terms for matching questions to memories where the embedder is weak: Chinese text
//! (all-MiniLM-L6-v2 is an English model), names, codes and numbers.
//!
//! English words are lowercased and lightly stemmed ("lives", "living" and "live" all give
//! "liv"), common words are dropped; Chinese runs give overlapping character pairs, the usual
//! way to index Chinese without a word segmenter ("住在上海" gives 住在, 在上, 上海).

/// Words too common to say anything about which memory is meant.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "i", "me", "my", "mine", "you", "your", "we", "our", "us", "he", "she", "it", "its",
    "they", "them", "their", "is", "am", "are", "was", "were", "be", "been", "do", "does", "did", "doing",
    "have", "has", "had", "what", "whats", "where", "when", "who", "whom", "which", "why", "how", "to", "of",
    "in", "on", "at", "for", "from", "with", "by", "about", "and", "or", "but", "not", "no", "so", "that",
    "this", "these", "those", "there", "here", "now", "again", "please", "can", "could", "would", "will",
    "should", "tell", "know", "remember", "user", "users", "asked", "any", "some", "just", "also", "still",
    "s", "t", "ve", "ll", "re", "d", "m", "yes", "ok",
];

/// Chinese pairs too common to be useful.
const ZH_STOP_PAIRS: &[&str] = &["用户", "一下", "记得", "知道", "告诉", "多少", "是多", "是什"];
/// Pairs holding one of these are pronouns or question words ("我住", "在哪", "什么").
const ZH_STOP_CHARS: &[char] = &['我', '你', '哪', '吗', '么', '呢', '谁', '吧', '啊', '几', '什'];
/// Characters too common to count on their own (they still count inside pairs).
const ZH_STOP_SINGLES: &[char] =
    &['用', '户', '的', '是', '了', '在', '有', '和', '也', '很', '都', '就', '不', '一', '个'];

/// Words of a question that point at what a memory says in other words: the frames the rule
/// extractor writes ("works as", "用户的名字是") and the usual ways of asking about them.
const QUERY_SYNONYMS: &[(&[&str], &[&str])] = &[
    (
        &[
            "job",
            "occupation",
            "profession",
            "living",
            "career",
            "employer",
            "company",
            "office",
            "rol",
            "titl",
            "position",
        ],
        &["work"],
    ),
    (&["call", "called"], &["nam"]),
    (&["home", "city", "town", "based", "hometown"], &["liv"]),
    (
        &[
            "hobby", "hobbi", "sport", "exercis", "favorit", "favourit", "lov", "enjoy", "prefer", "fan",
            "fun",
        ],
        &["lik"],
    ),
    (&["hat", "stand", "avoid"], &["dislik"]),
    (&["allergy", "allergi"], &["allergic"]),
    (&["car", "vehicl", "ride"], &["driv"]),
    (&["diet", "dietary", "eat", "meat", "food"], &["vegetarian", "vegan", "allergic"]),
    (&["kid", "children", "child"], &["son", "daughter", "kid", "children"]),
    (&["pet"], &["dog", "cat"]),
    (&["spous", "partner", "marri"], &["wif", "husband", "partner"]),
    (&["上班", "职业", "干什", "做什", "公司", "单位", "职位", "岗位"], &["工作"]),
    (&["称呼", "叫"], &["名字"]),
    (&["家在", "住哪", "哪里人", "住"], &["住在"]),
    (&["爱好", "兴趣", "爱", "偏好", "口味"], &["喜欢"]),
    (&["讨厌", "不喜", "厌"], &["不喜"]),
    (&["开车", "车"], &["开", "车"]),
    (&["孩子", "小孩"], &["儿子", "女儿", "孩子"]),
    (&["for a living", "do for work", "line of work"], &["work"]),
    (&["which hand", "哪只手", "左手", "右手"], &["handed", "撇子"]),
];

/// The terms of a search query: [`terms`], plus the words memories use for what it asks
/// about.
pub(crate) fn query_terms(text: &str) -> Vec<String> {
    let mut out = terms(text);
    let found: Vec<String> = out.clone();
    let lower = text.to_lowercase();
    for (asked, meant) in QUERY_SYNONYMS {
        let hit = found.iter().any(|t| asked.contains(&t.as_str()))
            || asked.iter().any(|a| (a.contains(' ') || a.chars().any(is_han)) && lower.contains(a));
        if hit {
            for term in *meant {
                if !out.iter().any(|t| t == term) {
                    out.push((*term).to_owned());
                }
            }
        }
    }
    out
}

/// The distinct terms of `text`, in order of first appearance.
pub(crate) fn terms(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let push = |term: String, out: &mut Vec<String>| {
        if !out.contains(&term) {
            out.push(term);
        }
    };
    let mut word = String::new();
    let mut han: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            let lower = word.to_lowercase();
            if !STOPWORDS.contains(&lower.as_str())
                && (lower.chars().count() >= 2 || lower.chars().all(|c| c.is_ascii_digit()))
            {
                push(stem(&lower), out);
            }
            word.clear();
        }
    };
    let flush_han = |han: &mut Vec<char>, out: &mut Vec<String>| {
        match han.len() {
            0 => {}
            _ => {
                for pair in han.windows(2) {
                    let pair: String = pair.iter().collect();
                    if !ZH_STOP_PAIRS.contains(&pair.as_str()) && !pair.contains(ZH_STOP_CHARS) {
                        push(pair, out);
                    }
                }
                // Single characters too, for words of one character ("车", "猫") and for pairs
                // split differently in the question and the memory.
                for &c in han.iter() {
                    if !ZH_STOP_CHARS.contains(&c) && !ZH_STOP_SINGLES.contains(&c) {
                        push(c.to_string(), out);
                    }
                }
            }
        }
        han.clear();
    };
    for c in text.chars() {
        if is_han(c) {
            flush_word(&mut word, &mut out);
            han.push(c);
        } else if c.is_alphanumeric() {
            flush_han(&mut han, &mut out);
            word.push(c);
        } else if c == '\'' || c == '’' {
            // "user's" is "user" + "s": the possessive ends the word.
            flush_word(&mut word, &mut out);
        } else {
            flush_word(&mut word, &mut out);
            flush_han(&mut han, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_han(&mut han, &mut out);
    out
}

/// A light suffix stripper: enough to meet "lives" with "live" and "working" with "works".
fn stem(word: &str) -> String {
    let mut w = word;
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(rest) = w.strip_suffix(suffix)
            && rest.chars().count() >= 3
        {
            w = rest;
            break;
        }
    }
    if let Some(rest) = w.strip_suffix('e')
        && rest.chars().count() >= 3
    {
        w = rest;
    }
    w.to_owned()
}

pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2EBEF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_terms_are_stemmed_without_common_words() {
        assert_eq!(terms("Where do I live now?"), ["liv"]);
        assert_eq!(terms("The user lives in New York."), ["liv", "new", "york"]);
        assert_eq!(terms("The user's name is Lina."), ["nam", "lina"]);
        assert_eq!(terms("working, works, worked"), ["work"]);
    }

    #[test]
    fn chinese_terms_are_character_pairs() {
        assert_eq!(terms("我住在哪里？"), ["住在", "住", "里"]);
        assert_eq!(terms("用户住在上海。"), ["户住", "住在", "在上", "上海", "住", "上", "海"]);
        assert_eq!(
            terms("车牌号是沪A12345"),
            ["车牌", "牌号", "号是", "是沪", "车", "牌", "号", "沪", "a12345"]
        );
    }

    #[test]
    fn questions_are_widened_to_the_words_memories_use() {
        assert!(query_terms("What's my job?").contains(&"work".to_owned()));
        assert!(query_terms("你应该怎么称呼我？").contains(&"名字".to_owned()));
        assert_eq!(query_terms("Lyon"), ["lyon"]);
    }
}
