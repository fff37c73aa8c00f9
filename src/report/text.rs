//! The report for the terminal (`Display`): the figures as aligned columns, wide characters
//! counted as two.

use std::fmt;

use super::model::{Report, RetryCommand, Unfinished};
use crate::results::outcome::Status;

pub(super) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Columns a character takes in a terminal: East Asian wide characters take two.
pub(super) fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| {
            let wide = matches!(c as u32,
                0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
                | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide { 2 } else { 1 }
        })
        .sum()
}

/// `text` padded with spaces to `width` terminal columns.
fn pad(text: &str, width: usize) -> String {
    let mut padded = text.to_string();
    padded.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(display_width(text)),
    ));
    padded
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.files.as_slice() {
            [file] => writeln!(f, "Report on {}", file.path)?,
            files => {
                writeln!(f, "Report on {} files", files.len())?;
                for file in files {
                    writeln!(f, "  {}  {} rows", file.path, file.rows)?;
                }
            }
        }
        writeln!(f, "  rows           {}", self.rows)?;
        writeln!(f, "  vehicles       {} distinct", self.vehicles)?;
        writeln!(f, "  reached API    {} rows", self.reached_api)?;
        match self.renewal_rate {
            Some(rate) => writeln!(
                f,
                "  renewal rate   {} ({} renewed of {} rows that reached the API)",
                percent(rate),
                self.count(Status::Renewed),
                self.reached_api
            )?,
            None => writeln!(f, "  renewal rate   - (no row reached the API)")?,
        }

        writeln!(f, "\nOutcomes                  rows   share")?;
        for (status, figures) in self.by_status.iter().filter(|(_, figures)| figures.rows > 0) {
            writeln!(
                f,
                "  {:<21} {:>6}  {:>6}",
                status.as_str(),
                figures.rows,
                percent(figures.share)
            )?;
        }

        if !self.by_city.is_empty() {
            let width = self
                .by_city
                .iter()
                .map(|city| display_width(&city.label()))
                .max()
                .unwrap_or(0)
                .max(12);
            writeln!(
                f,
                "\n{}  {:>6}  {:>7}  {:>13}  {:>6}",
                pad("By city", width + 2),
                "rows",
                "renewed",
                "not renewable",
                "failed"
            )?;
            for city in &self.by_city {
                writeln!(
                    f,
                    "  {}  {:>6}  {:>7}  {:>13}  {:>6}",
                    pad(&city.label(), width),
                    city.rows,
                    city.renewed,
                    city.not_renewable,
                    city.failed
                )?;
            }
        }

        if !self.reasons.is_empty() {
            writeln!(
                f,
                "\nTop reasons, rows not renewed (a rejected row may give several)"
            )?;
            for reason in &self.reasons {
                writeln!(
                    f,
                    "  {:>6}  {:<20} {}",
                    reason.rows,
                    reason.status.as_str(),
                    reason.reason
                )?;
            }
        }

        if !self.attempts.is_empty() {
            writeln!(f, "\nAttempts        rows")?;
            for (attempts, rows) in &self.attempts {
                writeln!(f, "  {attempts:<8} {rows:>9}")?;
            }
        }

        writeln!(f, "\nTo retry")?;
        let unfinished: Vec<_> = self
            .files
            .iter()
            .filter_map(|file| Some((file, file.unfinished.as_ref()?)))
            .collect();
        for (file, unfinished) in &unfinished {
            writeln!(
                f,
                "  {}: {} row{}; the list may hold more: run `{}`",
                file.path,
                file.rows,
                plural(file.rows),
                unfinished.command
            )?;
            writeln!(f, "    ({})", unfinished_remark(unfinished))?;
        }
        if self.retry.rows == 0 {
            if unfinished.is_empty() {
                writeln!(f, "  nothing: every row has a final outcome")?;
            }
        } else {
            writeln!(
                f,
                "  {} row{} with a transient outcome; `run --resume` sends {} again:",
                self.retry.rows,
                plural(self.retry.rows),
                if self.retry.rows == 1 { "it" } else { "them" }
            )?;
            for command in &self.retry.commands {
                writeln!(f, "    {}", command.command)?;
                writeln!(f, "    ({})", guess_remark(command))?;
            }
        }
        writeln!(
            f,
            "  rows needing attention (retry, or fix the list): {}",
            self.attention.rows
        )?;

        if let Some(comparison) = &self.against {
            writeln!(
                f,
                "\nSince {} ({} rows, {} vehicles)",
                comparison.previous, comparison.previous_rows, comparison.previous_vehicles
            )?;
            for (heading, changes) in [("changed", true), ("not changed", false)] {
                let counts = comparison.counts.iter().filter(|(c, _)| c.is_change() == changes);
                let total: u64 = counts.clone().map(|(_, n)| n).sum();
                writeln!(f, "  {heading:<22} {total:>6}")?;
                for (change, n) in counts {
                    writeln!(f, "    {:<20} {n:>6}", change.label())?;
                }
            }
        }
        Ok(())
    }
}

pub(super) fn guess_remark(command: &RetryCommand) -> String {
    match (&command.input_guess, command.input_guess_exists) {
        (Some(input), true) => format!("{input} is a guess from the file name: check it is the lead list"),
        (Some(input), false) => format!(
            "{input} is a guess from the file name and is not there: use the lead list {} was made from",
            command.results
        ),
        (None, _) => format!(
            "LEADS.csv stands for the lead list {} was made from",
            command.results
        ),
    }
}

pub(super) fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What is known of the rows an unfinished run did not reach.
pub(super) fn unfinished_remark(unfinished: &Unfinished) -> String {
    match (unfinished.input_rows, unfinished.not_reached) {
        (Some(n_input), Some(n_left)) => format!(
            "the run did not finish; the lead list guessed from the name has {n_input} row{}: {n_left} not reached",
            plural(n_input)
        ),
        _ => "the run did not finish; the rows not reached are not counted: the lead list was not found beside the file".to_string(),
    }
}
