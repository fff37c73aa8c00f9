//! The journal and the lock (issue 14), with the real binary against in-process sandboxes
//! whose flaky vehicles answer 500 once or twice (some with `Retry-After`) before 200: kill -9
//! at several moments, two runs on one OUTPUT, a torn journal record, a write failure mid-run.
//! Also the dry-run file that resumes and the `--summary-json` checked up front (issue 16).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bihu_renew::error::exit::{OK, USAGE, WRITE_FAILED};
use bihu_renew::results::journal;
use bihu_renew::sandbox::{Sandbox, SandboxConfig, expected_renewal, flaky_failures, vehicle_fingerprint};
use csv::StringRecord;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::support::{clean_command, lead_list, plates, sandbox_flags, start_sandbox, wait_for_count};

const CONCURRENCY: u64 = 8;

/// The heavy tests of this module take turns: each runs the binary at a high rate, and all
/// at once starved the timing tests of other modules on a loaded machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const CITY: &str = "11";
const FLAKY_PERCENT: u8 = 20;

fn fingerprint(plate: &str) -> u128 {
    vehicle_fingerprint(Some(plate), None, None, CITY)
}

/// About a fifth of the vehicles answer 500 once or twice before 200; a third of those say
/// `Retry-After: 1`.
fn flaky() -> SandboxConfig {
    SandboxConfig {
        latency: Duration::from_millis(5),
        flaky_percent: FLAKY_PERCENT,
        flaky_retry_after_secs: Some(1),
        ..SandboxConfig::default()
    }
}

struct Work {
    dir: TempDir,
    input: PathBuf,
    output: PathBuf,
}

impl Work {
    fn new(plates: &[String]) -> Work {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("leads.csv");
        fs::write(&input, lead_list(plates)).unwrap();
        Work {
            output: dir.path().join("leads.results.csv"),
            input,
            dir,
        }
    }

    fn journal(&self) -> PathBuf {
        journal::journal_path(&self.output)
    }

    fn partial(&self) -> PathBuf {
        let mut name = self.output.as_os_str().to_owned();
        name.push(".partial");
        PathBuf::from(name)
    }

    fn args(&self, sandbox: &Sandbox, flags: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "run".into(),
            self.input.display().to_string(),
            "-o".into(),
            self.output.display().to_string(),
            "--no-progress".into(),
        ];
        args.extend(sandbox_flags(sandbox));
        for arg in [
            "--concurrency",
            &CONCURRENCY.to_string(),
            "--retries",
            "3",
            "--timeout",
            "10",
        ] {
            args.push(arg.to_string());
        }
        if !flags.contains(&"--rate") {
            args.extend(["--rate".to_string(), "2000".to_string()]);
        }
        args.extend(flags.iter().map(|flag| flag.to_string()));
        args
    }

    fn command(&self, program: &str, args: &[String]) -> Command {
        let mut command = clean_command(program);
        command.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
        command
    }

    fn spawn(&self, sandbox: &Sandbox, flags: &[&str]) -> Child {
        self.command(env!("CARGO_BIN_EXE_bihu-renew"), &self.args(sandbox, flags))
            .spawn()
            .expect("the binary starts")
    }

    async fn run(&self, sandbox: &Sandbox, flags: &[&str]) -> (i32, String) {
        finish(self.spawn(sandbox, flags)).await
    }

    /// Waits until the journal holds at least `n` records.
    async fn wait_for_journal(&self, n: usize) {
        wait_for_count(n, "journal records", || {
            journal::read(&self.journal()).map_or(0, |(records, _)| records.len())
        })
        .await;
    }

    /// Waits until at least `n` answers are on disk, in `.partial` or in the journal (a run
    /// journals only the answers its `.partial` cannot take yet).
    async fn wait_for_answers(&self, n: usize) {
        wait_for_count(n, "answers on disk", || {
            let in_partial = fs::read(self.partial()).map_or(0, |bytes| {
                bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(1)
            });
            in_partial + journal::read(&self.journal()).map_or(0, |(records, _)| records.len())
        })
        .await;
    }
}

