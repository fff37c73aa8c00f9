//! What the sandbox remembers while it runs: the Tokens it issued, the vehicles it has seen
//! (for `fail_first_attempts_only` and the per-vehicle counts), its counters and the recorded
//! requests. Shared by every handler behind one `Arc`; the locks are short and never held
//! across an await.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;

use super::{DROPPED_STATUS, RecordedRequest, SandboxConfig, StatsSnapshot, server_clock, vehicle_key};

pub(super) struct Shared {
    pub(super) config: SandboxConfig,
    pub(super) tokens: Mutex<HashMap<String, TokenEntry>>,
    /// Fingerprints of the vehicles seen, for `fail_first_attempts_only`.
    seen_vehicles: Mutex<HashSet<u128>>,
    /// Renewal requests by vehicle fingerprint.
    pub(super) per_vehicle: Mutex<HashMap<u128, u64>>,
    pub(super) counters: Counters,
    pub(super) records: Mutex<Vec<RecordedRequest>>,
    /// [`SandboxConfig::record_to`], open for appending, and the instant its times count from.
    record_file: Option<(Mutex<File>, Instant)>,
}

pub(super) struct TokenEntry {
    expires_at: Option<Instant>,
    /// Set by [`Sandbox::expire_tokens`].
    pub(super) revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenStatus {
    Valid,
    Unknown,
    Expired,
}

impl Shared {
    pub(super) fn new(config: SandboxConfig) -> io::Result<Shared> {
        let started = Instant::now();
        let record_file = match &config.record_to {
            Some(path) => Some((Mutex::new(File::create(path)?), started)),
            None => None,
        };
        let mut tokens = HashMap::new();
        if !config.token.trim().is_empty() {
            tokens.insert(
                config.token.trim().to_string(),
                TokenEntry {
                    expires_at: config.token_ttl.and_then(|ttl| started.checked_add(ttl)),
                    revoked: false,
                },
            );
        }
        Ok(Shared {
            config,
            tokens: Mutex::new(tokens),
            seen_vehicles: Mutex::new(HashSet::new()),
            per_vehicle: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            records: Mutex::new(Vec::new()),
            record_file,
        })
    }

    pub(super) fn token_status(&self, token: &str) -> TokenStatus {
        match lock(&self.tokens).get(token.trim()) {
            None => TokenStatus::Unknown,
            Some(entry) if entry.revoked => TokenStatus::Expired,
            Some(entry) if entry.expires_at.is_some_and(|at| Instant::now() >= at) => TokenStatus::Expired,
            Some(_) => TokenStatus::Valid,
        }
    }

    /// A fresh Token, valid for `lifetime` (forever if that overflows the clock).
    pub(super) fn issue_token(&self, lifetime: Duration) -> String {
        let token = format!("{:032X}", rand::random::<u128>());
        let entry = TokenEntry {
            expires_at: Instant::now().checked_add(lifetime),
            revoked: false,
        };
        lock(&self.tokens).insert(token.clone(), entry);
        token
    }

    /// Whether the fault rates apply to this request: always, or with
    /// `fail_first_attempts_only` only when its vehicle has not been seen before. A body that
    /// names no vehicle counts as a first attempt every time.
    pub(super) fn faults_apply(&self, body: &[u8]) -> bool {
        if !self.config.fail_first_attempts_only {
            return true;
        }
        match fault_fingerprint(body) {
            Some(fingerprint) => lock(&self.seen_vehicles).insert(fingerprint),
            None => true,
        }
    }

    pub(super) fn record(&self, at: Instant, body: &[u8], status: u16) {
        if let Some((file, started)) = &self.record_file {
            let line = format!(
                "{:.6} {status}\n",
                at.saturating_duration_since(*started).as_secs_f64()
            );
            // One unbuffered write a line: a crash loses no line already answered. A full
            // disk must not fail the answer; the line is lost, and said so.
            if let Err(error) = lock(file).write_all(line.as_bytes()) {
                tracing::warn!("sandbox: cannot append to the --record file: {error}");
            }
        }
        if self.config.record_requests {
            lock(&self.records).push(RecordedRequest {
                at,
                body: String::from_utf8_lossy(body).into_owned(),
                status,
            });
        }
    }
}

/// The vehicle a request body names, read leniently (before any check) for fault injection.
pub(super) fn fault_fingerprint(body: &[u8]) -> Option<u128> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    Some(
        vehicle_key(
            text("LicenseNo"),
            text("CarVin"),
            text("EngineNo"),
            text("CityCode").unwrap_or_default(),
        )
        .fingerprint(),
    )
}

/// A poisoned lock only means a handler panicked; the data (counters, sets) is still usable.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn chance(rate: f64) -> bool {
    // `random` is in [0, 1): a rate of 0 never fires, 1 always does.
    rate > 0.0 && rand::random::<f64>() < rate
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) renewed: AtomicU64,
    pub(super) not_renewable: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) verification_failed: AtomicU64,
    pub(super) invalid_params: AtomicU64,
    pub(super) server_errors: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) logins: AtomicU64,
    pub(super) login_failures: AtomicU64,
    in_flight: AtomicU64,
    pub(super) max_in_flight: AtomicU64,
}

impl Counters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn count_renewal(&self, status: u16) {
        let counter = match status {
            200 => &self.renewed,
            206 => &self.not_renewable,
            403 => &self.unauthorized,
            406 => &self.verification_failed,
            412 => &self.invalid_params,
            500 => &self.server_errors,
            DROPPED_STATUS => &self.dropped,
            _ => return,
        };
        Counters::bump(counter);
    }

    pub(super) fn snapshot(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: read(&self.requests),
            renewed: read(&self.renewed),
            not_renewable: read(&self.not_renewable),
            unauthorized: read(&self.unauthorized),
            verification_failed: read(&self.verification_failed),
            invalid_params: read(&self.invalid_params),
            server_errors: read(&self.server_errors),
            dropped: read(&self.dropped),
            logins: read(&self.logins),
            login_failures: read(&self.login_failures),
            max_in_flight: read(&self.max_in_flight),
        }
    }
}

/// Counts a renewal handler as in flight until dropped, also when the client goes away
/// mid-latency and the handler future is dropped.
pub(super) struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    pub(super) fn enter(counters: &'a Counters) -> InFlight<'a> {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The server clock in unix seconds (see [`SandboxConfig::clock_offset_secs`]).
pub(super) fn unix_now(config: &SandboxConfig) -> i64 {
    server_clock(config.clock_offset_secs)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SPEC_PLATE_BODY;

    #[test]
    fn fault_fingerprint_matches_the_vehicle_identity() {
        let expected = vehicle_key(Some("京J97896"), None, None, "1").fingerprint();
        assert_eq!(fault_fingerprint(SPEC_PLATE_BODY.as_bytes()), Some(expected));
        assert_eq!(fault_fingerprint(b"garbage"), None);
    }
}
