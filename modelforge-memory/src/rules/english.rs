//! English values: names and places as capitalized words, jobs as short phrases around a
//! known occupation, tastes as short noun or verb phrases.

use super::languages::canonical_language;
use super::patterns::{Check, QUOTES};
use crate::fact::Slot;
use crate::keywords::is_han;

/// The value of an English pattern: capitalized words for names and places, a short phrase for
/// tastes. A name or place in Chinese characters ("My name is 李娜") is taken as a Han run.
pub(super) fn english_value(slot: Slot, check: Check, raw: &str) -> Option<String> {
    let raw = raw.trim().trim_matches(QUOTES).trim();
    if raw.chars().next().is_some_and(is_han) && matches!(slot, Slot::Name | Slot::Home | Slot::Relative) {
        let run: String = raw.chars().take_while(|&c| is_han(c)).collect();
        return (2..=10).contains(&run.chars().count()).then_some(run);
    }
    match slot {
        Slot::Name if check == Check::BareName => {
            let name = proper_noun(raw, false)?;
            let first = name.split_whitespace().next().unwrap_or_default();
            let ok = name.split_whitespace().count() <= 3 && !NOT_NAMES.contains(&first);
            ok.then_some(name)
        }
        Slot::Name => proper_noun(raw, false),
        Slot::Relative => names(raw),
        Slot::Home => proper_noun(raw, true).or_else(|| place_near(raw)),
        Slot::Employer => proper_noun(raw, true).or_else(|| common_workplace(raw)),
        Slot::Job => job_phrase(raw, check == Check::Occupation),
        Slot::Has => Some(raw.split_whitespace().collect::<Vec<_>>().join(" ")),
        Slot::Likes | Slot::Dislikes | Slot::Allergy => taste_phrase(raw),
        Slot::Condition => condition(raw),
        Slot::Diet => {
            taste_phrase(raw).map(|d| d.to_lowercase()).filter(|d| !VAGUE_DIETS.contains(&d.as_str()))
        }
        Slot::Avoids => food(raw),
        Slot::Drives => job_phrase(raw, false),
        Slot::Trait => Some(raw.to_lowercase()),
        Slot::Workplace => proper_noun(raw, true),
        Slot::Address => address(raw),
        Slot::Language | Slot::NativeLanguage | Slot::AnswerLanguage => Some(canonical_language(raw)),
        Slot::Pronouns => Some(raw.to_lowercase().split_whitespace().collect()),
        Slot::Medication => Some(raw.to_lowercase()),
        Slot::Instruction => taste_phrase(raw),
        Slot::Remember | Slot::Said => None,
    }
}

/// Several names joined by "and" ("Ottilie and Rex"), or else one name.
fn names(raw: &str) -> Option<String> {
    let first = proper_noun(raw, false)?;
    let first = first.strip_suffix("'s").map_or(first.clone(), str::to_owned);
    let rest = raw.get(first.len()..).unwrap_or_default().trim_start_matches([',', ' ']);
    let second = rest
        .strip_prefix("and ")
        .or_else(|| rest.strip_prefix("& "))
        .and_then(|r| proper_noun(r, false))
        .filter(|n| n.split_whitespace().count() == 1);
    Some(match second {
        Some(second) => format!("{first} and {second}"),
        None => first,
    })
}

/// Places named by a common noun near a proper one: "a village near Harrogate".
const PLACES: [&str; 14] = [
    "village",
    "town",
    "city",
    "suburb",
    "hamlet",
    "flat",
    "house",
    "apartment",
    "farm",
    "island",
    "neighbourhood",
    "neighborhood",
    "area",
    "place",
];

