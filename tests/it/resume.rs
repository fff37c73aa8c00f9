//! Resumable runs (issue 4), with the real binary against an in-process sandbox: kill -9 and
//! Ctrl-C in the middle of a run, `--resume` of finished and unfinished OUTPUTs, duplicates
//! across a resume, refusals of a mismatched input and of an existing OUTPUT, `--force`, and
//! half-written last lines.
//!
//! The sandbox serves on a task of the test's runtime while the binary runs as a child
//! process (`tokio::process`), so a test awaits the child and never blocks a worker.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bihu_renew::error::exit::{INTERRUPTED, OK, SOME_TRANSIENT, USAGE};
use bihu_renew::sandbox::{RecordedRequest, Sandbox, SandboxConfig, expected_renewal};
use csv::StringRecord;
use serde_json::Value;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::support::{bihu_command, lead_list, plates, start_sandbox, wait_for_count};

const CONCURRENCY: u64 = 4;
/// The sandbox's share of vehicles without renewal data (its default).
const NOT_RENEWABLE_PERCENT: u8 = 20;
/// City of the `粤B` plates below (深圳).
const CITY: &str = "11";

/// A sandbox that records requests, with `latency` before each answer.
fn recording(latency: Duration) -> SandboxConfig {
    SandboxConfig {
        latency,
        record_requests: true,
        not_renewable_percent: NOT_RENEWABLE_PERCENT,
        ..SandboxConfig::default()
    }
}

fn plate_of(request: &RecordedRequest) -> String {
    let body: Value = serde_json::from_str(&request.body).expect("a JSON request body");
    body["LicenseNo"].as_str().expect("a plate request").to_string()
}

/// The plates of the renewal requests the sandbox has answered, in the order answered.
fn requested_plates(sandbox: &Sandbox) -> Vec<String> {
    sandbox.requests().iter().map(plate_of).collect()
}

/// Rows start in input order, give or take the requests in flight: a row that started late
/// would hold back the writing of every finished row after it, all lost to a kill -9.
#[track_caller]
fn assert_started_in_order(sandbox: &Sandbox, plates: &[String]) {
    let mut requests = sandbox.requests();
    requests.sort_by_key(|request| request.at);
    for (arrival, request) in requests.iter().enumerate() {
        let plate = plate_of(request);
        let row = plates
            .iter()
            .position(|p| *p == plate)
            .expect("a plate of the list");
        assert!(
            arrival.abs_diff(row) <= 3 * CONCURRENCY as usize,
            "row {} was request {} to arrive",
            row + 1,
            arrival + 1
        );
    }
}

/// Waits until requests that a killed client had sent are counted and answered (or dropped):
/// nothing changes for 100 ms, four times the latency used with a kill.
async fn settle(sandbox: &Sandbox) {
    let seen = || (sandbox.stats().requests, sandbox.requests().len());
    let mut last = seen();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = seen();
        if now == last {
            return;
        }
        last = now;
    }
}

fn sorted(plates: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    let mut plates: Vec<String> = plates.into_iter().map(Into::into).collect();
    plates.sort();
    plates
}

/// A work directory with a lead list, and the binary's command line for it.
struct Work {
    _dir: TempDir,
    input: PathBuf,
    output: PathBuf,
    summary_json: PathBuf,
}

/// How a finished child process ended.
struct Ran {
    code: i32,
    stderr: String,
    /// `--summary-json`, when the run wrote one.
    summary: Option<Value>,
}

impl Ran {
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Ran {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        self
    }

    #[track_caller]
    fn assert_stderr_has(&self, needle: &str) -> &Ran {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    fn summary_u64(&self, key: &str) -> u64 {
        let summary = self.summary.as_ref().expect("a --summary-json file");
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("summary {key} in {summary}"))
    }
}

impl Work {
    fn new(lead_list: &str) -> Work {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("leads.csv");
        fs::write(&input, lead_list).unwrap();
        Work {
            output: dir.path().join("leads.results.csv"),
            summary_json: dir.path().join("summary.json"),
            input,
            _dir: dir,
        }
    }

    fn partial(&self) -> PathBuf {
        let mut name = self.output.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    }

