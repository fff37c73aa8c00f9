//! The report's unit tests, over results files written here in the format `run` writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use csv::StringRecord;

use super::read::NO_MESSAGE;
use super::retry::retry_command;
use super::*;
use crate::leads::lead::{self, RawLead};
use crate::results::outcome::Status;
use crate::results::output::RESULT_COLUMNS;
use unicode_width::UnicodeWidthStr;

const HEADER: [&str; 5] = ["name", "plate", "vin", "engine_no", "city"];
const NO_RENEWAL: &str = "续保失败 / no renewal data for this vehicle";
const SHORT_PLATE: &str = "plate 京A1234 has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character";
const NO_VEHICLE: &str = "no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo) | no city: the row has no CityCode; add a CityCode column or pass --city-code";
const VIN: &str = "LS4ASE2A2GJ137027";

/// One results row as `run` writes it: the lead's columns ([`HEADER`]), then the outcome.
/// Built from a row number and a name, then the lead's fields, then one of the outcomes.
#[derive(Debug, Clone)]
struct Line {
    name: &'static str,
    plate: &'static str,
    vin: &'static str,
    engine: &'static str,
    city: &'static str,
    row: u64,
    status: Status,
    http_status: Option<u16>,
    message: &'static str,
    token: &'static str,
    attempts: u32,
    answered_at: &'static str,
}

impl Line {
    /// Row `row` of lead `name`, with no vehicle yet and no outcome (`invalid_input`).
    fn new(row: u64, name: &'static str) -> Line {
        Line {
            name,
            plate: "",
            vin: "",
            engine: "",
            city: "",
            row,
            status: Status::InvalidInput,
            http_status: None,
            message: "",
            token: "",
            attempts: 0,
            answered_at: "",
        }
    }

    fn plate(self, plate: &'static str) -> Line {
        Line { plate, ..self }
    }

    /// A VIN with its engine number.
    fn vin(self, vin: &'static str, engine: &'static str) -> Line {
        Line { vin, engine, ..self }
    }

    fn city(self, city: &'static str) -> Line {
        Line { city, ..self }
    }

    fn outcome(self, status: Status, http_status: Option<u16>, message: &'static str, attempts: u32) -> Line {
        Line {
            status,
            http_status,
            message,
            attempts,
            ..self
        }
    }

    fn renewed(self, token: &'static str) -> Line {
        Line {
            token,
            ..self.outcome(Status::Renewed, Some(200), "续保成功", 1)
        }
    }

    fn not_renewable(self) -> Line {
        self.outcome(Status::NotRenewable, Some(206), NO_RENEWAL, 1)
    }

    /// An HTTP error after the four attempts.
    fn server_error(self, http_status: u16, message: &'static str) -> Line {
        self.outcome(Status::ServerError, Some(http_status), message, 4)
    }

    fn transport_error(self, message: &'static str) -> Line {
        self.outcome(Status::TransportError, None, message, 4)
    }

    fn invalid_params(self, message: &'static str) -> Line {
        self.outcome(Status::InvalidParams, Some(412), message, 1)
    }

    /// Rejected before any request.
    fn invalid_input(self, message: &'static str) -> Line {
        self.outcome(Status::InvalidInput, None, message, 0)
    }

    fn message(self, message: &'static str) -> Line {
        Line { message, ..self }
    }

    fn attempts(self, attempts: u32) -> Line {
        Line { attempts, ..self }
    }

    fn answered_at(self, answered_at: &'static str) -> Line {
        Line { answered_at, ..self }
    }
}