/// "a village near Harrogate", "a small town outside Lyon": a place without a name of its own,
/// located by one that has.
fn place_near(raw: &str) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if !matches!(words.first()?.to_lowercase().as_str(), "a" | "an") {
        return None;
    }
    let noun = words.iter().take(4).position(|w| PLACES.contains(&w.to_lowercase().as_str()))?;
    let link = words.get(noun + 1)?.to_lowercase();
    let skip = match link.as_str() {
        "near" | "outside" | "in" | "by" => 2,
        "just" | "north" | "south" | "east" | "west" | "close" => 3,
        _ => return None,
    };
    let named = proper_noun(&words.get(noun + skip..)?.join(" "), true)?;
    Some(format!("{} {named}", words[..noun + skip].join(" ")))
}

/// Workplaces named by a common noun: "a bakery", "a little cafe", "a law firm".
const WORKPLACES: [&str; 40] = [
    "bakery",
    "cafe",
    "café",
    "coffee shop",
    "restaurant",
    "bank",
    "hospital",
    "school",
    "law firm",
    "firm",
    "shop",
    "store",
    "startup",
    "start-up",
    "agency",
    "factory",
    "warehouse",
    "hotel",
    "pub",
    "bar",
    "clinic",
    "pharmacy",
    "library",
    "university",
    "college",
    "nursery",
    "supermarket",
    "garage",
    "salon",
    "gym",
    "charity",
    "council",
    "studio",
    "lab",
    "laboratory",
    "care home",
    "call centre",
    "call center",
    "museum",
    "kindergarten",
];

/// "a bakery", "a little cafe": at most two words before a workplace noun, up to it.
fn common_workplace(raw: &str) -> Option<String> {
    let lower = raw.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    if !matches!(*words.first()?, "a" | "an" | "the") {
        return None;
    }
    (2..=4.min(words.len())).find_map(|end| {
        let phrase = words[..end].join(" ");
        let phrase = phrase.trim_end_matches([',', '.', '!']);
        WORKPLACES.iter().any(|w| phrase.ends_with(&format!(" {w}"))).then(|| phrase.to_owned())
    })
}

/// Where a diagnosis ends: "Crohn's disease last year", "breast cancer in 2019".
const CONDITION_ENDS: [&str; 12] = [
    " last ",
    " this ",
    " in ",
    " at ",
    " when ",
    " as a ",
    " years ago",
    " a while ago",
    " recently",
    " back ",
    " since ",
    " after ",
];

/// A condition ("type 2 diabetes", "Crohn's disease"), without when it was found.
fn condition(raw: &str) -> Option<String> {
    let lower = format!("{} ", raw.to_ascii_lowercase());
    let end = CONDITION_ENDS.iter().filter_map(|w| lower.find(w)).min().unwrap_or(raw.len()).min(raw.len());
    taste_phrase(&raw[..end])
}

/// Words before "diet" that name no way of eating ("I'm on a strict diet").
const VAGUE_DIETS: [&str; 10] =
    ["strict", "new", "healthy", "special", "balanced", "crash", "proper", "good", "bad", "normal"];

/// What "I don't eat ..." may start with that is no food: meals, amounts, times, places.
const NOT_FOODS: [&str; 24] = [
    "anything",
    "much",
    "out",
    "after",
    "before",
    "at",
    "in",
    "on",
    "with",
    "when",
    "until",
    "late",
    "enough",
    "well",
    "properly",
    "breakfast",
    "lunch",
    "dinner",
    "supper",
    "brunch",
    "meals",
    "like",
    "any",
    "everything",
];

/// A food not eaten ("pork", "red meat"), not a habit ("I don't eat breakfast").
fn food(raw: &str) -> Option<String> {
    let food = taste_phrase(raw)?;
    let first = food.split_whitespace().next().unwrap_or_default().to_lowercase();
    (!NOT_FOODS.contains(&first.as_str())).then_some(food)
}

/// An address: up to where the sentence goes on about something else, at most fourteen words,
/// holding a number or a capitalized word ("12 Rue Oberkampf, 75011 Paris").
fn address(raw: &str) -> Option<String> {
    let lower = raw.to_ascii_lowercase();
    let end = [" and ", " but ", " so ", " because ", " if "].iter().filter_map(|w| lower.find(w)).min();
    let value = raw[..end.unwrap_or(raw.len())].trim().trim_end_matches([',', '.', ' ']);
    let words: Vec<&str> = value.split_whitespace().collect();
    let first = words.first()?.to_lowercase();
    let looks_like = value.chars().any(|c| c.is_ascii_digit() || is_han(c))
        || value.chars().next().is_some_and(char::is_uppercase);
    (words.len() <= 14 && looks_like && !TASTE_REJECT.contains(&first.as_str())).then(|| value.to_owned())
}

