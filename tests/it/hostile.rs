//! Hostile files and hostile answers (issue 15): every case is generated here, run through
//! the real binary, and must end bounded and explicit: an exit code, a message that says what
//! to fix, no row lost or wrongly final, and peak memory within bounds where it matters
//! (`BIHU_REPORT_PEAK_MEMORY` makes the binary print its own `VmHWM`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bihu_renew::sandbox::{Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{BinOutput, Files, read_results, run_binary, start_sandbox};

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
    let dir = Files::new();
    let mut text = String::from("name,车牌号\n张三,京J97896\n\"李四,京A12345\n");
    for i in 0..4998 {
        text.push_str(&format!("客户{i},京A{:05}\n", i % 100_000));
    }
    let input = dir.write("leads.csv", text.as_bytes());
    let run = run_sandboxed(&sandbox, &[&input]).await;
    run.assert_said(2, &["the quote that opens on line 3", "Fix line 3", "whole rows"]);
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
    let dir = Files::new();
    let mut bytes = "name,车牌号\n张三,京J97896\n".as_bytes().to_vec();
    let (gbk, _, _) = encoding_rs::GBK.encode("李四,京A12345\n");
    bytes.extend_from_slice(&gbk);
    bytes.extend_from_slice("王五,沪A12345\n".as_bytes());
    let input = dir.write("mixed.csv", &bytes);
    let run = run_sandboxed(&sandbox, &[&input]).await;
    run.assert_said(
        2,
        &[
            "mixes text encodings: line 1 is UTF-8, line 3 is not",
            "--input-encoding",
        ],
    );
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
    run.assert_said(2, &["line 2 is neither UTF-8 nor GBK"]);
}

/// Issue 16.12: Excel's "Unicode text" (UTF-16 with a BOM, tab-separated) and a semicolon
/// CSV read as the comma CSV does; a CSV renamed .xlsx is said to be one.
#[tokio::test(flavor = "multi_thread")]
async fn utf16_tab_and_semicolon_lists_read_and_a_renamed_csv_is_named() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = Files::new();
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
    run.assert_said(2, &["is not a workbook", "a CSV renamed?"]);
    assert!(!run.stderr.contains("EOCD"), "{}", run.stderr);
}

/// Case 6: a 200 whose RenewalToken is an object (or a formula) is a protocol error, which
/// `--resume` sends again, never `renewed`.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_success_is_a_protocol_error_not_renewed() {
    let dir = Files::new();
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
    let dir = Files::new();
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
    let dir = Files::new();
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
    let dir = Files::new();
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

/// The sandbox's `always_http_200` switch answers as such a gateway does: a run against it
/// ends with every row classified as against the sandbox in normal mode (renewed, not
/// renewable, the flaky vehicles' 500s), with the warning once; a wrong Token aborts both
/// alike.
#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_sandbox_is_read_as_the_normal_one() {
    let dir = Files::new();
    let mut list = String::from("车牌号\n");
    for n in 0..40 {
        list.push_str(&format!("京A{n:05}\n"));
    }
    let input = dir.write("leads.csv", list.as_bytes());
    let mut outcomes = Vec::new();
    for always_http_200 in [false, true] {
        let sandbox = start_sandbox(SandboxConfig {
            always_http_200,
            flaky_percent: 25,
            ..SandboxConfig::default()
        })
        .await;
        let output = dir.path(&format!("out-{always_http_200}.csv"));
        let run = run_sandboxed(&sandbox, &[&input, "-o", &output]).await;
        let rows = read_results(std::path::Path::new(&output));
        let n_warnings = run.stderr.matches("answers HTTP 200 with body code").count();
        assert_eq!(n_warnings, usize::from(always_http_200), "{}", run.stderr);
        let statuses: Vec<(String, String)> = rows
            .into_iter()
            .map(|row| (row.status, row.renewal_token))
            .collect();
        outcomes.push((run.code, statuses));

        let wrong_token = run_binary(
            &[
                "run",
                &input,
                "-o",
                &dir.path("wrong.csv"),
                "--force",
                "--base-url",
                sandbox.base_url().as_str(),
                "--agent-id",
                "102",
                "--token",
                "WRONG",
                "--secret-key",
                "sandbox-secret",
                "--no-progress",
                "--retries",
                "0",
            ],
            &[],
        )
        .await;
        assert_eq!(wrong_token.code, 3, "{}", wrong_token.stderr);
    }
    let (normal, gateway) = (&outcomes[0], &outcomes[1]);
    assert_eq!(normal, gateway);
    let count = |status: &str| normal.1.iter().filter(|(s, _)| s == status).count();
    assert!(
        count("renewed") > 0 && count("not_renewable") > 0,
        "{:?}",
        normal.1
    );
    assert!(
        normal.1.len() == 40 && count("renewed") + count("not_renewable") < 40,
        "{:?}",
        normal.1
    );
}

