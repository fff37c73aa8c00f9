//! OUTPUT's files over a run. Before the first row: what is there already (refused,
//! removed with `--force`, or read back with `--resume`: OUTPUT's final rows and the
//! journal's newer answers). Before the first request: the results file (its `.partial`)
//! and the journal, created. At the end: a complete run's file renamed into place and
//! synced and its journal removed, or an unfinished run's journal flushed and folded into
//! OUTPUT so that `--resume` continues it.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use csv::StringRecord;

use crate::error::Error;
use crate::leads::input::LeadReader;
use crate::results::journal::{self, Journal};
use crate::results::output::{self, OutputTarget, ResultWriter};
use crate::results::resume::{self, PreviousRows};
use crate::results::table::Format;
use crate::results::xlsx;
use crate::run::config::{Existing, RunConfig};
use crate::run::summary::{RunEnd, Summary};

/// What the output side looks like before the first row: a fresh file, or an earlier run
/// to continue.
pub(super) struct Prepared {
    previous: Option<resume::Previous>,
    pub(super) previous_rows: Option<PreviousRows>,
    input_exhausted_by_previous: bool,
    /// The journal's records for rows that OUTPUT does not hold as final, by row.
    pub(super) journal_live: BTreeMap<u64, journal::Record>,
}

pub(super) fn prepare(config: &RunConfig, reader: &LeadReader) -> Result<Prepared, Error> {
    let mut prepared = Prepared {
        previous: None,
        previous_rows: None,
        input_exhausted_by_previous: false,
        journal_live: BTreeMap::new(),
    };
    let OutputTarget::File(path) = &config.output else {
        return Ok(prepared);
    };
    let partial = output::partial_path(path);
    let journal_path = journal::journal_path(path);
    let exists = path.exists() || partial.exists() || journal_path.exists();
    match config.existing {
        Existing::Refuse if exists => {
            let which = [path, &partial, &journal_path]
                .into_iter()
                .find(|file| file.exists())
                .expect("one exists")
                .clone();
            return Err(Error::Refused(anyhow::anyhow!(
                "{} already exists; nothing was sent. Pass --resume to continue it (rows already renewed are kept), or --force to start over, or -o to write elsewhere",
                which.display()
            )));
        }
        Existing::Refuse => {}
        Existing::Overwrite => {
            for file in [path, &partial, &journal_path] {
                if file.exists() {
                    fs::remove_file(file)
                        .with_context(|| format!("cannot remove {}", file.display()))
                        .map_err(Error::Refused)?;
                }
            }
        }
        Existing::Resume => {
            resume::consolidate(path).map_err(Error::Refused)?;
            // One flag a row: which rows OUTPUT holds as final (the journal's others count).
            let mut final_rows = Vec::new();
            if path.exists() {
                let mut input = reader.reopen()?;
                let previous =
                    resume::verify_each(path, &mut input, |status| final_rows.push(status.is_final()))
                        .map_err(Error::Refused)?;
                prepared.input_exhausted_by_previous = input.next_row().is_none();
                prepared.previous = Some(previous);
                prepared.previous_rows = Some(PreviousRows::open(path).map_err(Error::Refused)?);
            }
            if journal_path.exists() {
                let is_final = |row: u64| {
                    row.checked_sub(1)
                        .and_then(|i| final_rows.get(i as usize))
                        .copied()
                        .unwrap_or(false)
                };
                prepared.journal_live = journal::load_live(&journal_path, is_final).map_err(|error| {
                    Error::Refused(anyhow::anyhow!(
                        "cannot read the journal {}: {error}. Move it away to resume from {} alone, or pass --force to start over",
                        journal_path.display(),
                        path.display()
                    ))
                })?;
            }
        }
    }
    Ok(prepared)
}

impl Prepared {
    /// A resumed run whose OUTPUT is complete and final: nothing to send, nothing to write.
    pub(super) fn nothing_to_do(&self, config: &RunConfig, started: Instant) -> Option<Summary> {
        let previous = self.previous?;
        if !self.input_exhausted_by_previous
            || previous.n_final != previous.n_rows
            || !self.journal_live.is_empty()
        {
            return None;
        }
        let OutputTarget::File(path) = &config.output else {
            return None;
        };
        let mut summary = Summary::empty(config, started, previous.n_rows, RunEnd::Completed);
        summary.kept_from_before = previous.n_rows;
        summary.stop_reason = Some(format!(
            "nothing to do: all {} rows of {} already have a final outcome; no request sent",
            previous.n_rows,
            path.display()
        ));
        summary.absorb_file(path);
        Some(summary)
    }
}

