//! What the page templates show, computed from the API's [`JobView`] (and the stored job for
//! its times): labels in the page's language, figures as text, and which parts apply.

use std::time::Duration;

use askama::Template;
use axum::http::StatusCode;

use crate::leads::city::CITIES;
use crate::results::history::format_duration;
use crate::results::outcome::Status;
use crate::serve::api::JobView;
use crate::serve::pages::abort_kind::AbortKind;
use crate::serve::pages::rejected_row;
use crate::serve::pages::text::Lang;
use crate::serve::store::{JobRecord, JobState};

/// The frame of every page: language, who is signed in, the sign-out form's token.
pub struct Chrome {
    pub lang: Lang,
    /// The signed-in user (None when the service is open, or on the sign-in page).
    pub user: Option<String>,
    /// The session's CSRF token for the forms (empty without a session).
    pub csrf: String,
    /// No users are configured: nobody signs in or out.
    pub open: bool,
    /// Signed in with the cookie (so there is a session to end).
    pub signed_in_by_session: bool,
    pub other_lang_href: String,
}

impl Chrome {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
}

/// A line at the top of a page.
pub struct Notice {
    /// `info` or `error` (the CSS class).
    pub kind: &'static str,
    pub text: String,
}

impl Notice {
    pub fn info(text: impl Into<String>) -> Notice {
        Notice {
            kind: "info",
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Notice {
        Notice {
            kind: "error",
            text: text.into(),
        }
    }
}

/// An error for a clerk: what happened and what to do, and the program's own words.
pub struct ErrorView {
    pub text: String,
    pub details: Option<String>,
    /// The details start folded: they speak to whoever runs the CLI (its flags), and the
    /// text already says what a clerk can do.
    pub folded: bool,
}

impl ErrorView {
    pub fn new(lang: Lang, key: &str, details: Option<String>) -> ErrorView {
        ErrorView {
            text: lang.t(key).to_string(),
            details,
            // An unreadable file's message suggests `--input-encoding`, which a clerk on the
            // page cannot pass: "save it again from Excel" is the clerk's way.
            folded: key == "error.unreadable",
        }
    }

    pub fn text(text: String, details: Option<String>) -> ErrorView {
        ErrorView {
            text,
            details,
            folded: false,
        }
    }

    /// An API refusal in a clerk's words, with the API's message (the CLI's) as details.
    pub fn from_api(lang: Lang, status: StatusCode, message: String) -> ErrorView {
        let key = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "error.too_large",
            StatusCode::NOT_FOUND => "error.not_found",
            StatusCode::SERVICE_UNAVAILABLE => "error.unavailable",
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => {
                if message.contains("has no vehicle column") {
                    "error.no_vehicle"
                } else if message.contains("is empty") {
                    "error.empty"
                } else if message.contains("has no field named file") {
                    "error.no_file"
                } else if message.contains("is not a Bihu city") {
                    "reason.city_unknown"
                } else {
                    "error.unreadable"
                }
            }
            StatusCode::CONFLICT => {
                return ErrorView::text(lang.t("error.conflict").to_string(), Some(message));
            }
            _ => "error.other",
        };
        ErrorView::new(lang, key, Some(message))
    }
}

#[derive(Template)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub c: Chrome,
    pub notice: Option<Notice>,
    pub name: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "pages/error.html")]
pub struct ErrorPage {
    pub c: Chrome,
    pub error: ErrorView,
}

/// One city in the upload form's select.
pub struct CityOption {
    pub id: u8,
    pub label: String,
}

