//! `bihu-renew run`: validates the flags into a [`RunConfig`], starts the sandbox when asked,
//! wires Ctrl-C and the progress display to the pipeline, and prints the summary.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::city::City;
use crate::cli::RunArgs;
use crate::cmd::{Credentials, resolve_credentials};
use crate::config::{Backoff, Existing, RunConfig};
use crate::error::{Error, exit};
use crate::output::OutputTarget;
use crate::pipeline;
use crate::progress::{Progress, ProgressMode};
use crate::protocol::Agent;
use crate::sandbox::{Sandbox, SandboxConfig};

/// Consecutive 403/406 answers that stop a run.
pub const CREDENTIAL_FAILURE_LIMIT: u32 = 5;

pub async fn run(args: RunArgs) -> Result<i32, Error> {
    let sandbox = if args.sandbox {
        let sandbox = Sandbox::start(
            "127.0.0.1:0".parse().expect("a valid address"),
            SandboxConfig::demo(),
        )
        .await
        .map_err(|e| Error::Usage(format!("cannot start the sandbox: {e}")))?;
        eprintln!(
            "bihu-renew: running against the built-in sandbox at {} (a little latency and a few 500s; nothing leaves this machine)",
            sandbox.base_url()
        );
        Some(sandbox)
    } else {
        None
    };
    let credentials = match &sandbox {
        Some(sandbox) => sandbox_credentials(sandbox),
        None => resolve_credentials(&args.credentials, false)?,
    };
    let config = build_config(&args, credentials)?;

    let progress = Arc::new(Progress::start(ProgressMode::detect(args.no_progress)));
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(cancel.clone()));
    let result = pipeline::run(config, progress.clone(), cancel).await;
    signals.abort();
    progress.finish();
    if let Some(sandbox) = sandbox {
        eprintln!("bihu-renew: sandbox served {}", sandbox.stats());
        sandbox.shutdown().await;
    }
    let summary = result?;
    eprint!("{summary}");
    if let Some(path) = &args.summary_json {
        let json = serde_json::to_string_pretty(&summary).expect("a summary serialises");
        std::fs::write(path, json + "\n").map_err(Error::file("cannot write", path))?;
    }
    Ok(summary.exit_code())
}

fn sandbox_credentials(sandbox: &Sandbox) -> Credentials {
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

/// The raw flags into a checked configuration; every problem is a usage error (exit 2).
pub fn build_config(args: &RunArgs, credentials: Credentials) -> Result<RunConfig, Error> {
    let output = match args.output.as_deref() {
        Some("-") => OutputTarget::Stdout,
        Some(path) => OutputTarget::File(path.into()),
        None => OutputTarget::default_for(&args.input),
    };
    if args.resume && output == OutputTarget::Stdout {
        return Err(Error::Usage(
            "--resume needs an OUTPUT file; it cannot continue stdout (-o -)".into(),
        ));
    }
    let default_city = match args.city_code.as_deref() {
        None => None,
        Some(text) => Some(City::parse(text).ok_or_else(|| {
            Error::Usage(format!(
                "--city-code {text:?} is not a Bihu city: use an id from 1 to 23 or a name such as 北京 or 广州"
            ))
        })?),
    };
    let positive = |name: &str, value: u64| {
        if value == 0 {
            Err(Error::Usage(format!("{name} must be at least 1")))
        } else {
            Ok(value)
        }
    };
    let rate = NonZeroU32::new(positive("--rate", args.rate.into())? as u32).expect("checked");
    let burst = NonZeroU32::new(positive("--burst", args.burst.into())? as u32).expect("checked");
    let concurrency =
        NonZeroUsize::new(positive("--concurrency", args.concurrency as u64)? as usize).expect("checked");
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Error::Usage(format!(
            "--timeout must be a positive number of seconds, got {}",
            args.timeout
        )));
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
        default_city,
        rate,
        burst,
        concurrency,
        retries: args.retries,
        timeout: Duration::from_secs_f64(args.timeout),
        backoff: Backoff::default(),
        credential_failure_limit: CREDENTIAL_FAILURE_LIMIT,
    })
}

/// First SIGINT/SIGTERM: stop intake and finish what is in flight. Second: leave at once.
async fn watch_signals(cancel: CancellationToken) {
    wait_for_signal().await;
    eprintln!(
        "\nbihu-renew: stopping: finishing the requests in flight and writing what is done (press Ctrl-C again to quit at once)"
    );
    cancel.cancel();
    wait_for_signal().await;
    eprintln!("\nbihu-renew: quitting now; run the same command with --resume to continue");
    std::process::exit(exit::INTERRUPTED);
}

async fn wait_for_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(terminate) => { terminate.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
