//! Reading one results file: the header checked (English or Chinese result columns, after
//! the input's own), then row by row the outcome (`output::Layout::parse`), from a CSV or an `.xlsx`, the vehicle (found
//! and validated as `run` does: `input::Columns`, `lead::validate`) and the reasons its
//! message gives, generalised so that rows with the same problem count together. Lines that
//! are not a complete row are counted and passed over, never fatal.

use std::path::{Path, PathBuf};

use csv::StringRecord;
use md5::{Digest, Md5};

use super::ReportError;
use super::text::plural;
use crate::leads::city::City;
use crate::leads::input::Columns;
use crate::leads::lead::{self, RawLead};
use crate::results::outcome::{RowOutcome, Status};
use crate::results::output::{LIST_SEPARATOR, Layout, ResultHeaders};
use crate::results::table::TableReader;

/// What a row's message says when it says nothing.
pub(super) const NO_MESSAGE: &str = "(no message)";

/// A row's vehicle as the report tells vehicles apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    /// Equal for rows of the same vehicle.
    pub fingerprint: u128,
    /// How people know it: the plate, else the VIN, else `row N`.
    pub label: String,
    /// From the validated lead; for rows that do not validate, the city their own city
    /// column names, if any.
    pub city: Option<City>,
}

/// The vehicle of a row: its [`lead::VehicleKey`] when the row validates (as `run` would
/// de-duplicate it), else its normalised plate, else its normalised VIN, else its row
/// number within the `file_ix`-th file. `default_city` is the run's `--city-code`, which a
/// results file does not record.
pub fn identify(raw: &RawLead<'_>, default_city: Option<City>, file_ix: usize, row: u64) -> Vehicle {
    if let Ok(lead) = lead::validate(raw, default_city) {
        let label = lead
            .plate
            .clone()
            .or_else(|| lead.vin.clone())
            .unwrap_or_default();
        return Vehicle {
            fingerprint: lead.fingerprint(),
            label,
            city: Some(lead.city),
        };
    }
    let plate = lead::normalise_plate(raw.plate);
    let vin = lead::normalise_vin(raw.vin);
    let (text, label) = if !plate.is_empty() {
        (format!("plate\u{1}{plate}"), plate)
    } else if !vin.is_empty() {
        (format!("vin\u{1}{vin}"), vin)
    } else {
        (format!("row\u{1}{file_ix}\u{1}{row}"), format!("row {row}"))
    };
    Vehicle {
        fingerprint: u128::from_be_bytes(Md5::digest(text.as_bytes()).into()),
        label,
        // The row's own city, when it names one (`1`, `北京`): not the plate's, which a
        // rejected plate cannot be trusted for.
        city: City::parse(raw.city.trim()),
    }
}

/// The reasons a row's message gives, generalised so that rows with the same problem count
/// together: without the `same vehicle as row N: ` of a copied outcome, and with the row's
/// own plate, VIN, engine number and city replaced by `…`. A rejected row's message may hold
/// several reasons (joined by [`LIST_SEPARATOR`]); each is one reason.
pub fn reasons_of(status: Status, message: &str, raw: &RawLead<'_>) -> Vec<String> {
    let mut message = strip_copy_prefix(message.trim());
    // A ragged row lists its extra fields, which can hold anything (the separator too).
    const EXTRA: &str = "; extra fields: ";
    if let Some(at) = message.find(EXTRA) {
        message = &message[..at + EXTRA.len()];
    }
    let parts: Vec<&str> = if status == Status::InvalidInput {
        message.split(LIST_SEPARATOR).collect()
    } else {
        vec![message]
    };
    let plate = lead::normalise_plate(raw.plate);
    let vin = lead::normalise_vin(raw.vin);
    let own = [
        ("plate ", plate.as_str()),
        ("VIN ", vin.as_str()),
        ("engine number ", raw.engine.trim()),
        ("city ", raw.city.trim()),
    ];
    let mut reasons: Vec<String> = parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut reason = part.to_string();
            if reason.ends_with(EXTRA.trim_end()) {
                reason.push_str(" …");
            }
            for (word, value) in own {
                if !value.is_empty() {
                    reason = reason.replace(&format!("{word}{value}"), &format!("{word}…"));
                }
            }
            reason
        })
        .collect();
    if reasons.is_empty() {
        reasons.push(NO_MESSAGE.to_string());
    }
    reasons
}

