//! The HTTP side of the protocol: one renewal attempt and one login, over hyper-util's pooled
//! client.
//!
//! Owns the connection pool and the endpoint URLs; knows nothing of retries, pacing or rows
//! (the pipeline decides those). Transport failures come back as [`TransportError`] so the
//! pipeline can tell a timeout from a refused connection.
//!
//! hyper-util's client is the one reqwest wraps. reqwest adds, for every request, a redirect
//! layer and a retry layer that parse the URL again, and clones of its client and connector;
//! with no server latency those cost about 30% of this tool's CPU per row (BENCHMARKS.md,
//! "HTTP client"). The API never redirects, and retries are the pipeline's business, so the
//! layers bought nothing here. What reqwest did and this module keeps: a request timeout, a
//! connect timeout, TCP_NODELAY and keepalive, TLS by rustls with the platform's certificate
//! verifier for an https:// base URL, and the proxy named by `HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY` and `NO_PROXY`. A base URL with a user name or password is refused rather than
//! sent on.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, DATE, HeaderValue, PROXY_AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use url::Url;

use crate::api::protocol::{self, Agent, Answer, LoginFailure, LoginRequest, QuotePage, RenewalRequest};
use crate::leads::lead::Lead;

/// What went wrong below HTTP: no answer was read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Says where to: the host, and the proxy when there is one.
    #[error("could not connect to {0}")]
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

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the base URL {0} is not a valid HTTP URI: {1}")]
    BaseUrl(String, String),
    #[error(
        "the base URL carries a user name or password; Bihu's API takes none. Remove the \
         `user:password@` part"
    )]
    BaseUrlCredentials,
    #[error("the proxy {0} (from the environment) has a port out of range; name one from 1 to 65535")]
    ProxyPort(String),
    #[error(
        "the proxy {proxy} (from the environment's {variable}) is not an http:// proxy; \
         bihu-renew speaks to http:// proxies only. Name an http:// proxy there, or add the \
         host to NO_PROXY to connect directly"
    )]
    ProxyScheme { proxy: String, variable: &'static str },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// A client for one agent against one base URL.
#[derive(Debug, Clone)]
pub struct Client {
    http: hyper_util::client::legacy::Client<Connector, Full<Bytes>>,
    renewal_uri: Uri,
    login_uri: Uri,
    /// `Proxy-Authorization` for a forwarding proxy, which reads every request.
    proxy_authorization: Option<HeaderValue>,
    /// Where requests go, for messages: the host, and the proxy in front of it if any.
    endpoint: String,
    agent: Agent,
    timeout: Duration,
    quote_page: QuotePage,
}

/// Lifetime asked for a Token obtained by logging in: a working day and more.
pub const LOGIN_TOKEN_LIFETIME_SECS: u64 = 86_400;

const USER_AGENT_VALUE: &str = concat!("bihu-renew/", env!("CARGO_PKG_VERSION"));

impl Client {
    /// A client for `base`, holding up to `max_idle_per_host` idle connections.
    ///
    /// The proxy, if any, is read from the environment once here: every request of a client
    /// goes to the same host. A loopback base URL (the sandbox) is never proxied.
    pub fn new(
        base: Url,
        agent: Agent,
        timeout: Duration,
        max_idle_per_host: usize,
    ) -> Result<Client, BuildError> {
        Client::with_proxies(base, agent, timeout, max_idle_per_host, &Matcher::from_env())
    }

    /// As [`Client::new`], with the proxies that `proxies` names rather than the environment's.
    pub fn with_proxies(
        base: Url,
        agent: Agent,
        timeout: Duration,
        max_idle_per_host: usize,
        proxies: &Matcher,
    ) -> Result<Client, BuildError> {
        let base = protocol::normalise_base(base);
        refuse_credentials(&base)?;
        let uri = |url: Url| {
            url.as_str()
                .parse::<Uri>()
                .map_err(|e| BuildError::BaseUrl(base.to_string(), e.to_string()))
        };
        let renewal_uri = uri(base.join(protocol::RENEWAL_PATH).expect("constant path joins"))?;
        let login_uri = uri(base.join(protocol::LOGIN_PATH).expect("constant path joins"))?;

        let proxy = if is_loopback(&base) {
            None
        } else {
            proxies.intercept(&renewal_uri)
        };
        // As reqwest set them: a pooled connection that a NAT or load balancer dropped in
        // silence is found out in under a minute rather than at the request's timeout.
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout.min(Duration::from_secs(10))));
        tcp.set_keepalive(Some(Duration::from_secs(15)));
        tcp.set_keepalive_interval(Some(Duration::from_secs(15)));
        tcp.set_keepalive_retries(Some(3));
        tcp.set_tcp_user_timeout(Some(Duration::from_secs(30)));
        let https = base.scheme() == "https";
        let host = renewal_uri
            .authority()
            .map_or_else(String::new, ToString::to_string);
        let (route, proxy_authorization, endpoint) = match proxy {
            None if https => (Route::Tls(tls(tcp)?), None, host),
            None => (Route::Plain(tcp), None, host),
            Some(proxy) => {
                let (route, authorization, proxy) = route_through(&proxy, https, tcp)?;
                tracing::debug!(%proxy, "requests go through the proxy named in the environment");
                (route, authorization, format!("{host} through the proxy {proxy}"))
            }
        };

        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(Connector { route });
        Ok(Client {
            http,
            renewal_uri,
            login_uri,
            proxy_authorization,
            endpoint,
            quote_page: QuotePage::new(&base),
            agent,
            timeout,
        })
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
        let (status, retry_after, body, date) = self.post(&self.renewal_uri, &request).await?;
        Ok((protocol::classify(status, retry_after, &body), date))
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
        match self.post(&self.login_uri, &request).await {
            Ok((status, _, body, date)) => (
                protocol::classify_login(status, &body).map_err(LoginError::from),
                date,
            ),
            Err(error) => (Err(error.into()), None),
        }
    }

    /// POSTs `body` as JSON and reads the whole answer, all within the timeout: the status,
    /// `Retry-After` in seconds, the body and the `Date` header.
    async fn post<T: serde::Serialize>(
        &self,
        uri: &Uri,
        body: &T,
    ) -> Result<(u16, Option<u64>, Bytes, Option<SystemTime>), TransportError> {
        let json = serde_json::to_vec(body).expect("request bodies are plain strings and numbers");
        let mut request = Request::new(Full::new(Bytes::from(json)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(value) = &self.proxy_authorization {
            headers.insert(PROXY_AUTHORIZATION, value.clone());
        }
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| {
                let detail = chain(&e);
                if e.is_connect() {
                    TransportError::Connect(format!("{}: {detail}", self.endpoint))
                } else {
                    TransportError::Broken(detail)
                }
            })?;
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
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| TransportError::Broken(chain(&e)))?;
            Ok((status, retry_after, body.to_bytes(), date))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(TransportError::Timeout(self.timeout)))
    }
}

