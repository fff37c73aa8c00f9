//! The report as one self-contained HTML page, rendered from `templates/report.html` by
//! askama: the template is checked at compile time and every value is HTML-escaped unless
//! marked otherwise (nothing is). This module computes what the template cannot say simply:
//! the charts' geometry and colours, and the figures in the order the page shows them.

use askama::Template;

use super::LIST_LIMIT;
use super::compare::Comparison;
use super::model::Report;
use super::text::{guess_remark, percent, unfinished_remark};
use super::zh::Language;
use crate::results::outcome::Status;
use crate::results::output::ResultHeaders;

const RENEWED_COLOUR: &str = "#2e7d32";
const NOT_RENEWABLE_COLOUR: &str = "#f0a202";
const FAILED_COLOUR: &str = "#c62828";

/// The city chart: a label column, then bars scaled to the biggest city, one row each.
const CITY_LABEL_WIDTH: f64 = 130.0;
const CITY_BARS_WIDTH: f64 = 480.0;
const CITY_ROW_HEIGHT: f64 = 24.0;

fn status_colour(status: Status) -> &'static str {
    match status {
        Status::Renewed => RENEWED_COLOUR,
        Status::NotRenewable => NOT_RENEWABLE_COLOUR,
        Status::InvalidInput => "#7b1fa2",
        Status::InvalidParams => "#ab47bc",
        Status::Unauthorized => "#b71c1c",
        Status::VerificationFailed => "#d32f2f",
        Status::ServerError => "#e64a19",
        Status::TransportError => "#ff7043",
        _ => "#8d6e63",
    }
}

#[derive(Template)]
#[template(path = "report.html", whitespace = "minimize")]
struct Page<'a> {
    report: &'a Report,
    /// The labels' language (the figures, and what the files say, are the same in both).
    l: Language,
    title: String,
    rate: String,
    /// (key, label, value) of the figures at the top.
    figures: Vec<(&'static str, &'static str, String)>,
    /// The statuses with rows, as the outcome bar and its table show them.
    outcome_bar: Vec<StatusPart>,
    city_bars: Vec<CityBar>,
    city_chart_height: f64,
    city_legend: Vec<LegendItem>,
}

struct StatusPart {
    status: Status,
    /// The status for a person: the machine value in English, its description in Chinese.
    label: &'static str,
    rows: u64,
    share: String,
    colour: &'static str,
    x: String,
    width: String,
}

struct CityBar {
    /// `北京 (1)`, or `unknown` (the chart's key).
    label: String,
    /// As the chart shows it (`unknown` in the report's language).
    shown: String,
    rows: u64,
    y: String,
    text_y: String,
    total_x: String,
    parts: Vec<CityPart>,
}

struct CityPart {
    part: &'static str,
    name: &'static str,
    rows: u64,
    colour: &'static str,
    x: String,
    width: String,
}

struct LegendItem {
    name: &'static str,
    colour: &'static str,
    x: f64,
    y: f64,
    text_x: f64,
    text_y: f64,
}

// The template hands values over by reference.

fn plural(n: &u64) -> &'static str {
    super::text::plural(*n)
}

impl Report {
    /// The report as one self-contained HTML page: no script, no external font, image or
    /// style sheet; charts are inline SVG; every text from the files is escaped.
    pub fn to_html(&self) -> String {
        self.to_html_in(Language::English)
    }

    /// [`Report::to_html`] with its labels in `language`.
    pub fn to_html_in(&self, language: Language) -> String {
        Page::new(self, language)
            .render()
            .expect("the report page renders: every value is Display")
    }
}

impl<'a> Page<'a> {
    fn any_unfinished(&self) -> bool {
        self.report.files.iter().any(|file| file.unfinished.is_some())
    }

