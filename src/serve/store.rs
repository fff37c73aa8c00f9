//! The service's SQLite store (`bihu-renew.db` in the data dir): jobs with their settings and
//! counters, and login sessions. Schema, migrations and every query live here; handlers never
//! write SQL.
//!
//! SQLite calls block, so every call goes through [`Store::call`], which runs it on tokio's
//! blocking pool. WAL and a busy timeout let another process (the CLI's history) share the
//! file. Migrations are numbered by `PRAGMA user_version`, from the first release on.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

/// Each entry takes the schema from the version before it to its own number (index + 1).
const MIGRATIONS: &[&str] = &[
    // 1: jobs and sessions.
    "CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        file_name TEXT NOT NULL,
        input_name TEXT NOT NULL,
        state TEXT NOT NULL,
        city_code INTEGER,
        rows INTEGER NOT NULL DEFAULT 0,
        rows_done INTEGER NOT NULL DEFAULT 0,
        counts TEXT NOT NULL DEFAULT '{}',
        requests INTEGER NOT NULL DEFAULT 0,
        preview TEXT,
        message TEXT,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER
    );
    CREATE INDEX jobs_state ON jobs(state);
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );",
    // 2: a job's reuse window (`reuse_within` at upload), in seconds; NULL: no reuse.
    "ALTER TABLE jobs ADD COLUMN reuse_within INTEGER;",
];

/// A job's state, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Uploaded and checked; waits for `start`.
    Validated,
    /// To be run as soon as the service gets to it (also after a restart).
    Queued,
    Running,
    Done,
    /// Stopped by hand; `start` or `retry` continues it.
    Cancelled,
    /// Stopped because the credentials were refused (as the CLI's exit 3), or the run failed.
    Aborted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Validated => "validated",
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Cancelled => "cancelled",
            JobState::Aborted => "aborted",
        }
    }

    fn parse(text: &str) -> JobState {
        match text {
            "validated" => JobState::Validated,
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "cancelled" => JobState::Cancelled,
            _ => JobState::Aborted,
        }
    }

    /// No run is going on or due.
    pub fn is_settled(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// What the dry run found in an upload, as the job keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preview {
    pub rows: u64,
    pub ready: u64,
    pub invalid: u64,
    /// The most frequent rejection reasons, most frequent first.
    pub top_reasons: Vec<ReasonCount>,
    pub duplicates: u64,
    /// Requests a run would send (ready rows, each vehicle once, less those the history
    /// answers when the job reuses answers).
    pub requests_needed: u64,
    /// Ready rows the history would answer as the check found it (duplicates included).
    #[serde(default)]
    pub reused: u64,
    /// Vehicles the history would answer: the requests reuse saves.
    #[serde(default)]
    pub requests_saved: u64,
    /// How long those take at the configured rate, in seconds.
    pub estimated_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonCount {
    pub reason: String,
    pub rows: u64,
    /// The first rows with this reason (jobs stored before this field have none).
    #[serde(default)]
    pub examples: Vec<ReasonExample>,
}

/// One rejected row as the check shows it: where, what was written, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonExample {
    pub row: u64,
    /// The plate as written in the file (empty if none).
    pub plate: String,
    /// The VIN as written (empty if none).
    pub vin: String,
    /// The CLI's sentence for this reason, which ends with what to do.
    pub text: String,
}

/// One job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: i64,
    /// The uploaded file's name, as the client gave it.
    pub file_name: String,
    /// The input's name in the job's folder (`input.csv` or `input.xlsx`).
    pub input_name: String,
    pub state: JobState,
    pub city_code: Option<u8>,
    pub rows: u64,
    pub rows_done: u64,
    pub counts: BTreeMap<String, u64>,
    pub requests: u64,
    pub preview: Option<Preview>,
    pub message: Option<String>,
    /// Reuse answers from the history at most this many seconds old; `None`: never.
    pub reuse_within: Option<u64>,
    pub created_by: String,
    /// Unix seconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A new job, before it has an id.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub file_name: String,
    pub input_name: String,
    pub state: JobState,
    pub city_code: Option<u8>,
    pub rows: u64,
    pub preview: Preview,
    /// Seconds; `None`: no reuse.
    pub reuse_within: Option<u64>,
    pub created_by: String,
    pub created_at: i64,
}

/// Counters of a job while it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub rows: u64,
    pub rows_done: u64,
    pub counts: BTreeMap<String, u64>,
    pub requests: u64,
}

/// A login session (the token itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub user_name: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// The store; clones share one connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the job store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the job store's worker stopped: {0}")]
    Worker(String),
    #[error(
        "the job store {path} has schema version {found}, newer than this bihu-renew knows ({known}); use a newer bihu-renew"
    )]
    TooNew { path: String, found: u32, known: u32 },
}

