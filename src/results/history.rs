//! The history of answers (`--history FILE`, and the service's store): every final answer
//! Bihu gave (`renewed`, `not_renewable`, `invalid_params`), per agent and vehicle, with its
//! RenewalToken, message and time, so that a later run can reuse a recent answer instead of
//! asking again (`--reuse-within`).
//!
//! One SQLite file, shared by the CLI and the service: WAL (readers never wait for the
//! writer), a busy timeout (two writers take turns instead of failing), every write in one
//! `BEGIN IMMEDIATE` transaction. The schema's version lives in its own table
//! (`history_schema`), not in `PRAGMA user_version`, so the tables can sit in a database that
//! numbers its own migrations (the service's): [`History::install`] adds them to any
//! connection.
//!
//! The API is blocking; the caller decides on which thread it runs. Times are Unix
//! milliseconds, always passed in (no clock inside), so that windows are testable to the
//! millisecond.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::leads::lead::VehicleKey;
use crate::results::outcome::Status;

/// How long a writer waits for another to finish before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Each entry takes the history schema from the version before it to its own (index + 1).
const MIGRATIONS: &[&str] = &[
    // 1: answers, found by vehicle key (plate and city, or VIN, engine number and city).
    "CREATE TABLE history_answers (
        id INTEGER PRIMARY KEY,
        agent_id TEXT NOT NULL,
        plate TEXT,
        vin TEXT,
        engine_no TEXT,
        city INTEGER NOT NULL,
        status TEXT NOT NULL,
        http_status INTEGER,
        renewal_token TEXT NOT NULL,
        message TEXT NOT NULL,
        answered_at INTEGER NOT NULL,
        CHECK ((plate IS NOT NULL) <> (vin IS NOT NULL AND engine_no IS NOT NULL))
    );
    CREATE INDEX history_by_plate ON history_answers(plate, city, agent_id, answered_at)
        WHERE plate IS NOT NULL;
    CREATE INDEX history_by_vin ON history_answers(vin, engine_no, city, agent_id, answered_at)
        WHERE plate IS NULL;
    CREATE INDEX history_by_time ON history_answers(answered_at);",
];

/// What can go wrong with a history file.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "history {path} has schema version {found}, newer than this build knows ({known}): use a newer bihu-renew"
    )]
    TooNew { path: String, found: u32, known: u32 },
    #[error(
        "history {path}: {status} is not a final answer, only renewed, not_renewable and invalid_params are recorded"
    )]
    NotFinal { path: String, status: Status },
}

/// One final answer, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub agent_id: String,
    pub vehicle: VehicleKey,
    /// `renewed`, `not_renewable` or `invalid_params`.
    pub status: Status,
    pub http_status: Option<u16>,
    /// Empty unless renewed.
    pub renewal_token: String,
    pub message: String,
    /// Unix milliseconds.
    pub answered_at: i64,
}

/// Whether a status is an answer worth recording: Bihu's own final word on the vehicle.
/// `invalid_input` is the tool's, and the others are transient.
pub fn is_recorded(status: Status) -> bool {
    matches!(
        status,
        Status::Renewed | Status::NotRenewable | Status::InvalidParams
    )
}

/// An open history file (or the history tables of another database).
pub struct History {
    conn: Connection,
    path: String,
}