/// Capitalized words after "I'm" that are not names.
const NOT_NAMES: [&str; 40] = [
    "English",
    "French",
    "German",
    "Italian",
    "Spanish",
    "Chinese",
    "Japanese",
    "American",
    "British",
    "Canadian",
    "Australian",
    "Indian",
    "Korean",
    "Russian",
    "Mexican",
    "Brazilian",
    "Dutch",
    "Swiss",
    "Swedish",
    "Irish",
    "Scottish",
    "Polish",
    "Vietnamese",
    "Thai",
    "Catholic",
    "Christian",
    "Muslim",
    "Jewish",
    "Buddhist",
    "Sorry",
    "Fine",
    "Good",
    "Happy",
    "Glad",
    "Back",
    "Here",
    "Ready",
    "Sure",
    "Not",
    "OK",
];

/// Occupations a bare "I'm a ..." must name to count as a job.
pub(super) const OCCUPATIONS: [&str; 206] = [
    "engineer",
    "developer",
    "programmer",
    "teacher",
    "nurse",
    "doctor",
    "physician",
    "lawyer",
    "accountant",
    "designer",
    "architect",
    "chef",
    "cook",
    "student",
    "scientist",
    "researcher",
    "writer",
    "journalist",
    "artist",
    "musician",
    "photographer",
    "pilot",
    "driver",
    "manager",
    "consultant",
    "analyst",
    "pharmacist",
    "dentist",
    "vet",
    "veterinarian",
    "electrician",
    "plumber",
    "carpenter",
    "mechanic",
    "farmer",
    "baker",
    "barista",
    "waiter",
    "waitress",
    "librarian",
    "professor",
    "lecturer",
    "translator",
    "editor",
    "firefighter",
    "officer",
    "soldier",
    "surgeon",
    "therapist",
    "psychologist",
    "paramedic",
    "cashier",
    "entrepreneur",
    "freelancer",
    "physicist",
    "chemist",
    "biologist",
    "economist",
    "banker",
    "secretary",
    "receptionist",
    "tailor",
    "painter",
    "actor",
    "actress",
    "dancer",
    "singer",
    "coach",
    "tutor",
    "administrator",
    "technician",
    "intern",
    "midwife",
    "hairdresser",
    "optician",
    "surveyor",
    "cleaner",
    "carer",
    "caregiver",
    "worker",
    "clerk",
    "agent",
    "realtor",
    "broker",
    "trader",
    "investor",
    "mathematician",
    "statistician",
    "influencer",
    "streamer",
    "blogger",
    "coder",
    "janitor",
    "lifeguard",
    "guide",
    "instructor",
    "trainer",
    "builder",
    "welder",
    "roofer",
    "gardener",
    "landscaper",
    "florist",
    "butcher",
    "bartender",
    "sommelier",
    "nanny",
    "housekeeper",
    "jeweler",
    "comedian",
    "poet",
    "novelist",
    "author",
    "illustrator",
    "animator",
    "producer",
    "director",
    "filmmaker",
    "composer",
    "pianist",
    "violinist",
    "guitarist",
    "drummer",
    "founder",
    "owner",
    "retiree",
    "paralegal",
    "attorney",
    "judge",
    "tester",
    "marketer",
    "recruiter",
    "dietitian",
    "nutritionist",
    "physiotherapist",
    "physio",
    "radiologist",
    "psychiatrist",
    "counselor",
    "counsellor",
    "postman",
    "courier",
    "sailor",
    "fisherman",
    "miner",
    "auditor",
    "controller",
    "assistant",
    "specialist",
    "coordinator",
    "supervisor",
    "inspector",
    "operator",
    "dispatcher",
    "pharmacologist",
    "hygienist",
    "optometrist",
    "podiatrist",
    "chiropractor",
    "osteopath",
    "anaesthetist",
    "anesthesiologist",
    "pediatrician",
    "paediatrician",
    "zoologist",
    "geologist",
    "ecologist",
    "botanist",
    "archaeologist",
    "astronomer",
    "historian",
    "linguist",
    "interpreter",
    "copywriter",
    "proofreader",
    "reporter",
    "presenter",
    "curator",
    "archivist",
    "sculptor",
    "potter",
    "ceramicist",
    "locksmith",
    "bricklayer",
    "plasterer",
    "machinist",
    "detective",
    "guard",
    "chaplain",
    "priest",
    "pastor",
    "rabbi",
    "imam",
    "doula",
    "groomer",
    "beekeeper",
    "shopkeeper",
    "salesperson",
    "salesman",
    "saleswoman",
    "chauffeur",
    "trucker",
    "educator",
    "headteacher",
    "principal",
    "academic",
];