/// Today's run: every status class, a duplicate, a VIN-only lead, two rejected rows.
fn current_rows() -> Vec<Line> {
    vec![
        Line::new(1, "A").plate("京J97896").renewed("T1"),
        Line::new(2, "B").plate("粤B12345").not_renewable(),
        Line::new(3, "C")
            .plate("沪A12345")
            .server_error(500, "HTTP 500: busy"),
        Line::new(4, "D").plate("京A1234").invalid_input(SHORT_PLATE),
        Line::new(5, "E")
            .plate(" 京j97896")
            .city("1")
            .renewed("T1")
            .message("same vehicle as row 1: 续保成功")
            .attempts(0),
        Line::new(6, "F").invalid_input(NO_VEHICLE),
        Line::new(7, "G")
            .vin(VIN, "2192209")
            .city("北京")
            .renewed("T7")
            .attempts(2),
        Line::new(8, "H")
            .plate("苏A11111")
            .transport_error("timed out after 30s"),
        Line::new(9, "I").plate("粤B22222").not_renewable(),
        Line::new(10, "J").plate("沪B54321").invalid_params("参数错误"),
        Line::new(11, "K").plate("京A88888").renewed("T11").attempts(3),
    ]
}

/// Yesterday's run, made so that every change category occurs.
fn previous_rows() -> Vec<Line> {
    vec![
        Line::new(1, "A").plate("京J97896").renewed("T1"),
        Line::new(2, "B").plate("粤B12345").renewed("T2"),
        Line::new(3, "C")
            .plate("沪A12345")
            .server_error(502, "HTTP 502: bad gateway"),
        Line::new(4, "D").plate("京A1234").invalid_input(SHORT_PLATE),
        Line::new(5, "L").plate("津A12345").renewed("T5"),
        Line::new(6, "F").invalid_input(NO_VEHICLE),
        Line::new(7, "G").vin(VIN, "2192209").city("北京").renewed("T0"),
        Line::new(8, "H").plate("苏A11111").not_renewable(),
        Line::new(9, "I")
            .plate("粤B22222")
            .server_error(500, "HTTP 500: busy"),
        Line::new(10, "M")
            .plate("京A88888")
            .server_error(500, "HTTP 500: busy"),
    ]
}

/// Writes `lines` in the format of `output::ResultWriter`: the input's columns, then the
/// result columns, written by the csv crate's default writer.
fn write_results(path: &Path, lines: &[Line]) {
    write_results_with(path, lines, &RESULT_COLUMNS);
}

/// [`write_results`] with these result columns: all of them, or an older build's, which
/// lacked `answered_at` (the last).
fn write_results_with(path: &Path, lines: &[Line], columns: &[&str]) {
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(HEADER.iter().chain(columns)).unwrap();
    for line in lines {
        let quote_url = if line.token.is_empty() {
            String::new()
        } else {
            format!("http://q/?RenewalToken={}", line.token)
        };
        let lead = [line.name, line.plate, line.vin, line.engine, line.city].map(str::to_string);
        let result = [
            line.row.to_string(),
            line.status.as_str().to_string(),
            line.http_status.map_or_else(String::new, |s| s.to_string()),
            line.message.to_string(),
            line.token.to_string(),
            quote_url,
            line.attempts.to_string(),
            String::new(),
            line.answered_at.to_string(),
        ];
        let result = result.into_iter().take(columns.len());
        writer.write_record(lead.into_iter().chain(result)).unwrap();
    }
    writer.flush().unwrap();
}

fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("leads.results.csv");
    let previous = dir.path().join("yesterday.results.csv");
    write_results(&current, &current_rows());
    write_results(&previous, &previous_rows());
    (dir, current, previous)
}

