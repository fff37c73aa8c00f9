//! `-o results.xlsx` with the real binary against an in-process sandbox: what Excel gets
//! (carried cells as text with every digit, typed result columns, a frozen header, the quote
//! URL as a link, formula-looking text as text), `report` on a workbook, and a run that is
//! interrupted, killed and resumed into a workbook.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bihu_renew::error::exit::{INTERRUPTED, OK};
use bihu_renew::sandbox::{Sandbox, SandboxConfig, expected_renewal};
use calamine::{Data, Reader as _};
use tokio::process::{Child, Command};

use crate::support::{bihu_command, run_binary, sandbox_flags, start_sandbox};

/// The flags that point the binary at `sandbox`, without a progress bar.
fn sandbox_args(sandbox: &Sandbox) -> Vec<String> {
    let mut args = sandbox_flags(sandbox);
    args.push("--no-progress".to_string());
    args
}

/// The first sheet's cells, as calamine reads them.
fn sheet(path: &Path) -> calamine::Range<Data> {
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook(path).unwrap_or_else(|e| panic!("{} is not a workbook: {e}", path.display()));
    let name = workbook.sheet_names()[0].clone();
    workbook.worksheet_range(&name).unwrap()
}

/// A file inside the workbook's zip, as text.
fn part(path: &Path, name: &str) -> String {
    let mut zip = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name(name)
        .unwrap_or_else(|e| panic!("{} has no {name}: {e}", path.display()))
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn column(range: &calamine::Range<Data>, name: &str) -> usize {
    (0..range.width())
        .find(|&j| range.get((0, j)) == Some(&Data::String(name.into())))
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn text(range: &calamine::Range<Data>, row: usize, name: &str) -> String {
    match range.get((row, column(range, name))) {
        Some(Data::String(text)) => text.clone(),
        Some(Data::Empty) | None => String::new(),
        other => panic!("{name} of row {row} is {other:?}, not text"),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_xlsx_output_keeps_every_digit_types_its_columns_and_links_the_quote() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("leads.csv");
    fs::write(
        &input,
        "身份证号,车牌号,发动机号,备注\n\
         110101199003074518,京J97896,0012345,=HYPERLINK(\"http://x\")\n\
         110101199003074519,沪A12345,0000001,+1\n\
         ,XYZ,,@note\n",
    )
    .unwrap();
    let output = dir.path().join("leads.results.xlsx");
    let mut args = vec!["run".to_string(), input.display().to_string()];
    args.extend(["-o".into(), output.display().to_string()]);
    args.extend(sandbox_args(&sandbox));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = run_binary(&refs, &[]).await;
    assert_eq!(ran.code, OK, "{}", ran.stderr);
    for suffix in [".partial", ".journal", ".lock", ".writing", ".merging"] {
        assert!(!with_suffix(&output, suffix).exists(), "{suffix} left behind");
    }

    let range = sheet(&output);
    assert_eq!(range.height(), 4, "header and three rows");
    // Carried cells are text, digits and leading zeros intact, formulas never evaluated.
    assert_eq!(text(&range, 1, "身份证号"), "110101199003074518");
    assert_eq!(text(&range, 2, "身份证号"), "110101199003074519");
    assert_eq!(text(&range, 1, "发动机号"), "0012345");
    assert_eq!(text(&range, 2, "发动机号"), "0000001");
    assert_eq!(text(&range, 1, "备注"), "=HYPERLINK(\"http://x\")");
    assert_eq!(text(&range, 2, "备注"), "+1");
    assert_eq!(text(&range, 3, "备注"), "@note");
    let sheet_xml = part(&output, "xl/worksheets/sheet1.xml");
    assert!(!sheet_xml.contains("<f>"), "no formula in the sheet");
    // The tool's own columns are typed.
    for (row, attempts) in [(1, 1.0), (2, 1.0), (3, 0.0)] {
        assert_eq!(
            range.get((row, column(&range, "row"))),
            Some(&Data::Float(row as f64))
        );
        assert_eq!(
            range.get((row, column(&range, "attempts"))),
            Some(&Data::Float(attempts))
        );
    }
    assert_eq!(
        range.get((1, column(&range, "http_status"))),
        Some(&Data::Float(200.0))
    );
    assert_eq!(range.get((3, column(&range, "http_status"))), Some(&Data::Empty));
    assert_eq!(text(&range, 1, "status"), "renewed");
    assert_eq!(text(&range, 3, "status"), "invalid_input");

    // The header row is frozen.
    assert!(
        sheet_xml.contains(r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#),
        "{sheet_xml}"
    );
    // The renewed row's quote URL is a link to itself.
    let url = text(&range, 1, "quote_url");
    assert!(url.contains("RenewalToken="), "{url}");
    let cell = format!("{}2", char::from(b'A' + column(&range, "quote_url") as u8));
    assert!(
        sheet_xml.contains(&format!(r#"<hyperlink ref="{cell}" r:id="rId1"/>"#)),
        "{sheet_xml}"
    );
    let relations = part(&output, "xl/worksheets/_rels/sheet1.xml.rels");
    assert!(
        relations.contains(&format!(r#"Target="{}""#, url.replace('&', "&amp;"))),
        "{relations}"
    );

    // `report` reads the workbook as it reads a CSV.
    let report = run_binary(&["report", &output.display().to_string()], &[]).await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let stdout = report.stdout_text();
    assert!(stdout.contains("rows           3"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|line| line.split_whitespace().take(2).eq(["invalid_input", "1"])),
        "{stdout}"
    );
}

const CONCURRENCY: u64 = 4;
const NOT_RENEWABLE_PERCENT: u8 = 20;

fn resume_command(sandbox: &Sandbox, input: &Path, output: &Path, flags: &[&str]) -> Command {
    let mut command = bihu_command();
    command
        .arg("run")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(sandbox_args(sandbox))
        .args(["--rate", "1000", "--concurrency", &CONCURRENCY.to_string()])
        .args(["--retries", "0"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Waits until the run in progress has written at least `n_rows` complete rows to its
/// `.partial` (a CSV, whatever OUTPUT's name).
async fn wait_for_partial_rows(output: &Path, n_rows: usize) {
    let partial = with_suffix(output, ".partial");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let written = fs::read(&partial).map_or(0, |bytes| {
            bytes.iter().filter(|&&b| b == b'\n').count().saturating_sub(1)
        });
        if written >= n_rows {
            return;
        }
        assert!(Instant::now() < deadline, "only {written} rows after 20 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn finish(child: Child) -> (i32, String) {
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the binary ends within 30 s")
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_xlsx_run_interrupted_then_killed_resumes_into_one_complete_workbook() {
    let sandbox = start_sandbox(SandboxConfig {
        latency: Duration::from_millis(25),
        not_renewable_percent: NOT_RENEWABLE_PERCENT,
        ..SandboxConfig::default()
    })
    .await;
    let plates: Vec<String> = (0..240).map(|i| format!("粤B{i:05}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("leads.csv");
    let mut list = String::from("id,plate\n");
    for (i, plate) in plates.iter().enumerate() {
        list.push_str(&format!("00{i:04},{plate}\n"));
    }
    fs::write(&input, list).unwrap();
    let output = dir.path().join("leads.results.xlsx");

    // Ctrl-C: the rows done so far are a workbook already, beside the journal.
    let child = resume_command(&sandbox, &input, &output, &[]).spawn().unwrap();
    wait_for_partial_rows(&output, 40).await;
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let (code, stderr) = finish(child).await;
    assert_eq!(code, INTERRUPTED, "{stderr}");
    assert!(
        !with_suffix(&output, ".partial").exists(),
        "folded into the workbook"
    );
    let n_first = sheet(&output).height() - 1;
    assert!((40..plates.len()).contains(&n_first), "{n_first} rows");

    // Resumed from the workbook, then killed -9: the workbook stays as it was, the
    // `.partial` and the journal hold the rest.
    let mut child = resume_command(&sandbox, &input, &output, &["--resume"])
        .spawn()
        .unwrap();
    wait_for_partial_rows(&output, n_first + 40).await;
    child.start_kill().unwrap();
    assert_eq!(child.wait().await.unwrap().code(), None, "killed");
    assert_eq!(sheet(&output).height() - 1, n_first, "the workbook is untouched");
    assert!(with_suffix(&output, ".partial").exists());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let n_requests_before = sandbox.stats().requests;

    let (code, stderr) = finish(
        resume_command(&sandbox, &input, &output, &["--resume"])
            .spawn()
            .unwrap(),
    )
    .await;
    assert_eq!(code, OK, "{stderr}");
    for suffix in [".partial", ".journal", ".lock", ".writing", ".merging"] {
        assert!(!with_suffix(&output, suffix).exists(), "{suffix} left behind");
    }
    let range = sheet(&output);
    assert_eq!(range.height() - 1, plates.len());
    for (i, plate) in plates.iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            range.get((n, column(&range, "row"))),
            Some(&Data::Float(n as f64))
        );
        assert_eq!(text(&range, n, "id"), format!("00{i:04}"), "row {n}");
        assert_eq!(text(&range, n, "plate"), *plate);
        let status = text(&range, n, "status");
        match expected_renewal(Some(plate), None, None, "11", NOT_RENEWABLE_PERCENT) {
            Some(token) => {
                assert_eq!(status, "renewed", "row {n}");
                assert_eq!(text(&range, n, "renewal_token"), token, "row {n}");
            }
            None => assert_eq!(status, "not_renewable", "row {n}"),
        }
    }
    // Every vehicle asked once, but for those in flight at the two stops.
    let n_requests = sandbox.stats().requests;
    assert!(
        n_requests <= plates.len() as u64 + 2 * CONCURRENCY,
        "{n_requests} requests for {} rows ({n_requests_before} before the last run)",
        plates.len()
    );
}

/// `leads.csv` and `leads.xlsx` in one folder, each run with the defaults: each gets its own
/// results (`leads.results.csv`, `leads.results.xlsx`) holding its own rows, and so does
/// each dry run; `report` sends each results file back to its own list.
#[tokio::test(flavor = "multi_thread")]
async fn a_csv_and_a_workbook_of_one_name_get_results_of_their_own() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let csv_plates = ["京J97896", "沪A12345", "粤B00001"];
    let xlsx_plates = ["津A11111", "浙A22222"];
    let csv_list = dir.path().join("leads.csv");
    fs::write(&csv_list, format!("plate\n{}\n", csv_plates.join("\n"))).unwrap();
    let xlsx_list = dir.path().join("leads.xlsx");
    let rows: Vec<Vec<String>> = std::iter::once("车牌号")
        .chain(xlsx_plates)
        .map(|cell| vec![cell.to_string()])
        .collect();
    crate::inputs::write_xlsx(&xlsx_list, &rows);
    let run = async |list: &Path, flags: &[&str]| {
        let mut args = vec!["run".to_string(), list.display().to_string()];
        args.extend(flags.iter().map(|flag| flag.to_string()));
        args.extend(sandbox_args(&sandbox));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run_binary(&refs, &[]).await
    };
    let plates_of_csv = |path: &Path| -> Vec<String> {
        crate::support::read_results(path)
            .into_iter()
            .map(|row| row.input[0].clone())
            .collect()
    };
    let plates_of_sheet = |path: &Path| -> Vec<String> {
        let range = sheet(path);
        (1..range.height()).map(|n| text(&range, n, "车牌号")).collect()
    };

    for list in [&csv_list, &xlsx_list] {
        let ran = run(list, &[]).await;
        assert_eq!(ran.code, OK, "{}: {}", list.display(), ran.stderr);
    }
    let csv_results = dir.path().join("leads.results.csv");
    let xlsx_results = dir.path().join("leads.results.xlsx");
    assert_eq!(plates_of_csv(&csv_results), csv_plates);
    assert_eq!(plates_of_sheet(&xlsx_results), xlsx_plates);
    let range = sheet(&xlsx_results);
    for n in 1..range.height() {
        assert_eq!(text(&range, n, "status"), "renewed", "row {n}");
    }
    for results in [&csv_results, &xlsx_results] {
        for suffix in [".partial", ".journal", ".lock"] {
            assert!(!with_suffix(results, suffix).exists(), "{suffix} left behind");
        }
    }

    // The dry runs too; the workbook's then continues into a live run through its own list.
    for list in [&csv_list, &xlsx_list] {
        let ran = run(list, &["--dry-run"]).await;
        assert_eq!(ran.code, OK, "{}: {}", list.display(), ran.stderr);
    }
    let xlsx_dry = dir.path().join("leads.dry-run.xlsx");
    assert_eq!(plates_of_csv(&dir.path().join("leads.dry-run.csv")), csv_plates);
    assert_eq!(plates_of_sheet(&xlsx_dry), xlsx_plates);
    let report = run_binary(&["report", &xlsx_dry.display().to_string()], &[]).await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let retry = format!(
        "bihu-renew run {} -o {} --resume",
        xlsx_list.display(),
        xlsx_dry.display()
    );
    assert!(report.stdout_text().contains(&retry), "{}", report.stdout_text());
    let resumed = run(&xlsx_list, &["-o", &xlsx_dry.display().to_string(), "--resume"]).await;
    assert_eq!(resumed.code, OK, "{}", resumed.stderr);
    let range = sheet(&xlsx_dry);
    assert_eq!(range.height() - 1, xlsx_plates.len());
    for n in 1..range.height() {
        assert_eq!(text(&range, n, "status"), "renewed", "row {n}");
    }
    assert_eq!(
        plates_of_csv(&csv_results),
        csv_plates,
        "the CSV's results untouched"
    );

    // A workbook's results written as CSV, as earlier builds named them: `--resume` without
    // `-o` refuses, and names the `-o` that continues them.
    let old = dir.path().join("old.xlsx");
    fs::copy(&xlsx_list, &old).unwrap();
    let old_results = dir.path().join("old.results.csv");
    let ran = run(&old, &["-o", &old_results.display().to_string()]).await;
    assert_eq!(ran.code, OK, "{}", ran.stderr);
    let n_requests = sandbox.stats().requests;
    let refused = run(&old, &["--resume"]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("pass -o {}", old_results.display())),
        "{}",
        refused.stderr
    );
    assert_eq!(sandbox.stats().requests, n_requests, "nothing sent");
    assert!(!dir.path().join("old.results.xlsx").exists());
}
