//! The credential breaker: counts 403 and 406 answers in a row across the run's turns and,
//! past `--credential-failure-limit`, cancels the run's stop token with a diagnosis that
//! names what to check. Turns report every status to it; the pipeline reads the diagnosis
//! at the end.

use std::sync::{Mutex, OnceLock};

use tokio_util::sync::CancellationToken;

use crate::api::client;
use crate::results::outcome::Status;
use crate::run::config::RunConfig;

/// Stops a run whose credentials keep being refused, instead of burning through the list.
pub(super) struct Breaker {
    limit: u32,
    /// The current run of credential failures: 403s and 406s since the last answer that
    /// passed the credential checks.
    streak: Mutex<Streak>,
    agent_id: String,
    user_name: Option<String>,
    stop: CancellationToken,
    diagnosis: OnceLock<String>,
}

#[derive(Default, Clone, Copy)]
struct Streak {
    n_403: u32,
    n_406: u32,
}

impl Breaker {
    pub(super) fn new(config: &RunConfig, stop: CancellationToken) -> Breaker {
        Breaker {
            limit: config.credential_failure_limit.max(1),
            streak: Mutex::new(Streak::default()),
            agent_id: config.agent.agent_id.clone(),
            user_name: config.user_name.clone(),
            stop,
            diagnosis: OnceLock::new(),
        }
    }

    pub(super) fn record(&self, status: Status) {
        let mut streak = self.streak.lock().expect("breaker lock");
        match status {
            Status::Unauthorized => streak.n_403 += 1,
            Status::VerificationFailed => streak.n_406 += 1,
            // These answers passed the credential checks.
            Status::Renewed | Status::NotRenewable | Status::InvalidParams => *streak = Streak::default(),
            _ => return,
        }
        if streak.n_403 + streak.n_406 >= self.limit && self.diagnosis.get().is_none() {
            let _ = self.diagnosis.set(self.diagnose(*streak));
            self.stop.cancel();
        }
    }

    fn diagnose(&self, Streak { n_403, n_406 }: Streak) -> String {
        let consecutive = n_403 + n_406;
        let head = format!(
            "stopped after {consecutive} consecutive credential failures ({n_403}×403, {n_406}×406)."
        );
        let mut advice = Vec::new();
        if n_403 > 0 {
            let login = match &self.user_name {
                Some(user) => format!(
                    "logging in again as {user} did not help: check --user-name (BIHU_USER_NAME) and --agent-id (BIHU_AGENT_ID)"
                ),
                None => "get a fresh Token (bihu-renew login) or pass --user-name (BIHU_USER_NAME) so the tool logs in by itself".to_string(),
            };
            advice.push(format!(
                "HTTP 403: the Token is unknown or expired, or agent {} is not allowed; {login}",
                self.agent_id
            ));
        }
        if n_406 > 0 {
            advice.push(format!(
                "HTTP 406: the signature or timestamp was refused; check --secret-key (BIHU_SECRET_KEY), --secret-key-label if your contract spells it SecretKey, and this machine's clock (unix time here: {})",
                client::unix_now()
            ));
        }
        format!("{head} {}", advice.join(". "))
    }

    pub(super) fn tripped(&self) -> Option<&str> {
        self.diagnosis.get().map(String::as_str)
    }
}
