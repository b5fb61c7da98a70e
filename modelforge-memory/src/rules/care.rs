//! Patterns for what keeps the user safe and how to talk to them: allergies, diet, health
//! conditions, pregnancy, the languages they speak and want answers in, and their pronouns.
//!
//! These become profile memories, shown in every session, so precision matters more than
//! anywhere else: only the user's own, certain statements count. "My friend is allergic to
//! cats", "is it safe to eat peanuts if you're allergic?" and "I think I might have asthma" say
//! nothing about the user.

use std::sync::LazyLock;

use regex::Regex;

use super::english::taste_phrase;
use super::languages::{LANGUAGES, ZH_LANGUAGES};
use super::patterns::{Check, EN_ADVERBS, Source, ZH_ADVERBS};
use crate::clauses::list_items;
use crate::fact::{Fact, Lang, Slot};

/// English adjectives for who the user is ("I'm vegetarian", "I'm pregnant").
const EN_TRAITS: &str = "vegetarian|vegan|pescatarian|left-handed|right-handed|diabetic|lactose intolerant|gluten intolerant|colou?r-?blind|celiac|coeliac|teetotal|asthmatic|epileptic|pregnant|deaf|hard of hearing|blind|visually impaired|autistic|dyslexic|immunocompromised|an?aemic|anemic";
/// Pronoun sets a person states ("they/them", "she/her/hers").
const EN_PRONOUNS: &str =
    r"(?:they|she|he|xe|ze|it)/(?:them|her|him|hers|his|theirs|they|she|he|xem|zir|hir|it)(?:/[a-z]+)?";
const ZH_TRAITS: &str = "左撇子|素食者|素食主义者|糖尿病人|糖尿病患者|色盲|孕妇|哮喘病人";

/// Conditions a bare "I have X" must name; a diagnosis ("I was diagnosed with X") may name any.
const EN_CONDITIONS: &str = r"(?:type\s+(?:1|2|one|two|i|ii)\s+|gestational\s+)?diabetes|asthma|epilepsy|an?\s+(?:heart|kidney|lung|liver|thyroid|autoimmune|chronic|medical)\s+(?:condition|disease|problem)|heart\s+disease|kidney\s+disease|(?:high|low)\s+blood\s+pressure|hypertension|high\s+cholesterol|c(?:o)?eliac(?:\s+disease)?|crohn's(?:\s+disease)?|ulcerative\s+colitis|ibs|(?:rheumatoid\s+)?arthritis|(?:chronic\s+)?migraines|chronic\s+pain|fibromyalgia|lupus|multiple\s+sclerosis|parkinson's|copd|cystic\s+fibrosis|sickle\s+cell(?:\s+disease|\s+anaemia|\s+anemia)?|hiv|hepatitis\s+[abc]|(?:breast|prostate|lung|skin|bowel)?\s*cancer|leukaemia|leukemia|adhd|autism|dyslexia|depression|anxiety|bipolar(?:\s+disorder)?|ptsd|ocd|an?\s+eating\s+disorder|an?aemia|anemia|gout|psoriasis|eczema|sleep\s+apnoea|sleep\s+apnea|hypothyroidism|hyperthyroidism|a\s+pacemaker|tinnitus|glaucoma|osteoporosis|endometriosis|pcos|long\s+covid|dementia";
const ZH_CONDITIONS: &str = "(?:1型|2型|一型|二型|I型|II型)?糖尿病|哮喘|癫痫|心脏病|冠心病|高血压|低血压|高血脂|高血糖|低血糖|贫血|抑郁症|焦虑症|双相情感障碍|乳糜泻|痛风|类风湿关节炎|关节炎|偏头痛|甲亢|甲减|慢性肾病|肾病|胃溃疡|胃病|乙肝|丙肝|癌症|白血病|帕金森|自闭症|多动症|湿疹|银屑病|红斑狼疮|心脏问题";
/// Foods a colloquial "我花生过敏" may name.
const ZH_ALLERGENS: &str = "花生|坚果|海鲜|虾|螃蟹|蟹|贝类|鱼|芒果|牛奶|鸡蛋|小麦|大豆|芝麻|青霉素|头孢|花粉|猫毛|狗毛|尘螨|酒精|桃子|菠萝";

