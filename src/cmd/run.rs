//! `bihu-renew run`: validates the flags into a [`RunConfig`], starts the sandbox when asked,
//! wires Ctrl-C and the progress display to the pipeline, and prints the summary.

use anyhow::Context;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use std::path::PathBuf;

use crate::api::protocol::Agent;
use crate::cmd::config_file::ConfigFile;
use crate::cmd::{CredentialArgs, Credentials, Purpose, StopSignals, resolve_credentials};
use crate::error::{Error, exit};
use crate::leads::input::{InputEncoding, InputOptions};
use crate::leads::workbook::WorkbookLimits;
use crate::results::output::{OutputStyle, OutputTarget};
use crate::run::config::{Backoff, Existing, HistorySettings, RunConfig};
use crate::run::dry_run::{self, DryRunConfig, ReuseCheck};
use crate::run::events::{Event, Observer};
use crate::run::pipeline;
use crate::run::progress::{Progress, ProgressMode};
use crate::run::quota::Quota;
use crate::sandbox::{Sandbox, SandboxConfig};
use clap::Args;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The lead list: CSV (UTF-8 or GBK) with a header row, or an .xlsx workbook.
    pub input: PathBuf,

    /// Results file: CSV, or an Excel workbook when the name ends in .xlsx (input cells as
    /// text, typed result columns, frozen header); `-` for stdout (CSV). Default: beside the
    /// input, <input stem>.results.csv for a CSV list and <input stem>.results.xlsx for a
    /// workbook (.dry-run. instead of .results. with --dry-run).
    #[arg(short, long)]
    pub output: Option<String>,

    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Fallback city: an id 1-23 or a name such as 北京. A row's city is its own city
    /// column, else its plate's prefix (京 is 北京), else this (config: city_code). A row city
    /// that contradicts its plate is a warning, and the row is still sent.
    #[arg(long)]
    pub city_code: Option<String>,

    /// Requests per second, every attempt counted [default: 10].
    #[arg(long)]
    pub rate: Option<u32>,

    /// Requests that may go at once after a quiet spell [default: 1].
    #[arg(long)]
    pub burst: Option<u32>,

    /// Requests in flight at most [default: 8].
    #[arg(long)]
    pub concurrency: Option<usize>,

    /// Retries after the first attempt, for 500/502/503/504/429, timeouts and connection
    /// errors [default: 3].
    #[arg(long)]
    pub retries: Option<u32>,

    /// Seconds per request before it counts as timed out [default: 30].
    #[arg(long)]
    pub timeout: Option<f64>,

    /// Also write the end-of-run summary as JSON to this file.
    #[arg(long)]
    pub summary_json: Option<PathBuf>,

    /// No progress bar or progress lines.
    #[arg(long)]
    pub no_progress: bool,

    /// Start the built-in sandbox in-process and run against it (no credentials needed).
    #[arg(long)]
    pub sandbox: bool,

    /// Continue an existing OUTPUT: keep rows with a final outcome, redo the rest.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,

    /// Replace an existing OUTPUT and start over.
    #[arg(long)]
    pub force: bool,

    /// Check the list only: read, normalise and validate every row, send nothing.
    #[arg(long, conflicts_with_all = ["sandbox", "resume"])]
    pub dry_run: bool,

    /// Input text encoding: auto (UTF-8 if the whole file is, GBK if every line is; a file
    /// mixing them is refused), utf-8, gbk. UTF-16 with a byte-order mark is always read.
    #[arg(long, value_parser = parse_encoding, default_value = "auto")]
    pub input_encoding: InputEncoding,

    /// Worksheet to read from an .xlsx input [default: the first].
    #[arg(long)]
    pub sheet: Option<String>,

    /// A workbook's sheet may span at most this many cells (rows times columns of the box its
    /// cells span); a larger one is refused before it is read.
    #[arg(long, value_name = "N", default_value_t = WorkbookLimits::default().max_cells)]
    pub max_cells: u64,

    /// A workbook's zip parts may unpack to at most this many MB together.
    #[arg(long, value_name = "MB", default_value_t = WorkbookLimits::default().max_unzipped_bytes >> 20)]
    pub max_unzipped_mb: u64,

    /// No UTF-8 BOM at the start of the results file (for machine consumers).
    #[arg(long)]
    pub no_bom: bool,

    /// Chinese names for the result columns (状态, 续保令牌, 报价链接, …), for people.
    #[arg(long)]
    pub zh_headers: bool,

    /// Record every final answer in this answer history (SQLite; shared with the service).
    #[arg(long, env = "BIHU_HISTORY", value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// Answer a row from the history, without a request, when its vehicle's latest final
    /// answer is at most this old (`12h`, `7d`; s, m, h, d). Off by default: Bihu does not say
    /// how long an answer holds.
    #[arg(long, value_name = "DURATION")]
    pub reuse_within: Option<String>,

    /// Write cells as they are, even those a spreadsheet would run as formulas. By default a
    /// cell starting with = + - @ tab or CR (from the lead list or an answer) gets a ' in
    /// front, so that Excel shows it as text instead of running it.
    #[arg(long)]
    pub raw_cells: bool,
}