    fn headers_label(&self, headers: &ResultHeaders) -> &'static str {
        self.l.label(match headers {
            ResultHeaders::English => "English",
            ResultHeaders::Chinese => "中文",
        })
    }

    /// A status as a person reads it.
    fn status_label(&self, status: &Status) -> &'static str {
        if self.l.is_chinese() {
            status.zh_description()
        } else {
            status.as_str()
        }
    }

    /// A city's row label, `unknown` in the report's language.
    fn city_label(&self, city: &super::model::CityFigures) -> String {
        match city.city_id {
            Some(_) => city.label(),
            None => self.l.label("unknown").to_string(),
        }
    }

    fn listed_remark(&self, listed: usize, total: &u64) -> String {
        match ((listed as u64) < *total, self.l) {
            (false, _) => String::new(),
            (true, Language::English) => format!(" The first {listed} are listed."),
            (true, Language::Chinese) => format!("下面列出前 {listed} 行。"),
        }
    }

    fn changes_remark(&self, comparison: &Comparison) -> String {
        let shown = comparison.changed.len().min(LIST_LIMIT);
        self.listed_remark(shown, &(comparison.changed.len() as u64))
    }

    fn new(report: &'a Report, l: Language) -> Page<'a> {
        let title = match (report.files.as_slice(), l) {
            ([file], Language::English) => format!("Renewal report: {}", file.path),
            (files, Language::English) => format!("Renewal report: {} files", files.len()),
            ([file], Language::Chinese) => format!("续保报告：{}", file.path),
            (files, Language::Chinese) => format!("续保报告：{} 个文件", files.len()),
        };
        let rate = report.renewal_rate.map_or_else(|| "-".to_string(), percent);
        let figures = vec![
            ("rows", l.label("Rows"), report.rows.to_string()),
            (
                "vehicles",
                l.label("Distinct vehicles"),
                report.vehicles.to_string(),
            ),
            (
                "reached_api",
                l.label("Rows that reached the API"),
                report.reached_api.to_string(),
            ),
            (
                "renewal_rate",
                l.label("Renewal rate (renewed / reached the API)"),
                rate.clone(),
            ),
            ("retry", l.label("Rows to retry"), report.retry.rows.to_string()),
            (
                "attention",
                l.label("Rows needing attention"),
                report.attention.rows.to_string(),
            ),
        ];
        let mut x = 0.0;
        let outcome_bar = report
            .by_status
            .iter()
            .filter(|(_, figures)| figures.rows > 0)
            .map(|(&status, figures)| {
                let width = figures.share * 1000.0;
                let part = StatusPart {
                    status,
                    label: if l.is_chinese() {
                        status.zh_description()
                    } else {
                        status.as_str()
                    },
                    rows: figures.rows,
                    share: percent(figures.share),
                    colour: status_colour(status),
                    x: format!("{x:.2}"),
                    width: format!("{width:.2}"),
                };
                x += width;
                part
            })
            .collect();
        let (city_bars, city_chart_height, city_legend) = city_chart(report, l);
        Page {
            report,
            l,
            title,
            rate,
            figures,
            outcome_bar,
            city_bars,
            city_chart_height,
            city_legend,
        }
    }
}

fn city_chart(report: &Report, l: Language) -> (Vec<CityBar>, f64, Vec<LegendItem>) {
    let max = report
        .by_city
        .iter()
        .map(|city| city.rows)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let n = report.by_city.len() as f64;
    let bars = report
        .by_city
        .iter()
        .enumerate()
        .map(|(i, city)| {
            let y = i as f64 * CITY_ROW_HEIGHT + 4.0;
            let mut x = CITY_LABEL_WIDTH;
            let mut parts = Vec::new();
            for (part, name, rows, colour) in [
                ("renewed", "renewed", city.renewed, RENEWED_COLOUR),
                (
                    "not_renewable",
                    "not renewable",
                    city.not_renewable,
                    NOT_RENEWABLE_COLOUR,
                ),
                ("failed", "failed", city.failed, FAILED_COLOUR),
            ] {
                let width = rows as f64 / max * CITY_BARS_WIDTH;
                if rows > 0 {
                    parts.push(CityPart {
                        part,
                        name: l.label(name),
                        rows,
                        colour,
                        x: format!("{x:.2}"),
                        width: format!("{width:.2}"),
                    });
                }
                x += width;
            }
            CityBar {
                label: city.label(),
                shown: match city.city_id {
                    Some(_) => city.label(),
                    None => l.label("unknown").to_string(),
                },
                rows: city.rows,
                y: format!("{y:.1}"),
                text_y: format!("{:.1}", y + 13.0),
                total_x: format!("{:.2}", x + 6.0),
                parts,
            }
        })
        .collect();
    let legend_y = n * CITY_ROW_HEIGHT + 14.0;
    let legend = [
        ("renewed", RENEWED_COLOUR),
        ("not renewable", NOT_RENEWABLE_COLOUR),
        ("failed", FAILED_COLOUR),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, colour))| {
        let x = CITY_LABEL_WIDTH + i as f64 * 120.0;
        LegendItem {
            name: l.label(name),
            colour,
            x,
            y: legend_y,
            text_x: x + 16.0,
            text_y: legend_y + 10.5,
        }
    })
    .collect();
    (bars, n * CITY_ROW_HEIGHT + 34.0, legend)
}