/// Case 5: a body that never ends is read up to 1 MB, the row is a protocol error, and the
/// run stays small; a 100 MB `msg` is cut in the results.
#[tokio::test(flavor = "multi_thread")]
async fn endless_and_huge_answers_are_cut_and_memory_stays_small() {
    let dir = Files::new();
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

/// CRC-32 (IEEE), for the stored entries of a hand-made zip.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One entry of a hand-made zip: name, method (0 stored, 8 deflated), CRC, the data as
/// stored, and the unpacked size the directory declares.
struct ZipEntry {
    name: &'static str,
    method: u16,
    crc: u32,
    data: Vec<u8>,
    declared_size: u32,
}

impl ZipEntry {
    fn stored(name: &'static str, text: &str) -> ZipEntry {
        ZipEntry {
            name,
            method: 0,
            crc: crc32(text.as_bytes()),
            data: text.as_bytes().to_vec(),
            declared_size: text.len() as u32,
        }
    }
}

/// A zip archive of `entries`, local headers, central directory and end record.
fn zip_archive(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for entry in entries {
        let offset = out.len() as u32;
        let common = |buffer: &mut Vec<u8>| {
            buffer.extend_from_slice(&20u16.to_le_bytes()); // version needed
            buffer.extend_from_slice(&0u16.to_le_bytes()); // flags
            buffer.extend_from_slice(&entry.method.to_le_bytes());
            buffer.extend_from_slice(&0u16.to_le_bytes()); // time
            buffer.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            buffer.extend_from_slice(&entry.crc.to_le_bytes());
            buffer.extend_from_slice(&(entry.data.len() as u32).to_le_bytes());
            buffer.extend_from_slice(&entry.declared_size.to_le_bytes());
            buffer.extend_from_slice(&(entry.name.len() as u16).to_le_bytes());
            buffer.extend_from_slice(&0u16.to_le_bytes()); // extra
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(entry.name.as_bytes());
        out.extend_from_slice(&entry.data);

        directory.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        directory.extend_from_slice(&20u16.to_le_bytes()); // made by
        common(&mut directory);
        directory.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        directory.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        directory.extend_from_slice(&offset.to_le_bytes());
        directory.extend_from_slice(entry.name.as_bytes());
    }
    let directory_offset = out.len() as u32;
    out.extend_from_slice(&directory);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A raw deflate stream of `prefix`, `n` times `a`, and `suffix`, written by hand: the run of
/// `a` is a dynamic-Huffman block whose only codes are "258 bytes back 1" and its end, one bit
/// each, so 1 GB packs into about 1 MB in a few milliseconds (no compressor runs).
fn deflate_run(prefix: &[u8], n: u64, suffix: &[u8]) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn bits(&mut self, value: u64, count: u32) {
            self.acc |= value << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, value: u64, count: u32) {
            let reversed = (0..count).fold(0, |r, i| (r << 1) | ((value >> i) & 1));
            self.bits(reversed, count);
        }
        /// A literal byte in the fixed code.
        fn literal(&mut self, byte: u8) {
            let byte = u64::from(byte);
            if byte < 144 {
                self.code(0x30 + byte, 8)
            } else {
                self.code(0x190 + byte - 144, 9)
            }
        }
    }
    let mut w = Bits {
        out: Vec::with_capacity((n / 258 / 4) as usize + 1024),
        acc: 0,
        n: 0,
    };
    // Block 1, fixed code: the prefix and the first `a`.
    w.bits(0, 1);
    w.bits(1, 2);
    for &byte in prefix.iter().chain(b"a") {
        w.literal(byte);
    }
    w.code(0, 7);
    // Block 2, dynamic: 286 literal/length codes, 1 distance code, 18 code-length codes.
    let (matches, rest) = ((n - 1) / 258, (n - 1) % 258);
    w.bits(0, 1);
    w.bits(2, 2);
    w.bits(29, 5);
    w.bits(0, 5);
    w.bits(14, 4);
    for symbol in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        w.bits(if symbol == 18 || symbol == 1 { 1 } else { 0 }, 3);
    }
    // Lengths: 256 zeros (18 x 138, 18 x 118), 1 for end-of-block, 28 zeros, 1 for
    // length 258, 1 for distance 1. Code-length codes: 1 -> 0, 18 -> 1.
    w.code(1, 1);
    w.bits(127, 7);
    w.code(1, 1);
    w.bits(107, 7);
    w.code(0, 1);
    w.code(1, 1);
    w.bits(17, 7);
    w.code(0, 1);
    w.code(0, 1);
    for _ in 0..matches {
        w.code(1, 1); // length 258
        w.code(0, 1); // distance 1
    }
    w.code(0, 1); // end of block
    // Block 3, fixed and final: the rest of the run and the suffix.
    w.bits(1, 1);
    w.bits(1, 2);
    for _ in 0..rest {
        w.literal(b'a');
    }
    for &byte in suffix {
        w.literal(byte);
    }
    w.code(0, 7);
    if w.n > 0 {
        w.out.push(w.acc as u8);
    }
    w.out
}