/// Creates every file the run writes before the first request (a login included): the
/// results file with its header, and the journal beside it (seeded with the answers of an
/// earlier run that OUTPUT does not hold yet). An `.xlsx` OUTPUT the input would overflow is
/// refused first.
pub(super) fn create(
    config: &RunConfig,
    headers: &StringRecord,
    n_rows: u64,
    journal_live: &BTreeMap<u64, journal::Record>,
) -> Result<(ResultWriter, Option<Journal>), Error> {
    if let OutputTarget::File(path) = &config.output
        && Format::of(path) == Format::Xlsx
        && n_rows >= xlsx::MAX_ROWS
    {
        return Err(Error::Refused(anyhow::anyhow!(
            "{} has {} rows, more than the {} an .xlsx sheet holds; nothing was sent. Write the results as CSV (-o with a .csv name)",
            config.input.display(),
            n_rows,
            xlsx::MAX_ROWS - 1
        )));
    }
    let mut writer = config
        .output
        .open(config.output_style)
        .map_err(Error::unwritable(written_path(&config.output)))?;
    writer
        .write_header(headers)
        .map_err(write_error(written_path(&config.output)))?;
    writer
        .flush()
        .map_err(write_error(written_path(&config.output)))?;
    let journal = match &config.output {
        OutputTarget::File(path) if journal::enabled() => {
            let path = journal::journal_path(path);
            let mut journal =
                Journal::create(&path, journal_live.values()).map_err(Error::unwritable(&path))?;
            // The journal leaves the answers written in order to the results file: the two
            // are synced together.
            if let Some(file) = writer.file_handle() {
                journal.sync_with(file.map_err(Error::unwritable(written_path(&config.output)))?);
            }
            Some(journal)
        }
        _ => None,
    };
    Ok((writer, journal))
}

/// Closes the run's files. A `complete` run's OUTPUT is synced and renamed into place
/// before its journal goes (a power cut loses neither); an unfinished run's journal is
/// flushed and folded into OUTPUT, which `--resume` then continues.
pub(super) fn close(
    config: &RunConfig,
    writer: &mut ResultWriter,
    journal: Option<Journal>,
    complete: bool,
) -> Result<(), Error> {
    let written = written_path(&config.output);
    writer.flush().map_err(write_error(&written))?;
    if complete {
        writer.sync().map_err(write_error(&written))?;
        config.output.complete().map_err(|source| match &config.output {
            OutputTarget::File(path) if Format::of(path) == Format::Xlsx => Error::Write {
                path: path.clone(),
                source,
            },
            OutputTarget::File(path) => not_in_place(anyhow::Error::new(source).context(format!(
                "cannot rename {} to {}",
                written.display(),
                path.display()
            ))),
            OutputTarget::Stdout => write_error(&written)(source),
        })?;
        if let OutputTarget::File(path) = &config.output {
            crate::results::output::sync_directory(path)
                .with_context(|| format!("cannot sync the directory of {}", path.display()))
                .map_err(not_in_place)?;
        }
        if let Some(journal) = journal {
            let path = journal.path().to_path_buf();
            drop(journal);
            journal::remove(&path).map_err(|source| {
                Error::Midrun(anyhow::Error::new(source).context(format!(
                    "every row is in the results, but its journal {} could not be removed; remove it by hand before running this command again",
                    path.display()
                )))
            })?;
        }
    } else {
        if let Some(journal) = journal {
            let path = journal.path().to_path_buf();
            journal.finish().map_err(write_error(&path))?;
        }
        if let OutputTarget::File(path) = &config.output {
            resume::consolidate(path).map_err(|error| {
                Error::Midrun(error.context(format!(
                    "the run stopped, and its rows could not be folded into {}; every answer is kept in its .partial and journal: fix the cause, then run the same command with --resume",
                    path.display()
                )))
            })?;
        }
    }
    Ok(())
}

/// Undoes [`create`] for a run that sent no renewal (its first login failed): a fresh run's
/// `.partial` and journal are removed, so that nothing refuses the same command as "already
/// exists"; a resumed run's are closed as an unfinished run's are, which leaves OUTPUT and
/// its journal as they were. Best effort: the failure that stopped the run is what is told.
pub(super) fn discard(config: &RunConfig, mut writer: ResultWriter, journal: Option<Journal>) {
    if config.existing == Existing::Resume {
        if let Err(error) = close(config, &mut writer, journal, false) {
            tracing::warn!("{error}");
        }
        return;
    }
    drop(writer);
    let journal = journal.map(|journal| journal.path().to_path_buf());
    let OutputTarget::File(path) = &config.output else {
        return;
    };
    for file in [Some(output::partial_path(path)), journal].into_iter().flatten() {
        match fs::remove_file(&file) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!("cannot remove {}: {error}", file.display());
            }
            _ => {}
        }
    }
}

/// A finished run's results that could not be put in place: exit 4, and `--resume` finishes
/// the job once the cause is fixed.
fn not_in_place(error: anyhow::Error) -> Error {
    Error::Midrun(error.context(
        "every row was answered, but the results could not be put in place; every answer is kept in the .partial and journal beside them: fix the cause, then run the same command with --resume",
    ))
}

/// The file the run writes its rows into: OUTPUT's `.partial`, or stdout.
pub(super) fn written_path(output: &OutputTarget) -> PathBuf {
    match output {
        OutputTarget::File(path) => output::partial_path(path),
        OutputTarget::Stdout => "stdout".into(),
    }
}

pub(super) fn write_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Write { path, source }
}