#[test]
fn every_figure_of_the_fixture() {
    let (_dir, current, _) = fixture();
    let report = Report::build(std::slice::from_ref(&current), None, None).unwrap();
    assert_eq!(report.rows, 11);
    assert_eq!(report.vehicles, 10, "rows 1 and 5 are the same vehicle");
    let counts: Vec<String> = report
        .by_status
        .iter()
        .filter(|(_, f)| f.rows > 0)
        .map(|(s, f)| format!("{s} {}", f.rows))
        .collect();
    assert_eq!(
        counts.join(", "),
        "renewed 4, not_renewable 2, invalid_params 1, invalid_input 2, server_error 1, transport_error 1"
    );
    assert_eq!(report.by_status.len(), Status::ALL.len(), "zeros listed too");
    assert_eq!(report.by_status[&Status::Renewed].share, 4.0 / 11.0);
    assert_eq!(report.by_status[&Status::Unauthorized].share, 0.0);
    assert_eq!(report.reached_api, 8);
    assert_eq!(report.renewal_rate, Some(0.5));

    let cities: Vec<(Option<u8>, &str, [u64; 4])> = report
        .by_city
        .iter()
        .map(|c| {
            (
                c.city_id,
                c.city.as_str(),
                [c.rows, c.renewed, c.not_renewable, c.failed],
            )
        })
        .collect();
    assert_eq!(
        cities,
        [
            (Some(1), "北京", [4, 4, 0, 0]),
            (Some(6), "上海", [2, 0, 0, 2]),
            (Some(8), "南京", [1, 0, 0, 1]),
            (Some(11), "深圳", [2, 0, 2, 0]),
            (None, "unknown", [2, 0, 0, 2]),
        ]
    );

    let reasons: Vec<(u64, Status, &str)> = report
        .reasons
        .iter()
        .map(|r| (r.rows, r.status, r.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (2, Status::NotRenewable, NO_RENEWAL),
            (1, Status::InvalidParams, "参数错误"),
            (
                1,
                Status::InvalidInput,
                "no city: the row has no CityCode; add a CityCode column or pass --city-code"
            ),
            (
                1,
                Status::InvalidInput,
                "no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo)"
            ),
            (
                1,
                Status::InvalidInput,
                "plate … has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character"
            ),
            (1, Status::ServerError, "HTTP 500: busy"),
            (1, Status::TransportError, "timed out after 30s"),
        ]
    );

    assert_eq!(
        report.attempts,
        BTreeMap::from([(0, 3), (1, 4), (2, 1), (3, 1), (4, 2)])
    );
    assert_eq!(report.retry.rows, 2);
    let command = &report.retry.commands[0];
    assert_eq!(command.rows, 2);
    let input = current.with_file_name("leads.csv");
    assert_eq!(
        command.input_guess.as_deref(),
        Some(&*input.display().to_string())
    );
    assert!(!command.input_guess_exists);
    assert_eq!(
        command.command,
        format!(
            "bihu-renew run {} -o {} --resume",
            input.display(),
            current.display()
        )
    );
    assert_eq!(report.attention.rows, 5);
    let attention: Vec<(u64, &str, &str)> = report
        .attention
        .listed
        .iter()
        .map(|r| (r.row, r.vehicle.as_str(), r.city.as_str()))
        .collect();
    assert_eq!(
        attention,
        [
            (3, "沪A12345", "上海 (6)"),
            (4, "京A1234", "unknown"),
            (6, "row 6", "unknown"),
            (8, "苏A11111", "南京 (8)"),
            (10, "沪B54321", "上海 (6)"),
        ]
    );
    assert!(report.against.is_none());
    assert!(report.notes.is_empty());
}

