//! An uploaded lead list before it is a job: its own folder under `uploads/`, the name its
//! input keeps there, and the check it passes first (the dry run, `check.csv`), summed up
//! as the preview the job's page shows.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::leads::city::City;
use crate::leads::input::{InputEncoding, InputOptions};
use crate::results::output::{OutputStyle, OutputTarget};
use crate::run::config::Existing;
use crate::run::dry_run::{self, DryRunConfig, DryRunSummary, ReuseCheck};
use crate::serve::ServeConfig;
use crate::serve::job_error::JobError;
use crate::serve::store::{Preview, ReasonCount, ReasonExample};

/// A file uploaded to the upload folder, not yet a job.
#[derive(Debug)]
pub struct Upload {
    /// Its own folder under `uploads/`, removed if it does not become a job.
    pub dir: PathBuf,
    pub file_name: String,
    /// `input.csv` or `input.xlsx`, inside `dir`.
    pub input_name: String,
    pub city: Option<City>,
    pub start: bool,
    /// Reuse answers from the history at most this old (the upload's `reuse_within`, else
    /// the config's); `None`: ask Bihu for every vehicle.
    pub reuse_within: Option<Duration>,
    pub created_by: String,
}

/// Checks an upload as `bihu-renew run --dry-run` would (its `check.csv` beside it), and
/// what the job's page shows of it: the reasons with their first rows, the requests, the
/// time at the shared rate. The CLI's message names the file as the clerk knows it.
pub(super) async fn check(
    config: &ServeConfig,
    upload: &Upload,
    input: PathBuf,
) -> Result<(DryRunSummary, Preview), JobError> {
    let check = DryRunConfig {
        input: input.clone(),
        output: OutputTarget::File(upload.dir.join("check.csv")),
        existing: Existing::Overwrite,
        input_options: input_options(upload.city),
        output_style: OutputStyle::default(),
        // The preview says how many rows the history would answer now.
        reuse: upload.reuse_within.map(|within| ReuseCheck {
            history: config.history_path(),
            agent_id: config.settings.agent.agent_id.clone(),
            within,
        }),
    };
    let summary = tokio::task::spawn_blocking(move || dry_run::check(&check))
        .await
        .map_err(|e| JobError::Io(format!("the check failed: {e}")))?
        // The CLI's message, naming the file as the clerk knows it, not where it lies here.
        .map_err(|e| {
            JobError::Unreadable(
                e.to_string()
                    .replace(&*input.to_string_lossy(), &upload.file_name),
            )
        })?;
    let preview = preview(&summary, config.settings.rate);
    Ok((summary, preview))
}

/// How a job's list is read: as the CLI reads it by default, with the job's city.
pub(super) fn input_options(city: Option<City>) -> InputOptions {
    InputOptions {
        encoding: InputEncoding::Auto,
        sheet: None,
        default_city: city,
        limits: Default::default(),
    }
}

fn preview(summary: &DryRunSummary, rate: NonZeroU32) -> Preview {
    let mut reasons: Vec<ReasonCount> = summary
        .by_reason
        .iter()
        .map(|(kind, rows)| ReasonCount {
            reason: kind.as_str().to_string(),
            rows: *rows,
            examples: summary
                .examples
                .get(kind)
                .into_iter()
                .flatten()
                .map(|example| ReasonExample {
                    row: example.row,
                    plate: example.plate.clone(),
                    vin: example.vin.clone(),
                    text: example.text.clone(),
                })
                .collect(),
        })
        .collect();
    reasons.sort_by(|a, b| b.rows.cmp(&a.rows).then_with(|| a.reason.cmp(&b.reason)));
    reasons.truncate(5);
    Preview {
        rows: summary.rows,
        ready: summary.ready,
        invalid: summary.invalid,
        top_reasons: reasons,
        duplicates: summary.duplicates,
        requests_needed: summary.requests_needed,
        reused: summary.reused,
        requests_saved: summary.requests_saved,
        estimated_seconds: summary.requests_needed as f64 / f64::from(rate.get()),
    }
}

/// A name for a job's input inside its folder, from the uploaded file's name.
/// The reader goes by the extension, so a spreadsheet keeps its own.
pub fn input_name(file_name: &str) -> String {
    let path = Path::new(file_name);
    match path.extension() {
        Some(extension) if crate::leads::input::is_spreadsheet(path) => {
            format!("input.{}", extension.to_string_lossy().to_ascii_lowercase())
        }
        _ => "input.csv".to_string(),
    }
}
