//! `run --dry-run`: reads, normalises and validates a whole list without signing or sending
//! anything, and writes the results file's shape with `ready` or `invalid_input`.
//!
//! Shares the reader (`input.rs`), the validation (`lead.rs`) and the writer (`output.rs`)
//! with the real run, so what it reports is what a run would do.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasherDefault;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::error::{Error, exit};
use crate::leads::input::{InputOptions, LeadReader};
use crate::leads::lead::ReasonKind;
use crate::results::history::{self, History, KeyHasher};
use crate::results::lock::OutputLock;
use crate::results::outcome::{RowOutcome, Status};
use crate::results::output::{self, OutputStyle, OutputTarget};
use crate::run::config::Existing;

/// What a dry run needs.
#[derive(Debug, Clone)]
pub struct DryRunConfig {
    pub input: PathBuf,
    pub output: OutputTarget,
    pub existing: Existing,
    pub input_options: InputOptions,
    pub output_style: OutputStyle,
    /// Look each vehicle up in the answer history, as a run with `--reuse-within` would.
    pub reuse: Option<ReuseCheck>,
}

/// The history a run would reuse answers from, and how recent they must be.
#[derive(Debug, Clone)]
pub struct ReuseCheck {
    pub history: PathBuf,
    pub agent_id: String,
    pub within: Duration,
}

/// What a dry run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DryRunSummary {
    pub input: String,
    pub output: String,
    pub rows: u64,
    pub ready: u64,
    pub invalid: u64,
    /// Rejections by kind (a row may have several).
    pub by_reason: BTreeMap<ReasonKind, u64>,
    /// Ready rows whose city came from the plate's prefix.
    pub cities_inferred: u64,
    /// Ready rows for a vehicle seen earlier in the list (a run requests it once).
    pub duplicates: u64,
    /// Rows carrying at least one warning.
    pub with_warnings: u64,
    /// Requests a run would send: ready rows, each vehicle once, less those the history
    /// answers.
    pub requests_needed: u64,
    /// Ready rows the history would answer (with reuse on), duplicates included.
    pub reused: u64,
    /// Vehicles the history would answer: the requests reuse saves.
    pub requests_saved: u64,
    /// The first few rows of each kind of rejection, for a person to look at.
    pub examples: BTreeMap<ReasonKind, Vec<InvalidExample>>,
}

/// How many rows [`DryRunSummary::examples`] keeps per kind of rejection.
pub const EXAMPLES_PER_REASON: usize = 3;

/// One rejected row, as the check shows it: where it is, what was written, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidExample {
    pub row: u64,
    /// The plate as written in the file (empty if none).
    pub plate: String,
    /// The VIN as written (empty if none).
    pub vin: String,
    /// The reason's sentence, which ends with what to do.
    pub text: String,
}

impl DryRunSummary {
    pub fn exit_code(&self) -> i32 {
        if self.invalid == 0 {
            exit::OK
        } else {
            exit::SOME_TRANSIENT
        }
    }
}

impl fmt::Display for DryRunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bihu-renew: dry run (nothing sent): {} -> {}",
            self.input, self.output
        )?;
        writeln!(
            f,
            "  rows       {}: {} ready, {} invalid",
            self.rows, self.ready, self.invalid
        )?;
        for (kind, n) in &self.by_reason {
            writeln!(f, "    {:<20} {n}", kind.as_str())?;
        }
        writeln!(
            f,
            "  ready      {} requests needed, {} duplicates, {} cities inferred from the plate, {} rows with warnings",
            self.requests_needed, self.duplicates, self.cities_inferred, self.with_warnings
        )?;
        if self.reused > 0 {
            writeln!(
                f,
                "  history    {} rows would be answered from the history, saving {} requests",
                self.reused, self.requests_saved
            )?;
        }
        Ok(())
    }
}

