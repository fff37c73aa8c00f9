//! The account of a run: rows by status, requests, retries, duplicates, timing, and how it
//! ended. Printed on stderr for people, written as JSON (`--summary-json`) for cron and
//! reports, and the source of the exit code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use csv::StringRecord;
use serde::Serialize;

use crate::error::exit;
use crate::results::outcome::Status;
use crate::results::output;
use crate::results::table::TableReader;
use crate::run::config::RunConfig;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Every input row has an output row.
    Completed,
    /// Stopped by SIGINT/SIGTERM; OUTPUT holds a prefix that `--resume` continues.
    Interrupted,
    /// Stopped because the credentials were rejected again and again.
    Aborted,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub input: String,
    pub output: String,
    pub end: RunEnd,
    /// Why the run stopped early, and what to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Data rows in the input.
    pub rows_total: u64,
    /// Rows in OUTPUT now.
    pub rows_written: u64,
    /// Rows in OUTPUT by status (every status listed, zeros included).
    pub by_status: BTreeMap<Status, u64>,
    /// Renewal requests sent in this run, retries included.
    pub requests: u64,
    pub retries: u64,
    pub logins: u64,
    /// Rows that copied the outcome of an earlier row for the same vehicle.
    pub duplicates: u64,
    /// Rows with a final outcome kept from an earlier run (`--resume`).
    pub kept_from_before: u64,
    /// Rows answered from the answer history (`--reuse-within`), without a request.
    pub reused: u64,
    /// Rows decided in this run.
    pub processed: u64,
    /// Rows in OUTPUT whose outcome is not final (another `--resume` retries them).
    pub remaining_transient: u64,
    /// Rows of the input with no output row yet.
    pub not_reached: u64,
    pub elapsed_secs: f64,
    /// Requests per second over the whole run.
    pub requests_per_sec: f64,
    pub rows_per_sec: f64,
}

impl Summary {
    /// A run's account before any row: what it ran on, how it ended, every count zero.
    pub(super) fn empty(config: &RunConfig, started: Instant, rows_total: u64, end: RunEnd) -> Summary {
        let mut summary = Summary {
            input: config.input.display().to_string(),
            output: config.output.display(),
            end,
            stop_reason: None,
            rows_total,
            rows_written: 0,
            by_status: BTreeMap::new(),
            requests: 0,
            retries: 0,
            logins: 0,
            duplicates: 0,
            kept_from_before: 0,
            reused: 0,
            processed: 0,
            remaining_transient: 0,
            not_reached: 0,
            elapsed_secs: started.elapsed().as_secs_f64(),
            requests_per_sec: 0.0,
            rows_per_sec: 0.0,
        };
        summary.set_counts(&BTreeMap::new());
        summary
    }

    /// Recounts rows by status from OUTPUT as it is on disk (after an early stop it holds
    /// earlier runs' rows beyond this run's prefix).
    pub(super) fn absorb_file(&mut self, path: &Path) {
        let Ok(mut reader) = TableReader::open(path) else {
            return;
        };
        let Ok(layout) = output::Layout::of_header(reader.headers()) else {
            return;
        };
        let mut by_status = BTreeMap::new();
        let mut record = StringRecord::new();
        while let Ok(true) = reader.read_record(&mut record) {
            if let Some((_, outcome)) = layout.parse(&record) {
                *by_status.entry(outcome.status).or_default() += 1;
            }
        }
        self.set_counts(&by_status);
    }

    pub fn exit_code(&self) -> i32 {
        match self.end {
            RunEnd::Aborted => exit::CREDENTIALS,
            RunEnd::Interrupted => exit::INTERRUPTED,
            RunEnd::Completed if self.remaining_transient > 0 => exit::SOME_TRANSIENT,
            RunEnd::Completed => exit::OK,
        }
    }

    /// Takes the rows counted by status, and what follows from them: every status listed
    /// (zeros included), the rows written, the rows left with a transient outcome.
    pub fn set_counts(&mut self, counts: &BTreeMap<Status, u64>) {
        self.by_status = Status::ALL.into_iter().map(|status| (status, 0)).collect();
        self.by_status.extend(counts);
        self.rows_written = counts.values().sum();
        self.remaining_transient = counts
            .iter()
            .filter(|(status, _)| !status.is_final())
            .map(|(_, n)| n)
            .sum();
    }

    pub fn count(&self, status: Status) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = match self.end {
            RunEnd::Completed => "completed",
            RunEnd::Interrupted => "INTERRUPTED",
            RunEnd::Aborted => "ABORTED",
        };
        writeln!(f, "bihu-renew: run {end}: {} -> {}", self.input, self.output)?;
        if let Some(reason) = &self.stop_reason {
            writeln!(f, "  {reason}")?;
        }
        writeln!(
            f,
            "  rows       {} of {} written",
            self.rows_written, self.rows_total
        )?;
        for (status, n) in &self.by_status {
            if *n > 0 {
                writeln!(f, "    {:<20} {n}", status.as_str())?;
            }
        }
        writeln!(
            f,
            "  this run   {} processed, {} kept from before, {} duplicates copied",
            self.processed, self.kept_from_before, self.duplicates
        )?;
        if self.reused > 0 {
            writeln!(
                f,
                "  history    {} rows answered from the history, no request sent",
                self.reused
            )?;
        }
        writeln!(
            f,
            "  requests   {} sent ({} retries, {} logins)",
            self.requests, self.retries, self.logins
        )?;
        writeln!(
            f,
            "  elapsed    {:.1} s, {:.1} requests/s, {:.1} rows/s",
            self.elapsed_secs, self.requests_per_sec, self.rows_per_sec
        )?;
        if self.remaining_transient > 0 || self.not_reached > 0 {
            writeln!(
                f,
                "  to do      {} rows with a transient outcome, {} rows not reached: run the same command with --resume",
                self.remaining_transient, self.not_reached
            )?;
        }
        Ok(())
    }
}
