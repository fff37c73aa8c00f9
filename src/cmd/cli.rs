//! The command line as typed: clap definitions with their `BIHU_…` environment fallbacks,
//! and the top-level dispatch that turns a command's result into an exit code.
//!
//! Each subcommand lives in its own file beside this one, with its arguments and its `run`.

use clap::{CommandFactory, Parser, Subcommand};

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
    Run(Box<cmd::run::RunArgs>),
    /// Serve a local imitation of the Bihu API, for rehearsals and tests.
    Sandbox(cmd::sandbox::SandboxArgs),
    /// Log in and print a fresh Token on stdout (for scripts).
    Login(cmd::login::LoginArgs),
    /// Try the credentials on one vehicle: one renewal request (one of quota), and which
    /// credential is wrong if it is refused.
    Check(cmd::check::CheckArgs),
    /// Print a shell completion script on stdout.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) on stdout, or write them all with --out DIR.
    Man(cmd::docs::ManArgs),
    /// Summarise results files, and what changed since an earlier run.
    Report(cmd::report::ReportArgs),
    /// Show what the answer history knows about a vehicle; prune it.
    History(cmd::history::HistoryArgs),
    /// Run the back-office service: a JSON API that keeps jobs and owns the agent's quota.
    Serve(Box<cmd::serve::ServeArgs>),
    /// Read a password from stdin and print its argon2id hash for [[serve.users]].
    HashPassword,
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
    let result: anyhow::Result<i32> = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => cmd::run::run(*args).await,
            Command::Sandbox(args) => cmd::sandbox::run(args).await,
            Command::Login(args) => cmd::login::run(args).await,
            Command::Check(args) => cmd::check::run(args).await,
            Command::Completions { shell } => cmd::docs::completions(Cli::command(), shell),
            Command::Man(args) => cmd::docs::man(Cli::command(), &args),
            Command::Report(args) => cmd::report::run(args).await,
            Command::History(args) => cmd::history::run(args).await,
            Command::Serve(args) => cmd::serve::run(*args).await,
            Command::HashPassword => cmd::serve::hash_password(),
        }
    });
    // Blocking reader threads still parked after an early stop must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("bihu-renew: error: {}", message(&error));
            exit_code(&error)
        }
    }
}

/// The error and its causes, joined with `: ` ([`crate::error::story`]).
pub fn message(error: &anyhow::Error) -> String {
    crate::error::story(error)
}

/// The README's exit code: the library's [`Error`] says its own (2 refused before any
/// request, 3 rejected credentials, 1 a first login that got no verdict, 4 a file that
/// stopped a run after requests were sent); anything else the command layer refuses is a
/// usage, configuration or input error before any request: 2.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(exit::USAGE, Error::exit_code)
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

/// With `BIHU_REPORT_PEAK_MEMORY` set, prints the process's peak resident memory (`VmHWM` of
/// `/proc/self/status`) on stderr at exit: the tests of hostile inputs measure with it.
pub fn report_peak_memory() {
    if std::env::var_os("BIHU_REPORT_PEAK_MEMORY").is_none() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|line| line.starts_with("VmHWM:")) {
        eprintln!(
            "bihu-renew: peak memory {}",
            line.trim_start_matches("VmHWM:").trim()
        );
    }
}
