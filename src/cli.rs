//! The command line as typed: clap definitions with their `BIHU_…` environment fallbacks,
//! and the top-level dispatch that turns a command's result into an exit code.
//!
//! Each subcommand lives in `cmd/` with its arguments' validation and its `run`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd;
use crate::error::{Error, exit};

pub const DEFAULT_BASE_URL: &str = "http://bao.91bihu.com/";

/// Renew car-insurance leads in bulk against Bihu (壁虎车险).
#[derive(Debug, Parser)]
#[command(name = "bihu-renew", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). BIHU_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Renew every vehicle of a lead list and write a results CSV.
    Run(Box<RunArgs>),
    /// Serve a local imitation of the Bihu API, for rehearsals and tests.
    Sandbox(cmd::sandbox::SandboxArgs),
    /// Log in and print a fresh Token on stdout (for scripts).
    Login(LoginArgs),
    /// Print a shell completion script on stdout.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
    /// Summarise results files, and what changed since an earlier run.
    Report(cmd::report::ReportArgs),
}

/// Who the tool is to Bihu. Every value can come from the environment or a config file
/// instead; a flag wins over the environment, which wins over the file.
#[derive(Debug, Clone, Args)]
pub struct CredentialArgs {
    /// TOML file with credentials and settings (see README); keep it chmod 600.
    #[arg(long, env = "BIHU_CONFIG")]
    pub config: Option<PathBuf>,

    /// Bihu's base URL [default: http://bao.91bihu.com/].
    #[arg(long, env = "BIHU_BASE_URL")]
    pub base_url: Option<String>,

    /// Top-level agent id issued by Bihu.
    #[arg(long, env = "BIHU_AGENT_ID")]
    pub agent_id: Option<String>,

    /// Token from the login API (or pass --user-name and let the tool log in).
    #[arg(long, env = "BIHU_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The agent's secret key: signs requests, is never sent.
    #[arg(long, env = "BIHU_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Read the secret key from this file (first line) instead.
    #[arg(long, env = "BIHU_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// How the secret's key is spelled in the signed string [default: secretKey].
    #[arg(long, env = "BIHU_SECRET_KEY_LABEL")]
    pub secret_key_label: Option<String>,

    /// User name for the login API: lets the tool get a Token, and a new one when it expires.
    #[arg(long, env = "BIHU_USER_NAME")]
    pub user_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The lead list: CSV (UTF-8 or GBK) with a header row, or an .xlsx workbook.
    pub input: PathBuf,

    /// Results CSV; `-` for stdout. Default: <input stem>.results.csv beside the input
    /// (<input stem>.dry-run.csv with --dry-run).
    #[arg(short, long)]
    pub output: Option<String>,

    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// City for rows that have none: an id 1-23 or a name such as 北京.
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

    /// Input text encoding: auto (UTF-8 if the whole file is, else GBK), utf-8, gbk.
    #[arg(long, value_parser = parse_encoding, default_value = "auto")]
    pub input_encoding: crate::input::InputEncoding,

    /// Worksheet to read from an .xlsx input [default: the first].
    #[arg(long)]
    pub sheet: Option<String>,

    /// No UTF-8 BOM at the start of the results file (for machine consumers).
    #[arg(long)]
    pub no_bom: bool,

    /// Chinese names for the result columns (状态, 续保令牌, 报价链接, …), for people.
    #[arg(long)]
    pub zh_headers: bool,
}

fn parse_encoding(text: &str) -> Result<crate::input::InputEncoding, String> {
    crate::input::InputEncoding::parse(text)
        .ok_or_else(|| format!("unknown encoding {text:?}: use auto, utf-8 or gbk"))
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = error.print();
            return code;
        }
    };
    init_logging(cli.verbose);
    // `run` drives all its requests from one thread: a row costs the client some 12 µs, so
    // one core carries over 70,000 requests a second, far beyond any quota, and requests that
    // never hop threads spare a wake-up each (a multi-threaded runtime, and sending threads
    // of their own, both cost more CPU for no more speed: BENCHMARKS.md). Reading and
    // validating the list run on threads of their own. The sandbox serves from every core.
    let mut builder = match cli.command {
        Command::Run(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bihu-renew: error: cannot start the async runtime: {error}");
            return exit::USAGE;
        }
    };
    let result: Result<i32, Error> = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => cmd::run::run(*args).await,
            Command::Sandbox(args) => cmd::sandbox::run(args).await,
            Command::Login(args) => cmd::login::run(args).await,
            Command::Completions { shell } => cmd::docs::completions(shell),
            Command::Man => cmd::docs::man(),
            Command::Report(args) => cmd::report::run(args).await,
        }
    });
    // Row tasks still waiting on a backoff after an early stop must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bihu-renew: error: {error}");
            error.exit_code()
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BIHU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("bihu_renew={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in cron mail or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