/// An error and its causes, one after another: hyper's Display names the step, the causes say
/// what happened.
fn chain(error: &dyn std::error::Error) -> String {
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
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

fn is_loopback(base: &Url) -> bool {
    match base.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn tls<C>(connector: C) -> Result<HttpsConnector<C>, BuildError> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .try_with_platform_verifier()
        .map_err(|e| BuildError::Tls(e.to_string()))?
        .https_only()
        .enable_http1()
        .wrap_connector(connector))
}

/// The route to a base URL that the environment sends through `proxy`, the proxy's
/// credentials if a forwarding proxy needs them with every request, and the proxy as it may be
/// shown. An http:// base is forwarded (the proxy reads each request); an https:// base is
/// tunnelled with CONNECT, as curl and reqwest do.
fn route_through(
    proxy: &Intercept,
    https: bool,
    tcp: HttpConnector,
) -> Result<(Route, Option<HeaderValue>, String), BuildError> {
    let proxy_uri = proxy.uri().clone();
    let shown = redacted(&proxy_uri);
    if proxy_uri.scheme_str() != Some("http") {
        let variable = if https {
            "HTTPS_PROXY or ALL_PROXY"
        } else {
            "HTTP_PROXY or ALL_PROXY"
        };
        return Err(BuildError::ProxyScheme {
            proxy: shown,
            variable,
        });
    }
    // http's URI keeps "host:99999" but reports no port, which would mean port 80.
    let port_text = proxy_uri
        .authority()
        .and_then(|authority| authority.as_str().rsplit_once(':'))
        .map(|(_, port)| port)
        .filter(|port| !port.is_empty() && !port.ends_with(']'));
    if port_text.is_some_and(|port| port.parse::<u16>().is_err()) {
        return Err(BuildError::ProxyPort(shown));
    }
    let auth = proxy.basic_auth().cloned().map(|mut value| {
        value.set_sensitive(true);
        value
    });
    if https {
        let mut tunnel = Tunnel::new(proxy_uri, tcp);
        if let Some(auth) = auth {
            tunnel = tunnel.with_auth(auth);
        }
        Ok((Route::Tunnel(tls(tunnel)?), None, shown))
    } else {
        // Connect to the proxy by scheme, host and port alone: its credentials travel in
        // Proxy-Authorization, never in a URI that Debug could print.
        let to = shown
            .parse::<Uri>()
            .expect("a proxy's scheme, host and port form a URI");
        Ok((Route::Forward { to, tcp }, auth, shown))
    }
}

/// A proxy URI as it may be logged: scheme, host and port, never the credentials.
fn redacted(uri: &Uri) -> String {
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("{}://{host}:{port}", uri.scheme_str().unwrap_or("http")),
        None => format!("{}://{host}", uri.scheme_str().unwrap_or("http")),
    }
}

/// Opens connections to the base URL's host, or to the proxy in front of it.
#[derive(Debug, Clone)]
struct Connector {
    route: Route,
}

