//! Hostile files and hostile answers (issue 15): every case is generated here, run through
//! the real binary, and must end bounded and explicit: an exit code, a message that says what
//! to fix, no row lost or wrongly final, and peak memory within bounds where it matters
//! (`BIHU_REPORT_PEAK_MEMORY` makes the binary print its own `VmHWM`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bihu_renew::sandbox::{Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{BinOutput, read_results, run_binary, start_sandbox};

struct Dir {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        Dir { _dir: dir, path }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }
}

fn credentials(base_url: &str) -> Vec<String> {
    let config = SandboxConfig::default();
    vec![
        "--base-url".into(),
        base_url.to_string(),
        "--agent-id".into(),
        config.agent_id.clone(),
        "--token".into(),
        config.token.clone(),
        "--secret-key".into(),
        config.secret.expose().to_string(),
        "--no-progress".into(),
        "--retries".into(),
        "0".into(),
    ]
}

async fn run_against(base_url: &str, args: &[&str]) -> BinOutput {
    let mut all: Vec<String> = vec!["run".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(credentials(base_url));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run_binary(&refs, &[("BIHU_REPORT_PEAK_MEMORY", "1")]).await
}

async fn run_sandboxed(sandbox: &Sandbox, args: &[&str]) -> BinOutput {
    run_against(sandbox.base_url().as_str(), args).await
}

/// The binary's own peak resident memory, in kB.
#[track_caller]
fn peak_kb(run: &BinOutput) -> u64 {
    let line = run
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("bihu-renew: peak memory "))
        .unwrap_or_else(|| panic!("no peak memory line in {}", run.stderr));
    line.trim_end_matches(" kB").trim().parse().unwrap()
}

/// A server on loopback that answers every request with what `answer` writes, then closes the
/// connection; counts the requests.
struct HostileServer {
    base_url: String,
    n_requests: Arc<AtomicU64>,
}

#[derive(Clone)]
enum Hostile {
    /// A status and a body, sent whole.
    Fixed(u16, Vec<u8>),
    /// HTTP 200 with a chunked body that never ends.
    Endless,
}

async fn hostile_server(answer: Hostile) -> HostileServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/", listener.local_addr().unwrap());
    let n_requests = Arc::new(AtomicU64::new(0));
    let counter = n_requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                // Read the request head and its body (Content-Length).
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|line| {
                                let (name, value) = line.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                match answer {
                    Hostile::Fixed(status, body) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(&body).await;
                    }
                    Hostile::Endless => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                        if socket.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                        while socket.write_all(chunk.as_bytes()).await.is_ok() {}
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    HostileServer { base_url, n_requests }
}

/// Case 1: one stray quote must not swallow the list. The run is refused before any request,
/// naming the line where the quote opened; a legitimate multi-line note still reads.
#[tokio::test(flavor = "multi_thread")]
async fn a_stray_quote_is_refused_before_any_request_naming_its_line() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = Dir::new();
    let mut text = String::from("name,车牌号\n张三,京J97896\n\"李四,京A12345\n");
    for i in 0..4998 {
        text.push_str(&format!("客户{i},京A{:05}\n", i % 100_000));
    }
    let input = dir.write("leads.csv", text.as_bytes());
    let run = run_sandboxed(&sandbox, &[&input]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("the quote that opens on line 3") && run.stderr.contains("Fix line 3"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("whole rows"), "{}", run.stderr);
    assert_eq!(sandbox.stats().requests, 0, "nothing is sent");
    assert!(!std::path::Path::new(&dir.path("leads.results.csv")).exists());

    // A note over two lines, quoted as it should be, is a field like any other.
    let fine = dir.write(
        "fine.csv",
        "name,车牌号,备注\n张三,京J97896,\"line one\nline two\"\n李四,京A12345,\n".as_bytes(),
    );
    let run = run_sandboxed(&sandbox, &[&fine, "-o", &dir.path("fine.out.csv")]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_results(std::path::Path::new(&dir.path("fine.out.csv")));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].input[2], "line one\nline two");
}

