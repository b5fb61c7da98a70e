//! The words of each topic, in English and Chinese: the names a request to forget may give a
//! topic, and the words that put a free-text memory in one.

use std::sync::LazyLock;

use regex::Regex;

use super::english::OCCUPATIONS;
use super::languages::{LANGUAGES, ZH_LANGUAGES};
use super::topics::Topic;

/// What a request to forget may call each topic, once wrappers and tails are off: English
/// (lowercase) and Chinese names, each list split at "|".
pub(super) const TOPIC_NAMES: &[(Topic, &str, &str)] = &[
    (
        Topic::Name,
        "name|names|full name|first name|real name|surname|last name|nickname",
        "名字|姓名|名称|称呼|昵称|叫什么",
    ),
    (
        Topic::Home,
        "where i live|where i'm living|where i am living|where i stay|where i'm staying|where i'm based|where i am based|where i'm from|where i am from|where i come from|where my home is|home|address|home address|addresses|location|city|home city|home town|hometown|neighbourhood|neighborhood|area|house|flat|apartment|street|postcode|zip code|living situation|where i moved|move",
        "住哪|住哪儿|住哪里|住在哪|住在哪儿|住在哪里|家在哪|家在哪儿|家在哪里|住址|地址|家庭住址|家的地址|住的地方|住处|住所|家住哪|家住哪儿|家住哪里|小区|城市|老家|住的城市",
    ),
    (
        Topic::Work,
        "job|jobs|work|career|employer|company|workplace|office|occupation|profession|employment|where i work|what i do|what i do for a living|what i do for work|job title|role|boss|colleagues|coworkers|work stuff|new job|old job",
        "工作|职业|公司|单位|工作单位|上班|在哪上班|在哪儿上班|在哪里上班|在哪工作|在哪儿工作|在哪里工作|工作的地方|上班的地方|做什么工作|干什么的|职位|工作地点",
    ),
    (
        Topic::Family,
        "family|families|relatives|family members|loved ones|household",
        "家人|家庭|家里人|家属|亲人|家里|家庭成员|家人们",
    ),
    (
        Topic::Partner,
        "wife|husband|partner|spouse|girlfriend|boyfriend|fiance|fiancé|fiancee|fiancée|marriage|other half|ex|exes|ex-boyfriend|ex-girlfriend|ex-husband|ex-wife|ex-partner|former partner",
        "老婆|妻子|太太|老公|丈夫|爱人|对象|另一半|伴侣|男朋友|女朋友|婚姻|前任|前男友|前女友|前夫|前妻",
    ),
    (
        Topic::Children,
        "kids|kid|children|child|son|sons|daughter|daughters|baby|grandchildren|grandkids",
        "孩子|孩子们|儿子|女儿|小孩|宝宝",
    ),
    (
        Topic::Parents,
        "parents|mother|mom|mum|father|dad|mom and dad|mum and dad",
        "父母|爸妈|爸爸|妈妈|父亲|母亲",
    ),
    (Topic::Siblings, "siblings|brother|brothers|sister|sisters", "兄弟姐妹|哥哥|姐姐|弟弟|妹妹"),
    (Topic::Pets, "pet|pets|dog|dogs|cat|cats|puppy|kitten|animals", "宠物|猫|狗|猫咪|狗狗"),
    (
        Topic::Health,
        "health|medical|medical history|medical condition|medical conditions|medical issues|condition|conditions|health condition|health conditions|health issues|health problems|illness|illnesses|diagnosis|diagnoses|pregnancy|medication|medications|disability",
        "健康|身体|身体状况|健康状况|病|病情|病史|疾病|怀孕|身体情况|健康情况",
    ),
    (Topic::Allergies, "allergy|allergies", "过敏|过敏源|过敏原|过敏史"),
    (
        Topic::Diet,
        "diet|dietary|dietary restrictions|dietary requirements|dietary needs|food restrictions|eating habits|what i eat|what i don't eat|what i can't eat|what i can eat",
        "饮食|吃什么|饮食习惯|忌口|饮食要求|饮食限制|吃的",
    ),
    (
        Topic::Languages,
        "language|languages|languages i speak|what languages i speak|mother tongue|first language|native language|preferred language",
        "语言|母语|会说的语言|说什么语言",
    ),
    (Topic::Pronouns, "pronouns|pronoun", "代词|人称代词"),
    (Topic::Car, "car|cars|vehicle|what i drive|what car i drive", "车|车子|汽车|开什么车"),
];