/// Medicines whose taking matters to advice: blood thinners, insulin, antidepressants.
const EN_MEDICATIONS: &str = r"warfarin|coumadin|heparin|apixaban|eliquis|rivaroxaban|xarelto|clopidogrel|blood\s+thinners|metformin|insulin|lithium|levothyroxine|sertraline|fluoxetine|prozac|citalopram|antidepressants|ssris|methotrexate|prednisone|prednisolone|steroids|immunosuppressants|beta[-\s]blockers|statins?|atorvastatin|simvastatin|topiramate|sumatriptan|propranolol|amlodipine|lisinopril|ramipril|omeprazole|gabapentin|pregabalin|an\s+epipen|epipens?|an\s+inhaler|inhalers?|ventolin|salbutamol|methylphenidate|chemo(?:therapy)?|ritalin|adderall|hrt|the\s+pill";
const ZH_MEDICATIONS: &str =
    "华法林|阿司匹林|二甲双胍|胰岛素|降压药|降糖药|抗凝药|抗抑郁药|激素|免疫抑制剂|化疗|他汀|优甲乐";
/// Words before a condition that say how it is ("photosensitive epilepsy", "severe asthma").
const EN_CONDITION_ADJECTIVE: &str = r"(?:(?:severe|mild|chronic|bad|serious|photosensitive|exercise[-\s]induced|allergic|seasonal|early[-\s]onset|stage\s+\w+)\s+)?";

/// Openings allowed before a statement anchored at the start of its clause.
const LEAD: &str = r"(?:(?:well|yeah|yes|oh|also|actually|btw|fyi|and|plus|sadly|unfortunately|honestly|so|tbh|fwiw|ok|okay|the\s+thing\s+is|thing\s+is|just\s+so\s+you\s+know|for\s+the\s+record|to\s+be\s+honest)[,:\s]+)*";
/// "this time", "just for this": a one-off request, not a preference.
const ONE_OFF: &str = r"(?P<no>.*\b(?:this\s+(?:time|once|one|question|answer|message|reply)|for\s+this|just\s+(?:this|now|here|for\s+now)|for\s+now)\b)?";

/// Words that make a statement uncertain or hypothetical.
static HEDGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:if|whether|might|maybe|perhaps|probably|possibly|think|wonder(?:ing)?|worried|not\s+sure|suspect|could\s+be|in\s+case)\b|如果|可能|也许|好像|是不是|担心|怀疑|万一",
    )
    .expect("the hedge pattern compiles")
});

/// Whether `clause` hedges ("I think I might have asthma"), which a health statement may not.
pub(super) fn is_hedged(clause: &str) -> bool {
    HEDGE.is_match(clause)
}

/// Slots whose statements must be certain.
pub(super) const fn needs_certainty(slot: Slot) -> bool {
    matches!(
        slot,
        Slot::Allergy | Slot::Condition | Slot::Trait | Slot::Diet | Slot::Avoids | Slot::Medication
    )
}

/// The clause patterns of this module, English then Chinese, most specific first within a slot.
pub(super) fn clause_sources() -> Vec<Source> {
    let mut sources = english_sources();
    sources.extend(chinese_sources());
    sources
}

