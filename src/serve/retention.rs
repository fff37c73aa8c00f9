//! Retention: jobs settled longer ago than `retention` (their files and rows), the history's
//! answers older than it, expired sessions, and uploads that no request holds any more (a
//! crash's leftovers) are deleted, at start and every hour.

use std::time::Duration;

use crate::serve::job_error::JobError;
use crate::serve::jobs::unix_now;

/// Deletes jobs (files and rows) settled longer ago than the retention, answers in the
/// history older than it, sessions that have expired, and stale uploads; now and then every
/// hour.
pub async fn retention_loop(state: crate::serve::AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match sweep(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("retention deleted {n} jobs"),
            Err(error) => tracing::warn!(%error, "retention failed"),
        }
    }
}

/// One pass of retention; returns how many jobs it deleted.
pub async fn sweep(state: &crate::serve::AppState) -> Result<usize, JobError> {
    let now = unix_now();
    let before = now - state.config.retention.as_secs() as i64;
    let mut n_deleted = 0;
    for id in state.store.expired_jobs(before).await? {
        match state.jobs.delete(id).await {
            Ok(()) => n_deleted += 1,
            Err(JobError::Conflict(_) | JobError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    // The retention holds for the answer history too (customers' vehicles and tokens).
    let path = state.config.history_path();
    let cutoff = before.saturating_mul(1000);
    let pruned = tokio::task::spawn_blocking(move || {
        crate::results::history::History::open(&path).and_then(|mut history| history.prune(cutoff))
    })
    .await
    .map_err(|e| JobError::Io(format!("pruning the history failed: {e}")))?
    .map_err(|e| JobError::Io(e.to_string()))?;
    if pruned > 0 {
        tracing::info!("retention deleted {pruned} answers from the history");
    }
    state.store.delete_expired_sessions(now).await?;
    // Customers' names and phones in an upload that never became a job: not kept at all.
    let n_uploads = state.jobs.sweep_uploads();
    if n_uploads > 0 {
        tracing::info!("retention removed {n_uploads} uploads that no request holds");
    }
    Ok(n_deleted)
}
