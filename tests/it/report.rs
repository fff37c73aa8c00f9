//! `bihu-renew report` (issue 7) through the binary: results files written by hand in the
//! format `run` writes (plain, with a BOM, with Chinese result headers, cut off mid-line),
//! and the terminal summary, the JSON, the HTML page (parsed) and the changes CSV read back.

use std::path::{Path, PathBuf};

use scraper::{Html, Selector};
use serde_json::Value;
use tempfile::TempDir;

use crate::support::{BinOutput, run_binary};

const HEADER: &str = "name,plate,vin,engine_no,city,row,status,http_status,message,renewal_token,quote_url,attempts,warnings\n";
const HEADER_ZH: &str =
    "name,plate,vin,engine_no,city,行号,状态,HTTP状态,消息,续保令牌,报价链接,尝试次数,警告\n";

/// Today's run: every status class, a duplicate (rows 1 and 5), a VIN-only lead, two rejected
/// rows (one by plate, one with no vehicle at all), and a message with markup in it.
const TODAY: &str = "\
A,京J97896,,,,1,renewed,200,续保成功,T1,http://q/?Token=t&RenewalToken=T1,1,
B,粤B12345,,,,2,not_renewable,206,续保失败 / no renewal data for this vehicle,,,1,
C,沪A12345,,,,3,server_error,500,HTTP 500: busy,,,4,
D,京A1234,,,,4,invalid_input,,\"plate 京A1234 has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character\",,,0,
E, 京j97896,,,1,5,renewed,200,same vehicle as row 1: 续保成功,T1,http://q/?Token=t&RenewalToken=T1,0,
F,,,,,6,invalid_input,,no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo) | no city: the row has no CityCode; add a CityCode column or pass --city-code,,,0,
G,,LS4ASE2A2GJ137027,2192209,北京,7,renewed,200,续保成功,T7,http://q/?Token=t&RenewalToken=T7,2,
H,苏A11111,,,,8,transport_error,,timed out after 30s,,,4,
I,粤B22222,,,,9,not_renewable,206,续保失败 / no renewal data for this vehicle,,,1,
J,沪B54321,,,,10,invalid_params,412,\"参数错误: <b>CityCode</b> & \"\"x\"\"\",,,1,
K,京A88888,,,,11,renewed,200,续保成功,T11,http://q/?Token=t&RenewalToken=T11,3,\"one warning, with a comma | two\"
";

/// Yesterday's run, made so that every change category occurs against [`TODAY`].
const YESTERDAY: &str = "\
A,京J97896,,,,1,renewed,200,续保成功,T1,http://q/?RenewalToken=T1,1,
B,粤B12345,,,,2,renewed,200,续保成功,T2,http://q/?RenewalToken=T2,1,
C,沪A12345,,,,3,server_error,502,HTTP 502: bad gateway,,,4,
D,京A1234,,,,4,invalid_input,,\"plate 京A1234 has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character\",,,0,
L,津A12345,,,,5,renewed,200,续保成功,T5,http://q/?RenewalToken=T5,1,
F,,,,,6,invalid_input,,no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo) | no city: the row has no CityCode; add a CityCode column or pass --city-code,,,0,
G,,LS4ASE2A2GJ137027,2192209,北京,7,renewed,200,续保成功,T0,http://q/?RenewalToken=T0,1,
H,苏A11111,,,,8,not_renewable,206,续保失败 / no renewal data for this vehicle,,,1,
I,粤B22222,,,,9,server_error,500,HTTP 500: busy,,,4,
M,京A88888,,,,10,server_error,500,HTTP 500: busy,,,4,
";

const J_MESSAGE: &str = "参数错误: <b>CityCode</b> & \"x\"";

/// A work dir holding results files.
struct Work {
    dir: TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn report(&self, args: &[&str]) -> BinOutput {
        let mut full = vec!["report"];
        full.extend(args);
        run_binary(&full, &[]).await
    }