fn english_sources() -> Vec<Source> {
    use Lang::English;
    use Slot::{
        Allergy, AnswerLanguage, Avoids, Condition, Diet, Instruction, Medication, NativeLanguage, Pronouns,
        Trait,
    };
    let a = EN_ADVERBS;
    let none = Check::None;
    vec![
        (
            Allergy,
            English,
            none,
            format!(r"(?i)\bi(?:'m|\s+am)\s+{a}(?:severely\s+|very\s+|deathly\s+|highly\s+)?allergic\s+to\s+(?P<v>.+)"),
        ),
        (
            Allergy,
            English,
            none,
            r"(?i)\bi\s+(?:have|'ve\s+got|have\s+got)\s+an?\s+(?:severe\s+|mild\s+|serious\s+|bad\s+|life-threatening\s+)?(?P<v>\w+(?:\s+\w+)?)\s+allergy\b".into(),
        ),
        (
            Allergy,
            English,
            none,
            r"(?i)\bi\s+(?:have|'ve\s+got|have\s+got)\s+(?:an?\s+)?(?:severe\s+|serious\s+)?allerg(?:y|ies)\s+to\s+(?P<v>.+)".into(),
        ),
        (
            Allergy,
            English,
            none,
            format!(r"(?i)^{LEAD}(?:severely\s+|very\s+|deathly\s+|highly\s+|also\s+)?allergic\s+to\s+(?P<v>.+)"),
        ),
        (
            Condition,
            English,
            none,
            format!(
                r"(?i)^{LEAD}i(?:\s+have|'ve\s+got|\s+have\s+got|'ve\s+had|\s+have\s+had|\s+suffer\s+from|\s+live\s+with|(?:'m|\s+am)\s+living\s+with|\s+get)\s+(?P<v>{EN_CONDITION_ADJECTIVE}(?:{EN_CONDITIONS}))\b(?P<no>\s+(?:about|over|before|around|when|whenever))?"
            ),
        ),
        (
            Condition,
            English,
            none,
            r"(?i)\bi\s+(?:was|'ve\s+been|have\s+been|got|just\s+got|recently\s+got)\s+(?:recently\s+)?diagnosed\s+with\s+(?P<v>.+)".into(),
        ),
        // "my asthma is playing up": a condition of the user's own.
        (
            Condition,
            English,
            none,
            format!(
                r"(?i)\bmy\s+(?P<v>{EN_CONDITIONS})\s+(?:is\s+|has\s+been\s+|keeps\s+)?(?:flar|play|act)(?:ing|ed|es|s)?\b"
            ),
        ),
        (
            Trait,
            English,
            none,
            format!(
                r"(?i)\bi(?:'m|\s+am|'ve\s+been|\s+have\s+been)\s+{a}(?:an?\s+)?(?:(?:\d+|\w+)\s+(?:weeks?|months?)\s+)?(?P<v>{EN_TRAITS})\b"
            ),
        ),
        (
            Medication,
            English,
            none,
            format!(
                r"(?i)(?:\bi(?:'m|\s+am)\s+{a}(?:on|taking)|\bi\s+{a}take|^{LEAD}on)\s+(?:daily\s+|regular\s+)?(?P<v>{EN_MEDICATIONS})\b"
            ),
        ),
        // "please use metric units with me": how to answer from now on.
        (
            Instruction,
            English,
            none,
            format!(
                r"(?i)^{LEAD}(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?(?:always\s+)?(?P<v>(?:use|give\s+me|write|keep|stick\s+to|spell)\s+[^,;!?]{{2,40}}?)\s+(?:with\s+me|for\s+me|from\s+now\s+on|going\s+forward|in\s+(?:the\s+)?future|every\s+time|always)\b{ONE_OFF}"
            ),
        ),
        (
            Diet,
            English,
            none,
            format!(r"(?i)\bi\s+{a}(?:only\s+)?(?:eat|keep|follow|observe|buy)\s+(?:only\s+)?(?P<v>halal|kosher)\b"),
        ),
        (
            Diet,
            English,
            none,
            format!(
                r"(?i)\bi(?:'m|\s+am)\s+{a}(?:on|following|doing|sticking\s+to)\s+an?\s+(?P<v>[\w-]+(?:\s+[\w-]+)?)\s+diet\b"
            ),
        ),
        (
            Diet,
            English,
            none,
            format!(r"(?i)\bi\s+{a}(?:follow|eat|keep\s+to|stick\s+to)\s+an?\s+(?P<v>[\w-]+(?:\s+[\w-]+)?)\s+diet\b"),
        ),
        (
            Diet,
            English,
            none,
            format!(
                r"(?i)\bi(?:'m|\s+am|'ve\s+been|\s+have\s+been)\s+{a}(?:strictly\s+)?(?P<v>gluten[-\s]free|dairy[-\s]free|sugar[-\s]free|nut[-\s]free|keto|paleo|halal|kosher|low[-\s]carb|plant[-\s]based)\b"
            ),
        ),
        (
            Avoids,
            English,
            none,
            format!(r"(?i)^{LEAD}i\s+{a}(?:don't|do\s+not|never|can't|cannot|can\s+not|won't)\s+eat\s+(?P<v>.+)"),
        ),
        (
            NativeLanguage,
            English,
            none,
            format!(r"(?i)\bmy\s+(?:first|native|mother)\s+(?:language|tongue)\s+is\s+(?P<v>{LANGUAGES})\b"),
        ),
        (
            NativeLanguage,
            English,
            none,
            format!(r"(?i)(?:^|\b)(?P<v>{LANGUAGES})\s+is\s+my\s+(?:first|native|mother)\s+(?:language|tongue)"),
        ),
        (
            NativeLanguage,
            English,
            none,
            format!(r"(?i)\bi(?:'m|\s+am)\s+an?\s+native\s+(?P<v>{LANGUAGES})\s+speaker\b"),
        ),
        (
            NativeLanguage,
            English,
            none,
            format!(r"(?i)\bi\s+grew\s+up\s+speaking\s+(?P<v>{LANGUAGES})\b"),
        ),
        (
            AnswerLanguage,
            English,
            none,
            format!(
                r"(?i)^(?:(?:please|pls|and|also|from\s+now\s+on|going\s+forward|in\s+(?:the\s+)?future)[,\s]+)*(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?(?:always\s+|only\s+)?(?:answer|reply|respond|write|talk|speak|chat)(?:\s+(?:to|with)\s+me)?\s+(?:only\s+)?in\s+(?P<v>{LANGUAGES})\b{ONE_OFF}"
            ),
        ),
        (
            AnswerLanguage,
            English,
            none,
            format!(
                r"(?i)\bi(?:'d|\s+would)?\s+(?:prefer|like|want)\s+(?:your\s+|the\s+)?(?:answers|replies|responses)\s+(?:to\s+be\s+)?in\s+(?P<v>{LANGUAGES})\b{ONE_OFF}"
            ),
        ),
        (
            AnswerLanguage,
            English,
            none,
            format!(
                r"(?i)\bi\s+prefer\s+(?:to\s+)?(?:talk|chat|speak|communicate|write)(?:ing)?\s+in\s+(?P<v>{LANGUAGES})\b{ONE_OFF}"
            ),
        ),
        (
            Pronouns,
            English,
            none,
            r"(?i)\bmy\s+pronouns\s+are\s+(?P<v>[a-z]+(?:\s*/\s*[a-z]+){1,2})".into(),
        ),
        (Pronouns, English, none, r"(?i)\bi\s+use\s+(?P<v>[a-z]+/[a-z]+(?:/[a-z]+)?)\s+pronouns\b".into()),
        (
            Pronouns,
            English,
            none,
            r"(?i)\bi\s+go\s+by\s+(?P<v>(?:they|she|he|xe|ze|it)/[a-z]+(?:/[a-z]+)?)".into(),
        ),
        // "i use they/them btw", "I'm Marisol (she/her)".
        (Pronouns, English, none, format!(r"(?i)\bi\s+{a}use\s+(?P<v>{EN_PRONOUNS})\b")),
        (Pronouns, English, none, format!(r"(?i)\bi(?:'m|\s+am)\s+[^()]{{1,30}}\((?P<v>{EN_PRONOUNS})\)")),
        // "went fully vegan last month", "I've become vegetarian": a diet taken up.
        (
            Trait,
            English,
            none,
            format!(
                r"(?i)(?:^{LEAD}|\b(?:i|we)(?:'ve|\s+have)?\s+{a})(?:went|gone|turned|became|become|switched\s+to\s+being)\s+(?:fully\s+|full\s+|completely\s+|totally\s+|100%\s+)?(?P<v>vegan|vegetarian|pescatarian|teetotal)\b"
            ),
        ),
        // "been doing keto since january", "I've been on paleo for a year".
        (
            Diet,
            English,
            none,
            format!(
                r"(?i)(?:^{LEAD}|\bi(?:'ve|\s+have)\s+{a})been\s+(?:doing|on|following|eating)\s+(?:the\s+|a\s+)?(?P<v>keto|paleo|whole30|low[-\s]carb|carnivore|mediterranean|plant[-\s]based|gluten[-\s]free|dairy[-\s]free)\b"
            ),
        ),
        // "the doc put me on a mediterranean diet and a statin".
        (Diet, English, none, r"(?i)\bput\s+me\s+on\s+an?\s+(?P<v>[\w-]+(?:\s+[\w-]+)?)\s+diet\b".into()),
        (
            Medication,
            English,
            none,
            format!(r"(?i)\bput\s+me\s+on\s+(?:[^,;]*?\s+and\s+)?(?:an?\s+)?(?P<v>{EN_MEDICATIONS})\b"),
        ),
        // "just started topiramate for them".
        (
            Medication,
            English,
            none,
            format!(
                r"(?i)(?:^{LEAD}|\bi(?:'ve|\s+have)?\s+{a})(?:just\s+)?(?:started|began|begun)\s+(?:taking\s+|on\s+)?(?P<v>{EN_MEDICATIONS})\b"
            ),
        ),
        // "can we switch to spanish from now on?"
        (
            AnswerLanguage,
            English,
            none,
            format!(
                r"(?i)\b(?:can|could|shall)\s+we\s+(?:please\s+)?(?:switch|change|move)\s+(?:over\s+)?to\s+(?P<v>{LANGUAGES})\b{ONE_OFF}"
            ),
        ),
    ]
}

