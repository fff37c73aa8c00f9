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
// The history's times and windows, where its callers have always found them.
pub use crate::results::times::{
    civil_from_days, format_duration, format_time, parse_duration, parse_time, unix_ms_now, write_time,
};

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

/// The latest answer for a plate, city and agent since a time.
const LOOKUP_PLATE: &str =
    "SELECT status, http_status, renewal_token, message, answered_at FROM history_answers
     WHERE plate = ?1 AND city = ?2 AND agent_id = ?3 AND answered_at >= ?4
     ORDER BY answered_at DESC, id DESC LIMIT 1";

/// The same for a VIN and engine number.
const LOOKUP_VIN: &str =
    "SELECT status, http_status, renewal_token, message, answered_at FROM history_answers
     WHERE plate IS NULL AND vin = ?1 AND engine_no = ?2 AND city = ?3 AND agent_id = ?4 AND answered_at >= ?5
     ORDER BY answered_at DESC, id DESC LIMIT 1";

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
                .prepare_lookup(LOOKUP_PLATE)
                .and_then(|mut query| query.query_row(params![plate, city, agent_id, since], read)),
            VehicleKey::Vin { vin, engine, city } => self
                .prepare_lookup(LOOKUP_VIN)
                .and_then(|mut query| query.query_row(params![vin, engine, city, agent_id, since], read)),
        };
        found.optional().map_err(sqlite(name))
    }

    /// A lookup's statement, from the connection's cache, under SQLite's query planner
    /// stability guarantee (QPSG). Without it SQLite (3.54 here) marks these statements, whose
    /// `ORDER BY` weighs the partial indexes against the bound values, for a fresh parse and
    /// plan whenever a parameter changes: every lookup of a new vehicle paid a prepare (a
    /// third of its time at 10,000,000 answers, and the p99; BENCHMARKS.md). The plan does
    /// not depend on the values, so one plan for all is what a lookup wants. Setting the flag
    /// again is free once set, which lets the lookup own what it relies on.
    fn prepare_lookup(&self, sql: &str) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
        self.conn
            .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        self.conn.prepare_cached(sql)
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
/// nothing out, so memory stays bounded and every row is looked up as before: slower, but
/// every answer in the window is still found.
#[derive(Debug)]
pub struct AnsweredSet {
    keys: HashSet<u64, BuildHasherDefault<KeyHasher>>,
    /// The highest answer id read, for [`History::refresh`].
    last_id: i64,
    complete: bool,
    /// The most vehicles it keeps; [`AnsweredSet::CAP`] but in tests.
    cap: usize,
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

    /// The most vehicles it keeps before it gives up ruling any out.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// What a run or a check says, once, when the set has passed its cap.
    pub fn past_cap_message(&self, path: &str, within: Duration) -> String {
        format!(
            "the history {path} holds answers of the last {} for more than {} vehicles: every row is looked up in it, which is slower, and every answer in the window is still reused (a shorter --reuse-within, or `bihu-renew history --prune`, makes it fast again)",
            format_duration(within),
            self.cap
        )
    }

