//! The pipeline over a fake transport, on tokio's paused clock: backoffs and `Retry-After`
//! waits pass in no real time and are measured exactly.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::run_over;
use crate::api::body::CappedBody;
use crate::api::protocol::Agent;
use crate::api::secret::Secret;
use crate::api::transport::{Endpoint, Reply, Transport, TransportError};
use crate::error::Error;
use crate::leads::input::InputOptions;
use crate::results::outcome::Status;
use crate::results::output::{OutputStyle, OutputTarget};
use crate::run::config::{Backoff, Existing, RunConfig};
use crate::run::events::Silent;
use crate::run::quota::Quota;
use crate::run::summary::{RunEnd, Summary};

/// One request the fake transport was sent.
#[derive(Debug, Clone)]
struct Call {
    at: Instant,
    endpoint: Endpoint,
    body: serde_json::Value,
}

type Script = dyn Fn(&Call, &[Call]) -> Result<Reply, TransportError> + Send + Sync;

/// Answers each request by a script that sees the request and all the earlier ones, after
/// `latency` on tokio's clock.
struct Fake {
    calls: Mutex<Vec<Call>>,
    latency: Duration,
    script: Box<Script>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fake").finish_non_exhaustive()
    }
}

impl Transport for Fake {
    fn post(&self, endpoint: Endpoint, json: Bytes) -> BoxFuture<'_, Result<Reply, TransportError>> {
        let call = Call {
            at: Instant::now(),
            endpoint,
            body: serde_json::from_slice(&json).expect("requests are JSON"),
        };
        let answer = {
            let mut calls = self.calls.lock().unwrap();
            let answer = (self.script)(&call, &calls);
            calls.push(call);
            answer
        };
        async move {
            tokio::time::sleep(self.latency).await;
            answer
        }
        .boxed()
    }
}

impl Fake {
    fn new(
        latency: Duration,
        script: impl Fn(&Call, &[Call]) -> Result<Reply, TransportError> + Send + Sync + 'static,
    ) -> Arc<Fake> {
        Arc::new(Fake {
            calls: Mutex::new(Vec::new()),
            latency,
            script: Box::new(script),
        })
    }

    fn calls(&self, endpoint: Endpoint) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|call| call.endpoint == endpoint)
            .cloned()
            .collect()
    }
}

fn reply(status: u16, retry_after: Option<u64>, body: &str) -> Result<Reply, TransportError> {
    Ok(Reply {
        status,
        retry_after,
        body: CappedBody::Whole(Bytes::from(body.to_string())),
        date: None,
    })
}

fn renewed() -> Result<Reply, TransportError> {
    reply(200, None, r#"{"msg":"ok","RenewalToken":"0123456789ABCDEFab"}"#)
}

fn plate(call: &Call) -> &str {
    call.body["LicenseNo"].as_str().unwrap_or_default()
}

fn token(call: &Call) -> &str {
    call.body["Token"].as_str().unwrap_or_default()
}

/// A run of `n` rows with a Token, generous limits and a short backoff (1 s to 4 s).
fn config(dir: &tempfile::TempDir, n: usize) -> RunConfig {
    let input = dir.path().join("leads.csv");
    let mut csv = String::from("name,LicenseNo\n");
    for i in 1..=n {
        csv.push_str(&format!("客户{i},京A{i:05}\n"));
    }
    std::fs::write(&input, csv).unwrap();
    RunConfig {
        input,
        output: OutputTarget::File(dir.path().join("leads.results.csv")),
        existing: Existing::Refuse,
        base_url: "http://bihu-renew.invalid/".parse().unwrap(),
        agent: Agent {
            agent_id: "102".into(),
            secret: Secret::new("pipeline-test-secret"),
            secret_label: "secretKey".into(),
        },
        token: Some("T0".into()),
        user_name: None,
        input_options: InputOptions::default(),
        output_style: OutputStyle::default(),
        // The rate limiter runs on the real clock: keep it out of the way.
        rate: NonZeroU32::new(100_000).unwrap(),
        burst: NonZeroU32::new(100_000).unwrap(),
        concurrency: NonZeroUsize::new(1).unwrap(),
        retries: 3,
        timeout: Duration::from_secs(5),
        backoff: Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(20),
        },
        credential_failure_limit: 5,
        history: None,
    }
}

async fn run(config: RunConfig, fake: &Arc<Fake>) -> Result<Summary, Error> {
    let transport: Arc<dyn Transport> = fake.clone();
    let quota = Quota::new(config.rate, config.burst, config.concurrency);
    run_over(
        config,
        &quota,
        Arc::new(Silent),
        CancellationToken::new(),
        move |_| Ok(transport),
    )
    .await
}

fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls.windows(2).map(|pair| pair[1].at - pair[0].at).collect()
}