fn parse_encoding(text: &str) -> Result<InputEncoding, String> {
    InputEncoding::parse(text).ok_or_else(|| format!("unknown encoding {text:?}: use auto, utf-8 or gbk"))
}

/// Consecutive 403/406 answers that stop a run.
pub const CREDENTIAL_FAILURE_LIMIT: u32 = 5;

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let file = ConfigFile::load(args.credentials.config.as_deref())?;
    refuse_directory_output(&args)?;
    if args.dry_run {
        return dry_run(&args, &file);
    }
    let sandbox = if args.sandbox {
        let sandbox = Sandbox::start(
            "127.0.0.1:0".parse().expect("a valid address"),
            SandboxConfig::demo(),
        )
        .await
        .context("cannot start the sandbox")?;
        Some(sandbox)
    } else {
        None
    };
    check_writable(args.summary_json.as_deref())?;
    let credentials = match &sandbox {
        Some(sandbox) => sandbox_credentials(sandbox),
        None => resolve_credentials(&args.credentials, &file, Purpose::Run)?,
    };
    let config = build_config(&args, &file, credentials)?;

    let progress = Arc::new(Progress::start(ProgressMode::detect(args.no_progress)));
    // The banner waits until the input and the output have been checked, so that a mistake
    // there is the only thing said.
    let banner = sandbox.as_ref().map(|sandbox| {
        Arc::new(SandboxBanner {
            progress: progress.clone(),
            banner: format!(
                "bihu-renew: running against the built-in sandbox at {} (a little latency and a few 500s; nothing leaves this machine)",
                sandbox.base_url()
            ),
            shown: AtomicBool::new(false),
        })
    });
    let observer: Arc<dyn Observer> = match &banner {
        Some(banner) => banner.clone(),
        None => progress.clone(),
    };
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(StopSignals::new()?, cancel.clone()));
    let quota = Quota::new(config.rate, config.burst, config.concurrency);
    let result = pipeline::run(config, &quota, observer, cancel).await;
    signals.abort();
    progress.finish();
    if let Some(sandbox) = sandbox {
        if banner.is_some_and(|banner| banner.shown.load(Ordering::Relaxed)) {
            eprintln!("bihu-renew: sandbox served {}", sandbox.stats());
        }
        sandbox.shutdown().await;
    }
    let summary = result.map_err(suggest_output_flag)?;
    eprint!("{summary}");
    write_summary_json(args.summary_json.as_deref(), &summary, true)?;
    Ok(summary.exit_code())
}

/// Passes a run's events on to the progress display, after saying once, when the list has
/// been counted, that the run goes to the built-in sandbox.
struct SandboxBanner {
    progress: Arc<Progress>,
    banner: String,
    shown: AtomicBool,
}

impl Observer for SandboxBanner {
    fn on_event(&self, event: &Event) {
        if !self.shown.swap(true, Ordering::Relaxed) {
            self.progress.note(&self.banner);
        }
        self.progress.on_event(event);
    }
}

fn dry_run(args: &RunArgs, file: &ConfigFile) -> anyhow::Result<i32> {
    let output = output_target(args, "dry-run");
    let config = DryRunConfig {
        input: args.input.clone(),
        output,
        existing: if args.force {
            Existing::Overwrite
        } else {
            Existing::Refuse
        },
        input_options: input_options(args, file)?,
        output_style: OutputStyle {
            bom: !args.no_bom,
            zh_headers: args.zh_headers,
            formula_guard: crate::results::formula::FormulaGuard(!args.raw_cells),
        },
        reuse: dry_run_reuse(args, file)?,
    };
    check_writable(args.summary_json.as_deref())?;
    let summary = dry_run::check(&config).map_err(suggest_output_flag)?;
    eprint!("{summary}");
    write_summary_json(args.summary_json.as_deref(), &summary, false)?;
    Ok(summary.exit_code())
}

/// With `--history` and `--reuse-within`, the dry run looks every vehicle up as the run
/// would; the answers are the agent's, so it needs the agent id (flag or config).
fn dry_run_reuse(args: &RunArgs, file: &ConfigFile) -> anyhow::Result<Option<ReuseCheck>> {
    let Some(HistorySettings {
        path,
        reuse_within: Some(within),
    }) = history_settings(args, file)?
    else {
        return Ok(None);
    };
    let agent_id = args
        .credentials
        .agent_id
        .clone()
        .or_else(|| file.agent_id.clone())
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--dry-run with --reuse-within needs --agent-id (or agent_id in the config): the history's answers are per agent"
            )
        })?;
    if !path.exists() {
        anyhow::bail!(
            "--history {} does not exist: a dry run only reads the history",
            path.display()
        );
    }
    Ok(Some(ReuseCheck {
        history: path,
        agent_id: agent_id.trim().to_string(),
        within,
    }))
}

