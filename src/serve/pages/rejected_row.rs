//! What the check says under each invalid row it shows: in Chinese, a sentence made from the
//! reason's kind and the row's own plate or VIN (what is wrong with *this* value, and the
//! fix); in English, the CLI's own sentence, which already says both.
//!
//! The Chinese is derived here rather than translated from the CLI's English: the job keeps
//! each example's kind, plate and VIN, and the rules the plate and VIN broke are re-read from
//! [`crate::leads::lead`]'s own predicates, so the page never parses English.

use crate::leads::lead::{is_plate_letter, is_province, is_serial_char, normalise_plate, normalise_vin};
use crate::serve::pages::text::Lang;
use crate::serve::store::ReasonExample;

/// The text of one rejected row on the check, for `reason` (a [`ReasonKind`] name).
///
/// [`ReasonKind`]: crate::leads::lead::ReasonKind
pub fn explain(lang: Lang, reason: &str, example: &ReasonExample) -> String {
    match lang {
        Lang::En => example.text.clone(),
        Lang::Zh => zh(reason, &example.plate, &example.vin),
    }
}

const FILL_CITY: &str = "请在名单的“投保城市”列填写，或上传时选择默认城市。";

fn zh(reason: &str, plate_written: &str, vin_written: &str) -> String {
    let plate = normalise_plate(plate_written);
    let vin = normalise_vin(vin_written);
    match reason {
        "plate_unsupported" => format!(
            "车牌“{plate}”是新能源或特殊车牌，续保接口只接受普通 7 位车牌：请在这一行补上车架号和发动机号。"
        ),
        "plate_invalid" => plate_fault(&plate),
        "vin_invalid" => vin_fault(&vin),
        "vin_without_engine" => format!("车架号“{vin}”没有发动机号：按车架号续保还需要发动机号，请补上。"),
        "engine_without_vin" => {
            "这一行有发动机号，但没有车架号：按发动机号续保还需要车架号，请补上。".to_string()
        }
        "no_vehicle" => {
            "这一行既没有车牌号，也没有车架号和发动机号：请补上车牌号，或车架号和发动机号。".to_string()
        }
        "city_unknown" => {
            "这一行的投保城市不是壁虎支持的城市：请写城市编号（1–23）或城市名，例如 北京、广州。".to_string()
        }
        "no_city" if !plate.is_empty() => {
            format!("这一行没有填写投保城市，车牌“{plate}”也推断不出城市：{FILL_CITY}")
        }
        "no_city" => format!("这一行没有填写投保城市，也没有车牌可以推断：{FILL_CITY}"),
        "ragged_row" => {
            "这一行的列数与表头不同：检查是否多了或少了逗号（单元格里的逗号需要加引号）。".to_string()
        }
        "undecodable" => {
            "这一行有无法识别的字符：请在 Excel 中另存为 .xlsx 或“CSV UTF-8”后重新上传。".to_string()
        }
        "field_too_long" => "这一行有一个单元格太长：检查是否把很多内容粘贴进了一个单元格。".to_string(),
        _ => "这一行无法发送：请核对这一行的车牌号、车架号、发动机号和投保城市。".to_string(),
    }
}

/// What is wrong with an ordinary plate that is not one, by the rules of
/// `leads::lead::check_plate` in their order.
fn plate_fault(plate: &str) -> String {
    let chars: Vec<char> = plate.chars().collect();
    let Some(&first) = chars.first() else {
        return "车牌号是空的：请填写车牌号，或车架号和发动机号。".to_string();
    };
    if !is_province(first) {
        return format!(
            "车牌“{plate}”的第一个字应是省份简称（如 京、沪、粤），这里是“{first}”：请核对第一个字。"
        );
    }
    if chars.len() != 7 {
        return format!(
            "车牌“{plate}”有 {} 位，普通车牌是 7 位（省份简称、1 个字母、5 位字母或数字）：请检查是否少写或多写了一位。",
            chars.len()
        );
    }
    if !is_plate_letter(chars[1]) {
        return format!(
            "车牌“{plate}”的第 2 位应是字母（不用 I 和 O），这里是“{}”：请核对。",
            chars[1]
        );
    }
    if let Some(&bad) = chars[2..].iter().find(|c| !is_serial_char(**c)) {
        let hint = match bad {
            'I' => "（车牌用数字 1，不用字母 I）",
            'O' => "（车牌用数字 0，不用字母 O）",
            _ => "",
        };
        return format!(
            "车牌“{plate}”的后 5 位只能是字母或数字（不用 I 和 O），这里有“{bad}”{hint}：请核对。"
        );
    }
    format!("车牌“{plate}”格式不对：请核对车牌，首字是省份简称，共 7 位，不用字母 I 和 O。")
}