fn chinese_sources() -> Vec<Source> {
    use Lang::Chinese;
    use Slot::{
        Allergy, AnswerLanguage, Avoids, Condition, Diet, Medication, NativeLanguage, Pronouns, Trait,
    };
    let z = ZH_ADVERBS;
    let none = Check::None;
    vec![
        (
            Allergy,
            Chinese,
            none,
            format!("(?:我|^){z}对(?P<v>[^，。]{{1,10}}?)过敏(?P<no>的人|的话|的朋友)?"),
        ),
        (Allergy, Chinese, none, format!("(?:我|^){z}(?P<v>{ZH_ALLERGENS})过敏(?P<no>的人|的话|的朋友)?")),
        (
            Condition,
            Chinese,
            none,
            format!(
                "我{z}(?:有|患有|得了|患了|确诊了?|被确诊(?:为|患有|了)?|被诊断(?:出|为)?(?:患有|有)?)(?P<v>{ZH_CONDITIONS})(?P<no>的人|的朋友|的话)?"
            ),
        ),
        // "最近痛风又犯了": a flare of the user's own condition.
        (
            Condition,
            Chinese,
            none,
            format!(
                "(?:我|^)(?:最近|这几天|这两天)?{z}(?:的)?(?P<v>{ZH_CONDITIONS})(?:又|老是|总是|经常)?(?:犯了|发作|复发|犯)(?P<no>的人|的朋友|的话)?"
            ),
        ),
        (
            Medication,
            Chinese,
            none,
            format!(
                "(?:我|^)(?:{z}|在|每天|长期|一直|要|需要|得)*(?:吃|服用|打|用)(?:着)?(?P<v>{ZH_MEDICATIONS})"
            ),
        ),
        (Trait, Chinese, none, format!("我(?:是|是一个|是一名|是个)(?P<v>{ZH_TRAITS})")),
        (
            Trait,
            Chinese,
            none,
            format!(
                "我{z}(?:已经)?(?P<v>怀孕)(?:了|啦|\\d+周|[一二三四五六七八九十几]+个?(?:周|月))?(?P<no>的时候|时|期间|的话)?"
            ),
        ),
        (Trait, Chinese, none, format!("我{z}(?:有)?(?P<v>(?:乳糖|麸质|果糖|酒精)不耐受?)")),
        (Diet, Chinese, none, format!("(?:我|^){z}(?P<v>(?:只)?吃(?:清真|素|斋)(?:食品|食物|餐)?)")),
        // "我现在改成素食了": a diet taken up.
        (
            Diet,
            Chinese,
            none,
            format!(
                "(?:我|^){z}(?:已经|最近|刚刚|刚|现在)*(?:改成|改吃|改为|变成|开始)了?(?P<v>素食|吃素|全素|纯素|清真|生酮饮食|生酮)"
            ),
        ),
        (
            Diet,
            Chinese,
            none,
            format!("我{z}(?:在)?(?:吃|坚持|采用|遵循)?(?P<v>(?:生酮|无麸质|低碳水?|低糖|低盐|地中海)饮食)"),
        ),
        (
            Avoids,
            Chinese,
            none,
            format!("我{z}(?:不吃|不能吃|不可以吃|吃不了|从不吃|从来不吃|不碰)(?P<v>.+)"),
        ),
        (
            NativeLanguage,
            Chinese,
            none,
            format!("我(?:的)?(?:母语|第一语言)是(?P<v>{ZH_LANGUAGES}|{LANGUAGES})"),
        ),
        (
            AnswerLanguage,
            Chinese,
            none,
            format!(
                "(?:^|请|希望你|我希望你|麻烦你?|你)(?:以后|今后|之后|从现在开始|从现在起)?(?:都|就|请|一直)*用(?P<v>{ZH_LANGUAGES}|{LANGUAGES})(?:来|跟我|和我|给我)?(?:回答|回复|答复|回我|说话|聊天|交流|沟通|对话)(?P<no>.*(?:这个|这次|这一次|这道|这段|这句|一下))?"
            ),
        ),
        (Pronouns, Chinese, none, "我的(?:人称)?代词是(?P<v>[^，。]{1,10})".into()),
        // "以后回答我请用繁体字": the answer first, then the language.
        (
            AnswerLanguage,
            Chinese,
            none,
            format!(
                "^(?:以后|今后|之后|从现在开始|从现在起)?(?:你)?(?:回答|回复)我?(?:的时候)?(?:请|都|就|要)*用(?P<v>{ZH_LANGUAGES}|{LANGUAGES})(?P<no>.*(?:这个|这次|这一次|这道|这段|这句|一下))?"
            ),
        ),
    ]
}

