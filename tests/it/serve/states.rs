//! A job's states over the API beyond the straight run: cancelling a queued job, starting
//! and retrying a cancelled one, a retry that sends the failed rows again, and deleting a
//! cancelled job (an aborted one: `refused_credentials_...` in the parent module).

use std::collections::BTreeSet;

use bihu_renew::sandbox::SandboxConfig;
use bihu_renew::serve::api::JobView;
use bihu_renew::serve::jobs::unix_now;
use bihu_renew::serve::store::JobState;
use reqwest::StatusCode;

use super::{Options, Service, plate_list, results_of};

/// `LicenseNo` for `n` plates of 沪 (other vehicles than [`plate_list`]'s).
fn shanghai_list(n: usize) -> Vec<u8> {
    let mut csv = String::from("LicenseNo\n");
    for i in 1..=n {
        csv.push_str(&format!("沪B{i:05}\n"));
    }
    csv.into_bytes()
}

impl Service {
    async fn act(&self, job: &JobView, action: &str) -> JobView {
        let response = self.post(&format!("/api/jobs/{}/{action}", job.id)).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{action} job {}: {body}", job.id);
        serde_json::from_str(&body).unwrap()
    }

    /// [`Service::delete_and_assert_gone`], and its row is gone from the list.
    async fn delete_job(&self, job: &JobView, files: &[&str]) {
        self.delete_and_assert_gone(job, files).await;
        let list: Vec<JobView> = self.get_json("/api/jobs").await;
        assert!(list.iter().all(|other| other.id != job.id), "its row is gone");
    }
}

#[tokio::test]
async fn a_queued_job_is_cancelled_at_once_and_a_cancelled_one_starts_retries_or_is_deleted() {
    let service = Service::start(Options::slow_enough_to_cancel()).await;
    // A job is queued from its start until its run begins, which is at once here; and after
    // a restart, until it is resumed. The store makes one queued that no run takes.
    let queued = service.create("q.csv", plate_list(5).into_bytes(), &[]).await;
    assert!(
        service
            .state
            .store
            .transition(
                queued.id,
                &[JobState::Validated],
                JobState::Queued,
                unix_now(),
                None
            )
            .await
            .unwrap()
    );
    assert_eq!(service.job(queued.id).await.state, JobState::Queued);
    let cancelled = service.act(&queued, "cancel").await;
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(service.sandbox.stats().requests, 0, "nothing was sent");
    // Cancelled before it ran: start runs it from the beginning.
    assert_eq!(service.act(&queued, "start").await.state, JobState::Queued);
    let done = service.wait_state(queued.id, JobState::Done).await;
    assert_eq!((done.rows_done, done.requests), (5, 5));

    // Cancelled mid-run, then retried: the rows not reached go, and the job is done.
    let job = service.create_started("big.csv", shanghai_list(120)).await;
    service.wait_running(job.id, 10).await;
    service.act(&job, "cancel").await;
    let stopped = service.wait_state(job.id, JobState::Cancelled).await;
    assert!(stopped.rows_done < 120, "{stopped:?}");
    let retried = service.act(&job, "retry").await;
    assert!(
        matches!(retried.state, JobState::Queued | JobState::Running),
        "{retried:?}"
    );
    let done = service.wait_state(job.id, JobState::Done).await;
    assert_eq!((done.rows_done, done.counts.values().sum::<u64>()), (120, 120));
    let repeats: u64 = service.sandbox.vehicle_requests().values().map(|n| n - 1).sum();
    assert!(
        repeats <= 2,
        "{repeats} repeats: only the requests in flight at the cancel"
    );

    // Deleting a cancelled job, with the results it had written: files and row go.
    let doomed = service
        .create_started("doomed.csv", plate_list(100).into_bytes())
        .await;
    service.wait_under_way(doomed.id, 5).await;
    service.act(&doomed, "cancel").await;
    service.wait_state(doomed.id, JobState::Cancelled).await;
    service.delete_job(&doomed, &["results.csv", "input.csv"]).await;
    service.shutdown().await;
}

#[tokio::test]
async fn retry_sends_the_rows_that_failed_again_and_only_those_and_they_end_renewed() {
    let service = Service::start(Options {
        sandbox: SandboxConfig {
            fail_rate: 0.5,
            fail_first_attempts_only: true,
            not_renewable_percent: 0,
            ..SandboxConfig::default()
        },
        retries: 0,
        ..Options::default()
    })
    .await;
    let job = service.create_started("l.csv", plate_list(40).into_bytes()).await;
    let first = service.wait_state(job.id, JobState::Done).await;
    let before = results_of(&service, &first).await;
    let failed: BTreeSet<u64> = before
        .iter()
        .filter(|row| row.status == "server_error")
        .map(|row| row.row)
        .collect();
    // Each vehicle's first request fails with a chance of one half: all 40 alike is 2^-39.
    assert!(
        !failed.is_empty() && failed.len() < 40,
        "{} of 40 failed",
        failed.len()
    );
    assert_eq!(first.counts["server_error"], failed.len() as u64);
    assert_eq!(service.sandbox.stats().requests, 40);

    service.act(&first, "retry").await;
    let again = service
        .wait_for(job.id, "done after the retry", |j| {
            j.state == JobState::Done && j.requests > first.requests
        })
        .await;
    assert_eq!(again.requests, 40 + failed.len() as u64);
    assert_eq!(
        service.sandbox.stats().requests,
        40 + failed.len() as u64,
        "only the failed rows were sent again"
    );
    let twice = service
        .sandbox
        .vehicle_requests()
        .values()
        .filter(|n| **n == 2)
        .count();
    assert_eq!(twice, failed.len());
    let after = results_of(&service, &again).await;
    assert_eq!(after.len(), 40);
    for (was, now) in before.iter().zip(&after) {
        assert_eq!(was.row, now.row);
        assert_eq!(now.status, "renewed", "row {}", now.row);
        if !failed.contains(&was.row) {
            assert_eq!(
                (&now.renewal_token, &now.answered_at),
                (&was.renewal_token, &was.answered_at),
                "row {} was answered before and kept",
                now.row
            );
        }
    }
    assert_eq!((again.counts["renewed"], again.counts["server_error"]), (40, 0));
    service.shutdown().await;
}
