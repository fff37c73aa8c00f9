//! What to run next: the `run --resume` command for a results file (the lead list guessed
//! from its name, paths quoted for a shell), and whether the file comes from a run that did
//! not finish, so that the list may hold rows it never reached.

use std::path::{Path, PathBuf};

use super::model::{RetryCommand, Unfinished};
use crate::leads::input::{InputOptions, LeadReader, SPREADSHEET_EXTENSIONS};
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

/// The lead list `x.results.csv` or `x.results.xlsx` (or a dry run's `x.dry-run.…`) was
/// written from: `x.csv` for a CSV and a workbook (`x.xlsx`, `x.xls`, …) for a workbook, as
/// `run` names its default OUTPUT; else whichever of them is there (an `-o`, or a workbook's
/// CSV results from a build before the defaults followed the input's kind); else the first.
pub fn guess_input(results: &Path) -> Option<PathBuf> {
    let name = results.file_name()?.to_str()?;
    let (rest, workbook) =
        [(".csv", false), (".xlsx", true)]
            .into_iter()
            .find_map(|(extension, workbook)| {
                let cut = name.len().checked_sub(extension.len())?;
                let ends = name.get(cut..)?.eq_ignore_ascii_case(extension);
                ends.then(|| (&name[..cut], workbook))
            })?;
    let stem = rest
        .strip_suffix(".results")
        .or_else(|| rest.strip_suffix(".dry-run"))
        .filter(|stem| !stem.is_empty())?;
    let workbooks = SPREADSHEET_EXTENSIONS.iter().copied();
    let extensions: Vec<&str> = if workbook {
        workbooks.chain(["csv"]).collect()
    } else {
        std::iter::once("csv").chain(workbooks).collect()
    };
    let candidates: Vec<PathBuf> = extensions
        .iter()
        .map(|extension| results.with_file_name(format!("{stem}.{extension}")))
        .collect();
    let there = candidates.iter().find(|path| path.exists());
    Some(there.unwrap_or(&candidates[0]).clone())
}

/// Quotes for a POSIX shell when needed (shlex). A path holding a NUL byte cannot be
/// passed to a command at all; it is shown escaped so the line stays printable.
fn shell_quote(text: &str) -> String {
    shlex::try_quote(text).map_or_else(|_| format!("{text:?}"), |quoted| quoted.into_owned())
}