fn strip_copy_prefix(message: &str) -> &str {
    let Some(rest) = message.strip_prefix("same vehicle as row ") else {
        return message;
    };
    match rest.split_once(": ") {
        Some((number, tail)) if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) => tail,
        _ => message,
    }
}

/// One results file, streamed.
pub(super) struct ResultsReader {
    pub(super) path: PathBuf,
    pub(super) file_ix: usize,
    pub(super) default_city: Option<City>,
    pub(super) table: TableReader,
    pub(super) headers: ResultHeaders,
    pub(super) layout: Layout,
    pub(super) columns: Option<Columns>,
    pub(super) record: StringRecord,
    pub(super) n_skipped: u64,
    pub(super) skipped_lines: Vec<u64>,
}

/// One results row, read.
pub(super) struct ResultRow {
    pub(super) row: u64,
    pub(super) outcome: RowOutcome,
    pub(super) vehicle: Vehicle,
    /// Empty for renewed rows.
    pub(super) reasons: Vec<String>,
}

impl ResultsReader {
    pub(super) fn open(
        path: &Path,
        file_ix: usize,
        default_city: Option<City>,
    ) -> Result<ResultsReader, ReportError> {
        let io_error = |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let table = TableReader::open(path).map_err(io_error)?;
        let header = table.headers().clone();
        if header.is_empty() || (header.len() == 1 && header[0].is_empty()) {
            return Err(ReportError::Empty {
                path: path.to_path_buf(),
            });
        }
        let layout = Layout::of_header(&header).map_err(|problem| ReportError::NotResults {
            path: path.to_path_buf(),
            problem,
        })?;
        let input_headers: StringRecord = header.iter().take(layout.n_input).collect();
        Ok(ResultsReader {
            path: path.to_path_buf(),
            file_ix,
            default_city,
            table,
            headers: layout.headers,
            layout,
            columns: Columns::find(&input_headers),
            record: StringRecord::new(),
            n_skipped: 0,
            skipped_lines: Vec::new(),
        })
    }

    /// The next readable row; lines that are not one are counted and passed over.
    pub(super) fn next_row(&mut self) -> Result<Option<ResultRow>, ReportError> {
        loop {
            let more = self
                .table
                .read_record(&mut self.record)
                .map_err(|source| ReportError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if !more {
                return Ok(None);
            }
            let record = &self.record;
            let Some((row, outcome)) = self.layout.parse(record) else {
                self.n_skipped += 1;
                if self.skipped_lines.len() < 5 {
                    self.skipped_lines.push(self.table.line());
                }
                continue;
            };
            let field = |column: Option<usize>| column.and_then(|i| record.get(i)).unwrap_or("");
            let columns = self.columns.unwrap_or_default();
            let raw = RawLead {
                plate: field(columns.plate),
                vin: field(columns.vin),
                engine: field(columns.engine),
                city: field(columns.city),
            };
            let vehicle = identify(&raw, self.default_city, self.file_ix, row);
            let reasons = if outcome.status == Status::Renewed {
                Vec::new()
            } else {
                reasons_of(outcome.status, &outcome.message, &raw)
            };
            return Ok(Some(ResultRow {
                row,
                outcome,
                vehicle,
                reasons,
            }));
        }
    }

    pub(super) fn skipped_note(&self) -> Option<String> {
        if self.n_skipped == 0 {
            return None;
        }
        let lines: Vec<String> = self.skipped_lines.iter().map(u64::to_string).collect();
        let more = if self.n_skipped > self.skipped_lines.len() as u64 {
            ", …"
        } else {
            ""
        };
        Some(format!(
            "{}: left out {} line{} that {} not a complete results row (line {}{more}): a line cut off when a run was interrupted, or a row edited by hand",
            self.path.display(),
            self.n_skipped,
            plural(self.n_skipped),
            if self.n_skipped == 1 { "is" } else { "are" },
            lines.join(", ")
        ))
    }
}
