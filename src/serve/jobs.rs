//! The engine glue: a job's files, its runs through the same pipeline as `bihu-renew run`,
//! within the one [`Quota`] every job shares, and its state. The check an upload passes
//! first is `upload.rs`'s, a running job's counters `live.rs`'s.
//!
//! A job's folder `jobs/<id>/` in the data dir holds `input.csv` (or `.xlsx`), `check.csv`
//! (the dry run's output) and `results.csv` (the run's OUTPUT, `.partial` while it grows): the
//! CLI's formats, so `report` and `run --resume` work on them. The store says what to do (the
//! state); OUTPUT says what was done, so a job that was running when the service died is
//! resumed from it, as `run --resume` would.

use std::collections::HashMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use url::Url;

use crate::api::protocol::Agent;
use crate::error::Error;
use crate::leads::city::City;
use crate::results::output::{self, OutputStyle, OutputTarget};
use crate::run::config::{Backoff, Existing, RunConfig};
use crate::run::events::Observer;
use crate::run::pipeline;
use crate::run::quota::Quota;
use crate::run::summary::RunEnd;
use crate::serve::ServeConfig;
pub use crate::serve::job_error::JobError;
pub use crate::serve::live::LiveJob;
use crate::serve::store::{JobRecord, JobState, NewJob, Store};
use crate::serve::upload::{self, input_options};
pub use crate::serve::upload::{Upload, UploadDir, Uploads, input_name};

/// What every job's run shares: the agent, its quota's figures, retries and timeouts.
#[derive(Debug, Clone)]
pub struct JobSettings {
    pub base_url: Url,
    pub agent: Agent,
    pub token: Option<String>,
    pub user_name: Option<String>,
    pub rate: NonZeroU32,
    pub burst: NonZeroU32,
    pub concurrency: NonZeroUsize,
    pub retries: u32,
    pub timeout: Duration,
    pub backoff: Backoff,
    pub credential_failure_limit: u32,
}

impl JobSettings {
    fn run_config(&self, input: PathBuf, output: PathBuf, city: Option<City>) -> RunConfig {
        RunConfig {
            input,
            output: OutputTarget::File(output),
            // A first run finds no OUTPUT and starts fresh; every later one continues it.
            existing: Existing::Resume,
            base_url: self.base_url.clone(),
            agent: self.agent.clone(),
            token: self.token.clone(),
            user_name: self.user_name.clone(),
            input_options: input_options(city),
            output_style: OutputStyle::default(),
            rate: self.rate,
            burst: self.burst,
            concurrency: self.concurrency,
            retries: self.retries,
            timeout: self.timeout,
            backoff: self.backoff,
            credential_failure_limit: self.credential_failure_limit,
            // Set by the caller, which knows the data dir.
            history: None,
        }
    }
}

/// Whether `GET /api/jobs/{id}/results.xlsx` gives a workbook: once a job that ran has
/// stopped (done, cancelled or aborted).
pub fn results_xlsx_available(job: &JobRecord) -> bool {
    matches!(
        job.state,
        JobState::Done | JobState::Cancelled | JobState::Aborted
    ) && job.started_at.is_some()
}

/// The jobs the service knows and the runs going on; clones share them.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<ServeConfig>,
    store: Store,
    quota: Quota,
    uploads: Uploads,
    live: Mutex<HashMap<i64, Arc<LiveJob>>>,
    /// Set when the service stops: runs then end as if never stopped, to resume next start.
    shutting_down: AtomicBool,
    tasks: tokio_util::task::TaskTracker,
}