    fn add(&mut self, key: u64) {
        if self.keys.len() >= self.cap && !self.keys.contains(&key) {
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
    /// The vehicles `agent_id` has an answer for given at `since` (Unix ms) or later, at most
    /// [`AnsweredSet::CAP`] of them.
    pub fn answered_since(&mut self, agent_id: &str, since: i64) -> Result<AnsweredSet, HistoryError> {
        self.answered_since_capped(agent_id, since, AnsweredSet::CAP)
    }

    /// [`History::answered_since`] with another cap, so that tests can reach it with a few
    /// rows.
    pub fn answered_since_capped(
        &mut self,
        agent_id: &str,
        since: i64,
        cap: usize,
    ) -> Result<AnsweredSet, HistoryError> {
        let name = &self.path;
        let mut set = AnsweredSet {
            keys: HashSet::default(),
            last_id: 0,
            complete: true,
            cap,
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
    /// run's own), by id: cheap when there are none. A set past its cap rules nothing out
    /// any more and is left as it is.
    pub fn refresh(&self, set: &mut AnsweredSet, agent_id: &str) -> Result<(), HistoryError> {
        if !set.complete {
            return Ok(());
        }
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
            if !set.complete {
                break;
            }
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
    fn the_answered_set_at_its_cap_keeps_every_vehicle_and_past_it_rules_nothing_out() {
        let (_dir, mut history) = open_temp();
        let at = 1_700_000_000_000;
        let vehicles: Vec<VehicleKey> = (0..3).map(|i| plate(&format!("京A1000{i}"), 1)).collect();
        let mut answers: Vec<Answer> = vehicles
            .iter()
            .map(|vehicle| answer(vehicle.clone(), Status::Renewed, at))
            .collect();
        // A vehicle answered twice is one vehicle of the set.
        answers.push(answer(vehicles[0].clone(), Status::NotRenewable, at + 1));
        history.record_all(&answers).unwrap();
        let never = plate("沪C00000", 2);

        let at_cap = history.answered_since_capped("102", at - HOUR_MS, 3).unwrap();
        assert!(at_cap.is_complete(), "exactly as many vehicles as the cap");
        assert_eq!(at_cap.len(), 3);
        assert!(vehicles.iter().all(|v| at_cap.may_have(v.dedupe_key())));
        assert!(!at_cap.may_have(never.dedupe_key()));

        let past_cap = history.answered_since_capped("102", at - HOUR_MS, 2).unwrap();
        assert!(!past_cap.is_complete(), "one vehicle more than the cap");
        assert!(past_cap.is_empty(), "its keys are let go");
        assert!(past_cap.may_have(never.dedupe_key()), "it rules nothing out");
        assert!(vehicles.iter().all(|v| past_cap.may_have(v.dedupe_key())));

        // Growing past the cap with a refresh gives up the same way, and nothing is lost:
        // every vehicle, the newest too, is still found by its lookup.
        let mut growing = at_cap;
        let fourth = plate("京A10003", 1);
        history
            .record(&answer(fourth.clone(), Status::Renewed, at + 2))
            .unwrap();
        history.refresh(&mut growing, "102").unwrap();
        assert!(!growing.is_complete());
        assert!(growing.may_have(never.dedupe_key()));
        let window = Duration::from_secs(86_400);
        for vehicle in vehicles.iter().chain([&fourth]) {
            assert!(growing.may_have(vehicle.dedupe_key()));
            assert!(
                history.lookup("102", vehicle, at + 3, window).unwrap().is_some(),
                "{vehicle:?}"
            );
        }
        assert_eq!(history.lookup("102", &never, at + 3, window).unwrap(), None);
        assert_eq!(
            history.answered_since("102", at - HOUR_MS).unwrap().cap(),
            AnsweredSet::CAP
        );
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
    fn lookups_use_the_index_and_never_prepare_their_statement_again() {
        let (_dir, mut history) = open_temp();
        let at = 1_700_000_000_000;
        let vin = |city| VehicleKey::Vin {
            vin: "LSVAU2180N2183294".to_string(),
            engine: "E1".to_string(),
            city,
        };
        history
            .record_all(&[
                answer(plate("京A12345", 1), Status::Renewed, at),
                answer(vin(1), Status::Renewed, at),
            ])
            .unwrap();
        use rusqlite::types::Value;
        let text = |t: &str| Value::Text(t.to_string());
        for (sql, index, values) in [
            (
                LOOKUP_PLATE,
                "history_by_plate (plate=? AND city=? AND agent_id=? AND answered_at>?)",
                vec![text("x"), Value::Integer(2), text("z"), Value::Integer(1)],
            ),
            (
                LOOKUP_VIN,
                "history_by_vin (vin=? AND engine_no=? AND city=? AND agent_id=? AND answered_at>?)",
                vec![
                    text("x"),
                    text("y"),
                    Value::Integer(2),
                    text("z"),
                    Value::Integer(1),
                ],
            ),
        ] {
            let plan: Vec<String> = history
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(values), |row| row.get(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                plan,
                [format!("SEARCH history_answers USING INDEX {index}")],
                "no sort, no scan"
            );
        }
        // New vehicles, and cities 0 and 1 bound after others and others after them.
        let window = Duration::from_secs(3600);
        for (i, city) in [1, 2, 1, 0, 3, 1, 1, 4].into_iter().enumerate() {
            let found = history
                .lookup("102", &plate("京A12345", city), at, window)
                .unwrap();
            assert_eq!(found.is_some(), city == 1);
            let found = history.lookup("102", &vin(city), at, window).unwrap();
            assert_eq!(found.is_some(), city == 1);
            let never = plate(&format!("沪C0000{i}"), city);
            assert_eq!(history.lookup("102", &never, at, window).unwrap(), None);
        }
        for sql in [LOOKUP_PLATE, LOOKUP_VIN] {
            let statement = history.conn.prepare_cached(sql).unwrap();
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "prepared once, whatever the vehicle: {sql}"
            );
        }
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
}
