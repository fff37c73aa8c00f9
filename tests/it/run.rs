//! The batch run (issue 3) end to end: `pipeline::run` in-process against a sandbox on
//! `127.0.0.1:0`, and the `bihu-renew` binary for what scripts see (exit codes, stderr,
//! stdout). Assertions read the results CSV back into rows and look at what the sandbox
//! received; backoffs are short so that only the tests about time take any.

use std::collections::BTreeMap;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bihu_renew::api::secret::Secret;
use bihu_renew::cmd::run::CREDENTIAL_FAILURE_LIMIT;
use bihu_renew::leads::input::InputEncoding;
use bihu_renew::results::output::OutputTarget;
use bihu_renew::run::config::RunConfig;
use bihu_renew::run::events::Silent;
use bihu_renew::run::pipeline;
use bihu_renew::run::quota::Quota;
use bihu_renew::run::summary::{RunEnd, Summary};
use bihu_renew::sandbox::{RecordedRequest, Sandbox, SandboxConfig, expected_renewal};
use serde_json::Value;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::support::{
    BinOutput, ResultRow, client, parse_results, read_results, run_binary, run_config, start_sandbox,
};

/// The secret key of every sandbox here: distinctive, so that a leak cannot hide.
const SECRET: &str = "Xq7-sandbox-SECRET-do-not-leak-93";

/// The sandbox's default share of vehicles without renewal data (answered 206).
const NOT_RENEWABLE_PERCENT: u8 = 20;

// ---------------------------------------------------------------------------------------------
// Harness

/// A lead list in a temp dir, a sandbox that records requests, and a run configuration
/// pointing at it (fast: high rate, backoff 10-200 ms).
struct RunTest {
    dir: TempDir,
    sandbox: Sandbox,
    config: RunConfig,
}

/// A finished in-process run: its summary, OUTPUT parsed back, and what the sandbox received.
struct Ran {
    summary: Summary,
    rows: Vec<ResultRow>,
    requests: Vec<RecordedRequest>,
}

