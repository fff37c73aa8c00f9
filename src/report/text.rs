//! The report for the terminal (`Display`): the figures as aligned columns, wide characters
//! counted as two.

use std::fmt;

use comfy_table::{CellAlignment, Table, presets};

use super::model::{Report, RetryCommand, Unfinished};
use crate::results::outcome::Status;

pub(super) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// One table of the report: a header and rows laid out by comfy-table (which counts wide
/// characters as two columns), without borders, indented under its section title.
struct Columns(Table);

impl Columns {
    /// `right[i]` aligns column `i` to the right (the figures).
    fn new(header: &[&str], right: &[bool]) -> Columns {
        let mut table = Table::new();
        table.load_style(presets::NOTHING).set_header(header.to_vec());
        for (column, &right) in table.column_iter_mut().zip(right) {
            column.set_padding((0, 2));
            column.set_cell_alignment(if right {
                CellAlignment::Right
            } else {
                CellAlignment::Left
            });
        }
        Columns(table)
    }

    fn row(&mut self, cells: Vec<String>) {
        self.0.add_row(cells);
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.0.lines() {
            writeln!(f, "  {}", line.trim_end())?;
        }
        Ok(())
    }
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

        writeln!(f, "\nOutcomes")?;
        let mut outcomes = Columns::new(&["status", "rows", "share"], &[false, true, true]);
        for (status, figures) in self.by_status.iter().filter(|(_, figures)| figures.rows > 0) {
            outcomes.row(vec![
                status.as_str().to_string(),
                figures.rows.to_string(),
                percent(figures.share),
            ]);
        }
        outcomes.write(f)?;

        if !self.by_city.is_empty() {
            writeln!(f, "\nBy city")?;
            let mut cities = Columns::new(
                &["city", "rows", "renewed", "not renewable", "failed"],
                &[false, true, true, true, true],
            );
            for city in &self.by_city {
                cities.row(vec![
                    city.label(),
                    city.rows.to_string(),
                    city.renewed.to_string(),
                    city.not_renewable.to_string(),
                    city.failed.to_string(),
                ]);
            }
            cities.write(f)?;
        }

        if !self.reasons.is_empty() {
            writeln!(
                f,
                "\nTop reasons, rows not renewed (a rejected row may give several)"
            )?;
            let mut reasons = Columns::new(&["rows", "status", "reason"], &[true, false, false]);
            for reason in &self.reasons {
                reasons.row(vec![
                    reason.rows.to_string(),
                    reason.status.as_str().to_string(),
                    reason.reason.clone(),
                ]);
            }
            reasons.write(f)?;
        }

        if !self.attempts.is_empty() {
            writeln!(f, "\nAttempts")?;
            let mut attempts = Columns::new(&["attempts", "rows"], &[false, true]);
            for (n, rows) in &self.attempts {
                attempts.row(vec![n.to_string(), rows.to_string()]);
            }
            attempts.write(f)?;
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
            let mut changes = Columns::new(&["change", "vehicles"], &[false, true]);
            for (heading, changed) in [("changed", true), ("not changed", false)] {
                let counts = comparison.counts.iter().filter(|(c, _)| c.is_change() == changed);
                let total: u64 = counts.clone().map(|(_, n)| n).sum();
                changes.row(vec![heading.to_string(), total.to_string()]);
                for (change, n) in counts {
                    changes.row(vec![format!("  {}", change.label()), n.to_string()]);
                }
            }
            changes.write(f)?;
            if comparison.same_answer + comparison.answered_again > 0 {
                writeln!(
                    f,
                    "  answers: {} the earlier run's own (reused, the same answered_at), {} answered again since",
                    comparison.same_answer, comparison.answered_again
                )?;
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
