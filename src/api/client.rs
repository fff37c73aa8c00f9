//! The API client: one signed renewal attempt and one login, over a [`Transport`]; and the
//! transport over reqwest.
//!
//! Knows nothing of retries, pacing or rows (the pipeline decides those). Transport failures
//! come back as [`TransportError`], a timeout, a failed connection or a broken
//! exchange, so messages say which; the pipeline retries every kind alike.
//!
//! [`Http`] is a thin adapter over reqwest (rustls, the platform's certificate verifier).
//! reqwest brings the proxies: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`, the
//! system settings of Windows and macOS, `http://`, `https://` and SOCKS5 proxies. What this
//! module sets on top: a request timeout, a connect timeout, TCP_NODELAY and keepalive, no
//! redirects and no retries (retries are the pipeline's business), a loopback base URL never
//! proxied, a base URL with a user name or password refused, and messages that name the host
//! and the proxy.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, DATE, HeaderValue, RETRY_AFTER};
use url::Url;

use crate::api::body::{ANSWER_BODY_LIMIT, CappedBody, read_capped};
use crate::api::protocol::{self, Agent, Answer, LoginFailure, LoginRequest, QuotePage, RenewalRequest};
pub use crate::api::transport::TransportError;
use crate::api::transport::{Endpoint, Reply, Transport};
use crate::leads::lead::Lead;

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

impl LoginError {
    /// Bihu refused these credentials (416 user name, 403 agent, 406 signature or clock):
    /// the same login fails again until one is fixed. A server error, a strange answer or no
    /// answer at all is no verdict on them.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            LoginError::Rejected(
                LoginFailure::Failed(_) | LoginFailure::Refused(_) | LoginFailure::Verification(_)
            )
        )
    }
}

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "the base URL carries a user name or password; Bihu's API takes none. Remove the \
         `user:password@` part"
    )]
    BaseUrlCredentials,
    #[error("the proxy {proxy} (from {variable}) is not a URL: {problem}")]
    ProxyUrl {
        proxy: String,
        variable: &'static str,
        problem: String,
    },
    #[error(
        "the proxy {proxy} (from {variable}) is neither http://, https:// nor socks5://; name \
         one of those there, or add the host to NO_PROXY to connect directly"
    )]
    ProxyScheme { proxy: String, variable: &'static str },
    #[error("cannot set up the HTTP client: {0}")]
    Http(String),
}

/// A client for one agent against one base URL.
#[derive(Debug, Clone)]
pub struct Client {
    transport: Arc<dyn Transport>,
    agent: Agent,
    quote_page: QuotePage,
}

/// Lifetime asked for a Token obtained by logging in: a working day and more.
pub const LOGIN_TOKEN_LIFETIME_SECS: u64 = 86_400;

const USER_AGENT_VALUE: &str = concat!("bihu-renew/", env!("CARGO_PKG_VERSION"));

impl Client {
    /// A client for `base` over HTTP, with the proxies of the environment, holding up to
    /// `max_idle_per_host` idle connections.
    pub fn new(
        base: Url,
        agent: Agent,
        timeout: Duration,
        max_idle_per_host: usize,
    ) -> Result<Client, BuildError> {
        let transport = Http::new(&base, timeout, max_idle_per_host, Proxies::Environment)?;
        Ok(Client::over(Arc::new(transport), agent, &base))
    }

    /// A client that sends through `transport`; `base` makes the quote URLs.
    pub fn over(transport: Arc<dyn Transport>, agent: Agent, base: &Url) -> Client {
        Client {
            transport,
            agent,
            quote_page: QuotePage::new(&protocol::normalise_base(base.clone())),
        }
    }

    pub fn quote_page(&self) -> &QuotePage {
        &self.quote_page
    }

    /// One signed renewal attempt at `timestamp`.
    pub async fn renew(&self, lead: &Lead, token: &str, timestamp: i64) -> Result<Answer, TransportError> {
        Ok(self.renew_dated(lead, token, timestamp).await?.0)
    }