impl History {
    /// Opens (or creates) the history at `path`, in WAL mode with a busy timeout, and brings
    /// its schema up to date.
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        let name = path.display().to_string();
        let conn = Connection::open(path).map_err(sqlite(&name))?;
        History::with_connection(conn, name)
    }

    /// Uses an open connection (the service's own database, say): sets WAL and the busy
    /// timeout, and installs or migrates the history tables in it.
    pub fn with_connection(mut conn: Connection, name: String) -> Result<History, HistoryError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite(&name))?;
        switch_to_wal(&conn).map_err(sqlite(&name))?;
        // WAL with NORMAL survives a process crash whole; a power cut may lose the last
        // commits, which the results file still holds.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite(&name))?;
        History::install(&mut conn, &name)?;
        Ok(History { conn, path: name })
    }

    /// Creates or migrates the history tables in `conn`, leaving everything else alone.
    pub fn install(conn: &mut Connection, name: &str) -> Result<(), HistoryError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite(name))?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS history_schema (version INTEGER NOT NULL)")
            .map_err(sqlite(name))?;
        let found: Option<u32> = tx
            .query_row("SELECT version FROM history_schema", [], |row| row.get(0))
            .optional()
            .map_err(sqlite(name))?;
        let found = found.unwrap_or(0);
        let known = MIGRATIONS.len() as u32;
        if found > known {
            return Err(HistoryError::TooNew {
                path: name.to_string(),
                found,
                known,
            });
        }
        for sql in &MIGRATIONS[found as usize..] {
            tx.execute_batch(sql).map_err(sqlite(name))?;
        }
        if found < known {
            tx.execute("DELETE FROM history_schema", [])
                .map_err(sqlite(name))?;
            tx.execute("INSERT INTO history_schema (version) VALUES (?1)", [known])
                .map_err(sqlite(name))?;
        }
        tx.commit().map_err(sqlite(name))
    }

    /// The file (or database) this history is in, for messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Records one answer.
    pub fn record(&mut self, answer: &Answer) -> Result<(), HistoryError> {
        self.record_all(std::slice::from_ref(answer))
    }

    /// Records answers in one transaction: all of them or, on an error, none.
    pub fn record_all(&mut self, answers: &[Answer]) -> Result<(), HistoryError> {
        if let Some(answer) = answers.iter().find(|answer| !is_recorded(answer.status)) {
            return Err(HistoryError::NotFinal {
                path: self.path.clone(),
                status: answer.status,
            });
        }
        let name = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite(name))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO history_answers
                     (agent_id, plate, vin, engine_no, city, status, http_status, renewal_token, message, answered_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sqlite(name))?;
            for answer in answers {
                let (plate, vin, engine, city) = key_columns(&answer.vehicle);
                insert
                    .execute(params![
                        answer.agent_id,
                        plate,
                        vin,
                        engine,
                        city,
                        answer.status.as_str(),
                        answer.http_status,
                        answer.renewal_token,
                        answer.message,
                        answer.answered_at,
                    ])
                    .map_err(sqlite(name))?;
            }
        }
        tx.commit().map_err(sqlite(name))
    }

    /// The latest answer for this agent and vehicle given at `now - within` or later, if any.
    /// An answer exactly `within` old is still reused; one a millisecond older is not.
    pub fn lookup(
        &self,
        agent_id: &str,
        vehicle: &VehicleKey,
        now: i64,
        within: Duration,
    ) -> Result<Option<Answer>, HistoryError> {
        let since = now.saturating_sub(i64::try_from(within.as_millis()).unwrap_or(i64::MAX));
        let name = &self.path;
        let read = |row: &rusqlite::Row<'_>| {
            Ok(Answer {
                agent_id: agent_id.to_string(),
                vehicle: vehicle.clone(),
                status: parse_status(row.get_ref(0)?.as_str()?),
                http_status: row.get(1)?,
                renewal_token: row.get(2)?,
                message: row.get(3)?,
                answered_at: row.get(4)?,
            })
        };
        let found = match vehicle {
            VehicleKey::Plate { plate, city } => self
                .conn
                .prepare_cached(
                    "SELECT status, http_status, renewal_token, message, answered_at FROM history_answers
                     WHERE plate = ?1 AND city = ?2 AND agent_id = ?3 AND answered_at >= ?4
                     ORDER BY answered_at DESC, id DESC LIMIT 1",
                )
                .and_then(|mut query| query.query_row(params![plate, city, agent_id, since], read)),
            VehicleKey::Vin { vin, engine, city } => self
                .conn
                .prepare_cached(
                    "SELECT status, http_status, renewal_token, message, answered_at FROM history_answers
                     WHERE plate IS NULL AND vin = ?1 AND engine_no = ?2 AND city = ?3
                     AND agent_id = ?4 AND answered_at >= ?5
                     ORDER BY answered_at DESC, id DESC LIMIT 1",
                )
                .and_then(|mut query| query.query_row(params![vin, engine, city, agent_id, since], read)),
        };
        found.optional().map_err(sqlite(name))
    }

    /// Every answer known for a plate or a VIN (any city, any agent), newest first.
    pub fn list(&self, plate_or_vin: &str) -> Result<Vec<Answer>, HistoryError> {
        let name = &self.path;
        let mut answers = Vec::new();
        for sql in [
            "SELECT agent_id, plate, vin, engine_no, city, status, http_status, renewal_token, message, answered_at
             FROM history_answers WHERE plate = ?1",
            "SELECT agent_id, plate, vin, engine_no, city, status, http_status, renewal_token, message, answered_at
             FROM history_answers WHERE plate IS NULL AND vin = ?1",
        ] {
            let mut query = self.conn.prepare_cached(sql).map_err(sqlite(name))?;
            let rows = query
                .query_map([plate_or_vin], answer_from_row)
                .map_err(sqlite(name))?;
            for answer in rows {
                answers.push(answer.map_err(sqlite(name))?);
            }
        }
        answers.sort_by_key(|answer| std::cmp::Reverse(answer.answered_at));
        Ok(answers)
    }

    /// Deletes the answers given before `cutoff` (Unix milliseconds); says how many went.
    pub fn prune(&mut self, cutoff: i64) -> Result<u64, HistoryError> {
        let name = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite(name))?;
        let n = tx
            .execute("DELETE FROM history_answers WHERE answered_at < ?1", [cutoff])
            .map_err(sqlite(name))?;
        tx.commit().map_err(sqlite(name))?;
        Ok(n as u64)
    }

    /// Answers recorded, all agents and vehicles.
    pub fn count(&self) -> Result<u64, HistoryError> {
        self.conn
            .query_row("SELECT count(*) FROM history_answers", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(sqlite(&self.path))
    }
}

