//! `bihu-renew sandbox`: serves the local imitation of the Bihu API (`src/sandbox/`) until
//! Ctrl-C, printing its address and credentials on start and its counts at the end.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::api::secret::Secret;
use crate::error::exit;
use crate::listen::Limits;
use crate::sandbox::{Sandbox, SandboxConfig};

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Agent id the sandbox accepts.
    #[arg(long, default_value = "102")]
    pub agent_id: String,

    /// Token the sandbox accepts (login issues more).
    #[arg(long, default_value = "4773EEC3EE9B572851C11DF730DCE827")]
    pub token: String,

    /// Secret key requests must be signed with.
    #[arg(long, default_value = "sandbox-secret")]
    pub secret_key: String,

    /// How the secret's key is spelled in the signed string.
    #[arg(long, default_value = crate::api::sign::DEFAULT_SECRET_KEY_LABEL)]
    pub secret_key_label: String,

    /// User name the login API accepts (default: any).
    #[arg(long)]
    pub user_name: Option<String>,

    /// Share of renewal requests answered 500 at random (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,

    /// Apply --fail-rate only to each vehicle's first request.
    #[arg(long)]
    pub fail_first_attempts_only: bool,

    /// Send `Retry-After: N` with every 500.
    #[arg(long)]
    pub retry_after: Option<u64>,

    /// Milliseconds added before each renewal answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Share of renewal requests whose connection is dropped without an answer (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,

    /// Seconds after which Tokens expire (the configured one counted from start).
    #[arg(long)]
    pub token_ttl: Option<u64>,

    /// Seconds the sandbox's clock runs ahead of this machine's (negative: behind), to
    /// rehearse a skewed clock: timestamps are checked against it, and its Date header says it.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub clock_offset: i64,

    /// Percentage of vehicles (chosen by a hash, so always the same ones) answered 206.
    #[arg(long, default_value_t = 20)]
    pub not_renewable_percent: u8,

    /// Append every renewal request's arrival (seconds since start) and status to this file,
    /// one line each as it is answered (for benchmarks that check the rate a client really
    /// sent). Bodies are not kept.
    #[arg(long)]
    pub record: Option<std::path::PathBuf>,

    /// Answer every renewal request HTTP 200 with the outcome only in the body's code (206,
    /// 403, 406, 412, 500), as gateways in front of such APIs often do.
    #[arg(long)]
    pub always_http_200: bool,

    /// Connections served at once; more wait in the accept queue until one closes.
    #[arg(long, default_value_t = Limits::DEFAULT_MAX_CONNECTIONS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Seconds a connection may take to send a request's head (also how long an idle
    /// keep-alive connection is kept); then it is closed.
    #[arg(long, default_value_t = Limits::DEFAULT_HEADER_READ_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout: u64,

    /// Seconds a request body may pause before its request is ended and its connection closed.
    #[arg(long, default_value_t = Limits::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<i32> {
    for (name, share) in [("--fail-rate", args.fail_rate), ("--drop-rate", args.drop_rate)] {
        if !(0.0..=1.0).contains(&share) {
            return Err(anyhow::anyhow!("{name} must be between 0.0 and 1.0, got {share}"));
        }
    }
    if args.not_renewable_percent > 100 {
        return Err(anyhow::anyhow!(
            "--not-renewable-percent must be between 0 and 100"
        ));
    }
    let config = SandboxConfig {
        agent_id: args.agent_id,
        token: args.token,
        secret: Secret::new(args.secret_key),
        secret_label: args.secret_key_label,
        user_name: args.user_name,
        fail_rate: args.fail_rate,
        fail_first_attempts_only: args.fail_first_attempts_only,
        retry_after_secs: args.retry_after,
        latency: Duration::from_millis(args.latency_ms),
        drop_rate: args.drop_rate,
        token_ttl: args.token_ttl.map(Duration::from_secs),
        not_renewable_percent: args.not_renewable_percent,
        clock_offset_secs: args.clock_offset,
        record_to: args.record.clone(),
        always_http_200: args.always_http_200,
        limits: Limits {
            max_connections: args.max_connections as usize,
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
        },
        ..SandboxConfig::default()
    };
    let mut stop = crate::cmd::StopSignals::new()?;
    let sandbox = Sandbox::start(args.listen, config)
        .await
        .with_context(|| match &args.record {
            Some(path) => format!("cannot listen on {} or create {}", args.listen, path.display()),
            None => format!("cannot listen on {}", args.listen),
        })?;
    let config = sandbox.config();
    // These are the sandbox's own made-up credentials; printing them is the point.
    eprintln!("bihu-renew sandbox listening on {}", sandbox.base_url());
    eprintln!("  agent id    {}", config.agent_id);
    eprintln!("  token       {}", config.token);
    eprintln!("  secret key  {}", config.secret.expose());
    eprintln!("  user name   {}", config.user_name.as_deref().unwrap_or("(any)"));
    eprintln!(
        "  try: BIHU_BASE_URL={} BIHU_AGENT_ID={} BIHU_TOKEN={} BIHU_SECRET_KEY={} bihu-renew run samples/leads.csv",
        sandbox.base_url(),
        config.agent_id,
        config.token,
        config.secret.expose()
    );
    eprintln!("  Ctrl-C stops it.");
    stop.next().await;
    eprintln!("bihu-renew sandbox: {}", sandbox.stats());
    sandbox.shutdown().await;
    Ok(exit::OK)
}
