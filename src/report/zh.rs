//! The HTML report's labels in Chinese, for the service's pages (`report.html?lang=zh`): the
//! template says each label in English, as the CLI's `report --html` shows it, and asks
//! [`Language::label`] for it; sentences with figures in them are written out in both
//! languages in the template itself. What the files and the program say (reasons, messages,
//! commands, notes) is shown as it is, in either language.

/// The language of an HTML report's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// The CLI's report (`report --html`).
    #[default]
    English,
    /// The report a clerk's page embeds.
    Chinese,
}

impl Language {
    /// `label` (English, as the template writes it) in this language.
    pub fn label(self, label: &'static str) -> &'static str {
        match self {
            Language::English => label,
            Language::Chinese => match LABELS.iter().find(|(en, _)| *en == label) {
                Some((_, zh)) => zh,
                None => {
                    debug_assert!(false, "no Chinese for {label:?}");
                    label
                }
            },
        }
    }

    pub fn is_chinese(self) -> bool {
        self == Language::Chinese
    }
}

/// (English, Chinese).
pub(super) const LABELS: &[(&str, &str)] = &[
    ("File", "文件"),
    ("Result columns", "结果列"),
    ("Rows", "行数"),
    ("Lines left out", "略过的行"),
    ("English", "英文"),
    ("中文", "中文"),
    ("Distinct vehicles", "不同车辆"),
    ("Rows that reached the API", "到达接口的行"),
    (
        "Renewal rate (renewed / reached the API)",
        "续保率（已续保 / 到达接口）",
    ),
    ("Rows to retry", "可重试的行"),
    ("Rows needing attention", "需要处理的行"),
    ("Outcomes", "结果"),
    ("Rows by outcome", "各结果的行数"),
    ("Status", "状态"),
    ("Share", "占比"),
    ("By city", "按城市"),
    ("Rows by city and outcome", "各城市各结果的行数"),
    ("City", "城市"),
    ("Renewed", "已续保"),
    ("Not renewable", "不可续保"),
    ("Failed", "失败"),
    ("renewed", "已续保"),
    ("not renewable", "不可续保"),
    ("failed", "失败"),
    ("unknown", "未知"),
    (
        "Most frequent reasons (rows not renewed)",
        "最常见的原因（未续保的行）",
    ),
    ("Reason", "原因"),
    (
        "A rejected row may give several reasons.",
        "一行被拒可能有几个原因。",
    ),
    ("Attempts", "请求次数"),
    ("To retry", "重试"),
    ("Changes since the earlier run", "与上次运行相比的变化"),
    ("Change", "变化"),
    ("Vehicles", "车辆数"),
    ("Vehicle", "车辆"),
    ("Before", "上次"),
    ("Now", "这次"),
    ("Row", "行号"),
    ("Message", "说明"),
    ("Notes", "备注"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_the_template_asks_for_has_its_chinese() {
        let template = include_str!("../../templates/report.html");
        let mut n_labels = 0;
        for piece in template.split("l.label(\"").skip(1) {
            let label = piece.split('"').next().unwrap();
            assert!(
                LABELS.iter().any(|(en, _)| *en == label),
                "the report asks for {label:?}, which has no Chinese"
            );
            n_labels += 1;
        }
        assert!(n_labels > 25, "the template asks for {n_labels} labels");
        let mut seen = std::collections::HashSet::new();
        for (en, zh) in LABELS {
            assert!(seen.insert(en), "{en} twice");
            assert!(!zh.is_empty());
        }
        assert_eq!(Language::English.label("Outcomes"), "Outcomes");
        assert_eq!(Language::Chinese.label("Outcomes"), "结果");
    }
}