/// The sentence patterns of this module: "I can't eat shellfish, allergic".
pub(super) fn sentence_sources() -> Vec<Source> {
    vec![(
        Slot::Allergy,
        Lang::English,
        Check::None,
        r"(?i)\bi\s+(?:can't|cannot|can\s+not|mustn't|must\s+not|don't|do\s+not)\s+(?:eat|have|touch|drink|take)\s+(?P<v>[^,;.!?—–-]+?)\s*(?:[,;—–-]+\s*|\s+)(?:(?:because|since|as|cause|'cause|cos)\s+)?(?:i'm\s+|i\s+am\s+|i've\s+|i\s+have\s+)?(?:(?:always|been|always\s+been)\s+)?(?:severely\s+|very\s+|deathly\s+|highly\s+)?allergic\b(?P<no>\s+to\b)?".into(),
    )]
}

/// "I have asthma and epilepsy", "我有糖尿病和高血压": the whole list, which the clauses cut.
static HAS_CONDITIONS: LazyLock<Regex> = LazyLock::new(|| {
    let source = format!(
        r"(?i)(?:^|[,;]\s*){LEAD}i\s+(?:have|'ve\s+got|have\s+got|suffer\s+from|live\s+with)\s+(?P<list>[^.;!?]+)|我(?:有|患有|得了|患了)(?P<zh>[^。！？!?]+)"
    );
    Regex::new(&source).unwrap_or_else(|err| panic!("condition list pattern {source}: {err}"))
});