/// Words around a topic's name in a request to forget ("everything about", "关于", "我的").
pub(super) static TOPIC_WRAPPERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?:everything|anything|all|all\s+of|whatever|what|the\s+stuff|stuff|the\s+things|things|the\s+details|details|the\s+info|info|information|the\s+information)(?:\s+(?:that\s+)?(?:you\s+know|you\s+remember|you\s+have|you've\s+got|i(?:'ve|\s+have)?\s+(?:said|told\s+you|mentioned|shared)))?\s+(?:about|on|regarding|concerning|of|related\s+to|to\s+do\s+with)\s+|(?:about|regarding|concerning|my|the|our|all|all\s+of)\s+|关于|有关|所有|全部|一切|我(?:说过|告诉你|跟你说)的|我的|我)",
    )
    .expect("the topic wrapper pattern compiles")
});

/// Words after a topic's name in a request to forget ("details", "的事", "了").
pub(super) static TOPIC_SUFFIXES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\s+(?:that\s+)?i(?:'ve|\s+have)?\s+(?:told\s+you|said|mentioned|shared)(?:\s+(?:before|earlier|about))?|\s+(?:details?|info|information|stuff|things|data|situation|status|history|life|section|please|too|as\s+well|for\s+me|for\s+good|completely|entirely|altogether|now|anymore|any\s+more|then|from\s+(?:your\s+)?(?:memory|memories|records?|notes))|'s\s+names?|s'\s+names?|'\s+names?|\s+names?|的事情|的事儿|的事|的一切|的所有信息|的所有事|的记忆|的记录|这件事|那件事|这些事|那些事|的那些|的信息|的资料|的情况|的内容|的细节|的东西|相关的?(?:事情|事|内容|信息)?|方面的?(?:事情|事|内容|信息)?|有关的?(?:事情|事|内容|信息)?|这些|那些|了|吧|啊|呀|哦|都|全部|全都|呢)$",
    )
    .expect("the topic suffix pattern compiles")
});

/// Relations and the part of the family they belong to (`Family` for the rest of it), in
/// English and Chinese, each list split at "|".
const RELATIONS: &[(Topic, &str, &str)] = &[
    (
        Topic::Partner,
        "wife|wives|husband|spouse|partner|girlfriend|boyfriend|fiance|fiancé|fiancee|fiancée|married|widow|widower|widowed|divorced|ex|ex-boyfriend|ex-girlfriend|ex-husband|ex-wife|ex-partner",
        "妻子|老婆|太太|丈夫|老公|先生|爱人|对象|伴侣|男朋友|女朋友|未婚夫|未婚妻|结婚|已婚|离婚|丧偶|前任|前男友|前女友|前夫|前妻",
    ),
    (
        Topic::Children,
        "son|sons|daughter|daughters|child|children|kid|kids|baby|babies|toddler|toddlers|twins|grandson|granddaughter|grandchild|grandchildren|grandkids|stepson|stepdaughter|stepkids",
        "儿子|女儿|孩子|小孩|宝宝|双胞胎|孙子|孙女|外孙|外孙女",
    ),
    (
        Topic::Parents,
        "mother|mom|mum|father|dad|parent|parents|stepmother|stepfather",
        "父母|爸妈|爸爸|妈妈|父亲|母亲",
    ),
    (Topic::Siblings, "brother|brothers|sister|sisters|sibling|siblings", "哥哥|姐姐|弟弟|妹妹|兄弟|姐妹"),
    (
        Topic::Pets,
        "pet|pets|dog|dogs|cat|cats|puppy|puppies|kitten|kittens|beagle|labrador|poodle|terrier|retriever|spaniel|collie|husky|corgi|pug|dachshund|bulldog|parrot|rabbit|hamster|tortoise|turtle",
        "宠物|猫咪|猫|狗狗|狗|小狗|小猫|兔子|鹦鹉|仓鼠|乌龟|金毛|柯基|泰迪|哈士奇|拉布拉多|布偶|英短|橘猫",
    ),
    (
        Topic::Family,
        "family|grandmother|grandfather|grandma|grandpa|grandparents|aunt|uncle|cousin|cousins|niece|nephew|in-laws",
        "家人|家里人|家庭|爷爷|奶奶|外公|外婆|姥姥|姥爷|公公|婆婆|岳父|岳母",
    ),
];

/// People named like relatives who are not family ("I have a friend named Tom").
const OUTSIDE_FAMILY: [&str; 12] = [
    "friend",
    "buddy",
    "mate",
    "neighbour",
    "neighbor",
    "roommate",
    "flatmate",
    "colleague",
    "coworker",
    "boss",
    "朋友",
    "同事",
];

/// Whether a relation key names someone outside the family.
pub(super) fn is_outside_family(key: &str) -> bool {
    OUTSIDE_FAMILY.contains(&key.to_lowercase().as_str())
}

/// The part of the family a relation word names, `Family` for family outside the parts.
pub(super) fn relation_group(word: &str) -> Option<Topic> {
    let word = word.to_lowercase();
    RELATIONS
        .iter()
        .find(|(_, en, zh)| en.split('|').chain(zh.split('|')).any(|w| w == word))
        .map(|(topic, ..)| *topic)
}