    fn command(&self, sandbox: &Sandbox, flags: &[&str]) -> Command {
        let config = sandbox.config();
        let mut command = bihu_command();
        command
            .arg("run")
            .arg(&self.input)
            .arg("-o")
            .arg(&self.output)
            .arg("--summary-json")
            .arg(&self.summary_json)
            .args(["--no-progress", "--base-url", sandbox.base_url().as_str()])
            .args(["--agent-id", &config.agent_id, "--token", &config.token])
            .args(["--secret-key", config.secret.expose()])
            .args(["--rate", "1000", "--concurrency", &CONCURRENCY.to_string()])
            .args(["--retries", "0", "--timeout", "10"])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    fn spawn(&self, sandbox: &Sandbox, flags: &[&str]) -> Child {
        let _ = fs::remove_file(&self.summary_json);
        self.command(sandbox, flags).spawn().expect("the binary starts")
    }

    async fn finish(&self, child: Child) -> Ran {
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("the binary ends within 30 s")
            .expect("the binary's output is read");
        let summary = fs::read_to_string(&self.summary_json)
            .ok()
            .map(|text| serde_json::from_str(&text).expect("the summary JSON parses"));
        Ran {
            // A signal death has no code; -1 fails every expected code.
            code: output.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            summary,
        }
    }

    async fn run(&self, sandbox: &Sandbox, flags: &[&str]) -> Ran {
        let child = self.spawn(sandbox, flags);
        self.finish(child).await
    }

    /// Waits until the run in progress has written at least `n_rows` complete rows.
    async fn wait_for_rows(&self, n_rows: usize) {
        wait_for_count(n_rows, "rows written", || {
            fs::read(self.partial()).map_or(0, |bytes| complete_rows(&bytes))
        })
        .await;
    }
}

/// Data rows ending in a newline (the data has no quoted newlines).
fn complete_rows(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(1)
}

/// A results file, parsed strictly: every record has the header's number of fields and the
/// file ends with a newline.
struct Results {
    header: StringRecord,
    rows: Vec<StringRecord>,
    /// Each row's bytes as on disk, newline included.
    raw: Vec<Vec<u8>>,
}

impl Results {
    #[track_caller]
    fn read(path: &Path) -> Results {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            bytes.ends_with(b"\n"),
            "{} ends in a partial line",
            path.display()
        );
        let mut csv = csv::Reader::from_reader(bytes.as_slice());
        let header = csv.headers().expect("a header").clone();
        let mut rows = Vec::new();
        let mut raw = Vec::new();
        let mut start = csv.position().byte() as usize;
        let mut record = StringRecord::new();
        while csv
            .read_record(&mut record)
            .unwrap_or_else(|e| panic!("{} is not a clean CSV: {e}", path.display()))
        {
            let end = csv.position().byte() as usize;
            raw.push(bytes[start..end].to_vec());
            rows.push(record.clone());
            start = end;
        }
        Results { header, rows, raw }
    }

    fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header))
    }

    fn cell<'a>(&self, row: &'a StringRecord, name: &str) -> &'a str {
        &row[self.column(name)]
    }

    /// The plates of the rows with this status.
    fn plates_with(&self, status: &str) -> Vec<String> {
        self.rows
            .iter()
            .filter(|row| self.cell(row, "status") == status)
            .map(|row| self.cell(row, "plate").to_string())
            .collect()
    }

    /// Every cell, with the sandbox's address (which differs between sandboxes) taken out of
    /// the quote URLs. No column depends on timing: the sandbox answers deterministically and
    /// without faults every row takes one attempt.
    fn comparable(&self, sandbox: &Sandbox) -> Vec<Vec<String>> {
        let base = sandbox.base_url().to_string();
        self.rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| crate::support::mask_times(&cell.replace(&base, "BASE/")))
                    .collect()
            })
            .collect()
    }

    /// Rows 1..n in input order for the first n of these plates (n = the rows there are, or
    /// the plates there are if fewer), each the complete result of one request.
    #[track_caller]
    fn assert_answers(&self, plates: &[String]) {
        for (i, plate) in plates.iter().enumerate().take(self.rows.len()) {
            self.assert_answer(i + 1, plate);
        }
    }

    /// Data row `n` is the sandbox's answer for `plate`, after one request.
    #[track_caller]
    fn assert_answer(&self, n: usize, plate: &str) {
        let row = &self.rows[n - 1];
        assert_eq!(self.cell(row, "row"), n.to_string(), "{row:?}");
        assert_eq!(self.cell(row, "plate"), plate, "{row:?}");
        assert_eq!(self.cell(row, "attempts"), "1", "{row:?}");
        assert!(!self.cell(row, "message").is_empty(), "{row:?}");
        match expected_renewal(Some(plate), None, None, CITY, NOT_RENEWABLE_PERCENT) {
            Some(token) => {
                assert_eq!(self.cell(row, "status"), "renewed", "{row:?}");
                assert_eq!(self.cell(row, "http_status"), "200", "{row:?}");
                assert_eq!(self.cell(row, "renewal_token"), token, "{row:?}");
                assert!(self.cell(row, "quote_url").contains(&token), "{row:?}");
            }
            None => {
                assert_eq!(self.cell(row, "status"), "not_renewable", "{row:?}");
                assert_eq!(self.cell(row, "http_status"), "206", "{row:?}");
            }
        }
    }

    /// Data row `n` copies data row `first` (same vehicle) without a request of its own.
    #[track_caller]
    fn assert_copy(&self, n: usize, first: usize) {
        let (copy, first_row) = (&self.rows[n - 1], &self.rows[first - 1]);
        assert_eq!(self.cell(copy, "row"), n.to_string(), "{copy:?}");
        assert_eq!(
            self.cell(copy, "plate"),
            self.cell(first_row, "plate"),
            "{copy:?}"
        );
        assert_eq!(self.cell(copy, "attempts"), "0", "{copy:?}");
        let message = format!("same vehicle as row {first}: {}", self.cell(first_row, "message"));
        assert_eq!(self.cell(copy, "message"), message, "{copy:?}");
        for column in ["status", "http_status", "renewal_token", "quote_url"] {
            assert_eq!(
                self.cell(copy, column),
                self.cell(first_row, column),
                "{column} of row {n}"
            );
        }
    }
}

/// Ctrl-C, as a terminal sends it.
async fn interrupt(child: &Child) {
    let pid = child.id().expect("the child runs").to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().await;
    assert!(kill.expect("kill(1) runs").success(), "SIGINT to {pid}");
}