/// `-o`: `-` for stdout, a path, or `<input stem>.<kind>.csv` beside the input.
fn output_target(args: &RunArgs, kind: &str) -> OutputTarget {
    match args.output.as_deref() {
        Some("-") => OutputTarget::Stdout,
        Some(path) => OutputTarget::File(path.into()),
        None => OutputTarget::beside(&args.input, kind),
    }
}

/// Earlier builds wrote a workbook list's default results as `<stem>.results.csv`. A
/// `--resume` of such a run without `-o` would find no `<stem>.results.xlsx` and ask for
/// every row again: it is refused (exit 2), with the `-o` that continues the CSV.
fn refuse_csv_results_of_a_workbook(input: &Path, output: &OutputTarget) -> anyhow::Result<()> {
    let OutputTarget::File(output) = output else {
        return Ok(());
    };
    let with_journal = |path: &Path| {
        [
            path.to_path_buf(),
            crate::results::output::partial_path(path),
            crate::results::journal::journal_path(path),
        ]
    };
    if !crate::leads::input::is_spreadsheet(input) || with_journal(output).iter().any(|p| p.exists()) {
        return Ok(());
    }
    let OutputTarget::File(csv) = OutputTarget::beside(&input.with_extension("csv"), "results") else {
        return Ok(());
    };
    if with_journal(&csv).iter().any(|p| p.exists()) {
        anyhow::bail!(
            "--resume: {} does not exist, but {} does: an earlier build wrote a workbook's results as CSV. Nothing was sent. To continue that run, pass -o {}; to start the workbook afresh, drop --resume",
            output.display(),
            csv.display(),
            csv.display()
        );
    }
    Ok(())
}

/// `-o` naming a directory would be found out only at the end, when the finished results
/// cannot be renamed onto it: refused first (exit 2), with a file name to give instead.
fn refuse_directory_output(args: &RunArgs) -> anyhow::Result<()> {
    let Some(dir) = args.output.as_deref().filter(|path| Path::new(path).is_dir()) else {
        return Ok(());
    };
    let kind = if args.dry_run { "dry-run" } else { "results" };
    let name = match OutputTarget::beside(&args.input, kind) {
        OutputTarget::File(path) => path.file_name().map(|name| name.to_string_lossy().into_owned()),
        OutputTarget::Stdout => None,
    };
    anyhow::bail!(
        "-o {dir} is a directory; nothing was sent. Give a file name, such as -o {}",
        Path::new(dir).join(name.unwrap_or_default()).display()
    )
}

/// The fix for a results place that cannot take the run's files, on the command line: `-o`.
/// The error stays its source, so that its exit code is still read from it.
#[derive(Debug, thiserror::Error)]
#[error("{0}. Use -o to write the results in a directory you can write to")]
struct UseOutputFlag(#[source] Error);

fn suggest_output_flag(error: impl Into<anyhow::Error>) -> anyhow::Error {
    let error = error.into();
    if !matches!(error.downcast_ref::<Error>(), Some(Error::Unwritable { .. })) {
        return error;
    }
    match error.downcast::<Error>() {
        Ok(unwritable) => UseOutputFlag(unwritable).into(),
        Err(error) => error,
    }
}

/// Refuses (exit 2, before any request) a `--summary-json` path that cannot be written, so
/// that a run never does its work only to fail at the end.
fn check_writable(path: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|error| {
            anyhow::anyhow!(
                "cannot write --summary-json {}: {error}; nothing was sent. Give a path in a directory you can write to",
                path.display()
            )
        })?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Writes the summary JSON. After a live run a failure is exit 4 (requests were sent); after
/// a dry run, exit 2.
fn write_summary_json(
    path: Option<&Path>,
    summary: &impl serde::Serialize,
    live: bool,
) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let json = serde_json::to_string_pretty(summary).expect("a summary serialises");
    std::fs::write(path, json + "\n").map_err(|source| {
        if live {
            Error::Summary {
                path: path.to_path_buf(),
                source,
            }
            .into()
        } else {
            anyhow::Error::new(source).context(format!("cannot write {}", path.display()))
        }
    })
}

