//! A row's turn in a request slot: the [`Job`] (a vehicle to renew and what its attempts
//! have learnt), the [`RunState`] every turn of a run shares (client, quota membership,
//! Token, breaker, counters), and one attempt: sign, send, read the answer, and say whether
//! the row is done, goes again at once after a re-login, or waits out a backoff.
//!
//! The pipeline polls turns as futures and decides what happens to the row after each.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::api::client::{self, Client, LoginError};
use crate::api::protocol::Answer;
use crate::error::Error;
use crate::leads::lead::Lead;
use crate::results::history;
use crate::results::outcome::{RowOutcome, Status};
use crate::run::breaker::Breaker;
use crate::run::config::{Backoff, RunConfig};
use crate::run::events::{Event, Observer};
use crate::run::quota::Member;
use crate::run::tokens::Tokens;

/// A vehicle to renew, with what its attempts so far have learnt.
pub(super) struct Job {
    /// Its place in the window.
    pub(super) seq: u64,
    pub(super) row: u64,
    pub(super) lead: Lead,
    pub(super) attempts: u32,
    pub(super) transient_failures: u32,
    logged_in_for_this_row: bool,
    /// The outcome of the latest attempt, written if the run stops during a backoff.
    pub(super) last: Option<RowOutcome>,
    delays: Option<backon::ExponentialBackoff>,
}

impl Job {
    pub(super) fn new(seq: u64, row: u64, lead: Lead) -> Job {
        Job {
            seq,
            row,
            lead,
            attempts: 0,
            transient_failures: 0,
            logged_in_for_this_row: false,
            last: None,
            delays: None,
        }
    }
}

/// How a row's turn in a request slot ended.
pub(super) enum Turn {
    /// The row has its outcome (a panic in the attempt, a bug, is written as a protocol error).
    Done(RowOutcome),
    /// Send again after this backoff.
    Retry(Duration),
    /// The run stopped before this turn's request was sent.
    Stopped,
}

/// A row's turn in a request slot: waits for the rate limiter, then sends one attempt (and
/// another at once after a re-login).
pub(super) async fn turn(shared: &RunState, mut job: Job) -> (Job, Turn) {
    // Held until the turn ends: the quota's concurrency counts requests of every run.
    let _slot = match shared.member.try_slot() {
        Some(slot) => slot,
        None => tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return (job, Turn::Stopped),
            slot = shared.member.slot() => slot,
        },
    };
    loop {
        if !shared.try_pace() {
            // Only a row that must wait listens for the stop, which saves registering with the
            // stop token for every request when the limit does not bind.
            tokio::select! {
                biased;
                _ = shared.stop.cancelled() => return (job, Turn::Stopped),
                _ = shared.pace() => {}
            }
        }
        // A turn started in the same pass as the one that tripped the breaker sends nothing.
        if shared.stop.is_cancelled() {
            return (job, Turn::Stopped);
        }
        let turn = match AssertUnwindSafe(attempt(shared, &mut job)).catch_unwind().await {
            // Logged in again: the same row goes again at once, unless the run has stopped.
            Ok(Step::Again) if !shared.stop.is_cancelled() => continue,
            Ok(Step::Again) => Turn::Stopped,
            Ok(Step::Done(outcome)) => Turn::Done(outcome),
            Ok(Step::Retry(delay)) => Turn::Retry(delay),
            Err(_) => Turn::Done(RowOutcome {
                status: Status::ProtocolError,
                message: "internal error while renewing this row (see the log)".to_string(),
                ..RowOutcome::default()
            }),
        };
        return (job, turn);
    }
}

/// What one attempt leads to.
enum Step {
    Done(RowOutcome),
    /// Send again now (a fresh Token was obtained).
    Again,
    /// Send again after this backoff.
    Retry(Duration),
}

/// What every row's turn of this run shares.
pub(super) struct RunState {
    pub(super) client: Client,
    /// This run's place in the quota: its request slots and its rate limiter.
    member: Member,
    pub(super) tokens: Tokens,
    retries: u32,
    backoff: Backoff,
    pub(super) stop: CancellationToken,
    pub(super) breaker: Breaker,
    pub(super) observer: Arc<dyn Observer>,
    pub(super) n_requests: AtomicU64,
    pub(super) n_retries: AtomicU64,
    pub(super) n_logins: AtomicU64,
}