    /// As [`Client::renew`], with the server's clock as its `Date` header gave it, if it did.
    pub async fn renew_dated(
        &self,
        lead: &Lead,
        token: &str,
        timestamp: i64,
    ) -> Result<(Answer, Option<SystemTime>), TransportError> {
        let request = RenewalRequest::signed(lead, &self.agent, token, timestamp);
        let reply = self.transport.post(Endpoint::Renewal, json(&request)).await?;
        let answer = match &reply.body {
            CappedBody::Whole(body) => protocol::classify(reply.status, reply.retry_after, body),
            CappedBody::TooLarge { limit } => protocol::too_large(reply.status, *limit),
        };
        Ok((answer, reply.date))
    }

    /// Logs in for a fresh Token.
    pub async fn login(&self, user_name: &str, timestamp: i64) -> Result<String, LoginError> {
        self.login_dated(user_name, timestamp).await.0
    }

    /// As [`Client::login`], with the server's clock as its `Date` header gave it, if it did.
    pub async fn login_dated(
        &self,
        user_name: &str,
        timestamp: i64,
    ) -> (Result<String, LoginError>, Option<SystemTime>) {
        let Some(request) =
            LoginRequest::signed(&self.agent, user_name, timestamp, LOGIN_TOKEN_LIFETIME_SECS)
        else {
            return (
                Err(LoginError::AgentIdNotNumeric(self.agent.agent_id.clone())),
                None,
            );
        };
        match self.transport.post(Endpoint::Login, json(&request)).await {
            Ok(Reply {
                status,
                body: CappedBody::Whole(body),
                date,
                ..
            }) => (
                protocol::classify_login(status, &body).map_err(LoginError::from),
                date,
            ),
            Ok(Reply {
                status,
                body: CappedBody::TooLarge { limit },
                date,
                ..
            }) => (
                Err(LoginError::Transport(TransportError::Broken(format!(
                    "the login answer (HTTP {status}) exceeded {} MB ({limit} bytes); reading stopped there",
                    limit >> 20
                )))),
                date,
            ),
            Err(error) => (Err(error.into()), None),
        }
    }
}

fn json<T: serde::Serialize>(body: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(body).expect("request bodies are plain strings and numbers"))
}

/// Where the proxies come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxies {
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, else the system's settings.
    Environment,
    /// Every request through this proxy (tests, and callers that know better).
    Only(String),
    /// No proxy at all.
    Direct,
}

/// The transport over reqwest, for one base URL.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    renewal: Url,
    login: Url,
    /// Where requests go, for messages: the host, and the proxy in front of it if any.
    endpoint: String,
    timeout: Duration,
}

