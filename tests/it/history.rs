//! The answer history (issue 19): the `history` subcommand over a file made through the
//! library, as `run --history` and the service make it.

use std::time::Duration;

use bihu_renew::error::exit::{OK, USAGE};
use bihu_renew::leads::lead::VehicleKey;
use bihu_renew::results::history::{self, Answer, History};
use bihu_renew::results::outcome::Status;

use crate::support::run_binary;

fn answer(vehicle: VehicleKey, status: Status, answered_at: i64) -> Answer {
    Answer {
        agent_id: "102".into(),
        vehicle,
        status,
        http_status: Some(if status == Status::Renewed { 200 } else { 206 }),
        renewal_token: if status == Status::Renewed {
            "RT-1".into()
        } else {
            String::new()
        },
        message: "ok".into(),
        answered_at,
    }
}

#[tokio::test]
async fn history_lists_a_vehicle_newest_first_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let now = history::unix_ms_now();
    let day = 86_400_000;
    let plate = VehicleKey::Plate {
        plate: "京A12345".into(),
        city: 1,
    };
    let vin = VehicleKey::Vin {
        vin: "LSVAU2180N2183294".into(),
        engine: "E123".into(),
        city: 1,
    };
    History::open(&path)
        .unwrap()
        .record_all(&[
            answer(plate.clone(), Status::NotRenewable, now - 10 * day),
            answer(plate.clone(), Status::Renewed, now - day),
            answer(vin, Status::Renewed, now - 2 * day),
        ])
        .unwrap();
    let file = path.to_str().unwrap();

    // Noise in the plate is ignored, as in a lead list.
    let shown = run_binary(&["history", "--history", file, "京a 123-45"], &[]).await;
    assert_eq!(shown.code, OK, "{}", shown.stderr);
    let mut csv = csv::Reader::from_reader(shown.stdout.as_slice());
    assert_eq!(
        csv.headers().unwrap().iter().collect::<Vec<_>>(),
        bihu_renew::cmd::history::COLUMNS
    );
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(&rows[0][6], "renewed", "newest first");
    assert_eq!(&rows[1][6], "not_renewable");
    assert_eq!(history::parse_time(&rows[0][0]), Some((now - day) / 1000 * 1000));

    let by_vin = run_binary(&["history", "--history", file, "lsvau2180n2183294"], &[]).await;
    assert_eq!(by_vin.code, OK, "{}", by_vin.stderr);
    assert!(
        by_vin.stdout_text().contains("LSVAU2180N2183294,E123,1,renewed"),
        "{}",
        by_vin.stdout_text()
    );

    let pruned = run_binary(&["history", "--history", file, "--prune", "7d"], &[]).await;
    assert_eq!(pruned.code, OK, "{}", pruned.stderr);
    assert!(
        pruned.stderr.contains("pruned 1 answer given before"),
        "{}",
        pruned.stderr
    );
    assert!(
        pruned.stdout_text().starts_with("answers\t2\n"),
        "{}",
        pruned.stdout_text()
    );
    let history = History::open(&path).unwrap();
    assert_eq!(
        history
            .lookup("102", &plate, now, Duration::from_secs(30 * 86_400))
            .unwrap()
            .map(|a| a.status),
        Some(Status::Renewed)
    );
    assert_eq!(history.list("京A12345").unwrap().len(), 1);

    let unknown = run_binary(&["history", "--history", file, "沪C00000"], &[]).await;
    assert_eq!(unknown.code, OK);
    assert!(unknown.stderr.contains("holds no answer"), "{}", unknown.stderr);
}

#[tokio::test]
async fn history_needs_an_existing_file() {
    let missing = run_binary(&["history", "京A12345"], &[]).await;
    assert_eq!(missing.code, USAGE);
    assert!(missing.stderr.contains("--history FILE"), "{}", missing.stderr);
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("none.sqlite");
    let absent = run_binary(&["history", "--history", absent.to_str().unwrap()], &[]).await;
    assert_eq!(absent.code, USAGE);
    assert!(absent.stderr.contains("does not exist"), "{}", absent.stderr);
    let bad = run_binary(&["history", "--history", "x", "--prune", "7 days"], &[]).await;
    assert_eq!(bad.code, USAGE);
}