fn input_options(args: &RunArgs, file: &ConfigFile) -> anyhow::Result<InputOptions> {
    let city_text = args.city_code.as_ref().or(file.city_code.as_ref());
    let default_city = city_text
        .map(|text| crate::cmd::parse_city_flag(text))
        .transpose()?;
    Ok(InputOptions {
        encoding: args.input_encoding,
        sheet: args.sheet.clone(),
        default_city,
        limits: WorkbookLimits {
            max_cells: args.max_cells,
            max_unzipped_bytes: args.max_unzipped_mb.saturating_mul(1 << 20),
        },
    })
}

pub(crate) fn sandbox_credentials(sandbox: &Sandbox) -> Credentials {
    let config = sandbox.config();
    Credentials {
        base_url: sandbox.base_url(),
        agent: Agent {
            agent_id: config.agent_id.clone(),
            secret: config.secret.clone(),
            secret_label: config.secret_label.clone(),
        },
        token: Some(config.token.clone()),
        user_name: config.user_name.clone(),
    }
}

/// `--history` and `--reuse-within` (flag, else the config file).
fn history_settings(args: &RunArgs, file: &ConfigFile) -> anyhow::Result<Option<HistorySettings>> {
    let reuse_within = args
        .reuse_within
        .as_ref()
        .or(file.reuse_within.as_ref())
        .map(|text| {
            crate::results::history::parse_duration(text)
                .map_err(|why| anyhow::anyhow!("--reuse-within: {why}"))
        })
        .transpose()?;
    match (
        args.history.clone().or_else(|| file.history.clone()),
        reuse_within,
    ) {
        (Some(path), reuse_within) => Ok(Some(HistorySettings { path, reuse_within })),
        (None, Some(_)) => Err(anyhow::anyhow!(
            "--reuse-within needs --history FILE (or `history` in the config file): the answers to reuse are kept there"
        )),
        (None, None) => Ok(None),
    }
}

/// The raw flags (then the config file, then the defaults) into a checked configuration;
/// every problem is a usage error (exit 2).
pub fn build_config(
    args: &RunArgs,
    file: &ConfigFile,
    credentials: Credentials,
) -> anyhow::Result<RunConfig> {
    let output = output_target(args, "results");
    if args.resume && output == OutputTarget::Stdout {
        return Err(anyhow::anyhow!(
            "--resume needs an OUTPUT file; it cannot continue stdout (-o -)"
        ));
    }
    if args.resume && args.output.is_none() {
        refuse_csv_results_of_a_workbook(&args.input, &output)?;
    }
    let at_least_one = |name: &str, value: u64| {
        if value == 0 {
            Err(anyhow::anyhow!("{name} must be at least 1"))
        } else {
            Ok(value)
        }
    };
    let rate = at_least_one("--rate", args.rate.or(file.rate).unwrap_or(10).into())?;
    let burst = at_least_one("--burst", args.burst.or(file.burst).unwrap_or(1).into())?;
    let concurrency = at_least_one(
        "--concurrency",
        args.concurrency.or(file.concurrency).unwrap_or(8) as u64,
    )?;
    let timeout = args.timeout.or(file.timeout).unwrap_or(30.0);
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(anyhow::anyhow!(
            "--timeout must be a positive number of seconds, got {timeout}"
        ));
    }
    Ok(RunConfig {
        input: args.input.clone(),
        output,
        existing: match (args.resume, args.force) {
            (true, _) => Existing::Resume,
            (false, true) => Existing::Overwrite,
            (false, false) => Existing::Refuse,
        },
        base_url: credentials.base_url,
        agent: credentials.agent,
        token: credentials.token,
        user_name: credentials.user_name,
        input_options: input_options(args, file)?,
        output_style: OutputStyle {
            bom: !args.no_bom,
            zh_headers: args.zh_headers,
            formula_guard: crate::results::formula::FormulaGuard(!args.raw_cells),
        },
        rate: NonZeroU32::new(rate as u32).expect("checked"),
        burst: NonZeroU32::new(burst as u32).expect("checked"),
        concurrency: NonZeroUsize::new(concurrency as usize).expect("checked"),
        retries: args.retries.or(file.retries).unwrap_or(3),
        timeout: Duration::from_secs_f64(timeout),
        backoff: Backoff::default(),
        credential_failure_limit: CREDENTIAL_FAILURE_LIMIT,
        history: history_settings(args, file)?,
    })
}

/// First SIGINT/SIGTERM: stop intake and finish what is in flight. Second: leave at once.
async fn watch_signals(mut signals: StopSignals, cancel: CancellationToken) {
    signals.next().await;
    eprintln!(
        "\nbihu-renew: stopping: finishing the requests in flight and writing what is done (press Ctrl-C again to quit at once)"
    );
    cancel.cancel();
    signals.next().await;
    eprintln!("\nbihu-renew: quitting now; run the same command with --resume to continue");
    std::process::exit(exit::INTERRUPTED);
}