/// The vehicles an agent has answers for since some time, as [`VehicleKey::dedupe_key`]s: a
/// run with `--reuse-within` asks SQLite only about vehicles in it, so a vehicle never
/// answered costs a hash lookup instead of a query (a query is several times a request's own
/// CPU; BENCHMARKS.md). It only rules answers out: a vehicle in it is still looked up, with
/// the window as it is then. Past [`AnsweredSet::CAP`] vehicles it stops growing and rules
/// nothing out, so memory stays bounded and every row is looked up as before.
#[derive(Debug)]
pub struct AnsweredSet {
    keys: HashSet<u64, BuildHasherDefault<KeyHasher>>,
    /// The highest answer id read, for [`History::refresh`].
    last_id: i64,
    complete: bool,
}

impl AnsweredSet {
    /// The most vehicles kept (about 20 MB).
    pub const CAP: usize = 1_000_000;

    /// Whether the history may hold an answer for the vehicle with this key.
    pub fn may_have(&self, key: u64) -> bool {
        !self.complete || self.keys.contains(&key)
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn add(&mut self, key: u64) {
        if self.keys.len() >= Self::CAP && !self.keys.contains(&key) {
            self.complete = false;
            self.keys = HashSet::default();
        } else if self.complete {
            self.keys.insert(key);
        }
    }
}

/// The keys are SipHash already: hashing them again would only cost time.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl History {
    /// The vehicles `agent_id` has an answer for given at `since` (Unix ms) or later.
    pub fn answered_since(&mut self, agent_id: &str, since: i64) -> Result<AnsweredSet, HistoryError> {
        let name = &self.path;
        let mut set = AnsweredSet {
            keys: HashSet::default(),
            last_id: 0,
            complete: true,
        };
        // One read transaction: the scan and the id it ends at agree.
        let tx = self.conn.transaction().map_err(sqlite(name))?;
        set.last_id = tx
            .query_row("SELECT COALESCE(max(id), 0) FROM history_answers", [], |row| {
                row.get(0)
            })
            .map_err(sqlite(name))?;
        {
            let mut query = tx
                .prepare(
                    "SELECT plate, vin, engine_no, city FROM history_answers
                     WHERE answered_at >= ?1 AND agent_id = ?2 AND id <= ?3",
                )
                .map_err(sqlite(name))?;
            let mut rows = query
                .query(params![since, agent_id, set.last_id])
                .map_err(sqlite(name))?;
            while let Some(row) = rows.next().map_err(sqlite(name))? {
                set.add(key_from_row(row).map_err(sqlite(name))?.dedupe_key());
                if !set.complete {
                    break;
                }
            }
        }
        tx.commit().map_err(sqlite(name))?;
        Ok(set)
    }