/// One choice of the upload form's reuse select.
pub struct ReuseOption {
    /// As the API reads it: `7d`, or `off`.
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The reuse windows a clerk can pick, the service's default among them (and selected).
fn reuse_options(lang: Lang, default: Option<Duration>) -> Vec<ReuseOption> {
    const DAY: u64 = 86_400;
    let mut windows: Vec<Duration> = [1, 3, 7, 14, 30]
        .map(|days| Duration::from_secs(days * DAY))
        .to_vec();
    if let Some(default) = default
        && !windows.contains(&default)
    {
        windows.push(default);
        windows.sort();
    }
    let default_mark = lang.t("upload.reuse_default");
    let off = ReuseOption {
        value: "off".to_string(),
        label: format!(
            "{}{}",
            lang.t("upload.reuse_off"),
            if default.is_none() { default_mark } else { "" }
        ),
        selected: default.is_none(),
    };
    std::iter::once(off)
        .chain(windows.into_iter().map(|window| {
            let selected = Some(window) == default;
            ReuseOption {
                value: format_duration(window),
                label: format!(
                    "{}{}",
                    lang.fill("upload.reuse_within", &[("d", window_text(lang, window))]),
                    if selected { default_mark } else { "" }
                ),
                selected,
            }
        }))
        .collect()
}

/// A reuse window as a clerk says it: `7 天`, `12 hours`; minutes or seconds when it is not
/// whole hours.
fn window_text(lang: Lang, window: Duration) -> String {
    let seconds = window.as_secs();
    let (n, one, many) = if seconds.is_multiple_of(86_400) {
        (seconds / 86_400, "time.one_day", "time.days")
    } else if seconds.is_multiple_of(3600) {
        (seconds / 3600, "time.one_hour", "time.hours")
    } else if seconds.is_multiple_of(60) {
        (seconds / 60, "time.one_minute", "time.minutes")
    } else {
        (seconds, "time.seconds", "time.seconds")
    };
    if n == 1 {
        lang.fill(one, &[("n", "1".to_string())])
    } else {
        lang.fill(many, &[("n", n.to_string())])
    }
}

/// One job in the jobs list.
pub struct JobRow {
    pub id: i64,
    pub file_name: String,
    pub created_by: String,
    pub when: String,
    pub state: &'static str,
    pub state_label: &'static str,
    pub rows: u64,
    pub rows_done: u64,
    pub counts: Counts,
}

/// The four counts a clerk looks at.
pub struct Counts {
    pub renewed: u64,
    pub not_renewable: u64,
    /// Transient outcomes, worth a retry.
    pub failed: u64,
    /// Rejected in the list, or refused by Bihu as invalid parameters.
    pub invalid: u64,
}

impl Counts {
    fn of(job: &JobRecord) -> Counts {
        let n = |status: Status| job.counts.get(status.as_str()).copied().unwrap_or(0);
        let failed = Status::ALL.iter().filter(|s| !s.is_final()).map(|s| n(*s)).sum();
        let mut invalid = n(Status::InvalidInput) + n(Status::InvalidParams);
        if job.state == JobState::Validated
            && let Some(preview) = &job.preview
        {
            invalid = invalid.max(preview.invalid);
        }
        Counts {
            renewed: n(Status::Renewed),
            not_renewable: n(Status::NotRenewable),
            failed,
            invalid,
        }
    }
}

#[derive(Template)]
#[template(path = "pages/jobs.html")]
pub struct JobsPage {
    pub c: Chrome,
    pub error: Option<ErrorView>,
    pub cities: Vec<CityOption>,
    pub reuse: Vec<ReuseOption>,
    pub jobs: Vec<JobRow>,
}

impl JobsPage {
    /// `reuse_default`: the config's `reuse_within`, which the form offers first.
    pub fn new(
        c: Chrome,
        jobs: &[JobRecord],
        reuse_default: Option<Duration>,
        error: Option<ErrorView>,
    ) -> JobsPage {
        let lang = c.lang;
        let reuse = reuse_options(lang, reuse_default);
        let cities = CITIES
            .iter()
            .map(|city| CityOption {
                id: city.id,
                label: match lang {
                    Lang::Zh => format!("{} ({})", city.name, city.id),
                    Lang::En => format!("{} {} ({})", city.english, city.name, city.id),
                },
            })
            .collect();
        let jobs = jobs
            .iter()
            .map(|job| JobRow {
                id: job.id,
                file_name: job.file_name.clone(),
                created_by: job.created_by.clone(),
                when: beijing_time(job.created_at),
                state: job.state.as_str(),
                state_label: lang.state(job.state),
                rows: job.rows,
                rows_done: job.rows_done,
                counts: Counts::of(job),
            })
            .collect();
        JobsPage {
            c,
            error,
            cities,
            reuse,
            jobs,
        }
    }
}

/// The check of an upload, as the page shows it.
pub struct CheckView {
    pub rows: u64,
    pub ready: u64,
    pub invalid: u64,
    pub duplicates: u64,
    pub requests: u64,
    /// "Reusing answers of the last 7 days: N rows take an answer from the history, M requests
    /// fewer", or that the job reuses none.
    pub reused_text: String,
    pub reasons: Vec<ReasonView>,
    /// "Start: N requests, about M minutes at the agent's rate".
    pub start_label: String,
}

pub struct ReasonView {
    pub reason: String,
    pub label: &'static str,
    pub fix: &'static str,
    pub rows: u64,
    pub examples: Vec<ExampleView>,
}

pub struct ExampleView {
    pub row: u64,
    /// The plate as written, else the VIN as written.
    pub written: String,
    pub text: String,
}

/// One status's count in the progress table (zeros hidden until they change).
pub struct StatusCount {
    pub status: &'static str,
    pub label: &'static str,
    pub n: u64,
}

pub struct ProgressView {
    pub done: u64,
    pub total: u64,
    pub rows_text: String,
    pub rate_text: String,
    pub eta_text: String,
    /// Rows per second so far, for the script to start from.
    pub rate: f64,
    pub counts: Vec<StatusCount>,
    /// The texts the script fills in as events come.
    pub rows_format: &'static str,
    pub rate_format: &'static str,
    pub seconds_format: &'static str,
    pub minutes_format: &'static str,
}

/// Why an aborted job stopped, in a clerk's words and in the CLI's.
pub struct AbortView {
    /// Blames the agent's credentials only when they were refused.
    pub title: &'static str,
    pub text: &'static str,
    pub kept: String,
    pub message: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/job.html")]
pub struct JobPage {
    pub c: Chrome,
    pub error: Option<ErrorView>,
    pub job: JobView,
    pub title: String,
    pub state_label: &'static str,
    pub when: String,
    pub finished: Option<String>,
    pub city: Option<String>,
    pub check: Option<CheckView>,
    pub progress: ProgressView,
    /// Queued or running: the page follows the event stream.
    pub live: bool,
    /// Done, cancelled or aborted.
    pub settled: bool,
    pub can_start: bool,
    /// Rows a retry would send again (transient outcomes and rows never reached).
    pub retry_rows: u64,
    pub retry_label: String,
    /// `/api/jobs/{id}/results.xlsx`, when the job's JSON says the workbook exists.
    pub xlsx_link: Option<String>,
    pub aborted: Option<AbortView>,
    /// A done job's note (such as "nothing to do").
    pub note: Option<String>,
    pub done_text: String,
    pub cancelled_text: String,
}

impl JobPage {
    pub fn new(c: Chrome, job: &JobRecord, view: JobView, error: Option<ErrorView>, now: i64) -> JobPage {
        let lang = c.lang;
        let check = job.preview.as_ref().map(|preview| CheckView {
            rows: preview.rows,
            ready: preview.ready,
            invalid: preview.invalid,
            duplicates: preview.duplicates,
            requests: preview.requests_needed,
            reused_text: match job.reuse_within {
                Some(secs) => lang.fill(
                    "check.reused",
                    &[
                        ("d", window_text(lang, Duration::from_secs(secs))),
                        ("n", preview.reused.to_string()),
                        ("m", preview.requests_saved.to_string()),
                    ],
                ),
                None => lang.t("check.reuse_off").to_string(),
            },
            reasons: preview
                .top_reasons
                .iter()
                .map(|reason| {
                    let (label, fix) = lang.reason(&reason.reason);
                    ReasonView {
                        reason: reason.reason.clone(),
                        label,
                        fix,
                        rows: reason.rows,
                        examples: reason
                            .examples
                            .iter()
                            .map(|example| ExampleView {
                                row: example.row,
                                written: if example.plate.is_empty() {
                                    example.vin.clone()
                                } else {
                                    example.plate.clone()
                                },
                                text: rejected_row::explain(lang, &reason.reason, example),
                            })
                            .collect(),
                    }
                })
                .collect(),
            start_label: lang.fill(
                if preview.requests_needed == 1 {
                    "check.start_one"
                } else {
                    "check.start"
                },
                &[
                    ("n", preview.requests_needed.to_string()),
                    ("m", minutes(lang, preview.estimated_seconds)),
                ],
            ),
        });
        let live = matches!(job.state, JobState::Queued | JobState::Running);
        let settled = matches!(
            job.state,
            JobState::Done | JobState::Cancelled | JobState::Aborted
        );
        let n = |status: Status| job.counts.get(status.as_str()).copied().unwrap_or(0);
        let transient: u64 = Status::ALL.iter().filter(|s| !s.is_final()).map(|s| n(*s)).sum();
        let retry_rows = transient + job.rows.saturating_sub(job.rows_done);
        let elapsed = job.started_at.map(|at| (now - at).max(0)).unwrap_or(0);
        let rate = if job.state == JobState::Running && elapsed > 0 {
            job.rows_done as f64 / elapsed as f64
        } else {
            0.0
        };
        let remaining = job.rows.saturating_sub(job.rows_done);
        let progress = ProgressView {
            done: job.rows_done,
            total: job.rows,
            rows_text: rows_text(lang, job.rows_done, job.rows),
            rate_text: if rate > 0.0 {
                lang.fill("progress.rate_value", &[("r", format!("{rate:.1}"))])
            } else {
                lang.t("progress.unknown").to_string()
            },
            eta_text: if rate > 0.0 {
                duration(lang, remaining as f64 / rate)
            } else {
                lang.t("progress.unknown").to_string()
            },
            rate,
            counts: Status::ALL
                .iter()
                .map(|status| StatusCount {
                    status: status.as_str(),
                    label: lang.status(*status),
                    n: n(*status),
                })
                .collect(),
            rows_format: lang.t("progress.rows"),
            rate_format: lang.t("progress.rate_value"),
            seconds_format: lang.t("time.seconds"),
            minutes_format: lang.t("time.minutes"),
        };
        let aborted = (job.state == JobState::Aborted).then(|| {
            let kind = AbortKind::of(job.message.as_deref().unwrap_or(""));
            AbortView {
                title: lang.t(kind.title_key()),
                text: lang.t(kind.text_key()),
                kept: lang.fill("aborted.rows_kept", &[("done", job.rows_done.to_string())]),
                message: job.message.clone(),
            }
        });
        let xlsx_link = serde_json::to_value(&view)
            .ok()
            .and_then(|json| json["links"]["results_xlsx"].as_str().map(str::to_string));
        JobPage {
            title: lang.fill("job.title", &[("id", job.id.to_string())]),
            state_label: lang.state(job.state),
            when: beijing_time(job.created_at),
            finished: job.finished_at.map(beijing_time),
            city: job
                .city_code
                .and_then(crate::leads::city::City::by_id)
                .map(|city| match lang {
                    Lang::Zh => city.label(),
                    Lang::En => format!("{} {}", city.english, city.label()),
                }),
            check,
            progress,
            live,
            settled,
            can_start: job.state == JobState::Validated,
            retry_rows,
            retry_label: lang.fill("result.retry", &[("k", retry_rows.to_string())]),
            xlsx_link,
            aborted,
            note: if job.state == JobState::Done {
                job.message.clone()
            } else {
                None
            },
            done_text: lang.fill("result.done_note", &[("total", job.rows.to_string())]),
            cancelled_text: lang.fill(
                "result.cancelled",
                &[
                    ("done", job.rows_done.to_string()),
                    ("total", job.rows.to_string()),
                ],
            ),
            c,
            error,
            job: view,
        }
    }
}

fn rows_text(lang: Lang, done: u64, total: u64) -> String {
    lang.fill(
        "progress.rows",
        &[("done", done.to_string()), ("total", total.to_string())],
    )
}

/// A run's expected length, in whole minutes ("about 3 minutes"; "less than a minute" below
/// one, without an "about" before it).
fn minutes(lang: Lang, seconds: f64) -> String {
    if seconds < 60.0 {
        lang.t("time.under_minute").to_string()
    } else {
        let n = (seconds / 60.0).round() as u64;
        if n <= 1 {
            lang.t("time.about_one_minute").to_string()
        } else {
            lang.fill("time.about_minutes", &[("n", n.to_string())])
        }
    }
}

/// A time left: seconds below two minutes, else minutes.
fn duration(lang: Lang, seconds: f64) -> String {
    if seconds < 120.0 {
        lang.fill("time.seconds", &[("n", format!("{}", seconds.ceil() as u64))])
    } else {
        lang.fill(
            "time.minutes",
            &[("n", format!("{}", (seconds / 60.0).ceil() as u64))],
        )
    }
}

/// Unix seconds as Beijing time (UTC+8, no daylight saving): `2026-12-02 07:05`.
pub fn beijing_time(unix: i64) -> String {
    let local = unix + 8 * 3600;
    let (year, month, day) = crate::results::history::civil_from_days(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time_is_utc_plus_eight() {
        assert_eq!(beijing_time(0), "1970-01-01 08:00");
        assert_eq!(beijing_time(1_796_166_245), "2026-12-02 07:04");
    }

    #[test]
    fn the_reuse_choice_offers_the_configured_default_selected() {
        let day = |n: u64| Duration::from_secs(n * 86_400);
        let values = |options: &[ReuseOption]| options.iter().map(|o| o.value.clone()).collect::<Vec<_>>();
        let week = reuse_options(Lang::Zh, Some(day(7)));
        assert_eq!(values(&week), ["off", "1d", "3d", "7d", "14d", "30d"]);
        let selected: Vec<&ReuseOption> = week.iter().filter(|o| o.selected).collect();
        assert_eq!(selected.len(), 1);
        assert_eq!(selected[0].label, "7 天内查过的车辆用上次的结果（默认）");
        let off = reuse_options(Lang::En, None);
        assert!(off[0].selected);
        assert_eq!(off[0].label, "Off: ask Bihu for every vehicle (default)");
        let twelve_hours = reuse_options(Lang::En, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(twelve_hours[1].value, "12h", "sorted in, before a day");
        assert!(twelve_hours[1].selected);
        assert_eq!(
            twelve_hours[1].label,
            "Vehicles answered in the last 12 hours take that answer (default)"
        );
        assert_eq!(window_text(Lang::En, day(1)), "1 day");
        assert_eq!(window_text(Lang::Zh, Duration::from_secs(90 * 60)), "90 分钟");
    }

    #[test]
    fn times_read_as_a_clerk_says_them() {
        assert_eq!(minutes(Lang::Zh, 3.3), "不到 1 分钟");
        assert_eq!(minutes(Lang::En, 80.0), "about 1 minute");
        assert_eq!(minutes(Lang::En, 600.0), "about 10 minutes");
        assert_eq!(minutes(Lang::Zh, 600.0), "约 10 分钟");
        assert_eq!(duration(Lang::Zh, 4.2), "5 秒");
        assert_eq!(duration(Lang::En, 600.0), "10 minutes");
    }
}
