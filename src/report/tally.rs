//! Counting: every row of this run's files goes through one [`Tally`] (statuses, cities,
//! reasons, attempts, rows to retry or look at, distinct vehicles); [`Report::build`] streams
//! the files into it and turns it into the figures. What it keeps grows with the distinct
//! vehicles and reasons (both capped where they could grow with the rows), never with the rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::compare::{Class, Comparison, VehicleState, city_label, class, compare};
use super::model::*;
use super::read::{ResultRow, ResultsReader};
use super::retry::{retry_command, unfinished};
use super::{LIST_LIMIT, MAX_DISTINCT_REASONS, OTHER_REASONS, ReportError, TOP_REASONS};
use crate::leads::city::City;
use crate::results::outcome::Status;

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
                    answered_at: row.outcome.answered_at,
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
            let rows = tally.rows - before;
            file_figures.push(FileFigures {
                path: name,
                headers: reader.headers,
                rows,
                skipped_lines: reader.n_skipped,
                unfinished: unfinished(&reader.path, rows),
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
