//! Helpers shared by the integration tests: a loopback-only HTTP client, a sandbox on
//! `127.0.0.1:0`, the agent a sandbox config implies, leads, and the clock.

use std::time::{SystemTime, UNIX_EPOCH};

use bihu_renew::lead::{self, Lead, RawLead};
use bihu_renew::protocol::Agent;
use bihu_renew::sandbox::{Sandbox, SandboxConfig};

/// A client that never goes through a proxy, whatever the environment says.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds")
}

/// A sandbox on a free loopback port.
pub async fn start_sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("the sandbox binds 127.0.0.1:0")
}

/// The agent that the sandbox `config` accepts.
pub fn agent(config: &SandboxConfig) -> Agent {
    Agent {
        agent_id: config.agent_id.clone(),
        secret: config.secret.clone(),
        secret_label: config.secret_label.clone(),
    }
}

/// A lead for a plate, validated as the tool would.
#[track_caller]
pub fn lead(plate: &str) -> Lead {
    lead::validate(
        &RawLead {
            plate,
            ..Default::default()
        },
        None,
    )
    .unwrap_or_else(|rejection| panic!("{plate} is rejected: {rejection}"))
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}
