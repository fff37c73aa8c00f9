//! Helpers shared by the integration tests: a loopback-only HTTP client, a sandbox on
//! `127.0.0.1:0`, the agent a sandbox config implies, leads, the clock, and a service on
//! `127.0.0.1:0` with the config the service's and the pages' tests start from.

use std::time::{SystemTime, UNIX_EPOCH};

use std::fmt::Write as _;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use bihu_renew::api::protocol::Agent;
use bihu_renew::cmd::run::CREDENTIAL_FAILURE_LIMIT;
use bihu_renew::leads::input::InputOptions;
use bihu_renew::leads::lead::{self, Lead, RawLead};
use bihu_renew::listen::Limits;
use bihu_renew::results::output::{OutputStyle, OutputTarget};
use bihu_renew::run::config::{Backoff, Existing, RunConfig};
use bihu_renew::sandbox::{Sandbox, SandboxConfig};
use bihu_renew::serve::auth::{User, hash_password};
use bihu_renew::serve::jobs::JobSettings;
use bihu_renew::serve::{self, AppState, ServeConfig};
use tokio_util::sync::CancellationToken;

/// The flags that point the binary at `sandbox` with its credentials (`--base-url`,
/// `--agent-id`, `--token`, `--secret-key`).
pub fn sandbox_flags(sandbox: &Sandbox) -> Vec<String> {
    let config = sandbox.config();
    let base = sandbox.base_url().to_string();
    [
        "--base-url",
        &base,
        "--agent-id",
        &config.agent_id,
        "--token",
        &config.token,
        "--secret-key",
        config.secret.expose(),
    ]
    .map(str::to_string)
    .to_vec()
}

/// A client that never goes through a proxy, whatever the environment says.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

/// A sandbox on a free loopback port.
pub async fn start_sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("the sandbox binds 127.0.0.1:0")
}

/// A sandbox on a free loopback port that records the requests it answers.
pub async fn recording_sandbox() -> Sandbox {
    start_sandbox(SandboxConfig {
        record_requests: true,
        ..SandboxConfig::default()
    })
    .await
}

/// The agent that the sandbox `config` accepts.
pub fn agent(config: &SandboxConfig) -> Agent {
    Agent {
        agent_id: config.agent_id.clone(),
        secret: config.secret.clone(),
        secret_label: config.secret_label.clone(),
    }
}

/// An in-process run of `input` into `output` against `sandbox` with its credentials: fast
/// (rate 10,000, burst 100, concurrency 8), 3 retries after a backoff of 10-200 ms (a server's
/// `Retry-After` honoured up to 5 s), existing OUTPUT refused, no history. Tests change what
/// they are about with struct update syntax.
pub fn run_config(sandbox: &Sandbox, input: PathBuf, output: PathBuf) -> RunConfig {
    RunConfig {
        input,
        output: OutputTarget::File(output),
        existing: Existing::Refuse,
        base_url: sandbox.base_url(),
        agent: agent(sandbox.config()),
        token: Some(sandbox.config().token.clone()),
        user_name: None,
        input_options: InputOptions::default(),
        output_style: OutputStyle::default(),
        rate: NonZeroU32::new(10_000).unwrap(),
        burst: NonZeroU32::new(100).unwrap(),
        concurrency: NonZeroUsize::new(8).unwrap(),
        retries: 3,
        timeout: Duration::from_secs(10),
        backoff: Backoff {
            min: Duration::from_millis(10),
            max: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(5),
        },
        credential_failure_limit: CREDENTIAL_FAILURE_LIMIT,
        history: None,
    }
}

/// A lead for a plate, validated as the tool would.
#[track_caller]
pub fn lead(plate: &str) -> Lead {
    lead::validate(
        &RawLead {
            plate,
            ..Default::default()
        },
        None,
    )
    .unwrap_or_else(|rejection| panic!("{plate} is rejected: {rejection}"))
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// One row of a results CSV: the input's own fields, then the result columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    pub input: Vec<String>,
    pub row: u64,
    pub status: String,
    pub http_status: String,
    pub message: String,
    pub renewal_token: String,
    pub quote_url: String,
    pub attempts: u32,
    pub warnings: String,
    /// ISO 8601, or empty.
    pub answered_at: String,
}