/// What is wrong with a VIN, by the rules of `leads::lead::check_vin` in their order.
fn vin_fault(vin: &str) -> String {
    let n_chars = vin.chars().count();
    if n_chars != 17 {
        return format!("车架号“{vin}”有 {n_chars} 位，车架号是 17 位：请检查是否少写或多写了一位。");
    }
    if let Some(bad) = vin.chars().find(|c| matches!(c, 'I' | 'O' | 'Q')) {
        return format!(
            "车架号“{vin}”里有字母“{bad}”，车架号从不用这个字母（多半是把 1 或 0 打成了字母）：请核对。"
        );
    }
    if let Some(bad) = vin.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return format!("车架号“{vin}”里有“{bad}”，车架号只有字母和数字：请核对。");
    }
    format!("车架号“{vin}”不对：车架号是 17 位字母或数字（不含 I、O、Q），请核对。")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leads::lead::{RawLead, ReasonKind, validate};

    fn example(plate: &str, vin: &str, text: &str) -> ReasonExample {
        ReasonExample {
            row: 2,
            plate: plate.to_string(),
            vin: vin.to_string(),
            text: text.to_string(),
        }
    }

    /// The row's kind and the CLI's sentence, as the check records them.
    fn rejected(plate: &str, vin: &str, engine: &str, city: &str) -> Vec<(ReasonKind, String)> {
        let raw = RawLead {
            plate,
            vin,
            engine,
            city,
        };
        let rejection = validate(&raw, None).expect_err("the row is rejected");
        rejection
            .reasons
            .into_iter()
            .map(|reason| (reason.kind, reason.text))
            .collect()
    }

    #[test]
    fn each_invalid_row_of_the_sample_reads_in_chinese_with_its_own_value() {
        let zh = |plate: &str, vin: &str, engine: &str, city: &str| -> Vec<String> {
            rejected(plate, vin, engine, city)
                .into_iter()
                .map(|(kind, text)| explain(Lang::Zh, kind.as_str(), &example(plate, vin, &text)))
                .collect()
        };
        assert_eq!(
            zh("京A1234", "", "", ""),
            [
                "车牌“京A1234”有 6 位，普通车牌是 7 位（省份简称、1 个字母、5 位字母或数字）：请检查是否少写或多写了一位。"
            ]
        );
        assert_eq!(
            zh("京AI2345", "", "", ""),
            [
                "车牌“京AI2345”的后 5 位只能是字母或数字（不用 I 和 O），这里有“I”（车牌用数字 1，不用字母 I）：请核对。"
            ]
        );
        assert_eq!(
            zh("粤BF23456", "", "", "")[0],
            "车牌“粤BF23456”是新能源或特殊车牌，续保接口只接受普通 7 位车牌：请在这一行补上车架号和发动机号。"
        );
        assert_eq!(
            zh("", "LS4ASE2A2GJ13702", "2192209", "1"),
            ["车架号“LS4ASE2A2GJ13702”有 16 位，车架号是 17 位：请检查是否少写或多写了一位。"]
        );
        let nothing = zh("", "", "", "");
        assert_eq!(nothing.len(), 2, "{nothing:?}");
        assert!(nothing[0].starts_with("这一行既没有车牌号"), "{nothing:?}");
        assert!(
            nothing[1].starts_with("这一行没有填写投保城市，也没有车牌"),
            "{nothing:?}"
        );
    }

    #[test]
    fn plates_and_vins_say_which_rule_they_break() {
        assert!(plate_fault("AA12345").contains("第一个字应是省份简称"));
        assert!(plate_fault("京112345").contains("第 2 位应是字母"));
        assert!(plate_fault("京A1234O").contains("用数字 0，不用字母 O"));
        assert!(plate_fault("京A12#45").contains("这里有“#”：请核对"));
        assert!(plate_fault("").starts_with("车牌号是空的"));
        assert!(vin_fault("LSVAM4187C2I84321").contains("里有字母“I”"));
        assert!(vin_fault("LSVAM4187C2*84321").contains("里有“*”"));
        assert!(vin_fault("LSVAM4187C2184321").contains("17 位字母或数字"));
        let (kind, text) = rejected("", "LSVAM4187C2184321", "", "1").remove(0);
        assert_eq!(
            explain(Lang::Zh, kind.as_str(), &example("", "lsvam4187c2184321", &text)),
            "车架号“LSVAM4187C2184321”没有发动机号：按车架号续保还需要发动机号，请补上。",
            "the VIN as the check read it"
        );
    }

    #[test]
    fn english_is_the_clis_sentence_and_every_kind_has_chinese() {
        let row = example("京A1234", "", "plate 京A1234 has 6 characters; …");
        assert_eq!(explain(Lang::En, "plate_invalid", &row), row.text);
        for kind in crate::serve::pages::text::ALL_REASONS {
            let text = explain(Lang::Zh, kind.as_str(), &example("", "", "english"));
            assert!(
                text.starts_with("这一行") || text.starts_with("车"),
                "{kind:?}: {text}"
            );
            assert!(!text.contains("english"), "{kind:?}");
        }
        assert!(explain(Lang::Zh, "something_new", &row).contains("请核对这一行"));
    }
}
