//! What to run next: the `run --resume` command for a results file (the lead list guessed
//! from its name, paths quoted for a shell), and whether the file comes from a run that did
//! not finish, so that the list may hold rows it never reached.

use std::path::{Path, PathBuf};

use super::model::{RetryCommand, Unfinished};
use crate::leads::input::{InputOptions, LeadReader};
use crate::results::journal::journal_path;
use crate::results::output::partial_path;

/// The OUTPUT of the run that wrote `results` when that run did not finish: `results` is
/// its `.partial`, or a `.partial` or a journal lies beside it (a run ends by renaming the
/// one and removing the other).
pub(super) fn unfinished_output(results: &Path) -> Option<PathBuf> {
    let name = results.file_name()?.to_str()?;
    if let Some(output) = name.strip_suffix(".partial") {
        return Some(results.with_file_name(output));
    }
    let beside = partial_path(results).exists() || journal_path(results).exists();
    beside.then(|| results.to_path_buf())
}

/// How `results`, holding `rows` rows, continues if it comes from an unfinished run.
pub(super) fn unfinished(results: &Path, rows: u64) -> Option<Unfinished> {
    unfinished_output(results)?;
    let command = retry_command(results, 0);
    let input_rows = command
        .input_guess
        .as_deref()
        .filter(|_| command.input_guess_exists)
        .and_then(|input| count_rows(Path::new(input)));
    Some(Unfinished {
        command: command.command,
        input_rows,
        not_reached: input_rows.map(|n| n.saturating_sub(rows)),
    })
}

/// The data rows of a lead list; `None` when it cannot be read.
fn count_rows(input: &Path) -> Option<u64> {
    let mut reader = LeadReader::open(input, &InputOptions::default()).ok()?;
    let mut n_rows = 0;
    while let Some(row) = reader.next_row() {
        row.ok()?;
        n_rows += 1;
    }
    Some(n_rows)
}

/// `bihu-renew run <input> -o <results> --resume`, the input guessed from the file name.
pub(super) fn retry_command(results: &Path, rows: u64) -> RetryCommand {
    // A `.partial` is continued through its OUTPUT.
    let output = unfinished_output(results).unwrap_or_else(|| results.to_path_buf());
    let guess = guess_input(&output);
    let input = guess
        .as_ref()
        .map_or_else(|| "LEADS.csv".to_string(), |path| path.display().to_string());
    RetryCommand {
        results: results.display().to_string(),
        rows,
        input_guess_exists: guess.as_ref().is_some_and(|path| path.exists()),
        input_guess: guess.map(|path| path.display().to_string()),
        command: format!(
            "bihu-renew run {} -o {} --resume",
            shell_quote(&input),
            shell_quote(&output.display().to_string())
        ),
    }
}

/// `x.results.csv` (or `x.results.xlsx`) was written from `x.csv` (or from `x.xlsx`, if that
/// is what is there).
pub fn guess_input(results: &Path) -> Option<PathBuf> {
    let name = results.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".csv")
        .or_else(|| name.strip_suffix(".CSV"))
        .or_else(|| name.strip_suffix(".xlsx"))?
        .strip_suffix(".results")?;
    if stem.is_empty() {
        return None;
    }
    let csv = results.with_file_name(format!("{stem}.csv"));
    let xlsx = results.with_file_name(format!("{stem}.xlsx"));
    Some(if !csv.exists() && xlsx.exists() { xlsx } else { csv })
}

/// Quotes for a POSIX shell when needed (shlex). A path holding a NUL byte cannot be
/// passed to a command at all; it is shown escaped so the line stays printable.
fn shell_quote(text: &str) -> String {
    shlex::try_quote(text).map_or_else(|_| format!("{text:?}"), |quoted| quoted.into_owned())
}