/// How often a running job's counters are written to the store.
const SAVE_EVERY: Duration = Duration::from_secs(1);

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Jobs {
    pub fn new(config: Arc<ServeConfig>, store: Store, quota: Quota) -> Jobs {
        Jobs {
            inner: Arc::new(Inner {
                uploads: Uploads::new(config.data_dir.join("uploads")),
                config,
                store,
                quota,
                live: Mutex::new(HashMap::new()),
                shutting_down: AtomicBool::new(false),
                tasks: tokio_util::task::TaskTracker::new(),
            }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<LiveJob>>> {
        self.inner.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn job_dir(&self, id: i64) -> PathBuf {
        self.inner.config.data_dir.join("jobs").join(id.to_string())
    }

    /// A new folder under `uploads/` for an upload that is to become a job.
    pub fn upload_dir(&self) -> Result<UploadDir, JobError> {
        self.inner
            .uploads
            .create()
            .map_err(|e| JobError::Io(format!("cannot store uploads: {e}")))
    }

    /// Removes what is left under `uploads/` that no request or check holds (a crash's or a
    /// kill's leftovers); returns how many it removed.
    pub fn sweep_uploads(&self) -> usize {
        self.inner.uploads.sweep()
    }

    /// The job as stored, with a running job's counters as they are now.
    pub async fn view(&self, id: i64) -> Result<JobRecord, JobError> {
        let mut job = self.inner.store.job(id).await?.ok_or(JobError::NotFound(id))?;
        self.overlay(&mut job);
        Ok(job)
    }

    /// Every job, newest first, running ones with their counters as they are now.
    pub async fn list(&self) -> Result<Vec<JobRecord>, JobError> {
        let mut jobs = self.inner.store.jobs().await?;
        for job in &mut jobs {
            self.overlay(job);
        }
        Ok(jobs)
    }

    fn overlay(&self, job: &mut JobRecord) {
        if job.state != JobState::Running {
            return;
        }
        if let Some(live) = self.live().get(&job.id) {
            let progress = live.progress();
            job.rows = progress.rows;
            job.rows_done = progress.rows_done;
            job.counts = progress.counts;
            job.requests = progress.requests;
        }
    }

    /// Checks an upload as `run --dry-run` does and makes it a job (started if asked);
    /// on any error the upload is removed, and no job is left.
    ///
    /// The check runs in a task of its own, which owns the upload: a request that goes away
    /// mid-check (a closed tab, a client's timeout) drops only the wait, and the task, once
    /// the check is over, drops the upload with its folder instead of making a job nobody
    /// was told of. Whatever happens, the folder becomes the job's or goes.
    pub async fn create(&self, upload: Upload) -> Result<JobRecord, JobError> {
        let asker_gone = tokio_util::sync::CancellationToken::new();
        let _asking = asker_gone.clone().drop_guard();
        let jobs = self.clone();
        let task = self
            .inner
            .tasks
            .spawn(async move { jobs.create_owned(upload, asker_gone).await });
        task.await
            .map_err(|e| JobError::Io(format!("the check of the upload failed: {e}")))?
    }

    async fn create_owned(
        &self,
        upload: Upload,
        asker_gone: tokio_util::sync::CancellationToken,
    ) -> Result<JobRecord, JobError> {
        let input = upload.dir.path().join(&upload.input_name);
        let (summary, preview) = upload::check(&self.inner.config, &upload, input.clone()).await?;
        if asker_gone.is_cancelled() {
            tracing::info!(file = %upload.file_name, "an upload's request went away during its check: nothing kept");
            return Err(JobError::Conflict(
                "the request went away before the check ended; nothing was kept".to_string(),
            ));
        }
        let state = if upload.start {
            JobState::Queued
        } else {
            JobState::Validated
        };
        let id = self
            .inner
            .store
            .insert_job(NewJob {
                file_name: upload.file_name.clone(),
                input_name: upload.input_name.clone(),
                state,
                city_code: upload.city.map(|c| c.id),
                rows: summary.rows,
                preview,
                reuse_within: upload.reuse_within.map(|within| within.as_secs()),
                created_by: upload.created_by.clone(),
                created_at: unix_now(),
            })
            .await?;
        let dir = self.job_dir(id);
        let moved = std::fs::create_dir_all(dir.parent().expect("a job dir has a parent"))
            .and_then(|()| std::fs::rename(upload.dir.path(), &dir));
        if let Err(error) = moved {
            let _ = self.inner.store.delete_job(id).await;
            return Err(JobError::Io(format!("cannot store the upload: {error}")));
        }
        if upload.start {
            self.spawn_run(id);
        }
        self.view(id).await
    }

    /// `start`: a validated (or cancelled) job is queued and run.
    pub async fn start(&self, id: i64) -> Result<JobRecord, JobError> {
        self.queue(id, &[JobState::Validated, JobState::Cancelled], "start")
            .await
    }

    /// `retry`: rows with a transient outcome, or never reached, go again (as `--resume`).
    pub async fn retry(&self, id: i64) -> Result<JobRecord, JobError> {
        self.queue(
            id,
            &[JobState::Done, JobState::Cancelled, JobState::Aborted],
            "retry",
        )
        .await
    }

    async fn queue(&self, id: i64, from: &[JobState], action: &str) -> Result<JobRecord, JobError> {
        let job = self.view(id).await?;
        if !self
            .inner
            .store
            .transition(id, from, JobState::Queued, unix_now(), None)
            .await?
        {
            let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
            return Err(JobError::Conflict(format!(
                "job {id} is {}: {action} applies to a job that is {}",
                job.state.as_str(),
                allowed.join(" or ")
            )));
        }
        self.spawn_run(id);
        self.view(id).await
    }

    /// `cancel`: a running job stops taking rows and finishes those in flight (resumable by
    /// `start` or `retry`); a validated or queued one is cancelled at once.
    pub async fn cancel(&self, id: i64) -> Result<JobRecord, JobError> {
        let job = self.view(id).await?;
        let live = self.live().get(&id).cloned();
        if let Some(live) = live {
            live.cancel.cancel();
            return self.view(id).await;
        }
        let from = [JobState::Validated, JobState::Queued];
        if !self
            .inner
            .store
            .transition(id, &from, JobState::Cancelled, unix_now(), None)
            .await?
        {
            // It may have become live just now: a running job is cancelled through its token.
            let live = self.live().get(&id).cloned();
            if let Some(live) = live {
                live.cancel.cancel();
                return self.view(id).await;
            }
            return Err(JobError::Conflict(format!(
                "job {id} is {}: only a validated, queued or running job can be cancelled",
                job.state.as_str()
            )));
        }
        self.view(id).await
    }

    /// Deletes a job's files and its row (by hand or by retention); not while it runs.
    pub async fn delete(&self, id: i64) -> Result<(), JobError> {
        let job = self.view(id).await?;
        if !job.state.is_settled() || self.live().contains_key(&id) {
            return Err(JobError::Conflict(format!(
                "job {id} is {}: cancel it first, then delete it",
                job.state.as_str()
            )));
        }
        let dir = self.job_dir(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| JobError::Io(format!("cannot delete job {id}'s files: {e}")))?;
        }
        self.inner.store.delete_job(id).await?;
        Ok(())
    }

    /// The results file to download: the finished OUTPUT, or while a run writes, the clean
    /// prefix it has written so far.
    pub async fn results_path(&self, id: i64) -> Result<PathBuf, JobError> {
        let job = self.view(id).await?;
        let results = self.job_dir(id).join("results.csv");
        let partial = output::partial_path(&results);
        let path = match (job.state, results.exists(), partial.exists()) {
            (JobState::Running, _, true) | (_, false, true) => partial,
            (_, true, _) => results,
            _ => {
                return Err(JobError::Conflict(format!(
                    "job {id} has no results yet: start it first"
                )));
            }
        };
        Ok(path)
    }

    /// The results as an `.xlsx` workbook, once the job has stopped (done, cancelled or
    /// aborted): made from its results CSV on the first request, and again whenever the CSV
    /// is newer (after a retry). Built into a file of its own and renamed into place, so
    /// that two requests at once never see half a workbook.
    pub async fn results_xlsx_path(&self, id: i64) -> Result<PathBuf, JobError> {
        let job = self.view(id).await?;
        if !results_xlsx_available(&job) {
            return Err(JobError::Conflict(match job.state {
                JobState::Validated | JobState::Queued => {
                    format!("job {id} has no results yet: start it first")
                }
                _ => format!(
                    "job {id} is {}: its workbook is made once the run has stopped; results.csv has the rows so far",
                    job.state.as_str()
                ),
            }));
        }
        let source = self.results_path(id).await?;
        let target = self.job_dir(id).join("results.xlsx");
        let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let fresh =
            matches!((modified(&target), modified(&source)), (Some(made), Some(from)) if made >= from);
        if !fresh {
            static BUILDS: AtomicU64 = AtomicU64::new(0);
            let n = BUILDS.fetch_add(1, Ordering::Relaxed);
            let building = self.job_dir(id).join(format!("results.xlsx.{n}.building"));
            let built = target.clone();
            tokio::task::spawn_blocking(move || {
                // The service's CSVs carry the formula guard (`OutputStyle::default`).
                let made = crate::results::xlsx::from_csv(&source, &building, true)
                    .and_then(|_| std::fs::rename(&building, &built));
                if made.is_err() {
                    let _ = std::fs::remove_file(&building);
                }
                made
            })
            .await
            .map_err(|e| JobError::Io(format!("cannot make job {id}'s workbook: {e}")))?
            .map_err(|e| JobError::Io(format!("cannot make job {id}'s workbook: {e}")))?;
        }
        Ok(target)
    }

    pub fn city(job: &JobRecord) -> Option<City> {
        job.city_code.and_then(City::by_id)
    }

    /// Resumes every job that was queued or running when the service last stopped.
    pub async fn resume_all(&self) -> Result<(), JobError> {
        let store = &self.inner.store;
        for job in store.jobs_in(&[JobState::Running, JobState::Queued]).await? {
            store
                .transition(
                    job.id,
                    &[JobState::Running],
                    JobState::Queued,
                    unix_now(),
                    job.message.clone(),
                )
                .await?;
            tracing::info!(job = job.id, "resuming a job that was {}", job.state.as_str());
            self.spawn_run(job.id);
        }
        Ok(())
    }

    /// Stops every run as Ctrl-C stops the CLI's, leaving their jobs to resume on the next
    /// start, and waits for them.
    pub async fn stop_all(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        for live in self.live().values() {
            live.cancel.cancel();
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    fn spawn_run(&self, id: i64) {
        let jobs = self.clone();
        self.inner.tasks.spawn(async move {
            if let Err(error) = jobs.run(id).await {
                tracing::error!(job = id, %error, "the job's run failed");
            }
        });
    }

    /// One run of a queued job, to its end.
    async fn run(&self, id: i64) -> Result<(), JobError> {
        let store = &self.inner.store;
        let Some(job) = store.job(id).await? else {
            return Ok(());
        };
        let live = Arc::new(LiveJob::new(job.requests, job.rows));
        {
            let mut all = self.live();
            if all.contains_key(&id) {
                return Ok(());
            }
            all.insert(id, live.clone());
        }
        let result = self.run_live(&job, &live).await;
        self.live().remove(&id);
        result
    }

    async fn run_live(&self, job: &JobRecord, live: &Arc<LiveJob>) -> Result<(), JobError> {
        let store = &self.inner.store;
        let id = job.id;
        // Cancelled while queued: nothing to run.
        if !store
            .transition(id, &[JobState::Queued], JobState::Running, unix_now(), None)
            .await?
        {
            return Ok(());
        }
        let dir = self.job_dir(id);
        let mut config = self.inner.config.settings.run_config(
            dir.join(&job.input_name),
            dir.join("results.csv"),
            Jobs::city(job),
        );
        // The service always records its answers: in the history tables of its own database,
        // or in the `history` file of the config (the same schema as `run --history`, so the
        // CLI and the service read each other's answers). The job reuses as it was uploaded.
        config.history = Some(crate::run::config::HistorySettings {
            path: self.inner.config.history_path(),
            reuse_within: job.reuse_within.map(Duration::from_secs),
        });
        let saver = {
            let (store, live) = (store.clone(), live.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(SAVE_EVERY);
                loop {
                    every.tick().await;
                    let _ = store.save_progress(id, live.progress()).await;
                }
            })
        };
        let observer: Arc<dyn Observer> = live.clone();
        let result = pipeline::run(config, &self.inner.quota, observer, live.cancel.clone()).await;
        saver.abort();
        let mut progress = live.progress();
        if let Ok(summary) = &result {
            // The summary counts OUTPUT as it is, also when a resumed run had nothing to do.
            progress.counts = summary
                .by_status
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(status, n)| (status.as_str().to_string(), *n))
                .collect();
            progress.rows_done = summary.rows_written;
            progress.rows = summary.rows_total.max(progress.rows);
        }
        store.save_progress(id, progress).await?;
        let shutting_down = self.inner.shutting_down.load(Ordering::SeqCst);
        let (state, message) = match result {
            Ok(summary) => match summary.end {
                RunEnd::Completed => (JobState::Done, summary.stop_reason),
                RunEnd::Interrupted if shutting_down => (JobState::Queued, None),
                RunEnd::Interrupted => (JobState::Cancelled, None),
                RunEnd::Aborted => (JobState::Aborted, summary.stop_reason),
            },
            Err(error) if shutting_down => (JobState::Queued, Some(error.to_string())),
            Err(error) => (JobState::Aborted, Some(self.plain_message(&error))),
        };
        store
            .transition(id, &[JobState::Running], state, unix_now(), message)
            .await?;
        Ok(())
    }

    /// An error's message without the data dir's paths.
    fn plain_message(&self, error: &Error) -> String {
        let text = error.to_string();
        let data_dir = self.inner.config.data_dir.to_string_lossy();
        text.replace(&*data_dir, "<data dir>")
    }
}
