//! One module per subcommand: its arguments' validation and its `run`, returning an exit code.

pub mod check;
pub mod cli;
pub mod config_file;
pub mod docs;
pub mod history;
pub mod login;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod serve;

use anyhow::Context;
use url::Url;

use tokio::signal::unix::{Signal, SignalKind, signal};

use std::path::PathBuf;

use crate::api::protocol::Agent;
use crate::api::secret::Secret;
use crate::cmd::config_file::ConfigFile;
use clap::Args;

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

/// Credentials checked and built, ready for a client.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub base_url: Url,
    pub agent: Agent,
    pub token: Option<String>,
    pub user_name: Option<String>,
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Which command wants the credentials: what each cannot do without, and how to try it
/// without Bihu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `run`: a Token, or a user name to log in for one.
    Run,
    /// `login`: a user name.
    Login,
    /// `check`: as `run`.
    Check,
}

impl Purpose {
    /// How to try the command without credentials from Bihu.
    fn demo_hint(self) -> &'static str {
        match self {
            Purpose::Run => "try `run --sandbox` for a demo without them",
            Purpose::Login => {
                "to try it without them, start `bihu-renew sandbox` in another terminal and pass the --base-url, --agent-id and --secret-key it prints, with any --user-name"
            }
            Purpose::Check => {
                "to try it without them, start `bihu-renew sandbox` in another terminal and pass the --base-url, --agent-id, --secret-key and --token it prints"
            }
        }
    }
}

/// Checks the credentials (flag or environment, else the config file): every missing one is
/// named with its flag and variable, before anything is sent.
pub fn resolve_credentials(
    args: &CredentialArgs,
    file: &ConfigFile,
    purpose: Purpose,
) -> anyhow::Result<Credentials> {
    let need_user_name = purpose == Purpose::Login;
    let agent_id = non_empty(args.agent_id.as_ref()).or_else(|| non_empty(file.agent_id.as_ref()));
    let secret = match (non_empty(args.secret_key.as_ref()), &args.secret_key_file) {
        (Some(secret), _) => Some(secret),
        (None, Some(path)) => Some(config_file::read_secret_file(path)?),
        (None, None) => non_empty(file.secret_key.as_ref()),
    };
    let token = non_empty(args.token.as_ref()).or_else(|| non_empty(file.token.as_ref()));
    let user_name = non_empty(args.user_name.as_ref()).or_else(|| non_empty(file.user_name.as_ref()));
    let mut missing = Vec::new();
    if agent_id.is_none() {
        missing.push("--agent-id (or BIHU_AGENT_ID)");
    }
    if secret.is_none() {
        missing.push("--secret-key (or BIHU_SECRET_KEY, or --secret-key-file)");
    }
    if need_user_name && user_name.is_none() {
        missing.push("--user-name (or BIHU_USER_NAME)");
    } else if !need_user_name && token.is_none() && user_name.is_none() {
        missing.push("--token (or BIHU_TOKEN), or --user-name (or BIHU_USER_NAME) to log in for one");
    }
    if !missing.is_empty() {
        return Err(anyhow::anyhow!(
            "missing credentials, nothing was sent: {}. They can also go in a --config file. Bihu issues the agent id, secret key and user name; {}",
            missing.join("; "),
            purpose.demo_hint()
        ));
    }
    let agent_id = agent_id.expect("checked above");
    // A login signs the agent id as a number: with a user name the tool may log in, so a
    // wrong one is refused here rather than when the first login is about to go out.
    if user_name.is_some() && agent_id.parse::<i64>().is_err() {
        return Err(anyhow::anyhow!(
            "--agent-id {agent_id:?} is not a number; nothing was sent. Logging in with --user-name needs the numeric agent id Bihu issued: check --agent-id (or BIHU_AGENT_ID, or agent_id in the config file)"
        ));
    }
    let base_text = non_empty(args.base_url.as_ref())
        .or_else(|| non_empty(file.base_url.as_ref()))
        .unwrap_or_else(|| crate::cmd::cli::DEFAULT_BASE_URL.to_string());
    let base_url = Url::parse(&base_text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--base-url {base_text:?} is not an http(s) URL such as {}",
                crate::cmd::cli::DEFAULT_BASE_URL
            )
        })?;
    // Checked here too, so that a run refuses before it reads the list.
    crate::api::client::refuse_credentials(&base_url).context("--base-url")?;
    let label = non_empty(args.secret_key_label.as_ref())
        .or_else(|| non_empty(file.secret_key_label.as_ref()))
        .unwrap_or_else(|| crate::api::sign::DEFAULT_SECRET_KEY_LABEL.to_string());
    Ok(Credentials {
        base_url: crate::api::protocol::normalise_base(base_url),
        agent: Agent {
            agent_id,
            secret: Secret::new(secret.expect("checked above")),
            secret_label: label,
        },
        token,
        user_name,
    })
}

/// A `--city-code` flag: an id or a name, or a usage error that says what is accepted.
pub fn parse_city_flag(text: &str) -> anyhow::Result<crate::leads::city::City> {
    crate::leads::city::City::parse(text).ok_or_else(|| {
        anyhow::anyhow!(
            "--city-code {text:?} is not a Bihu city: use an id from 1 to 23 or a name such as 北京 or 广州"
        )
    })
}

/// SIGINT (Ctrl-C) and SIGTERM (what `kill` and service managers send), listened to from
/// the moment this is made: a signal that comes while the program is busy elsewhere, or
/// between two waits, is not lost.
pub struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub fn new() -> anyhow::Result<StopSignals> {
        let listen = |kind| signal(kind).context("cannot listen for signals");
        Ok(StopSignals {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
        })
    }

    /// The next SIGINT or SIGTERM.
    pub async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
