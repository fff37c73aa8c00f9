//! `bihu-renew check`: tries the credentials on one vehicle the user names, and says which
//! credential is wrong as far as the answers tell.
//!
//! `login` alone cannot check the secret's label: the login signature is a fixed string
//! with no label in it. Only a renewal signs with the label, so `check` sends one, which
//! costs one request of the agent's quota (said before it is sent). What each answer tells:
//!
//! - the server's `Date` header against this machine's clock tells a skewed clock (the API
//!   allows 5 minutes) from the rest;
//! - a login (with a user name) signs with the secret but no label: accepted, the secret and
//!   the clock are right, so a 406 on the renewal can only be the label;
//! - without a user name, a 406 on the renewal is the secret or its label, and the message
//!   says a user name would tell them apart;
//! - 403 is the Token or the agent id; 200 and 206 mean every credential works.

use anyhow::Context;
use std::time::{Duration, SystemTime};

use clap::Args;

use crate::api::client::{self, Client, LoginError};
use crate::api::protocol::{Answer, LoginFailure};
use crate::cmd::config_file::ConfigFile;
use crate::cmd::{CredentialArgs, Purpose, resolve_credentials};
use crate::error::exit;
use crate::leads::lead::{self, Lead, RawLead};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Plate of a vehicle to renew as the check (or --vin with --engine-no).
    #[arg(long, required_unless_present = "vin")]
    pub plate: Option<String>,

    /// VIN of the vehicle, with --engine-no, when it has no ordinary plate.
    #[arg(long, requires = "engine_no")]
    pub vin: Option<String>,

    /// Engine number of the vehicle, with --vin.
    #[arg(long, requires = "vin")]
    pub engine_no: Option<String>,

    /// The vehicle's city: an id 1-23 or a name such as 北京 [default: the plate's].
    #[arg(long)]
    pub city_code: Option<String>,

    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// How far the server's clock may be from the timestamp, as the spec says.
const ALLOWED_SKEW_SECS: i64 = 300;

pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let file = ConfigFile::load(args.credentials.config.as_deref())?;
    let credentials = resolve_credentials(&args.credentials, &file, Purpose::Check)?;
    let lead = vehicle(&args, &file)?;
    let client = Client::new(
        credentials.base_url.clone(),
        credentials.agent.clone(),
        Duration::from_secs(30),
        1,
    )
    .context("cannot build the HTTP client")?;

    let host = credentials.base_url.as_str();
    let vehicle = describe(&lead);
    let login_note = match &credentials.user_name {
        Some(user) => format!("logs in as {user}, then "),
        None => String::new(),
    };
    say(&format!(
        "check {login_note}sends one renewal request for {vehicle} to {host}: it counts once against the agent's quota"
    ));

    let mut login_worked = false;
    let token = match (&credentials.user_name, &credentials.token) {
        (Some(user), given) => {
            let (result, date) = client.login_dated(user, client::unix_now()).await;
            let clock = Clock::read(date);
            match result {
                Ok(token) => {
                    login_worked = true;
                    say(&format!(
                        "login as {user}: accepted, so the agent id, the user name, the secret key and the clock are right (the login signature has no label)"
                    ));
                    clock.warn_if_off();
                    match given {
                        // The Token a run would use is the one given: that is what to check.
                        Some(token) => token.clone(),
                        None => token,
                    }
                }
                Err(error) => return Ok(login_refused(user, &error, &clock)),
            }
        }
        (None, Some(token)) => token.clone(),
        (None, None) => unreachable!("resolve_credentials requires a Token or a user name"),
    };

    let sent = client.renew_dated(&lead, &token, client::unix_now()).await;
    let (answer, date) = match sent {
        Ok(answer) => answer,
        Err(error) => {
            say(&format!(
                "no verdict: the renewal got no answer ({error}); nothing more was sent. Check the network, the proxy and --base-url, then try again"
            ));
            return Ok(exit::SOME_TRANSIENT);
        }
    };
    let clock = Clock::read(date);
    let label = &credentials.agent.secret_label;
    let code = match &answer {
        Answer::Renewed { .. } | Answer::NotRenewable { .. } => {
            let what = if matches!(answer, Answer::Renewed { .. }) {
                "renewed (a RenewalToken came back)"
            } else {
                "not renewable (206: Bihu has no renewal data for it), which is an answer to a request it accepted"
            };
            say(&format!(
                "renewal of {vehicle}: {what}. Every credential works: agent id, Token, secret key, its label {label:?} and the clock"
            ));
            clock.warn_if_off();
            exit::OK
        }
        Answer::Unauthorized { msg } => {
            let fix = if credentials.token.is_some() && login_worked {
                "the login works, so the Token given (--token, BIHU_TOKEN or the config file) is wrong or expired: leave it out and let the tool log in"
            } else if login_worked {
                "the Token was fresh from the login, so the agent id is not allowed to renew: ask Bihu"
            } else {
                "the Token is wrong or expired, or the agent id is not allowed: pass --user-name to log in for a fresh Token, or get a new one with `bihu-renew login`"
            };
            say(&format!("renewal refused (403: {msg}): {fix}"));
            exit::CREDENTIALS
        }
        Answer::VerificationFailed { msg } => {
            let fix = if let Some(skew) = clock.off() {
                skew
            } else if login_worked {
                format!(
                    "the login proved the secret key and the clock, so the label is wrong: the signed string spells the secret's key {label:?}; try --secret-key-label {}",
                    other_label(label)
                )
            } else if clock.known() {
                format!(
                    "the clock agrees with the server's, so the secret key or its label {label:?} is wrong (try --secret-key-label {}). Pass --user-name too and check tells the two apart: the login signs with the secret but no label",
                    other_label(label)
                )
            } else {
                format!(
                    "the secret key, its label {label:?} or this machine's clock is wrong; the server sent no Date header to compare clocks with (this machine says {}). Pass --user-name too and check tells the secret from the label",
                    httpdate::fmt_http_date(SystemTime::now())
                )
            };
            say(&format!("renewal refused (406: {msg}): {fix}"));
            exit::CREDENTIALS
        }
        Answer::InvalidParams { msg } => {
            say(&format!(
                "no verdict on the credentials: Bihu refused the vehicle's parameters (412: {msg}). Check the plate or VIN and the city, or name another vehicle"
            ));
            clock.warn_if_off();
            exit::SOME_TRANSIENT
        }
        Answer::Transient { status, msg, .. } => {
            say(&format!(
                "no verdict: the server failed (HTTP {status}: {msg}); check sends no retries. Try again later"
            ));
            exit::SOME_TRANSIENT
        }
        Answer::Protocol { problem, .. } => {
            say(&format!(
                "no verdict: the answer is not one the API gives ({problem}). Is --base-url {host} Bihu's API?"
            ));
            exit::SOME_TRANSIENT
        }
    };
    Ok(code)
}

/// The vehicle named on the command line, checked as a list row would be; a problem is a
/// usage error before anything is sent.
fn vehicle(args: &CheckArgs, file: &ConfigFile) -> anyhow::Result<Lead> {
    // `--city-code` names this vehicle's city, as a row's own city column would; the config's
    // `city_code` is the fallback after the plate's prefix, as for a list.
    let parse = |text: &String| crate::cmd::parse_city_flag(text);
    let own_city = args.city_code.as_ref().map(parse).transpose()?;
    let default_city = file.city_code.as_ref().map(parse).transpose()?;
    let own_city_text = own_city.map(|city| city.id.to_string()).unwrap_or_default();
    let raw = RawLead {
        plate: args.plate.as_deref().unwrap_or(""),
        vin: args.vin.as_deref().unwrap_or(""),
        engine: args.engine_no.as_deref().unwrap_or(""),
        city: &own_city_text,
    };
    let lead = lead::validate(&raw, default_city).map_err(|rejection| {
        anyhow::anyhow!("the vehicle to check cannot be sent, nothing was sent: {rejection}")
    })?;
    for warning in &lead.warnings {
        say(&format!("warning: {warning}"));
    }
    Ok(lead)
}

