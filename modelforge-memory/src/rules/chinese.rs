//! Chinese values: the rest of the clause up to a stop word, kept verbatim.

use super::patterns::{Check, QUOTES};
use crate::fact::Slot;

/// Where a Chinese value ends when no punctuation ends it: a new "我" clause or a connective.
const ZH_STOPS: [&str; 8] = ["我", "但是", "不过", "可是", "而且", "并且", "所以", "因为"];
const ZH_NAME_STOPS: [&str; 24] = [
    "今年", "是", "在", "住", "来自", "和", "也", "特别", "很", "非常", "最", "说", "他", "她", "每", "经常",
    "总是", "今天", "明天", "昨天", "又", "都", "还", "就",
];
const ZH_HOME_STOPS: [&str; 8] = ["已经", "和", "工作", "上班", "上学", "读书", "生活", "住"];
const ZH_JOB_STOPS: [&str; 5] = ["已经", "了", "在", "工作", "，"];
/// Endings of occupations ("护士", "软件工程师", "程序员").
pub(super) const ZH_JOBS: [&str; 79] = [
    "师",
    "员",
    "医生",
    "护士",
    "工人",
    "司机",
    "记者",
    "经理",
    "会计",
    "警察",
    "农民",
    "老板",
    "主管",
    "总监",
    "博士",
    "学生",
    "教授",
    "作家",
    "画家",
    "演员",
    "歌手",
    "保安",
    "销售",
    "主播",
    "翻译",
    "编辑",
    "导演",
    "秘书",
    "店长",
    "校长",
    "人事",
    "财务",
    "行政",
    "设计",
    "运营",
    "客服",
    "前台",
    "保洁",
    "厨师",
    "护工",
    "老师",
    "律师",
    "助理",
    "服务员",
    "店员",
    "技术员",
    "教研员",
    "审计",
    "出租车",
    "网约车",
    "摄影",
    "策划",
    "质检",
    "测试",
    "开发",
    "前端",
    "后端",
    "码农",
    "美工",
    "出纳",
    "采购",
    "保姆",
    "月嫂",
    "研究生",
    "硕士",
    "军人",
    "骑手",
    "空姐",
    "导游",
    "模特",
    "博主",
    "网红",
    "自由职业",
    "个体户",
    "兽医",
    "牙医",
    "中医",
    "法官",
    "厨子",
];
/// The most common Chinese surnames, for "我是王芳" (a name) against "我是北京人" (not one).
const ZH_SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤欧";
const ZH_TASTE_STOPS: [&str; 8] =
    ["也喜欢", "还喜欢", "也爱", "也不喜欢", "也讨厌", "这件事", "这个事", "这事"];
pub(super) const ZH_PARTICLES: &[char] =
    &['了', '啊', '呀', '哦', '的', '呢', '吧', '啦', '哈', '嘛', '哟', '喔'];
/// Values starting with these are pronouns or grammar, not names, places or things.
const ZH_REJECT_START: [&str; 12] =
    ["你", "您", "他", "她", "它", "这", "那", "了", "的", "自己", "大家", "谁"];
/// Question words: "我叫什么" asks, it does not tell.
const ZH_QUESTION: [&str; 5] = ["什么", "谁", "哪", "吗", "怎么"];

/// The value of a Chinese pattern: the rest of the clause up to a stop word, without trailing
/// particles, taken verbatim.
pub(super) fn chinese_value(slot: Slot, check: Check, raw: &str) -> Option<String> {
    let mut value = raw.trim();
    if slot.is_taste() {
        // "我最喜欢的是饺子": the thing is after "的是".
        value = value.strip_prefix("的就是").or_else(|| value.strip_prefix("的是")).unwrap_or(value);
    }
    let cut =
        ZH_STOPS.iter().chain(stops(slot)).filter_map(|stop| value.find(stop)).min().unwrap_or(value.len());
    let value = value[..cut].trim().trim_end_matches(ZH_PARTICLES).trim_matches(QUOTES).trim();

    let chars = value.chars().count();
    let is_job = || ZH_JOBS.iter().any(|job| value.ends_with(job));
    let checked = match check {
        Check::Occupation => is_job(),
        Check::Surname => {
            (2..=3).contains(&chars)
                && value.chars().next().is_some_and(|c| ZH_SURNAMES.contains(c))
                && !is_job()
        }
        Check::None
        | Check::BareName
        | Check::OccupationBefore
        | Check::OccupationAfter
        | Check::Nickname => true,
    };
    let plausible = checked
        && lengths(slot).contains(&chars)
        && !ZH_REJECT_START.iter().any(|p| value.starts_with(p))
        && !ZH_QUESTION.iter().any(|q| value.contains(q))
        && !(slot == Slot::Avoids && ZH_NOT_FOODS.contains(&value));
    plausible.then(|| trait_noun(slot, value))
}