    /// Adds the answers `agent_id` got since the set was read (another process's, or this
    /// run's own), by id: cheap when there are none.
    pub fn refresh(&self, set: &mut AnsweredSet, agent_id: &str) -> Result<(), HistoryError> {
        let name = &self.path;
        let mut query = self
            .conn
            .prepare_cached(
                "SELECT plate, vin, engine_no, city, id FROM history_answers WHERE id > ?1 AND agent_id = ?2 ORDER BY id",
            )
            .map_err(sqlite(name))?;
        let mut rows = query
            .query(params![set.last_id, agent_id])
            .map_err(sqlite(name))?;
        while let Some(row) = rows.next().map_err(sqlite(name))? {
            set.add(key_from_row(row).map_err(sqlite(name))?.dedupe_key());
            set.last_id = row.get(4).map_err(sqlite(name))?;
        }
        Ok(())
    }
}

/// A vehicle key from the first four columns `plate, vin, engine_no, city`.
fn key_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VehicleKey> {
    let plate: Option<String> = row.get(0)?;
    let city: u8 = row.get(3)?;
    Ok(match plate {
        Some(plate) => VehicleKey::Plate { plate, city },
        None => VehicleKey::Vin {
            vin: row.get(1)?,
            engine: row.get(2)?,
            city,
        },
    })
}

fn key_columns(vehicle: &VehicleKey) -> (Option<&str>, Option<&str>, Option<&str>, u8) {
    match vehicle {
        VehicleKey::Plate { plate, city } => (Some(plate), None, None, *city),
        VehicleKey::Vin { vin, engine, city } => (None, Some(vin), Some(engine), *city),
    }
}

/// A status cell as recorded; anything unknown (a newer build's) reads as the nearest final
/// answer that holds no token, so that it is never mistaken for a renewal.
fn parse_status(text: &str) -> Status {
    Status::parse(text)
        .filter(|status| is_recorded(*status))
        .unwrap_or(Status::InvalidParams)
}

fn answer_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Answer> {
    let plate: Option<String> = row.get(1)?;
    let city: u8 = row.get(4)?;
    let vehicle = match plate {
        Some(plate) => VehicleKey::Plate { plate, city },
        None => VehicleKey::Vin {
            vin: row.get(2)?,
            engine: row.get(3)?,
            city,
        },
    };
    Ok(Answer {
        agent_id: row.get(0)?,
        vehicle,
        status: parse_status(row.get_ref(5)?.as_str()?),
        http_status: row.get(6)?,
        renewal_token: row.get(7)?,
        message: row.get(8)?,
        answered_at: row.get(9)?,
    })
}

/// Puts the file in WAL mode, waiting out another process doing the same (the history and the
/// service's store).
///
/// SQLite switches a file to WAL inside a read transaction that it then upgrades to a write;
/// two connections doing that at once on a new file would deadlock, so the one that loses
/// gets `SQLITE_BUSY` at once, without calling the busy handler (two `run --history` processes
/// starting together on a new file hit this). Retried here for as long as the busy timeout:
/// by then the other connection has made the file WAL and the switch is a no-op.
pub fn switch_to_wal(conn: &Connection) -> rusqlite::Result<()> {
    use backon::{BlockingRetryable, ExponentialBuilder};
    let wal = || conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()));
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(100))
        .with_jitter()
        .with_max_times(usize::MAX)
        .with_total_delay(Some(BUSY_TIMEOUT));
    wal.retry(backoff).when(is_busy).call()
}