/// An `.xlsx` whose one shared string is 1 GB of `a` (about 1 MB on disk); the directory
/// declares `declared_size` for it (the truth, or a lie).
fn shared_string_bomb(declared_size: Option<u32>) -> Vec<u8> {
    const PREFIX: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>"#;
    const SUFFIX: &str = "</t></si></sst>";
    const RUN: u64 = 1 << 30;
    // CRC-32 of PREFIX, 2^30 times `a` and SUFFIX (computed once, outside the test: computing
    // it here would cost seconds).
    const CRC: u32 = 0x2c65_cbf9;
    let shared = ZipEntry {
        name: "xl/sharedStrings.xml",
        method: 8,
        crc: CRC,
        data: deflate_run(PREFIX.as_bytes(), RUN, SUFFIX.as_bytes()),
        declared_size: declared_size.unwrap_or((PREFIX.len() + SUFFIX.len()) as u32 + RUN as u32),
    };
    zip_archive(&[
        ZipEntry::stored(
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#,
        ),
        ZipEntry::stored(
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        ZipEntry::stored(
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        ZipEntry::stored(
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#,
        ),
        ZipEntry::stored(
            "xl/worksheets/sheet1.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>车牌号</t></is></c></row><row r="2"><c r="A2" t="s"><v>0</v></c></row></sheetData></worksheet>"#,
        ),
        shared,
    ])
}

/// A workbook with a header, one plate, and a cell at `far` (row, column; 0-based).
fn workbook_with_far_cell(far: (u32, u16)) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "车牌号").unwrap();
    sheet.write_string(1, 0, "京J97896").unwrap();
    sheet.write_string(far.0, far.1, "x").unwrap();
    workbook.save_to_buffer().unwrap()
}

/// Case 3: workbook bombs. Cells at A1 and XFD1048576 (a grid of 17 billion cells), and one
/// 1 GB shared string in a 1 MB file, honestly declared or hidden behind a lying directory:
/// each is refused with exit 2 in well under a second and a few MB, before any request or
/// file, naming the limit and its flag; the next run on the same OUTPUT is not blocked.
#[tokio::test(flavor = "multi_thread")]
async fn workbook_bombs_are_refused_before_they_are_read() {
    let dir = Files::new();
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let output = dir.path("out.csv");
    let far = dir.write("far.xlsx", &workbook_with_far_cell((1_048_575, 16_383)));
    let bomb = shared_string_bomb(None);
    assert!(bomb.len() < 1_100_000, "{} bytes", bomb.len());
    let shared = dir.write("shared.xlsx", &bomb);
    let lying = dir.write("lying.xlsx", &shared_string_bomb(Some(1000)));
    // The lying directory (1000 bytes declared) is the zip reader's to catch: it stops the
    // entry at its declared size with an error.
    for (input, extra, says) in [
        (&far, &[][..], "has cells from A1 to XFD1048576"),
        (
            &shared,
            &[][..],
            "its shared strings (xl/sharedStrings.xml) unpack to 1024.0 MB",
        ),
        (&lying, &[][..], "larger than its declared uncompressed size"),
    ] {
        for dry in [true, false] {
            let mut args = vec![input.as_str(), "-o", output.as_str()];
            args.extend_from_slice(extra);
            if dry {
                args.push("--dry-run");
            }
            let started = std::time::Instant::now();
            let run = run_sandboxed(&sandbox, &args).await;
            let elapsed = started.elapsed();
            eprintln!(
                "{input} dry={dry}: exit {}, {elapsed:?}, peak {} kB",
                run.code,
                peak_kb(&run)
            );
            assert_eq!(run.code, 2, "{input} dry={dry}: {}", run.stderr);
            assert!(run.stderr.contains(says), "{}", run.stderr);
            if input != &lying {
                assert!(
                    run.stderr.contains("is larger than the tool reads"),
                    "{}",
                    run.stderr
                );
                assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
                assert!(
                    run.stderr.contains("--max-cells") || run.stderr.contains("--max-unzipped-mb"),
                    "{}",
                    run.stderr
                );
            }
            assert!(
                elapsed < std::time::Duration::from_secs(3),
                "{input}: {elapsed:?}"
            );
            assert!(peak_kb(&run) < 40_000, "{input}: peak {} kB", peak_kb(&run));
            assert!(!std::path::Path::new(&output).exists());
            assert!(!std::path::Path::new(&format!("{output}.partial")).exists());
        }
    }
    assert_eq!(sandbox.stats().requests, 0);

    // The next run on the same OUTPUT is not blocked by anything the refused ones left.
    let good = dir.write("good.xlsx", &workbook_with_far_cell((2, 1)));
    let run = run_sandboxed(&sandbox, &[&good, "-o", &output]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read_results(std::path::Path::new(&output)).len(), 2);
}