/// Checks the whole list; a failure is a refusal before any request (exit 2), a results
/// place that cannot take the file an [`Error::Unwritable`].
pub fn check(config: &DryRunConfig) -> anyhow::Result<DryRunSummary> {
    // The same lock as a real run's: one run per OUTPUT, dry or not.
    let _lock = match &config.output {
        OutputTarget::File(path) => Some(OutputLock::acquire(path)?),
        OutputTarget::Stdout => None,
    };
    let mut reader = LeadReader::open(&config.input, &config.input_options)?;
    let columns = reader.columns();
    if let OutputTarget::File(path) = &config.output
        && config.existing == Existing::Refuse
        && (path.exists() || output::partial_path(path).exists())
    {
        bail!(
            "{} already exists; pass --force to replace it, or -o to write elsewhere",
            path.display()
        );
    }
    let mut writer = config
        .output
        .open(config.output_style)
        .map_err(Error::unwritable(config.output.display()))?;
    let write_error = || format!("cannot write {}", config.output.display());
    writer.write_header(reader.headers()).with_context(write_error)?;
    let mut summary = DryRunSummary {
        input: config.input.display().to_string(),
        output: config.output.display(),
        ..DryRunSummary::default()
    };
    // One clock for the whole check, so that every row is judged against the same window.
    let now = history::unix_ms_now();
    let history = match &config.reuse {
        Some(reuse) => {
            let mut history = History::open(&reuse.history)?;
            let since = now.saturating_sub(i64::try_from(reuse.within.as_millis()).unwrap_or(i64::MAX));
            // Vehicles without a recent answer need no query (as in a run).
            let answered = history.answered_since(&reuse.agent_id, since)?;
            if !answered.is_complete() {
                tracing::warn!("{}", answered.past_cap_message(history.path(), reuse.within));
            }
            Some((history, answered, reuse))
        }
        None => None,
    };
    // Each vehicle's first row, and whether the history answers it.
    // Keyed by the 64-bit dedupe key (as the run's survey is), 16 bytes an entry: a million
    // vehicles fit in about 36 MB (BENCHMARKS.md, the service's upload).
    // The value is the row, with the top bit set when the history answers it.
    let mut first_rows: HashMap<u64, u64, BuildHasherDefault<KeyHasher>> = HashMap::default();
    const REUSED: u64 = 1 << 63;
    while let Some(row) = reader.next_row() {
        let row = row?;
        summary.rows += 1;
        let outcome = match row.lead {
            Err(rejection) => {
                summary.invalid += 1;
                let written = |column: Option<usize>| {
                    column
                        .and_then(|i| row.fields.get(i))
                        .unwrap_or("")
                        .trim()
                        .to_string()
                };
                for reason in &rejection.reasons {
                    *summary.by_reason.entry(reason.kind).or_default() += 1;
                    let examples = summary.examples.entry(reason.kind).or_default();
                    if examples.len() < EXAMPLES_PER_REASON {
                        examples.push(InvalidExample {
                            row: row.row,
                            plate: written(columns.plate),
                            vin: written(columns.vin),
                            text: reason.text.clone(),
                        });
                    }
                }
                RowOutcome::invalid_input(rejection.to_string(), rejection.warnings)
            }
            Ok(lead) => {
                summary.ready += 1;
                let city_given = columns
                    .city
                    .and_then(|i| row.fields.get(i))
                    .is_some_and(|c| !c.trim().is_empty());
                // The plate's prefix comes before --city-code: a row without a city of its
                // own takes the default only when its plate names no Bihu city.
                let plate = columns.plate.and_then(|i| row.fields.get(i)).unwrap_or("");
                let from_plate =
                    crate::leads::city::City::from_plate(&crate::leads::lead::normalise_plate(plate));
                if !city_given && (from_plate.is_some() || config.input_options.default_city.is_none()) {
                    summary.cities_inferred += 1;
                }
                let message = match first_rows.get(&lead.dedupe_key()) {
                    Some(first) => {
                        summary.duplicates += 1;
                        if first & REUSED != 0 {
                            summary.reused += 1;
                        }
                        format!("same vehicle as row {}: would copy its outcome", first & !REUSED)
                    }
                    None => {
                        let answer = match &history {
                            Some((history, answered, reuse)) if answered.may_have(lead.dedupe_key()) => {
                                history.lookup(&reuse.agent_id, &lead.key(), now, reuse.within)?
                            }
                            _ => None,
                        };
                        first_rows.insert(
                            lead.dedupe_key(),
                            row.row | if answer.is_some() { REUSED } else { 0 },
                        );
                        match answer {
                            Some(answer) => {
                                summary.reused += 1;
                                summary.requests_saved += 1;
                                format!(
                                    "would reuse the {} answer of {} from the history",
                                    answer.status,
                                    history::format_time(answer.answered_at)
                                )
                            }
                            None => {
                                summary.requests_needed += 1;
                                String::new()
                            }
                        }
                    }
                };
                RowOutcome {
                    status: Status::Ready,
                    message,
                    warnings: lead.warnings,
                    ..RowOutcome::default()
                }
            }
        };
        if !outcome.warnings.is_empty() {
            summary.with_warnings += 1;
        }
        writer
            .write_row(&row.fields, row.row, &outcome)
            .with_context(write_error)?;
    }
    writer.flush().with_context(write_error)?;
    drop(writer);
    config
        .output
        .complete()
        .with_context(|| format!("cannot put the finished {} in place", config.output.display()))?;
    Ok(summary)
}
