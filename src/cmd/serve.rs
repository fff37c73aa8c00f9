//! `bihu-renew serve`: checks the config (credentials as `run` reads them, plus `[serve]`),
//! refuses to listen beyond loopback without users, starts the sandbox when asked, and serves
//! until SIGINT/SIGTERM. `bihu-renew hash-password` makes a user's `password_hash`.

use anyhow::Context;
use std::io::BufRead;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::cmd::config_file::{ConfigFile, ServeTable};
use crate::cmd::{CredentialArgs, StopSignals, resolve_credentials};
use crate::error::exit;
use crate::run::config::Backoff;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::serve::auth::{self, User};
use crate::serve::jobs::JobSettings;
use crate::serve::{AppState, ServeConfig};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "bihu-renew-data";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080, or listen in [serve]]; port 0 picks one.
    #[arg(long, env = "BIHU_LISTEN")]
    pub listen: Option<String>,

    /// Folder for the job store, uploads and results [default: ./bihu-renew-data, or
    /// data_dir in [serve]].
    #[arg(long, env = "BIHU_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(flatten)]
    pub credentials: CredentialArgs,

    /// Start the built-in sandbox in-process and send every job to it (no credentials needed).
    #[arg(long)]
    pub sandbox: bool,
}

/// What `[serve]` settles, with the flags winning over it, and the defaults.
#[derive(Debug, Clone, PartialEq)]
struct ServeSettings {
    listen: SocketAddr,
    data_dir: PathBuf,
    max_upload_bytes: u64,
    retention: Duration,
    session_ttl: Duration,
    /// An upload's reuse window when it gives none.
    reuse_within: Option<Duration>,
}

/// Reads `[serve]` (and the top-level `reuse_within`) of `file`; `listen` and `data_dir` are
/// the flags', which win.
fn serve_settings(
    listen: Option<&str>,
    data_dir: Option<&std::path::Path>,
    file: &ConfigFile,
) -> anyhow::Result<ServeSettings> {
    let table = file.serve.clone().unwrap_or_default();
    let listen_text = listen
        .map(str::to_string)
        .or_else(|| table.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        anyhow::anyhow!("--listen {listen_text:?} is not an address such as {DEFAULT_LISTEN}")
    })?;
    let max_upload_mb = table.max_upload_mb.unwrap_or(100);
    if max_upload_mb == 0 {
        return Err(anyhow::anyhow!("max_upload_mb in [serve] must be at least 1"));
    }
    let reuse_within = match table.reuse_within.as_ref().or(file.reuse_within.as_ref()) {
        None => None,
        Some(text) if matches!(text.trim(), "off" | "none") => None,
        Some(text) => Some(
            crate::results::history::parse_duration(text)
                .map_err(|why| anyhow::anyhow!("reuse_within in the config: {why}, or off"))?,
        ),
    };
    Ok(ServeSettings {
        listen,
        data_dir: data_dir
            .map(PathBuf::from)
            .or_else(|| table.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        max_upload_bytes: max_upload_mb.saturating_mul(1024 * 1024),
        retention: Duration::from_secs(table.retention_days.unwrap_or(30).saturating_mul(86_400)),
        session_ttl: Duration::from_secs(table.session_hours.unwrap_or(12).max(1).saturating_mul(3600)),
        reuse_within,
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    let file = ConfigFile::load(args.credentials.config.as_deref())?;
    let table = file.serve.clone().unwrap_or_default();
    let served = serve_settings(args.listen.as_deref(), args.data_dir.as_deref(), &file)?;
    let listen = served.listen;
    let users = users(&table)?;
    if users.is_empty() && !listen.ip().is_loopback() {
        return Err(anyhow::anyhow!(
            "refusing to listen on {listen} without users: anyone who can reach it could run jobs on the agent's quota and read customers' data. Add [[serve.users]] to the config (bihu-renew hash-password makes a password_hash), or listen on 127.0.0.1"
        ));
    }

    let sandbox = if args.sandbox {
        let sandbox = Sandbox::start(
            "127.0.0.1:0".parse().expect("a valid address"),
            SandboxConfig::demo(),
        )
        .await
        .context("cannot start the sandbox")?;
        eprintln!(
            "bihu-renew serve: jobs go to the built-in sandbox at {} (nothing leaves this machine)",
            sandbox.base_url()
        );
        Some(sandbox)
    } else {
        None
    };
    let credentials = match &sandbox {
        Some(sandbox) => crate::cmd::run::sandbox_credentials(sandbox),
        None => resolve_credentials(&args.credentials, &file, crate::cmd::Purpose::Run)?,
    };
    let at_least_one = |name: &str, value: u64| {
        if value == 0 {
            Err(anyhow::anyhow!("{name} in the config must be at least 1"))
        } else {
            Ok(value)
        }
    };
    let timeout = file.timeout.unwrap_or(30.0);
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(anyhow::anyhow!(
            "timeout must be a positive number of seconds, got {timeout}"
        ));
    }
    let settings = JobSettings {
        base_url: credentials.base_url,
        agent: credentials.agent,
        token: credentials.token,
        user_name: credentials.user_name,
        rate: NonZeroU32::new(at_least_one("rate", file.rate.unwrap_or(10).into())? as u32).expect("checked"),
        burst: NonZeroU32::new(at_least_one("burst", file.burst.unwrap_or(1).into())? as u32)
            .expect("checked"),
        concurrency: NonZeroUsize::new(
            at_least_one("concurrency", file.concurrency.unwrap_or(8) as u64)? as usize
        )
        .expect("checked"),
        retries: file.retries.unwrap_or(3),
        timeout: Duration::from_secs_f64(timeout),
        backoff: Backoff::default(),
        credential_failure_limit: crate::cmd::run::CREDENTIAL_FAILURE_LIMIT,
    };
    let config = ServeConfig {
        data_dir: served.data_dir,
        max_upload_bytes: served.max_upload_bytes,
        retention: served.retention,
        session_ttl: served.session_ttl,
        users,
        settings,
        // The config's `history` (the file `run --history` reads from the same config), so a
        // cron job and the service share one; else the store's own tables.
        history: file.history.clone(),
        reuse_within: served.reuse_within,
        limits: crate::listen::Limits::default(),
    };

    let mut signals = StopSignals::new()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let data_dir = config.data_dir.clone();
    let open = config.users.is_empty();
    let history = config.history_path();
    let state = AppState::open(config).await?;
    if open {
        eprintln!("bihu-renew serve: no users in [serve]: open without login, so on loopback only");
    }
    eprintln!(
        "bihu-renew serve: data in {}; answer history in {}; listening on http://{bound}/",
        data_dir.display(),
        history.display()
    );
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let watcher = tokio::spawn(async move {
        signals.next().await;
        eprintln!(
            "bihu-renew serve: stopping: running jobs finish their requests in flight and resume on the next start"
        );
        stopped.cancel();
    });
    let result = crate::serve::serve(listener, state, stop.cancelled_owned()).await;
    watcher.abort();
    if let Some(sandbox) = sandbox {
        sandbox.shutdown().await;
    }
    result?;
    Ok(exit::OK)
}

fn users(table: &ServeTable) -> anyhow::Result<Vec<User>> {
    let mut users: Vec<User> = Vec::new();
    for (i, user) in table.users.iter().enumerate() {
        let name = user.name.trim();
        if name.is_empty() || name.contains(':') {
            return Err(anyhow::anyhow!(
                "[[serve.users]] entry {}: name must be non-empty and without ':'",
                i + 1
            ));
        }
        if users.iter().any(|u| u.name == name) {
            return Err(anyhow::anyhow!("[[serve.users]]: {name} is listed twice"));
        }
        auth::check_hash(&user.password_hash)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("[[serve.users]] {name}: password_hash"))?;
        users.push(User {
            name: name.to_string(),
            password_hash: user.password_hash.clone(),
        });
    }
    Ok(users)
}

