//! Lead lists as back offices have them (issue 5): GBK and BOM CSVs and `.xlsx` give the same
//! results as plain UTF-8; the results file's BOM; the config file and its precedence; dry
//! runs; `login`, completions and the man page.

use std::path::Path;

use bihu_renew::sandbox::{Sandbox, SandboxConfig};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

use crate::support::{
    Files, parse_results, read_results, recording_sandbox, run_binary, sandbox_flags, start_sandbox,
};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A list with Chinese headers and plates, a VIN of digits only, an engine number that looks
/// like a number, a date and empty cells.
const LEADS: &[[&str; 6]] = &[
    ["客户姓名", "车牌号", "车架号", "发动机号", "投保城市", "登记日期"],
    ["张三", "京J97896", "", "", "北京", "2026-11-29"],
    ["李四", "", "LS4ASE2A2GJ137027", "2192209", "1", ""],
    [
        "王五",
        "粤B12345",
        "11111111111111111",
        "0123456",
        "",
        "2025-01-31",
    ],
    ["赵六", "粤BD12345", "", "", "", ""],
    ["钱七", "沪A12345", "", "4G15S 4L9AM4623", "", ""],
];

fn csv_text(rows: &[[&str; 6]]) -> String {
    rows.iter().map(|row| row.join(",") + "\n").collect()
}

/// Writes rows as a workbook the way Excel stores them: all-digit engine numbers without a
/// leading zero as numbers, dates as date cells, empty strings as empty cells.
pub fn write_xlsx(path: &Path, rows: &[Vec<String>]) {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("线索").unwrap();
    let date_format = Format::new().set_num_format("yyyy-mm-dd");
    let header = &rows[0];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let column = header[c].as_str();
            let (r, c) = (r as u32, c as u16);
            if cell.is_empty() {
                continue;
            } else if r > 0
                && column == "发动机号"
                && cell.bytes().all(|b| b.is_ascii_digit())
                && !cell.starts_with('0')
            {
                sheet.write_number(r, c, cell.parse::<f64>().unwrap()).unwrap();
            } else if r > 0 && column == "登记日期" {
                let date = ExcelDateTime::parse_from_str(cell).unwrap();
                sheet
                    .write_datetime_with_format(r, c, &date, &date_format)
                    .unwrap();
            } else {
                sheet.write_string(r, c, cell.as_str()).unwrap();
            }
        }
    }
    workbook.save(path).unwrap();
}

fn owned(rows: &[[&str; 6]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| row.iter().map(|c| c.to_string()).collect())
        .collect()
}