/// Case 2: UTF-8 rows with one GBK row are refused, naming a line of each and the flag; with
/// the flag, the rows are read one way and the odd one is rejected, never mis-decoded.
#[tokio::test(flavor = "multi_thread")]
async fn mixed_encodings_are_refused_naming_the_lines_and_the_flag() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = Dir::new();
    let mut bytes = "name,车牌号\n张三,京J97896\n".as_bytes().to_vec();
    let (gbk, _, _) = encoding_rs::GBK.encode("李四,京A12345\n");
    bytes.extend_from_slice(&gbk);
    bytes.extend_from_slice("王五,沪A12345\n".as_bytes());
    let input = dir.write("mixed.csv", &bytes);
    let run = run_sandboxed(&sandbox, &[&input]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("mixes text encodings: line 1 is UTF-8, line 3 is not"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--input-encoding"), "{}", run.stderr);
    assert_eq!(sandbox.stats().requests, 0);

    let output = dir.path("mixed.out.csv");
    let run = run_sandboxed(&sandbox, &[&input, "--input-encoding", "utf-8", "-o", &output]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_results(std::path::Path::new(&output));
    assert_eq!(rows.len(), 3, "no row lost");
    assert_eq!(rows[0].input[0], "张三");
    assert_eq!(rows[1].status, "invalid_input");
    assert!(rows[1].message.contains("not valid UTF-8"), "{}", rows[1].message);
    assert_eq!(rows[2].input[0], "王五");

    // Bytes that are no text at all: refused with the line.
    let junk = dir.write("junk.csv", b"name,plate\n\xff\xff\xff,x\n");
    let run = run_sandboxed(&sandbox, &[&junk]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("line 2 is neither UTF-8 nor GBK"),
        "{}",
        run.stderr
    );
}

/// Issue 16.12: Excel's "Unicode text" (UTF-16 with a BOM, tab-separated) and a semicolon
/// CSV read as the comma CSV does; a CSV renamed .xlsx is said to be one.
#[tokio::test(flavor = "multi_thread")]
async fn utf16_tab_and_semicolon_lists_read_and_a_renamed_csv_is_named() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = Dir::new();
    let lines = ["name,车牌号", "张三,京J97896", "李四,京A12345"];
    let comma = dir.write("comma.csv", (lines.join("\n") + "\n").as_bytes());
    let tab_text = lines.join("\n").replace(',', "\t") + "\n";
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in tab_text.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let unicode_text = dir.write("unicode.txt", &utf16);
    let semicolon = dir.write(
        "semicolon.csv",
        (lines.join("\n").replace(',', ";") + "\n").as_bytes(),
    );
    let mut outputs = Vec::new();
    for input in [&comma, &unicode_text, &semicolon] {
        let output = format!("{input}.out.csv");
        let run = run_sandboxed(&sandbox, &[input, "-o", &output]).await;
        assert_eq!(run.code, 0, "{input}: {}", run.stderr);
        let rows = read_results(std::path::Path::new(&output));
        outputs.push(
            rows.iter()
                .map(|row| (row.input.clone(), row.status.clone()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(outputs[0].len(), 2);
    assert_eq!(outputs[0][0].0, ["张三", "京J97896"]);
    assert_eq!(outputs[1], outputs[0], "UTF-16 tab-separated");
    assert_eq!(outputs[2], outputs[0], "semicolons");

    let renamed = dir.write("leads.xlsx", (lines.join("\n") + "\n").as_bytes());
    let run = run_sandboxed(&sandbox, &[&renamed]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not a workbook") && run.stderr.contains("a CSV renamed?"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("EOCD"), "{}", run.stderr);
}

/// Case 6: a 200 whose RenewalToken is an object (or a formula) is a protocol error, which
/// `--resume` sends again, never `renewed`.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_success_is_a_protocol_error_not_renewed() {
    let dir = Dir::new();
    let input = dir.write("leads.csv", "车牌号\n京J97896\n".as_bytes());
    for body in [
        r#"{"code":200,"msg":"ok","RenewalToken":{"x":"=1+1"}}"#,
        r#"{"code":200,"msg":"ok","RenewalToken":"=HYPERLINK(\"http://x\",\"click\")"}"#,
    ] {
        let server = hostile_server(Hostile::Fixed(200, body.as_bytes().to_vec())).await;
        let output = dir.path("out.csv");
        let run = run_against(&server.base_url, &[&input, "-o", &output, "--force"]).await;
        assert_eq!(
            run.code, 1,
            "a protocol error is worth another run: {}",
            run.stderr
        );
        let rows = read_results(std::path::Path::new(&output));
        assert_eq!(rows[0].status, "protocol_error", "{body}");
        assert!(rows[0].message.contains("not one"), "{}", rows[0].message);
        assert_eq!(rows[0].renewal_token, "");
        assert_eq!(rows[0].quote_url, "");
        // --resume asks again.
        let before = server.n_requests.load(Ordering::SeqCst);
        let run = run_against(&server.base_url, &[&input, "-o", &output, "--resume"]).await;
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert_eq!(server.n_requests.load(Ordering::SeqCst), before + 1);
    }
}

/// Case 7: cells that a spreadsheet would run, from the lead list and from an answer, are
/// written with a `'` in front, in the results and in `report --changes`; `--raw-cells` keeps
/// them raw; `--resume` reads a guarded file back as the input's.
#[tokio::test(flavor = "multi_thread")]
async fn formula_cells_are_neutralised_in_every_csv_written() {
    let dir = Dir::new();
    let input = dir.write(
        "leads.csv",
        "name,车牌号,note\n\"=HYPERLINK(\"\"http://x\"\",\"\"click\"\")\",京J97896,@SUM(A1)\n+1,京A12345,-2\n"
            .as_bytes(),
    );
    let server = hostile_server(Hostile::Fixed(
        206,
        r#"{"code":206,"msg":"=cmd|' /C calc'!A0"}"#.as_bytes().to_vec(),
    ))
    .await;
    let output = dir.path("out.csv");
    let run = run_against(&server.base_url, &[&input, "-o", &output]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_results(std::path::Path::new(&output));
    assert_eq!(rows[0].input[0], "'=HYPERLINK(\"http://x\",\"click\")");
    assert_eq!(rows[0].input[2], "'@SUM(A1)");
    assert_eq!(rows[1].input[0], "'+1");
    assert_eq!(rows[1].input[2], "'-2");
    assert_eq!(rows[0].message, "'=cmd|' /C calc'!A0");
    assert_eq!(rows[0].status, "not_renewable");

    // The guarded file is the input's: --resume keeps its rows and sends nothing.
    let before = server.n_requests.load(Ordering::SeqCst);
    let run = run_against(&server.base_url, &[&input, "-o", &output, "--resume"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.n_requests.load(Ordering::SeqCst), before);
    assert_eq!(read_results(std::path::Path::new(&output)), rows);

    let raw = dir.path("raw.csv");
    let run = run_against(&server.base_url, &[&input, "-o", &raw, "--raw-cells"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let raw_rows = read_results(std::path::Path::new(&raw));
    assert_eq!(raw_rows[0].input[0], "=HYPERLINK(\"http://x\",\"click\")");
    assert_eq!(raw_rows[0].message, "=cmd|' /C calc'!A0");

    // report --changes: the earlier run renewed, this one answers with a formula.
    let sandbox = start_sandbox(SandboxConfig {
        not_renewable_percent: 0,
        ..SandboxConfig::default()
    })
    .await;
    let earlier = dir.path("earlier.csv");
    let run = run_sandboxed(&sandbox, &[&input, "-o", &earlier]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let changes = dir.path("changes.csv");
    let report = run_binary(
        &["report", &output, "--against", &earlier, "--changes", &changes],
        &[],
    )
    .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    let text = std::fs::read_to_string(&changes).unwrap();
    assert!(text.contains("'=cmd|' /C calc'!A0"), "{text}");
    assert!(!text.contains(",=cmd"), "{text}");
    let report = run_binary(
        &[
            "report",
            &output,
            "--against",
            &earlier,
            "--changes",
            &changes,
            "--raw-cells",
        ],
        &[],
    )
    .await;
    assert_eq!(report.code, 0, "{}", report.stderr);
    // The results file holds the guarded message already: --raw-cells adds no second quote.
    assert!(
        std::fs::read_to_string(&changes)
            .unwrap()
            .contains(",'=cmd|' /C calc'!A0")
    );
}

/// Case 8: a million-column header without a vehicle column, and a config file with a
/// misspelt or broken secret, give short messages that never print a value.
#[tokio::test(flavor = "multi_thread")]
async fn messages_are_bounded_and_never_print_a_secret() {
    let dir = Dir::new();
    let header: Vec<String> = (0..1_000_000).map(|i| format!("c{i}")).collect();
    let wide = dir.write("wide.csv", format!("{}\n", header.join(",")).as_bytes());
    let run = run_binary(&["run", &wide, "--dry-run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.len() < 3000, "{} bytes", run.stderr.len());
    assert!(run.stderr.contains("1000000 columns in all"), "{}", run.stderr);

    for text in [
        "agent_id = 102\nsecretkey = \"S3CR3T-value\"\n",
        "agent_id = 102\nsecret_key = \"S3CR3T-value\n",
        "token = S3CR3T-value\n",
    ] {
        let config = dir.write("bihu.toml", text.as_bytes());
        let input = dir.write("leads.csv", "车牌号\n京J97896\n".as_bytes());
        let run = run_binary(&["run", &input, "--config", &config, "--dry-run"], &[]).await;
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(!run.stderr.contains("S3CR3T"), "{text:?}: {}", run.stderr);
        assert!(run.stderr.contains("line "), "{}", run.stderr);
    }
}

/// The body's `code`: HTTP 200 with a code of the spec's table is read by it, with one
/// warning a run; an unknown code without a token is a protocol error naming both codes.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_code_on_http_200_decides_with_one_warning() {
    let dir = Dir::new();
    let input = dir.write("leads.csv", "车牌号\n京J97896\n京A12345\n沪A12345\n".as_bytes());
    let server = hostile_server(Hostile::Fixed(
        200,
        r#"{"code":206,"msg":"无续保信息"}"#.as_bytes().to_vec(),
    ))
    .await;
    let output = dir.path("out.csv");
    let run = run_against(&server.base_url, &[&input, "-o", &output]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_results(std::path::Path::new(&output));
    assert!(rows.iter().all(|row| row.status == "not_renewable"), "{rows:?}");
    assert_eq!(run.stderr.matches("body code 206").count(), 1, "{}", run.stderr);

    let server = hostile_server(Hostile::Fixed(200, br#"{"code":999,"msg":"?"}"#.to_vec())).await;
    let run = run_against(&server.base_url, &[&input, "-o", &output, "--force"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = read_results(std::path::Path::new(&output));
    assert_eq!(rows[0].status, "protocol_error");
    assert!(
        rows[0].message.contains("HTTP 200") && rows[0].message.contains("999"),
        "{}",
        rows[0].message
    );
}

/// Case 5: a body that never ends is read up to 1 MB, the row is a protocol error, and the
/// run stays small; a 100 MB `msg` is cut in the results.
#[tokio::test(flavor = "multi_thread")]
async fn endless_and_huge_answers_are_cut_and_memory_stays_small() {
    let dir = Dir::new();
    let input = dir.write("leads.csv", "车牌号\n京J97896\n".as_bytes());
    let server = hostile_server(Hostile::Endless).await;
    let output = dir.path("out.csv");
    let run = run_against(&server.base_url, &[&input, "-o", &output]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = read_results(std::path::Path::new(&output));
    assert_eq!(rows[0].status, "protocol_error");
    assert!(
        rows[0].message.contains("exceeded 1 MB (1048576 bytes)"),
        "{}",
        rows[0].message
    );
    assert!(peak_kb(&run) < 60_000, "peak {} kB", peak_kb(&run));

    let body = format!(
        r#"{{"code":200,"msg":"{}","RenewalToken":"RT1"}}"#,
        "m".repeat(900_000)
    );
    let server = hostile_server(Hostile::Fixed(200, body.into_bytes())).await;
    let run = run_against(&server.base_url, &[&input, "-o", &output, "--force"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_results(std::path::Path::new(&output));
    assert_eq!(rows[0].status, "renewed");
    assert!(rows[0].message.len() < 600, "{} bytes", rows[0].message.len());
    assert!(rows[0].message.ends_with("more bytes cut)"));
}