#[test]
fn against_tells_the_earlier_runs_own_answer_from_a_fresh_one_and_reads_files_without_answered_at() {
    let dir = tempfile::tempdir().unwrap();
    let (previous, current) = (dir.path().join("monday.csv"), dir.path().join("tuesday.csv"));
    let monday = "2026-11-30T09:00:00+00:00";
    write_results(
        &previous,
        &[
            Line::new(1, "A")
                .plate("京A11111")
                .renewed("T1")
                .answered_at(monday),
            Line::new(2, "B")
                .plate("京A22222")
                .not_renewable()
                .answered_at(monday),
            Line::new(3, "C")
                .plate("京A33333")
                .renewed("T3")
                .answered_at(monday),
        ],
    );
    write_results(
        &current,
        &[
            // Reused from the history: Monday's answer, no request.
            Line::new(1, "A")
                .plate("京A11111")
                .renewed("T1")
                .attempts(0)
                .answered_at(monday),
            // Asked again on Tuesday (the same offset written another way is the same time).
            Line::new(2, "B")
                .plate("京A22222")
                .not_renewable()
                .answered_at("2026-12-01T17:00:00+08:00"),
            Line::new(3, "C").plate("京A33333").renewed("T3"),
        ],
    );
    let report = Report::build(std::slice::from_ref(&current), Some(&previous), None).unwrap();
    let comparison = report.against.as_ref().unwrap();
    assert_eq!((comparison.same_answer, comparison.answered_again), (1, 1));
    assert!(
        report.to_string().contains(
            "answers: 1 the earlier run's own (reused, the same answered_at), 1 answered again since"
        ),
        "{report}"
    );
    let html = report.to_html();
    assert!(html.contains(r#"<span class="same-answer">1</span>"#), "{html}");

    // A file of an older build, without the column, is read with no times.
    let older = dir.path().join("older.csv");
    write_results_with(
        &older,
        &previous_rows(),
        &RESULT_COLUMNS[..RESULT_COLUMNS.len() - 1],
    );
    let report = Report::build(std::slice::from_ref(&older), Some(&previous), None).unwrap();
    assert_eq!(report.rows, 10);
    let comparison = report.against.as_ref().unwrap();
    assert_eq!((comparison.same_answer, comparison.answered_again), (0, 0));
    assert!(!report.to_string().contains("answers:"));
}

#[test]
fn every_change_category_against_the_earlier_run() {
    let (_dir, current, previous) = fixture();
    let report = Report::build(std::slice::from_ref(&current), Some(&previous), None).unwrap();
    let comparison = report.against.as_ref().unwrap();
    assert_eq!(comparison.previous_rows, 10);
    assert_eq!(comparison.previous_vehicles, 10);
    let counts: Vec<String> = comparison
        .counts
        .iter()
        .map(|(change, n)| format!("{} {n}", change.as_str()))
        .collect();
    assert_eq!(
        counts.join(", "),
        "newly_renewed 1, no_longer_renewable 1, now_failing 1, renewal_token_changed 1, \
         now_not_renewable 1, new_lead 1, disappeared 1, still_failing 3, unchanged 1"
    );
    let changed: Vec<(Change, &str)> = comparison
        .changed
        .iter()
        .map(|c| (c.change, c.vehicle.as_str()))
        .collect();
    assert_eq!(
        changed,
        [
            (Change::NewlyRenewed, "京A88888"),
            (Change::NoLongerRenewable, "粤B12345"),
            (Change::NowFailing, "苏A11111"),
            (Change::RenewalTokenChanged, VIN),
            (Change::NowNotRenewable, "粤B22222"),
            (Change::NewLead, "沪B54321"),
            (Change::Disappeared, "津A12345"),
        ]
    );
    let token = &comparison.changed[3];
    assert_eq!(token.previous.as_ref().unwrap().renewal_token, "T0");
    assert_eq!(token.current.as_ref().unwrap().renewal_token, "T7");
    assert_eq!(token.city, "北京 (1)");
    assert!(comparison.changed[5].previous.is_none());
    assert!(comparison.changed[6].current.is_none());
    assert_eq!(comparison.changed[6].previous.as_ref().unwrap().row, 5);

    let mut csv_bytes = Vec::new();
    comparison
        .write_changes_csv(&mut csv_bytes, crate::results::formula::FormulaGuard::default())
        .unwrap();
    assert!(
        csv_bytes.starts_with("\u{feff}change,".as_bytes()),
        "a BOM, for Excel"
    );
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    assert_eq!(reader.headers().unwrap(), &CHANGES_COLUMNS[..]);
    let rows: Vec<StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 7, "still failing is no change");
    assert_eq!(
        rows[1].iter().collect::<Vec<_>>(),
        [
            "no_longer_renewable",
            "粤B12345",
            "深圳 (11)",
            "2",
            "renewed",
            "续保成功",
            "T2",
            &*current.display().to_string(),
            "2",
            "not_renewable",
            NO_RENEWAL,
            "",
        ]
    );
}

#[test]
fn change_table() {
    use Change::*;
    use Status::*;
    let renewed = |token| Some((Renewed, token));
    let got = |status| Some((status, ""));
    let cases = [
        (None, renewed("T"), NewLead),
        (renewed("T"), None, Disappeared),
        (got(ServerError), renewed("T"), NewlyRenewed),
        (got(NotRenewable), renewed("T"), NewlyRenewed),
        (renewed("T"), renewed("T"), Unchanged),
        (renewed("T"), renewed("U"), RenewalTokenChanged),
        (renewed("T"), got(NotRenewable), NoLongerRenewable),
        (renewed("T"), got(ServerError), NowFailing),
        (got(InvalidInput), got(TransportError), StillFailing),
        (got(NotRenewable), got(NotRenewable), Unchanged),
        (got(NotRenewable), got(ServerError), NowFailing),
        (got(ServerError), got(NotRenewable), NowNotRenewable),
    ];
    for (previous, current, expected) in cases {
        assert_eq!(
            Change::between(previous, current),
            expected,
            "{previous:?} -> {current:?}"
        );
    }
}

#[test]
fn the_more_decided_row_speaks_for_a_vehicle_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.results.csv");
    let retry = dir.path().join("b.results.csv");
    write_results(
        &first,
        &[Line::new(1, "A")
            .plate("京J97896")
            .server_error(500, "HTTP 500: x")],
    );
    write_results(
        &retry,
        &[Line::new(1, "A").plate("京J97896").renewed("T").message("ok")],
    );
    let report = Report::build(&[first.clone(), retry.clone()], Some(&first), None).unwrap();
    assert_eq!(report.rows, 2);
    assert_eq!(report.vehicles, 1);
    assert_eq!(report.files.iter().map(|f| f.rows).collect::<Vec<_>>(), [1, 1]);
    let comparison = report.against.unwrap();
    assert_eq!(comparison.count(Change::NewlyRenewed), 1);
    assert_eq!(
        comparison.changed[0].current.as_ref().unwrap().file,
        retry.display().to_string()
    );
    assert_eq!(
        report.retry.commands.len(),
        1,
        "only the first file has rows to retry"
    );
    assert_eq!(report.retry.commands[0].results, first.display().to_string());
}