static ONE_CONDITION: LazyLock<Regex> = LazyLock::new(|| {
    let source = format!(r"(?i)^(?:{EN_CONDITIONS})$|^(?:{ZH_CONDITIONS})$");
    Regex::new(&source).unwrap_or_else(|err| panic!("condition pattern {source}: {err}"))
});

/// Every condition of a list after "I have", one fact each, up to the first item that is none.
pub(super) fn condition_list(sentence: &str) -> Vec<Fact> {
    let Some(caps) = HAS_CONDITIONS.captures(sentence) else { return Vec::new() };
    if is_hedged(sentence) {
        return Vec::new();
    }
    let (list, lang) = match caps.name("zh") {
        Some(zh) => (zh.as_str(), Lang::Chinese),
        None => (caps.name("list").map_or("", |m| m.as_str()), Lang::English),
    };
    list_items(list)
        .into_iter()
        .take_while(|item| ONE_CONDITION.is_match(item))
        .map(|item| Fact::new(Slot::Condition, item).in_lang(lang))
        .collect()
}

/// "I'm allergic to peanuts, shellfish and penicillin": the whole list, which the clauses cut.
static ALLERGIC_TO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\bi(?:'m|\s+am)\s+(?:(?:also|really|very|severely|deathly|highly)\s+)*allergic\s+to\s+(?P<list>[^.;!?]+)|\bi\s+(?:have|'ve\s+got)\s+(?:an?\s+)?allerg(?:y|ies)\s+to\s+(?P<list2>[^.;!?]+)",
    )
    .expect("the allergy list pattern compiles")
});