impl Http {
    /// A transport to `base`. The proxy is chosen by reqwest; a loopback base URL (the
    /// sandbox) is never proxied.
    pub fn new(
        base: &Url,
        timeout: Duration,
        max_idle_per_host: usize,
        proxies: Proxies,
    ) -> Result<Http, BuildError> {
        let base = protocol::normalise_base(base.clone());
        refuse_credentials(&base)?;
        let renewal = base.join(protocol::RENEWAL_PATH).expect("constant path joins");
        let login = base.join(protocol::LOGIN_PATH).expect("constant path joins");

        // As reqwest's defaults and curl: a pooled connection that a NAT or load balancer
        // dropped in silence is found out in under a minute rather than at the timeout.
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT_VALUE)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(15))
            .tcp_keepalive_interval(Duration::from_secs(15))
            .tcp_keepalive_retries(3)
            .tcp_user_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(max_idle_per_host)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never());
        let host = host_of(&base);
        let proxy = if is_loopback(&base) {
            builder = builder.no_proxy();
            None
        } else {
            match &proxies {
                Proxies::Environment => environment_proxy(&base)?,
                Proxies::Only(proxy) => {
                    let shown = checked_proxy(proxy, "the caller")?;
                    let proxy = reqwest::Proxy::all(proxy.as_str())
                        .map_err(|e| BuildError::Http(e.without_url().to_string()))?;
                    builder = builder.proxy(proxy);
                    Some(shown)
                }
                Proxies::Direct => {
                    builder = builder.no_proxy();
                    None
                }
            }
        };
        let endpoint = match &proxy {
            Some(proxy) => {
                tracing::debug!(%proxy, "requests go through a proxy");
                format!("{host} through the proxy {proxy}")
            }
            None => host,
        };
        if !does_tls(&base, proxy.as_deref()) {
            // Reading and parsing the system's CA bundle took 40-80 ms of every start in a
            // debug build (strace, exec to first connect, against the sandbox).
            builder = builder.tls_certs_only([]);
        }
        let client = builder.build().map_err(|e| BuildError::Http(chain(&e)))?;
        Ok(Http {
            client,
            renewal,
            login,
            endpoint,
            timeout,
        })
    }

    async fn send(&self, endpoint: Endpoint, json: Bytes) -> Result<Reply, TransportError> {
        let url = match endpoint {
            Endpoint::Renewal => &self.renewal,
            Endpoint::Login => &self.login,
        };
        let response = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(json)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let date = response
            .headers()
            .get(DATE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| httpdate::parse_http_date(value).ok());
        // Read chunk by chunk up to the cap: a body that never ends costs at most the cap, and
        // the response (with its connection) is dropped as soon as the cap is passed.
        let chunks = futures::stream::try_unfold(response, |mut response| async move {
            Ok::<_, reqwest::Error>(response.chunk().await?.map(|chunk| (chunk, response)))
        });
        let body = read_capped(chunks, ANSWER_BODY_LIMIT)
            .await
            .map_err(|e| self.error(e))?;
        Ok(Reply {
            status,
            retry_after,
            body,
            date,
        })
    }

    fn error(&self, error: reqwest::Error) -> TransportError {
        // The URL is the endpoint's, which `endpoint` names better (with the proxy).
        let error = error.without_url();
        if error.is_connect() {
            TransportError::Connect(format!("{}: {}", self.endpoint, chain(&error)))
        } else if error.is_timeout() {
            TransportError::Timeout(self.timeout)
        } else {
            TransportError::Broken(chain(&error))
        }
    }
}

/// Names the route only: reqwest's own Debug would show a proxy's URL, credentials and all.
impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Transport for Http {
    fn post(&self, endpoint: Endpoint, json: Bytes) -> BoxFuture<'_, Result<Reply, TransportError>> {
        self.send(endpoint, json).boxed()
    }
}

/// An error and its causes, one after another: reqwest's Display names the step, the causes
/// say what happened.
fn chain(error: &dyn std::error::Error) -> String {
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !detail.ends_with(&cause_text) {
            detail = format!("{detail}: {cause_text}");
        }
        source = cause.source();
    }
    detail
}

/// Refuses a base URL that carries a user name or password: they would be sent to a proxy,
/// and written into every quote URL. Never echoes them.
pub fn refuse_credentials(base: &Url) -> Result<(), BuildError> {
    if base.username().is_empty() && base.password().is_none() {
        Ok(())
    } else {
        Err(BuildError::BaseUrlCredentials)
    }
}

