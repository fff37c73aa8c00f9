//! The HTTP side of the protocol: one renewal attempt and one login, over reqwest.
//!
//! Owns the connection pool and the endpoint URLs; knows nothing of retries, pacing or rows
//! (the pipeline decides those). Transport failures come back as [`TransportError`] so the
//! pipeline can tell a timeout from a refused connection.

use std::time::Duration;

use reqwest::Url;
use reqwest::header::RETRY_AFTER;

use crate::lead::Lead;
use crate::protocol::{self, Agent, Answer, LoginFailure, LoginRequest, QuotePage, RenewalRequest};

/// What went wrong below HTTP: no answer was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("connection broken: {0}")]
    Broken(String),
}

/// Why a login gave no Token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Rejected(#[from] LoginFailure),
    #[error("login: {0}")]
    Transport(#[from] TransportError),
    #[error("login needs a numeric agent id, got {0:?}")]
    AgentIdNotNumeric(String),
}

/// A client for one agent against one base URL.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    renewal_url: Url,
    login_url: Url,
    agent: Agent,
    timeout: Duration,
    quote_page: QuotePage,
}

/// Lifetime asked for a Token obtained by logging in: a working day and more.
pub const LOGIN_TOKEN_LIFETIME_SECS: u64 = 86_400;

impl Client {
    pub fn new(
        base: Url,
        agent: Agent,
        timeout: Duration,
        max_idle_per_host: usize,
    ) -> reqwest::Result<Client> {
        let base = protocol::normalise_base(base);
        let mut builder = reqwest::Client::builder();
        // A proxy from the environment must not capture traffic meant for a local sandbox.
        let loopback = match base.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        if loopback {
            builder = builder.no_proxy();
        }
        let http = builder
            .timeout(timeout)
            // The API never redirects; a redirected POST would be a misconfigured base URL.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(max_idle_per_host)
            .user_agent(concat!("bihu-renew/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            renewal_url: base.join(protocol::RENEWAL_PATH).expect("constant path joins"),
            login_url: base.join(protocol::LOGIN_PATH).expect("constant path joins"),
            quote_page: QuotePage::new(&base),
            http,
            agent,
            timeout,
        })
    }

    pub fn quote_page(&self) -> &QuotePage {
        &self.quote_page
    }

    /// One signed renewal attempt at `timestamp`.
    pub async fn renew(&self, lead: &Lead, token: &str, timestamp: i64) -> Result<Answer, TransportError> {
        let request = RenewalRequest::signed(lead, &self.agent, token, timestamp);
        let (status, retry_after, body) = self.post(&self.renewal_url, &request).await?;
        Ok(protocol::classify(status, retry_after, &body))
    }

    /// Logs in for a fresh Token.
    pub async fn login(&self, user_name: &str, timestamp: i64) -> Result<String, LoginError> {
        let request = LoginRequest::signed(&self.agent, user_name, timestamp, LOGIN_TOKEN_LIFETIME_SECS)
            .ok_or_else(|| LoginError::AgentIdNotNumeric(self.agent.agent_id.clone()))?;
        let (status, _, body) = self.post(&self.login_url, &request).await?;
        Ok(protocol::classify_login(status, &body)?)
    }

    async fn post<T: serde::Serialize>(
        &self,
        url: &Url,
        body: &T,
    ) -> Result<(u16, Option<u64>, bytes::Bytes), TransportError> {
        let response = self
            .http
            .post(url.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        Ok((status, retry_after, body))
    }

    fn transport(&self, error: reqwest::Error) -> TransportError {
        // reqwest's Display names the URL but not the cause; the cause chain says what happened.
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail = format!("{detail}: {cause}");
            source = cause.source();
        }
        if error.is_timeout() {
            TransportError::Timeout(self.timeout)
        } else if error.is_connect() {
            TransportError::Connect(detail)
        } else {
            TransportError::Broken(detail)
        }
    }
}

/// Unix time in seconds, for `TimeStamp`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
