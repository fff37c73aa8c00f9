//! One module per subcommand: its arguments' validation and its `run`, returning an exit code.

pub mod login;
pub mod run;
pub mod sandbox;

use reqwest::Url;

use crate::cli::CredentialArgs;
use crate::error::Error;
use crate::protocol::Agent;
use crate::secret::Secret;

/// Credentials checked and built, ready for a client.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub base_url: Url,
    pub agent: Agent,
    pub token: Option<String>,
    pub user_name: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Checks the credential flags: every missing one is named with its variable, before anything
/// is sent. `need_user_name` is for `login`, which cannot do without one.
pub fn resolve_credentials(args: &CredentialArgs, need_user_name: bool) -> Result<Credentials, Error> {
    let agent_id = non_empty(&args.agent_id);
    let secret = non_empty(&args.secret_key);
    let token = non_empty(&args.token);
    let user_name = non_empty(&args.user_name);
    let mut missing = Vec::new();
    if agent_id.is_none() {
        missing.push("--agent-id (or BIHU_AGENT_ID)");
    }
    if secret.is_none() {
        missing.push("--secret-key (or BIHU_SECRET_KEY)");
    }
    if need_user_name && user_name.is_none() {
        missing.push("--user-name (or BIHU_USER_NAME)");
    } else if !need_user_name && token.is_none() && user_name.is_none() {
        missing.push("--token (or BIHU_TOKEN), or --user-name (or BIHU_USER_NAME) to log in for one");
    }
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "missing credentials, nothing was sent: {}. Bihu issues the agent id, secret key and user name; try --sandbox for a demo without them",
            missing.join("; ")
        )));
    }
    let base_url = Url::parse(args.base_url.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--base-url {:?} is not an http(s) URL such as {}",
                args.base_url,
                crate::cli::DEFAULT_BASE_URL
            ))
        })?;
    let label = args.secret_key_label.trim();
    if label.is_empty() {
        return Err(Error::Usage(
            "--secret-key-label must not be empty (default secretKey)".into(),
        ));
    }
    Ok(Credentials {
        base_url: crate::protocol::normalise_base(base_url),
        agent: Agent {
            agent_id: agent_id.expect("checked above"),
            secret: Secret::new(secret.expect("checked above")),
            secret_label: label.to_string(),
        },
        token,
        user_name,
    })
}