async fn run_with(sandbox: &Sandbox, args: &[&str]) -> crate::support::BinOutput {
    let mut all: Vec<String> = vec!["run".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(sandbox_flags(sandbox));
    all.push("--no-progress".into());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_binary(&refs, &[]).await
}

/// Writes `bihu.toml` into `inputs`, readable by its owner only: `sandbox`'s URL and
/// credentials, then `extra`; gives its path.
fn write_config(inputs: &Files, sandbox: &Sandbox, extra: &str) -> String {
    let config = sandbox.config();
    let file = inputs.write(
        "bihu.toml",
        format!(
            "base_url = \"{}\"\nagent_id = {}\ntoken = \"{}\"\nsecret_key = \"{}\"\n{extra}",
            sandbox.base_url(),
            config.agent_id,
            config.token,
            config.secret.expose()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn utf8_bom_gbk_and_xlsx_lists_give_identical_results() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let inputs = Files::new();
    let text = csv_text(LEADS);
    let utf8 = inputs.write("utf8.csv", text.as_bytes());
    let with_bom = inputs.write("bom.csv", &[BOM, text.as_bytes()].concat());
    let (gbk_bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    let gbk = inputs.write("gbk.csv", &gbk_bytes);
    let xlsx = inputs.path("list.xlsx");
    write_xlsx(Path::new(&xlsx), &owned(LEADS));

    let mut outputs = Vec::new();
    for input in [&utf8, &with_bom, &gbk, &xlsx] {
        let output = format!("{input}.results.csv");
        let run = run_with(&sandbox, &[input, "-o", &output]).await;
        assert_eq!(
            run.code, 0,
            "{input}: every row final (invalid_input is final)\n{}",
            run.stderr
        );
        outputs.push((input.clone(), std::fs::read(&output).unwrap()));
    }
    let (_, reference) = &outputs[0];
    let (header, rows) = parse_results(reference);
    assert_eq!(header, LEADS[0]);
    assert_eq!(rows.len(), LEADS.len() - 1);
    assert_eq!(
        rows[1].input[3], "2192209",
        "a numeric engine number keeps its digits"
    );
    assert_eq!(
        rows[2].input[2], "11111111111111111",
        "an all-digit VIN stays text"
    );
    assert_eq!(rows[2].input[3], "0123456", "leading zeros survive");
    assert_eq!(rows[0].input[5], "2026-11-29", "dates read as dates");
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses[3], "invalid_input", "a new-energy plate without VIN");
    assert!(
        statuses
            .iter()
            .enumerate()
            .all(|(i, s)| i == 3 || *s != "invalid_input"),
        "{statuses:?}"
    );
    for (input, bytes) in &outputs[1..] {
        assert_eq!(
            crate::support::masked(bytes),
            crate::support::masked(reference),
            "{input} differs from its UTF-8 twin"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn results_start_with_a_bom_unless_told_otherwise_and_never_on_stdout() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let inputs = Files::new();
    let input = inputs.write("list.csv", "车牌号\n京J97896\n".as_bytes());
    let default = inputs.path("default.csv");
    assert_eq!(run_with(&sandbox, &[&input, "-o", &default]).await.code, 0);
    assert!(std::fs::read(&default).unwrap().starts_with(BOM));

    let plain = inputs.path("plain.csv");
    assert_eq!(
        run_with(&sandbox, &[&input, "-o", &plain, "--no-bom"]).await.code,
        0
    );
    let bytes = std::fs::read(&plain).unwrap();
    assert!(
        bytes.starts_with("车牌号,row,".as_bytes()),
        "{:?}",
        String::from_utf8_lossy(&bytes)
    );

    let stdout = run_with(&sandbox, &[&input, "-o", "-"]).await;
    assert_eq!(stdout.code, 0, "{}", stdout.stderr);
    assert!(stdout.stdout.starts_with("车牌号,row,".as_bytes()));
    assert_eq!(parse_results(&stdout.stdout).1.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn zh_headers_name_the_result_columns_in_chinese_and_still_resume() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let inputs = Files::new();
    let input = inputs.write("list.csv", "车牌号\n京J97896\n沪A12345\n".as_bytes());
    let output = inputs.path("out.csv");
    assert_eq!(
        run_with(&sandbox, &[&input, "-o", &output, "--zh-headers"])
            .await
            .code,
        0
    );
    let text = String::from_utf8(std::fs::read(&output).unwrap()).unwrap();
    let header = text
        .trim_start_matches('\u{feff}')
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        header,
        "车牌号,行号,状态,状态说明,HTTP状态,消息,续保令牌,报价链接,尝试次数,警告,应答时间"
    );
    // The status stays the machine value; the Chinese words stand beside it.
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut statuses = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        let status = bihu_renew::results::outcome::Status::parse(&record[2])
            .unwrap_or_else(|| panic!("状态 {:?} is a machine value", &record[2]));
        assert_eq!(&record[3], status.zh_description(), "{record:?}");
        statuses.push(status.as_str().to_string());
    }
    assert_eq!(statuses, ["renewed", "not_renewable"]);
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("京J97896,1,renewed,续保成功,200,"),
        "{text}"
    );
    let before = sandbox.stats().requests;
    let resumed = run_with(&sandbox, &[&input, "-o", &output, "--zh-headers", "--resume"]).await;
    resumed.assert_said(0, &["nothing to do"]);
    // Without --zh-headers too: the reader takes either set of columns.
    let resumed = run_with(&sandbox, &[&input, "-o", &output, "--resume"]).await;
    resumed.assert_said(0, &["nothing to do"]);
    assert_eq!(sandbox.stats().requests, before);
    let report = run_binary(&["report", &output], &[]).await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report
            .stdout_text()
            .lines()
            .any(|line| line.split_whitespace().eq(["not_renewable", "1", "50.0%"])),
        "{}",
        report.stdout_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn config_file_precedence_is_flag_then_environment_then_file() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let config = sandbox.config();
    let inputs = Files::new();
    let input = inputs.write("list.csv", "车牌号\n京J97896\n".as_bytes());
    let file = write_config(&inputs, &sandbox, "");
    let run = |extra: Vec<String>, envs: Vec<(&'static str, String)>| {
        let output = inputs.path(&format!("out-{}.csv", extra.len() + envs.len()));
        let mut args = vec![
            "run".to_string(),
            input.clone(),
            "-o".into(),
            output,
            "--force".into(),
        ];
        args.extend(["--config".to_string(), file.clone(), "--no-progress".into()]);
        args.extend(extra);
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            run_binary(&refs, &envs).await
        }
    };
    // The file alone is enough, and a mode-600 file gives no warning.
    let file_only = run(vec![], vec![]).await;
    assert_eq!(file_only.code, 0, "{}", file_only.stderr);
    assert!(!file_only.stderr.contains("chmod"), "{}", file_only.stderr);
    // The environment beats the file: a wrong secret there is used, and refused.
    let env_wrong = run(vec![], vec![("BIHU_SECRET_KEY", "wrong".into())]).await;
    assert_eq!(env_wrong.code, 1, "406 on the only row\n{}", env_wrong.stderr);
    // A flag beats the environment.
    let flag_right = run(
        vec!["--secret-key".into(), config.secret.expose().into()],
        vec![("BIHU_SECRET_KEY", "wrong".into())],
    )
    .await;
    assert_eq!(flag_right.code, 0, "{}", flag_right.stderr);
    // The fallback city comes from the file unless a flag says otherwise (for a plate that
    // names no Bihu city: a plate's own city outranks both).
    std::fs::write(&input, "车牌号\n藏A12345\n").unwrap();
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap() + "city_code = \"上海\"\n",
    )
    .unwrap();
    let file_city = run(vec!["--dry-run".into()], vec![]).await;
    let rows = read_results(Path::new(&inputs.path("out-1.csv")));
    assert_eq!(file_city.code, 0, "{}", file_city.stderr);
    assert!(rows[0].warnings.contains("city 上海 (6)"), "{:?}", rows[0]);
    let flag_city = run(vec!["--dry-run".into(), "--city-code".into(), "1".into()], vec![]).await;
    assert_eq!(flag_city.code, 0);
    let rows = read_results(Path::new(&inputs.path("out-3.csv")));
    assert!(rows[0].warnings.contains("city 北京 (1)"), "{:?}", rows[0]);
}

/// Issue 16.8: a default city is a fallback. With `city_code = "上海"` in the config, Beijing
/// and Tianjin plates without a city of their own are requested in their own cities, without
/// a warning; a row's own city still comes first (a contradiction is a warning, not an error);
/// only a row whose plate names no city takes the default.
#[tokio::test(flavor = "multi_thread")]
async fn a_default_city_never_outranks_the_plate() {
    let sandbox = recording_sandbox().await;
    let inputs = Files::new();
    let input = inputs.write(
        "list.csv",
        "车牌号,车架号,发动机号,投保城市\n\
         京J97896,,,\n\
         津A12345,,,\n\
         京A11111,,,天津\n\
         ,LS4ASE2A2GJ137027,2192209,\n"
            .as_bytes(),
    );
    let file = write_config(&inputs, &sandbox, "city_code = \"上海\"\n");
    let output = inputs.path("out.csv");
    let ran = run_binary(
        &["run", &input, "-o", &output, "--config", &file, "--no-progress"],
        &[],
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let rows = read_results(Path::new(&output));
    let statuses: Vec<&str> = rows.iter().map(|row| row.status.as_str()).collect();
    assert!(
        statuses
            .iter()
            .all(|status| ["renewed", "not_renewable"].contains(status)),
        "every row requested and answered: {rows:?}"
    );
    assert_eq!(rows[0].warnings, "", "{:?}", rows[0]);
    assert_eq!(rows[1].warnings, "", "{:?}", rows[1]);
    assert!(
        rows[2]
            .warnings
            .contains("city 天津 (3) does not match plate 京A11111"),
        "{:?}",
        rows[2]
    );
    let mut cities: Vec<(String, String)> = sandbox
        .requests()
        .iter()
        .map(|request| {
            let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
            let vehicle = body["LicenseNo"]
                .as_str()
                .or(body["CarVin"].as_str())
                .unwrap()
                .to_string();
            (vehicle, body["CityCode"].as_str().unwrap().to_string())
        })
        .collect();
    cities.sort();
    assert_eq!(
        cities,
        [
            ("LS4ASE2A2GJ137027".to_string(), "6".to_string()),
            ("京A11111".into(), "3".into()),
            ("京J97896".into(), "1".into()),
            ("津A12345".into(), "3".into()),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_others_can_read_with_the_secret_in_it_gives_a_warning() {
    let inputs = Files::new();
    let input = inputs.write("list.csv", "车牌号\n京J97896\n".as_bytes());
    let file = inputs.write("bihu.toml", b"secret_key = \"s3cr3t-in-file\"\n");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let output = inputs.path("out.csv");
    let run = run_binary(
        &["run", &input, "-o", &output, "--config", &file, "--dry-run"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("can be read by others") && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cr3t-in-file"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_sends_nothing_and_reports_what_it_found() {
    let sandbox = recording_sandbox().await;
    let inputs = Files::new();
    let input = inputs.write("list.csv", csv_text(LEADS).as_bytes());
    let output = inputs.path("checked.csv");
    let summary = inputs.path("summary.json");
    let run = run_with(
        &sandbox,
        &[&input, "-o", &output, "--dry-run", "--summary-json", &summary],
    )
    .await;
    assert_eq!(run.code, 1, "one row is not ready\n{}", run.stderr);
    assert_eq!(sandbox.stats().requests, 0);
    assert_eq!(sandbox.stats().logins, 0);
    let rows = read_results(Path::new(&output));
    let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["ready", "ready", "ready", "invalid_input", "ready"]);
    assert!(rows.iter().all(|r| r.attempts == 0 && r.renewal_token.is_empty()));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["rows"], 5);
    assert_eq!(json["ready"], 4);
    assert_eq!(json["by_reason"]["plate_unsupported"], 1);
    // The check names the rejected row, the plate as written, and the fix.
    let example = &json["examples"]["plate_unsupported"][0];
    assert_eq!(example["row"], 4);
    assert_eq!(example["plate"], "粤BD12345");
    assert!(
        example["text"].as_str().unwrap().contains("粤BD12345"),
        "{example}"
    );
    // 粤B12345 and 沪A12345 have no city: both inferred from the plate.
    assert_eq!(json["cities_inferred"], 2);

    let all_ready = inputs.write("ready.csv", "车牌号\n京J97896\n京j-97896\n".as_bytes());
    let run = run_binary(&["run", &all_ready, "--dry-run", "--no-progress"], &[]).await;
    run.assert_said(0, &["1 duplicates"]);
    assert!(Path::new(&inputs.path("ready.dry-run.csv")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn login_prints_a_token_that_the_sandbox_accepts() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let config = sandbox.config();
    let base = sandbox.base_url().to_string();
    let login_args = [
        "login",
        "--base-url",
        &base,
        "--agent-id",
        &config.agent_id,
        "--user-name",
        "clerk",
    ];
    let login = run_binary(&login_args, &[("BIHU_SECRET_KEY", config.secret.expose())]).await;
    assert_eq!(login.code, 0, "{}", login.stderr);
    let token = login.stdout_text().trim().to_string();
    assert_eq!(token.len(), 32, "{token:?}");
    assert_eq!(sandbox.stats().logins, 1);

    // The secret can come from a file instead of the environment.
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{}\n", config.secret.expose())).unwrap();
    let secret_file = secret_file.display().to_string();
    let from_file = run_binary(&login_args, &[("BIHU_SECRET_KEY_FILE", secret_file.as_str())]).await;
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    assert_eq!(sandbox.stats().logins, 2);

    let wrong = run_binary(&login_args, &[("BIHU_SECRET_KEY", "wrong")]).await;
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    assert!(wrong.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_and_man_page_come_from_the_real_flags() {
    let bash = run_binary(&["completions", "bash"], &[]).await;
    assert_eq!(bash.code, 0);
    assert!(bash.stdout_text().contains("--secret-key-file"));
    let man = run_binary(&["man"], &[]).await;
    assert_eq!(man.code, 0);
    assert!(man.stdout_text().starts_with(".ie") || man.stdout_text().contains(".TH"));
}

/// The samples stay twins: the GBK CSV and the workbook read exactly like `leads.csv`.
#[tokio::test(flavor = "multi_thread")]
async fn the_sample_lists_are_twins() {
    let inputs = Files::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut outputs = Vec::new();
    for name in ["leads.csv", "leads-gbk.csv", "leads.xlsx"] {
        let output = inputs.path(&format!("{name}.checked.csv"));
        let input = root.join(name).display().to_string();
        let run = run_binary(&["run", &input, "-o", &output, "--dry-run"], &[]).await;
        assert_eq!(
            run.code, 1,
            "{name}: the samples hold a few bad rows\n{}",
            run.stderr
        );
        outputs.push(std::fs::read(&output).unwrap());
    }
    let outputs: Vec<String> = outputs
        .iter()
        .map(|bytes| crate::support::masked(bytes))
        .collect();
    assert_eq!(outputs[0], outputs[1], "leads-gbk.csv differs from leads.csv");
    assert_eq!(outputs[0], outputs[2], "leads.xlsx differs from leads.csv");
}

/// Rewrites `samples/leads-gbk.csv` and `samples/leads.xlsx` from `samples/leads.csv`:
/// `cargo test --test it regenerate_samples -- --ignored`.
#[test]
#[ignore]
fn regenerate_samples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let text = std::fs::read_to_string(root.join("leads.csv")).unwrap();
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    std::fs::write(root.join("leads-gbk.csv"), &gbk).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    write_xlsx(&root.join("leads.xlsx"), &rows);
}