/// Processes starting together on a new history file (two cron jobs, say): SQLite refuses the
/// WAL switch of the one that loses the race at once, without the busy timeout, which once
/// failed `run --history` with "database is locked". Each round is a new (empty) file opened by
/// eight processes at once; every one of them must open it.
#[tokio::test]
async fn processes_opening_a_new_history_at_once_all_open_it() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..12 {
        let path = dir.path().join(format!("history-{round}.sqlite"));
        std::fs::File::create(&path).unwrap();
        let args = ["history", "--history", path.to_str().unwrap()];
        let opened = futures::future::join_all((0..8).map(|_| run_binary(&args, &[]))).await;
        for opened in opened {
            assert_eq!(opened.code, OK, "round {round}: {}", opened.stderr);
            assert!(
                opened.stdout_text().starts_with("answers\t0\n"),
                "{}",
                opened.stdout_text()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runs that record into the history and reuse it (in-process pipeline, sandbox on loopback).

mod runs {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    use bihu_renew::leads::lead::VehicleKey;
    use bihu_renew::results::history::{self, History};
    use bihu_renew::results::outcome::Status;
    use bihu_renew::results::output::OutputTarget;
    use bihu_renew::run::config::{Backoff, Existing, HistorySettings, RunConfig};
    use bihu_renew::run::events::Silent;
    use bihu_renew::run::pipeline;
    use bihu_renew::run::quota::Quota;
    use bihu_renew::run::summary::Summary;
    use bihu_renew::sandbox::{Sandbox, SandboxConfig};
    use tokio_util::sync::CancellationToken;

    use crate::support::{ResultRow, read_results, run_binary, run_config, sandbox_flags, start_sandbox};

    /// `粤B` plates (city 深圳, 11), numbered.
    fn list(dir: &Path, name: &str, numbers: impl IntoIterator<Item = usize>) -> PathBuf {
        let mut text = String::from("plate\n");
        for i in numbers {
            text.push_str(&format!("粤B{i:05}\n"));
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn config(
        sandbox: &Sandbox,
        input: PathBuf,
        history: &Path,
        reuse_within: Option<Duration>,
    ) -> RunConfig {
        let output = input.with_extension("results.csv");
        RunConfig {
            existing: Existing::Overwrite,
            retries: 0,
            backoff: Backoff {
                min: Duration::from_millis(10),
                max: Duration::from_millis(50),
                max_retry_after: Duration::from_secs(1),
            },
            history: Some(HistorySettings {
                path: history.to_path_buf(),
                reuse_within,
            }),
            ..run_config(sandbox, input, output)
        }
    }

    async fn run(config: RunConfig) -> (Summary, Vec<ResultRow>) {
        let OutputTarget::File(output) = config.output.clone() else {
            unreachable!()
        };
        let quota = Quota::new(config.rate, config.burst, config.concurrency);
        let summary = pipeline::run(config, &quota, Arc::new(Silent), CancellationToken::new())
            .await
            .unwrap_or_else(|error| panic!("the run failed: {error}"));
        (summary, read_results(&output))
    }

    fn recording() -> SandboxConfig {
        SandboxConfig {
            record_requests: true,
            ..SandboxConfig::default()
        }
    }

    #[tokio::test]
    async fn a_second_run_asks_only_for_new_vehicles_with_reuse_and_for_all_without() {
        let sandbox = start_sandbox(recording()).await;
        let dir = tempfile::tempdir().unwrap();
        let history_path = dir.path().join("history.sqlite");
        let week = Some(Duration::from_secs(7 * 86_400));

        let day1 = list(dir.path(), "day1.csv", 0..30);
        let (first, rows) = run(config(&sandbox, day1, &history_path, week)).await;
        assert_eq!(first.requests, 30);
        assert_eq!(first.reused, 0);
        assert!(rows.iter().all(|row| row.attempts == 1));
        let day1_rows = rows;
        let recorded = History::open(&history_path).unwrap().count().unwrap();
        assert_eq!(recorded, 30, "every final answer is recorded");

        // Day 2: vehicles 20..30 again, 30..50 new; one repeated twice within the list.
        let day2 = list(dir.path(), "day2.csv", (20..50).chain([25]));
        let before = sandbox.requests().len();
        let (second, rows) = run(config(&sandbox, day2.clone(), &history_path, week)).await;
        let sent = &sandbox.requests()[before..];
        assert_eq!(second.requests, 20, "only the new vehicles are asked");
        assert_eq!(sent.len(), 20);
        assert!(
            sent.iter()
                .all(|request| !(0..30).any(|i| request.body.contains(&format!("粤B{i:05}"))))
        );
        assert_eq!(second.reused, 10);
        for row in &rows[..10] {
            let earlier = &day1_rows[20 + row.row as usize - 1];
            assert_eq!(row.attempts, 0, "{row:?}");
            assert_eq!(row.status, earlier.status);
            assert_eq!(row.renewal_token, earlier.renewal_token);
            assert_eq!(row.quote_url, earlier.quote_url, "built with the current Token");
            assert_eq!(
                row.answered_at, earlier.answered_at,
                "the time of the answer reused"
            );
            assert!(
                row.message
                    .starts_with(&format!("reused the {} answer of 20", row.status)),
                "{}",
                row.message
            );
        }
        assert!(rows[10..30].iter().all(|row| row.attempts == 1));
        // Fresh answers carry their own time, later than the first day's.
        let first_day = history::parse_time(&day1_rows[0].answered_at).unwrap();
        for row in &rows[10..30] {
            let at = history::parse_time(&row.answered_at).unwrap_or_else(|| panic!("{row:?}"));
            assert!(at >= first_day / 1000 * 1000, "{row:?}");
        }
        assert_eq!(
            rows[30].answered_at, rows[5].answered_at,
            "a copy carries its first row's"
        );
        assert_eq!(rows[30].attempts, 0);
        assert!(
            rows[30].message.starts_with("same vehicle as row 6: reused the"),
            "{}",
            rows[30].message
        );
        assert_eq!(
            History::open(&history_path).unwrap().count().unwrap(),
            50,
            "reused answers are not recorded again"
        );

        // Without reuse, the same list asks for every vehicle again (and records them).
        let before = sandbox.requests().len();
        let (third, _) = run(config(&sandbox, day2.clone(), &history_path, None)).await;
        assert_eq!(third.requests, 30);
        assert_eq!(sandbox.requests().len() - before, 30);
        assert_eq!(third.reused, 0);
        assert_eq!(History::open(&history_path).unwrap().count().unwrap(), 80);

        // A dry run with the window says what the history would answer, and sends nothing.
        let before = sandbox.requests().len();
        let checked = dir.path().join("day2.check.csv");
        let dry = run_binary(
            &[
                "run",
                day2.to_str().unwrap(),
                "--dry-run",
                "-o",
                checked.to_str().unwrap(),
                "--agent-id",
                &sandbox.config().agent_id,
                "--history",
                history_path.to_str().unwrap(),
                "--reuse-within",
                "7d",
            ],
            &[],
        )
        .await;
        assert_eq!(dry.code, 0, "{}", dry.stderr);
        assert!(
            dry.stderr
                .contains("31 rows would be answered from the history, saving 30 requests"),
            "{}",
            dry.stderr
        );
        assert!(dry.stderr.contains("0 requests needed"), "{}", dry.stderr);
        assert_eq!(sandbox.requests().len(), before);
        let rows = read_results(&checked);
        assert!(rows[0].message.starts_with("would reuse the "), "{:?}", rows[0]);
    }

    #[tokio::test]
    async fn reuse_honours_the_window_and_never_reuses_a_transient_answer() {
        let dir = tempfile::tempdir().unwrap();
        let history_path = dir.path().join("history.sqlite");
        // Every first request fails with a 500, and no retries: server_error, a transient.
        let failing = start_sandbox(SandboxConfig {
            fail_rate: 1.0,
            record_requests: true,
            ..SandboxConfig::default()
        })
        .await;
        let input = list(dir.path(), "leads.csv", 0..3);
        let (summary, rows) = run(config(
            &failing,
            input.clone(),
            &history_path,
            Some(Duration::from_secs(86_400)),
        ))
        .await;
        assert_eq!(summary.requests, 3);
        assert!(rows.iter().all(|row| row.status == "server_error"), "{rows:?}");
        assert_eq!(History::open(&history_path).unwrap().count().unwrap(), 0);

        // An answer 8 days old: outside a 7-day window, inside a 9-day one.
        let sandbox = start_sandbox(recording()).await;
        let vehicle = VehicleKey::Plate {
            plate: "粤B00000".into(),
            city: 11,
        };
        History::open(&history_path)
            .unwrap()
            .record(&history::Answer {
                agent_id: sandbox.config().agent_id.clone(),
                vehicle,
                status: Status::NotRenewable,
                http_status: Some(206),
                renewal_token: String::new(),
                message: "no renewal data".into(),
                answered_at: history::unix_ms_now() - 8 * 86_400_000,
            })
            .unwrap();
        let (week, _) = run(config(
            &sandbox,
            input.clone(),
            &history_path,
            Some(Duration::from_secs(7 * 86_400)),
        ))
        .await;
        assert_eq!(
            (week.requests, week.reused),
            (3, 0),
            "the transient rows and the old answer are asked again"
        );
        let input = list(dir.path(), "old.csv", [0]);
        let (nine_days, rows) = run(config(
            &sandbox,
            input,
            &history_path,
            Some(Duration::from_secs(9 * 86_400)),
        ))
        .await;
        assert_eq!((nine_days.requests, nine_days.reused), (0, 1));
        // The 7-day run recorded a fresh answer for 粤B00000; the newest one is reused.
        assert_eq!(rows[0].attempts, 0);
        assert!(rows[0].message.contains("reused the"), "{}", rows[0].message);
    }

    /// A history with answers for more vehicles than the answered set keeps (a million rows,
    /// made by one SQL statement in seconds): the run says so, looks every row up instead,
    /// and still reuses every answer in the window; the new vehicles are asked, no row lost.
    #[tokio::test]
    async fn past_the_answered_sets_cap_every_row_is_looked_up_and_nothing_is_lost() {
        let sandbox = start_sandbox(recording()).await;
        let dir = tempfile::tempdir().unwrap();
        let history_path = dir.path().join("history.sqlite");
        let agent_id = sandbox.config().agent_id.clone();
        let now = history::unix_ms_now();
        let known: Vec<history::Answer> = (0..10)
            .map(|i| history::Answer {
                agent_id: agent_id.clone(),
                vehicle: VehicleKey::Plate {
                    plate: format!("粤B{i:05}"),
                    city: 11,
                },
                status: Status::NotRenewable,
                http_status: Some(206),
                renewal_token: String::new(),
                message: "no renewal data".into(),
                answered_at: now - 3_600_000,
            })
            .collect();
        History::open(&history_path).unwrap().record_all(&known).unwrap();
        let others = rusqlite::Connection::open(&history_path)
            .unwrap()
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO history_answers (agent_id, plate, city, status, http_status, renewal_token, message, answered_at)
                 SELECT ?2, printf('沪Z%07d', i), 2, 'not_renewable', 206, '', 'no renewal data', ?3 FROM n",
                rusqlite::params![history::AnsweredSet::CAP as i64, agent_id, now - 3_600_000],
            )
            .unwrap();
        assert_eq!(others, history::AnsweredSet::CAP);

        let input = list(dir.path(), "leads.csv", 0..20);
        let output = dir.path().join("leads.results.csv");
        let flags = sandbox_flags(&sandbox);
        let mut args = vec![
            "run",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--no-progress",
        ];
        args.extend(flags.iter().map(String::as_str));
        args.extend([
            "--history",
            history_path.to_str().unwrap(),
            "--reuse-within",
            "7d",
        ]);
        let ran = run_binary(&args, &[]).await;
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert!(
            ran.stderr.contains(&format!(
                "holds answers of the last 7d for more than {} vehicles: every row is looked up in it",
                history::AnsweredSet::CAP
            )),
            "{}",
            ran.stderr
        );
        let sent = sandbox.requests();
        assert_eq!(sent.len(), 10, "only the vehicles without an answer are asked");
        assert!(
            sent.iter()
                .all(|request| !(0..10).any(|i| request.body.contains(&format!("粤B{i:05}"))))
        );
        let rows = read_results(&output);
        assert_eq!(rows.len(), 20, "every row is written");
        for row in &rows[..10] {
            assert_eq!(
                (row.status.as_str(), row.attempts),
                ("not_renewable", 0),
                "{row:?}"
            );
            assert!(
                row.message.starts_with("reused the not_renewable answer"),
                "{row:?}"
            );
        }
        assert!(rows[10..].iter().all(|row| row.attempts == 1), "{rows:?}");
    }

    /// Two `bihu-renew run` processes recording into one history file at once.
    #[tokio::test]
    async fn two_processes_writing_one_history_lose_no_answer() {
        let sandbox = start_sandbox(SandboxConfig::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let history_path = dir.path().join("history.sqlite");
        let flags = sandbox_flags(&sandbox);
        let inputs = [
            list(dir.path(), "a.csv", 0..200),
            list(dir.path(), "b.csv", 1000..1200),
        ];
        let runs = inputs.iter().map(|input| {
            let mut args = vec!["run", input.to_str().unwrap(), "--no-progress"];
            args.extend(flags.iter().map(String::as_str));
            args.extend(["--rate", "5000", "--concurrency", "4"]);
            args.extend(["--history", history_path.to_str().unwrap()]);
            let args: Vec<String> = args.into_iter().map(str::to_string).collect();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run_binary(&args, &[]).await
            }
        });
        for ran in futures::future::join_all(runs).await {
            assert_eq!(ran.code, 0, "{}", ran.stderr);
        }
        let history = History::open(&history_path).unwrap();
        assert_eq!(history.count().unwrap(), 400);
    }
}