async fn finish(child: Child) -> (i32, String) {
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the binary ends within 60 s")
        .expect("the binary's output is read");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn kill_9(mut child: Child) {
    child.start_kill().expect("SIGKILL is sent");
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), None, "killed by a signal, not finished");
}

/// Waits until requests that a killed client had sent are all counted: nothing changes for
/// 100 ms, twenty times the latency.
async fn settle(sandbox: &Sandbox) {
    let mut last = sandbox.stats().requests;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sandbox.stats().requests;
        if now == last {
            return;
        }
        last = now;
    }
}

/// A results file's rows, with the sandbox's address taken out of the quote URLs.
fn rows(path: &Path, sandbox: &Sandbox) -> (StringRecord, Vec<Vec<String>>) {
    let mut csv = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = csv.headers().unwrap().clone();
    let base = sandbox.base_url().to_string();
    let rows = csv
        .records()
        .map(|record| {
            record
                .unwrap()
                .iter()
                .map(|cell| cell.replace(&base, "BASE/"))
                .collect()
        })
        .collect();
    (header, rows)
}

/// Requests per vehicle, by plate.
fn per_plate(sandbox: &Sandbox, plates: &[String]) -> HashMap<String, u64> {
    let counts = sandbox.vehicle_requests();
    plates
        .iter()
        .map(|plate| {
            (
                plate.clone(),
                counts.get(&fingerprint(plate)).copied().unwrap_or(0),
            )
        })
        .collect()
}