fn relation_words(chinese: bool) -> String {
    let mut words: Vec<&str> =
        RELATIONS.iter().flat_map(|(_, en, zh)| if chinese { zh } else { en }.split('|')).collect();
    // Longest first, so "猫咪" is taken whole before "猫".
    words.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    words.join("|")
}

/// A relative named as someone the user has: "the user's wife", "has two kids", "a dog named
/// Rex", "用户的女儿", "我养了一只猫". A bare "dogs" ("afraid of dogs") is not family.
static FAMILY: LazyLock<Regex> = LazyLock::new(|| {
    let en = relation_words(false);
    let zh = relation_words(true);
    let source = format!(
        r"(?i)\b(?:(?:user's|their|his|her|my|our)\s+(?:[\w-]+\s+){{0,2}}?(?P<a>{en})|(?:has|have|had|adopted|owns?|raising|raises|expecting)\s+(?:(?:a|an|one|two|three|four|five|six|\d+|twin|several|some)\s+)?(?:[\w-]+\s+){{0,2}}?(?P<b>{en})|(?P<c>{en})\s+(?:named|called)|is\s+an?\s+(?P<d>mother|father|mom|mum|dad|parent|grandmother|grandfather|grandparent)|(?P<e>married|widowed|divorced|family))\b(?P<x>\s+(?:allerg\w*|food|hair|fur|dander|phobia|person|people|lover|lovers|sitter|walker|show|shelter))?|(?:用户|我)(?:的|家的?|家里的?|家有|家养了?|有|养了?|养着)(?:一|两|二|三|四|五|几|\d)?(?:个|只|条|位|对)?[^，。的]{{0,3}}?(?P<f>{zh})|(?P<g>{zh})(?:叫|名叫|的名字)|(?P<h>结婚|已婚|离婚|丧偶|家人|家里人|家庭)"
    );
    Regex::new(&source).unwrap_or_else(|err| panic!("family pattern {source}: {err}"))
});

/// Text that opens with a relative as its subject: "The user's sister lives in Boston."
static ABOUT_A_RELATIVE: LazyLock<Regex> = LazyLock::new(|| {
    let en = relation_words(false);
    let zh = relation_words(true);
    let source = format!(
        r"(?i)^(?:the\s+)?(?:user's|my|our)\s+(?:[\w-]+\s+){{0,2}}?(?:{en})\b|^(?:用户|我)(?:的|家的?)?(?:{zh})"
    );
    Regex::new(&source).unwrap_or_else(|err| panic!("relative pattern {source}: {err}"))
});

/// "a daughter who lives in Paris": what a relative does, left out of the user's own topics.
static RELATIVE_CLAUSE: LazyLock<Regex> = LazyLock::new(|| {
    let en = relation_words(false);
    Regex::new(&format!(r"(?i)\b(?:{en})\s+(?:who|that|which)\b[^,.;]*"))
        .expect("the relative clause pattern compiles")
});

/// "works out" is exercise, not work.
static WORKOUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bwork(?:s|ed|ing)?\s+out\b|\bworkouts?\b").expect("the workout pattern compiles")
});

/// Whether `text` opens with a relative as its subject.
pub(super) fn about_a_relative(text: &str) -> bool {
    ABOUT_A_RELATIVE.is_match(text.trim())
}

/// Every topic whose words occur in free `text`.
pub(super) fn free_text_topics(text: &str) -> Vec<Topic> {
    let mut topics: Vec<Topic> = Vec::new();
    let mut add = |topic: Topic| {
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    };
    for caps in FAMILY.captures_iter(text) {
        // "a cat allergy", "a dog person": an animal named, no pet.
        if caps.name("x").is_some() {
            continue;
        }
        let word = caps.iter().skip(1).flatten().next().map_or("", |m| m.as_str());
        add(Topic::Family);
        if let Some(part) = relation_group(word).filter(|t| *t != Topic::Family) {
            add(part);
        }
    }
    let own = RELATIVE_CLAUSE.replace_all(text, "");
    let own = WORKOUT.replace_all(&own, "exercise");
    for (topic, words) in TOPIC_TEXT.iter() {
        if words.is_match(&own) {
            add(*topic);
        }
    }
    topics
}