/// A complete run of `plates` against `sandbox` into a fresh work directory.
async fn finished_run(sandbox: &Sandbox, plates: &[String]) -> Work {
    let work = Work::new(&lead_list(plates));
    work.run(sandbox, &[]).await.assert_code(OK);
    work
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_run_then_resume_equals_an_uninterrupted_run() {
    let plates = plates(300);
    let latency = Duration::from_millis(25);

    let reference = async {
        let sandbox = start_sandbox(recording(latency)).await;
        let work = finished_run(&sandbox, &plates).await;
        assert_started_in_order(&sandbox, &plates);
        Results::read(&work.output).comparable(&sandbox)
    };
    let killed_and_resumed = async {
        let sandbox = start_sandbox(recording(latency)).await;
        let work = Work::new(&lead_list(&plates));
        let mut child = work.spawn(&sandbox, &[]);
        work.wait_for_rows(60).await;
        child.start_kill().expect("SIGKILL is sent");
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), None, "killed by a signal, not finished");
        settle(&sandbox).await;
        let n_requests_killed = sandbox.stats().requests;
        assert!(!work.output.exists(), "an unfinished run never writes OUTPUT");
        let left = fs::read(work.partial()).expect("the killed run left its .partial");
        let n_left = complete_rows(&left);
        assert!((60..plates.len()).contains(&n_left), "{n_left} rows left");

        // What a kill leaves is refused without --resume, and not touched.
        work.run(&sandbox, &[])
            .await
            .assert_code(USAGE)
            .assert_stderr_has(".partial already exists")
            .assert_stderr_has("--resume");
        assert_eq!(fs::read(work.partial()).unwrap(), left);
        assert!(!work.output.exists());
        assert_eq!(sandbox.stats().requests, n_requests_killed);

        let n_answered_before = sandbox.requests().len();
        let resumed = work.run(&sandbox, &["--resume"]).await;
        resumed.assert_code(OK).assert_stderr_has("completed");
        assert!(!work.partial().exists());
        let n_requests_resumed = sandbox.stats().requests - n_requests_killed;
        let requested_again = &requested_plates(&sandbox)[n_answered_before..];
        // Rows kept from before the kill (in `.partial`, or beyond it in the journal) are
        // never requested again; each other row once.
        let kept = resumed.summary_u64("kept_from_before");
        assert!(
            kept >= n_left as u64,
            "{kept} kept, {n_left} rows were in .partial"
        );
        assert_eq!(resumed.summary_u64("processed"), plates.len() as u64 - kept);
        assert_eq!(requested_again.len() as u64, plates.len() as u64 - kept);
        let requested_again = BTreeSet::from_iter(requested_again.iter().cloned());
        assert_eq!(
            requested_again.len() as u64,
            plates.len() as u64 - kept,
            "each once"
        );
        assert!(
            requested_again
                .iter()
                .all(|plate| plates[n_left..].contains(plate))
        );

        let results = Results::read(&work.output);
        results.assert_answers(&plates);
        assert_eq!(results.rows.len(), plates.len());
        let extra = n_requests_killed + n_requests_resumed - plates.len() as u64;
        eprintln!(
            "kill -9 after {n_left} rows: {n_requests_killed} + {n_requests_resumed} requests for {} rows, {extra} extra (concurrency {CONCURRENCY})",
            plates.len()
        );
        assert!(
            extra <= CONCURRENCY,
            "{extra} rows requested twice, more than the concurrency {CONCURRENCY}"
        );
        results.comparable(&sandbox)
    };
    let (expected, resumed) = tokio::join!(reference, killed_and_resumed);
    assert_eq!(resumed.len(), expected.len());
    for (row, (got, want)) in resumed.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "data row {}", row + 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_mid_run_exits_130_with_a_clean_prefix_that_resumes() {
    let plates = plates(300);
    let sandbox = start_sandbox(recording(Duration::from_millis(25))).await;
    let work = Work::new(&lead_list(&plates));
    let child = work.spawn(&sandbox, &[]);
    work.wait_for_rows(40).await;
    interrupt(&child).await;
    let interrupted = work.finish(child).await;
    interrupted
        .assert_code(INTERRUPTED)
        .assert_stderr_has("run INTERRUPTED");
    assert!(work.output.exists(), "an interrupted run leaves OUTPUT");
    assert!(!work.partial().exists(), "and folds its .partial into it");
    let before = Results::read(&work.output);
    let n_kept = before.rows.len();
    assert!((40..plates.len()).contains(&n_kept), "{n_kept} rows");
    before.assert_answers(&plates);
    assert_eq!(
        interrupted.summary.as_ref().unwrap()["end"],
        "interrupted",
        "{:?}",
        interrupted.summary
    );
    assert_eq!(interrupted.summary_u64("rows_written"), n_kept as u64);
    assert_eq!(
        interrupted.summary_u64("not_reached"),
        (plates.len() - n_kept) as u64
    );
    let n_requests_interrupted = sandbox.stats().requests;
    // In-flight rows finish and are written: at most rows stopped at the rate limiter or
    // behind an abandoned row are lost.
    assert!(
        n_requests_interrupted - n_kept as u64 <= CONCURRENCY,
        "{n_requests_interrupted} requests for {n_kept} rows"
    );

    let n_answered_before = sandbox.requests().len();
    let resumed = work.run(&sandbox, &["--resume"]).await;
    resumed.assert_code(OK);
    let requested_again = &requested_plates(&sandbox)[n_answered_before..];
    assert_eq!(
        sorted(requested_again.to_vec()),
        sorted(plates[n_kept..].to_vec())
    );
    assert_eq!(resumed.summary_u64("kept_from_before"), n_kept as u64);
    assert_eq!(resumed.summary_u64("processed"), (plates.len() - n_kept) as u64);
    let after = Results::read(&work.output);
    assert_eq!(after.rows.len(), plates.len());
    after.assert_answers(&plates);
    assert_eq!(
        after.raw[..n_kept],
        before.raw[..],
        "kept rows are copied as they were"
    );
    eprintln!(
        "SIGINT after {n_kept} rows: {n_requests_interrupted} + {} requests for {} rows",
        requested_again.len(),
        plates.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigint_quits_at_once_and_leaves_a_resumable_output() {
    let plates = plates(40);
    // Slow enough that waiting for the requests in flight would show.
    let slow = start_sandbox(recording(Duration::from_millis(1500))).await;
    let work = Work::new(&lead_list(&plates));
    let child = work.spawn(&slow, &[]);
    work.wait_for_rows(4).await;
    interrupt(&child).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    interrupt(&child).await;
    let second = Instant::now();
    work.finish(child)
        .await
        .assert_code(INTERRUPTED)
        .assert_stderr_has("quitting now")
        .assert_stderr_has("--resume");
    assert!(
        second.elapsed() < Duration::from_millis(700),
        "the second Ctrl-C took {:?}: it waited for the requests in flight",
        second.elapsed()
    );
    let on_disk = [&work.output, &work.partial()]
        .into_iter()
        .filter_map(|path| fs::read(path).ok())
        .map(|bytes| complete_rows(&bytes))
        .max()
        .expect("OUTPUT or its .partial is left");
    assert!(on_disk >= 4, "{on_disk} rows on disk");

    let healthy = start_sandbox(recording(Duration::ZERO)).await;
    work.run(&healthy, &["--resume"]).await.assert_code(OK);
    assert_eq!(
        sorted(requested_plates(&healthy)),
        sorted(plates[on_disk..].to_vec())
    );
    let results = Results::read(&work.output);
    assert_eq!(results.rows.len(), plates.len());
    results.assert_answers(&plates);
    assert!(!work.partial().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn resuming_a_finished_run_requests_exactly_its_server_errors() {
    let plates = plates(80);
    let flaky = start_sandbox(SandboxConfig {
        fail_rate: 0.3,
        ..recording(Duration::ZERO)
    })
    .await;
    let work = Work::new(&lead_list(&plates));
    let first = work.run(&flaky, &[]).await;
    first.assert_code(SOME_TRANSIENT);
    let before = Results::read(&work.output);
    let failed = before.plates_with("server_error");
    assert!(!failed.is_empty() && failed.len() < plates.len(), "{failed:?}");
    assert_eq!(first.summary_u64("remaining_transient"), failed.len() as u64);

    let healthy = start_sandbox(recording(Duration::ZERO)).await;
    let resumed = work.run(&healthy, &["--resume"]).await;
    resumed.assert_code(OK);
    assert_eq!(sorted(requested_plates(&healthy)), sorted(failed.clone()));
    assert_eq!(healthy.stats().requests, failed.len() as u64);
    assert_eq!(
        resumed.summary_u64("kept_from_before"),
        (plates.len() - failed.len()) as u64
    );
    assert_eq!(resumed.summary_u64("processed"), failed.len() as u64);
    assert_eq!(resumed.summary_u64("remaining_transient"), 0);
    assert_eq!(resumed.summary_u64("requests"), failed.len() as u64);

    let after = Results::read(&work.output);
    assert_eq!(after.rows.len(), plates.len());
    after.assert_answers(&plates);
    let failed: BTreeSet<&String> = failed.iter().collect();
    for (i, plate) in plates.iter().enumerate() {
        if !failed.contains(plate) {
            assert_eq!(
                after.raw[i],
                before.raw[i],
                "data row {} is kept byte for byte",
                i + 1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_answered_before_an_interruption_are_copied_not_requested() {
    // Rows 1-40 are distinct but for row 20, a copy of row 4; rows 41-45 repeat rows 1-5
    // (answered before the interruption), rows 46-50 repeat rows 33-37 (answered after it).
    let distinct = plates(40);
    let mut list = distinct.clone();
    list[19] = distinct[3].clone();
    list.extend_from_slice(&distinct[0..5]);
    list.extend_from_slice(&distinct[32..37]);
    let copies: Vec<(usize, usize)> = [(20, 4)]
        .into_iter()
        .chain((41..=45).zip(1..=5))
        .chain((46..=50).zip(33..=37))
        .collect();
    let sandbox = start_sandbox(recording(Duration::ZERO)).await;
    let work = finished_run(&sandbox, &list).await;
    // What a kill after row 30 leaves: the complete rows in `.partial`, no OUTPUT.
    let n_kept = 30;
    let prefix: Vec<u8> = fs::read(&work.output)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .take(1 + n_kept)
        .flatten()
        .copied()
        .collect();
    fs::write(work.partial(), &prefix).unwrap();
    fs::remove_file(&work.output).unwrap();

    let again = start_sandbox(recording(Duration::ZERO)).await;
    let resumed = work.run(&again, &["--resume"]).await;
    resumed.assert_code(OK);
    // Rows 31-40 are asked, once each; none of the copies is.
    assert_eq!(
        sorted(requested_plates(&again)),
        sorted(distinct[n_kept..].to_vec())
    );
    assert_eq!(resumed.summary_u64("duplicates"), 10);
    assert_eq!(resumed.summary_u64("kept_from_before"), n_kept as u64);
    let after = Results::read(&work.output);
    assert_eq!(after.rows.len(), list.len());
    assert!(
        fs::read(&work.output).unwrap().starts_with(&prefix),
        "kept rows stay as they were"
    );
    for (i, plate) in list.iter().enumerate().take(40) {
        if !copies.iter().any(|&(copy, _)| copy == i + 1) {
            after.assert_answer(i + 1, plate);
        }
    }
    for (copy, first) in copies {
        after.assert_copy(copy, first);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resuming_a_finished_output_sends_nothing() {
    let mut list = plates(30);
    list[9] = "NOT A PLATE".to_string();
    let sandbox = start_sandbox(recording(Duration::ZERO)).await;
    let work = finished_run(&sandbox, &list).await;
    let before = fs::read(&work.output).unwrap();
    assert_eq!(
        Results::read(&work.output).plates_with("invalid_input"),
        ["NOT A PLATE"]
    );
    let n_requests = sandbox.stats().requests;

    let resumed = work.run(&sandbox, &["--resume"]).await;
    resumed.assert_code(OK).assert_stderr_has("nothing to do");
    assert_eq!(sandbox.stats().requests, n_requests);
    assert_eq!(fs::read(&work.output).unwrap(), before);
    assert!(!work.partial().exists());
    assert_eq!(resumed.summary_u64("kept_from_before"), 30);
    assert_eq!(resumed.summary_u64("processed"), 0);
    assert_eq!(resumed.summary_u64("requests"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mismatched_input_is_refused_without_a_request() {
    let plates = plates(30);
    let sandbox = start_sandbox(recording(Duration::ZERO)).await;
    let work = finished_run(&sandbox, &plates).await;
    let before = fs::read(&work.output).unwrap();
    let n_requests = sandbox.stats().requests;

    let mut changed_plate = plates.clone();
    changed_plate[4] = "粤B99999".to_string();
    let other_header = lead_list(&plates).replacen("name,plate", "name,LicenseNo", 1);
    let cases = [
        (lead_list(&changed_plate), "data row 5 differs"),
        (other_header, "its input columns are [name, plate]"),
        (lead_list(&plates[..20]), "has more rows than the input"),
    ];
    for (input, expected) in cases {
        fs::write(&work.input, &input).unwrap();
        work.run(&sandbox, &["--resume"])
            .await
            .assert_code(USAGE)
            .assert_stderr_has(expected)
            .assert_stderr_has("--force");
        assert_eq!(
            fs::read(&work.output).unwrap(),
            before,
            "{expected}: OUTPUT untouched"
        );
        assert!(!work.partial().exists(), "{expected}");
        assert_eq!(sandbox.stats().requests, n_requests, "{expected}: no request");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_output_is_refused_unless_resume_or_force() {
    let plates = plates(30);
    let sandbox = start_sandbox(recording(Duration::ZERO)).await;
    let work = finished_run(&sandbox, &plates).await;
    let before = fs::read(&work.output).unwrap();

    let n_answered = sandbox.requests().len();
    let output_name = work.output.display().to_string();
    work.run(&sandbox, &[])
        .await
        .assert_code(USAGE)
        .assert_stderr_has(&format!("{output_name} already exists"))
        .assert_stderr_has("--resume")
        .assert_stderr_has("--force");
    assert_eq!(fs::read(&work.output).unwrap(), before);
    assert_eq!(sandbox.requests().len(), n_answered);

    let forced = work.run(&sandbox, &["--force"]).await;
    forced.assert_code(OK);
    assert_eq!(
        sorted(requested_plates(&sandbox)[n_answered..].to_vec()),
        sorted(plates.clone())
    );
    assert_eq!(forced.summary_u64("kept_from_before"), 0);
    assert_eq!(
        crate::support::masked(&fs::read(&work.output).unwrap()),
        crate::support::masked(&before),
        "the same answers again, at other times"
    );

    // A `.partial` alone, as a kill leaves it: refused without --resume, taken up with it.
    let n_kept = 12;
    let text = String::from_utf8(before.clone()).unwrap();
    let prefix: String = text.split_inclusive('\n').take(1 + n_kept).collect();
    fs::write(work.partial(), &prefix).unwrap();
    fs::remove_file(&work.output).unwrap();
    let n_answered = sandbox.requests().len();
    work.run(&sandbox, &[])
        .await
        .assert_code(USAGE)
        .assert_stderr_has(&format!("{output_name}.partial already exists"))
        .assert_stderr_has("--resume");
    assert_eq!(fs::read_to_string(work.partial()).unwrap(), prefix);
    assert!(!work.output.exists());
    assert_eq!(sandbox.requests().len(), n_answered);

    work.run(&sandbox, &["--resume"]).await.assert_code(OK);
    assert_eq!(
        sorted(requested_plates(&sandbox)[n_answered..].to_vec()),
        sorted(plates[n_kept..].to_vec())
    );
    assert_eq!(
        crate::support::masked(&fs::read(&work.output).unwrap()),
        crate::support::masked(&before)
    );
    assert!(
        fs::read_to_string(&work.output).unwrap().starts_with(&prefix),
        "the kept rows keep their answered_at"
    );
    assert!(!work.partial().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_written_last_line_never_survives_a_resume() {
    let plates = plates(30);
    let sandbox = start_sandbox(recording(Duration::ZERO)).await;
    let work = finished_run(&sandbox, &plates).await;
    let complete = fs::read(&work.output).unwrap();
    let lines: Vec<&[u8]> = complete.split_inclusive(|&b| b == b'\n').collect();
    let n_kept = 12;
    let cut_line = lines[1 + n_kept];
    // One byte (inside the first character of 客户13), the middle, all but the newline.
    for cut in [1, cut_line.len() / 2, cut_line.len() - 1] {
        // Alone, as a kill leaves it; or beside the OUTPUT of an earlier interrupted run, as a
        // kill during a resumed run leaves it (that OUTPUT may hold rows the newer run had not
        // reached yet: they are kept).
        for older_rows in [None, Some(5), Some(20)] {
            let case = format!(
                "cut at byte {cut} of row {}, older OUTPUT {older_rows:?}",
                n_kept + 1
            );
            let mut partial = lines[..1 + n_kept].concat();
            partial.extend_from_slice(&cut_line[..cut]);
            fs::write(work.partial(), &partial).unwrap();
            match older_rows {
                None => fs::remove_file(&work.output).unwrap(),
                Some(n) => fs::write(&work.output, lines[..1 + n].concat()).unwrap(),
            }
            let n_answered = sandbox.requests().len();
            work.run(&sandbox, &["--resume"]).await.assert_code(OK);
            let results = Results::read(&work.output);
            results.assert_answers(&plates);
            assert_eq!(results.rows.len(), plates.len(), "{case}");
            assert_eq!(
                crate::support::masked(&fs::read(&work.output).unwrap()),
                crate::support::masked(&complete),
                "{case}"
            );
            assert!(!work.partial().exists(), "{case}");
            let first_asked = older_rows.map_or(n_kept, |n| n.max(n_kept));
            assert_eq!(
                sorted(requested_plates(&sandbox)[n_answered..].to_vec()),
                sorted(plates[first_asked..].to_vec()),
                "{case}: only rows in neither file are requested"
            );
        }
    }
}