#[test]
fn reasons_are_generalised() {
    let raw = RawLead {
        plate: " 京a1234 ",
        vin: "ls4ase2a2gj13702",
        engine: " 99X ",
        city: "拉萨",
    };
    assert_eq!(
        reasons_of(
            Status::InvalidInput,
            "plate 京A1234 has 6 characters | VIN LS4ASE2A2GJ13702 has 16 characters | city 拉萨 is not a Bihu city",
            &raw
        ),
        [
            "plate … has 6 characters",
            "VIN … has 16 characters",
            "city … is not a Bihu city"
        ]
    );
    assert_eq!(
        reasons_of(Status::NotRenewable, "same vehicle as row 12: 续保失败", &raw),
        ["续保失败"]
    );
    assert_eq!(
        reasons_of(Status::ServerError, "same vehicle as row x: kept", &raw),
        ["same vehicle as row x: kept"]
    );
    assert_eq!(
        reasons_of(
            Status::InvalidInput,
            "the row has 4 fields but the header has 3 (an unquoted comma?); extra fields: a | b",
            &raw
        ),
        ["the row has 4 fields but the header has 3 (an unquoted comma?); extra fields: …"]
    );
    assert_eq!(reasons_of(Status::ProtocolError, " ", &raw), [NO_MESSAGE]);
}