/// Parses a results CSV (as the tool writes it) into its input header and rows; panics if
/// the header does not end with the result columns.
#[track_caller]
pub fn parse_results(bytes: &[u8]) -> (Vec<String>, Vec<ResultRow>) {
    use bihu_renew::results::output::RESULT_COLUMNS;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|name| name.trim_start_matches('\u{feff}').to_string())
        .collect();
    let n_input = header
        .len()
        .checked_sub(RESULT_COLUMNS.len())
        .expect("a results header");
    assert_eq!(
        header[n_input..],
        RESULT_COLUMNS,
        "not a results header: {header:?}"
    );
    let rows = reader
        .records()
        .map(|record| {
            let record = record.expect("a CSV record");
            let n = record.len();
            let result = |i: usize| record[n - RESULT_COLUMNS.len() + i].to_string();
            ResultRow {
                input: record
                    .iter()
                    .take(n - RESULT_COLUMNS.len())
                    .map(str::to_string)
                    .collect(),
                row: result(0).parse().expect("row is a number"),
                status: result(1),
                http_status: result(2),
                message: result(3),
                renewal_token: result(4),
                quote_url: result(5),
                attempts: result(6).parse().expect("attempts is a number"),
                warnings: result(7),
                answered_at: result(8),
            }
        })
        .collect();
    (header[..n_input].to_vec(), rows)
}

/// [`parse_results`] of a file.
#[track_caller]
pub fn read_results(path: &std::path::Path) -> Vec<ResultRow> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_results(&bytes).1
}

/// What a run of the binary left behind.
#[derive(Debug)]
pub struct BinOutput {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl BinOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts that the run exited with `code`, then that its stderr says each of `said` in
    /// turn; a failure shows the stderr.
    #[track_caller]
    pub fn assert_said(&self, code: i32, said: &[&str]) {
        assert_eq!(self.code, code, "{}", self.stderr);
        for words in said {
            assert!(self.stderr.contains(words), "{}", self.stderr);
        }
    }
}

/// The `bihu-renew` binary as a command without the test environment's `BIHU_*` variables
/// and proxy settings, reading nothing from stdin, killed if dropped.
pub fn bihu_command() -> tokio::process::Command {
    clean_command(env!("CARGO_BIN_EXE_bihu-renew"))
}

/// [`bihu_command`] for another program (a shell that sets limits before it runs the binary).
pub fn clean_command(program: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy().to_ascii_uppercase();
        if text.starts_with("BIHU_") || text.ends_with("_PROXY") {
            command.env_remove(&name);
        }
    }
    command.stdin(std::process::Stdio::null()).kill_on_drop(true);
    command
}