impl RunTest {
    async fn new(sandbox: SandboxConfig) -> RunTest {
        let sandbox = start_sandbox(SandboxConfig {
            secret: Secret::new(SECRET),
            record_requests: true,
            ..sandbox
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let config = run_config(
            &sandbox,
            dir.path().join("leads.csv"),
            dir.path().join("leads.results.csv"),
        );
        RunTest { dir, sandbox, config }
    }

    fn input(self, csv: impl AsRef<[u8]>) -> RunTest {
        std::fs::write(&self.config.input, csv).unwrap();
        self
    }

    fn config(mut self, change: impl FnOnce(&mut RunConfig)) -> RunTest {
        change(&mut self.config);
        self
    }

    fn input_path(&self) -> &str {
        self.config.input.to_str().unwrap()
    }

    /// Where OUTPUT goes by default: `leads.results.csv` beside the input.
    fn output_path(&self) -> PathBuf {
        self.dir.path().join("leads.results.csv")
    }

    async fn run(&self) -> Ran {
        let config = &self.config;
        let quota = Quota::new(config.rate, config.burst, config.concurrency);
        let summary = pipeline::run(config.clone(), &quota, Arc::new(Silent), CancellationToken::new())
            .await
            .unwrap_or_else(|error| panic!("the run failed: {error}"));
        let OutputTarget::File(path) = &self.config.output else {
            panic!("in-process runs here write a file");
        };
        Ran {
            summary,
            rows: read_results(path),
            requests: self.sandbox.requests(),
        }
    }

    /// `bihu-renew run INPUT --no-progress` with the sandbox's credentials, then `args`.
    async fn cli(&self, args: &[&str]) -> BinOutput {
        self.cli_with(&[], args).await
    }

    /// As [`RunTest::cli`], with credential flags replaced (`Some`) or left out (`None`).
    async fn cli_with(&self, credentials: &[(&str, Option<&str>)], args: &[&str]) -> BinOutput {
        self.cli_with_env(credentials, &[], args).await
    }

    /// As [`RunTest::cli_with`], with environment variables set for the binary.
    async fn cli_with_env(
        &self,
        credentials: &[(&str, Option<&str>)],
        envs: &[(&str, &str)],
        args: &[&str],
    ) -> BinOutput {
        let base_url = self.sandbox.base_url().to_string();
        let sandbox = self.sandbox.config();
        let defaults = [
            ("--base-url", base_url.as_str()),
            ("--agent-id", sandbox.agent_id.as_str()),
            ("--token", sandbox.token.as_str()),
            ("--secret-key", SECRET),
        ];
        let mut all = vec!["run", self.input_path(), "--no-progress"];
        for (flag, value) in defaults {
            let value = match credentials.iter().find(|(name, _)| *name == flag) {
                Some((_, replaced)) => *replaced,
                None => Some(value),
            };
            if let Some(value) = value {
                all.extend([flag, value]);
            }
        }
        all.extend_from_slice(args);
        run_binary(&all, envs).await
    }
}

fn plate(i: usize) -> String {
    format!("京A{i:05}")
}

/// `name,LicenseNo,note` for plates 1..=n (city from the plate: 北京, 1); the note needs
/// quoting, to show that other columns come through untouched.
fn plate_list(n: usize) -> String {
    let mut csv = String::from("name,LicenseNo,note\n");
    for i in 1..=n {
        csv.push_str(&format!("客户{i},{},\"note {i}, \"\"quoted\"\"\"\n", plate(i)));
    }
    csv
}

/// The data rows of a CSV, as a reader sees them.
fn data_rows(csv: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv.as_bytes())
        .records()
        .map(|record| record.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// The sandbox's answer for a plate in a city: `Some(RenewalToken)` or `None` (206).
fn expected(plate: &str, city: &str) -> Option<String> {
    expected_renewal(Some(plate), None, None, city, NOT_RENEWABLE_PERCENT)
}

/// Checks a row that the sandbox answered for `plate` (city 1) with its final answer.
#[track_caller]
fn assert_final_answer(row: &ResultRow, plate: &str) {
    match expected(plate, "1") {
        Some(renewal_token) => {
            assert_eq!(row.status, "renewed", "{row:?}");
            assert_eq!(row.http_status, "200", "{row:?}");
            assert_eq!(row.renewal_token, renewal_token, "{row:?}");
            assert!(row.quote_url.contains(&renewal_token), "{row:?}");
        }
        None => {
            assert_eq!(row.status, "not_renewable", "{row:?}");
            assert_eq!(row.http_status, "206", "{row:?}");
            assert_eq!(row.quote_url, "", "{row:?}");
        }
    }
}

fn body(request: &RecordedRequest) -> Value {
    serde_json::from_str(&request.body).expect("the client sends JSON")
}

fn field(request: &RecordedRequest, key: &str) -> String {
    body(request)
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The vehicle a request names, as `LicenseNo|CarVin|EngineNo|CityCode`.
fn vehicle(request: &RecordedRequest) -> String {
    ["LicenseNo", "CarVin", "EngineNo", "CityCode"]
        .map(|key| field(request, key))
        .join("|")
}

fn plate_vehicle(plate: &str, city: u8) -> String {
    format!("{plate}|||{city}")
}

/// Requests received per vehicle.
fn requests_per_vehicle(requests: &[RecordedRequest]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        *counts.entry(vehicle(request)).or_default() += 1;
    }
    counts
}

/// The `Token` a quote URL carries.
fn quote_token(quote_url: &str) -> String {
    let url = reqwest::Url::parse(quote_url).unwrap_or_else(|e| panic!("{quote_url}: {e}"));
    url.query_pairs()
        .find(|(key, _)| key == "Token")
        .map(|(_, value)| value.into_owned())
        .expect("a quote URL has a Token")
}

fn count_status(rows: &[ResultRow], status: &str) -> usize {
    rows.iter().filter(|row| row.status == status).count()
}

#[track_caller]
fn assert_numbered_from_one(rows: &[ResultRow]) {
    let numbers: Vec<u64> = rows.iter().map(|row| row.row).collect();
    let expected: Vec<u64> = (1..=rows.len() as u64).collect();
    assert_eq!(numbers, expected);
}

// ---------------------------------------------------------------------------------------------
// Order, one row per input row, duplicates

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_come_out_in_input_order_although_they_finish_out_of_order() {
    let n = 200;
    let list = plate_list(n);
    let t = RunTest::new(SandboxConfig {
        latency: Duration::from_millis(2),
        fail_rate: 0.3,
        drop_rate: 0.1,
        fail_first_attempts_only: true,
        ..SandboxConfig::default()
    })
    .await
    .input(&list)
    .config(|c| c.concurrency = NonZeroUsize::new(16).unwrap());
    let ran = t.run().await;

    // The faults and retries did reorder the work: some row's last request reached the
    // sandbox after a later row's last request.
    let last_request_of = |i: usize| {
        let vehicle = plate_vehicle(&plate(i), 1);
        ran.requests
            .iter()
            .rposition(|r| self::vehicle(r) == vehicle)
            .unwrap()
    };
    let finish_order: Vec<usize> = (1..=n).map(last_request_of).collect();
    assert!(
        finish_order.windows(2).any(|pair| pair[0] > pair[1]),
        "nothing finished out of order; the test proves nothing"
    );

    let input = data_rows(&list);
    let per_vehicle = requests_per_vehicle(&ran.requests);
    assert_eq!(ran.rows.len(), n);
    assert_numbered_from_one(&ran.rows);
    for (i, row) in ran.rows.iter().enumerate() {
        assert_eq!(row.input, input[i], "row {}", row.row);
        assert_final_answer(row, &plate(i + 1));
        let n_requests = per_vehicle[&plate_vehicle(&plate(i + 1), 1)];
        assert_eq!(row.attempts as usize, n_requests, "{row:?}");
    }
    assert!(ran.rows.iter().any(|row| row.attempts == 2), "no retry happened");
    assert_eq!(ran.summary.requests as usize, ran.requests.len());
    assert_eq!(ran.summary.end, RunEnd::Completed);
}

#[tokio::test]
async fn every_input_row_has_one_output_row_malformed_ones_included() {
    let mut list = b"name,LicenseNo,CityCode\n".to_vec();
    list.extend_from_slice("first,京A10001,1\n".as_bytes());
    list.extend_from_slice("ragged,京A10002\n".as_bytes());
    list.extend_from_slice(b",,\n");
    list.extend_from_slice("extra,京A10003,1,oops\n".as_bytes());
    list.extend_from_slice("bad plate,京A1234,1\n".as_bytes());
    list.extend_from_slice(b"\xbe\xa9gbk,\xbe\xa9A10004,1\n");
    list.extend_from_slice("after,京A10005,1\n".as_bytes());
    list.extend_from_slice("bad city,京A10006,99\n".as_bytes());
    list.extend_from_slice("last,京A10007,\n".as_bytes());
    // Read as UTF-8: with the default `auto` the GBK bytes would make it a GBK file.
    let t = RunTest::new(SandboxConfig::default())
        .await
        .input(&list)
        .config(|c| c.input_options.encoding = InputEncoding::Utf8);
    let ran = t.run().await;

    assert_eq!(ran.rows.len(), 9, "{:#?}", ran.rows);
    assert_numbered_from_one(&ran.rows);
    let rows = &ran.rows;
    for (i, n) in [(0, 10001), (6, 10005), (8, 10007)] {
        assert_final_answer(&rows[i], &plate(n));
        assert_eq!(rows[i].attempts, 1);
    }
    let rejected = [
        (1, "2 fields but the header has 3"),
        (2, "no vehicle"),
        (3, "extra fields: oops"),
        (4, "京A1234"),
        (5, "not valid UTF-8"),
        (7, "city 99"),
    ];
    for (i, reason) in rejected {
        let row = &rows[i];
        assert_eq!(row.status, "invalid_input", "{row:?}");
        assert!(row.message.contains(reason), "{reason}: {row:?}");
        assert_eq!((row.attempts, row.http_status.as_str()), (0, ""), "{row:?}");
    }
    // The input's columns come through, fitted to the header.
    assert_eq!(rows[1].input, ["ragged", "京A10002", ""]);
    assert_eq!(rows[2].input, ["", "", ""]);
    assert_eq!(rows[3].input, ["extra", "京A10003", "1"]);
    assert_eq!(rows[8].input, ["last", "京A10007", ""]);

    // Only the three valid rows were sent.
    let sent: Vec<String> = ran.requests.iter().map(vehicle).collect();
    let expected: Vec<String> = [10001, 10005, 10007]
        .map(|n| plate_vehicle(&plate(n), 1))
        .to_vec();
    let mut sorted = sent.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
    assert_eq!(
        ran.summary
            .count(bihu_renew::results::outcome::Status::InvalidInput),
        6
    );
    assert_eq!(ran.summary.rows_written, 9);
}

#[tokio::test]
async fn a_vehicle_listed_twice_is_requested_once_and_copied() {
    let list = "\
name,LicenseNo,CarVin,EngineNo,CityCode
a,京A12345,,,1
b,京A54321,,,1
c, 京a·123-45 ,,,1
d,,LS4ASE2A2GJ137027,2192209,1
e,京A12345,,,2
f,,ls4ase2a2gj137027, 2192209 ,1
g,京Ａ１２３４５,,,
h,京A54321,,,北京
";
    // Every vehicle's first request fails once, so a first row has 2 attempts and a copy 0.
    let t = RunTest::new(SandboxConfig {
        fail_rate: 1.0,
        fail_first_attempts_only: true,
        ..SandboxConfig::default()
    })
    .await
    .input(list);
    let ran = t.run().await;

    let per_vehicle = requests_per_vehicle(&ran.requests);
    let expected: BTreeMap<String, usize> = [
        plate_vehicle("京A12345", 1),
        plate_vehicle("京A54321", 1),
        "|LS4ASE2A2GJ137027|2192209|1".to_string(),
        plate_vehicle("京A12345", 2),
    ]
    .into_iter()
    .map(|vehicle| (vehicle, 2))
    .collect();
    assert_eq!(
        per_vehicle, expected,
        "each vehicle: one failed request and its retry"
    );

    let rows = &ran.rows;
    assert_eq!(rows.len(), 8);
    assert_numbered_from_one(rows);
    for first in [0, 1, 3, 4] {
        assert_eq!(rows[first].attempts, 2, "{:?}", rows[first]);
        assert!(
            matches!(rows[first].status.as_str(), "renewed" | "not_renewable"),
            "{:?}",
            rows[first]
        );
        assert!(!rows[first].message.contains("same vehicle"), "{:?}", rows[first]);
    }
    for (copy, first) in [(2, 0), (5, 3), (6, 0), (7, 1)] {
        let (copy, first) = (&rows[copy], &rows[first]);
        assert_eq!(copy.attempts, 0, "{copy:?}");
        assert!(
            copy.message
                .starts_with(&format!("same vehicle as row {}", first.row)),
            "{copy:?}"
        );
        assert_eq!(
            (
                &copy.status,
                &copy.http_status,
                &copy.renewal_token,
                &copy.quote_url
            ),
            (
                &first.status,
                &first.http_status,
                &first.renewal_token,
                &first.quote_url
            ),
        );
    }
    assert_eq!(ran.summary.duplicates, 4);
}

// ---------------------------------------------------------------------------------------------
// Retries and answers that are final

#[tokio::test]
async fn retries_absorb_500s_and_attempts_counts_them() {
    let n = 20;
    let t = RunTest::new(SandboxConfig {
        fail_rate: 1.0,
        fail_first_attempts_only: true,
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(n));
    let ran = t.run().await;

    assert_eq!(ran.rows.len(), n);
    for (i, row) in ran.rows.iter().enumerate() {
        assert_final_answer(row, &plate(i + 1));
        assert_eq!(row.attempts, 2, "{row:?}");
    }
    let stats = t.sandbox.stats();
    assert_eq!((stats.requests, stats.server_errors), (2 * n as u64, n as u64));
    assert_eq!(
        (ran.summary.requests, ran.summary.retries),
        (2 * n as u64, n as u64)
    );
}

#[tokio::test]
async fn retries_that_run_out_end_in_server_error_after_one_plus_retries_attempts() {
    let n = 5;
    let t = RunTest::new(SandboxConfig {
        fail_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(n))
    .config(|c| c.retries = 2);
    let ran = t.run().await;

    for row in &ran.rows {
        assert_eq!(row.status, "server_error", "{row:?}");
        assert_eq!(row.http_status, "500", "{row:?}");
        assert_eq!(row.attempts, 3, "{row:?}");
    }
    assert_eq!(ran.requests.len(), 3 * n);
    assert_eq!(ran.summary.exit_code(), 1);
}

#[tokio::test]
async fn answers_206_412_403_406_are_not_retried() {
    // Refusals come before the injected 500s: a request that passed the checks would be
    // answered 500 and retried. (A 206 is decided after them, so its case has no 500s.)
    fn refusing_after_checks() -> SandboxConfig {
        SandboxConfig {
            fail_rate: 1.0,
            ..SandboxConfig::default()
        }
    }
    struct Case {
        status: &'static str,
        http: &'static str,
        message: &'static str,
        sandbox: SandboxConfig,
        client: fn(&mut RunConfig),
    }
    let cases = [
        Case {
            status: "not_renewable",
            http: "206",
            message: "no renewal data",
            sandbox: SandboxConfig {
                not_renewable_percent: 100,
                ..SandboxConfig::default()
            },
            client: |_| {},
        },
        // Lead validation cannot yield a request the sandbox refuses as a parameter error
        // (both read plates, VINs and cities with the same rules); a blank Token, which the
        // CLI layer would refuse but `RunConfig` takes as is, is one.
        Case {
            status: "invalid_params",
            http: "412",
            message: "Token is empty",
            sandbox: refusing_after_checks(),
            client: |c| c.token = Some("   ".into()),
        },
        Case {
            status: "unauthorized",
            http: "403",
            message: "Token is unknown",
            sandbox: refusing_after_checks(),
            client: |c| c.token = Some("0123456789ABCDEF0123456789ABCDEF".into()),
        },
        Case {
            status: "verification_failed",
            http: "406",
            message: "secCode does not match",
            sandbox: refusing_after_checks(),
            client: |c| c.agent.secret = Secret::new("not-the-secret"),
        },
    ];
    let n = 6;
    for case in cases {
        let t = RunTest::new(case.sandbox).await.input(plate_list(n)).config(|c| {
            c.credential_failure_limit = 1000;
            (case.client)(c);
        });
        let ran = t.run().await;
        assert_eq!(ran.rows.len(), n, "{}", case.status);
        for row in &ran.rows {
            assert_eq!(row.status, case.status, "{row:?}");
            assert_eq!(row.http_status, case.http, "{row:?}");
            assert!(row.message.contains(case.message), "{row:?}");
            assert_eq!(row.attempts, 1, "{row:?}");
        }
        assert_eq!(ran.requests.len(), n, "{}: one request per row", case.status);
        assert_eq!(ran.summary.retries, 0, "{}", case.status);
        assert_eq!(ran.summary.end, RunEnd::Completed, "{}", case.status);
    }
}

// ---------------------------------------------------------------------------------------------
// Pacing: rate, concurrency, backoff

#[tokio::test]
async fn the_rate_limit_holds_for_every_attempt() {
    let (rate, burst) = (20, 1);
    // ~48 rows and ~12 retries: about 60 requests, 3 s at 20 per second.
    let t = RunTest::new(SandboxConfig {
        fail_rate: 0.25,
        fail_first_attempts_only: true,
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(48))
    .config(|c| {
        c.rate = NonZeroU32::new(rate).unwrap();
        c.burst = NonZeroU32::new(burst).unwrap();
    });
    let ran = t.run().await;

    assert!(ran.summary.retries > 0, "retries must pass the limiter too");
    assert_eq!(ran.requests.len() as u64, ran.summary.requests);
    let arrivals: Vec<Instant> = ran.requests.iter().map(|r| r.at).collect();
    let limit = (rate + burst) as usize;
    for (i, start) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .take_while(|at| at.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(
            in_window <= limit,
            "{in_window} requests within one second from request {i}; at most {limit} allowed"
        );
    }
    assert_eq!(
        count_status(&ran.rows, "renewed") + count_status(&ran.rows, "not_renewable"),
        48
    );
}

#[tokio::test]
async fn requests_in_flight_never_exceed_the_concurrency() {
    let t = RunTest::new(SandboxConfig {
        latency: Duration::from_millis(50),
        fail_rate: 0.5,
        fail_first_attempts_only: true,
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(24))
    .config(|c| c.concurrency = NonZeroUsize::new(3).unwrap());
    let ran = t.run().await;

    assert_eq!(ran.rows.len(), 24);
    // 3 exactly: the limit is reached (so the run did go concurrent) and never passed.
    assert_eq!(t.sandbox.stats().max_in_flight, 3, "{}", t.sandbox.stats());
}

#[tokio::test]
async fn a_row_waiting_out_retry_after_does_not_stall_the_others() {
    let n = 30;
    // Every vehicle's first request is a 500 with Retry-After: 1; with 2 slots, waiting
    // while holding a slot (or stopping intake) would take about n / 2 seconds.
    let t = RunTest::new(SandboxConfig {
        fail_rate: 1.0,
        fail_first_attempts_only: true,
        retry_after_secs: Some(1),
        latency: Duration::from_millis(10),
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(n))
    .config(|c| c.concurrency = NonZeroUsize::new(2).unwrap());
    let started = Instant::now();
    let ran = t.run().await;
    let elapsed = started.elapsed();

    assert!(ran.rows.iter().all(|row| row.attempts == 2), "{:#?}", ran.rows);
    let (failed, retried): (Vec<_>, Vec<_>) = ran.requests.iter().partition(|r| r.status == 500);
    assert_eq!((failed.len(), retried.len()), (n, n));
    // Every row was first sent before any row's retry: the waits overlapped.
    let last_first_attempt = failed.iter().map(|r| r.at).max().unwrap();
    let first_retry = retried.iter().map(|r| r.at).min().unwrap();
    assert!(last_first_attempt < first_retry);
    // Retry-After was honoured (the backoff alone is at most 200 ms).
    for first in &failed {
        let retry = retried.iter().find(|r| vehicle(r) == vehicle(first)).unwrap();
        assert!(retry.at.duration_since(first.at) >= Duration::from_secs(1));
    }
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// Credentials: abort, re-login

#[tokio::test]
async fn a_wrong_secret_aborts_with_exit_3_after_a_few_requests() {
    let t = RunTest::new(SandboxConfig::default()).await.input(plate_list(50));
    let wrong = "WrongSecret-77";
    let concurrency = 4;
    let out = t
        .cli_with(
            &[("--secret-key", Some(wrong))],
            &["--rate", "1000", "--concurrency", &concurrency.to_string()],
        )
        .await;

    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("--secret-key"), "{}", out.stderr);
    assert!(out.stderr.contains("clock"), "{}", out.stderr);
    assert!(!out.stderr.contains(wrong), "{}", out.stderr);
    let n_requests = t.sandbox.stats().requests;
    assert!(
        (CREDENTIAL_FAILURE_LIMIT as u64..=CREDENTIAL_FAILURE_LIMIT as u64 + concurrency)
            .contains(&n_requests),
        "{n_requests} requests"
    );
    // OUTPUT holds the prefix of answered rows, ready for --resume. It may be empty: a row
    // that had not been sent when the run stopped ends the prefix, and under load row 1 can
    // be such a row.
    let rows = read_results(&t.output_path());
    assert!(rows.len() as u64 <= n_requests, "{rows:#?}");
    assert_numbered_from_one(&rows);
    let written = format!("{} of 50 written", rows.len());
    assert!(out.stderr.contains(&written), "{written}: {}", out.stderr);
    assert!(
        rows.iter().all(|row| row.status == "verification_failed"),
        "{rows:#?}"
    );
    assert!(!bihu_renew::results::output::partial_path(&t.output_path()).exists());
}

#[tokio::test]
async fn a_wrong_token_aborts_with_exit_3_naming_the_token() {
    let t = RunTest::new(SandboxConfig::default()).await.input(plate_list(50));
    let out = t
        .cli_with(
            &[("--token", Some("0123456789ABCDEF0123456789ABCDEF"))],
            &["--rate", "1000", "--concurrency", "4"],
        )
        .await;

    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("Token"), "{}", out.stderr);
    assert!(out.stderr.contains("ABORTED"), "{}", out.stderr);
    let n_requests = t.sandbox.stats().requests;
    assert!(
        n_requests <= CREDENTIAL_FAILURE_LIMIT as u64 + 4,
        "{n_requests} requests"
    );
    let rows = read_results(&t.output_path());
    assert!(rows.len() as u64 <= n_requests, "{rows:#?}");
    assert_numbered_from_one(&rows);
    assert!(rows.iter().all(|row| row.status == "unauthorized"), "{rows:#?}");
}

#[tokio::test]
async fn an_expired_token_mid_run_is_replaced_by_logging_in_again() {
    let n = 40;
    let t = RunTest::new(SandboxConfig {
        latency: Duration::from_millis(10),
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(n))
    .config(|c| {
        c.concurrency = NonZeroUsize::new(2).unwrap();
        c.user_name = Some("clerk".into());
    });
    let old_token = t.sandbox.config().token.clone();
    let expire_after_ten_requests = async {
        let deadline = Instant::now() + Duration::from_secs(5);
        while t.sandbox.stats().requests < 10 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        t.sandbox.expire_tokens();
    };
    let (ran, ()) = tokio::join!(t.run(), expire_after_ten_requests);

    let stats = t.sandbox.stats();
    assert!(
        stats.unauthorized >= 1,
        "the expiry came too late to matter: {stats}"
    );
    assert!(stats.logins >= 1, "{stats}");
    assert_eq!(ran.summary.logins, stats.logins);
    assert_eq!(ran.rows.len(), n);
    for (i, row) in ran.rows.iter().enumerate() {
        assert_final_answer(row, &plate(i + 1));
    }
    // Each quote URL carries the Token its successful request was sent with.
    let vehicle_tokens: BTreeMap<String, String> = ran
        .requests
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| (vehicle(r), field(r, "Token")))
        .collect();
    let renewed: Vec<(usize, &ResultRow)> = ran
        .rows
        .iter()
        .enumerate()
        .filter(|(_, row)| row.status == "renewed")
        .collect();
    for (i, row) in &renewed {
        let sent_with = &vehicle_tokens[&plate_vehicle(&plate(i + 1), 1)];
        assert_eq!(&quote_token(&row.quote_url), sent_with, "{row:?}");
    }
    // The last rows carry the new Token, and their quote page opens; the old one is refused.
    let (_, last) = renewed.last().unwrap();
    assert_ne!(quote_token(&last.quote_url), old_token);
    let page = client().get(&last.quote_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let (_, first) = renewed.first().unwrap();
    if quote_token(&first.quote_url) == old_token {
        let page = client().get(&first.quote_url).send().await.unwrap();
        assert_eq!(page.status(), 403);
    }
}

#[tokio::test]
async fn without_a_token_a_user_name_logs_in_first() {
    let t = RunTest::new(SandboxConfig {
        user_name: Some("clerk".into()),
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(10))
    .config(|c| {
        c.token = None;
        c.user_name = Some("clerk".into());
    });
    let ran = t.run().await;

    let stats = t.sandbox.stats();
    assert_eq!((stats.logins, stats.unauthorized), (1, 0), "{stats}");
    assert_eq!(ran.summary.logins, 1);
    let configured = &t.sandbox.config().token;
    let tokens: Vec<String> = ran.requests.iter().map(|r| field(r, "Token")).collect();
    assert!(
        tokens
            .iter()
            .all(|token| token == &tokens[0] && token != configured)
    );
    for (i, row) in ran.rows.iter().enumerate() {
        assert_final_answer(row, &plate(i + 1));
        if row.status == "renewed" {
            assert_eq!(quote_token(&row.quote_url), tokens[0]);
        }
    }
}

/// The files of a run beside its input: OUTPUT, its `.partial`, journal and lock.
fn results_files(t: &RunTest) -> Vec<String> {
    std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".results."))
        .collect()
}

/// A first login that Bihu rejects is exit 3 with nothing renewed, and leaves no file behind:
/// the same command, with the user name put right, simply runs (no "already exists").
#[tokio::test]
async fn a_rejected_first_login_exits_3_and_leaves_nothing_to_refuse_the_same_command() {
    let t = RunTest::new(SandboxConfig {
        user_name: Some("clerk".into()),
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(3));
    let out = t.cli_with(&[("--token", None)], &["--user-name", "nobody"]).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot log in as nobody"), "{}", out.stderr);
    assert!(out.stderr.contains("--user-name"), "{}", out.stderr);
    assert_eq!(t.sandbox.stats().requests, 0);
    assert_eq!(results_files(&t), Vec::<String>::new());

    let again = t.cli_with(&[("--token", None)], &["--user-name", "clerk"]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(read_results(&t.output_path()).len(), 3);
}

/// A first login that reaches no one is no verdict on the credentials: exit 1 (not 3),
/// naming the host, with nothing left behind to refuse the same command.
#[tokio::test]
async fn a_first_login_that_reaches_no_one_exits_1_naming_the_host() {
    let t = RunTest::new(SandboxConfig::default()).await.input(plate_list(3));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let base_url = format!("http://{closed}/");
    let out = t
        .cli_with(
            &[("--token", None), ("--base-url", Some(&base_url))],
            &["--user-name", "clerk"],
        )
        .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("cannot log in as clerk"), "{}", out.stderr);
    assert!(out.stderr.contains(&closed.to_string()), "{}", out.stderr);
    assert!(
        out.stderr.contains("run the same command again"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(SECRET), "{}", out.stderr);
    assert_eq!(results_files(&t), Vec::<String>::new());
}

/// A login needs a numeric agent id: with --user-name a wrong one is refused before any
/// request (exit 2), also when the run has a Token for now.
#[tokio::test]
async fn a_non_numeric_agent_id_with_a_user_name_is_refused_before_any_request() {
    let t = RunTest::new(SandboxConfig::default()).await.input(plate_list(3));
    for token in [None, Some(t.sandbox.config().token.as_str())] {
        let out = t
            .cli_with(
                &[("--token", token), ("--agent-id", Some("abc"))],
                &["--user-name", "clerk"],
            )
            .await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains("--agent-id \"abc\" is not a number"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("nothing was sent"), "{}", out.stderr);
    }
    let stats = t.sandbox.stats();
    assert_eq!((stats.requests, stats.logins), (0, 0), "{stats}");
    assert_eq!(results_files(&t), Vec::<String>::new());
}

/// Requests went out, then the finished results could not be renamed into place (a
/// directory now stands at OUTPUT): exit 4, not 2, with the fix; once the directory is gone,
/// `--resume` puts the rows in place without asking again.
#[tokio::test]
async fn results_that_cannot_be_put_in_place_after_requests_exit_4_and_resume_finishes() {
    let t = RunTest::new(SandboxConfig {
        latency: Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(2));
    let output = t.output_path();
    let partial = bihu_renew::results::output::partial_path(&output);
    let in_the_way = async {
        let started = Instant::now();
        while !partial.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no .partial appeared"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        std::fs::create_dir(&output).unwrap();
    };
    let (out, ()) = tokio::join!(t.cli(&["--concurrency", "1"]), in_the_way);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot rename {} to {}",
            partial.display(),
            output.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("run the same command with --resume"),
        "{}",
        out.stderr
    );
    let n_requests = t.sandbox.stats().requests;
    assert_eq!(n_requests, 2);

    std::fs::remove_dir(&output).unwrap();
    let resumed = t.cli(&["--concurrency", "1", "--resume"]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(t.sandbox.stats().requests, n_requests, "nothing asked again");
    assert_eq!(
        results_files(&t),
        ["leads.results.csv"],
        "no journal or .partial left"
    );
    let rows = read_results(&output);
    assert_eq!(rows.len(), 2);
    for (i, row) in rows.iter().enumerate() {
        assert_final_answer(row, &plate(i + 1));
    }
}

// ---------------------------------------------------------------------------------------------
// The binary: exit codes, stdout and stderr, the secret

/// Plates whose answers are both 200 and 206, a rejected row and a duplicate.
fn mixed_list() -> String {
    let mut csv = plate_list(12);
    csv.push_str("bad,京A1234,x\n");
    csv.push_str(&format!("dup,{},y\n", plate(3)));
    csv
}

#[tokio::test]
async fn exit_0_when_every_row_reached_a_final_outcome() {
    let list = mixed_list();
    let t = RunTest::new(SandboxConfig::default()).await.input(&list);
    let out = t.cli(&["--rate", "1000"]).await;

    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = read_results(&t.output_path());
    assert_eq!(rows.len(), 14);
    for status in ["renewed", "not_renewable", "invalid_input"] {
        assert!(count_status(&rows, status) > 0, "no {status} row: {rows:#?}");
    }
}

#[tokio::test]
async fn exit_1_when_retries_0_leave_server_errors() {
    let t = RunTest::new(SandboxConfig {
        fail_rate: 1.0,
        ..SandboxConfig::default()
    })
    .await
    .input(plate_list(4));
    let out = t.cli(&["--rate", "1000", "--retries", "0"]).await;

    assert_eq!(out.code, 1, "{}", out.stderr);
    let rows = read_results(&t.output_path());
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert_eq!(
            (row.status.as_str(), row.attempts),
            ("server_error", 1),
            "{row:?}"
        );
    }
    assert_eq!(t.sandbox.stats().requests, 4);
    assert!(out.stderr.contains("--resume"), "{}", out.stderr);
}

#[tokio::test]
async fn exit_2_for_missing_credentials_naming_flag_and_variable_with_nothing_sent() {
    let t = RunTest::new(SandboxConfig::default()).await.input(plate_list(3));
    let cases = [
        ("--secret-key", "BIHU_SECRET_KEY"),
        ("--agent-id", "BIHU_AGENT_ID"),
        ("--token", "BIHU_TOKEN"),
    ];
    for (flag, variable) in cases {
        let out = t.cli_with(&[(flag, None)], &[]).await;
        assert_eq!(out.code, 2, "{flag}: {}", out.stderr);
        assert!(out.stderr.contains(flag), "{flag}: {}", out.stderr);
        assert!(out.stderr.contains(variable), "{flag}: {}", out.stderr);
    }
    let stats = t.sandbox.stats();
    assert_eq!((stats.requests, stats.logins, stats.login_failures), (0, 0, 0));
    assert!(!t.output_path().exists());
}

#[tokio::test]
async fn exit_2_for_a_base_url_with_a_password_which_is_never_echoed() {
    let t = RunTest::new(SandboxConfig::default()).await.input(plate_list(3));
    let with_password = t
        .sandbox
        .base_url()
        .to_string()
        .replace("http://", "http://clerk:B4se-pw@");
    let out = t.cli_with(&[("--base-url", Some(&with_password))], &[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("user:password@"), "{}", out.stderr);
    assert!(!out.stderr.contains("B4se-pw"), "{}", out.stderr);
    assert_eq!(t.sandbox.stats().requests, 0);
    assert!(!t.output_path().exists());
}

#[tokio::test]
async fn exit_2_for_an_input_without_vehicle_columns_listing_the_accepted_headers() {
    let t = RunTest::new(SandboxConfig::default())
        .await
        .input("name,phone\n张三,13800000000\n");
    let out = t.cli(&[]).await;

    assert_eq!(out.code, 2, "{}", out.stderr);
    for header in ["LicenseNo", "车牌号", "CarVin", "EngineNo", "CityCode"] {
        assert!(out.stderr.contains(header), "{header}: {}", out.stderr);
    }
    assert_eq!(t.sandbox.stats().requests, 0);
    assert!(!t.output_path().exists());
}

#[tokio::test]
async fn exit_2_for_an_existing_output_unless_forced() {
    let t = RunTest::new(SandboxConfig::default()).await.input(plate_list(3));
    let earlier = "results of yesterday, keep me\n";
    std::fs::write(t.output_path(), earlier).unwrap();

    let out = t.cli(&[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(t.output_path()).unwrap(), earlier);
    assert_eq!(t.sandbox.stats().requests, 0);

    let out = t.cli(&["--force", "--rate", "1000"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read_results(&t.output_path()).len(), 3);
}

#[tokio::test]
async fn the_secret_is_never_sent_logged_or_written() {
    let t = RunTest::new(SandboxConfig {
        fail_rate: 0.3,
        fail_first_attempts_only: true,
        ..SandboxConfig::default()
    })
    .await
    .input(mixed_list());
    let summary_json = t.dir.path().join("summary.json");
    let file_run = t
        .cli(&[
            "-vvv",
            "--rate",
            "1000",
            "--summary-json",
            summary_json.to_str().unwrap(),
        ])
        .await;
    assert_eq!(file_run.code, 0, "{}", file_run.stderr);
    assert!(file_run.stderr.contains("TRACE") || file_run.stderr.contains("DEBUG"));

    // Again to stdout, logging in for a Token, with the secret from the environment.
    let base_url = t.sandbox.base_url().to_string();
    let stdout_run = run_binary(
        &[
            "-vvv",
            "run",
            t.input_path(),
            "-o",
            "-",
            "--no-progress",
            "--rate",
            "1000",
            "--base-url",
            &base_url,
            "--agent-id",
            "102",
            "--user-name",
            "clerk",
        ],
        &[("BIHU_SECRET_KEY", SECRET)],
    )
    .await;
    assert_eq!(stdout_run.code, 0, "{}", stdout_run.stderr);
    assert_eq!(t.sandbox.stats().logins, 1);

    let mut texts = vec![
        ("stdout of the file run", file_run.stdout_text()),
        ("stderr of the file run", file_run.stderr),
        ("OUTPUT", std::fs::read_to_string(t.output_path()).unwrap()),
        ("summary JSON", std::fs::read_to_string(&summary_json).unwrap()),
        ("stdout of the stdout run", stdout_run.stdout_text()),
        ("stderr of the stdout run", stdout_run.stderr),
    ];
    let requests = t.sandbox.requests();
    // 12 vehicles a run (the bad row is not sent, the duplicate is copied), and retries.
    assert!(requests.len() >= 2 * 12, "{} requests", requests.len());
    texts.extend(requests.into_iter().map(|r| ("a request body", r.body)));
    for (what, text) in texts {
        assert!(!text.contains(SECRET), "the secret is in {what}: {text}");
    }
}

#[tokio::test]
async fn dash_o_dash_writes_the_csv_to_stdout_only() {
    let list = mixed_list();
    let t = RunTest::new(SandboxConfig::default()).await.input(&list);
    let out = t.cli(&["-o", "-", "--rate", "1000"]).await;

    assert_eq!(out.code, 0, "{}", out.stderr);
    let (header, rows) = parse_results(&out.stdout);
    assert_eq!(header, ["name", "LicenseNo", "note"]);
    assert_eq!(rows.len(), 14);
    assert_numbered_from_one(&rows);
    assert_eq!(
        rows.iter().map(|row| row.input.clone()).collect::<Vec<_>>(),
        data_rows(&list)
    );
    assert!(out.stderr.contains("run completed"), "{}", out.stderr);
    assert!(!out.stderr.contains("renewal_token"), "{}", out.stderr);
    let files: Vec<String> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["leads.csv"]);
}

#[tokio::test]
async fn default_output_sits_beside_the_input_and_summary_json_counts_its_rows() {
    let t = RunTest::new(SandboxConfig::default()).await.input(mixed_list());
    let summary_json = t.dir.path().join("summary.json");
    let out = t
        .cli(&["--rate", "1000", "--summary-json", summary_json.to_str().unwrap()])
        .await;

    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.is_empty(),
        "stdout carries data only: {}",
        out.stdout_text()
    );
    assert!(!bihu_renew::results::output::partial_path(&t.output_path()).exists());
    let rows = read_results(&t.output_path());
    assert_eq!(rows.len(), 14);

    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary_json).unwrap()).unwrap();
    assert_eq!(summary["end"], "completed");
    assert_eq!(summary["rows_total"], 14);
    assert_eq!(summary["rows_written"], 14);
    assert_eq!(summary["duplicates"], 1);
    assert_eq!(summary["requests"], t.sandbox.stats().requests);
    let by_status = summary["by_status"].as_object().unwrap();
    let mut n_counted = 0;
    for (status, n) in by_status {
        assert_eq!(
            n.as_u64().unwrap() as usize,
            count_status(&rows, status),
            "{status}"
        );
        n_counted += n.as_u64().unwrap();
    }
    assert_eq!(n_counted, 14);
    assert!(by_status["invalid_input"] == 1 && by_status["renewed"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_sandbox_demo_renews_the_sample_list_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("leads.csv");
    let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/leads.csv")).unwrap();
    std::fs::write(&input, &sample).unwrap();
    let out = run_binary(
        &[
            "run",
            input.to_str().unwrap(),
            "--sandbox",
            "--no-progress",
            "--rate",
            "1000",
        ],
        &[],
    )
    .await;

    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("127.0.0.1"), "{}", out.stderr);
    let rows = read_results(&dir.path().join("leads.results.csv"));
    assert_eq!(rows.len(), data_rows(&sample).len());
    assert_numbered_from_one(&rows);
    for status in ["renewed", "invalid_input"] {
        assert!(count_status(&rows, status) > 0, "no {status} row: {rows:#?}");
    }
}

#[tokio::test]
async fn an_http_proxy_named_in_the_environment_carries_every_request() {
    let test = RunTest::new(SandboxConfig::default()).await.input(plate_list(6));
    // The sandbox stands in for the proxy: it serves requests in absolute form like any other,
    // so the host named in the base URL is never looked up or reached.
    let proxy = test
        .sandbox
        .base_url()
        .to_string()
        .trim_end_matches('/')
        .to_string();
    let proxies = [("HTTP_PROXY", proxy.as_str()), ("http_proxy", proxy.as_str())];
    let out = test
        .cli_with_env(
            &[("--base-url", Some("http://bihu-renew.invalid/"))],
            &proxies,
            &[],
        )
        .await;

    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = read_results(&test.output_path());
    assert_eq!(rows.len(), 6);
    for (i, row) in rows.iter().enumerate() {
        assert_final_answer(row, &plate(i + 1));
        if row.status == "renewed" {
            assert!(
                row.quote_url.starts_with("http://bihu-renew.invalid/DoQuote/"),
                "{row:?}"
            );
        }
    }
    assert_eq!(test.sandbox.requests().len(), 6);
}

/// A proxy from the environment that is down: the results name it, so a clerk can tell the
/// proxy from Bihu (the message comes from the variable the tool read, not from reqwest).
#[tokio::test]
async fn a_proxy_from_the_environment_that_is_down_is_named_in_the_results() {
    let test = RunTest::new(SandboxConfig::default()).await.input(plate_list(1));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = test
        .cli_with_env(
            &[
                ("--base-url", Some("http://bihu-renew.invalid/")),
                ("--retries", Some("0")),
            ],
            &[("HTTP_PROXY", proxy.as_str())],
            &[],
        )
        .await;
    let rows = read_results(&test.output_path());
    assert_eq!(rows.len(), 1, "{}", out.stderr);
    assert_eq!(rows[0].status, "transport_error", "{rows:?}");
    let named = format!("bihu-renew.invalid through the proxy {proxy}");
    assert!(
        rows[0].message.contains(&named),
        "{:?} should name {named}",
        rows[0].message
    );
    assert!(test.sandbox.requests().is_empty());
}