#[derive(Debug, Clone)]
enum Route {
    /// An http:// base, straight to its host. No TLS is set up: the platform's certificates
    /// are only loaded for an https:// base.
    Plain(HttpConnector),
    /// An https:// base, straight to its host.
    Tls(HttpsConnector<HttpConnector>),
    /// An http:// base through a proxy that is sent requests in absolute form.
    Forward { to: Uri, tcp: HttpConnector },
    /// An https:// base through a CONNECT tunnel, with TLS inside it.
    Tunnel(HttpsConnector<Tunnel<HttpConnector>>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match &mut self.route {
            Route::Plain(tcp) | Route::Forward { tcp, .. } => tcp.poll_ready(cx).map_err(Into::into),
            Route::Tls(tls) => tls.poll_ready(cx),
            Route::Tunnel(tls) => tls.poll_ready(cx),
        }
    }

    fn call(&mut self, host: Uri) -> Self::Future {
        match &mut self.route {
            Route::Plain(tcp) => {
                let connecting = tcp.call(host);
                Box::pin(async move { Ok(Stream::new(MaybeHttpsStream::Http(connecting.await?), false)) })
            }
            Route::Forward { to, tcp } => {
                let connecting = tcp.call(to.clone());
                Box::pin(async move { Ok(Stream::new(MaybeHttpsStream::Http(connecting.await?), true)) })
            }
            Route::Tls(tls) => {
                let connecting = tls.call(host);
                Box::pin(async move { Ok(Stream::new(connecting.await?, false)) })
            }
            Route::Tunnel(tls) => {
                let connecting = tls.call(host);
                Box::pin(async move { Ok(Stream::new(connecting.await?, false)) })
            }
        }
    }
}

/// A connection, which tells hyper-util whether it leads to a forwarding proxy (requests
/// then carry the whole URL rather than only the path).
struct Stream {
    io: Io,
    forwarded: bool,
}

impl Stream {
    fn new(io: Io, forwarded: bool) -> Stream {
        Stream { io, forwarded }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.forwarded)
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
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

    fn lead() -> Lead {
        let raw = RawLead {
            plate: "京A12345",
            ..Default::default()
        };
        lead::validate(&raw, None).unwrap()
    }

    fn client_via(base: &str, proxy: &str) -> Result<Client, BuildError> {
        let proxies = Matcher::builder().all(proxy.to_string()).build();
        Client::with_proxies(
            base.parse().unwrap(),
            agent(),
            Duration::from_secs(5),
            1,
            &proxies,
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
        let proxies = Matcher::builder().all("http://127.0.0.1:9".to_string()).build();
        let client =
            Client::with_proxies(sandbox.base_url(), agent, Duration::from_secs(5), 1, &proxies).unwrap();
        let answer = client.renew(&lead(), &config.token, unix_now()).await.unwrap();
        assert!(
            matches!(answer, Answer::Renewed { .. } | Answer::NotRenewable { .. }),
            "{answer:?}"
        );
    }

    #[test]
    fn a_proxy_that_is_not_http_is_refused_by_name_without_its_credentials() {
        for (base, proxy) in [
            (
                "http://bihu-renew.invalid/",
                "socks5://clerk:pr0xy-Pa55@127.0.0.1:1080",
            ),
            (
                "https://bihu-renew.invalid/",
                "https://clerk:pr0xy-Pa55@127.0.0.1:3128",
            ),
        ] {
            let error = client_via(base, proxy).unwrap_err().to_string();
            assert!(error.contains("127.0.0.1"), "{error}");
            assert!(error.contains("NO_PROXY"), "{error}");
            assert!(!error.contains(PROXY_PASSWORD), "{error}");
        }
    }

    #[test]
    fn a_base_url_with_credentials_or_a_proxy_port_out_of_range_is_refused() {
        let base: Url = "http://clerk:s3cret-base@bihu-renew.invalid/".parse().unwrap();
        let error = Client::with_proxies(
            base,
            agent(),
            Duration::from_secs(5),
            1,
            &Matcher::builder().build(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("user:password@"), "{error}");
        assert!(!error.contains("s3cret-base"), "{error}");

        let error = client_via("http://bihu-renew.invalid/", "http://127.0.0.1:99999")
            .unwrap_err()
            .to_string();
        assert!(error.contains("port out of range"), "{error}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_and_a_silent_server_a_timeout() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let no_proxies = Matcher::builder().build();
        let base: Url = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let client = Client::with_proxies(base, agent(), Duration::from_secs(5), 1, &no_proxies).unwrap();
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
        let base: Url = format!("http://{}/", silent.local_addr().unwrap())
            .parse()
            .unwrap();
        let _held = tokio::spawn(async move {
            let (mut socket, _) = silent.accept().await.unwrap();
            let mut sink = Vec::new();
            socket.read_to_end(&mut sink).await.ok();
        });
        let timeout = Duration::from_millis(300);
        let client = Client::with_proxies(base, agent(), timeout, 1, &no_proxies).unwrap();
        let error = tokio::time::timeout(Duration::from_secs(10), client.renew(&lead(), "T0KEN", 1))
            .await
            .expect("the client gives up by itself")
            .unwrap_err();
        assert_eq!(error, TransportError::Timeout(timeout));
    }
}
