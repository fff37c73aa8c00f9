//! Reconciliation reports: reads results files back and accounts for them (outcomes, cities,
//! reasons, attempts, what is left to retry) and, against an earlier results file, what
//! changed for each vehicle. The [`Report`] renders for the terminal (`Display`), as JSON
//! (`Serialize`) and as one self-contained HTML page ([`Report::to_html`]).
//!
//! Every file is streamed once. What is kept grows with the number of distinct vehicles at
//! most (a fingerprint each, and each vehicle's outcome when comparing), never with the rows:
//! the lists of rows shown are capped.
//!
//! # Layout
//! - `model`: the figures every rendering shows ([`Report`] and its parts).
//! - `read`: one results file, row by row: outcome, vehicle ([`identify`]), reasons.
//! - `tally`: counting the rows into the figures ([`Report::build`]).
//! - `retry`: the `run --resume` command of a file, and whether its run finished.
//! - `compare`: `--against`, the [`Change`] of each vehicle.
//! - `text`, `html`, `changes_csv`: the renderings (terminal, HTML page, `--changes`);
//!   `zh`: the HTML page's labels in Chinese, for the service's pages.
//!
//! It imports `leads` (to find and validate a row's vehicle) and `results` (the format).

use std::io;
use std::path::PathBuf;

mod changes_csv;
mod compare;
mod html;
mod model;
mod read;
mod retry;
mod tally;
#[cfg(test)]
mod tests;
mod text;
mod zh;

pub use changes_csv::CHANGES_COLUMNS;
pub use compare::{Change, ChangedVehicle, Comparison, VehicleOutcome};
pub use model::{
    AttentionFigures, AttentionRow, CityFigures, FileFigures, ReasonFigures, Report, RetryCommand,
    RetryFigures, StatusFigures, Unfinished,
};
pub use read::{Vehicle, identify, reasons_of};
pub use retry::guess_input;
pub use zh::Language;

/// The result columns as `run --zh-headers` names them (defined beside the writer).
pub use crate::results::output::{RESULT_COLUMNS_ZH, ResultHeaders, result_headers};

/// Reasons listed, most frequent first.
pub const TOP_REASONS: usize = 10;

/// Rows needing attention, and changed vehicles, listed at most (HTML and JSON); the counts
/// are always whole. `--changes` writes every changed vehicle.
pub const LIST_LIMIT: usize = 1000;

/// Distinct reasons counted one by one; any further ones are counted together, so that
/// messages that differ on every row cannot make the count grow with the rows.
const MAX_DISTINCT_REASONS: usize = 10_000;

/// What the reasons beyond [`MAX_DISTINCT_REASONS`] count under.
const OTHER_REASONS: &str = "(other reasons)";

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is empty: a results file starts with a header row")]
    Empty { path: PathBuf },
    #[error("{path} is not a results file of bihu-renew: {problem}")]
    NotResults { path: PathBuf, problem: String },
}