#[test]
fn vehicles_that_do_not_validate_are_told_apart_by_plate_vin_or_row() {
    let raw = |plate, vin| RawLead {
        plate,
        vin,
        ..Default::default()
    };
    let by_plate = identify(&raw("京A1234", ""), None, 0, 4);
    assert_eq!(by_plate.label, "京A1234");
    assert_eq!(by_plate.city, None);
    assert_eq!(
        by_plate,
        identify(&raw(" 京a-1234", ""), None, 1, 9),
        "normalised, row ignored"
    );
    let by_vin = identify(&raw("", "ls4ase2a2gj13702"), None, 0, 4);
    assert_eq!(by_vin.label, "LS4ASE2A2GJ13702");
    let by_row = identify(&raw("", ""), None, 0, 4);
    assert_eq!(by_row.label, "row 4");
    assert_ne!(by_row.fingerprint, identify(&raw("", ""), None, 1, 4).fingerprint);
    assert_ne!(by_row.fingerprint, identify(&raw("", ""), None, 0, 5).fingerprint);
    let rejected_with_city = RawLead {
        city: "1",
        ..raw("京A1234", "")
    };
    let rejected = identify(&rejected_with_city, None, 0, 4);
    assert_eq!(
        rejected.city.map(|c| c.id),
        Some(1),
        "a city id counts (issue 16)"
    );
    assert_eq!(rejected.fingerprint, by_plate.fingerprint);
    let valid = identify(&raw("京J97896", ""), None, 0, 1);
    assert_eq!(valid.city.map(|c| c.id), Some(1));
    let lead = lead::validate(&raw("京J97896", ""), None).unwrap();
    assert_eq!(
        valid.fingerprint,
        lead.key().fingerprint(),
        "as run de-duplicates"
    );
}

#[test]
fn headers_in_english_or_chinese_and_what_is_missing() {
    let header = |names: &[&str]| StringRecord::from(names.to_vec());
    let mut english = vec!["\u{feff}plate"];
    english.extend(RESULT_COLUMNS);
    assert_eq!(result_headers(&header(&english)), Ok(ResultHeaders::English));
    let mut chinese = vec!["车牌号"];
    chinese.extend(RESULT_COLUMNS_ZH);
    assert_eq!(result_headers(&header(&chinese)), Ok(ResultHeaders::Chinese));
    let problem = result_headers(&header(&["name", "plate", "row", "status"])).unwrap_err();
    assert!(
        problem.contains(
            "lacks the result columns http_status, message, renewal_token, quote_url, attempts, warnings"
        ),
        "{problem}"
    );
    assert!(
        problem.contains("Its header is: name,plate,row,status"),
        "{problem}"
    );
    let problem = result_headers(&header(&["车牌号", "状态"])).unwrap_err();
    assert!(
        problem.contains("lacks the result columns 行号, HTTP状态"),
        "{problem}"
    );
    let mut shuffled = vec!["plate"];
    shuffled.extend(RESULT_COLUMNS.iter().rev());
    let problem = result_headers(&header(&shuffled)).unwrap_err();
    assert!(problem.contains("not as the last 8 columns"), "{problem}");
}

#[test]
fn retry_commands_guess_the_input_and_quote_paths() {
    assert_eq!(
        guess_input(Path::new("/d/leads.results.csv")),
        Some(PathBuf::from("/d/leads.csv"))
    );
    assert_eq!(guess_input(Path::new("/d/out.csv")), None);
    assert_eq!(guess_input(Path::new("/d/.results.csv")), None);
    // Nothing there: the list of the results' own kind, as `run` names its default OUTPUT.
    assert_eq!(
        guess_input(Path::new("/d/leads.results.xlsx")),
        Some(PathBuf::from("/d/leads.xlsx"))
    );
    assert_eq!(
        guess_input(Path::new("/d/leads.dry-run.CSV")),
        Some(PathBuf::from("/d/leads.csv"))
    );
    // Both lists there: each results file goes back to its own.
    let dir = tempfile::tempdir().unwrap();
    let in_dir = |name: &str| dir.path().join(name);
    std::fs::write(in_dir("leads.csv"), "plate\n").unwrap();
    std::fs::write(in_dir("leads.xlsx"), "").unwrap();
    assert_eq!(
        guess_input(&in_dir("leads.results.csv")),
        Some(in_dir("leads.csv"))
    );
    assert_eq!(
        guess_input(&in_dir("leads.results.xlsx")),
        Some(in_dir("leads.xlsx"))
    );
    assert_eq!(
        guess_input(&in_dir("leads.dry-run.xlsx")),
        Some(in_dir("leads.xlsx"))
    );
    // Only the other kind there (an `-o`, or an older build's CSV results of a workbook).
    std::fs::write(in_dir("old.xls"), "").unwrap();
    std::fs::write(in_dir("exported.csv"), "plate\n").unwrap();
    assert_eq!(guess_input(&in_dir("old.results.csv")), Some(in_dir("old.xls")));
    assert_eq!(
        guess_input(&in_dir("exported.results.xlsx")),
        Some(in_dir("exported.csv"))
    );
    let command = retry_command(Path::new("/my dir/客户's.results.csv"), 3);
    // The words a POSIX shell would split the line into: the paths come back whole.
    assert_eq!(
        shlex::split(&command.command).unwrap(),
        [
            "bihu-renew",
            "run",
            "/my dir/客户's.csv",
            "-o",
            "/my dir/客户's.results.csv",
            "--resume"
        ]
    );
    let command = retry_command(Path::new("/d/$HOME `x`.results.csv"), 1);
    assert_eq!(
        shlex::split(&command.command).unwrap()[2],
        "/d/$HOME `x`.csv",
        "{}",
        command.command
    );
    let command = retry_command(Path::new("out.csv"), 1);
    assert_eq!(command.command, "bihu-renew run LEADS.csv -o out.csv --resume");
    assert_eq!(command.input_guess, None);
}