/// Whether SQLite refused because another connection holds the lock.
fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn sqlite(path: &str) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
    move |source| HistoryError::Sqlite {
        path: path.to_string(),
        source,
    }
}

/// Parses a window or an age: a whole number with `s`, `m`, `h` or `d` (`90m`, `12h`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<u64>() {
        Ok(n) if seconds_per > 0 && n > 0 => n
            .checked_mul(seconds_per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is too long")),
        _ => Err(format!(
            "{text:?} is not a duration: use a whole number and a unit, such as 12h or 7d (s, m, h, d)"
        )),
    }
}

/// A window as [`parse_duration`] reads it, in the largest unit that divides it: `7d`, `36h`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(per, _)| seconds > 0 && seconds.is_multiple_of(*per))
    {
        Some((per, unit)) => format!("{}{unit}", seconds / per),
        None => format!("{seconds}s"),
    }
}

/// Unix milliseconds now, from the system clock.
pub fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// ISO 8601 with an offset, in UTC, to the second: `2026-12-01T22:39:55+00:00`.
pub fn format_time(unix_ms: i64) -> String {
    let mut text = String::with_capacity(25);
    write_time(&mut text, unix_ms);
    text
}

/// [`format_time`] appended to `out`, without allocating.
pub fn write_time(out: &mut String, unix_ms: i64) {
    use std::fmt::Write as _;
    let seconds = unix_ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
}