/// The host and the port if one is named, as the messages show it.
fn host_of(base: &Url) -> String {
    let host = base.host_str().unwrap_or_default();
    match base.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Whether requests to `base` (through the proxy shown as `proxy`, if any) can do TLS: not
/// for an http:// base reached directly or through an http:// proxy, which then needs no
/// certificates. Redirects are never followed, so no other host is reached.
fn does_tls(base: &Url, proxy: Option<&str>) -> bool {
    base.scheme() != "http" || proxy.is_some_and(|proxy| !proxy.starts_with("http://"))
}

fn is_loopback(base: &Url) -> bool {
    match base.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The variables reqwest reads for a base URL's scheme, in its order.
fn proxy_variables(base: &Url) -> &'static [&'static str] {
    if base.scheme() == "https" {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    }
}

/// The proxy the environment names for `base`, as it may be shown, for messages; reqwest
/// reads the same variables and routes by them. A proxy that reqwest could not use is
/// refused here by name, rather than ignored.
fn environment_proxy(base: &Url) -> Result<Option<String>, BuildError> {
    proxy_named(base, |variable| std::env::var(variable).ok())
}

/// [`environment_proxy`] with the variables read through `var`.
fn proxy_named(base: &Url, var: impl Fn(&str) -> Option<String>) -> Result<Option<String>, BuildError> {
    let Some((variable, proxy)) = proxy_variables(base).iter().find_map(|variable| {
        var(variable)
            .filter(|value| !value.trim().is_empty())
            .map(|value| (*variable, value))
    }) else {
        return Ok(None);
    };
    let shown = checked_proxy(&proxy, variable)?;
    let exempt = ["NO_PROXY", "no_proxy"]
        .iter()
        .find_map(|variable| var(variable))
        .is_some_and(|list| no_proxy_lists(&list, base.host_str().unwrap_or_default()));
    Ok((!exempt).then_some(shown))
}

/// Whether a `NO_PROXY` list names `host` (as `*`, the host itself, or a domain above it),
/// for messages only: reqwest applies the whole rule, IP ranges included.
fn no_proxy_lists(list: &str, host: &str) -> bool {
    list.split(',').map(str::trim).any(|entry| {
        let domain = entry.trim_start_matches("*.").trim_start_matches('.');
        entry == "*"
            || (!domain.is_empty()
                && (host.eq_ignore_ascii_case(domain)
                    || host
                        .to_ascii_lowercase()
                        .ends_with(&format!(".{}", domain.to_ascii_lowercase()))))
    })
}

/// A proxy URL reqwest can use, as it may be shown: scheme, host and port, never the
/// credentials.
fn checked_proxy(proxy: &str, variable: &'static str) -> Result<String, BuildError> {
    // As reqwest: a proxy named without a scheme is an http:// one.
    let text = if proxy.contains("://") {
        proxy.trim().to_string()
    } else {
        format!("http://{}", proxy.trim())
    };
    let url = Url::parse(&text).map_err(|e| BuildError::ProxyUrl {
        proxy: redacted_text(&text),
        variable,
        problem: e.to_string(),
    })?;
    let shown = match url.port() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or_default()),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default()),
    };
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(BuildError::ProxyScheme {
            proxy: shown,
            variable,
        });
    }
    Ok(shown)
}

/// A proxy's text that did not parse, without what could be a password: the part before
/// an `@` is cut.
fn redacted_text(text: &str) -> String {
    match (text.split_once("://"), text.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => text.to_string(),
    }
}