/// A job phrase ("a nurse", "software engineer"): up to where the clause goes on about
/// something else, at most six words; with `need_occupation`, one word must be an occupation.
pub(super) fn job_phrase(raw: &str, need_occupation: bool) -> Option<String> {
    let mut value = raw.trim_matches(QUOTES).trim();
    for cut in
        [" at ", " for ", " in ", " with ", " since ", " now", " these days", " by profession", " online"]
    {
        if let Some(i) = value.to_ascii_lowercase().find(cut) {
            value = value[..i].trim();
        }
    }
    let words: Vec<&str> = value.split_whitespace().collect();
    let first = words.first()?.to_lowercase();
    if words.len() > 6 || TASTE_REJECT.contains(&first.as_str()) {
        return None;
    }
    let occupation = words.iter().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        OCCUPATIONS.contains(&w.as_str()) || OCCUPATIONS.contains(&w.trim_end_matches('s'))
    });
    (!need_occupation || occupation).then(|| words.join(" ").trim_end_matches(['.', '!', ',']).to_owned())
}

/// Lowercase words that may sit between capitalized ones ("Rio de Janeiro").
const NAME_CONNECTORS: [&str; 13] =
    ["de", "da", "del", "di", "du", "la", "le", "van", "von", "der", "of", "upon", "&"];

/// Leading capitalized words ("Lina Chen", "New York"), so "I live in fear" gives nothing and
/// "I live in Lyon now" gives "Lyon". With `allow_the`, "the UK" keeps its article.
fn proper_noun(raw: &str, allow_the: bool) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    let capitalized = |i: usize| {
        words.get(i).is_some_and(|w| {
            let pronoun = *w == "I" || w.starts_with("I'");
            !pronoun && w.chars().next().is_some_and(char::is_uppercase)
        })
    };
    let mut end = usize::from(allow_the && words.first().is_some_and(|w| w.eq_ignore_ascii_case("the")));
    let start = end;
    let mut names = 0;
    while names < 5 {
        if capitalized(end) {
            end += 1;
        } else if words.get(end).is_some_and(|w| NAME_CONNECTORS.contains(w)) && capitalized(end + 1) {
            end += 2;
        } else {
            break;
        }
        names += 1;
    }
    (end > start).then(|| words[..end].join(" ").trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned())
}

/// Words a taste may not start with: pronouns and clauses say nothing reusable ("I love it",
/// "I like how you put it").
const TASTE_REJECT: [&str; 26] = [
    "it", "it's", "this", "that", "these", "those", "them", "they", "you", "your", "yours", "him", "her",
    "me", "us", "myself", "how", "what", "when", "where", "why", "who", "which", "if", "whether", "to",
];
/// Verbs allowed after "to": "I like to swim" is a taste, "I like to think that" is not.
const TASTE_TO_REJECT: [&str; 5] = ["think", "believe", "say", "know", "be"];
/// Nouns after "the" that introduce a clause: "I like the idea that ...", "the way you ...".
const TASTE_THE_REJECT: [&str; 7] = ["idea", "way", "fact", "thought", "stuff", "thing", "things"];
const TASTE_FILLERS: [&str; 16] = [
    " very much",
    " so much",
    " a lot",
    " too",
    " as well",
    " anymore",
    " any more",
    " really",
    " now",
    " these days",
    " nowadays",
    " lately",
    " instead",
    " online",
    " though",
    " too much",
];