impl Store {
    /// Opens (or creates) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        crate::results::history::switch_to_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn, &path.display().to_string())?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `work` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&conn).map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    pub async fn insert_job(&self, job: NewJob) -> Result<i64, StoreError> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO jobs (file_name, input_name, state, city_code, rows, preview, created_by, created_at, reuse_within)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    job.file_name,
                    job.input_name,
                    job.state.as_str(),
                    job.city_code,
                    job.rows as i64,
                    serde_json::to_string(&job.preview).expect("a preview serialises"),
                    job.created_by,
                    job.created_at,
                    job.reuse_within.map(|secs| secs as i64)
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        self.call(move |conn| {
            conn.query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()
        })
        .await
    }

    /// Every job, newest first.
    pub async fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.call(|conn| {
            let mut statement = conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id DESC"))?;
            statement.query_map([], job_from_row)?.collect()
        })
        .await
    }

    /// Jobs in these states, oldest first.
    pub async fn jobs_in(&self, states: &[JobState]) -> Result<Vec<JobRecord>, StoreError> {
        let states: Vec<&'static str> = states.iter().map(|s| s.as_str()).collect();
        self.call(move |conn| {
            let marks = vec!["?"; states.len()].join(", ");
            let mut statement = conn.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY id"
            ))?;
            statement
                .query_map(rusqlite::params_from_iter(states), job_from_row)?
                .collect()
        })
        .await
    }

    /// Moves a job from one of `from` to `to`; false when it was in none of them (or is gone).
    /// `started` and `finished` set those times; `message` replaces the job's message.
    pub async fn transition(
        &self,
        id: i64,
        from: &[JobState],
        to: JobState,
        at: i64,
        message: Option<String>,
    ) -> Result<bool, StoreError> {
        let from: Vec<&'static str> = from.iter().map(|s| s.as_str()).collect();
        self.call(move |conn| {
            let marks = (0..from.len())
                .map(|i| format!("?{}", i + 5))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE jobs SET state = ?2, message = ?4,
                    started_at = CASE WHEN ?2 = 'running' THEN ?3 ELSE started_at END,
                    finished_at = CASE WHEN ?2 IN ('done', 'cancelled', 'aborted') THEN ?3
                                       WHEN ?2 IN ('queued', 'running') THEN NULL ELSE finished_at END
                 WHERE id = ?1 AND state IN ({marks})"
            );
            let mut values: Vec<rusqlite::types::Value> = vec![
                id.into(),
                to.as_str().to_string().into(),
                at.into(),
                message.into(),
            ];
            values.extend(from.into_iter().map(|s| s.to_string().into()));
            Ok(conn.execute(&sql, rusqlite::params_from_iter(values))? == 1)
        })
        .await
    }

    pub async fn save_progress(&self, id: i64, progress: Progress) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.execute(
                "UPDATE jobs SET rows = ?2, rows_done = ?3, counts = ?4, requests = ?5 WHERE id = ?1",
                params![
                    id,
                    progress.rows as i64,
                    progress.rows_done as i64,
                    serde_json::to_string(&progress.counts).expect("counts serialise"),
                    progress.requests as i64
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn delete_job(&self, id: i64) -> Result<bool, StoreError> {
        self.call(move |conn| Ok(conn.execute("DELETE FROM jobs WHERE id = ?1", [id])? == 1))
            .await
    }

    /// Settled jobs last touched before `before` (unix seconds): what retention deletes.
    pub async fn expired_jobs(&self, before: i64) -> Result<Vec<i64>, StoreError> {
        self.call(move |conn| {
            let mut statement = conn.prepare(
                "SELECT id FROM jobs WHERE state NOT IN ('queued', 'running')
                 AND COALESCE(finished_at, created_at) < ?1 ORDER BY id",
            )?;
            statement.query_map([before], |row| row.get(0))?.collect()
        })
        .await
    }

    pub async fn insert_session(&self, token_hash: String, session: SessionRecord) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO sessions (token_hash, user_name, csrf_token, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, session.user_name, session.csrf_token, session.expires_at],
            )?;
            Ok(())
        })
        .await
    }

    /// The session for this token hash, if it has not expired at `now`.
    pub async fn session(&self, token_hash: String, now: i64) -> Result<Option<SessionRecord>, StoreError> {
        self.call(move |conn| {
            conn.query_row(
                "SELECT user_name, csrf_token, expires_at FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
                params![token_hash, now],
                |row| {
                    Ok(SessionRecord {
                        user_name: row.get(0)?,
                        csrf_token: row.get(1)?,
                        expires_at: row.get(2)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    pub async fn delete_session(&self, token_hash: String) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
        .await
    }

    pub async fn delete_expired_sessions(&self, now: i64) -> Result<usize, StoreError> {
        self.call(move |conn| conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now]))
            .await
    }
}

fn migrate(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let known = MIGRATIONS.len() as u32;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

const JOB_COLUMNS: &str = "id, file_name, input_name, state, city_code, rows, rows_done, counts, requests, preview, message, created_by, created_at, started_at, finished_at, reuse_within";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    let counts: String = row.get(7)?;
    let preview: Option<String> = row.get(9)?;
    let state: String = row.get(3)?;
    Ok(JobRecord {
        id: row.get(0)?,
        file_name: row.get(1)?,
        input_name: row.get(2)?,
        state: JobState::parse(&state),
        city_code: row.get(4)?,
        rows: row.get::<_, i64>(5)? as u64,
        rows_done: row.get::<_, i64>(6)? as u64,
        counts: serde_json::from_str(&counts).unwrap_or_default(),
        requests: row.get::<_, i64>(8)? as u64,
        preview: preview.and_then(|text| serde_json::from_str(&text).ok()),
        message: row.get(10)?,
        created_by: row.get(11)?,
        created_at: row.get(12)?,
        started_at: row.get(13)?,
        finished_at: row.get(14)?,
        reuse_within: row.get::<_, Option<i64>>(15)?.map(|secs| secs as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_job(name: &str) -> NewJob {
        NewJob {
            file_name: name.to_string(),
            input_name: "input.csv".to_string(),
            state: JobState::Validated,
            city_code: Some(1),
            rows: 3,
            preview: Preview {
                rows: 3,
                ready: 2,
                invalid: 1,
                ..Preview::default()
            },
            reuse_within: Some(7 * 86_400),
            created_by: "clerk".to_string(),
            created_at: 100,
        }
    }

    #[tokio::test]
    async fn jobs_round_trip_and_move_only_from_the_states_given() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let first = store.insert_job(new_job("a.csv")).await.unwrap();
        let second = store.insert_job(new_job("b.csv")).await.unwrap();
        let listed: Vec<i64> = store.jobs().await.unwrap().iter().map(|j| j.id).collect();
        assert_eq!(listed, [second, first]);
        let job = store.job(first).await.unwrap().unwrap();
        assert_eq!(job.preview.unwrap().invalid, 1);
        assert_eq!(job.city_code, Some(1));
        assert_eq!(job.reuse_within, Some(7 * 86_400));
        assert!(
            !store
                .transition(first, &[JobState::Running], JobState::Done, 5, None)
                .await
                .unwrap()
        );
        assert!(
            store
                .transition(first, &[JobState::Validated], JobState::Running, 7, None)
                .await
                .unwrap()
        );
        let job = store.job(first).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.started_at, job.finished_at),
            (JobState::Running, Some(7), None)
        );
        let mut progress = Progress {
            rows: 3,
            rows_done: 2,
            requests: 2,
            ..Progress::default()
        };
        progress.counts.insert("renewed".into(), 2);
        store.save_progress(first, progress).await.unwrap();
        assert!(
            store
                .transition(first, &[JobState::Running], JobState::Done, 9, None)
                .await
                .unwrap()
        );
        let job = store.job(first).await.unwrap().unwrap();
        assert_eq!(
            (job.rows_done, job.counts["renewed"], job.finished_at),
            (2, 2, Some(9))
        );
        assert_eq!(store.expired_jobs(10).await.unwrap(), [first]);
        assert_eq!(store.expired_jobs(101).await.unwrap(), [first, second]);
        assert!(store.delete_job(first).await.unwrap());
        assert_eq!(store.job(first).await.unwrap(), None);
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let id = Store::open(&path)
            .unwrap()
            .insert_job(new_job("a.csv"))
            .await
            .unwrap();
        assert!(Store::open(&path).unwrap().job(id).await.unwrap().is_some());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let error = Store::open(&path).err().unwrap().to_string();
        assert!(error.contains("schema version 99"), "{error}");
    }

    #[tokio::test]
    async fn sessions_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let session = SessionRecord {
            user_name: "clerk".into(),
            csrf_token: "c".into(),
            expires_at: 50,
        };
        store.insert_session("h".into(), session.clone()).await.unwrap();
        assert_eq!(store.session("h".into(), 49).await.unwrap(), Some(session));
        assert_eq!(store.session("h".into(), 50).await.unwrap(), None);
        assert_eq!(store.delete_expired_sessions(50).await.unwrap(), 1);
    }
}