/// Runs the `bihu-renew` binary with `args` and `envs` only: every `BIHU_*` variable and any
/// proxy setting of the test's environment is removed. Awaitable, so that a sandbox served by
/// the test's own runtime keeps answering meanwhile.
pub async fn run_binary(args: &[&str], envs: &[(&str, &str)]) -> BinOutput {
    let mut command = bihu_command();
    command.args(args).envs(envs.iter().copied());
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("bihu-renew finishes within a minute")
        .expect("bihu-renew starts");
    BinOutput {
        code: output.status.code().expect("bihu-renew exits with a code"),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `text` with every time as the tool writes `answered_at` (`2026-12-01T22:39:55+00:00`)
/// replaced by `<time>`: for comparing the results of two runs, which were answered at
/// different moments.
pub fn mask_times(text: &str) -> String {
    const PATTERN: &[u8] = b"dddd-dd-ddTdd:dd:dd+00:00";
    let bytes = text.as_bytes();
    let is_time = |at: usize| {
        bytes.get(at..at + PATTERN.len()).is_some_and(|window| {
            window
                .iter()
                .zip(PATTERN)
                .all(|(b, p)| if *p == b'd' { b.is_ascii_digit() } else { b == p })
        })
    };
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        if is_time(at) {
            out.push_str("<time>");
            at += PATTERN.len();
        } else {
            let c = text[at..].chars().next().expect("at a char boundary");
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// [`mask_times`] of a file's bytes.
pub fn masked(bytes: &[u8]) -> String {
    mask_times(&String::from_utf8_lossy(bytes))
}

/// A temporary folder for a test's files, named by their text paths as the binary takes them.
pub struct Files {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Files {
    pub fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        Files { _dir: dir, path }
    }

    /// Writes `bytes` to the file `name` in the folder and gives its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// The path of `name` in the folder.
    pub fn path(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }
}

/// Distinct `粤B` plates (city 深圳, 11), one per number.
pub fn plates(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("粤B{i:05}")).collect()
}

/// A lead list: a name column (multi-byte, so that cuts can fall inside a character) and the
/// plate.
pub fn lead_list(plates: &[String]) -> String {
    let mut text = String::from("name,plate\n");
    for (i, plate) in plates.iter().enumerate() {
        writeln!(text, "客户{},{plate}", i + 1).unwrap();
    }
    text
}

/// A client that never goes through a proxy and shows redirects instead of following them
/// (the pages answer a form with `303 See Other`).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client builds")
}

/// What a test service's jobs send to `sandbox` with its credentials: at `rate` a second
/// (`burst`, `concurrency`), 2 retries after a backoff of 10-50 ms (a `Retry-After` honoured
/// up to 50 ms), a 5 s timeout, aborted after 3 refusals of the credentials.
pub fn job_settings(sandbox: &Sandbox, rate: u32, burst: u32, concurrency: usize) -> JobSettings {
    let config = sandbox.config();
    JobSettings {
        base_url: sandbox.base_url(),
        agent: agent(config),
        token: Some(config.token.clone()),
        user_name: None,
        rate: rate.try_into().unwrap(),
        burst: burst.try_into().unwrap(),
        concurrency: concurrency.try_into().unwrap(),
        retries: 2,
        timeout: Duration::from_secs(5),
        backoff: Backoff {
            min: Duration::from_millis(10),
            max: Duration::from_millis(50),
            max_retry_after: Duration::from_millis(50),
        },
        credential_failure_limit: 3,
    }
}

/// A user of the service whose password is `password`.
pub fn user(name: &str, password: &str) -> User {
    User {
        name: name.to_string(),
        password_hash: hash_password(password).unwrap(),
    }
}

/// The config of a test service keeping its files in `data_dir`: uploads up to 1 MiB, jobs
/// kept 30 days, sessions of an hour, no history but the store, no reuse, default limits.
/// Tests change what they are about with struct update syntax.
pub fn serve_config(data_dir: PathBuf, users: Vec<User>, settings: JobSettings) -> ServeConfig {
    ServeConfig {
        data_dir,
        max_upload_bytes: 1024 * 1024,
        retention: Duration::from_secs(30 * 86_400),
        users,
        session_ttl: Duration::from_secs(3600),
        settings,
        history: None,
        reuse_within: None,
        limits: Limits::default(),
    }
}

/// A service (`serve::serve`) answering on a free loopback port until it is stopped.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Opens the service of `config` and serves it on `127.0.0.1:0`; gives its state too.
    pub async fn start(config: ServeConfig) -> (Served, AppState) {
        let state = AppState::open(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve::serve(
            listener,
            state.clone(),
            stop.clone().cancelled_owned(),
        ));
        (Served { base, stop, task }, state)
    }

    /// `path` on the service.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the service and waits until it has, asserting that it stopped cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Polls `count` every 2 ms until it is at least `n`; panics after 20 s, saying how many
/// `what` there were.
pub async fn wait_for_count(n: usize, what: &str, count: impl Fn() -> usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let have = count();
        if have >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {have} {what} after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