    /// `report FILES --json r.json --html r.html`, which must succeed.
    async fn report_to_json_and_html(&self, files: &[&Path]) -> BinOutput {
        let mut args: Vec<String> = files.iter().map(|path| path.display().to_string()).collect();
        args.extend([
            "--json".into(),
            self.arg("r.json"),
            "--html".into(),
            self.arg("r.html"),
        ]);
        let out = self
            .report(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .await;
        succeeded(&out);
        out
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

#[track_caller]
fn succeeded(output: &BinOutput) {
    assert_eq!(
        output.code,
        0,
        "stderr: {}\nstdout: {}",
        output.stderr,
        output.stdout_text()
    );
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("the report is JSON")
}

/// The `rows` of every entry of a JSON array or object, added up.
#[track_caller]
fn total_rows(entries: &Value) -> u64 {
    let rows = |entry: &Value| entry["rows"].as_u64().unwrap();
    match entries {
        Value::Array(entries) => entries.iter().map(rows).sum(),
        Value::Object(entries) => entries.values().map(rows).sum(),
        other => panic!("not a list: {other}"),
    }
}

fn html(path: &Path) -> Html {
    Html::parse_document(&std::fs::read_to_string(path).expect("the HTML is UTF-8"))
}

/// The text of every element `selector` matches, whitespace trimmed.
fn texts(doc: &Html, selector: &str) -> Vec<String> {
    let selector = Selector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
    doc.select(&selector)
        .map(|element| element.text().collect::<String>().trim().to_string())
        .collect()
}

#[track_caller]
fn text(doc: &Html, selector: &str) -> String {
    let found = texts(doc, selector);
    assert_eq!(found.len(), 1, "{selector} matches {found:?}");
    found.into_iter().next().unwrap()
}

/// The words after `start` on the first line of `text` that starts with it (indent aside).
#[track_caller]
fn words_after(text: &str, start: &str) -> Vec<String> {
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line {start:?} in\n{text}"));
    let rest = &line.trim_start()[start.len()..];
    rest.split_whitespace().map(str::to_string).collect()
}

#[tokio::test]
async fn terminal_json_and_html_carry_the_same_figures() {
    let work = Work::new();
    let results = work.write("today.results.csv", format!("{HEADER}{TODAY}"));
    let out = work.report_to_json_and_html(&[&results]).await;

    // Terminal, on stdout.
    let terminal = out.stdout_text();
    assert_eq!(words_after(&terminal, "rows"), ["11"]);
    assert_eq!(words_after(&terminal, "vehicles"), ["10", "distinct"]);
    assert_eq!(words_after(&terminal, "reached API"), ["8", "rows"]);
    assert_eq!(words_after(&terminal, "renewal rate")[0], "50.0%");
    assert_eq!(words_after(&terminal, "renewed "), ["4", "36.4%"]);
    assert_eq!(words_after(&terminal, "invalid_input"), ["2", "18.2%"]);
    assert_eq!(words_after(&terminal, "北京 (1)"), ["4", "4", "0", "0"]);
    assert_eq!(words_after(&terminal, "上海 (6)"), ["2", "0", "0", "2"]);
    assert_eq!(words_after(&terminal, "unknown"), ["2", "0", "0", "2"]);
    assert!(
        terminal.lines().any(|line| {
            line.split_whitespace().collect::<Vec<_>>().join(" ")
                == "2 not_renewable 续保失败 / no renewal data for this vehicle"
        }),
        "{terminal}"
    );
    assert!(
        terminal.contains(&format!(
            "bihu-renew run {} -o {} --resume",
            work.arg("today.csv"),
            results.display()
        )),
        "{terminal}"
    );
    assert!(terminal.contains("is a guess"), "{terminal}");
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);

    // JSON.
    let json = read_json(&work.path("r.json"));
    assert_eq!(json["rows"], 11);
    assert_eq!(json["vehicles"], 10);
    assert_eq!(json["reached_api"], 8);
    assert_eq!(json["renewal_rate"], 0.5);
    assert_eq!(json["by_status"]["renewed"]["rows"], 4);
    let share = json["by_status"]["renewed"]["share"].as_f64().unwrap();
    assert!((share - 4.0 / 11.0).abs() < 1e-12, "{share}");
    assert_eq!(json["by_status"]["unauthorized"]["rows"], 0);
    assert_eq!(total_rows(&json["by_status"]), 11);
    let cities: Vec<(Value, u64, u64, u64, u64)> = json["by_city"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let n = |key: &str| c[key].as_u64().unwrap();
            (
                c["city_id"].clone(),
                n("rows"),
                n("renewed"),
                n("not_renewable"),
                n("failed"),
            )
        })
        .collect();
    assert_eq!(
        cities,
        [
            (Value::from(1), 4, 4, 0, 0),
            (Value::from(6), 2, 0, 0, 2),
            (Value::from(8), 1, 0, 0, 1),
            (Value::from(11), 2, 0, 2, 0),
            (Value::Null, 2, 0, 0, 2),
        ]
    );
    assert_eq!(json["by_city"][0]["city"], "北京");
    assert_eq!(
        json["attempts"],
        serde_json::json!({"0": 3, "1": 4, "2": 1, "3": 1, "4": 2})
    );
    let reasons = json["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 7);
    assert_eq!(reasons[0]["status"], "not_renewable");
    assert_eq!(reasons[0]["rows"], 2);
    assert!(reasons.iter().any(|r| r["reason"] == J_MESSAGE));
    assert!(
        reasons.iter().any(|r| r["reason"]
            .as_str()
            .unwrap()
            .starts_with("plate … has 6 characters")),
        "the row's own plate is generalised away: {reasons:?}"
    );
    assert_eq!(json["retry"]["rows"], 2);
    assert_eq!(json["retry"]["commands"][0]["input_guess"], work.arg("today.csv"));
    assert_eq!(json["retry"]["commands"][0]["input_guess_exists"], false);
    assert_eq!(json["attention"]["rows"], 5);
    let attention: Vec<u64> = json["attention"]["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(attention, [3, 4, 6, 8, 10]);
    assert_eq!(json["against"], Value::Null);

    // HTML, parsed.
    let page = std::fs::read_to_string(work.path("r.html")).unwrap();
    let doc = html(&work.path("r.html"));
    assert_eq!(
        doc.select(&Selector::parse("meta[charset]").unwrap())
            .next()
            .and_then(|m| m.value().attr("charset")),
        Some("utf-8")
    );
    for external in [
        "script", "link", "img", "iframe", "object", "embed", "[src]", "[href]",
    ] {
        assert!(texts(&doc, external).is_empty(), "the page has {external}");
    }
    assert!(!page.contains("url("), "no external resource in the CSS");
    assert!(page.contains("size:A4"), "prints on A4");
    assert_eq!(text(&doc, "[data-figure=rows] dd"), "11");
    assert_eq!(text(&doc, "[data-figure=vehicles] dd"), "10");
    assert_eq!(text(&doc, "[data-figure=reached_api] dd"), "8");
    assert_eq!(text(&doc, "[data-figure=renewal_rate] dd"), "50.0%");
    assert_eq!(text(&doc, "[data-figure=retry] dd"), "2");
    assert_eq!(text(&doc, "[data-figure=attention] dd"), "5");
    assert_eq!(text(&doc, "#by-status tr[data-status=renewed] td.rows"), "4");
    assert_eq!(text(&doc, "#by-status tr[data-status=renewed] td.share"), "36.4%");
    assert_eq!(texts(&doc, "#by-status tbody tr").len(), 6, "statuses with rows");
    let bar: u64 = doc
        .select(&Selector::parse("svg#outcome-bar rect[data-rows]").unwrap())
        .map(|rect| rect.value().attr("data-rows").unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(bar, 11, "the outcome bar covers every row");
    let beijing = "#by-city tr[data-city-id='1'] td";
    assert_eq!(texts(&doc, beijing), ["北京 (1)", "4", "4", "0", "0"]);
    assert_eq!(
        texts(&doc, "#by-city tr[data-city=unknown] td"),
        ["unknown", "2", "0", "0", "2"]
    );
    assert_eq!(texts(&doc, "svg#city-chart g[data-city]").len(), 5);
    assert_eq!(
        texts(
            &doc,
            "svg#city-chart g[data-city='深圳 (11)'] rect[data-part=not_renewable]"
        )
        .len(),
        1
    );
    let reasons = texts(&doc, "#reasons td.reason");
    assert!(
        reasons.contains(&J_MESSAGE.to_string()),
        "escaped, not markup: {reasons:?}"
    );
    assert!(
        texts(&doc, "#reasons b").is_empty(),
        "text from the file is never markup"
    );
    assert_eq!(texts(&doc, "#attempts tr[data-attempts='4'] td.rows"), ["2"]);
    assert_eq!(texts(&doc, "#attention tbody tr").len(), 5);
    assert_eq!(
        texts(&doc, "#attention tbody tr td.row"),
        ["3", "4", "6", "8", "10"]
    );
    assert!(text(&doc, "#retry code.command").ends_with("--resume"));
    assert!(
        texts(&doc, "#changes").is_empty(),
        "no change table without --against"
    );
}

#[tokio::test]
async fn against_an_earlier_run_counts_and_lists_every_change() {
    let work = Work::new();
    work.write("today.results.csv", format!("{HEADER}{TODAY}"));
    work.write("yesterday.results.csv", format!("{HEADER}{YESTERDAY}"));
    let out = work
        .report(&[
            &work.arg("today.results.csv"),
            "--against",
            &work.arg("yesterday.results.csv"),
            "--changes",
            &work.arg("changes.csv"),
            "--json",
            &work.arg("r.json"),
            "--html",
            &work.arg("r.html"),
        ])
        .await;
    succeeded(&out);
    let expected = [
        ("newly_renewed", "newly renewed", 1),
        ("no_longer_renewable", "no longer renewable", 1),
        ("now_failing", "now failing", 1),
        ("renewal_token_changed", "RenewalToken changed", 1),
        ("now_not_renewable", "now not renewable", 1),
        ("new_lead", "new leads", 1),
        ("disappeared", "disappeared", 1),
        ("still_failing", "still failing", 3),
        ("unchanged", "unchanged", 1),
    ];

    let terminal = out.stdout_text();
    assert!(terminal.contains("(10 rows, 10 vehicles)"), "{terminal}");
    let json = read_json(&work.path("r.json"));
    let doc = html(&work.path("r.html"));
    for (key, label, n) in expected {
        assert_eq!(words_after(&terminal, label), [n.to_string()], "{label}");
        assert_eq!(json["against"]["counts"][key], n, "{key}");
        assert_eq!(
            text(&doc, &format!("#change-counts tr[data-change={key}] td.vehicles")),
            n.to_string()
        );
    }
    assert_eq!(json["against"]["previous_rows"], 10);
    assert_eq!(json["against"]["changed"].as_array().unwrap().len(), 7);
    assert_eq!(
        texts(&doc, "#changes tbody tr").len(),
        7,
        "still failing is no change"
    );
    assert_eq!(words_after(&terminal, "changed"), ["7"]);
    assert_eq!(words_after(&terminal, "not changed"), ["4"]);
    assert_eq!(
        texts(&doc, "#changes tr[data-change=renewal_token_changed] code"),
        ["T0", "T7"]
    );

    let mut reader = csv::Reader::from_path(work.path("changes.csv")).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "change",
            "vehicle",
            "city",
            "previous_row",
            "previous_status",
            "previous_message",
            "previous_renewal_token",
            "file",
            "row",
            "status",
            "message",
            "renewal_token"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let summary: Vec<(&str, &str, &str, &str)> = rows.iter().map(|r| (&r[0], &r[1], &r[4], &r[9])).collect();
    assert_eq!(
        summary,
        [
            ("newly_renewed", "京A88888", "server_error", "renewed"),
            ("no_longer_renewable", "粤B12345", "renewed", "not_renewable"),
            ("now_failing", "苏A11111", "not_renewable", "transport_error"),
            ("renewal_token_changed", "LS4ASE2A2GJ137027", "renewed", "renewed"),
            ("now_not_renewable", "粤B22222", "server_error", "not_renewable"),
            ("new_lead", "沪B54321", "", "invalid_params"),
            ("disappeared", "津A12345", "renewed", ""),
        ]
    );
    let token = &rows[3];
    assert_eq!((&token[2], &token[6], &token[11]), ("北京 (1)", "T0", "T7"));
    assert_eq!(&token[7], work.arg("today.results.csv"));
    assert_eq!(&rows[5][10], J_MESSAGE, "messages are kept whole");
    let bytes = std::fs::read(work.path("changes.csv")).unwrap();
    assert!(
        bytes.starts_with("\u{feff}change,".as_bytes()),
        "a UTF-8 BOM (issue 16)"
    );
}

#[tokio::test]
async fn bom_and_chinese_headers_give_the_same_figures() {
    let work = Work::new();
    let plain = work.write("plain.results.csv", format!("{HEADER}{TODAY}"));
    let bom = work.write("bom.results.csv", format!("\u{feff}{HEADER}{TODAY}"));
    let zh = work.write("zh.results.csv", format!("\u{feff}{HEADER_ZH}{TODAY}"));
    let mut figures = Vec::new();
    for path in [&plain, &bom, &zh] {
        let json_path = path.with_extension("json");
        let (path, json_arg) = (path.display().to_string(), json_path.display().to_string());
        let out = work.report(&[&path, "--json", &json_arg]).await;
        succeeded(&out);
        let mut json = read_json(&json_path);
        let headers = json["files"][0]["headers"].clone();
        for key in ["files", "retry", "attention"] {
            json.as_object_mut().unwrap().remove(key);
        }
        figures.push((headers, json));
    }
    assert_eq!(figures[0].0, "english");
    assert_eq!(figures[1].0, "english");
    assert_eq!(figures[2].0, "chinese");
    assert_eq!(figures[0].1, figures[1].1, "a BOM changes nothing");
    assert_eq!(
        figures[0].1, figures[2].1,
        "Chinese result headers change nothing"
    );
    assert_eq!(figures[2].1["rows"], 11);

    // Mixed in one report: rows add up; a vehicle in both files counts once, except the row
    // with no vehicle at all, which only its file and row number identify.
    let json_path = work.path("mixed.json");
    let out = work
        .report(&[
            &plain.display().to_string(),
            &zh.display().to_string(),
            "--json",
            &json_path.display().to_string(),
        ])
        .await;
    succeeded(&out);
    let json = read_json(&json_path);
    assert_eq!(json["rows"], 22);
    assert_eq!(json["vehicles"], 11);
    assert_eq!(json["files"][1]["headers"], "chinese");
    assert_eq!(json["retry"]["commands"].as_array().unwrap().len(), 2);
    assert!(out.stdout_text().starts_with("Report on 2 files"));
}

#[tokio::test]
async fn an_interrupted_file_is_read_as_the_prefix_it_holds() {
    let work = Work::new();
    let lines: Vec<&str> = TODAY.split_inclusive('\n').collect();
    // Six whole rows, then the seventh cut in the middle, as a killed run leaves a `.partial`.
    // (The cut falls inside a character: the bytes left are not even UTF-8.)
    let mut bytes = format!("\u{feff}{HEADER}{}", lines[..6].concat()).into_bytes();
    bytes.extend_from_slice(&lines[6].as_bytes()[..lines[6].len() / 2]);
    let cut = work.write("leads.results.csv.partial", bytes);
    let out = work
        .report(&[&cut.display().to_string(), "--json", &work.arg("r.json")])
        .await;
    succeeded(&out);
    let json = read_json(&work.path("r.json"));
    assert_eq!(json["rows"], 6);
    assert_eq!(json["files"][0]["skipped_lines"], 1);
    assert_eq!(json["by_status"]["renewed"]["rows"], 2);
    assert_eq!(json["retry"]["rows"], 1);
    // Continued through its OUTPUT, whose name gives the guess (issue 16).
    let resume = format!(
        "bihu-renew run {} -o {} --resume",
        work.arg("leads.csv"),
        work.arg("leads.results.csv")
    );
    assert_eq!(json["retry"]["commands"][0]["input_guess"], work.arg("leads.csv"));
    assert_eq!(json["retry"]["commands"][0]["command"], resume);
    assert_eq!(json["files"][0]["unfinished"]["command"], resume);
    assert_eq!(json["files"][0]["unfinished"]["not_reached"], Value::Null);
    let terminal = out.stdout_text();
    assert!(
        terminal.contains(&format!("6 rows; the list may hold more: run `{resume}`")),
        "{terminal}"
    );
    assert!(!terminal.contains("nothing: every row"), "{terminal}");

    // With the lead list beside it, the rows not reached are counted.
    let leads: String = lines
        .iter()
        .map(|line| line.splitn(6, ',').take(5).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    work.write("leads.csv", format!("name,plate,vin,engine_no,city\n{leads}"));
    let out = work
        .report(&[&cut.display().to_string(), "--json", &work.arg("r.json")])
        .await;
    succeeded(&out);
    let json = read_json(&work.path("r.json"));
    assert_eq!(json["files"][0]["unfinished"]["input_rows"], 11);
    assert_eq!(json["files"][0]["unfinished"]["not_reached"], 5);
    assert!(
        out.stdout_text().contains("has 11 rows: 5 not reached"),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stderr.contains("note:") && out.stderr.contains("left out 1 line"),
        "{}",
        out.stderr
    );
    assert_eq!(json["notes"].as_array().unwrap().len(), 1);

    // A journal beside a results file: its run did not finish either.
    let output = work.write("other.results.csv", format!("{HEADER}{}", lines[..3].concat()));
    work.write("other.results.csv.journal", "bihu-renew journal 1\n");
    let out = work.report(&[&output.display().to_string()]).await;
    succeeded(&out);
    assert!(
        out.stdout_text()
            .contains("3 rows; the list may hold more: run `bihu-renew run"),
        "{}",
        out.stdout_text()
    );

    // A resumed file cut at a line end is simply a shorter file: nothing to note.
    let clean = work.write("clean.results.csv", format!("{HEADER}{}", lines[..3].concat()));
    let out = work.report(&[&clean.display().to_string()]).await;
    succeeded(&out);
    assert_eq!(words_after(&out.stdout_text(), "rows"), ["3"]);
    assert!(!out.stderr.contains("note:"), "{}", out.stderr);
}

#[tokio::test]
async fn a_file_that_is_not_a_results_file_is_refused_with_exit_2() {
    let work = Work::new();
    let leads = work.write("leads.csv", "客户姓名,车牌号,投保城市\n张伟,京J97896,北京\n");
    let out = work.report(&[&leads.display().to_string()]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", out.stdout_text());
    assert!(
        out.stderr.contains("is not a results file of bihu-renew"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "lacks the result columns row, status, http_status, message, renewal_token, quote_url, attempts, warnings"
        ),
        "names what is missing: {}",
        out.stderr
    );
    assert!(out.stderr.contains("客户姓名,车牌号,投保城市"), "{}", out.stderr);

    // One good file does not excuse a bad one; nothing is written.
    let good = work.write("good.results.csv", format!("{HEADER}{TODAY}"));
    let out = work
        .report(&[
            &good.display().to_string(),
            &leads.display().to_string(),
            "--json",
            &work.arg("r.json"),
        ])
        .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(!work.path("r.json").exists());

    let partial_zh = work.write("zh.csv", "车牌号,行号,状态\n京J97896,1,renewed\n");
    let out = work.report(&[&partial_zh.display().to_string()]).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("lacks the result columns HTTP状态, 消息"),
        "{}",
        out.stderr
    );

    let empty = work.write("empty.csv", "");
    let out = work.report(&[&empty.display().to_string()]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is empty"), "{}", out.stderr);

    let out = work.report(&[&work.arg("missing.results.csv")]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("cannot read"), "{}", out.stderr);
}

#[tokio::test]
async fn flags_are_checked_and_results_are_never_overwritten() {
    let work = Work::new();
    let results = work.write("r.results.csv", format!("{HEADER}{TODAY}"));
    let out = work
        .report(&[&results.display().to_string(), "--changes", &work.arg("c.csv")])
        .await;
    assert_eq!(out.code, 2, "--changes needs --against: {}", out.stderr);
    assert!(out.stderr.contains("--against"), "{}", out.stderr);

    let results_arg = results.display().to_string();
    let out = work.report(&[&results_arg, "--html", &results_arg]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("would destroy it"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&results).unwrap(),
        format!("{HEADER}{TODAY}")
    );

    let out = work.report(&[]).await;
    assert_eq!(out.code, 2, "at least one file: {}", out.stderr);
}

/// The report of a real run against the built-in sandbox (loopback only).
#[tokio::test]
async fn report_reads_what_run_writes() {
    let work = Work::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/leads.csv");
    let leads = work.path("leads.csv");
    std::fs::copy(&sample, &leads).unwrap();
    let run = run_binary(
        &[
            "run",
            &leads.display().to_string(),
            "--sandbox",
            "--no-progress",
            "--rate",
            "500",
            "--burst",
            "20",
        ],
        &[],
    )
    .await;
    assert!(matches!(run.code, 0 | 1), "{}", run.stderr);
    let results = work.path("leads.results.csv");
    work.report_to_json_and_html(&[&results]).await;
    let json = read_json(&work.path("r.json"));
    assert_eq!(json["rows"], 40);
    assert_eq!(json["vehicles"], 38, "two rows repeat an earlier vehicle");
    assert_eq!(json["by_status"]["invalid_input"]["rows"], 5);
    assert_eq!(total_rows(&json["by_city"]), 40);
    assert_eq!(json["notes"].as_array().unwrap().len(), 0);
    let doc = html(&work.path("r.html"));
    assert_eq!(text(&doc, "[data-figure=rows] dd"), "40");
    if json["retry"]["rows"] != 0 {
        assert_eq!(json["retry"]["commands"][0]["input_guess_exists"], true);
    }
}

/// Rows that relied on the run's `--city-code` have no city of their own in the results file;
/// the report's `--city-code` gives it back to them.
#[tokio::test]
async fn city_code_gives_rows_without_a_city_the_runs_default() {
    let work = Work::new();
    let results = work.write(
        "vin.results.csv",
        "name,CarVin,EngineNo,row,status,http_status,message,renewal_token,quote_url,attempts,warnings\n\
         A,LS4ASE2A2GJ137027,2192209,1,renewed,200,ok,T1,http://q/,1,\n\
         B,LS4ASE2A2GJ137027,4G15S 4L9AM4623,2,not_renewable,206,no data,,,1,\n",
    );
    let json = work.path("report.json");
    let (results, json_arg) = (results.display().to_string(), json.display().to_string());

    succeeded(&work.report(&[&results, "--json", &json_arg]).await);
    let by_city = &read_json(&json)["by_city"];
    assert_eq!(by_city.as_array().unwrap().len(), 1, "{by_city}");
    assert_eq!(by_city[0]["city"], "unknown");

    succeeded(
        &work
            .report(&[&results, "--json", &json_arg, "--city-code", "北京"])
            .await,
    );
    let by_city = &read_json(&json)["by_city"];
    assert_eq!(by_city.as_array().unwrap().len(), 1, "{by_city}");
    assert_eq!(by_city[0]["city_id"], 1);
    assert_eq!(by_city[0]["rows"], 2);
    assert_eq!(by_city[0]["renewed"], 1);

    let wrong = work.report(&[&results, "--city-code", "拉萨"]).await;
    assert_eq!(wrong.code, 2);
    assert!(wrong.stderr.contains("not a Bihu city"), "{}", wrong.stderr);
}

/// Markup and quotes in every text field of a results file, and in its name, come out of the
/// HTML page as text: no element, no attribute broken open.
#[tokio::test]
async fn markup_and_quotes_in_every_field_are_escaped_in_the_html() {
    const EVIL: &str = r#"<script>alert("x'y")</script>&"#;
    let work = Work::new();
    let field = format!("\"{}\"", EVIL.replace('"', "\"\""));
    let row = |row: u32, status: &str, http: &str, token: &str| {
        let token = format!("\"{}{token}\"", EVIL.replace('"', "\"\""));
        [
            field.as_str(),
            &field,
            &field,
            &field,
            &field,
            &row.to_string(),
            status,
            http,
            &field,
            &token,
            &field,
            "1",
            &field,
        ]
        .join(",")
            + "\n"
    };
    let today = work.write(
        // A file name cannot hold `/`.
        r#"<script>x("'")&.results.csv"#,
        format!(
            "{HEADER}{}{}",
            row(1, "renewed", "200", "T1"),
            row(2, "server_error", "500", "")
        ),
    );
    let yesterday = work.write(
        "yesterday.results.csv",
        format!(
            "{HEADER}{}{}",
            row(1, "renewed", "200", "T0"),
            row(2, "server_error", "500", "")
        ),
    );
    let out = work
        .report(&[
            &today.display().to_string(),
            "--against",
            &yesterday.display().to_string(),
            "--html",
            &work.arg("r.html"),
        ])
        .await;
    succeeded(&out);
    let page = std::fs::read_to_string(work.path("r.html")).unwrap();
    assert!(
        !page.to_lowercase().contains("<script"),
        "markup from the file reached the page as markup:\n{page}"
    );
    let doc = html(&work.path("r.html"));
    assert!(texts(&doc, "script").is_empty());
    let today_name = today.display().to_string();
    assert_eq!(text(&doc, "head title"), format!("Renewal report: {today_name}"));
    assert_eq!(text(&doc, "h1"), format!("Renewal report: {today_name}"));
    assert_eq!(texts(&doc, "#files td")[0], today_name);
    let retry = Selector::parse("#retry [data-results]").unwrap();
    let attribute = doc.select(&retry).next().unwrap().value().attr("data-results");
    assert_eq!(attribute, Some(&*today_name), "quotes do not end the attribute");
    assert!(text(&doc, "#retry code.command").contains("<script>x("));
    assert_eq!(texts(&doc, "#attention td.message"), [EVIL]);
    assert_eq!(texts(&doc, "#attention td")[0], today_name);
    // Not a valid plate: the vehicle is told by the plate as normalised (upper case).
    let vehicles = texts(&doc, "#attention td.vehicle");
    assert!(
        vehicles[0].to_lowercase().contains(r#"<script>alert("x'y")"#),
        "{vehicles:?}"
    );
    assert!(texts(&doc, "#reasons td.reason").contains(&EVIL.to_string()));
    assert_eq!(
        texts(&doc, "#changes tr[data-change=renewal_token_changed] code"),
        [format!("{EVIL}T0"), format!("{EVIL}T1")]
    );
    let messages = texts(&doc, "#changes span.message");
    assert!(messages.iter().all(|m| m == EVIL), "{messages:?}");
    assert!(text(&doc, "#changes-section p code") == yesterday.display().to_string());
}