/// Case 3, the sheet read once: a live run holds one grid, as a dry run does (before, the
/// survey read the sheet a second time beside the first).
#[tokio::test(flavor = "multi_thread")]
async fn a_live_run_reads_its_workbook_once() {
    let dir = Files::new();
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    // A grid of 26 columns by 100,000 rows: 2.6 million cells, about 83 MB at 32 bytes each.
    let input = dir.write("wide.xlsx", &workbook_with_far_cell((99_999, 25)));
    let dry = run_sandboxed(&sandbox, &[&input, "-o", &dir.path("dry.csv"), "--dry-run"]).await;
    assert_eq!(dry.code, 1, "one row has no vehicle: {}", dry.stderr);
    let live = run_sandboxed(&sandbox, &[&input, "-o", &dir.path("live.csv")]).await;
    assert_eq!(live.code, 0, "{}", live.stderr);
    let (dry_kb, live_kb) = (peak_kb(&dry), peak_kb(&live));
    let grid_kb = 2_600_000 * 32 / 1024;
    eprintln!("dry run peak {dry_kb} kB, live run peak {live_kb} kB, grid {grid_kb} kB");
    assert!(dry_kb > grid_kb, "the grid is in memory: {dry_kb} kB");
    assert!(
        live_kb < dry_kb + grid_kb / 2,
        "live {live_kb} kB against dry {dry_kb} kB: the sheet was read twice"
    );
    let rows = read_results(std::path::Path::new(&dir.path("live.csv")));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].status, "renewed");
    assert_eq!(rows[1].status, "invalid_input");
}

/// Case 4: memory is bounded by bytes, not rows. 80 rows of about 900 KB each (15 fields of
/// 60 KB beside the plate, a 72 MB list) go through a live run whose window and reader batches
/// are capped in bytes (16 MB, 1 MB): the peak stays far below the list's size, every row is
/// written in order, and a row with a field over 64 KB is `invalid_input`.
#[tokio::test(flavor = "multi_thread")]
async fn memory_is_bounded_by_bytes_not_rows() {
    let dir = Files::new();
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let n_rows = 80;
    let note = "n".repeat(60_000);
    let mut list = String::from("车牌号");
    for i in 0..15 {
        list.push_str(&format!(",note{i}"));
    }
    list.push('\n');
    for row in 0..n_rows {
        list.push_str(&format!("京A{row:05}"));
        for i in 0..15 {
            list.push(',');
            if row == 1 && i == 0 {
                list.push_str(&"x".repeat(100_000));
            } else {
                list.push_str(&note);
            }
        }
        list.push('\n');
    }
    let input = dir.write("big.csv", list.as_bytes());
    drop(list);
    let output = dir.path("out.csv");
    let run = run_sandboxed(
        &sandbox,
        &[&input, "-o", &output, "--rate", "1000", "--burst", "100"],
    )
    .await;
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let peak = peak_kb(&run);
    eprintln!("a 72 MB list of 80 rows: live run peak {peak} kB");
    assert!(peak < 64_000, "peak {peak} kB for a 72 MB list");
    let rows = read_results(std::path::Path::new(&output));
    assert_eq!(rows.len(), n_rows);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.row, i as u64 + 1, "in input order");
        assert!(!row.status.is_empty());
    }
    assert_eq!(rows[1].status, "invalid_input", "{}", rows[1].message);
    assert_eq!(sandbox.stats().requests, n_rows as u64 - 1);
}
