//! Reconciliation reports: reads results files back and accounts for them (outcomes, cities,
//! reasons, attempts, what is left to retry) and, against an earlier results file, what
//! changed for each vehicle. The [`Report`] renders for the terminal (`Display`), as JSON
//! (`Serialize`) and as one self-contained HTML page ([`Report::to_html`]).
//!
//! Every file is streamed once. What is kept grows with the number of distinct vehicles at
//! most (a fingerprint each, and each vehicle's outcome when comparing), never with the rows:
//! the lists of rows shown are capped. A row's vehicle and city come from its input columns,
//! found and validated as `run` does (`input::Columns`, `lead::validate`); its outcome from
//! the result columns (`output::parse_result`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

use csv::{ByteRecord, StringRecord};
use md5::{Digest, Md5};
use serde::Serialize;

use crate::leads::city::City;
use crate::leads::input::Columns;
use crate::leads::lead::{self, RawLead};
use crate::results::outcome::{RowOutcome, Status};
use crate::results::output::{self, LIST_SEPARATOR, RESULT_COLUMNS};

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

/// What a row's message says when it says nothing.
const NO_MESSAGE: &str = "(no message)";
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

impl From<ReportError> for crate::error::Error {
    fn from(error: ReportError) -> Self {
        crate::error::Error::Report(error.to_string())
    }
}

/// A row's vehicle as the report tells vehicles apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    /// Equal for rows of the same vehicle.
    pub fingerprint: u128,
    /// How people know it: the plate, else the VIN, else `row N`.
    pub label: String,
    /// From the validated lead; `None` for rows that do not validate.
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
            fingerprint: lead.key().fingerprint(),
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
        city: None,
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

/// What became of a vehicle, in three: the classes the figures and the comparison use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Renewed,
    NotRenewable,
    /// Anything else: to retry (transient statuses) or to fix (invalid_input, invalid_params).
    Failed,
}

fn class(status: Status) -> Class {
    match status {
        Status::Renewed => Class::Renewed,
        Status::NotRenewable => Class::NotRenewable,
        _ => Class::Failed,
    }
}

/// Which of a vehicle's rows speaks for it: the more decided outcome wins, and of equal
/// ones the later row (so a retry run read after the first one has the last word).
fn rank(status: Status) -> u8 {
    match status {
        Status::Renewed => 3,
        Status::NotRenewable => 2,
        _ if status.is_final() => 1,
        _ => 0,
    }
}

/// What changed for one vehicle between an earlier run and this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Not renewed before, renewed now.
    NewlyRenewed,
    /// Renewed before, answered not renewable now.
    NoLongerRenewable,
    /// Renewed both times, with a different RenewalToken.
    RenewalTokenChanged,
    /// Failed both times (neither renewed nor not renewable).
    StillFailing,
    /// Any other change of outcome: renewed before and failed now, or not renewable before
    /// and failed now, or failed before and not renewable now.
    OtherChange,
    /// Only in this run.
    NewLead,
    /// Only in the earlier run.
    Disappeared,
    /// Renewed with the same RenewalToken, or not renewable, both times.
    Unchanged,
}

impl Change {
    pub const ALL: [Change; 8] = [
        Change::NewlyRenewed,
        Change::NoLongerRenewable,
        Change::RenewalTokenChanged,
        Change::StillFailing,
        Change::OtherChange,
        Change::NewLead,
        Change::Disappeared,
        Change::Unchanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Change::NewlyRenewed => "newly_renewed",
            Change::NoLongerRenewable => "no_longer_renewable",
            Change::RenewalTokenChanged => "renewal_token_changed",
            Change::StillFailing => "still_failing",
            Change::OtherChange => "other_change",
            Change::NewLead => "new_lead",
            Change::Disappeared => "disappeared",
            Change::Unchanged => "unchanged",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Change::NewlyRenewed => "newly renewed",
            Change::NoLongerRenewable => "no longer renewable",
            Change::RenewalTokenChanged => "RenewalToken changed",
            Change::StillFailing => "still failing",
            Change::OtherChange => "other change",
            Change::NewLead => "new leads",
            Change::Disappeared => "disappeared",
            Change::Unchanged => "unchanged",
        }
    }

    /// The change between a vehicle's earlier and current (status, RenewalToken).
    pub fn between(previous: Option<(Status, &str)>, current: Option<(Status, &str)>) -> Change {
        let (previous, current) = match (previous, current) {
            (None, _) => return Change::NewLead,
            (_, None) => return Change::Disappeared,
            (Some(previous), Some(current)) => (previous, current),
        };
        match (class(previous.0), class(current.0)) {
            (Class::Renewed, Class::Renewed) if previous.1 != current.1 => Change::RenewalTokenChanged,
            (Class::Renewed, Class::Renewed) | (Class::NotRenewable, Class::NotRenewable) => {
                Change::Unchanged
            }
            (_, Class::Renewed) => Change::NewlyRenewed,
            (Class::Renewed, Class::NotRenewable) => Change::NoLongerRenewable,
            (Class::Failed, Class::Failed) => Change::StillFailing,
            _ => Change::OtherChange,
        }
    }
}

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

/// A vehicle's outcome in one of the two runs compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VehicleOutcome {
    pub file: String,
    pub row: u64,
    pub status: Status,
    pub message: String,
    pub renewal_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedVehicle {
    pub change: Change,
    pub vehicle: String,
    pub city: String,
    pub previous: Option<VehicleOutcome>,
    pub current: Option<VehicleOutcome>,
}

/// This run against an earlier one, vehicle by vehicle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub previous: String,
    pub previous_rows: u64,
    pub previous_vehicles: u64,
    /// Vehicles by change, every category listed (zeros included); they add up to the
    /// vehicles of either run.
    pub counts: BTreeMap<Change, u64>,
    /// Every vehicle whose change is not [`Change::Unchanged`], by change, then row.
    pub changed: Vec<ChangedVehicle>,
}

impl Comparison {
    pub fn count(&self, change: Change) -> u64 {
        self.counts.get(&change).copied().unwrap_or(0)
    }

    /// Writes the changed vehicles as CSV, both outcomes side by side.
    pub fn write_changes_csv(&self, sink: impl Write) -> io::Result<()> {
        let mut csv = csv::Writer::from_writer(sink);
        csv.write_record(CHANGES_COLUMNS)?;
        for changed in &self.changed {
            let side = |outcome: &Option<VehicleOutcome>| match outcome {
                Some(o) => [
                    o.row.to_string(),
                    o.status.as_str().to_string(),
                    o.message.clone(),
                    o.renewal_token.clone(),
                ],
                None => Default::default(),
            };
            let [p_row, p_status, p_message, p_token] = side(&changed.previous);
            let [row, status, message, token] = side(&changed.current);
            let file = changed.current.as_ref().map(|o| o.file.as_str()).unwrap_or("");
            csv.write_record([
                changed.change.as_str(),
                &changed.vehicle,
                &changed.city,
                &p_row,
                &p_status,
                &p_message,
                &p_token,
                file,
                &row,
                &status,
                &message,
                &token,
            ])?;
        }
        csv.flush()
    }
}

/// The columns of `--changes`.
pub const CHANGES_COLUMNS: [&str; 12] = [
    "change",
    "vehicle",
    "city",
    "previous_row",
    "previous_status",
    "previous_message",
    "previous_renewal_token",
    "file",
    "row",
    "status",
    "message",
    "renewal_token",
];

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

/// One results file, streamed.
struct ResultsReader {
    path: PathBuf,
    file_ix: usize,
    default_city: Option<City>,
    csv: csv::Reader<BufReader<File>>,
    headers: ResultHeaders,
    n_fields: usize,
    columns: Option<Columns>,
    record: ByteRecord,
    n_skipped: u64,
    skipped_lines: Vec<u64>,
}