fn describe(lead: &Lead) -> String {
    let identity = match (&lead.plate, &lead.vin, &lead.engine) {
        (Some(plate), _, _) => plate.clone(),
        (None, Some(vin), Some(engine)) => format!("VIN {vin} with engine number {engine}"),
        _ => "the vehicle".to_string(),
    };
    format!("{identity} in {} ({})", lead.city.name, lead.city.id)
}

/// What a refused login says about the credentials; nothing more is sent.
fn login_refused(user: &str, error: &LoginError, clock: &Clock) -> i32 {
    let (verdict, code) = match error {
        LoginError::Rejected(LoginFailure::Verification(msg)) => {
            let fix = clock.off().unwrap_or_else(|| {
                if clock.known() {
                    "the clock agrees with the server's, so the secret key is wrong (the login signature has no label, so the label is not at fault)".to_string()
                } else {
                    format!(
                        "the secret key or this machine's clock is wrong (the label is not in the login signature); the server sent no Date header to compare clocks with (this machine says {})",
                        httpdate::fmt_http_date(SystemTime::now())
                    )
                }
            });
            (
                format!("login as {user} refused (406: {msg}): {fix}"),
                exit::CREDENTIALS,
            )
        }
        LoginError::Rejected(LoginFailure::Failed(msg)) => (
            format!(
                "login as {user} failed (416: {msg}): the user name is wrong; the secret and label were not checked"
            ),
            exit::CREDENTIALS,
        ),
        LoginError::Rejected(LoginFailure::Refused(msg)) => (
            format!(
                "login as {user} refused (403: {msg}): the agent id (or this user for it) is not allowed"
            ),
            exit::CREDENTIALS,
        ),
        LoginError::AgentIdNotNumeric(_) => (format!("{error}"), exit::USAGE),
        LoginError::Rejected(_) | LoginError::Transport(_) => (
            format!("no verdict: the login failed ({error})"),
            exit::SOME_TRANSIENT,
        ),
    };
    say(&format!("{verdict}; the renewal was not sent, no quota was used"));
    code
}

/// The other spelling of the secret's key that contracts use.
fn other_label(label: &str) -> &'static str {
    if label == "SecretKey" {
        "secretKey"
    } else {
        "SecretKey"
    }
}

fn say(text: &str) {
    eprintln!("bihu-renew: {text}");
}

/// This machine's clock against the server's, from an answer's `Date` header.
struct Clock {
    /// Seconds this machine is ahead of the server (behind when negative).
    ahead_secs: Option<i64>,
}

impl Clock {
    fn read(server: Option<SystemTime>) -> Clock {
        let now = SystemTime::now();
        let ahead_secs = server.map(|server| match now.duration_since(server) {
            Ok(ahead) => ahead.as_secs() as i64,
            Err(behind) => -(behind.duration().as_secs() as i64),
        });
        Clock { ahead_secs }
    }

    fn known(&self) -> bool {
        self.ahead_secs.is_some()
    }

    /// The fix, when this machine's clock is further off than the API allows.
    fn off(&self) -> Option<String> {
        let ahead = self.ahead_secs?;
        (ahead.abs() > ALLOWED_SKEW_SECS).then(|| {
            format!(
                "this machine's clock is {} s {} the server's (its Date header), more than the {ALLOWED_SKEW_SECS} s allowed: set the clock right (e.g. enable NTP with `timedatectl set-ntp true`); the secret and its label could not be checked",
                ahead.abs(),
                if ahead > 0 { "ahead of" } else { "behind" }
            )
        })
    }

    /// A skew within the allowance but large enough to watch.
    fn warn_if_off(&self) {
        if let Some(ahead) = self.ahead_secs
            && ahead.abs() >= 60
        {
            say(&format!(
                "warning: this machine's clock is {} s {} the server's; the API refuses more than {ALLOWED_SKEW_SECS} s",
                ahead.abs(),
                if ahead > 0 { "ahead of" } else { "behind" }
            ));
        }
    }
}
