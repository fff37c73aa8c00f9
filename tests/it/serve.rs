//! The service (issue 17) end to end: `serve::serve` in-process on `127.0.0.1:0` with jobs
//! sent to a sandbox on another loopback port, and the real binary for what only a process
//! shows (refusing to start, `hash-password`, surviving `kill -9`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bihu_renew::listen::Limits;
use bihu_renew::sandbox::{Sandbox, SandboxConfig};
use bihu_renew::serve::api::JobView;
use bihu_renew::serve::store::JobState;
use bihu_renew::serve::{self, AppState, ServeConfig};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::support::{Served, client, job_settings, parse_results, serve_config, start_sandbox, user};

mod access;
mod states;
mod uploads;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/leads.csv");

/// `name,LicenseNo` for plates 1..=n, all distinct vehicles of 北京.
fn plate_list(n: usize) -> String {
    let mut csv = String::from("name,LicenseNo\n");
    for i in 1..=n {
        csv.push_str(&format!("客户{i},京A{i:05}\n"));
    }
    csv
}

/// How a test service is set up.
struct Options {
    sandbox: SandboxConfig,
    users: Vec<(&'static str, &'static str)>,
    rate: u32,
    burst: u32,
    concurrency: usize,
    max_upload_bytes: u64,
    retention: Duration,
    history: Option<PathBuf>,
    reuse_within: Option<Duration>,
    limits: Limits,
    /// Retries of a row after a transient failure.
    retries: u32,
    /// The Token jobs send, if not the sandbox's own.
    token: Option<String>,
    /// Run on the data dir before the service opens it.
    prepare: Option<fn(&Path)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sandbox: SandboxConfig::default(),
            users: Vec::new(),
            rate: 200,
            burst: 1,
            concurrency: 4,
            max_upload_bytes: 1024 * 1024,
            retention: Duration::from_secs(30 * 86_400),
            history: None,
            reuse_within: None,
            limits: Limits::default(),
            retries: 2,
            token: None,
            prepare: None,
        }
    }
}

impl Options {
    /// The defaults, with one user.
    fn with_user(name: &'static str, password: &'static str) -> Options {
        Options {
            users: vec![(name, password)],
            ..Options::default()
        }
    }

    /// A sandbox answering after 20 ms, jobs at rate 40 with concurrency 2: a list of a
    /// hundred rows runs for seconds, long enough to be cancelled mid-run.
    fn slow_enough_to_cancel() -> Options {
        Options {
            sandbox: SandboxConfig {
                latency: Duration::from_millis(20),
                ..SandboxConfig::default()
            },
            rate: 40,
            concurrency: 2,
            ..Options::default()
        }
    }
}