/// The words of each topic but the family's in free text: English as whole words, Chinese as
/// substrings.
static TOPIC_TEXT: LazyLock<Vec<(Topic, Regex)>> = LazyLock::new(|| {
    let occupations = OCCUPATIONS.join("|");
    let sources = [
        (
            Topic::Name,
            r"user's\s+(?:full\s+|first\s+|last\s+|real\s+)?name|user\s+(?:is\s+called|is\s+named|goes\s+by|prefers\s+to\s+be\s+called)|nickname|my\s+name|call\s+me".to_owned(),
            "用户的名字|用户叫|用户的姓名|昵称|我叫|我的名字".to_owned(),
        ),
        (
            Topic::Home,
            r"lives?|lived|living\s+in|resides?|residing|address|neighbou?rhood|apartment|hometown|home\s+town|moved\s+to|relocated|based\s+in|postcode|post\s+code|zip\s+code|suburb|street".to_owned(),
            "住在|住址|地址|家住|小区|居住|搬到|搬去|搬家|定居|老家|公寓|住处|住的地方|街道|社区".to_owned(),
        ),
        (
            Topic::Work,
            format!(
                r"job|jobs|works?|worked|working|employer|employed|employee|company|office|workplace|career|occupation|profession|colleagues?|co-?workers?|boss|salary|shifts?|promot(?:ed|ion)|hired|internship|clients?|(?:is|as|became)\s+an?\s+(?:[\w-]+\s+){{0,2}}?(?:{occupations})s?"
            ),
            "工作|上班|职业|公司|单位|同事|老板|领导|工资|职位|岗位|入职|辞职|跳槽|加班|实习|创业|工程师|程序员|设计师|医生|护士|老师|教师|律师|会计|司机|厨师|经理|记者|警察|销售|服务员|店员".to_owned(),
        ),
        (
            Topic::Health,
            r"health|medical|medically|diagnosed|diagnosis|chronic|diabet(?:es|ic)|asthma(?:tic)?|epilep(?:sy|tic)|seizures?|pregnan(?:t|cy)|allerg(?:y|ies|ic)|anaphyla\w*|epipen|intoleran(?:t|ce)|c(?:o)?eliac|blood\s+pressure|hypertension|cholesterol|heart\s+(?:condition|disease|problems?|attack|surgery)|pacemaker|cancer|tumou?r|chemo\w*|arthritis|migraines?|depression|anxiety|adhd|autis(?:m|tic)|dyslexi[ac]|deaf|hard\s+of\s+hearing|hearing\s+aids?|blind|wheelchair|medications?|medicines?|prescriptions?|insulin|inhaler|surgery|injur(?:y|ies|ed)|physio\w*|crohn's|ibs|thyroid|kidney|copd|lupus|sclerosis|hiv|hepatitis|ana?emi[ac]|knee|back\s+pain|pain|illness|disease|disorder|syndrome".to_owned(),
            "健康|身体|疾病|病|糖尿|哮喘|癫痫|心脏|高血压|血压|血糖|怀孕|孕|过敏|不耐受|手术|吃药|服药|药物|症|住院|残疾|失聪|耳聋|视力|抑郁|焦虑|色盲|受伤".to_owned(),
        ),
        (Topic::Allergies, r"allerg(?:y|ies|ic)|anaphyla\w*|epipen".to_owned(), "过敏".to_owned()),
        (
            Topic::Diet,
            r"diet|dietary|vegetarian|vegan|pescatarian|plant-based|halal|kosher|gluten|lactose|dairy-free|keto|paleo|low-carb|teetotal|intoleran(?:t|ce)|c(?:o)?eliac|(?:does\s+not|doesn't|do\s+not|don't|never|cannot|can't)\s+eat|eats?\s+no|avoids?\s+eating".to_owned(),
            "饮食|素食|吃素|清真|麸质|乳糖|忌口|不吃|不能吃|生酮|低碳|吃斋".to_owned(),
        ),
        (
            Topic::Languages,
            format!(
                r"languages?|fluent|bilingual|multilingual|native\s+speaker|mother\s+tongue|(?:speaks?|spoken|answers?\s+in|replies\s+in|responses\s+in|writes?\s+in)\s+(?:[\w-]+\s+){{0,3}}?(?:{LANGUAGES})"
            ),
            format!("母语|语言|(?:会|能)(?:说|讲)|用(?:{ZH_LANGUAGES})(?:来)?(?:回答|回复|交流|沟通|聊)|(?:说|讲)(?:{ZH_LANGUAGES})"),
        ),
        (Topic::Pronouns, r"pronouns?|they/them|she/her|he/him|she/they|he/they|xe/xem|ze/zir".to_owned(), "代词".to_owned()),
        (
            Topic::Car,
            r"cars?|drives?|driving|vehicle|truck|suv|motorbike|motorcycle|licen[cs]e\s+plate|number\s+plate".to_owned(),
            "开车|车牌|汽车|车子|开的车|驾照|开一辆|电动车|的车".to_owned(),
        ),
    ];
    sources
        .into_iter()
        .map(|(topic, en, zh)| {
            let source = format!(r"(?i)\b(?:{en})\b|{zh}");
            (topic, Regex::new(&source).unwrap_or_else(|err| panic!("topic pattern {source}: {err}")))
        })
        .collect()
});