/// One results row, read.
struct ResultRow {
    row: u64,
    outcome: RowOutcome,
    vehicle: Vehicle,
    /// Empty for renewed rows.
    reasons: Vec<String>,
}

impl ResultsReader {
    fn open(path: &Path, file_ix: usize, default_city: Option<City>) -> Result<ResultsReader, ReportError> {
        let io_error = |source| ReportError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(BufReader::with_capacity(1 << 16, file));
        let header_bytes = csv.byte_headers().map_err(|e| io_error(e.into()))?;
        if header_bytes.is_empty() || (header_bytes.len() == 1 && header_bytes[0].is_empty()) {
            return Err(ReportError::Empty {
                path: path.to_path_buf(),
            });
        }
        let header: StringRecord = header_bytes
            .iter()
            .map(|name| {
                String::from_utf8_lossy(name)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_string()
            })
            .collect();
        let headers = result_headers(&header).map_err(|problem| ReportError::NotResults {
            path: path.to_path_buf(),
            problem,
        })?;
        let n_input = header.len() - RESULT_COLUMNS.len();
        let input_headers: StringRecord = header.iter().take(n_input).collect();
        Ok(ResultsReader {
            path: path.to_path_buf(),
            file_ix,
            default_city,
            csv,
            headers,
            n_fields: header.len(),
            columns: Columns::find(&input_headers),
            record: ByteRecord::new(),
            n_skipped: 0,
            skipped_lines: Vec::new(),
        })
    }