/// Words that end an allergy list: the sentence goes on about something else.
const LIST_ENDS: [&str; 20] = [
    "i",
    "i'm",
    "my",
    "your",
    "his",
    "her",
    "our",
    "their",
    "so",
    "but",
    "because",
    "which",
    "who",
    "that",
    "is",
    "are",
    "was",
    "it",
    "and",
    "especially",
];

/// Every allergen of a list after "I'm allergic to", one fact each.
pub(super) fn allergy_list(sentence: &str) -> Vec<Fact> {
    let Some(caps) = ALLERGIC_TO.captures(sentence) else { return Vec::new() };
    if is_hedged(sentence) {
        return Vec::new();
    }
    let list = caps.name("list").or_else(|| caps.name("list2")).map_or("", |m| m.as_str());
    let mut facts = Vec::new();
    for item in list_items(list) {
        let words: Vec<String> = item.split_whitespace().map(str::to_lowercase).collect();
        let ends = words.len() > 3 || words.iter().any(|w| LIST_ENDS.contains(&w.as_str()));
        match taste_phrase(item) {
            Some(allergen) if !ends => facts.push(Fact::new(Slot::Allergy, allergen)),
            _ => break,
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use crate::fact::Slot;
    use crate::rules::said::slot_values as facts;

    fn one(slot: Slot, value: &str) -> Vec<(Slot, String)> {
        vec![(slot, value.to_owned())]
    }

    #[test]
    fn care_said_casually() {
        assert_eq!(facts("oh and i use she/her btw"), one(Slot::Pronouns, "she/her"));
        assert_eq!(
            facts("Hi, I'm Noor (they/them)."),
            [(Slot::Name, "Noor".to_owned()), (Slot::Pronouns, "they/them".to_owned())]
        );
        assert_eq!(facts("went full vegetarian in march"), one(Slot::Trait, "vegetarian"));
        assert_eq!(facts("my brother went vegan"), []);
        assert_eq!(facts("been doing paleo since the summer"), one(Slot::Diet, "paleo"));
        assert_eq!(facts("tbh i have epilepsy, so no strobe lights"), one(Slot::Condition, "epilepsy"));
        assert_eq!(facts("i get migraines when it rains"), []);
        assert_eq!(facts("just started metformin last week"), one(Slot::Medication, "metformin"));
        assert_eq!(facts("我最近改成吃素了"), one(Slot::Diet, "吃素"));
    }

    #[test]
    fn allergies_in_english_and_chinese() {
        assert_eq!(facts("I'm allergic to peanuts."), one(Slot::Allergy, "peanuts"));
        assert_eq!(facts("I can't eat shellfish, allergic."), one(Slot::Allergy, "shellfish"));
        assert_eq!(
            facts("I can't eat shellfish — been allergic since I was a kid."),
            one(Slot::Allergy, "shellfish")
        );
        assert_eq!(facts("I have a severe nut allergy."), one(Slot::Allergy, "nut"));
        assert_eq!(facts("Allergic to penicillin, by the way."), one(Slot::Allergy, "penicillin"));
        assert_eq!(
            facts("I'm allergic to peanuts, shellfish and penicillin, so be careful."),
            [
                (Slot::Allergy, "peanuts".to_owned()),
                (Slot::Allergy, "shellfish".to_owned()),
                (Slot::Allergy, "penicillin".to_owned())
            ]
        );
        assert_eq!(facts("我对花生过敏"), one(Slot::Allergy, "花生"));
        assert_eq!(facts("我海鲜过敏。"), one(Slot::Allergy, "海鲜"));
    }

    #[test]
    fn health_diet_and_pregnancy() {
        assert_eq!(facts("I have type 2 diabetes"), one(Slot::Condition, "type 2 diabetes"));
        assert_eq!(facts("I have a heart condition."), one(Slot::Condition, "a heart condition"));
        assert_eq!(
            facts("I was diagnosed with Crohn's disease last year."),
            one(Slot::Condition, "Crohn's disease")
        );
        assert_eq!(facts("我有糖尿病"), one(Slot::Condition, "糖尿病"));
        assert_eq!(facts("I'm lactose intolerant"), one(Slot::Trait, "lactose intolerant"));
        assert_eq!(facts("我乳糖不耐受"), one(Slot::Trait, "乳糖不耐受者"));
        assert_eq!(facts("I'm 20 weeks pregnant."), one(Slot::Trait, "pregnant"));
        assert_eq!(facts("我怀孕了"), one(Slot::Trait, "孕妇（正在怀孕）"));
        assert_eq!(facts("I only eat halal food."), one(Slot::Diet, "halal"));
        assert_eq!(facts("I keep kosher"), one(Slot::Diet, "kosher"));
        assert_eq!(facts("I'm on a gluten-free diet."), one(Slot::Diet, "gluten-free"));
        assert_eq!(facts("我吃素"), one(Slot::Diet, "吃素"));
        assert_eq!(facts("I don't eat pork."), one(Slot::Avoids, "pork"));
        assert_eq!(facts("我不吃猪肉"), one(Slot::Avoids, "猪肉"));
    }

    #[test]
    fn languages_and_pronouns() {
        assert_eq!(facts("my first language is Tamil"), one(Slot::NativeLanguage, "Tamil"));
        assert_eq!(facts("I'm a native Tamil speaker."), one(Slot::NativeLanguage, "Tamil"));
        assert_eq!(facts("我母语是粤语"), one(Slot::NativeLanguage, "粤语"));
        assert_eq!(facts("please answer in spanish"), one(Slot::AnswerLanguage, "Spanish"));
        assert_eq!(facts("I prefer answers in Spanish."), one(Slot::AnswerLanguage, "Spanish"));
        assert_eq!(facts("请用中文回答"), one(Slot::AnswerLanguage, "中文"));
        assert_eq!(facts("以后请用英文回复我"), one(Slot::AnswerLanguage, "英文"));
        assert_eq!(facts("my pronouns are they/them"), one(Slot::Pronouns, "they/them"));
        assert_eq!(facts("I use she/her pronouns."), one(Slot::Pronouns, "she/her"));
    }

    #[test]
    fn only_the_users_own_certain_statements() {
        for text in [
            "my friend is allergic to cats",
            "is it safe to eat peanuts if you're allergic?",
            "My dad has diabetes.",
            "I have a question about diabetes.",
            "I have anxiety about the exam tomorrow.",
            "I think I might have asthma.",
            "I'm not sure if I'm allergic to penicillin.",
            "My wife is pregnant.",
            "I'm worried I might be pregnant.",
            "I don't eat breakfast.",
            "I don't eat much these days.",
            "I'm on a strict diet.",
            "Please answer in English this time.",
            "How do you say hello in Spanish?",
            "Translate this into Spanish.",
            "我妈妈对花生过敏",
            "对花生过敏的人不能吃这个。",
            "我爸有糖尿病",
            "我老婆怀孕了",
            "我怀孕的时候很喜欢吃酸的",
            "请用英文解释一下这个词",
            "他用英文回答了",
        ] {
            assert_eq!(facts(text), [], "{text}");
        }
    }
}