#[test]
fn cut_and_foreign_lines_are_left_out_and_noted() {
    let (dir, current, _) = fixture();
    let text = std::fs::read_to_string(&current).unwrap();
    let cut = dir.path().join("cut.results.csv");
    // The first three rows whole, then half of the fourth: an interrupted `.partial`.
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut prefix = lines[..4].concat();
    prefix.push_str(&lines[4][..lines[4].len() / 2]);
    std::fs::write(&cut, prefix).unwrap();
    let report = Report::build(&[cut], None, None).unwrap();
    assert_eq!(report.rows, 3);
    assert_eq!(report.files[0].skipped_lines, 1);
    assert_eq!(report.notes.len(), 1);
    assert!(report.notes[0].contains("line 5"), "{:?}", report.notes);
}

#[test]
fn terminal_and_html_carry_the_figures() {
    let (_dir, current, previous) = fixture();
    let report = Report::build(std::slice::from_ref(&current), Some(&previous), None).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("renewal rate   50.0% (4 renewed of 8 rows that reached the API)"),
        "{text}"
    );
    let words = |start: &str| -> Vec<String> {
        let line = text.lines().find(|line| line.trim_start().starts_with(start));
        let line = line.unwrap_or_else(|| panic!("no line {start:?} in\n{text}"));
        line[line.find(start).unwrap() + start.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(words("北京 (1)"), ["4", "4", "0", "0"]);
    assert_eq!(words("unknown"), ["2", "0", "0", "2"]);
    assert_eq!(words("renewed "), ["4", "36.4%"]);
    assert_eq!(words("still failing"), ["3"]);
    assert_eq!(words("RenewalToken changed"), ["1"]);
    // Wide characters take two columns: the numbers line up under the header.
    let header = text.lines().find(|line| line.starts_with("  city ")).unwrap();
    let beijing = text.lines().find(|line| line.contains("北京 (1)")).unwrap();
    assert_eq!(header.width(), beijing.width());
    let html = report.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"));
}

#[test]
fn an_empty_or_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(
        Report::build(&[empty], None, None),
        Err(ReportError::Empty { .. })
    ));
    let leads = dir.path().join("leads.csv");
    std::fs::write(&leads, "name,plate\nA,京J97896\n").unwrap();
    let error = Report::build(&[leads], None, None).unwrap_err();
    assert!(matches!(error, ReportError::NotResults { .. }));
    assert!(
        error.to_string().contains("lacks the result columns row, status"),
        "{error}"
    );
}

#[test]
fn a_file_against_itself_shows_no_change() {
    let (_dir, current, _) = fixture();
    let report = Report::build(std::slice::from_ref(&current), Some(&current), None).unwrap();
    let comparison = report.against.unwrap();
    assert!(comparison.changed.is_empty(), "{:?}", comparison.changed);
    assert_eq!(comparison.count(Change::StillFailing), 5);
    assert_eq!(comparison.count(Change::Unchanged), 5);
}
