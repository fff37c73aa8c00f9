//! Uploads that do not become jobs leave nothing: a request that goes away during its check,
//! and the leftovers of a crash (swept at start and by retention).

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{Options, Service, uploads_left};
use bihu_renew::serve as service_lib;
use bihu_renew::serve::api::JobView;

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
    let addr = service.base.trim_start_matches("http://").to_string();
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
    let jobs: Vec<JobView> = service
        .http
        .get(service.url("/api/jobs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