/// Unix time in seconds, for `TimeStamp`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::api::secret::Secret;
    use crate::leads::lead::{self, RawLead};

    const PROXY_PASSWORD: &str = "pr0xy-Pa55";
    /// `clerk:pr0xy-Pa55` in Basic form.
    const PROXY_BASIC: &str = "proxy-authorization: Basic Y2xlcms6cHIweHktUGE1NQ==";

    fn agent() -> Agent {
        Agent {
            agent_id: "102".into(),
            secret: Secret::new("client-test-secret"),
            secret_label: "secretKey".into(),
        }
    }

    #[test]
    fn only_a_plain_http_path_goes_without_certificates() {
        let http = Url::parse("http://127.0.0.1:8080/").unwrap();
        let https = Url::parse("https://openapi.91bihu.com/").unwrap();
        assert!(!does_tls(&http, None));
        assert!(!does_tls(&http, Some("http://proxy.corp:3128")));
        assert!(does_tls(&http, Some("https://proxy.corp:3128")));
        assert!(does_tls(&http, Some("socks5://proxy.corp:1080")));
        assert!(does_tls(&https, None));
        assert!(does_tls(&https, Some("http://proxy.corp:3128")));
    }

    fn lead() -> Lead {
        let raw = RawLead {
            plate: "京A12345",
            ..Default::default()
        };
        lead::validate(&raw, None).unwrap()
    }

    fn client_with(
        base: &str,
        agent: Agent,
        timeout: Duration,
        proxies: Proxies,
    ) -> Result<Client, BuildError> {
        let base: Url = base.parse().unwrap();
        let http = Http::new(&base, timeout, 1, proxies)?;
        Ok(Client::over(Arc::new(http), agent, &base))
    }

    fn client_via(base: &str, proxy: &str) -> Result<Client, BuildError> {
        client_with(
            base,
            agent(),
            Duration::from_secs(5),
            Proxies::Only(proxy.to_string()),
        )
    }

    /// A one-connection stand-in for a proxy: it reads one request head and its body, answers
    /// `reply`, closes, and hands back the head and the body it read.
    async fn fake_proxy(reply: &'static str) -> (String, tokio::task::JoinHandle<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://clerk:{PROXY_PASSWORD}@{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            let head = loop {
                let n = socket.read(&mut buffer).await.unwrap();
                assert!(n > 0, "the client closed before a whole head: {seen:?}");
                seen.extend_from_slice(&buffer[..n]);
                if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                    break String::from_utf8(seen[..end].to_vec()).unwrap();
                }
            };
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(str::to_owned)
                })
                .map_or(0, |value| value.trim().parse::<usize>().unwrap());
            while seen.len() < head.len() + 4 + length {
                let n = socket.read(&mut buffer).await.unwrap();
                assert!(n > 0, "the client closed before the whole body");
                seen.extend_from_slice(&buffer[..n]);
            }
            socket.write_all(reply.as_bytes()).await.unwrap();
            socket.shutdown().await.ok();
            let body = String::from_utf8(seen[head.len() + 4..].to_vec()).unwrap();
            (head, body)
        });
        (address, served)
    }

    /// What a stand-in proxy read, failing rather than hanging if it was never reached.
    async fn read_by<T>(stand_in: tokio::task::JoinHandle<T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), stand_in)
            .await
            .expect("the stand-in proxy is reached within 10 s")
            .unwrap()
    }

    fn has_line(head: &str, wanted: &str) -> bool {
        head.lines().any(|line| line.eq_ignore_ascii_case(wanted))
    }

    #[tokio::test]
    async fn an_http_base_is_forwarded_through_the_proxy_with_its_credentials() {
        let (proxy, stand_in) = fake_proxy(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 48\r\n\
             connection: close\r\n\r\n{\"msg\":\"ok\",\"RenewalToken\":\"0123456789ABCDEFab\"}",
        )
        .await;
        let client = client_via("http://bihu-renew.invalid/", &proxy).unwrap();
        assert!(!format!("{client:?}").contains(PROXY_PASSWORD), "{client:?}");

        let answer = client.renew(&lead(), "T0KEN", 1_700_000_000).await.unwrap();
        let renewed = Answer::Renewed {
            renewal_token: "0123456789ABCDEFab".into(),
            msg: "ok".into(),
        };
        assert_eq!(answer, renewed);
        let (head, body) = read_by(stand_in).await;
        assert_eq!(
            head.lines().next().unwrap(),
            "POST http://bihu-renew.invalid/unite/unitecheckrenewal HTTP/1.1"
        );
        for header in [
            PROXY_BASIC,
            "host: bihu-renew.invalid",
            "content-type: application/json",
        ] {
            assert!(has_line(&head, header), "no {header:?} in {head}");
        }
        let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (sent["LicenseNo"].as_str(), sent["Token"].as_str()),
            (Some("京A12345"), Some("T0KEN"))
        );
    }

    #[tokio::test]
    async fn an_https_base_is_tunnelled_with_connect() {
        // The stand-in grants the tunnel and hangs up, so TLS fails: what matters is the ask.
        let (proxy, stand_in) = fake_proxy("HTTP/1.1 200 Connection established\r\n\r\n").await;
        let client = client_via("https://bihu-renew.invalid/", &proxy).unwrap();

        let error = client.renew(&lead(), "T0KEN", 1_700_000_000).await.unwrap_err();
        let (head, _) = read_by(stand_in).await;
        assert_eq!(
            head.lines().next().unwrap(),
            "CONNECT bihu-renew.invalid:443 HTTP/1.1"
        );
        assert!(has_line(&head, PROXY_BASIC), "{head}");
        let message = error.to_string();
        assert!(matches!(error, TransportError::Connect(_)), "{error:?}");
        assert!(
            message.contains("bihu-renew.invalid through the proxy http://127.0.0.1:"),
            "{message}"
        );
        assert!(!message.contains(PROXY_PASSWORD), "{message}");
    }

    #[tokio::test]
    async fn a_loopback_base_never_goes_through_a_proxy() {
        let config = crate::sandbox::SandboxConfig::default();
        let sandbox = crate::sandbox::Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let config = sandbox.config();
        let agent = Agent {
            agent_id: config.agent_id.clone(),
            secret: config.secret.clone(),
            secret_label: config.secret_label.clone(),
        };
        // Nothing listens on loopback's port 9 here: a proxied request would fail.
        let client = client_with(
            sandbox.base_url().as_str(),
            agent,
            Duration::from_secs(5),
            Proxies::Only("http://127.0.0.1:9".to_string()),
        )
        .unwrap();
        let answer = client.renew(&lead(), &config.token, unix_now()).await.unwrap();
        assert!(
            matches!(answer, Answer::Renewed { .. } | Answer::NotRenewable { .. }),
            "{answer:?}"
        );
    }

    #[test]
    fn a_proxy_reqwest_cannot_use_is_refused_by_name_without_its_credentials() {
        for (base, proxy, expected) in [
            (
                "http://bihu-renew.invalid/",
                "ftp://clerk:pr0xy-Pa55@127.0.0.1:21",
                "NO_PROXY",
            ),
            (
                "http://bihu-renew.invalid/",
                "http://clerk:pr0xy-Pa55@127.0.0.1:99999",
                "not a URL",
            ),
        ] {
            let error = client_via(base, proxy).unwrap_err().to_string();
            assert!(error.contains("127.0.0.1"), "{error}");
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains(PROXY_PASSWORD), "{error}");
        }
        // What reqwest brings: https:// and SOCKS5 proxies.
        for proxy in [
            "socks5://clerk:pr0xy-Pa55@127.0.0.1:1080",
            "socks5h://127.0.0.1:1080",
            "https://clerk:pr0xy-Pa55@127.0.0.1:3128",
        ] {
            let client = client_via("https://bihu-renew.invalid/", proxy).unwrap();
            assert!(!format!("{client:?}").contains(PROXY_PASSWORD), "{client:?}");
        }
    }

    #[test]
    fn a_no_proxy_entry_for_the_host_or_its_domain_takes_the_proxy_out_of_messages() {
        for list in ["*", "bihu-renew.invalid", ".invalid", "other.example, *.invalid"] {
            assert!(no_proxy_lists(list, "bihu-renew.invalid"), "{list}");
        }
        for list in ["", "renew.invalid", "example.com", "10.0.0.0/8"] {
            assert!(!no_proxy_lists(list, "bihu-renew.invalid"), "{list}");
        }
    }

    #[test]
    fn a_base_url_with_credentials_is_refused_without_echoing_them() {
        let error = client_with(
            "http://clerk:s3cret-base@bihu-renew.invalid/",
            agent(),
            Duration::from_secs(5),
            Proxies::Direct,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("user:password@"), "{error}");
        assert!(!error.contains("s3cret-base"), "{error}");
    }

    /// A user name alone, or a password alone, is as refused as both (cargo-mutants found the
    /// rule's `&&` untested).
    #[test]
    fn a_base_url_with_only_a_user_or_only_a_password_is_refused() {
        for base in [
            "http://clerk@bihu-renew.invalid/",
            "http://:s3cret-base@bihu-renew.invalid/",
        ] {
            assert!(
                matches!(
                    refuse_credentials(&Url::parse(base).unwrap()),
                    Err(BuildError::BaseUrlCredentials)
                ),
                "{base}"
            );
        }
        assert!(refuse_credentials(&Url::parse("http://bihu-renew.invalid/").unwrap()).is_ok());
    }

    /// The proxy named for a base: the first of its scheme's variables that is set and not
    /// blank, shown without credentials, unless NO_PROXY names the host (cargo-mutants found
    /// this reachable only through the binary's environment).
    #[test]
    fn the_proxy_named_is_the_first_set_variable_unless_no_proxy_names_the_host() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(variable, _)| *variable == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        let base = Url::parse("http://bihu-renew.invalid/").unwrap();
        let named = |pairs| proxy_named(&base, env(pairs)).unwrap();
        assert_eq!(named(&[]), None);
        assert_eq!(named(&[("HTTP_PROXY", "  ")]), None, "blank is unset");
        assert_eq!(
            named(&[
                ("HTTP_PROXY", "clerk:pw@127.0.0.1:3128"),
                ("ALL_PROXY", "socks5://127.0.0.1:1080")
            ]),
            Some("http://127.0.0.1:3128".to_string())
        );
        assert_eq!(
            named(&[("HTTP_PROXY", " "), ("ALL_PROXY", "socks5://127.0.0.1:1080")]),
            Some("socks5://127.0.0.1:1080".to_string())
        );
        assert_eq!(
            named(&[("HTTP_PROXY", "127.0.0.1:3128"), ("NO_PROXY", ".invalid")]),
            None
        );
        assert_eq!(
            named(&[("HTTP_PROXY", "127.0.0.1:3128"), ("no_proxy", "*")]),
            None
        );
        assert_eq!(
            named(&[("HTTP_PROXY", "127.0.0.1:3128"), ("NO_PROXY", "example.com")]),
            Some("http://127.0.0.1:3128".to_string())
        );
        // An https:// base reads HTTPS_PROXY, not HTTP_PROXY.
        let https = Url::parse("https://bihu-renew.invalid/").unwrap();
        assert_eq!(
            proxy_named(&https, env(&[("HTTP_PROXY", "127.0.0.1:3128")])).unwrap(),
            None
        );
        assert!(matches!(
            proxy_named(&https, env(&[("HTTPS_PROXY", "ftp://127.0.0.1:21")])),
            Err(BuildError::ProxyScheme {
                variable: "HTTPS_PROXY",
                ..
            })
        ));
    }

    /// The proxy variables read for a base, in reqwest's order: the scheme's own, then ALL_PROXY.
    #[test]
    fn the_proxy_variables_follow_the_base_urls_scheme() {
        assert_eq!(
            proxy_variables(&Url::parse("https://openapi.91bihu.com/").unwrap()),
            ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        );
        assert_eq!(
            proxy_variables(&Url::parse("http://bao.91bihu.com/").unwrap()),
            ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        );
    }

    /// `Debug` names the endpoint and the timeout, never a proxy's credentials.
    #[test]
    fn the_transports_debug_names_its_endpoint_only() {
        let http = Http::new(
            &Url::parse("http://bihu-renew.invalid/").unwrap(),
            Duration::from_secs(5),
            1,
            Proxies::Only(format!("http://clerk:{PROXY_PASSWORD}@127.0.0.1:3128")),
        )
        .unwrap();
        let shown = format!("{http:?}");
        assert!(
            shown.starts_with("Http {") && shown.contains("bihu-renew.invalid") && shown.contains("5s"),
            "{shown}"
        );
        assert!(!shown.contains(PROXY_PASSWORD), "{shown}");
    }

    /// A one-connection SOCKS5 server (RFC 1928, no authentication, CONNECT only) that
    /// connects every request to `to`, whatever was asked, and hands back the host and port
    /// asked for.
    async fn socks5_server(to: std::net::SocketAddr) -> (String, tokio::task::JoinHandle<(String, u16)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("socks5h://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut greeting = [0u8; 2];
            socket.read_exact(&mut greeting).await.unwrap();
            assert_eq!(greeting[0], 5, "SOCKS version");
            let mut methods = vec![0u8; greeting[1] as usize];
            socket.read_exact(&mut methods).await.unwrap();
            assert!(methods.contains(&0), "no-authentication offered: {methods:?}");
            socket.write_all(&[5, 0]).await.unwrap();
            let mut request = [0u8; 4];
            socket.read_exact(&mut request).await.unwrap();
            assert_eq!(request[..3], [5, 1, 0], "a CONNECT request");
            let host = match request[3] {
                3 => {
                    let mut length = [0u8; 1];
                    socket.read_exact(&mut length).await.unwrap();
                    let mut name = vec![0u8; length[0] as usize];
                    socket.read_exact(&mut name).await.unwrap();
                    String::from_utf8(name).unwrap()
                }
                1 => {
                    let mut ip = [0u8; 4];
                    socket.read_exact(&mut ip).await.unwrap();
                    std::net::Ipv4Addr::from(ip).to_string()
                }
                other => panic!("address type {other}"),
            };
            let port = socket.read_u16().await.unwrap();
            let mut upstream = tokio::net::TcpStream::connect(to).await.unwrap();
            socket.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await.unwrap();
            tokio::io::copy_bidirectional(&mut socket, &mut upstream)
                .await
                .ok();
            (host, port)
        });
        (address, served)
    }

    #[tokio::test]
    async fn a_socks5_proxy_carries_the_request_and_resolves_the_host() {
        let config = crate::sandbox::SandboxConfig {
            record_requests: true,
            ..Default::default()
        };
        let sandbox = crate::sandbox::Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let config = sandbox.config();
        let agent = Agent {
            agent_id: config.agent_id.clone(),
            secret: config.secret.clone(),
            secret_label: config.secret_label.clone(),
        };
        let (proxy, served) = socks5_server(sandbox.addr()).await;
        let client = client_with(
            "http://bihu-renew.invalid:8080/",
            agent,
            Duration::from_secs(5),
            Proxies::Only(proxy),
        )
        .unwrap();
        let answer = client.renew(&lead(), &config.token, unix_now()).await.unwrap();
        assert!(
            matches!(answer, Answer::Renewed { .. } | Answer::NotRenewable { .. }),
            "{answer:?}"
        );
        drop(client);
        assert_eq!(read_by(served).await, ("bihu-renew.invalid".to_string(), 8080));
        assert_eq!(sandbox.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_and_a_silent_server_a_timeout() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let base = format!("http://127.0.0.1:{port}/");
        let client = client_with(&base, agent(), Duration::from_secs(5), Proxies::Direct).unwrap();
        let error = client.renew(&lead(), "T0KEN", 1).await.unwrap_err();
        assert!(
            matches!(&error, TransportError::Connect(detail) if detail.contains("refused")),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("could not connect to 127.0.0.1:{port}: ")),
            "{message}"
        );

        // Accepts, reads, never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", silent.local_addr().unwrap());
        let _held = tokio::spawn(async move {
            let (mut socket, _) = silent.accept().await.unwrap();
            let mut sink = Vec::new();
            socket.read_to_end(&mut sink).await.ok();
        });
        let timeout = Duration::from_millis(300);
        let client = client_with(&base, agent(), timeout, Proxies::Direct).unwrap();
        let error = tokio::time::timeout(Duration::from_secs(10), client.renew(&lead(), "T0KEN", 1))
            .await
            .expect("the client gives up by itself")
            .unwrap_err();
        assert_eq!(error, TransportError::Timeout(timeout));
    }
}