/// A short noun or verb phrase ("jazz", "hiking in the Alps"), at most eight words.
pub(super) fn taste_phrase(raw: &str) -> Option<String> {
    let mut value = raw.trim_matches(QUOTES).trim();
    while let Some(shorter) =
        TASTE_FILLERS.iter().find_map(|f| strip_suffix_ignore_case(value, f)).map(str::trim_end)
    {
        value = shorter;
    }
    let words: Vec<&str> = value.split_whitespace().collect();
    let first = words.first()?.to_lowercase();
    let second = words.get(1).map(|w| w.to_lowercase());
    let rejected = if first == "to" {
        second.is_none_or(|verb| TASTE_TO_REJECT.contains(&verb.as_str()))
    } else if first == "the" {
        second.is_some_and(|noun| TASTE_THE_REJECT.contains(&noun.as_str()))
    } else {
        TASTE_REJECT.contains(&first.as_str())
    };
    (!rejected && words.len() <= 8).then(|| words.join(" "))
}

fn strip_suffix_ignore_case<'a>(value: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = value.len().checked_sub(suffix.len())?;
    let tail = value.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &value[..cut])
}

#[cfg(test)]
mod tests {
    use crate::fact::Slot;
    use crate::rules::said::slot_values as facts;

    fn one(slot: Slot, value: &str) -> Vec<(Slot, String)> {
        vec![(slot, value.to_owned())]
    }

    #[test]
    fn english_names() {
        assert_eq!(facts("My name is Lina."), one(Slot::Name, "Lina"));
        assert_eq!(facts("my name's Lina Chen"), one(Slot::Name, "Lina Chen"));
        assert_eq!(facts("Hi, I'm called Lina"), one(Slot::Name, "Lina"));
        assert_eq!(facts("You can call me Dr. Smith"), one(Slot::Name, "Dr. Smith"));
        assert_eq!(facts("Call me Ishmael!"), one(Slot::Name, "Ishmael"));
        assert_eq!(facts("My name is 李娜"), one(Slot::Name, "李娜"));
    }

    #[test]
    fn english_homes() {
        assert_eq!(facts("I live in Lyon now"), one(Slot::Home, "Lyon"));
        assert_eq!(facts("I'm from New York City"), one(Slot::Home, "New York City"));
        assert_eq!(facts("I am based in Rio de Janeiro"), one(Slot::Home, "Rio de Janeiro"));
        assert_eq!(facts("I live in the UK"), one(Slot::Home, "the UK"));
        assert_eq!(facts("I just moved to Paris."), one(Slot::Home, "Paris"));
        assert_eq!(facts("I currently live in Berlin"), one(Slot::Home, "Berlin"));
    }

    #[test]
    fn english_tastes() {
        assert_eq!(facts("I love jazz very much."), one(Slot::Likes, "jazz"));
        assert_eq!(facts("I really like tea these days"), one(Slot::Likes, "tea"));
        assert_eq!(facts("I really enjoy hiking in the Alps"), one(Slot::Likes, "hiking in the Alps"));
        assert_eq!(facts("I like to swim"), one(Slot::Likes, "to swim"));
        assert_eq!(facts("I don't like olives."), one(Slot::Dislikes, "olives"));
        assert_eq!(facts("I really do not like mushrooms"), one(Slot::Dislikes, "mushrooms"));
        assert_eq!(facts("I hate cilantro"), one(Slot::Dislikes, "cilantro"));
        assert_eq!(facts("I can't stand traffic"), one(Slot::Dislikes, "traffic"));
    }
}
