//! An uploaded lead list before it is a job: its own folder under `uploads/` ([`Uploads`],
//! [`UploadDir`]), the name its input keeps there, and the check it passes first (the dry
//! run, `check.csv`), summed up as the preview the job's page shows.
//!
//! An upload holds customers' names and phones, so its folder lives exactly as long as the
//! request or the check that holds it: dropped, for whatever reason, the folder goes. What a
//! crash or a kill leaves is swept at start and by retention: any folder nobody holds.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::leads::city::City;
use crate::leads::input::{InputEncoding, InputError, InputOptions};
use crate::results::output::{OutputStyle, OutputTarget};
use crate::run::config::Existing;
use crate::run::dry_run::{self, DryRunConfig, DryRunSummary, ReuseCheck};
use crate::serve::ServeConfig;
use crate::serve::job_error::JobError;
use crate::serve::store::{Preview, ReasonCount, ReasonExample};

/// The `uploads/` folder, and the folders in it that a request or a check holds now.
#[derive(Debug, Clone)]
pub struct Uploads {
    root: PathBuf,
    held: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Uploads {
    pub fn new(root: PathBuf) -> Uploads {
        Uploads {
            root,
            held: Arc::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new folder for one upload, held until its [`UploadDir`] is dropped. It is held
    /// before it exists, so that [`Uploads::sweep`] never sees it unheld.
    pub fn create(&self) -> std::io::Result<UploadDir> {
        let path = self.root.join(hex::encode(rand::random::<[u8; 12]>()));
        self.held().insert(path.clone());
        let dir = UploadDir {
            path,
            held: self.held.clone(),
        };
        std::fs::create_dir_all(&dir.path)?;
        Ok(dir)
    }

    /// Removes everything under `uploads/` that no request or check holds: what a crash,
    /// a kill or a failed removal left behind. Returns how many entries it removed.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let mut n_removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if self.held().contains(&path) {
                continue;
            }
            let removed = match entry.file_type() {
                Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
            match removed {
                Ok(()) => n_removed += 1,
                Err(error) => tracing::warn!(%error, "cannot remove a stale upload"),
            }
        }
        n_removed
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One upload's folder under `uploads/`. Dropped, it is removed (once moved into a job's
/// folder it is gone already) and no longer held.
#[derive(Debug)]
pub struct UploadDir {
    path: PathBuf,
    held: Arc<Mutex<HashSet<PathBuf>>>,
}

impl UploadDir {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UploadDir {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            // The sweep takes it, now that it is not held.
            Err(error) => tracing::warn!(%error, "cannot remove an upload's folder"),
        }
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.path);
    }
}

/// A file uploaded to the upload folder, not yet a job.
#[derive(Debug)]
pub struct Upload {
    /// Its own folder under `uploads/`, removed when dropped unless it became a job's.
    pub dir: UploadDir,
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
        output: OutputTarget::File(upload.dir.path().join("check.csv")),
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
        .map_err(|e| JobError::Unreadable(unreadable(&e, &input, &upload.file_name)))?;
    let preview = preview(&summary, config.settings.rate);
    Ok((summary, preview))
}

/// What to do with a list whose encoding is not one way throughout, at the service.
const RESAVE: &str =
    "Open it in Excel and save it again as \"CSV UTF-8\" or as an .xlsx workbook, then upload that";

/// The CLI's message for a list that cannot be read, naming the file as the clerk knows it
/// (not where it lies here); where the CLI's fix is a flag, which the service has not, the
/// fix a clerk can make instead.
fn unreadable(error: &anyhow::Error, input: &Path, file_name: &str) -> String {
    match error.downcast_ref::<InputError>() {
        Some(InputError::MixedEncoding {
            utf8_line,
            other_line,
            ..
        }) => format!(
            "{file_name} mixes text encodings: line {utf8_line} is UTF-8, line {other_line} is not (GBK?). {RESAVE}"
        ),
        Some(InputError::NotText { line, .. }) => format!(
            "{file_name}: line {line} is neither UTF-8 nor GBK/GB18030 text (is it a lead list?). {RESAVE}"
        ),
        Some(InputError::WorkbookTooLarge { detail, .. }) => format!(
            "{file_name} is larger than the service reads: {detail}; nothing was sent. Split the list into smaller workbooks; if the data is small, delete the cells far from it (or copy it to a new workbook)"
        ),
        _ => crate::error::story(error).replace(&*input.to_string_lossy(), file_name),
    }
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
