//! `bihu-renew serve`: the back-office service that owns the agent's credentials and quota,
//! keeps every job, and survives restarts.
//!
//! - [`store`]: the SQLite store (jobs, sessions) with its migrations; the only SQL.
//! - [`jobs`]: the engine glue: jobs created, queued, cancelled and run by the same pipeline
//!   as the CLI within one shared [`Quota`]; [`upload`]: an upload checked as the dry run
//!   does, and its preview; [`live`]: a running job's stop and counters; [`job_error`]: why
//!   a request about a job cannot be done; [`retention`]: deleting what is past retention.
//! - [`auth`]: users, sessions, HTTP Basic, the login throttle and the CSRF rule.
//! - [`api`]: the JSON API's routes and thin handlers (login, upload, downloads, the job view).
//! - [`pages`]: the pages clerks use, beside the API's routes in [`router`]; their forms
//!   go through the API's handlers.
//!
//! May import every layer but `cmd`, which starts it (`cmd/serve.rs`).

pub mod api;
pub mod auth;
pub mod job_error;
pub mod jobs;
pub mod live;
pub mod pages;
pub mod retention;
pub mod store;
pub mod upload;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::listen::{self, Limits};
use crate::run::quota::Quota;
use crate::serve::auth::{Auth, User};
use crate::serve::jobs::{JobSettings, Jobs};
use crate::serve::store::Store;
use anyhow::Context;

/// The service's validated settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub max_upload_bytes: u64,
    pub retention: Duration,
    /// Who may log in; empty means no login, and then only loopback may listen.
    pub users: Vec<User>,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    pub settings: JobSettings,
    /// The answer history jobs record into and reuse from; `None`: the history tables of the
    /// store itself (`bihu-renew.db` in the data dir). The CLI reads either with `--history`.
    pub history: Option<PathBuf>,
    /// An upload's reuse window when it does not give one (`reuse_within` in `[serve]`);
    /// `None`: no reuse unless the upload asks.
    pub reuse_within: Option<Duration>,
    /// The connection cap and the timeouts of the listener (clerks' browsers and cron jobs
    /// face it: a stalled or hostile client must not hold it down).
    pub limits: Limits,
}

impl ServeConfig {
    /// The file holding the answer history jobs share.
    pub fn history_path(&self) -> PathBuf {
        self.history
            .clone()
            .unwrap_or_else(|| self.data_dir.join(STORE_FILE))
    }
}

/// The store's file name in the data dir.
pub const STORE_FILE: &str = "bihu-renew.db";

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServeConfig>,
    pub store: Store,
    pub jobs: Jobs,
    pub auth: Auth,
}

impl AppState {
    /// Opens the store in the data dir, removes the uploads a crash or a kill left behind
    /// (no request holds one yet), and resumes the jobs that were queued or running when the
    /// service last stopped.
    pub async fn open(config: ServeConfig) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
        let store = Store::open(&config.data_dir.join(STORE_FILE))?;
        let settings = &config.settings;
        let quota = Quota::new(settings.rate, settings.burst, settings.concurrency);
        let config = Arc::new(config);
        let jobs = Jobs::new(config.clone(), store.clone(), quota);
        let auth = Auth::new(&config.users, config.session_ttl, store.clone());
        let n_stale = jobs.sweep_uploads();
        if n_stale > 0 {
            tracing::info!("removed {n_stale} uploads left from the last start");
        }
        jobs.resume_all()
            .await
            .context("cannot resume the jobs that were running when the service last stopped")?;
        Ok(AppState {
            config,
            store,
            jobs,
            auth,
        })
    }
}

/// The whole service: the API and the pages, behind one state.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::routes(state.clone()))
        .merge(pages::routes())
        .with_state(state)
}

const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Serves on `listener` until `shutdown` completes; then running jobs are stopped as a
/// Ctrl-C stops a run (in-flight requests finish, OUTPUT is a clean prefix), to be resumed
/// on the next start.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let retention = tokio::spawn(retention::retention_loop(state.clone()));
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    let server = listen::serve(
        listener,
        router(state.clone()),
        state.config.limits,
        stop.clone().cancelled_owned(),
    );
    let result = tokio::select! {
        result = server => result,
        // Event streams never end by themselves: connections get a short grace, no more.
        () = async {
            shutdown.await;
            stopping.cancel();
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    };
    retention.abort();
    state.jobs.stop_all().await;
    result
}