/// A service in-process, its sandbox, and a client for it.
struct Service {
    sandbox: Sandbox,
    state: AppState,
    served: Served,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn start(options: Options) -> Service {
        let sandbox = start_sandbox(SandboxConfig {
            record_requests: true,
            ..options.sandbox
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let users = options
            .users
            .iter()
            .map(|(name, password)| user(name, password))
            .collect();
        let data_dir = dir.path().join("data");
        if let Some(prepare) = options.prepare {
            prepare(&data_dir);
        }
        let mut settings = job_settings(&sandbox, options.rate, options.burst, options.concurrency);
        settings.retries = options.retries;
        if let Some(token) = options.token {
            settings.token = Some(token);
        }
        let (served, state) = Served::start(ServeConfig {
            max_upload_bytes: options.max_upload_bytes,
            retention: options.retention,
            history: options.history.clone(),
            reuse_within: options.reuse_within,
            limits: options.limits,
            ..serve_config(data_dir, users, settings)
        })
        .await;
        Service {
            sandbox,
            state,
            served,
            http: client(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        self.served.url(path)
    }

    fn data_dir(&self) -> &Path {
        &self.state.config.data_dir
    }

    async fn upload(&self, name: &str, bytes: Vec<u8>, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
        for (key, value) in fields {
            form = form.text(key.to_string(), value.to_string());
        }
        self.http
            .post(self.url("/api/jobs"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn create(&self, name: &str, bytes: Vec<u8>, fields: &[(&str, &str)]) -> JobView {
        let response = self.upload(name, bytes, fields).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn job(&self, id: i64) -> JobView {
        let response = self.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str) -> reqwest::Response {
        self.http.post(self.url(path)).send().await.unwrap()
    }

    /// [`Service::create`] with `start=true`: the job is queued at once.
    async fn create_started(&self, name: &str, bytes: Vec<u8>) -> JobView {
        self.create(name, bytes, &[("start", "true")]).await
    }

    /// `POST /api/jobs` of `body` as `content_type`: not the form [`Service::upload`] sends.
    async fn post_jobs(&self, content_type: &str, body: &'static str) -> reqwest::Response {
        self.http
            .post(self.url("/api/jobs"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/jobs` of the file `name` with Basic credentials.
    async fn upload_as(&self, user: &str, password: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
        let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
        self.http
            .post(self.url("/api/jobs"))
            .basic_auth(user, Some(password))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// `POST /api/login` of `name` and `password` as JSON, to be sent.
    fn login_request(&self, name: &str, password: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/api/login"))
            .json(&serde_json::json!({"name": name, "password": password}))
    }

    /// `GET path` without credentials.
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// The JSON body of `GET path`, whatever its status.
    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).await.json().await.unwrap()
    }

    /// The folder of job `id`'s files.
    fn job_dir(&self, id: i64) -> PathBuf {
        self.data_dir().join("jobs").join(id.to_string())
    }

    /// Asserts that `job`'s folder holds each of `files`, deletes the job (`204 No Content`),
    /// then asserts that its folder went with it and that it is `404 Not Found` since.
    async fn delete_and_assert_gone(&self, job: &JobView, files: &[&str]) {
        let dir = self.job_dir(job.id);
        for file in files {
            assert!(dir.join(file).exists(), "job {} has its {file}", job.id);
        }
        let deleted = self.http.delete(self.url(&job.links.this)).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        assert!(!dir.exists(), "job {}'s files are gone", job.id);
        let gone = self.get(&job.links.this).await;
        assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    }

    /// Waits until the job satisfies `done` (at most 30 s).
    async fn wait_for(&self, id: i64, what: &str, done: impl Fn(&JobView) -> bool) -> JobView {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} never became {what}: {job:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until job `id` has at least `rows` rows done.
    async fn wait_under_way(&self, id: i64, rows: u64) -> JobView {
        self.wait_for(id, "under way", |job| job.rows_done >= rows).await
    }

    /// Waits until job `id` is running with at least `rows` rows done.
    async fn wait_running(&self, id: i64, rows: u64) -> JobView {
        self.wait_for(id, "running with rows done", |job| {
            job.state == JobState::Running && job.rows_done >= rows
        })
        .await
    }

    async fn wait_state(&self, id: i64, state: JobState) -> JobView {
        self.wait_for(id, state.as_str(), |job| job.state == state).await
    }

    async fn shutdown(self) {
        self.served.stop().await;
        self.sandbox.shutdown().await;
    }
}

/// The value of the header `name` of `response`, which must have it, as text.
fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

async fn error_of(response: reqwest::Response) -> String {
    let value: Value = response.json().await.expect("a JSON error body");
    value["error"].as_str().expect("an error message").to_string()
}

fn sample() -> Vec<u8> {
    std::fs::read(SAMPLE).unwrap()
}

fn uploads_left(service: &Service) -> usize {
    std::fs::read_dir(service.data_dir().join("uploads"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_job_goes_from_upload_through_its_run_to_results_report_and_deletion() {
    let service = Service::start(Options::default()).await;
    let health: Value = service.get_json("/healthz").await;
    assert_eq!(health["status"], "ok");

    let job = service.create("leads.csv", sample(), &[]).await;
    assert_eq!(job.state, JobState::Validated);
    assert_eq!(
        (job.file_name.as_str(), job.rows, job.created_by.as_str()),
        ("leads.csv", 40, "local")
    );
    let preview = job.preview.clone().expect("a preview");
    assert_eq!(
        (preview.rows, preview.ready, preview.invalid, preview.duplicates),
        (40, 35, 5, 2)
    );
    assert_eq!(preview.requests_needed, 33);
    assert!(!preview.top_reasons.is_empty());
    assert!((preview.estimated_seconds - 33.0 / 200.0).abs() < 1e-9);
    assert_eq!(service.sandbox.stats().requests, 0, "a check sends nothing");

    let started = service.post(&format!("/api/jobs/{}/start", job.id)).await;
    assert_eq!(started.status(), StatusCode::OK);
    let done = service.wait_state(job.id, JobState::Done).await;
    assert_eq!(done.rows_done, 40);
    assert_eq!(done.requests, 33);
    assert_eq!(done.counts["invalid_input"], 5);
    assert_eq!(done.counts.values().sum::<u64>(), 40);
    assert!(done.started_at.is_some() && done.finished_at.is_some());

    // A done job cannot be started again; retry runs it again as --resume: nothing to send.
    let again = service.post(&format!("/api/jobs/{}/start", job.id)).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(error_of(again).await.contains("is done"));

    let csv = service.get(&done.links.results_csv).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(header(&csv, "content-type").starts_with("text/csv"));
    let (_, rows) = parse_results(&csv.bytes().await.unwrap());
    assert_eq!(rows.len(), 40);
    assert_eq!(
        rows.iter().filter(|r| r.status == "renewed").count() as u64,
        done.counts["renewed"]
    );

    let report: Value = service.get_json(&done.links.report_json).await;
    assert_eq!(report["rows"], 40);
    let html = service.get(&done.links.report_html).await;
    assert_eq!(html.status(), StatusCode::OK);
    assert!(html.text().await.unwrap().contains("<html"));

    let events = service.get(&done.links.events).await;
    assert!(header(&events, "content-type").starts_with("text/event-stream"));
    let text = tokio::time::timeout(Duration::from_secs(10), events.text())
        .await
        .unwrap()
        .unwrap();
    assert!(text.starts_with("event: job\ndata: {"), "{text}");
    assert!(text.contains("event: end\ndata: done"), "{text}");

    let retried = service.post(&format!("/api/jobs/{}/retry", job.id)).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let done_again = service.wait_state(job.id, JobState::Done).await;
    assert_eq!(done_again.rows_done, 40);
    assert_eq!(
        service.sandbox.stats().requests,
        33,
        "a retry of a complete job sends nothing"
    );

    let list: Vec<JobView> = service.get_json("/api/jobs").await;
    assert_eq!(list.len(), 1);
    service
        .delete_and_assert_gone(&done, &["results.csv", "input.csv"])
        .await;
    service.shutdown().await;
}

#[tokio::test]
async fn start_true_queues_at_once_and_xlsx_and_city_code_are_read() {
    let service = Service::start(Options::default()).await;
    let xlsx = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/leads.xlsx")).unwrap();
    let job = service
        .create("leads.xlsx", xlsx, &[("start", "true"), ("city_code", "北京")])
        .await;
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.city_code, Some(1));
    let done = service.wait_state(job.id, JobState::Done).await;
    assert_eq!(done.rows_done, 40);
    service.shutdown().await;
}

#[tokio::test]
async fn bad_uploads_and_unknown_jobs_are_4xx_with_a_message_and_leave_nothing() {
    let service = Service::start(Options {
        max_upload_bytes: 4096,
        ..Options::default()
    })
    .await;
    let not_multipart = service.post_jobs("text/csv", "LicenseNo\n京A00001\n").await;
    assert_eq!(not_multipart.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(not_multipart).await.contains("multipart/form-data"));

    let no_file = service
        .http
        .post(service.url("/api/jobs"))
        .multipart(Form::new().text("start", "true"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_file.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(no_file).await.contains("field named file"));

    let broken = service
        .post_jobs(
            "multipart/form-data; boundary=X",
            "--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nLicenseNo\n",
        )
        .await;
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);

    let not_a_list = service
        .upload("notes.csv", b"hello,world\n1,2\n".to_vec(), &[])
        .await;
    assert_eq!(not_a_list.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = error_of(not_a_list).await;
    assert!(
        message.starts_with("notes.csv has no vehicle column"),
        "{message}"
    );
    assert!(
        !message.contains(&*service.data_dir().to_string_lossy()),
        "{message}"
    );

    let empty = service.upload("empty.csv", Vec::new(), &[]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let too_big = service.upload("big.csv", plate_list(400).into_bytes(), &[]).await;
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(too_big).await.contains("max_upload_mb"));

    let bad_city = service
        .upload("a.csv", plate_list(2).into_bytes(), &[("city_code", "Atlantis")])
        .await;
    assert_eq!(bad_city.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(bad_city).await.contains("not a Bihu city"));
    let bad_start = service
        .upload("a.csv", plate_list(2).into_bytes(), &[("start", "maybe")])
        .await;
    assert_eq!(bad_start.status(), StatusCode::BAD_REQUEST);

    let list: Vec<Value> = service.get_json("/api/jobs").await;
    assert!(list.is_empty(), "nothing half-stored: {list:?}");
    assert_eq!(uploads_left(&service), 0);
    assert!(!service.data_dir().join("jobs").exists());

    let wrong_method = service.get("/api/jobs/1/start").await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(wrong_method).await.contains("method"));
    for path in [
        "/api/jobs/999",
        "/api/jobs/abc",
        "/api/jobs/-1/results.csv",
        "/api/nothing",
    ] {
        let response = service.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!error_of(response).await.is_empty());
    }
    for action in ["start", "cancel", "retry"] {
        let response = service.post(&format!("/api/jobs/7/{action}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{action}");
    }
    let validated = service.create("a.csv", plate_list(2).into_bytes(), &[]).await;
    let no_results = service.get(&validated.links.results_csv).await;
    assert_eq!(no_results.status(), StatusCode::CONFLICT);
    let retry = service.post(&format!("/api/jobs/{}/retry", validated.id)).await;
    assert_eq!(retry.status(), StatusCode::CONFLICT);
    service.shutdown().await;
}

#[tokio::test]
async fn cancel_stops_a_running_job_which_start_then_finishes_repeating_no_more_than_in_flight() {
    let service = Service::start(Options::slow_enough_to_cancel()).await;
    // Cancelling a validated job: at once.
    let waiting = service.create("w.csv", plate_list(3).into_bytes(), &[]).await;
    let cancelled: JobView = service
        .post(&format!("/api/jobs/{}/cancel", waiting.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);

    let job = service
        .create_started("big.csv", plate_list(200).into_bytes())
        .await;
    service.wait_running(job.id, 10).await;
    let response = service.post(&format!("/api/jobs/{}/cancel", job.id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let stopped = service.wait_state(job.id, JobState::Cancelled).await;
    assert!(stopped.rows_done < 200, "{stopped:?}");
    let cancel_again = service.post(&format!("/api/jobs/{}/cancel", job.id)).await;
    assert_eq!(cancel_again.status(), StatusCode::CONFLICT);
    let mut other_list = String::from("LicenseNo\n");
    for i in 1..=100 {
        other_list.push_str(&format!("沪B{i:05}\n"));
    }
    let running_delete = service.create_started("r.csv", other_list.into_bytes()).await;
    let refused = service
        .http
        .delete(service.url(&running_delete.links.this))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    service
        .post(&format!("/api/jobs/{}/cancel", running_delete.id))
        .await;
    service.wait_state(running_delete.id, JobState::Cancelled).await;

    let restarted = service.post(&format!("/api/jobs/{}/start", job.id)).await;
    assert_eq!(restarted.status(), StatusCode::OK);
    let done = service.wait_state(job.id, JobState::Done).await;
    assert_eq!((done.rows_done, done.counts.values().sum::<u64>()), (200, 200));
    let per_vehicle = service.sandbox.vehicle_requests();
    let repeats: u64 = per_vehicle.values().map(|n| n - 1).sum();
    assert!(
        repeats <= 2,
        "{repeats} repeats: a cancel finishes in-flight requests (concurrency 2)"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn refused_credentials_abort_the_job_with_the_message_and_it_can_be_retried_and_deleted() {
    let service = Service::start(Options {
        token: Some("WRONG".into()),
        concurrency: 2,
        ..Options::default()
    })
    .await;
    let job = service.create_started("l.csv", plate_list(20).into_bytes()).await;
    let aborted = service.wait_state(job.id, JobState::Aborted).await;
    let message = aborted.message.clone().unwrap();
    assert!(message.contains("credential failures"), "{message}");
    assert!(!message.contains("WRONG"), "the Token is never shown: {message}");
    let sent = service.sandbox.stats().requests;
    assert!((1..=5).contains(&sent), "{sent} requests");

    // Retry applies to an aborted job: it runs again (and, the Token still wrong, aborts
    // again, having asked Bihu again).
    let retried = service.post(&format!("/api/jobs/{}/retry", job.id)).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let again = service
        .wait_for(job.id, "aborted after its retry", |j| {
            j.state == JobState::Aborted && j.requests > aborted.requests
        })
        .await;
    assert!(service.sandbox.stats().requests > sent);
    assert!(again.message.unwrap().contains("credential failures"));

    // Deleting an aborted job takes its files and its row.
    service.delete_and_assert_gone(&job, &["input.csv"]).await;
    service.shutdown().await;
}

#[tokio::test]
async fn with_users_the_api_needs_a_session_or_basic_and_the_cookie_needs_the_csrf_token() {
    let service = Service::start(Options::with_user("clerk", "correct horse")).await;
    assert_eq!(service.get("/healthz").await.status(), StatusCode::OK);
    let anonymous = service.get("/api/jobs").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.headers().get("www-authenticate").is_none(),
        "no browser dialog for pages"
    );
    assert!(error_of(anonymous).await.contains("log in"));
    let anonymous_upload = service.upload("a.csv", plate_list(2).into_bytes(), &[]).await;
    assert_eq!(anonymous_upload.status(), StatusCode::UNAUTHORIZED);

    let wrong = service.get_as("/api/jobs", "clerk", "wrong").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&wrong, "www-authenticate").starts_with("Basic"));
    let basic = service
        .upload_as("clerk", "correct horse", "b.csv", plate_list(3).into_bytes())
        .await;
    assert_eq!(basic.status(), StatusCode::CREATED, "Basic needs no CSRF token");
    let job: JobView = basic.json().await.unwrap();
    assert_eq!(job.created_by, "clerk");

    let bad_login = service.login_request("clerk", "nope").send().await.unwrap();
    assert_eq!(bad_login.status(), StatusCode::UNAUTHORIZED);
    let login = service
        .http
        .post(service.url("/api/login"))
        .form(&[("name", "clerk"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = header(&login, "set-cookie").to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=3600", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session: Value = login.json().await.unwrap();
    let csrf = session["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(session["user"], "clerk");
    let cookie = cookie.split(';').next().unwrap().to_string();

    let with_cookie = |request: reqwest::RequestBuilder| request.header("cookie", cookie.clone());
    let listed = with_cookie(service.http.get(service.url("/api/jobs")))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let me: Value = with_cookie(service.http.get(service.url("/api/session")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["auth"].as_str(), me["csrf_token"].as_str()),
        (Some("session"), Some(&*csrf))
    );

    let start = format!("/api/jobs/{}/start", job.id);
    let no_token = with_cookie(service.http.post(service.url(&start)))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert!(error_of(no_token).await.contains("X-CSRF-Token"));
    let wrong_token = with_cookie(service.http.post(service.url(&start)))
        .header("x-csrf-token", "0".repeat(csrf.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    let cross_site = with_cookie(service.http.post(service.url(&start)))
        .header("x-csrf-token", &csrf)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let fetch_cross_site = service
        .http
        .post(service.url(&start))
        .basic_auth("clerk", Some("correct horse"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(
        fetch_cross_site.status(),
        StatusCode::FORBIDDEN,
        "a browser's cached Basic is no way in"
    );
    assert_eq!(
        service.job_as(job.id, "clerk", "correct horse").await.state,
        JobState::Validated
    );
    let started = with_cookie(service.http.post(service.url(&start)))
        .header("x-csrf-token", &csrf)
        .header("origin", service.served.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);

    // Nothing the service answers holds the agent's secret or Token: the API, the reports,
    // the event stream and the pages. Only results.csv does, in its quote URLs, as the CLI's
    // results do (README): a download for logged-in users.
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.job_as(job.id, "clerk", "correct horse").await.state != JobState::Done {
        assert!(Instant::now() < deadline, "the job never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secret = service.sandbox.config().secret.expose().to_string();
    let token = service.sandbox.config().token.clone();
    let id = job.id;
    let results = with_cookie(
        service
            .http
            .get(service.url(&format!("/api/jobs/{id}/results.csv"))),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(results.contains(&token), "the needle is real: {results}");
    for path in [
        "/api/jobs".to_string(),
        format!("/api/jobs/{id}"),
        "/api/session".to_string(),
        format!("/api/jobs/{id}/report.json"),
        format!("/api/jobs/{id}/report.html"),
        format!("/api/jobs/{id}/events"),
        "/jobs".to_string(),
        format!("/jobs/{id}"),
    ] {
        let mut response = with_cookie(service.http.get(service.url(&path)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        // At most 1 MB or 10 s of it: the event stream of a done job ends by itself.
        let mut body = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(chunk) = response.chunk().await.unwrap() {
                body.extend_from_slice(&chunk);
                if body.len() > 1 << 20 {
                    break;
                }
            }
        })
        .await;
        let body = String::from_utf8_lossy(&body);
        assert!(body.len() > 100, "{path}: {body}");
        assert!(
            !body.contains(&secret) && !body.contains(&token),
            "{path}: {body}"
        );
    }

    let logout = with_cookie(service.http.post(service.url("/api/logout")))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(header(&logout, "set-cookie").contains("Max-Age=0"));
    let after = with_cookie(service.http.get(service.url("/api/jobs")))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    service.shutdown().await;
}

impl Service {
    /// `GET path` with Basic credentials.
    async fn get_as(&self, path: &str, user: &str, password: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap()
    }

    async fn job_as(&self, id: i64, user: &str, password: &str) -> JobView {
        let path = format!("/api/jobs/{id}");
        self.get_as(&path, user, password).await.json().await.unwrap()
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_even_for_the_right_password_then() {
    let service = Service::start(Options::with_user("clerk", "pw")).await;
    let login = |password: &'static str| service.login_request("clerk", password).send();
    for _ in 0..4 {
        assert_eq!(login("bad").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    // The fifth failure locks the address out; then even the right password waits.
    assert_eq!(login("bad").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let locked = login("pw").await.unwrap();
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&locked, "retry-after").parse::<u64>().unwrap() >= 1);
    let basic = service.get_as("/api/jobs", "clerk", "pw").await;
    assert_eq!(
        basic.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "Basic is throttled too"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(login("pw").await.unwrap().status(), StatusCode::OK);
    // A success clears the count.
    assert_eq!(login("bad").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login("pw").await.unwrap().status(), StatusCode::OK);
    let open_login = Service::start(Options::default()).await;
    let refused = open_login.login_request("a", "b").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    open_login.shutdown().await;
    service.shutdown().await;
}

#[tokio::test]
async fn retention_deletes_old_jobs_files_and_rows_but_not_running_ones() {
    let service = Service::start(Options {
        retention: Duration::from_secs(1),
        rate: 5,
        ..Options::default()
    })
    .await;
    let old = service.create("old.csv", plate_list(2).into_bytes(), &[]).await;
    let running = service
        .create_started("run.csv", plate_list(100).into_bytes())
        .await;
    // The history is kept no longer than the jobs: an answer older than the retention goes.
    let vehicle = |plate: &str| bihu_renew::leads::lead::VehicleKey::Plate {
        plate: plate.into(),
        city: 1,
    };
    let old_answer = |plate: &str, age_ms: i64| bihu_renew::results::history::Answer {
        agent_id: service.sandbox.config().agent_id.clone(),
        vehicle: vehicle(plate),
        status: bihu_renew::results::outcome::Status::NotRenewable,
        http_status: Some(206),
        renewal_token: String::new(),
        message: "old".into(),
        answered_at: bihu_renew::results::history::unix_ms_now() - age_ms,
    };
    let history_path = service.state.config.history_path();
    bihu_renew::results::history::History::open(&history_path)
        .unwrap()
        .record_all(&[
            old_answer("沪A00001", 86_400_000),
            old_answer("沪A00002", -60_000),
        ])
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let deleted = serve::retention::sweep(&service.state).await.unwrap();
    assert_eq!(deleted, 1);
    let history = bihu_renew::results::history::History::open(&history_path).unwrap();
    let month = Duration::from_secs(30 * 86_400);
    let now = bihu_renew::results::history::unix_ms_now() + 120_000;
    let agent = &service.sandbox.config().agent_id;
    assert!(
        history
            .lookup(agent, &vehicle("沪A00001"), now, month)
            .unwrap()
            .is_none()
    );
    assert!(
        history
            .lookup(agent, &vehicle("沪A00002"), now, month)
            .unwrap()
            .is_some()
    );
    let gone = service.get(&old.links.this).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(!service.job_dir(old.id).exists());
    assert_eq!(service.job(running.id).await.state, JobState::Running);
    service.shutdown().await;
}

#[tokio::test]
async fn a_short_job_takes_turns_with_a_long_one_and_the_quota_holds_for_both() {
    let service = Service::start(Options {
        sandbox: SandboxConfig {
            latency: Duration::from_millis(5),
            ..SandboxConfig::default()
        },
        rate: 100,
        burst: 1,
        concurrency: 2,
        ..Options::default()
    })
    .await;
    let long = service
        .create_started("long.csv", plate_list(400).into_bytes())
        .await;
    service.wait_under_way(long.id, 20).await;
    let mut short_list = String::from("LicenseNo\n");
    for i in 1..=20 {
        short_list.push_str(&format!("沪A{i:05}\n"));
    }
    let short = service.create_started("short.csv", short_list.into_bytes()).await;
    let short_done = service.wait_state(short.id, JobState::Done).await;
    let long_then = service.job(long.id).await;
    assert!(
        long_then.rows_done < 400,
        "the short job waited for the long one: {long_then:?}"
    );
    assert_eq!(short_done.rows_done, 20);
    service.wait_state(long.id, JobState::Done).await;
    let stats = service.sandbox.stats();
    assert!(stats.max_in_flight <= 2, "concurrency is shared: {stats}");
    // No one-second window holds more than rate + burst requests.
    let times: Vec<Instant> = service.sandbox.requests().iter().map(|r| r.at).collect();
    let most = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && **t < *start + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(most <= 101, "{most} requests in one second at rate 100");
    service.shutdown().await;
}

// --- the real binary ---

/// A `serve` process whose stderr has said where it listens, and a client for it.
struct ServeProcess {
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

/// Starts `bihu-renew serve ARGS` and reads the port it listens on from its stderr.
async fn spawn_serve(args: &[&str]) -> ServeProcess {
    use tokio::io::AsyncBufReadExt;
    let mut child = crate::support::bihu_command()
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bihu-renew starts");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return rest.trim_end_matches('/').parse().unwrap();
            }
        }
        panic!("serve exited before listening");
    })
    .await
    .expect("serve listens within 20 s");
    // Keep draining stderr so that the process never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    ServeProcess {
        child,
        base: format!("http://{addr}"),
        http: client(),
    }
}

impl ServeProcess {
    /// `GET path` on the process.
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Uploads `bytes` as the file `name`, with `start=true` if `start`.
    async fn upload(&self, name: &str, bytes: Vec<u8>, start: bool) -> reqwest::Response {
        let mut form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_string()));
        if start {
            form = form.text("start", "true");
        }
        self.http
            .post(format!("{}/api/jobs", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn job(&self, id: i64) -> JobView {
        self.get(&format!("/api/jobs/{id}")).await.json().await.unwrap()
    }

    /// Polls job `id` every `every` until it is done, failing with `what` after `within`.
    async fn wait_done(&self, id: i64, within: Duration, every: Duration, what: &str) -> JobView {
        let deadline = Instant::now() + within;
        loop {
            let now = self.job(id).await;
            if now.state == JobState::Done {
                return now;
            }
            assert!(Instant::now() < deadline, "{what}: {now:?}");
            tokio::time::sleep(every).await;
        }
    }

    /// The rows of the results.csv at `path`.
    async fn results(&self, path: &str) -> Vec<crate::support::ResultRow> {
        let csv = self.get(path).await;
        parse_results(&csv.bytes().await.unwrap()).1
    }
}

/// `serve`'s flags to listen on `listen` with the settings in `config` and its files in `data`.
fn listen_args<'a>(listen: &'a str, config: &'a Path, data: &'a Path) -> [&'a str; 6] {
    [
        "--listen",
        listen,
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]
}

fn write_config(dir: &Path, sandbox: &Sandbox, extra: &str) -> PathBuf {
    let config = sandbox.config();
    let path = dir.join("bihu.toml");
    std::fs::write(
        &path,
        format!(
            "base_url = \"{}\"\nagent_id = \"{}\"\ntoken = \"{}\"\nsecret_key = \"{}\"\nrate = 20\nconcurrency = 4\n{extra}",
            sandbox.base_url(),
            config.agent_id,
            config.token,
            config.secret.expose()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[tokio::test]
async fn the_binary_refuses_to_listen_beyond_loopback_without_users() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sandbox, "");
    let data = dir.path().join("data");
    let mut args = vec!["serve"];
    args.extend(listen_args("0.0.0.0:0", &config, &data));
    let refused = crate::support::run_binary(&args, &[]).await;
    refused.assert_said(2, &["without users"]);
    assert!(!data.exists(), "nothing is created before the refusal");

    let bad_hash = write_config(
        dir.path(),
        &sandbox,
        "[[serve.users]]\nname = \"a\"\npassword_hash = \"plain\"\n",
    );
    let refused = crate::support::run_binary(&["serve", "--config", bad_hash.to_str().unwrap()], &[]).await;
    refused.assert_said(2, &["hash-password"]);
}

#[tokio::test]
async fn hash_password_prints_an_argon2id_hash_of_stdin() {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_bihu-renew"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    let hash = String::from_utf8(output.stdout).unwrap();
    let hash = hash.trim();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(bihu_renew::serve::auth::check_hash(hash).is_ok());
    assert!(!hash.contains("s3cret"));
}

#[tokio::test]
async fn killed_with_sigkill_mid_job_the_service_resumes_it_and_a_queued_one_on_the_next_start() {
    let sandbox = start_sandbox(SandboxConfig {
        latency: Duration::from_millis(30),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), &sandbox, "[serve]\nretention_days = 1\n");
    let args = listen_args("127.0.0.1:0", &config, &data);
    let first = spawn_serve(&args).await;
    let job: JobView = first
        .upload("nightly.csv", plate_list(100).into_bytes(), true)
        .await
        .json()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.job(job.id).await.rows_done < 30 {
        assert!(Instant::now() < deadline, "the job never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A second job, validated now, is queued when the process dies: as a start made just
    // before the kill leaves it (the store says queued; no run has begun). Set in the store
    // while the process is dead, since a run begins the moment a job is queued.
    let mut waiting_list = String::from("LicenseNo\n");
    for i in 1..=20 {
        waiting_list.push_str(&format!("沪C{i:05}\n"));
    }
    let waiting: JobView = first
        .upload("waiting.csv", waiting_list.into_bytes(), false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(waiting.state, JobState::Validated);
    let mut child = first.child;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let sent_before = sandbox.stats().requests;
    assert!(sent_before < 100, "killed mid-job: {sent_before}");
    let store = bihu_renew::serve::store::Store::open(&data.join(serve::STORE_FILE)).unwrap();
    let now = bihu_renew::serve::jobs::unix_now();
    assert!(
        store
            .transition(waiting.id, &[JobState::Validated], JobState::Queued, now, None)
            .await
            .unwrap()
    );
    drop(store);

    let second = spawn_serve(&args).await;
    let (within, every) = (Duration::from_secs(30), Duration::from_millis(50));
    let done = second
        .wait_done(job.id, within, every, "the job was not resumed")
        .await;
    assert_eq!(done.rows_done, 100);
    let waited = second
        .wait_done(waiting.id, within, every, "the queued job was not run")
        .await;
    assert_eq!((waited.rows_done, waited.requests), (20, 20));
    let rows = second.results(&format!("/api/jobs/{}/results.csv", job.id)).await;
    let numbers: Vec<u64> = rows.iter().map(|r| r.row).collect();
    assert_eq!(numbers, (1..=100).collect::<Vec<u64>>());
    let per_vehicle = sandbox.vehicle_requests();
    assert_eq!(per_vehicle.len(), 120, "both jobs' vehicles");
    let repeats: u64 = per_vehicle.values().map(|n| n - 1).sum();
    assert!(repeats <= 4, "{repeats} repeated requests; concurrency is 4");
    let by_status: BTreeMap<&str, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.status.as_str()).or_default() += 1;
        m
    });
    assert_eq!(by_status.values().sum::<usize>(), 100);
    drop(second);
}

#[tokio::test]
async fn serve_sandbox_from_the_binary_runs_the_sample_list_to_the_end() {
    // The README's first step on a fresh clone: `cargo run -- serve --sandbox`, nothing else.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let process = spawn_serve(&[
        "--sandbox",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .await;
    let health = process.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let created = process.upload("leads.csv", sample(), true).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let job: JobView = created.json().await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    let done = process
        .wait_done(
            job.id,
            Duration::from_secs(60),
            Duration::from_millis(100),
            "the sample never finished",
        )
        .await;
    // What `run --sandbox samples/leads.csv` gives (the demo sandbox's 5% of 500s are retried).
    let counts: BTreeMap<&str, u64> = done
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(status, n)| (status.as_str(), *n))
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([("invalid_input", 5), ("not_renewable", 5), ("renewed", 30)]),
        "{done:?}"
    );
    assert_eq!(done.rows_done, 40);
    assert_eq!(process.results(&done.links.results_csv).await.len(), 40);
    drop(process);
}

// ---------------------------------------------------------------------------------------------
// Reusing answers (issue 19): a per-upload window, and one history shared with the CLI.

/// Runs `bihu-renew run` against the service's sandbox, recording into (and, with a window,
/// reusing from) `history`; the results are beside the input.
async fn cli_run(
    service: &Service,
    input: &Path,
    history: &Path,
    reuse_within: Option<&str>,
) -> Vec<crate::support::ResultRow> {
    let flags = crate::support::sandbox_flags(&service.sandbox);
    let mut args = vec!["run", input.to_str().unwrap(), "--no-progress", "--force"];
    args.extend(flags.iter().map(String::as_str));
    args.extend(["--rate", "5000", "--history", history.to_str().unwrap()]);
    if let Some(window) = reuse_within {
        args.extend(["--reuse-within", window]);
    }
    let ran = crate::support::run_binary(&args, &[]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    crate::support::read_results(&input.with_extension("results.csv"))
}

/// `LicenseNo` for plates `京A<i>` of `numbers`.
fn plates(numbers: impl IntoIterator<Item = usize>) -> String {
    let mut csv = String::from("LicenseNo\n");
    for i in numbers {
        csv.push_str(&format!("京A{i:05}\n"));
    }
    csv
}

async fn results_of(service: &Service, job: &JobView) -> Vec<crate::support::ResultRow> {
    let csv = service.get(&job.links.results_csv).await;
    assert_eq!(csv.status(), StatusCode::OK);
    parse_results(&csv.bytes().await.unwrap()).1
}

#[tokio::test]
async fn an_upload_reuses_answers_within_its_window_default_from_the_config_and_the_preview_counts_them() {
    let week = Duration::from_secs(7 * 86_400);
    let service = Service::start(Options {
        reuse_within: Some(week),
        ..Options::default()
    })
    .await;

    // The default window comes from the config; an empty history answers nothing.
    let first = service.create("day1.csv", plates(0..30).into_bytes(), &[]).await;
    assert_eq!(first.reuse_within.as_deref(), Some("7d"));
    let preview = first.preview.clone().unwrap();
    assert_eq!(
        (preview.reused, preview.requests_saved, preview.requests_needed),
        (0, 0, 30)
    );
    service.post(&format!("/api/jobs/{}/start", first.id)).await;
    let first = service.wait_state(first.id, JobState::Done).await;
    assert_eq!(first.requests, 30);

    // Vehicles 20..30 again (25 twice), 30..50 new: the preview counts the rows the history
    // answers and the requests that saves, and the run sends only the rest.
    let day2 = plates((20..50).chain([25]));
    let second = service
        .create("day2.csv", day2.clone().into_bytes(), &[("reuse_within", "2d")])
        .await;
    assert_eq!(second.reuse_within.as_deref(), Some("2d"));
    let preview = second.preview.clone().unwrap();
    assert_eq!(
        (preview.reused, preview.requests_saved, preview.requests_needed),
        (11, 10, 20)
    );
    assert!((preview.estimated_seconds - 20.0 / 200.0).abs() < 1e-9);
    let before = service.sandbox.requests().len();
    service.post(&format!("/api/jobs/{}/start", second.id)).await;
    let second = service.wait_state(second.id, JobState::Done).await;
    assert_eq!(second.requests, 20, "{second:?}");
    let sent = &service.sandbox.requests()[before..];
    assert_eq!(sent.len(), 20);
    assert!(
        sent.iter()
            .all(|request| !(20..30).any(|i| request.body.contains(&format!("京A{i:05}"))))
    );
    let rows = results_of(&service, &second).await;
    assert!(
        rows[..10]
            .iter()
            .all(|row| row.attempts == 0 && row.message.starts_with("reused the"))
    );
    assert!(rows[10..30].iter().all(|row| row.attempts == 1));

    // `off` asks for every vehicle whatever the config says.
    let third = service
        .create(
            "day2-again.csv",
            day2.into_bytes(),
            &[("reuse_within", "off"), ("start", "true")],
        )
        .await;
    assert_eq!(third.reuse_within, None);
    let preview = third.preview.clone().unwrap();
    assert_eq!((preview.reused, preview.requests_needed), (0, 30));
    let third = service.wait_state(third.id, JobState::Done).await;
    assert_eq!(third.requests, 30);

    let bad = service
        .upload("x.csv", plates(0..2).into_bytes(), &[("reuse_within", "7 days")])
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(bad).await.contains("reuse_within"));
    assert_eq!(uploads_left(&service), 0);
    service.shutdown().await;
}

#[tokio::test]
async fn the_cli_and_the_service_reuse_each_others_answers() {
    // One history file, named in the config for the service and by --history for the CLI.
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("history.sqlite");
    let service = Service::start(Options {
        history: Some(shared.clone()),
        ..Options::default()
    })
    .await;
    let input = dir.path().join("cron.csv");
    std::fs::write(&input, plates(0..10)).unwrap();
    let cli_rows = cli_run(&service, &input, &shared, None).await;
    assert!(cli_rows.iter().all(|row| row.attempts == 1));
    let before = service.sandbox.requests().len();
    let job = service
        .create(
            "upload.csv",
            plates(0..15).into_bytes(),
            &[("reuse_within", "1d"), ("start", "true")],
        )
        .await;
    assert_eq!(job.preview.as_ref().unwrap().requests_saved, 10);
    let job = service.wait_state(job.id, JobState::Done).await;
    assert_eq!(job.requests, 5, "only the vehicles the CLI did not answer");
    assert_eq!(service.sandbox.requests().len() - before, 5);
    let rows = results_of(&service, &job).await;
    for (row, cli) in rows.iter().zip(&cli_rows) {
        assert_eq!(
            (row.attempts, &row.status, &row.renewal_token),
            (0, &cli.status, &cli.renewal_token)
        );
    }

    // The other way: the CLI reuses what the service answered (vehicles 10..15).
    let input = dir.path().join("later.csv");
    std::fs::write(&input, plates(10..15)).unwrap();
    let before = service.sandbox.requests().len();
    let later = cli_run(&service, &input, &shared, Some("1d")).await;
    assert_eq!(service.sandbox.requests().len(), before, "every answer reused");
    for (row, served) in later.iter().zip(&rows[10..]) {
        assert_eq!((row.attempts, &row.renewal_token), (0, &served.renewal_token));
    }
    service.shutdown().await;

    // Without a history in the config, the service's answers are in its store, which the
    // CLI reads with --history DATA_DIR/bihu-renew.db.
    let service = Service::start(Options::default()).await;
    let job = service
        .create_started("upload.csv", plates(100..104).into_bytes())
        .await;
    service.wait_state(job.id, JobState::Done).await;
    let store = service.data_dir().join(serve::STORE_FILE);
    let input = dir.path().join("from-store.csv");
    std::fs::write(&input, plates(100..106)).unwrap();
    let before = service.sandbox.requests().len();
    let rows = cli_run(&service, &input, &store, Some("1d")).await;
    assert_eq!(service.sandbox.requests().len() - before, 2);
    assert_eq!(rows.iter().filter(|row| row.attempts == 0).count(), 4);
    service.shutdown().await;
}

#[tokio::test]
async fn results_xlsx_is_there_once_the_job_has_stopped_with_every_digit_and_no_guard_quote() {
    use calamine::{Data, Reader as _};
    let service = Service::start(Options::default()).await;
    let list = "身份证号,LicenseNo,备注\n\
                110101199003074518,京J97896,=1+1\n\
                000123,沪A12345,plain\n";
    let job = service.create("leads.csv", list.as_bytes().to_vec(), &[]).await;
    let xlsx_url = format!("/api/jobs/{}/results.xlsx", job.id);
    assert_eq!(job.links.results_xlsx, None, "not before the job has run");
    let early = service.get(&xlsx_url).await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    assert!(error_of(early).await.contains("start it first"));
    let unknown = service.get("/api/jobs/999/results.xlsx").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(error_of(unknown).await.contains("999"));

    let started = service.post(&format!("/api/jobs/{}/start", job.id)).await;
    assert_eq!(started.status(), StatusCode::OK);
    let done = service.wait_state(job.id, JobState::Done).await;
    assert_eq!(done.links.results_xlsx.as_deref(), Some(xlsx_url.as_str()));
    let download = || async {
        let response = service.get(&xlsx_url).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        response.bytes().await.unwrap().to_vec()
    };
    let bytes = download().await;
    let made = service.data_dir().join(format!("jobs/{}/results.xlsx", job.id));
    let modified = || std::fs::metadata(&made).unwrap().modified().unwrap();
    let first = modified();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(download().await, bytes);
    assert_eq!(modified(), first, "made once, then served as made");
    let mut workbook = calamine::Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
    let range = workbook.worksheet_range("results").unwrap();
    assert_eq!(range.height(), 3);
    assert_eq!(range.get((0, 0)), Some(&Data::String("身份证号".into())));
    assert_eq!(
        range.get((1, 0)),
        Some(&Data::String("110101199003074518".into()))
    );
    assert_eq!(range.get((2, 0)), Some(&Data::String("000123".into())));
    // The CSV guards the formula with a `'`; the workbook holds the text as uploaded.
    assert_eq!(range.get((1, 2)), Some(&Data::String("=1+1".into())));
    let csv = service.get(&done.links.results_csv).await.text().await.unwrap();
    assert!(csv.contains(",'=1+1,"), "{csv}");
    assert_eq!(range.get((1, 3)), Some(&Data::Float(1.0)), "row, a number");
    service.shutdown().await;
}