fn count(summary: &Summary, status: Status) -> u64 {
    summary.by_status.get(&status).copied().unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_exponentially_with_jitter_until_retries_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Duration::ZERO, |_, _| reply(503, None, r#"{"msg":"busy"}"#));
    let summary = run(config(&dir, 1), &fake).await.unwrap();

    let calls = fake.calls(Endpoint::Renewal);
    assert_eq!(calls.len(), 4, "the first attempt and three retries");
    assert_eq!(count(&summary, Status::ServerError), 1);
    assert_eq!(summary.retries, 3);
    // Each delay is its step (1 s, 2 s, 4 s, capped at the max) plus less than as much jitter;
    // tokio's timer rounds a deadline up to its next millisecond, so a delay just under twice
    // the step is slept as exactly twice the step.
    let steps = [1, 2, 4].map(Duration::from_secs);
    for (gap, step) in gaps(&calls).into_iter().zip(steps) {
        assert!(gap >= step && gap <= step * 2, "{gap:?} for a step of {step:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_row_that_recovers_is_written_once_with_its_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Duration::from_millis(20), |_, earlier| match earlier.len() {
        0 | 1 => reply(502, None, "bad gateway"),
        _ => renewed(),
    });
    let summary = run(config(&dir, 1), &fake).await.unwrap();
    assert_eq!(summary.end, RunEnd::Completed);
    assert_eq!(count(&summary, Status::Renewed), 1);
    assert_eq!((summary.requests, summary.retries), (3, 2));
    // 20 ms of answer, then 1 s of backoff plus less than 1 s of jitter, which tokio's timer
    // rounds up to its next millisecond (CI once slept the whole 2 s).
    let gap = gaps(&fake.calls(Endpoint::Renewal))[0];
    assert!(
        gap >= Duration::from_millis(1_020) && gap <= Duration::from_millis(2_020),
        "{gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_above_the_backoff_and_clamped_to_its_maximum() {
    for (asked, waited) in [(7, 7), (1_000, 20)] {
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake::new(Duration::ZERO, move |_, earlier| match earlier.len() {
            0 => reply(429, Some(asked), r#"{"msg":"slow down"}"#),
            _ => renewed(),
        });
        let summary = run(config(&dir, 1), &fake).await.unwrap();
        assert_eq!(count(&summary, Status::Renewed), 1);
        let gap = gaps(&fake.calls(Endpoint::Renewal))[0];
        let waited = Duration::from_secs(waited);
        assert!(
            gap >= waited && gap < waited + Duration::from_millis(50),
            "Retry-After: {asked} waited {gap:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_breaker_stops_the_run_after_consecutive_credential_failures() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Duration::from_millis(5), |call, earlier| {
        // The second row passes the credential checks, which resets the count.
        if plate(call) == "京A00002" && earlier.len() == 1 {
            reply(206, None, r#"{"msg":"not due"}"#)
        } else if earlier.len() % 2 == 0 {
            reply(403, None, r#"{"msg":"token expired"}"#)
        } else {
            reply(406, None, r#"{"msg":"bad secCode"}"#)
        }
    });
    let summary = run(config(&dir, 20), &fake).await.unwrap();

    assert_eq!(summary.end, RunEnd::Aborted);
    // Row 1 fails, row 2 resets the streak, rows 3 to 7 make five in a row.
    assert_eq!(fake.calls(Endpoint::Renewal).len(), 7);
    assert_eq!(summary.rows_written, 7);
    assert_eq!(summary.not_reached, 13);
    let reason = summary.stop_reason.unwrap();
    assert!(reason.contains("5 consecutive credential failures"), "{reason}");
    assert!(
        reason.contains("HTTP 403") && reason.contains("HTTP 406"),
        "{reason}"
    );
    assert!(fake.calls(Endpoint::Login).is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_replaced_by_one_login_however_many_rows_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Duration::from_millis(50), |call, earlier| match call.endpoint {
        Endpoint::Login => {
            let n = earlier.iter().filter(|c| c.endpoint == Endpoint::Login).count();
            reply(200, None, &format!(r#"{{"msg":"ok","Token":"T{}"}}"#, n + 1))
        }
        // The first login's Token expires at once; the second one's holds.
        Endpoint::Renewal if token(call) == "T1" => reply(403, None, r#"{"msg":"token expired"}"#),
        Endpoint::Renewal => renewed(),
    });
    let mut config = config(&dir, 24);
    config.token = None;
    config.user_name = Some("clerk".into());
    config.concurrency = NonZeroUsize::new(8).unwrap();
    let summary = run(config, &fake).await.unwrap();

    assert_eq!(summary.end, RunEnd::Completed);
    assert_eq!(count(&summary, Status::Renewed), 24);
    let logins = fake.calls(Endpoint::Login);
    assert_eq!(logins.len(), 2, "the first login and one more: {logins:?}");
    assert_eq!(summary.logins, 2);
    let renewals = fake.calls(Endpoint::Renewal);
    let expired = renewals.iter().filter(|call| token(call) == "T1").count();
    assert_eq!(expired, 8, "the eight rows in flight saw the first Token");
    // Every row that saw it went again at once with the new Token, with no backoff.
    let relogin = logins[1].at;
    for call in renewals.iter().filter(|call| token(call) == "T2") {
        assert!(call.at >= relogin, "{call:?} before the login at {relogin:?}");
    }
    let last = renewals.iter().map(|call| call.at).max().unwrap();
    assert!(
        last - relogin < Duration::from_millis(500),
        "{:?} after the login",
        last - relogin
    );
}

#[tokio::test(start_paused = true)]
async fn a_transport_failure_is_retried_and_a_failed_first_login_stops_before_any_row() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Duration::ZERO, |_, earlier| match earlier.len() {
        0 => Err(TransportError::Connect("bihu-renew.invalid: refused".into())),
        _ => renewed(),
    });
    let summary = run(config(&dir, 1), &fake).await.unwrap();
    assert_eq!(count(&summary, Status::Renewed), 1);
    assert_eq!(summary.retries, 1);

    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Duration::ZERO, |_, _| {
        reply(416, None, r#"{"msg":"no such user"}"#)
    });
    let mut config = config(&dir, 3);
    config.token = None;
    config.user_name = Some("clerk".into());
    let error = run(config, &fake).await.unwrap_err();
    assert!(matches!(error, Error::Credentials(_)), "{error:?}");
    assert_eq!(error.exit_code(), crate::error::exit::CREDENTIALS);
    assert!(error.to_string().contains("cannot log in as clerk"), "{error}");
    assert!(error.to_string().contains("check --user-name"), "{error}");
    assert!(fake.calls(Endpoint::Renewal).is_empty());
    // Nothing was renewed: no file is left to refuse the same command as "already exists".
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name != "leads.csv")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A login that reaches no one is no verdict on the credentials: exit 1, not 3.
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(Duration::ZERO, |_, _| {
        Err(TransportError::Connect("bihu-renew.invalid: refused".into()))
    });
    let mut unreached = self::config(&dir, 3);
    unreached.token = None;
    unreached.user_name = Some("clerk".into());
    let error = run(unreached, &fake).await.unwrap_err();
    assert!(matches!(error, Error::Unreached(_)), "{error:?}");
    assert_eq!(error.exit_code(), crate::error::exit::SOME_TRANSIENT);
    assert!(
        error
            .to_string()
            .contains("could not connect to bihu-renew.invalid"),
        "{error}"
    );
    assert!(fake.calls(Endpoint::Renewal).is_empty());
}

/// A journal holding another input's answer is found when its row is taken in: at row 1,
/// before any request, the run is refused (exit 2); in a later batch, once requests have
/// gone out, it is a run stopped midway (exit 4), which `--resume` continues once put right.
#[tokio::test(start_paused = true)]
async fn a_journal_of_another_input_is_refused_before_any_request_and_stops_a_run_after_one() {
    use crate::error::exit;
    use crate::results::journal::{self, Journal, Record};
    use crate::results::outcome::RowOutcome;

    for (row, code) in [(1, exit::USAGE), (300, exit::WRITE_FAILED)] {
        let dir = tempfile::tempdir().unwrap();
        let mut resumed = config(&dir, 300);
        resumed.existing = Existing::Resume;
        let OutputTarget::File(output) = &resumed.output else {
            unreachable!("the test config writes a file")
        };
        let record = Record {
            row,
            vehicle: 42,
            outcome: RowOutcome {
                status: Status::Renewed,
                ..RowOutcome::default()
            },
            retry: None,
        };
        Journal::create(&journal::journal_path(output), [&record])
            .unwrap()
            .finish()
            .unwrap();
        let fake = Fake::new(Duration::ZERO, |_, _| renewed());
        let error = run(resumed, &fake).await.unwrap_err();
        assert_eq!(error.exit_code(), code, "row {row}: {error}");
        let text = error.to_string();
        assert!(text.contains(&format!("data row {row}")), "{text}");
        assert!(text.contains("pass --force to start over"), "{text}");
        assert_eq!(fake.calls(Endpoint::Renewal).is_empty(), row == 1, "row {row}");
    }
}

/// An answer whose row is written at once is not journalled: the rows written in order are
/// in `.partial` and not in the journal; the answers that wait behind a row in its backoff
/// are in the journal, with that row's backoff record. Seen at the moment the waiting row is sent again.
#[tokio::test(start_paused = true)]
async fn the_journal_holds_only_the_answers_that_partial_cannot_take_yet() {
    use crate::results::journal;

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir, 12);
    config.concurrency = NonZeroUsize::new(2).unwrap();
    let OutputTarget::File(output) = config.output.clone() else {
        unreachable!("the test config writes a file")
    };
    let partial = crate::results::output::with_suffix(&output, ".partial");
    let journal_path = journal::journal_path(&output);
    // What was on disk when row 5 went again: `.partial`'s rows, and the journal's records.
    let seen = Arc::new(Mutex::new(None::<(usize, Vec<journal::Record>)>));
    let fake = {
        let seen = seen.clone();
        Fake::new(Duration::from_millis(20), move |call, earlier| {
            if plate(call) != "京A00005" {
                return renewed();
            }
            if earlier.iter().any(|earlier| plate(earlier) == "京A00005") {
                let rows = std::fs::read_to_string(&partial).unwrap().lines().count() - 1;
                let (records, _) = journal::read(&journal_path).unwrap();
                *seen.lock().unwrap() = Some((rows, records));
                return renewed();
            }
            reply(503, Some(2), r#"{"msg":"busy"}"#)
        })
    };
    let summary = run(config, &fake).await.unwrap();
    assert_eq!(count(&summary, Status::Renewed), 12);
    assert!(
        !journal::journal_path(&output).exists(),
        "a complete run leaves no journal"
    );

    let (rows_in_partial, records) = seen.lock().unwrap().take().expect("row 5 went again");
    assert_eq!(rows_in_partial, 4, "rows 1 to 4, in order");
    let decided: Vec<u64> = records
        .iter()
        .filter(|record| record.retry.is_none())
        .map(|record| record.row)
        .collect();
    assert_eq!(
        decided,
        (6..=12).collect::<Vec<_>>(),
        "the answers behind row 5, each once"
    );
    let waiting: Vec<u64> = records
        .iter()
        .filter(|record| record.retry.is_some())
        .map(|record| record.row)
        .collect();
    assert_eq!(waiting, [5], "row 5's backoff");
}

/// A results file that cannot be flushed stops the run (exit 4), and the answers it had
/// taken since its last good flush go to the journal: nothing answered is lost to the failure.
#[tokio::test(start_paused = true)]
async fn answers_a_failed_flush_kept_from_disk_are_journalled() {
    use crate::results::journal;

    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, 6);
    let OutputTarget::File(output) = config.output.clone() else {
        unreachable!("the test config writes a file")
    };
    let partial = crate::results::output::with_suffix(&output, ".partial");
    let fake = Fake::new(Duration::from_millis(20), move |call, _| {
        if plate(call) == "京A00004" {
            // The flush after row 4's answer finds its file gone.
            std::fs::remove_file(&partial).unwrap();
        }
        renewed()
    });
    let error = run(config, &fake).await.unwrap_err();
    assert_eq!(error.exit_code(), crate::error::exit::WRITE_FAILED, "{error}");
    assert_eq!(
        fake.calls(Endpoint::Renewal).len(),
        4,
        "nothing is sent after the failure"
    );
    let (records, _) = journal::read(&journal::journal_path(&output)).unwrap();
    let rows: Vec<u64> = records.iter().map(|record| record.row).collect();
    assert_eq!(rows, [4], "row 4's answer, which the deleted file cannot keep");
    assert_eq!(records[0].outcome.status, Status::Renewed);
}

/// A window filled to its bound behind a row in its backoff, with rows already received
/// from the reader: once that row is answered and the window written, the loop takes the
/// received rows in (it used to wait for a wake-up that never came). The rows are large, so
/// that the window fills by bytes (16 MB) within the backoff. On the real clock: the reader
/// is a thread, which a paused clock would not wait for.
#[tokio::test]
async fn a_full_window_behind_a_backoff_drains_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, 0);
    let mut csv = String::from("name,LicenseNo\n");
    for i in 1..=400 {
        csv.push_str(&format!("{},京A{i:05}\n", "客".repeat(20_000)));
    }
    std::fs::write(&config.input, csv).unwrap();
    let fake = Fake::new(Duration::ZERO, move |call, earlier| {
        if plate(call) == "京A00001" && !earlier.iter().any(|earlier| plate(earlier) == "京A00001") {
            return reply(503, Some(2), r#"{"msg":"busy"}"#);
        }
        renewed()
    });
    let summary = tokio::time::timeout(Duration::from_secs(60), run(config, &fake))
        .await
        .expect("the run goes on once its window drains")
        .unwrap();
    assert_eq!(count(&summary, Status::Renewed), 400);
    assert_eq!(fake.calls(Endpoint::Renewal).len(), 401);
}