impl RunState {
    pub(super) fn new(
        config: &RunConfig,
        member: Member,
        client: Client,
        observer: Arc<dyn Observer>,
        stop: CancellationToken,
    ) -> RunState {
        RunState {
            client,
            member,
            tokens: Tokens::new(config.user_name.clone()),
            retries: config.retries,
            backoff: config.backoff,
            breaker: Breaker::new(config, stop.clone()),
            stop,
            observer,
            n_requests: AtomicU64::new(0),
            n_retries: AtomicU64::new(0),
            n_logins: AtomicU64::new(0),
        }
    }

    /// Waits until the quota's rate limiter lets one more request go.
    async fn pace(&self) {
        self.member.quota().pace().await
    }

    /// Lets one more request go at once if nobody is waiting and the limiter has room.
    fn try_pace(&self) -> bool {
        self.member.quota().try_pace()
    }

    /// The login before the first row, for a run given a user name and no Token.
    pub(super) async fn first_login(&self) -> Result<String, Error> {
        let user_name = self
            .tokens
            .user_name
            .as_deref()
            .expect("config requires a token or a user name");
        self.login(user_name).await.map_err(|error| {
            Error::login(
                error,
                format!("cannot log in as {user_name} to get a Token (nothing was renewed)"),
            )
        })
    }

    /// One login, paced like a request and counted.
    async fn login(&self, user_name: &str) -> Result<String, LoginError> {
        self.pace().await;
        self.n_logins.fetch_add(1, Ordering::Relaxed);
        self.client.login(user_name, client::unix_now()).await
    }
}

/// One attempt for a row: signs with a fresh `TimeStamp`, sends, and reads the answer.
async fn attempt(shared: &RunState, job: &mut Job) -> Step {
    let token = shared.tokens.current();
    job.attempts += 1;
    let attempts = job.attempts;
    shared.n_requests.fetch_add(1, Ordering::Relaxed);
    if attempts > 1 {
        shared.n_retries.fetch_add(1, Ordering::Relaxed);
    }
    shared.observer.on_event(&Event::Attempt {
        row: job.row,
        retry: attempts > 1,
    });
    let result = shared
        .client
        .renew(&job.lead, &token.value, client::unix_now())
        .await;
    match &result {
        Ok(answer) => tracing::trace!(row = job.row, attempts, status = answer.http_status(), "answer"),
        Err(error) => tracing::trace!(row = job.row, attempts, %error, "no answer"),
    }

    let retry_after = match &result {
        Ok(Answer::Unauthorized { .. }) if shared.tokens.can_login() && !job.logged_in_for_this_row => {
            job.logged_in_for_this_row = true;
            match shared
                .tokens
                .refresh(token.generation, async |user_name| shared.login(user_name).await)
                .await
            {
                Ok(()) => return Step::Again,
                Err(login_error) => {
                    let answer = result.expect("matched Ok");
                    let mut outcome = RowOutcome::from_answer(
                        answer,
                        attempts,
                        shared.client.quote_page(),
                        &token.value,
                        history::unix_ms_now(),
                    );
                    outcome.message = format!("{}; logging in again failed: {login_error}", outcome.message);
                    shared.breaker.record(outcome.status);
                    return Step::Done(outcome);
                }
            }
        }
        Ok(Answer::Transient { retry_after_secs, .. }) => Some(retry_after_secs.unwrap_or(0)),
        Err(_) => Some(0),
        Ok(_) => None,
    };
    let outcome = match result {
        Ok(answer) => RowOutcome::from_answer(
            answer,
            attempts,
            shared.client.quote_page(),
            &token.value,
            history::unix_ms_now(),
        ),
        Err(error) => RowOutcome::transport(&error, attempts),
    };
    shared.breaker.record(outcome.status);
    let Some(retry_after_secs) = retry_after else {
        return Step::Done(outcome);
    };
    job.transient_failures += 1;
    if job.transient_failures > shared.retries {
        return Step::Done(outcome);
    }
    let backoff = shared.backoff;
    let delays = job.delays.get_or_insert_with(|| {
        backon::ExponentialBuilder::default()
            .with_min_delay(backoff.min)
            .with_max_delay(backoff.max)
            .with_jitter()
            .without_max_times()
            .build()
    });
    let asked = Duration::from_secs(retry_after_secs).min(backoff.max_retry_after);
    let delay = delays.next().unwrap_or(backoff.max).max(asked);
    tracing::debug!(row = job.row, attempts, ?delay, status = %outcome.status, "retrying after backoff");
    job.last = Some(outcome);
    Step::Retry(delay)
}