    /// The next readable row; lines that are not one are counted and passed over.
    fn next_row(&mut self) -> Result<Option<ResultRow>, ReportError> {
        loop {
            let more = self
                .csv
                .read_byte_record(&mut self.record)
                .map_err(|e| ReportError::Io {
                    path: self.path.clone(),
                    source: e.into(),
                })?;
            if !more {
                return Ok(None);
            }
            let record = StringRecord::from_byte_record_lossy(self.record.clone());
            let parsed = if record.len() == self.n_fields {
                output::parse_result(&record)
            } else {
                None
            };
            let Some((row, outcome)) = parsed else {
                self.n_skipped += 1;
                if self.skipped_lines.len() < 5 {
                    self.skipped_lines
                        .push(self.record.position().map_or(0, |p| p.line()));
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

    fn skipped_note(&self) -> Option<String> {
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

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What the comparison remembers of a vehicle: the outcome of the row that speaks for it.
struct VehicleState {
    status: Status,
    file_ix: u32,
    row: u64,
    message: Box<str>,
    renewal_token: Box<str>,
    label: Box<str>,
    city: u8,
}

impl VehicleState {
    fn outcome(&self) -> (Status, &str) {
        (self.status, &self.renewal_token)
    }
}

/// The vehicles seen: fingerprints only, or their outcomes too when comparing.
enum Vehicles {
    Count(HashSet<u128>),
    Track(HashMap<u128, VehicleState>),
}

impl Vehicles {
    fn new(track: bool) -> Vehicles {
        if track {
            Vehicles::Track(HashMap::new())
        } else {
            Vehicles::Count(HashSet::new())
        }
    }

    fn len(&self) -> usize {
        match self {
            Vehicles::Count(set) => set.len(),
            Vehicles::Track(map) => map.len(),
        }
    }

    fn add(&mut self, file_ix: usize, row: &ResultRow) {
        let map = match self {
            Vehicles::Count(set) => {
                set.insert(row.vehicle.fingerprint);
                return;
            }
            Vehicles::Track(map) => map,
        };
        let speaks = map
            .get(&row.vehicle.fingerprint)
            .is_none_or(|seen| rank(row.outcome.status) >= rank(seen.status));
        if speaks {
            map.insert(
                row.vehicle.fingerprint,
                VehicleState {
                    status: row.outcome.status,
                    file_ix: file_ix as u32,
                    row: row.row,
                    message: row.outcome.message.as_str().into(),
                    renewal_token: row.outcome.renewal_token.as_str().into(),
                    label: row.vehicle.label.as_str().into(),
                    city: row.vehicle.city.map_or(0, |city| city.id),
                },
            );
        }
    }
}

#[derive(Default)]
struct CityTally {
    rows: u64,
    renewed: u64,
    not_renewable: u64,
    failed: u64,
}

/// The running counts over this run's files.
struct Tally {
    rows: u64,
    by_status: BTreeMap<Status, u64>,
    reached_api: u64,
    /// By city id, 0 for unknown.
    by_city: BTreeMap<u8, CityTally>,
    reasons: HashMap<(Status, String), u64>,
    attempts: BTreeMap<u32, u64>,
    retry_by_file: Vec<u64>,
    n_attention: u64,
    attention: Vec<AttentionRow>,
    vehicles: Vehicles,
}

impl Tally {
    fn add(&mut self, file_ix: usize, file: &str, row: &ResultRow) {
        let outcome = &row.outcome;
        self.rows += 1;
        *self.by_status.entry(outcome.status).or_default() += 1;
        if outcome.http_status.is_some() {
            self.reached_api += 1;
        }
        let city = self
            .by_city
            .entry(row.vehicle.city.map_or(0, |city| city.id))
            .or_default();
        city.rows += 1;
        match class(outcome.status) {
            Class::Renewed => city.renewed += 1,
            Class::NotRenewable => city.not_renewable += 1,
            Class::Failed => {
                city.failed += 1;
                self.n_attention += 1;
                if self.attention.len() < LIST_LIMIT {
                    self.attention.push(AttentionRow {
                        file: file.to_string(),
                        row: row.row,
                        vehicle: row.vehicle.label.clone(),
                        city: city_label(row.vehicle.city.map_or(0, |city| city.id)),
                        status: outcome.status,
                        message: outcome.message.clone(),
                    });
                }
            }
        }
        for reason in &row.reasons {
            let key = (outcome.status, reason.clone());
            if let Some(n) = self.reasons.get_mut(&key) {
                *n += 1;
            } else if self.reasons.len() < MAX_DISTINCT_REASONS {
                self.reasons.insert(key, 1);
            } else {
                *self
                    .reasons
                    .entry((outcome.status, OTHER_REASONS.to_string()))
                    .or_default() += 1;
            }
        }
        *self.attempts.entry(outcome.attempts).or_default() += 1;
        if !outcome.status.is_final() {
            self.retry_by_file[file_ix] += 1;
        }
        self.vehicles.add(file_ix, row);
    }
}

fn city_label(id: u8) -> String {
    City::by_id(id).map_or_else(|| "unknown".to_string(), |city| city.label())
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Report {
    /// Reads `files` (this run) and, if given, `against` (an earlier run), and accounts for
    /// them. Every header is checked before any row is read.
    /// `default_city` is the runs' `--city-code`, for rows that have no city of their own.
    pub fn build(
        files: &[PathBuf],
        against: Option<&Path>,
        default_city: Option<City>,
    ) -> Result<Report, ReportError> {
        let mut readers = files
            .iter()
            .enumerate()
            .map(|(file_ix, path)| ResultsReader::open(path, file_ix, default_city))
            .collect::<Result<Vec<_>, _>>()?;
        let mut previous_reader = against
            .map(|path| ResultsReader::open(path, 0, default_city))
            .transpose()?;
        let mut notes = Vec::new();

        let mut previous = None;
        if let Some(reader) = previous_reader.as_mut() {
            let mut vehicles = Vehicles::new(true);
            let mut n_rows = 0;
            while let Some(row) = reader.next_row()? {
                n_rows += 1;
                vehicles.add(0, &row);
            }
            notes.extend(reader.skipped_note());
            previous = Some((n_rows, vehicles));
        }

        let mut tally = Tally {
            rows: 0,
            by_status: BTreeMap::new(),
            reached_api: 0,
            by_city: BTreeMap::new(),
            reasons: HashMap::new(),
            attempts: BTreeMap::new(),
            retry_by_file: vec![0; files.len()],
            n_attention: 0,
            attention: Vec::new(),
            vehicles: Vehicles::new(previous.is_some()),
        };
        let mut file_figures = Vec::new();
        for (file_ix, reader) in readers.iter_mut().enumerate() {
            let name = reader.path.display().to_string();
            let before = tally.rows;
            while let Some(row) = reader.next_row()? {
                tally.add(file_ix, &name, &row);
            }
            notes.extend(reader.skipped_note());
            file_figures.push(FileFigures {
                path: name,
                headers: reader.headers,
                rows: tally.rows - before,
                skipped_lines: reader.n_skipped,
            });
        }

        let against = match (previous, against) {
            (Some((previous_rows, Vehicles::Track(previous))), Some(path)) => {
                let Vehicles::Track(current) = &tally.vehicles else {
                    unreachable!("vehicles are tracked when comparing")
                };
                Some(compare(path, previous_rows, &previous, current, files))
            }
            _ => None,
        };
        Ok(Report::from_tally(tally, file_figures, files, against, notes))
    }

    fn from_tally(
        tally: Tally,
        files: Vec<FileFigures>,
        paths: &[PathBuf],
        against: Option<Comparison>,
        notes: Vec<String>,
    ) -> Report {
        let by_status = Status::ALL
            .into_iter()
            .chain(tally.by_status.keys().copied())
            .map(|status| {
                let rows = tally.by_status.get(&status).copied().unwrap_or(0);
                (
                    status,
                    StatusFigures {
                        rows,
                        share: share(rows, tally.rows),
                    },
                )
            })
            .collect();
        let n_renewed = tally.by_status.get(&Status::Renewed).copied().unwrap_or(0);
        let mut by_city: Vec<CityFigures> = tally
            .by_city
            .iter()
            .map(|(&id, counts)| {
                let city = City::by_id(id);
                CityFigures {
                    city: city.map_or("unknown", |city| city.name).to_string(),
                    city_id: city.map(|city| city.id),
                    rows: counts.rows,
                    renewed: counts.renewed,
                    not_renewable: counts.not_renewable,
                    failed: counts.failed,
                }
            })
            .collect();
        by_city.sort_by_key(|city| city.city_id.map_or(u16::MAX, u16::from));
        let mut reasons: Vec<ReasonFigures> = tally
            .reasons
            .into_iter()
            .map(|((status, reason), rows)| ReasonFigures { status, reason, rows })
            .collect();
        reasons.sort_by(|a, b| {
            b.rows
                .cmp(&a.rows)
                .then(a.status.cmp(&b.status))
                .then_with(|| a.reason.cmp(&b.reason))
        });
        reasons.truncate(TOP_REASONS);
        let commands = paths
            .iter()
            .zip(&tally.retry_by_file)
            .filter(|&(_, &rows)| rows > 0)
            .map(|(path, &rows)| retry_command(path, rows))
            .collect();
        Report {
            files,
            rows: tally.rows,
            vehicles: tally.vehicles.len() as u64,
            by_status,
            reached_api: tally.reached_api,
            renewal_rate: (tally.reached_api > 0).then(|| share(n_renewed, tally.reached_api)),
            by_city,
            reasons,
            attempts: tally.attempts,
            retry: RetryFigures {
                rows: tally.retry_by_file.iter().sum(),
                commands,
            },
            attention: AttentionFigures {
                rows: tally.n_attention,
                listed: tally.attention,
            },
            against,
            notes,
        }
    }

    /// Rows with `status`.
    pub fn count(&self, status: Status) -> u64 {
        self.by_status.get(&status).map_or(0, |figures| figures.rows)
    }
}

fn compare(
    previous_path: &Path,
    previous_rows: u64,
    previous: &HashMap<u128, VehicleState>,
    current: &HashMap<u128, VehicleState>,
    files: &[PathBuf],
) -> Comparison {
    let previous_name = previous_path.display().to_string();
    let outcome = |state: &VehicleState, file: String| VehicleOutcome {
        file,
        row: state.row,
        status: state.status,
        message: state.message.to_string(),
        renewal_token: state.renewal_token.to_string(),
    };
    let mut counts: BTreeMap<Change, u64> = Change::ALL.into_iter().map(|change| (change, 0)).collect();
    let mut changed = Vec::new();
    let fingerprints = current.keys().chain(
        previous
            .keys()
            .filter(|fingerprint| !current.contains_key(*fingerprint)),
    );
    for fingerprint in fingerprints {
        let before = previous.get(fingerprint);
        let now = current.get(fingerprint);
        let change = Change::between(before.map(VehicleState::outcome), now.map(VehicleState::outcome));
        *counts.entry(change).or_default() += 1;
        if change == Change::Unchanged {
            continue;
        }
        let speaker = now.or(before).expect("a vehicle is in one run at least");
        changed.push(ChangedVehicle {
            change,
            vehicle: speaker.label.to_string(),
            city: city_label(speaker.city),
            previous: before.map(|state| outcome(state, previous_name.clone())),
            current: now.map(|state| outcome(state, files[state.file_ix as usize].display().to_string())),
        });
    }
    let order = |changed: &ChangedVehicle| {
        let (file_ix, row) = match (&changed.current, &changed.previous) {
            (Some(now), _) => (
                files
                    .iter()
                    .position(|f| f.display().to_string() == now.file)
                    .unwrap_or(0),
                now.row,
            ),
            (None, Some(before)) => (0, before.row),
            (None, None) => (0, 0),
        };
        (changed.change, file_ix, row, changed.vehicle.clone())
    };
    changed.sort_by_cached_key(order);
    Comparison {
        previous: previous_name,
        previous_rows,
        previous_vehicles: previous.len() as u64,
        counts,
        changed,
    }
}

/// `bihu-renew run <input> -o <results> --resume`, the input guessed from the file name.
fn retry_command(results: &Path, rows: u64) -> RetryCommand {
    let guess = guess_input(results);
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
            shell_quote(&results.display().to_string())
        ),
    }
}

/// `x.results.csv` was written from `x.csv` (or from `x.xlsx`, if that is what is there).
pub fn guess_input(results: &Path) -> Option<PathBuf> {
    let name = results.file_name()?.to_str()?;
    let stem = name
        .strip_suffix(".csv")
        .or_else(|| name.strip_suffix(".CSV"))?
        .strip_suffix(".results")?;
    if stem.is_empty() {
        return None;
    }
    let csv = results.with_file_name(format!("{stem}.csv"));
    let xlsx = results.with_file_name(format!("{stem}.xlsx"));
    Some(if !csv.exists() && xlsx.exists() { xlsx } else { csv })
}

/// Quotes for a POSIX shell when needed.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | ',' | '@' | '%'));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Columns a character takes in a terminal: East Asian wide characters take two.
fn display_width(text: &str) -> usize {
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
        if self.retry.rows == 0 {
            writeln!(f, "  nothing: every row has a final outcome")?;
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
            for (change, n) in &comparison.counts {
                writeln!(f, "  {:<22} {n:>6}", change.label())?;
            }
        }
        Ok(())
    }
}

fn guess_remark(command: &RetryCommand) -> String {
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

/// `&`, `<`, `>`, `"` and `'` as HTML entities: safe in text and in quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn status_colour(status: Status) -> &'static str {
    match status {
        Status::Renewed => "#2e7d32",
        Status::NotRenewable => "#f0a202",
        Status::InvalidInput => "#7b1fa2",
        Status::InvalidParams => "#ab47bc",
        Status::Unauthorized => "#b71c1c",
        Status::VerificationFailed => "#d32f2f",
        Status::ServerError => "#e64a19",
        Status::TransportError => "#ff7043",
        _ => "#8d6e63",
    }
}

const RENEWED_COLOUR: &str = "#2e7d32";
const NOT_RENEWABLE_COLOUR: &str = "#f0a202";
const FAILED_COLOUR: &str = "#c62828";

const STYLE: &str = r#"
*{box-sizing:border-box;-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",sans-serif;color:#222;max-width:186mm;margin:2em auto;padding:0 1em;font-size:14px;line-height:1.4}
h1{font-size:1.5em;margin:0 0 .2em}
h2{font-size:1.15em;margin:1.4em 0 .5em;border-bottom:1px solid #ccc;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.3em 0}
th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #e4e4e4;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.message{overflow-wrap:anywhere}
dl#figures{display:grid;grid-template-columns:repeat(3,1fr);gap:.4em 1em;margin:1em 0}
dl#figures div{border:1px solid #ddd;border-radius:4px;padding:.4em .6em}
dt{font-size:.85em;color:#555}
dd{margin:0;font-size:1.4em;font-weight:600}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.4em;vertical-align:-.05em}
.muted{color:#666;font-size:.9em}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:1px 4px;overflow-wrap:anywhere}
svg{display:block;width:100%;height:auto}
figure{margin:.6em 0}
table.narrow{width:auto;min-width:45%}
@page{size:A4;margin:14mm 12mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}h2{break-after:avoid}tr,figure,dl#figures div{break-inside:avoid}thead{display:table-header-group}}
"#;

impl Report {
    /// The report as one self-contained HTML page: no script, no external font, image or
    /// style sheet; charts are inline SVG; every text from the files is escaped.
    pub fn to_html(&self) -> String {
        let mut html = String::new();
        self.write_html(&mut html)
            .expect("writing to a String cannot fail");
        html
    }

    fn write_html(&self, h: &mut String) -> fmt::Result {
        let title = match self.files.as_slice() {
            [file] => format!("Renewal report: {}", file.path),
            files => format!("Renewal report: {} files", files.len()),
        };
        write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
            escape_html(&title),
            escape_html(&title)
        )?;
        h.push_str("<table id=\"files\"><thead><tr><th>File</th><th>Result columns</th><th class=\"n\">Rows</th><th class=\"n\">Lines left out</th></tr></thead><tbody>\n");
        for file in &self.files {
            let headers = match file.headers {
                ResultHeaders::English => "English",
                ResultHeaders::Chinese => "中文",
            };
            writeln!(
                h,
                "<tr><td>{}</td><td>{headers}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape_html(&file.path),
                file.rows,
                file.skipped_lines
            )?;
        }
        h.push_str("</tbody></table>\n");

        let rate = self.renewal_rate.map_or_else(|| "-".to_string(), percent);
        h.push_str("<dl id=\"figures\">\n");
        for (key, label, value) in [
            ("rows", "Rows", self.rows.to_string()),
            ("vehicles", "Distinct vehicles", self.vehicles.to_string()),
            (
                "reached_api",
                "Rows that reached the API",
                self.reached_api.to_string(),
            ),
            ("renewal_rate", "Renewal rate (renewed / reached the API)", rate),
            ("retry", "Rows to retry", self.retry.rows.to_string()),
            (
                "attention",
                "Rows needing attention",
                self.attention.rows.to_string(),
            ),
        ] {
            writeln!(
                h,
                "<div data-figure=\"{key}\"><dt>{}</dt><dd>{}</dd></div>",
                escape_html(label),
                escape_html(&value)
            )?;
        }
        h.push_str("</dl>\n");

        self.write_outcomes_html(h)?;
        self.write_cities_html(h)?;
        self.write_reasons_html(h)?;
        self.write_retry_html(h)?;
        if let Some(comparison) = &self.against {
            write_changes_html(h, comparison)?;
        }
        self.write_attention_html(h)?;
        if !self.notes.is_empty() {
            h.push_str("<section id=\"notes\"><h2>Notes</h2><ul>\n");
            for note in &self.notes {
                writeln!(h, "<li>{}</li>", escape_html(note))?;
            }
            h.push_str("</ul></section>\n");
        }
        h.push_str("</body>\n</html>\n");
        Ok(())
    }

    fn write_outcomes_html(&self, h: &mut String) -> fmt::Result {
        h.push_str("<section id=\"outcomes\"><h2>Outcomes</h2>\n");
        h.push_str(
            "<figure><svg id=\"outcome-bar\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1000 40\" role=\"img\" aria-label=\"Rows by outcome\">\n",
        );
        let mut x = 0.0;
        for (status, figures) in self.by_status.iter().filter(|(_, figures)| figures.rows > 0) {
            let width = figures.share * 1000.0;
            writeln!(
                h,
                "<rect data-status=\"{status}\" data-rows=\"{}\" x=\"{x:.2}\" y=\"0\" width=\"{width:.2}\" height=\"40\" fill=\"{}\"><title>{status}: {} rows, {}</title></rect>",
                figures.rows,
                status_colour(*status),
                figures.rows,
                percent(figures.share)
            )?;
            x += width;
        }
        if self.rows == 0 {
            h.push_str("<rect x=\"0\" y=\"0\" width=\"1000\" height=\"40\" fill=\"#eee\"/>\n");
        }
        h.push_str("</svg></figure>\n");
        h.push_str("<table id=\"by-status\"><thead><tr><th>Status</th><th class=\"n\">Rows</th><th class=\"n\">Share</th></tr></thead><tbody>\n");
        for (status, figures) in self.by_status.iter().filter(|(_, figures)| figures.rows > 0) {
            writeln!(
                h,
                "<tr data-status=\"{status}\"><td><span class=\"swatch\" style=\"background:{}\"></span>{status}</td><td class=\"n rows\">{}</td><td class=\"n share\">{}</td></tr>",
                status_colour(*status),
                figures.rows,
                percent(figures.share)
            )?;
        }
        h.push_str("</tbody></table>\n");
        writeln!(
            h,
            "<p id=\"renewal-rate\">Renewal rate: <strong>{}</strong> ({} renewed of {} rows that reached the API).</p>",
            self.renewal_rate.map_or_else(|| "-".to_string(), percent),
            self.count(Status::Renewed),
            self.reached_api
        )?;
        h.push_str("</section>\n");
        Ok(())
    }

    fn write_cities_html(&self, h: &mut String) -> fmt::Result {
        h.push_str("<section id=\"cities\"><h2>By city</h2>\n");
        if !self.by_city.is_empty() {
            const LABEL: f64 = 130.0;
            const BARS: f64 = 480.0;
            const ROW: f64 = 24.0;
            let max = self
                .by_city
                .iter()
                .map(|city| city.rows)
                .max()
                .unwrap_or(1)
                .max(1) as f64;
            let n = self.by_city.len() as f64;
            let height = n * ROW + 34.0;
            writeln!(
                h,
                "<figure><svg id=\"city-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 680 {height}\" role=\"img\" aria-label=\"Rows by city and outcome\" font-size=\"12\">"
            )?;
            for (i, city) in self.by_city.iter().enumerate() {
                let y = i as f64 * ROW + 4.0;
                let label = escape_html(&city.label());
                writeln!(
                    h,
                    "<g data-city=\"{label}\"><text x=\"0\" y=\"{:.1}\">{label}</text>",
                    y + 13.0
                )?;
                let mut x = LABEL;
                for (part, n, colour) in [
                    ("renewed", city.renewed, RENEWED_COLOUR),
                    ("not_renewable", city.not_renewable, NOT_RENEWABLE_COLOUR),
                    ("failed", city.failed, FAILED_COLOUR),
                ] {
                    let width = n as f64 / max * BARS;
                    if n > 0 {
                        writeln!(
                            h,
                            "<rect data-part=\"{part}\" data-rows=\"{n}\" x=\"{x:.2}\" y=\"{y:.1}\" width=\"{width:.2}\" height=\"18\" fill=\"{colour}\"><title>{label}: {part} {n}</title></rect>"
                        )?;
                    }
                    x += width;
                }
                writeln!(
                    h,
                    "<text x=\"{:.2}\" y=\"{:.1}\" fill=\"#444\">{}</text></g>",
                    x + 6.0,
                    y + 13.0,
                    city.rows
                )?;
            }
            let legend_y = n * ROW + 14.0;
            let mut x = LABEL;
            for (name, colour) in [
                ("renewed", RENEWED_COLOUR),
                ("not renewable", NOT_RENEWABLE_COLOUR),
                ("failed", FAILED_COLOUR),
            ] {
                writeln!(
                    h,
                    "<rect x=\"{x}\" y=\"{legend_y}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{name}</text>",
                    x + 16.0,
                    legend_y + 10.5
                )?;
                x += 120.0;
            }
            h.push_str("</svg></figure>\n");
        }
        h.push_str("<table id=\"by-city\"><thead><tr><th>City</th><th class=\"n\">Rows</th><th class=\"n\">Renewed</th><th class=\"n\">Not renewable</th><th class=\"n\">Failed</th></tr></thead><tbody>\n");
        for city in &self.by_city {
            let id = city.city_id.map_or_else(String::new, |id| id.to_string());
            writeln!(
                h,
                "<tr data-city=\"{}\" data-city-id=\"{id}\"><td>{}</td><td class=\"n rows\">{}</td><td class=\"n renewed\">{}</td><td class=\"n not_renewable\">{}</td><td class=\"n failed\">{}</td></tr>",
                escape_html(&city.city),
                escape_html(&city.label()),
                city.rows,
                city.renewed,
                city.not_renewable,
                city.failed
            )?;
        }
        h.push_str("</tbody></table></section>\n");
        Ok(())
    }

    fn write_reasons_html(&self, h: &mut String) -> fmt::Result {
        h.push_str("<section id=\"reasons-section\"><h2>Most frequent reasons (rows not renewed)</h2>\n");
        h.push_str("<table id=\"reasons\"><thead><tr><th class=\"n\">Rows</th><th>Status</th><th>Reason</th></tr></thead><tbody>\n");
        for reason in &self.reasons {
            writeln!(
                h,
                "<tr data-status=\"{}\"><td class=\"n rows\">{}</td><td class=\"status\">{}</td><td class=\"message reason\">{}</td></tr>",
                reason.status,
                reason.rows,
                reason.status,
                escape_html(&reason.reason)
            )?;
        }
        h.push_str(
            "</tbody></table>\n<p class=\"muted\">A rejected row may give several reasons.</p></section>\n",
        );
        h.push_str("<section id=\"attempts-section\"><h2>Attempts</h2>\n");
        h.push_str("<table id=\"attempts\" class=\"narrow\"><thead><tr><th class=\"n\">Attempts</th><th class=\"n\">Rows</th></tr></thead><tbody>\n");
        for (attempts, rows) in &self.attempts {
            writeln!(
                h,
                "<tr data-attempts=\"{attempts}\"><td class=\"n\">{attempts}</td><td class=\"n rows\">{rows}</td></tr>"
            )?;
        }
        h.push_str("</tbody></table></section>\n");
        Ok(())
    }

    fn write_retry_html(&self, h: &mut String) -> fmt::Result {
        h.push_str("<section id=\"retry\"><h2>To retry</h2>\n");
        if self.retry.rows == 0 {
            h.push_str("<p>Nothing: every row has a final outcome.</p>\n");
        } else {
            writeln!(
                h,
                "<p>{} row{} with a transient outcome; <code>run --resume</code> sends {} again:</p>",
                self.retry.rows,
                plural(self.retry.rows),
                if self.retry.rows == 1 { "it" } else { "them" }
            )?;
            for command in &self.retry.commands {
                writeln!(
                    h,
                    "<p data-results=\"{}\" data-rows=\"{}\"><code class=\"command\">{}</code><br><span class=\"muted\">{}</span></p>",
                    escape_html(&command.results),
                    command.rows,
                    escape_html(&command.command),
                    escape_html(&guess_remark(command))
                )?;
            }
        }
        h.push_str("</section>\n");
        Ok(())
    }

    fn write_attention_html(&self, h: &mut String) -> fmt::Result {
        h.push_str("<section id=\"attention-section\"><h2>Rows needing attention</h2>\n");
        writeln!(
            h,
            "<p>{} row{} neither renewed nor not renewable: retry the transient ones, fix the list for invalid_input and invalid_params.{}</p>",
            self.attention.rows,
            plural(self.attention.rows),
            listed_remark(self.attention.listed.len(), self.attention.rows)
        )?;
        h.push_str("<table id=\"attention\"><thead><tr><th>File</th><th class=\"n\">Row</th><th>Vehicle</th><th>City</th><th>Status</th><th>Message</th></tr></thead><tbody>\n");
        for row in &self.attention.listed {
            writeln!(
                h,
                "<tr data-status=\"{}\"><td>{}</td><td class=\"n row\">{}</td><td class=\"vehicle\">{}</td><td class=\"city\">{}</td><td class=\"status\">{}</td><td class=\"message\">{}</td></tr>",
                row.status,
                escape_html(&row.file),
                row.row,
                escape_html(&row.vehicle),
                escape_html(&row.city),
                row.status,
                escape_html(&row.message)
            )?;
        }
        h.push_str("</tbody></table></section>\n");
        Ok(())
    }
}

fn listed_remark(listed: usize, total: u64) -> String {
    if (listed as u64) < total {
        format!(" The first {listed} are listed.")
    } else {
        String::new()
    }
}

fn write_changes_html(h: &mut String, comparison: &Comparison) -> fmt::Result {
    h.push_str("<section id=\"changes-section\"><h2>Changes since the earlier run</h2>\n");
    writeln!(
        h,
        "<p>Against <code>{}</code>: {} rows, {} vehicles.</p>",
        escape_html(&comparison.previous),
        comparison.previous_rows,
        comparison.previous_vehicles
    )?;
    h.push_str("<table id=\"change-counts\" class=\"narrow\"><thead><tr><th>Change</th><th class=\"n\">Vehicles</th></tr></thead><tbody>\n");
    for (change, n) in &comparison.counts {
        writeln!(
            h,
            "<tr data-change=\"{}\"><td>{}</td><td class=\"n vehicles\">{n}</td></tr>",
            change.as_str(),
            change.label()
        )?;
    }
    h.push_str("</tbody></table>\n");
    let shown = comparison.changed.len().min(LIST_LIMIT);
    writeln!(
        h,
        "<p class=\"muted\">Changed vehicles, with both outcomes.{}</p>",
        listed_remark(shown, comparison.changed.len() as u64)
    )?;
    h.push_str("<table id=\"changes\"><thead><tr><th>Change</th><th>Vehicle</th><th>City</th><th>Before</th><th>Now</th></tr></thead><tbody>\n");
    let side = |outcome: &Option<VehicleOutcome>| match outcome {
        None => "<td class=\"muted\">-</td>".to_string(),
        Some(o) => format!(
            "<td data-row=\"{}\" data-status=\"{}\">row {}: <strong>{}</strong><br><span class=\"message\">{}</span>{}</td>",
            o.row,
            o.status,
            o.row,
            o.status,
            escape_html(&o.message),
            if o.renewal_token.is_empty() {
                String::new()
            } else {
                format!("<br><code>{}</code>", escape_html(&o.renewal_token))
            }
        ),
    };
    for changed in comparison.changed.iter().take(LIST_LIMIT) {
        writeln!(
            h,
            "<tr data-change=\"{}\"><td>{}</td><td class=\"vehicle\">{}</td><td class=\"city\">{}</td>{}{}</tr>",
            changed.change.as_str(),
            changed.change.label(),
            escape_html(&changed.vehicle),
            escape_html(&changed.city),
            side(&changed.previous),
            side(&changed.current)
        )?;
    }
    h.push_str("</tbody></table></section>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    /// One results row: (input fields, row, status, http_status, message, token, attempts).
    type Row<'a> = ([&'a str; 5], u64, Status, Option<u16>, &'a str, &'a str, u32);

    const HEADER: [&str; 5] = ["name", "plate", "vin", "engine_no", "city"];
    const NO_RENEWAL: &str = "续保失败 / no renewal data for this vehicle";
    const SHORT_PLATE: &str = "plate 京A1234 has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character";
    const NO_VEHICLE: &str = "no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo) | no city: the row has no CityCode; add a CityCode column or pass --city-code";
    const VIN: &str = "LS4ASE2A2GJ137027";

    /// Today's run: every status class, a duplicate, a VIN-only lead, two rejected rows.
    fn current_rows() -> Vec<Row<'static>> {
        use Status::*;
        vec![
            (
                ["A", "京J97896", "", "", ""],
                1,
                Renewed,
                Some(200),
                "续保成功",
                "T1",
                1,
            ),
            (
                ["B", "粤B12345", "", "", ""],
                2,
                NotRenewable,
                Some(206),
                NO_RENEWAL,
                "",
                1,
            ),
            (
                ["C", "沪A12345", "", "", ""],
                3,
                ServerError,
                Some(500),
                "HTTP 500: busy",
                "",
                4,
            ),
            (
                ["D", "京A1234", "", "", ""],
                4,
                InvalidInput,
                None,
                SHORT_PLATE,
                "",
                0,
            ),
            (
                ["E", " 京j97896", "", "", "1"],
                5,
                Renewed,
                Some(200),
                "same vehicle as row 1: 续保成功",
                "T1",
                0,
            ),
            (["F", "", "", "", ""], 6, InvalidInput, None, NO_VEHICLE, "", 0),
            (
                ["G", "", VIN, "2192209", "北京"],
                7,
                Renewed,
                Some(200),
                "续保成功",
                "T7",
                2,
            ),
            (
                ["H", "苏A11111", "", "", ""],
                8,
                TransportError,
                None,
                "timed out after 30s",
                "",
                4,
            ),
            (
                ["I", "粤B22222", "", "", ""],
                9,
                NotRenewable,
                Some(206),
                NO_RENEWAL,
                "",
                1,
            ),
            (
                ["J", "沪B54321", "", "", ""],
                10,
                InvalidParams,
                Some(412),
                "参数错误",
                "",
                1,
            ),
            (
                ["K", "京A88888", "", "", ""],
                11,
                Renewed,
                Some(200),
                "续保成功",
                "T11",
                3,
            ),
        ]
    }

    /// Yesterday's run, made so that every change category occurs.
    fn previous_rows() -> Vec<Row<'static>> {
        use Status::*;
        vec![
            (
                ["A", "京J97896", "", "", ""],
                1,
                Renewed,
                Some(200),
                "续保成功",
                "T1",
                1,
            ),
            (
                ["B", "粤B12345", "", "", ""],
                2,
                Renewed,
                Some(200),
                "续保成功",
                "T2",
                1,
            ),
            (
                ["C", "沪A12345", "", "", ""],
                3,
                ServerError,
                Some(502),
                "HTTP 502: bad gateway",
                "",
                4,
            ),
            (
                ["D", "京A1234", "", "", ""],
                4,
                InvalidInput,
                None,
                SHORT_PLATE,
                "",
                0,
            ),
            (
                ["L", "津A12345", "", "", ""],
                5,
                Renewed,
                Some(200),
                "续保成功",
                "T5",
                1,
            ),
            (["F", "", "", "", ""], 6, InvalidInput, None, NO_VEHICLE, "", 0),
            (
                ["G", "", VIN, "2192209", "北京"],
                7,
                Renewed,
                Some(200),
                "续保成功",
                "T0",
                1,
            ),
            (
                ["H", "苏A11111", "", "", ""],
                8,
                NotRenewable,
                Some(206),
                NO_RENEWAL,
                "",
                1,
            ),
            (
                ["I", "粤B22222", "", "", ""],
                9,
                ServerError,
                Some(500),
                "HTTP 500: busy",
                "",
                4,
            ),
            (
                ["M", "京A88888", "", "", ""],
                10,
                ServerError,
                Some(500),
                "HTTP 500: busy",
                "",
                4,
            ),
        ]
    }

    /// Writes `rows` in the format of `output::ResultWriter`: the input's columns, then the
    /// result columns, written by the csv crate's default writer.
    fn write_results(path: &Path, rows: &[Row<'_>]) {
        let mut writer = csv::Writer::from_path(path).unwrap();
        writer.write_record(HEADER.iter().chain(&RESULT_COLUMNS)).unwrap();
        for (fields, row, status, http_status, message, token, attempts) in rows {
            let quote_url = if token.is_empty() {
                String::new()
            } else {
                format!("http://q/?RenewalToken={token}")
            };
            let result = [
                row.to_string(),
                status.as_str().to_string(),
                http_status.map_or_else(String::new, |s| s.to_string()),
                message.to_string(),
                token.to_string(),
                quote_url,
                attempts.to_string(),
                String::new(),
            ];
            writer
                .write_record(fields.iter().map(|f| f.to_string()).chain(result))
                .unwrap();
        }
        writer.flush().unwrap();
    }

    fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let current = dir.path().join("leads.results.csv");
        let previous = dir.path().join("yesterday.results.csv");
        write_results(&current, &current_rows());
        write_results(&previous, &previous_rows());
        (dir, current, previous)
    }

    #[test]
    fn every_figure_of_the_fixture() {
        let (_dir, current, _) = fixture();
        let report = Report::build(std::slice::from_ref(&current), None, None).unwrap();
        assert_eq!(report.rows, 11);
        assert_eq!(report.vehicles, 10, "rows 1 and 5 are the same vehicle");
        let counts: Vec<(Status, u64)> = report
            .by_status
            .iter()
            .filter(|(_, f)| f.rows > 0)
            .map(|(s, f)| (*s, f.rows))
            .collect();
        assert_eq!(
            counts,
            [
                (Status::Renewed, 4),
                (Status::NotRenewable, 2),
                (Status::InvalidParams, 1),
                (Status::InvalidInput, 2),
                (Status::ServerError, 1),
                (Status::TransportError, 1),
            ]
        );
        assert_eq!(report.by_status.len(), Status::ALL.len(), "zeros listed too");
        assert_eq!(report.by_status[&Status::Renewed].share, 4.0 / 11.0);
        assert_eq!(report.by_status[&Status::Unauthorized].share, 0.0);
        assert_eq!(report.reached_api, 8);
        assert_eq!(report.renewal_rate, Some(0.5));

        let cities: Vec<(Option<u8>, &str, [u64; 4])> = report
            .by_city
            .iter()
            .map(|c| {
                (
                    c.city_id,
                    c.city.as_str(),
                    [c.rows, c.renewed, c.not_renewable, c.failed],
                )
            })
            .collect();
        assert_eq!(
            cities,
            [
                (Some(1), "北京", [4, 4, 0, 0]),
                (Some(6), "上海", [2, 0, 0, 2]),
                (Some(8), "南京", [1, 0, 0, 1]),
                (Some(11), "深圳", [2, 0, 2, 0]),
                (None, "unknown", [2, 0, 0, 2]),
            ]
        );

        let reasons: Vec<(u64, Status, &str)> = report
            .reasons
            .iter()
            .map(|r| (r.rows, r.status, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (2, Status::NotRenewable, NO_RENEWAL),
                (1, Status::InvalidParams, "参数错误"),
                (
                    1,
                    Status::InvalidInput,
                    "no city: the row has no CityCode; add a CityCode column or pass --city-code"
                ),
                (
                    1,
                    Status::InvalidInput,
                    "no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo)"
                ),
                (
                    1,
                    Status::InvalidInput,
                    "plate … has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character"
                ),
                (1, Status::ServerError, "HTTP 500: busy"),
                (1, Status::TransportError, "timed out after 30s"),
            ]
        );

        assert_eq!(
            report.attempts,
            BTreeMap::from([(0, 3), (1, 4), (2, 1), (3, 1), (4, 2)])
        );
        assert_eq!(report.retry.rows, 2);
        let command = &report.retry.commands[0];
        assert_eq!(command.rows, 2);
        let input = current.with_file_name("leads.csv");
        assert_eq!(
            command.input_guess.as_deref(),
            Some(&*input.display().to_string())
        );
        assert!(!command.input_guess_exists);
        assert_eq!(
            command.command,
            format!(
                "bihu-renew run {} -o {} --resume",
                input.display(),
                current.display()
            )
        );
        assert_eq!(report.attention.rows, 5);
        let attention: Vec<(u64, &str, &str)> = report
            .attention
            .listed
            .iter()
            .map(|r| (r.row, r.vehicle.as_str(), r.city.as_str()))
            .collect();
        assert_eq!(
            attention,
            [
                (3, "沪A12345", "上海 (6)"),
                (4, "京A1234", "unknown"),
                (6, "row 6", "unknown"),
                (8, "苏A11111", "南京 (8)"),
                (10, "沪B54321", "上海 (6)"),
            ]
        );
        assert!(report.against.is_none());
        assert!(report.notes.is_empty());
    }

    #[test]
    fn every_change_category_against_the_earlier_run() {
        let (_dir, current, previous) = fixture();
        let report = Report::build(std::slice::from_ref(&current), Some(&previous), None).unwrap();
        let comparison = report.against.as_ref().unwrap();
        assert_eq!(comparison.previous_rows, 10);
        assert_eq!(comparison.previous_vehicles, 10);
        let expected = [
            (Change::NewlyRenewed, 1),
            (Change::NoLongerRenewable, 1),
            (Change::RenewalTokenChanged, 1),
            (Change::StillFailing, 3),
            (Change::OtherChange, 2),
            (Change::NewLead, 1),
            (Change::Disappeared, 1),
            (Change::Unchanged, 1),
        ];
        assert_eq!(comparison.counts, BTreeMap::from(expected));
        let changed: Vec<(Change, &str)> = comparison
            .changed
            .iter()
            .map(|c| (c.change, c.vehicle.as_str()))
            .collect();
        assert_eq!(
            changed,
            [
                (Change::NewlyRenewed, "京A88888"),
                (Change::NoLongerRenewable, "粤B12345"),
                (Change::RenewalTokenChanged, VIN),
                (Change::StillFailing, "沪A12345"),
                (Change::StillFailing, "京A1234"),
                (Change::StillFailing, "row 6"),
                (Change::OtherChange, "苏A11111"),
                (Change::OtherChange, "粤B22222"),
                (Change::NewLead, "沪B54321"),
                (Change::Disappeared, "津A12345"),
            ]
        );
        let token = &comparison.changed[2];
        assert_eq!(token.previous.as_ref().unwrap().renewal_token, "T0");
        assert_eq!(token.current.as_ref().unwrap().renewal_token, "T7");
        assert_eq!(token.city, "北京 (1)");
        assert!(comparison.changed[8].previous.is_none());
        assert!(comparison.changed[9].current.is_none());
        assert_eq!(comparison.changed[9].previous.as_ref().unwrap().row, 5);

        let mut csv_bytes = Vec::new();
        comparison.write_changes_csv(&mut csv_bytes).unwrap();
        let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
        assert_eq!(reader.headers().unwrap(), &CHANGES_COLUMNS[..]);
        let rows: Vec<StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 10);
        assert_eq!(
            rows[1].iter().collect::<Vec<_>>(),
            [
                "no_longer_renewable",
                "粤B12345",
                "深圳 (11)",
                "2",
                "renewed",
                "续保成功",
                "T2",
                &*current.display().to_string(),
                "2",
                "not_renewable",
                NO_RENEWAL,
                "",
            ]
        );
    }

    #[test]
    fn change_table() {
        use Status::*;
        let cases = [
            (None, Some((Renewed, "T")), Change::NewLead),
            (Some((Renewed, "T")), None, Change::Disappeared),
            (
                Some((ServerError, "")),
                Some((Renewed, "T")),
                Change::NewlyRenewed,
            ),
            (
                Some((NotRenewable, "")),
                Some((Renewed, "T")),
                Change::NewlyRenewed,
            ),
            (Some((Renewed, "T")), Some((Renewed, "T")), Change::Unchanged),
            (
                Some((Renewed, "T")),
                Some((Renewed, "U")),
                Change::RenewalTokenChanged,
            ),
            (
                Some((Renewed, "T")),
                Some((NotRenewable, "")),
                Change::NoLongerRenewable,
            ),
            (Some((Renewed, "T")), Some((ServerError, "")), Change::OtherChange),
            (
                Some((InvalidInput, "")),
                Some((TransportError, "")),
                Change::StillFailing,
            ),
            (
                Some((NotRenewable, "")),
                Some((NotRenewable, "")),
                Change::Unchanged,
            ),
            (
                Some((NotRenewable, "")),
                Some((ServerError, "")),
                Change::OtherChange,
            ),
            (
                Some((ServerError, "")),
                Some((NotRenewable, "")),
                Change::OtherChange,
            ),
        ];
        for (previous, current, expected) in cases {
            assert_eq!(
                Change::between(previous, current),
                expected,
                "{previous:?} -> {current:?}"
            );
        }
    }

    #[test]
    fn the_more_decided_row_speaks_for_a_vehicle_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("a.results.csv");
        let retry = dir.path().join("b.results.csv");
        use Status::*;
        write_results(
            &first,
            &[(
                ["A", "京J97896", "", "", ""],
                1,
                ServerError,
                Some(500),
                "HTTP 500: x",
                "",
                4,
            )],
        );
        write_results(
            &retry,
            &[(["A", "京J97896", "", "", ""], 1, Renewed, Some(200), "ok", "T", 1)],
        );
        let report = Report::build(&[first.clone(), retry.clone()], Some(&first), None).unwrap();
        assert_eq!(report.rows, 2);
        assert_eq!(report.vehicles, 1);
        assert_eq!(report.files.iter().map(|f| f.rows).collect::<Vec<_>>(), [1, 1]);
        let comparison = report.against.unwrap();
        assert_eq!(comparison.count(Change::NewlyRenewed), 1);
        assert_eq!(
            comparison.changed[0].current.as_ref().unwrap().file,
            retry.display().to_string()
        );
        assert_eq!(
            report.retry.commands.len(),
            1,
            "only the first file has rows to retry"
        );
        assert_eq!(report.retry.commands[0].results, first.display().to_string());
    }

    #[test]
    fn reasons_are_generalised() {
        let raw = RawLead {
            plate: " 京a1234 ",
            vin: "ls4ase2a2gj13702",
            engine: " 99X ",
            city: "拉萨",
        };
        assert_eq!(
            reasons_of(
                Status::InvalidInput,
                "plate 京A1234 has 6 characters | VIN LS4ASE2A2GJ13702 has 16 characters | city 拉萨 is not a Bihu city",
                &raw
            ),
            [
                "plate … has 6 characters",
                "VIN … has 16 characters",
                "city … is not a Bihu city"
            ]
        );
        assert_eq!(
            reasons_of(Status::NotRenewable, "same vehicle as row 12: 续保失败", &raw),
            ["续保失败"]
        );
        assert_eq!(
            reasons_of(Status::ServerError, "same vehicle as row x: kept", &raw),
            ["same vehicle as row x: kept"]
        );
        assert_eq!(
            reasons_of(
                Status::InvalidInput,
                "the row has 4 fields but the header has 3 (an unquoted comma?); extra fields: a | b",
                &raw
            ),
            ["the row has 4 fields but the header has 3 (an unquoted comma?); extra fields: …"]
        );
        assert_eq!(reasons_of(Status::ProtocolError, " ", &raw), [NO_MESSAGE]);
    }

    #[test]
    fn vehicles_that_do_not_validate_are_told_apart_by_plate_vin_or_row() {
        let raw = |plate, vin| RawLead {
            plate,
            vin,
            ..Default::default()
        };
        let by_plate = identify(&raw("京A1234", ""), None, 0, 4);
        assert_eq!(by_plate.label, "京A1234");
        assert_eq!(by_plate.city, None);
        assert_eq!(
            by_plate,
            identify(&raw(" 京a-1234", ""), None, 1, 9),
            "normalised, row ignored"
        );
        let by_vin = identify(&raw("", "ls4ase2a2gj13702"), None, 0, 4);
        assert_eq!(by_vin.label, "LS4ASE2A2GJ13702");
        let by_row = identify(&raw("", ""), None, 0, 4);
        assert_eq!(by_row.label, "row 4");
        assert_ne!(by_row.fingerprint, identify(&raw("", ""), None, 1, 4).fingerprint);
        assert_ne!(by_row.fingerprint, identify(&raw("", ""), None, 0, 5).fingerprint);
        let valid = identify(&raw("京J97896", ""), None, 0, 1);
        assert_eq!(valid.city.map(|c| c.id), Some(1));
        let lead = lead::validate(&raw("京J97896", ""), None).unwrap();
        assert_eq!(
            valid.fingerprint,
            lead.key().fingerprint(),
            "as run de-duplicates"
        );
    }

    #[test]
    fn headers_in_english_or_chinese_and_what_is_missing() {
        let header = |names: &[&str]| StringRecord::from(names.to_vec());
        let mut english = vec!["\u{feff}plate"];
        english.extend(RESULT_COLUMNS);
        assert_eq!(result_headers(&header(&english)), Ok(ResultHeaders::English));
        let mut chinese = vec!["车牌号"];
        chinese.extend(RESULT_COLUMNS_ZH);
        assert_eq!(result_headers(&header(&chinese)), Ok(ResultHeaders::Chinese));
        let problem = result_headers(&header(&["name", "plate", "row", "status"])).unwrap_err();
        assert!(
            problem.contains(
                "lacks the result columns http_status, message, renewal_token, quote_url, attempts, warnings"
            ),
            "{problem}"
        );
        assert!(
            problem.contains("Its header is: name,plate,row,status"),
            "{problem}"
        );
        let problem = result_headers(&header(&["车牌号", "状态"])).unwrap_err();
        assert!(
            problem.contains("lacks the result columns 行号, HTTP状态"),
            "{problem}"
        );
        let mut shuffled = vec!["plate"];
        shuffled.extend(RESULT_COLUMNS.iter().rev());
        let problem = result_headers(&header(&shuffled)).unwrap_err();
        assert!(problem.contains("not as the last 8 columns"), "{problem}");
    }

    #[test]
    fn retry_commands_guess_the_input_and_quote_paths() {
        assert_eq!(
            guess_input(Path::new("/d/leads.results.csv")),
            Some(PathBuf::from("/d/leads.csv"))
        );
        assert_eq!(guess_input(Path::new("/d/out.csv")), None);
        assert_eq!(guess_input(Path::new("/d/.results.csv")), None);
        let command = retry_command(Path::new("/my dir/客户's.results.csv"), 3);
        assert_eq!(
            command.command,
            r"bihu-renew run '/my dir/客户'\''s.csv' -o '/my dir/客户'\''s.results.csv' --resume"
        );
        let command = retry_command(Path::new("out.csv"), 1);
        assert_eq!(command.command, "bihu-renew run LEADS.csv -o out.csv --resume");
        assert_eq!(command.input_guess, None);
    }

    #[test]
    fn cut_and_foreign_lines_are_left_out_and_noted() {
        let (dir, current, _) = fixture();
        let text = std::fs::read_to_string(&current).unwrap();
        let cut = dir.path().join("cut.results.csv");
        // The first three rows whole, then half of the fourth: an interrupted `.partial`.
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut prefix = lines[..4].concat();
        prefix.push_str(&lines[4][..lines[4].len() / 2]);
        std::fs::write(&cut, prefix).unwrap();
        let report = Report::build(&[cut], None, None).unwrap();
        assert_eq!(report.rows, 3);
        assert_eq!(report.files[0].skipped_lines, 1);
        assert_eq!(report.notes.len(), 1);
        assert!(report.notes[0].contains("line 5"), "{:?}", report.notes);
    }

    #[test]
    fn terminal_and_html_carry_the_figures() {
        let (_dir, current, previous) = fixture();
        let report = Report::build(std::slice::from_ref(&current), Some(&previous), None).unwrap();
        let text = report.to_string();
        assert!(
            text.contains("renewal rate   50.0% (4 renewed of 8 rows that reached the API)"),
            "{text}"
        );
        let words = |start: &str| -> Vec<String> {
            let line = text.lines().find(|line| line.trim_start().starts_with(start));
            let line = line.unwrap_or_else(|| panic!("no line {start:?} in\n{text}"));
            line[line.find(start).unwrap() + start.len()..]
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(words("北京 (1)"), ["4", "4", "0", "0"]);
        assert_eq!(words("unknown"), ["2", "0", "0", "2"]);
        assert_eq!(words("renewed "), ["4", "36.4%"]);
        assert_eq!(words("still failing"), ["3"]);
        assert_eq!(words("RenewalToken changed"), ["1"]);
        // Wide characters take two columns: the numbers line up under the header.
        let header = text.lines().find(|line| line.starts_with("By city")).unwrap();
        let beijing = text.lines().find(|line| line.contains("北京 (1)")).unwrap();
        assert_eq!(display_width(header), display_width(beijing));
        let html = report.to_html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"));
        assert_eq!(
            escape_html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn an_empty_or_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            Report::build(&[empty], None, None),
            Err(ReportError::Empty { .. })
        ));
        let leads = dir.path().join("leads.csv");
        std::fs::write(&leads, "name,plate\nA,京J97896\n").unwrap();
        let error = Report::build(&[leads], None, None).unwrap_err();
        assert!(matches!(error, ReportError::NotResults { .. }));
        assert!(
            error.to_string().contains("lacks the result columns row, status"),
            "{error}"
        );
    }
}