fn n_flaky(plates: &[String]) -> u64 {
    plates
        .iter()
        .filter(|plate| flaky_failures(fingerprint(plate), FLAKY_PERCENT) > 0)
        .count() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_several_moments_costs_at_most_the_requests_in_flight() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let plates = plates(400);
    let n_flaky = n_flaky(&plates);
    assert!((50..110).contains(&n_flaky), "{n_flaky} flaky vehicles of 400");

    let reference = async {
        let sandbox = start_sandbox(flaky()).await;
        let work = Work::new(&plates);
        let (code, stderr) = work.run(&sandbox, &[]).await;
        assert_eq!(code, OK, "{stderr}");
        assert!(!work.journal().exists(), "a complete run leaves no journal");
        (rows(&work.output, &sandbox), per_plate(&sandbox, &plates))
    };
    let killed = async {
        let sandbox = start_sandbox(flaky()).await;
        let work = Work::new(&plates);
        // Early (first answers), in the thick of it, and in the tail of backoffs.
        let child = work.spawn(&sandbox, &[]);
        work.wait_for_journal(40).await;
        kill_9(child).await;
        settle(&sandbox).await;
        let mut kills = 1;
        for wait in [Duration::from_millis(250), Duration::from_millis(900)] {
            let child = work.spawn(&sandbox, &["--resume"]);
            tokio::time::sleep(wait).await;
            if child.id().is_none() {
                break;
            }
            kill_9(child).await;
            settle(&sandbox).await;
            kills += 1;
        }
        assert!(work.journal().exists(), "a killed run leaves its journal");
        let (code, stderr) = work.run(&sandbox, &["--resume"]).await;
        assert_eq!(code, OK, "{stderr}");
        assert!(!work.journal().exists() && !work.partial().exists());
        (rows(&work.output, &sandbox), per_plate(&sandbox, &plates), kills)
    };
    let (((header, expected), reference_counts), ((_, resumed), counts, kills)) =
        tokio::join!(reference, killed);

    // Every vehicle: at least what an uninterrupted run asked, and in all no more than the
    // requests in flight at each kill.
    let mut extra = 0;
    for plate in &plates {
        let (want, got) = (reference_counts[plate], counts[plate]);
        assert!(got >= want, "{plate}: {got} requests, uninterrupted {want}");
        extra += got - want;
    }
    eprintln!(
        "{kills} kills: {extra} extra requests (concurrency {CONCURRENCY}); uninterrupted {} requests",
        reference_counts.values().sum::<u64>()
    );
    assert!(
        extra <= CONCURRENCY * kills,
        "{extra} extra requests after {kills} kills of concurrency {CONCURRENCY}"
    );

    // Column for column as the uninterrupted run's; `attempts` may differ only where a
    // request was lost in flight.
    let attempts = header.iter().position(|name| name == "attempts").unwrap();
    // The answers of a resumed run come at other moments than the reference's.
    let answered_at = header.iter().position(|name| name == "answered_at").unwrap();
    assert_eq!(resumed.len(), expected.len());
    let mut attempts_differ = 0;
    for (i, (got, want)) in resumed.iter().zip(&expected).enumerate() {
        for (column, (a, b)) in got.iter().zip(want).enumerate() {
            if column == attempts {
                attempts_differ += usize::from(a != b);
            } else if column == answered_at {
                assert_eq!(a.is_empty(), b.is_empty(), "data row {}: answered_at", i + 1);
            } else {
                assert_eq!(a, b, "data row {}, column {}", i + 1, &header[column]);
            }
        }
    }
    eprintln!("{attempts_differ} rows differ in attempts");
    assert!(
        attempts_differ as u64 <= CONCURRENCY * kills,
        "{attempts_differ} rows differ in attempts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_one_output_exits_2_and_sends_nothing() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let plates = plates(300);
    let slow = start_sandbox(SandboxConfig {
        latency: Duration::from_millis(20),
        ..SandboxConfig::default()
    })
    .await;
    let other = start_sandbox(SandboxConfig::default()).await;
    let work = Work::new(&plates);
    let first = work.command(
        env!("CARGO_BIN_EXE_bihu-renew"),
        &work.args(&slow, &["--rate", "150"]),
    );
    let mut first = first;
    let first = first.spawn().unwrap();
    let pid = first.id().unwrap();
    work.wait_for_answers(10).await;

    for flags in [&[][..], &["--resume"], &["--force"], &["--dry-run", "--force"]] {
        let started = Instant::now();
        let (code, stderr) = work.run(&other, flags).await;
        assert_eq!(code, USAGE, "{flags:?}: {stderr}");
        assert!(stderr.contains("is in use by another bihu-renew run"), "{stderr}");
        assert!(stderr.contains(&format!("pid {pid}, started ")), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "at once");
    }
    assert_eq!(other.stats().requests, 0, "the second runs sent nothing");
    assert!(
        journal::read(&work.journal()).is_ok(),
        "the first run's files are untouched"
    );

    // The kernel lets go of a killed run's lock: a new run takes it at once.
    kill_9(first).await;
    let (code, stderr) = work.run(&slow, &["--resume", "--rate", "2000"]).await;
    assert_eq!(code, OK, "{stderr}");
    assert_eq!(rows(&work.output, &slow).1.len(), plates.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_journal_record_resumes_cleanly() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let plates = plates(300);
    let sandbox = start_sandbox(flaky()).await;
    let work = Work::new(&plates);
    let child = work.spawn(&sandbox, &[]);
    work.wait_for_journal(120).await;
    kill_9(child).await;
    settle(&sandbox).await;

    // Cut the journal in the middle of its last record.
    let bytes = fs::read(work.journal()).unwrap();
    let body = &bytes[..bytes.len() - 1];
    let last_start = body.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let cut = last_start + (bytes.len() - last_start) / 2;
    fs::write(work.journal(), &bytes[..cut]).unwrap();
    let (records, end) = journal::read(&work.journal()).unwrap();
    assert_eq!(end as usize, last_start, "the torn record is recognised");
    assert!(!records.is_empty());
    let before = sandbox.stats().requests;

    let (code, stderr) = work.run(&sandbox, &["--resume"]).await;
    assert_eq!(code, OK, "{stderr}");
    let kept = records
        .iter()
        .filter(|record| record.retry.is_none() && record.outcome.status.is_final())
        .count() as u64;
    assert!(
        sandbox.stats().requests - before <= plates.len() as u64 - kept + 2 * n_flaky(&plates),
        "journalled answers are not requested again"
    );
    let (header, rows) = rows(&work.output, &sandbox);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), plates.len());
    for (i, (row, plate)) in rows.iter().zip(&plates).enumerate() {
        assert_eq!(row[column("row")], (i + 1).to_string());
        assert_eq!(&row[column("plate")], plate);
        match expected_renewal(Some(plate), None, None, CITY, 20) {
            Some(token) => assert_eq!(row[column("renewal_token")], token, "{row:?}"),
            None => assert_eq!(row[column("status")], "not_renewable", "{row:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_stops_the_run_and_resume_repeats_no_journalled_answer() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let plates = plates(600);
    let sandbox = start_sandbox(flaky()).await;
    let work = Work::new(&plates);
    // A file size limit of 24 KiB: writes beyond it fail with EFBIG, as on a full disk
    // (SIGXFSZ ignored, so the write fails instead of killing the process).
    let mut args = vec![
        "-c".to_string(),
        "trap '' XFSZ; ulimit -f 48; exec \"$0\" \"$@\"".to_string(),
        env!("CARGO_BIN_EXE_bihu-renew").to_string(),
    ];
    args.extend(work.args(&sandbox, &[]));
    let (code, stderr) = finish(work.command("sh", &args).spawn().unwrap()).await;
    assert_eq!(code, WRITE_FAILED, "{stderr}");
    let failed = if stderr.contains("leads.results.csv.journal: ") {
        work.journal()
    } else {
        assert!(stderr.contains("leads.results.csv.partial: "), "{stderr}");
        work.partial()
    };
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    eprintln!("the write to {} failed", failed.display());
    settle(&sandbox).await;

    // Every vehicle requested has its answer on disk, but for the requests in flight.
    let (records, _) = journal::read(&work.journal()).unwrap();
    let journalled: HashMap<u64, journal::Record> =
        records.into_iter().map(|record| (record.row, record)).collect();
    let before = per_plate(&sandbox, &plates);
    let requested = before.values().filter(|&&n| n > 0).count();
    let n_in_partial = fs::read(work.partial()).map_or(0, |bytes| {
        bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(1)
    });
    let answered = (1..=plates.len() as u64)
        .filter(|row| journalled.contains_key(row) || *row as usize <= n_in_partial)
        .count();
    eprintln!("{requested} vehicles requested, {answered} answers on disk");
    assert!(
        requested <= answered + CONCURRENCY as usize,
        "{requested} vehicles requested, only {answered} answers kept"
    );
    assert!(requested < plates.len() / 2, "the run stopped early");

    let (code, stderr) = work.run(&sandbox, &["--resume"]).await;
    assert_eq!(code, OK, "{stderr}");
    let after = per_plate(&sandbox, &plates);
    for (row, record) in &journalled {
        if record.retry.is_none() && record.outcome.status.is_final() {
            let plate = &plates[*row as usize - 1];
            assert_eq!(
                before[plate], after[plate],
                "{plate}, journalled, was requested again"
            );
        }
    }
    assert_eq!(rows(&work.output, &sandbox).1.len(), plates.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_file_resumes_and_reports() {
    let plates = plates(20);
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let work = Work::new(&plates);
    let dry = work.dir.path().join("leads.dry-run.csv");
    let (code, stderr) = finish(
        work.command(
            env!("CARGO_BIN_EXE_bihu-renew"),
            &["run".into(), work.input.display().to_string(), "--dry-run".into()],
        )
        .spawn()
        .unwrap(),
    )
    .await;
    assert_eq!(code, OK, "{stderr}");
    let report = crate::support::run_binary(&["report", dry.to_str().unwrap()], &[]).await;
    assert_eq!(report.code, OK, "{}", report.stderr);
    assert!(report.stdout_text().contains("ready"), "{}", report.stdout_text());

    let mut args = work.args(&sandbox, &["--resume"]);
    args[3] = dry.display().to_string();
    let (code, stderr) = finish(
        work.command(env!("CARGO_BIN_EXE_bihu-renew"), &args)
            .spawn()
            .unwrap(),
    )
    .await;
    assert_eq!(code, OK, "{stderr}");
    let (header, rows) = rows(&dry, &sandbox);
    let status = header.iter().position(|h| h == "status").unwrap();
    assert!(
        rows.iter()
            .all(|row| row[status] == "renewed" || row[status] == "not_renewable")
    );
    assert_eq!(sandbox.stats().requests, plates.len() as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_summary_json_is_refused_before_any_request() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let work = Work::new(&plates(5));
    let missing = work.dir.path().join("no/such/dir/summary.json");
    let (code, stderr) = work
        .run(&sandbox, &["--summary-json", missing.to_str().unwrap()])
        .await;
    assert_eq!(code, USAGE, "{stderr}");
    assert!(stderr.contains("--summary-json"), "{stderr}");
    assert_eq!(sandbox.stats().requests, 0);
    assert!(!work.output.exists() && !work.partial().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicates_copy_an_answer_that_only_the_journal_holds() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut plates = plates(300);
    // Row 1 is a vehicle that fails twice with Retry-After: `.partial` stays empty for a
    // second or two while the answers of the later rows go to the journal.
    let slow = plates
        .iter()
        .position(|plate| {
            let id = fingerprint(plate);
            flaky_failures(id, FLAKY_PERCENT) == 2 && bihu_renew::sandbox::flaky_retry_after(id)
        })
        .expect("a vehicle that fails twice with Retry-After");
    plates.swap(0, slow);
    let vehicle = plates[10].clone();
    assert_eq!(flaky_failures(fingerprint(&vehicle), FLAKY_PERCENT), 0);
    plates[200] = vehicle.clone();

    let sandbox = start_sandbox(flaky()).await;
    let work = Work::new(&plates);
    let child = work.spawn(&sandbox, &[]);
    work.wait_for_journal(150).await;
    kill_9(child).await;
    settle(&sandbox).await;
    let n_partial = fs::read(work.partial()).map_or(0, |bytes| {
        bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(1)
    });
    assert!(
        n_partial < 11,
        "row 11 must be beyond .partial ({n_partial} rows)"
    );
    let (records, _) = journal::read(&work.journal()).unwrap();
    assert!(
        records
            .iter()
            .any(|record| record.row == 11 && record.retry.is_none())
    );

    let (code, stderr) = work.run(&sandbox, &["--resume"]).await;
    assert_eq!(code, OK, "{stderr}");
    assert_eq!(per_plate(&sandbox, &plates)[&vehicle], 1, "requested once in all");
    let (header, rows) = rows(&work.output, &sandbox);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let copy = &rows[200];
    assert!(
        copy[column("message")].starts_with("same vehicle as row 11: "),
        "{copy:?}"
    );
    assert_eq!(copy[column("attempts")], "0");
    assert_eq!(copy[column("renewal_token")], rows[10][column("renewal_token")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_leaves_a_whole_journal_that_resume_uses() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let plates = plates(400);
    let sandbox = start_sandbox(flaky()).await;
    let work = Work::new(&plates);
    let child = work.spawn(&sandbox, &[]);
    work.wait_for_journal(100).await;
    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().await;
    assert!(kill.unwrap().success());
    let (code, stderr) = finish(child).await;
    assert_eq!(code, bihu_renew::error::exit::INTERRUPTED, "{stderr}");
    let (records, end) = journal::read(&work.journal()).unwrap();
    assert_eq!(end, fs::metadata(work.journal()).unwrap().len(), "no torn record");
    let before = per_plate(&sandbox, &plates);

    let (code, stderr) = work.run(&sandbox, &["--resume"]).await;
    assert_eq!(code, OK, "{stderr}");
    let after = per_plate(&sandbox, &plates);
    for record in records
        .iter()
        .filter(|r| r.retry.is_none() && r.outcome.status.is_final())
    {
        let plate = &plates[record.row as usize - 1];
        assert_eq!(
            before[plate], after[plate],
            "{plate} was journalled, then requested again"
        );
    }
    assert_eq!(rows(&work.output, &sandbox).1.len(), plates.len());
}