/// `bihu-renew hash-password`: reads a password (the first line of stdin) and prints its
/// argon2id hash for `password_hash`.
pub fn hash_password() -> anyhow::Result<i32> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!(
            "bihu-renew: type the password and press Enter (it is shown as you type; pipe it in to avoid that)"
        );
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(anyhow::anyhow!(
            "no password on stdin: pipe one in, e.g. printf '%s' \"$PW\" | bihu-renew hash-password"
        ));
    }
    let hash = auth::hash_password(password).map_err(anyhow::Error::msg)?;
    println!("{hash}");
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> ConfigFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bihu.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile::load(Some(&path)).unwrap()
    }

    #[test]
    fn the_serve_table_of_a_config_file_is_read_and_the_flags_win() {
        let file = load(
            "rate = 5\n[serve]\nlisten = \"127.0.0.1:9191\"\ndata_dir = \"/srv/bihu\"\nmax_upload_mb = 7\nretention_days = 3\n",
        );
        let settings = serve_settings(None, None, &file).unwrap();
        assert_eq!(settings.listen, "127.0.0.1:9191".parse().unwrap());
        assert_eq!(settings.data_dir, PathBuf::from("/srv/bihu"));
        assert_eq!(settings.max_upload_bytes, 7 * 1024 * 1024);
        assert_eq!(settings.retention, Duration::from_secs(3 * 86_400));

        let flagged = serve_settings(Some("127.0.0.1:0"), Some(std::path::Path::new("d")), &file).unwrap();
        assert_eq!(flagged.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(flagged.data_dir, PathBuf::from("d"));
        assert_eq!(flagged.max_upload_bytes, settings.max_upload_bytes);
    }

    #[test]
    fn without_a_serve_table_the_defaults_hold() {
        for file in [ConfigFile::default(), load("rate = 5\n[serve]\n")] {
            let settings = serve_settings(None, None, &file).unwrap();
            assert_eq!(settings.listen, DEFAULT_LISTEN.parse().unwrap());
            assert_eq!(settings.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
            assert_eq!(settings.max_upload_bytes, 100 * 1024 * 1024);
            assert_eq!(settings.retention, Duration::from_secs(30 * 86_400));
            assert_eq!(settings.session_ttl, Duration::from_secs(12 * 3600));
            assert_eq!(settings.reuse_within, None);
        }
    }

    #[test]
    fn a_zero_upload_limit_and_a_bad_address_are_refused_with_the_setting_named() {
        let zero = serve_settings(None, None, &load("[serve]\nmax_upload_mb = 0\n")).unwrap_err();
        assert!(zero.to_string().contains("max_upload_mb"), "{zero}");
        let bad = serve_settings(Some("localhost"), None, &ConfigFile::default()).unwrap_err();
        assert!(bad.to_string().contains("--listen \"localhost\""), "{bad}");
    }
}