/// Reads an ISO 8601 time with an offset (`Z`, `+08:00`, `-0500`), to the millisecond, as
/// [`format_time`] and other tools write it; `None` for anything else.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b' ') {
        return None;
    }
    if bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 6 {
                return None;
            }
            let (hours, minutes): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
            sign * (hours * 60 + minutes)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's days-to-civil); the one calendar conversion of the crate.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn plate(text: &str, city: u8) -> VehicleKey {
        VehicleKey::Plate {
            plate: text.to_string(),
            city,
        }
    }

    fn answer(vehicle: VehicleKey, status: Status, at: i64) -> Answer {
        Answer {
            agent_id: "102".to_string(),
            vehicle,
            status,
            http_status: Some(match status {
                Status::Renewed => 200,
                Status::NotRenewable => 206,
                _ => 412,
            }),
            renewal_token: if status == Status::Renewed {
                format!("RT-{at}")
            } else {
                String::new()
            },
            message: "续保成功".to_string(),
            answered_at: at,
        }
    }

    /// A process opening a new history file while another is about to write it in rollback mode
    /// (two cron jobs starting together: the other is in its own WAL switch). SQLite refuses the
    /// switch at once, without the busy timeout, to avoid a deadlock. It must be waited out, not
    /// reported as "database is locked" (a CI run failed so).
    #[test]
    fn opening_waits_out_a_writer_of_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("CREATE TABLE other (x); BEGIN IMMEDIATE; INSERT INTO other VALUES (1);")
            .unwrap();
        let started = std::time::Instant::now();
        let done = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            writer.execute_batch("COMMIT").unwrap();
        });
        let opened = History::open(&path);
        done.join().unwrap();
        assert!(opened.is_ok(), "{}", opened.err().unwrap());
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    fn open_temp() -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(&dir.path().join("history.sqlite")).unwrap();
        (dir, history)
    }

    #[test]
    fn an_answer_is_found_again_for_its_agent_vehicle_and_city_only() {
        let (_dir, mut history) = open_temp();
        let at = 1_700_000_000_000;
        let recorded = answer(plate("京A12345", 1), Status::Renewed, at);
        history.record(&recorded).unwrap();
        let vin = VehicleKey::Vin {
            vin: "LSVAU2180N2183294".to_string(),
            engine: "E1".to_string(),
            city: 1,
        };
        history
            .record(&answer(vin.clone(), Status::NotRenewable, at))
            .unwrap();
        let window = Duration::from_secs(3600);
        assert_eq!(
            history
                .lookup("102", &plate("京A12345", 1), at + 1, window)
                .unwrap(),
            Some(recorded)
        );
        assert_eq!(
            history.lookup("103", &plate("京A12345", 1), at, window).unwrap(),
            None,
            "another agent's answer is not this agent's"
        );
        assert_eq!(
            history.lookup("102", &plate("京A12345", 2), at, window).unwrap(),
            None,
            "renewal is per city"
        );
        let found = history.lookup("102", &vin, at, window).unwrap().unwrap();
        assert_eq!(found.status, Status::NotRenewable);
        let other_engine = VehicleKey::Vin {
            vin: "LSVAU2180N2183294".to_string(),
            engine: "E2".to_string(),
            city: 1,
        };
        assert_eq!(history.lookup("102", &other_engine, at, window).unwrap(), None);
    }

    #[test]
    fn the_window_is_honoured_at_its_edge() {
        let (_dir, mut history) = open_temp();
        let at = 1_700_000_000_000;
        let vehicle = plate("粤B12345", 3);
        history
            .record(&answer(vehicle.clone(), Status::Renewed, at))
            .unwrap();
        let window = Duration::from_secs(12 * 3600);
        let edge = at + 12 * HOUR_MS;
        assert!(
            history.lookup("102", &vehicle, edge, window).unwrap().is_some(),
            "exactly as old as the window: reused"
        );
        assert!(
            history
                .lookup("102", &vehicle, edge + 1, window)
                .unwrap()
                .is_none(),
            "a millisecond older than the window: asked again"
        );
    }

    #[test]
    fn the_latest_answer_wins() {
        let (_dir, mut history) = open_temp();
        let vehicle = plate("京A12345", 1);
        let at = 1_700_000_000_000;
        history
            .record_all(&[
                answer(vehicle.clone(), Status::Renewed, at),
                answer(vehicle.clone(), Status::NotRenewable, at + HOUR_MS),
            ])
            .unwrap();
        let found = history
            .lookup("102", &vehicle, at + 2 * HOUR_MS, Duration::from_secs(86_400))
            .unwrap()
            .unwrap();
        assert_eq!(found.status, Status::NotRenewable);
        assert_eq!(found.answered_at, at + HOUR_MS);
        assert_eq!(history.list("京A12345").unwrap().len(), 2);
    }

    #[test]
    fn transient_and_local_outcomes_are_never_recorded() {
        let (_dir, mut history) = open_temp();
        for status in [
            Status::ServerError,
            Status::TransportError,
            Status::Unauthorized,
            Status::VerificationFailed,
            Status::ProtocolError,
            Status::InvalidInput,
            Status::Ready,
        ] {
            let refused = history.record(&answer(plate("京A12345", 1), status, 1));
            assert!(matches!(refused, Err(HistoryError::NotFinal { .. })), "{status}");
        }
        // One transient answer in a batch refuses the whole batch.
        let batch = [
            answer(plate("京A11111", 1), Status::Renewed, 1),
            answer(plate("京A22222", 1), Status::ServerError, 1),
        ];
        assert!(history.record_all(&batch).is_err());
        assert_eq!(history.count().unwrap(), 0);
    }

    #[test]
    fn the_answered_set_rules_out_only_vehicles_without_an_answer_and_follows_new_ones() {
        let (_dir, mut history) = open_temp();
        let at = 1_700_000_000_000;
        let vin = VehicleKey::Vin {
            vin: "LSVAU2180N2183294".to_string(),
            engine: "E1".to_string(),
            city: 1,
        };
        history
            .record_all(&[
                answer(plate("京A11111", 1), Status::Renewed, at),
                answer(plate("京A22222", 1), Status::Renewed, at - 10 * HOUR_MS),
                answer(vin.clone(), Status::NotRenewable, at),
            ])
            .unwrap();
        let mut set = history.answered_since("102", at - HOUR_MS).unwrap();
        assert!(set.is_complete());
        assert!(set.may_have(plate("京A11111", 1).dedupe_key()));
        assert!(set.may_have(vin.dedupe_key()));
        assert!(
            !set.may_have(plate("京A22222", 1).dedupe_key()),
            "too old for the window"
        );
        assert!(!set.may_have(plate("京A11111", 2).dedupe_key()), "another city");
        assert!(
            history.answered_since("103", 0).unwrap().is_empty(),
            "another agent"
        );
        // An answer recorded later (by another process, say) is found by a refresh.
        history
            .record(&answer(plate("京A33333", 1), Status::Renewed, at + 1))
            .unwrap();
        assert!(!set.may_have(plate("京A33333", 1).dedupe_key()));
        history.refresh(&mut set, "102").unwrap();
        assert!(set.may_have(plate("京A33333", 1).dedupe_key()));
        assert_eq!(set.len(), 3);
    }

    #[test]
    fn prune_removes_only_older_answers() {
        let (_dir, mut history) = open_temp();
        let at = 1_700_000_000_000;
        history
            .record_all(&[
                answer(plate("京A11111", 1), Status::Renewed, at),
                answer(plate("京A22222", 1), Status::Renewed, at + 10),
            ])
            .unwrap();
        assert_eq!(history.prune(at + 10).unwrap(), 1);
        assert_eq!(history.count().unwrap(), 1);
        assert_eq!(history.list("京A22222").unwrap().len(), 1);
    }

    #[test]
    fn two_writers_on_one_file_lose_no_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.sqlite");
        History::open(&path).unwrap();
        const PER_WRITER: usize = 300;
        let writers: Vec<_> = (0..2)
            .map(|writer| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Each writer its own connection, as two processes would have.
                    let mut history = History::open(&path).unwrap();
                    for i in 0..PER_WRITER {
                        let vehicle = plate(&format!("京A{writer}{i:04}"), 1);
                        let mut batch = vec![answer(vehicle, Status::Renewed, i as i64)];
                        if i % 3 == 0 {
                            batch.push(answer(
                                plate(&format!("沪B{writer}{i:04}"), 2),
                                Status::NotRenewable,
                                1,
                            ));
                        }
                        history.record_all(&batch).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let history = History::open(&path).unwrap();
        assert_eq!(
            history.count().unwrap() as usize,
            2 * (PER_WRITER + PER_WRITER / 3)
        );
    }

    #[test]
    fn the_tables_live_beside_another_schema_numbered_by_user_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE jobs (id INTEGER PRIMARY KEY); PRAGMA user_version = 7;")
            .unwrap();
        History::install(&mut conn, "service.db").unwrap();
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 7, "the other schema's number is left alone");
        let mut history = History::with_connection(conn, "service.db".into()).unwrap();
        history
            .record(&answer(plate("京A12345", 1), Status::Renewed, 5))
            .unwrap();
        drop(history);
        // Opened again as a plain history file, the answer is there and nothing migrates twice.
        let history = History::open(&path).unwrap();
        assert_eq!(history.count().unwrap(), 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        History::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE history_schema SET version = 99", [])
            .unwrap();
        assert!(matches!(
            History::open(&path),
            Err(HistoryError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn durations_read_as_documented() {
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        for bad in ["", "7", "d", "0d", "1.5h", "7 days", "-1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        for text in ["7d", "36h", "90m", "61s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(86_400 * 2)), "2d");
    }

    #[test]
    fn times_are_iso_8601_with_an_offset_and_read_back() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00+00:00");
        let at = 1_796_164_795_000; // 2026-12-01T22:39:55Z
        assert_eq!(format_time(at), "2026-12-01T22:39:55+00:00");
        assert_eq!(parse_time("2026-12-01T22:39:55+00:00"), Some(at));
        assert_eq!(parse_time("2026-12-01T22:39:55Z"), Some(at));
        assert_eq!(parse_time("2026-12-02T06:39:55+08:00"), Some(at));
        assert_eq!(parse_time("2026-12-02T06:39:55.250+0800"), Some(at + 250));
        assert_eq!(
            parse_time("2024-02-29T00:00:00Z").map(format_time),
            Some("2024-02-29T00:00:00+00:00".into())
        );
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T22:39:55",
            "2026-13-01T00:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
        for ms in [-86_400_000_i64, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_time(&format_time(ms)), Some(ms));
        }
    }
}
