//! Uploads that do not become jobs leave nothing: a request that goes away during its check,
//! the leftovers of a crash (swept at start and by retention), and the message for a list
//! that cannot be read, which tells a clerk what to do at the service.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{Options, Service, error_of, uploads_left};
use bihu_renew::serve as service_lib;
use bihu_renew::serve::api::JobView;
use reqwest::StatusCode;

/// `name,LicenseNo` for `n` rows of valid plates (repeating after 1,000,000).
fn long_list(n: usize) -> Vec<u8> {
    let mut csv = String::from("name,LicenseNo\n");
    for i in 0..n {
        let letter = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K'][i / 100_000 % 10];
        csv.push_str(&format!("客户{i},京{letter}{:05}\n", i % 100_000));
    }
    csv.into_bytes()
}

/// Polls until `done` holds, at most `within`.
async fn eventually(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_request_that_goes_away_during_the_check_leaves_no_upload_and_no_job() {
    let service = Service::start(Options {
        max_upload_bytes: 64 << 20,
        ..Options::default()
    })
    .await;
    let file = long_list(100_000);
    let boundary = "bihu-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let addr = service.served.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/jobs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();

    // The check has begun once it puts anything beside the upload (its lock first, its
    // check.csv last, when it is over).
    let uploads = service.data_dir().join("uploads");
    let checking = || {
        let Ok(dirs) = std::fs::read_dir(&uploads) else {
            return false;
        };
        dirs.flatten().any(|dir| {
            std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .any(|file| file.file_name() != "input.csv")
        })
    };
    eventually(Duration::from_secs(30), "the check begins", checking).await;
    // The client goes away mid-check (as a closed tab or a client's timeout does).
    drop(stream);

    eventually(Duration::from_secs(60), "uploads/ is empty again", || {
        uploads_left(&service) == 0
    })
    .await;
    let jobs: Vec<JobView> = service.get_json("/api/jobs").await;
    assert!(
        jobs.is_empty(),
        "no job nobody was told of (if the check ended before the client went away, make the list longer): {jobs:?}"
    );
    assert!(!service.data_dir().join("jobs").exists());
    service.shutdown().await;
}

#[tokio::test]
async fn uploads_left_by_a_crash_go_at_start_and_with_retention_but_not_one_in_progress() {
    fn left_by_a_crash(data_dir: &std::path::Path) {
        let stale = data_dir.join("uploads").join("0123456789abcdef01234567");
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("input.csv"), "name,LicenseNo\n张三,京A00001\n").unwrap();
        std::fs::write(stale.join("check.csv"), "name,LicenseNo,row\n").unwrap();
    }
    let service = Service::start(Options {
        prepare: Some(left_by_a_crash),
        ..Options::default()
    })
    .await;
    assert_eq!(uploads_left(&service), 0, "swept at start");

    // While the service runs: a folder nobody holds goes with retention's sweep; one that a
    // request holds (it is streaming or being checked) stays.
    let uploads = service.data_dir().join("uploads");
    let stale = uploads.join("fedcba9876543210fedcba98");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("input.csv"), "name,LicenseNo\n").unwrap();
    std::fs::write(uploads.join("stray.tmp"), "x").unwrap();
    let held = service.state.jobs.upload_dir().unwrap();
    std::fs::write(held.path().join("input.csv"), "name,LicenseNo\n").unwrap();
    service_lib::retention::sweep(&service.state).await.unwrap();
    assert!(!stale.exists() && !uploads.join("stray.tmp").exists());
    assert!(
        held.path().join("input.csv").exists(),
        "an upload in progress stays"
    );
    assert_eq!(uploads_left(&service), 1);
    drop(held);
    assert_eq!(uploads_left(&service), 0, "a dropped upload takes its folder");
    service.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_list_is_422_saying_what_a_clerk_can_do_not_naming_a_cli_flag() {
    let service = Service::start(Options::default()).await;
    let mut mixed = "name,车牌号\n张三,京J97896\n".as_bytes().to_vec();
    let (gbk, _, _) = encoding_rs::GBK.encode("李四,京A12345\n");
    mixed.extend_from_slice(&gbk);
    mixed.extend_from_slice("王五,沪A12345\n".as_bytes());
    let junk = b"name,plate\n\xff\xff\xff,x\n".to_vec();
    for (name, bytes, says) in [
        (
            "mixed.csv",
            mixed,
            "mixed.csv mixes text encodings: line 1 is UTF-8, line 3 is not",
        ),
        ("junk.csv", junk, "junk.csv: line 2 is neither UTF-8 nor GBK"),
    ] {
        let response = service.upload(name, bytes, &[]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let message = error_of(response).await;
        assert!(message.starts_with(says), "{message}");
        assert!(
            message.contains("\"CSV UTF-8\"") && message.contains(".xlsx"),
            "{message}"
        );
        assert!(!message.contains("--"), "no CLI flag at the service: {message}");
        assert!(
            !message.contains(&*service.data_dir().to_string_lossy()),
            "{message}"
        );
    }
    // A workbook past the cells the reader takes: split it, not a flag to raise the bound.
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.write_string(0, 0, "车牌号").unwrap();
    sheet.write_string(1, 0, "京J97896").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    let far = workbook.save_to_buffer().unwrap();
    let response = service.upload("far.xlsx", far, &[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = error_of(response).await;
    assert!(
        message.starts_with("far.xlsx is larger than the service reads")
            && message.contains("has cells from A1 to XFD1048576"),
        "{message}"
    );
    assert!(message.contains("Split the list"), "{message}");
    assert!(!message.contains("--"), "no CLI flag at the service: {message}");
    assert_eq!(uploads_left(&service), 0);
    service.shutdown().await;
}
