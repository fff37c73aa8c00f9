//! This run against an earlier one, vehicle by vehicle: the [`Change`] categories, the rule
//! that files a vehicle's two outcomes under one, and the [`Comparison`] built from the two
//! runs' vehicles (each the outcome of the row that speaks for it, see `tally`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::leads::city::City;
use crate::results::outcome::Status;

/// What changed for one vehicle between an earlier run and this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Not renewed before, renewed now.
    NewlyRenewed,
    /// Renewed before, answered not renewable now.
    NoLongerRenewable,
    /// Answered before (renewed or not renewable), failed now: to retry.
    NowFailing,
    /// Renewed both times, with a different RenewalToken.
    RenewalTokenChanged,
    /// Failed before, answered not renewable now.
    NowNotRenewable,
    /// Only in this run.
    NewLead,
    /// Only in the earlier run.
    Disappeared,
    /// Failed both times (neither renewed nor not renewable): no change, still to retry or fix.
    StillFailing,
    /// Renewed with the same RenewalToken, or not renewable, both times.
    Unchanged,
}

impl Change {
    pub const ALL: [Change; 9] = [
        Change::NewlyRenewed,
        Change::NoLongerRenewable,
        Change::NowFailing,
        Change::RenewalTokenChanged,
        Change::NowNotRenewable,
        Change::NewLead,
        Change::Disappeared,
        Change::StillFailing,
        Change::Unchanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Change::NewlyRenewed => "newly_renewed",
            Change::NoLongerRenewable => "no_longer_renewable",
            Change::NowFailing => "now_failing",
            Change::RenewalTokenChanged => "renewal_token_changed",
            Change::NowNotRenewable => "now_not_renewable",
            Change::NewLead => "new_lead",
            Change::Disappeared => "disappeared",
            Change::StillFailing => "still_failing",
            Change::Unchanged => "unchanged",
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            Change::NewlyRenewed => "newly renewed",
            Change::NoLongerRenewable => "no longer renewable",
            Change::NowFailing => "now failing",
            Change::RenewalTokenChanged => "RenewalToken changed",
            Change::NowNotRenewable => "now not renewable",
            Change::NewLead => "new leads",
            Change::Disappeared => "disappeared",
            Change::StillFailing => "still failing",
            Change::Unchanged => "unchanged",
        }
    }

    /// Whether the vehicle's outcome changed: not for [`Change::Unchanged`], and not for
    /// [`Change::StillFailing`] (a vehicle that failed both times is no news, whatever the
    /// failure), so a file compared with itself shows no change.
    pub fn is_change(self) -> bool {
        !matches!(self, Change::Unchanged | Change::StillFailing)
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
            (_, Class::Failed) => Change::NowFailing,
            (Class::Failed, Class::NotRenewable) => Change::NowNotRenewable,
        }
    }
}

/// A vehicle's outcome in one of the two runs compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VehicleOutcome {
    pub file: String,
    pub row: u64,
    pub status: Status,
    pub message: String,
    pub renewal_token: String,
    /// When the answer was given (ISO 8601), if the file says.
    pub answered_at: Option<String>,
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
    /// Every vehicle whose outcome changed ([`Change::is_change`]), by change, then row.
    pub changed: Vec<ChangedVehicle>,
    /// Vehicles of both runs whose answer now is the earlier run's very answer (the same
    /// `answered_at`): reused from the history, not asked again.
    pub same_answer: u64,
    /// Vehicles of both runs answered again since (a later `answered_at`): fresh answers.
    pub answered_again: u64,
}

pub(super) fn compare(
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
        answered_at: state.answered_at.map(crate::results::history::format_time),
    };
    let (mut same_answer, mut answered_again) = (0, 0);
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
        match (
            before.and_then(|state| state.answered_at),
            now.and_then(|state| state.answered_at),
        ) {
            (Some(then), Some(at)) if then == at => same_answer += 1,
            (Some(then), Some(at)) if at > then => answered_again += 1,
            _ => {}
        }
        if !change.is_change() {
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
        same_answer,
        answered_again,
    }
}

impl Comparison {
    pub fn count(&self, change: Change) -> u64 {
        self.counts.get(&change).copied().unwrap_or(0)
    }
}

/// What became of a vehicle, in three: the classes the figures and the comparison use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Renewed,
    NotRenewable,
    /// Anything else: to retry (transient statuses) or to fix (invalid_input, invalid_params).
    Failed,
}

pub(super) fn class(status: Status) -> Class {
    match status {
        Status::Renewed => Class::Renewed,
        Status::NotRenewable => Class::NotRenewable,
        _ => Class::Failed,
    }
}

/// What the comparison remembers of a vehicle: the outcome of the row that speaks for it.
pub(super) struct VehicleState {
    pub(super) status: Status,
    pub(super) file_ix: u32,
    pub(super) row: u64,
    pub(super) message: Box<str>,
    pub(super) renewal_token: Box<str>,
    pub(super) label: Box<str>,
    pub(super) city: u8,
    /// Unix ms.
    pub(super) answered_at: Option<i64>,
}

impl VehicleState {
    pub(super) fn outcome(&self) -> (Status, &str) {
        (self.status, &self.renewal_token)
    }
}

pub(super) fn city_label(id: u8) -> String {
    City::by_id(id).map_or_else(|| "unknown".to_string(), |city| city.label())
}
