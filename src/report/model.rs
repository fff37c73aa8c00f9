//! The report's figures: the types that the terminal text, the JSON (`Serialize`) and the
//! HTML page all render, and the three classes of outcome they count by.

use std::collections::BTreeMap;

use serde::Serialize;

use super::compare::Comparison;
use crate::results::outcome::Status;
use crate::results::output::ResultHeaders;

/// One file read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFigures {
    pub path: String,
    pub headers: ResultHeaders,
    /// Result rows read.
    pub rows: u64,
    /// Lines that are not a complete results row (a line cut off by an interrupted run, or
    /// edited by hand), left out of every figure.
    pub skipped_lines: u64,
    /// Set when the file comes from a run that did not finish (a `.partial`, or a `.partial`
    /// or journal beside it): the lead list may hold rows it never reached.
    pub unfinished: Option<Unfinished>,
}

/// How an unfinished run's file continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unfinished {
    /// `bihu-renew run INPUT -o OUTPUT --resume`.
    pub command: String,
    /// The data rows of the lead list guessed from the file's name, when it is there.
    pub input_rows: Option<u64>,
    /// Of those, the rows the file does not hold.
    pub not_reached: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StatusFigures {
    pub rows: u64,
    /// Of all rows, 0.0-1.0.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CityFigures {
    /// The city's name, or `unknown` for rows that do not validate.
    pub city: String,
    pub city_id: Option<u8>,
    pub rows: u64,
    pub renewed: u64,
    pub not_renewable: u64,
    /// Neither renewed nor not renewable.
    pub failed: u64,
}

impl CityFigures {
    /// `北京 (1)`, or `unknown`.
    pub fn label(&self) -> String {
        match self.city_id {
            Some(id) => format!("{} ({id})", self.city),
            None => self.city.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonFigures {
    pub status: Status,
    pub reason: String,
    pub rows: u64,
}

/// How to retry one file's rows with a transient outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryCommand {
    pub results: String,
    pub rows: u64,
    /// The lead list the file was probably made from, guessed from its name
    /// (`<stem>.results.csv` from `<stem>.csv`); `None` when the name gives no clue.
    pub input_guess: Option<String>,
    pub input_guess_exists: bool,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryFigures {
    /// Rows whose status is not final: `run --resume` sends them again.
    pub rows: u64,
    pub commands: Vec<RetryCommand>,
}

/// A row that needs someone: retried (a transient status) or fixed in the lead list
/// (invalid_input, invalid_params).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttentionRow {
    pub file: String,
    pub row: u64,
    pub vehicle: String,
    pub city: String,
    pub status: Status,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttentionFigures {
    /// Rows neither renewed nor not renewable.
    pub rows: u64,
    /// The first [`LIST_LIMIT`] of them, in file and row order.
    pub listed: Vec<AttentionRow>,
}

/// The account of one or more results files. Every figure here is shown by all three
/// renderings (terminal, JSON, HTML).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub files: Vec<FileFigures>,
    /// Result rows, all files together.
    pub rows: u64,
    /// Distinct vehicles among them (see [`identify`]).
    pub vehicles: u64,
    /// Rows and share of rows by status, every status listed (zeros included).
    pub by_status: BTreeMap<Status, StatusFigures>,
    /// Rows with an `http_status`: the API answered them (copies of a duplicate included).
    pub reached_api: u64,
    /// Renewed rows / rows that reached the API; `None` when none did.
    pub renewal_rate: Option<f64>,
    /// By city id, rows that do not validate last (`unknown`).
    pub by_city: Vec<CityFigures>,
    /// The [`TOP_REASONS`] most frequent reasons of rows not renewed, most frequent first.
    pub reasons: Vec<ReasonFigures>,
    /// Rows by their `attempts` value.
    pub attempts: BTreeMap<u32, u64>,
    pub retry: RetryFigures,
    pub attention: AttentionFigures,
    /// With `--against`.
    pub against: Option<Comparison>,
    /// What was left out, and why.
    pub notes: Vec<String>,
}