/// Where a value of `slot` ends besides [`ZH_STOPS`].
fn stops(slot: Slot) -> &'static [&'static str] {
    match slot {
        Slot::Name | Slot::Relative => &ZH_NAME_STOPS,
        Slot::Home | Slot::Workplace => &ZH_HOME_STOPS,
        Slot::Job => &ZH_JOB_STOPS,
        // "我喜欢猫也喜欢狗": the first thing ends where the next taste begins.
        Slot::Likes | Slot::Dislikes => &ZH_TASTE_STOPS,
        Slot::Avoids => &ZH_AVOID_STOPS,
        Slot::Employer
        | Slot::Address
        | Slot::Has
        | Slot::Remember
        | Slot::Allergy
        | Slot::Condition
        | Slot::Diet
        | Slot::Drives
        | Slot::Trait
        | Slot::Language
        | Slot::NativeLanguage
        | Slot::AnswerLanguage
        | Slot::Pronouns
        | Slot::Medication
        | Slot::Instruction
        | Slot::Said => &[],
    }
}

/// How many characters a value of `slot` may have.
fn lengths(slot: Slot) -> std::ops::RangeInclusive<usize> {
    match slot {
        Slot::Name | Slot::Home | Slot::Employer | Slot::Workplace | Slot::Has => 2..=20,
        Slot::Address => 4..=60,
        Slot::Pronouns => 1..=10,
        _ => 1..=20,
    }
}

/// A trait as a noun for the frame "用户是…": "怀孕" gives "孕妇（正在怀孕）", "乳糖不耐受" gives
/// "乳糖不耐受者"; other values as they are.
fn trait_noun(slot: Slot, value: &str) -> String {
    match value {
        "怀孕" if slot == Slot::Trait => "孕妇（正在怀孕）".to_owned(),
        _ if slot == Slot::Trait && value.contains("不耐") => {
            format!("{}受者", value.trim_end_matches('受'))
        }
        _ => value.to_owned(),
    }
}

/// Where a food not eaten ends: "我不吃猪肉也不吃牛肉".
const ZH_AVOID_STOPS: [&str; 4] = ["也不", "还不", "因为", "，"];
/// What "我不吃…" may name that is no food: meals and amounts.
const ZH_NOT_FOODS: [&str; 16] = [
    "饭", "早饭", "早餐", "午饭", "午餐", "晚饭", "晚餐", "夜宵", "东西", "太多", "多", "完", "下", "饱",
    "零食", "宵夜",
];

#[cfg(test)]
mod tests {
    use crate::fact::Slot;
    use crate::rules::said::slot_values as facts;

    fn one(slot: Slot, value: &str) -> Vec<(Slot, String)> {
        vec![(slot, value.to_owned())]
    }

    #[test]
    fn chinese_values_are_kept_verbatim() {
        assert_eq!(facts("我叫李娜"), one(Slot::Name, "李娜"));
        assert_eq!(facts("我的名字是王小明。"), one(Slot::Name, "王小明"));
        assert_eq!(facts("你可以叫我小李"), one(Slot::Name, "小李"));
        assert_eq!(facts("我住在上海"), one(Slot::Home, "上海"));
        assert_eq!(facts("我在北京住了三年"), one(Slot::Home, "北京"));
        assert_eq!(facts("我现在住在上海浦东已经五年了"), one(Slot::Home, "上海浦东"));
        assert_eq!(facts("我很喜欢爵士乐"), one(Slot::Likes, "爵士乐"));
        assert_eq!(facts("我最喜欢的是饺子"), one(Slot::Likes, "饺子"));
        assert_eq!(facts("我不喜欢橄榄"), one(Slot::Dislikes, "橄榄"));
        assert_eq!(facts("我喜欢猫也喜欢狗"), one(Slot::Likes, "猫"));
        assert_eq!(facts("我真的讨厌下雨天"), one(Slot::Dislikes, "下雨天"));
    }
}
