//! Who may use the service: users from the config (argon2id hashes), login sessions in an
//! HTTP-only `SameSite=Strict` cookie, HTTP Basic for scripts, a throttle on failed logins,
//! and the CSRF rule for requests made with the cookie.
//!
//! With no users configured the service is open, and `cmd/serve.rs` makes sure it listens on
//! loopback only. Handlers (the API's and the pages') take a [`Principal`]; its extractor
//! refuses with a JSON 401/403/429, which a page can turn into a redirect to its login page.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use md5::{Digest, Md5};

use crate::serve::AppState;
use crate::serve::store::{SessionRecord, Store};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bihu_session";
/// The header a cookie-authenticated state-changing request must carry, with the session's
/// CSRF token (from the login answer or `GET /api/session`).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Consecutive failed logins from one address before it must wait.
const FREE_FAILURES: u32 = 4;
const MAX_LOCKOUT: Duration = Duration::from_secs(300);

/// A user from `[[serve.users]]`.
#[derive(Clone)]
pub struct User {
    pub name: String,
    /// argon2id, PHC format (`bihu-renew hash-password`).
    pub password_hash: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Hashes a password for the config file.
pub fn hash_password(password: &str) -> Result<String, String> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Checks that a configured hash is one this service can verify.
pub fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash)
        .map_err(|e| format!("not a password hash ({e}); make one with bihu-renew hash-password"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "the hash is {}, not argon2id; make one with bihu-renew hash-password",
            parsed.algorithm
        ));
    }
    Ok(())
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// How a request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// No users are configured (loopback only).
    Open,
    Session {
        csrf_token: String,
        expires_at: i64,
    },
    Basic,
}

/// The user a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub via: Via,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No or wrong credentials (`basic`: they came as HTTP Basic, so say how to retry).
    Unauthorized { message: String, basic: bool },
    /// Too many failed logins from this address.
    Throttled { retry_after: Duration },
    /// A cookie-authenticated request without the CSRF token.
    Csrf,
    /// A state-changing request a browser sent from another site.
    CrossSite,
    /// The store failed.
    Unavailable(String),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            AuthError::Unauthorized { message, .. } => (StatusCode::UNAUTHORIZED, message.clone()),
            AuthError::Throttled { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed logins from this address: try again in {} s",
                    retry_after.as_secs().max(1)
                ),
            ),
            AuthError::Csrf => (
                StatusCode::FORBIDDEN,
                "a request made with the session cookie must carry the X-CSRF-Token header with the session's CSRF token (from the login answer or GET /api/session)".to_string(),
            ),
            AuthError::CrossSite => (
                StatusCode::FORBIDDEN,
                "a state-changing request from another site (its Origin or Sec-Fetch-Site says so) is refused".to_string(),
            ),
            AuthError::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message.clone()),
        };
        let mut response = (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        match self {
            AuthError::Unauthorized { basic: true, .. } => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"bihu-renew\", charset=\"UTF-8\""),
                );
            }
            AuthError::Throttled { retry_after } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after.as_secs().max(1)),
                );
            }
            _ => {}
        }
        response
    }
}

/// Users, sessions and the throttle; clones share them.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    users: HashMap<String, String>,
    session_ttl: Duration,
    store: Store,
    /// Failed logins by address and the user name tried: behind a reverse proxy every
    /// client has the proxy's address, and one person's typos must not lock out the others.
    failures: Mutex<HashMap<(IpAddr, String), Failures>>,
    /// Basic credentials verified lately (by digest), so that a script polling every second
    /// does not pay argon2 on every request.
    verified: Mutex<HashMap<String, Instant>>,
}

struct Failures {
    n: u32,
    not_before: Instant,
    last: Instant,
}

/// What a successful login gives the client.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user: String,
    pub token: String,
    pub csrf_token: String,
    pub expires_at: i64,
    pub max_age: Duration,
}

const VERIFIED_FOR: Duration = Duration::from_secs(60);

impl Auth {
    pub fn new(users: &[User], session_ttl: Duration, store: Store) -> Auth {
        Auth {
            inner: Arc::new(Inner {
                users: users
                    .iter()
                    .map(|u| (u.name.clone(), u.password_hash.clone()))
                    .collect(),
                session_ttl,
                store,
                failures: Mutex::new(HashMap::new()),
                verified: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether logins are needed at all.
    pub fn is_open(&self) -> bool {
        self.inner.users.is_empty()
    }

    fn throttled(&self, ip: IpAddr, name: &str) -> Option<Duration> {
        let failures = self.inner.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        failures
            .get(&(ip, name.to_string()))
            .and_then(|f| f.not_before.checked_duration_since(now))
            .filter(|wait| !wait.is_zero())
    }

    fn record(&self, ip: IpAddr, name: &str, ok: bool) {
        let mut failures = self.inner.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let key = (ip, name.to_string());
        if ok {
            failures.remove(&key);
            return;
        }
        if failures.len() > 10_000 {
            failures.retain(|_, f| now.duration_since(f.last) < Duration::from_secs(3600));
        }
        let entry = failures.entry(key).or_insert(Failures {
            n: 0,
            not_before: now,
            last: now,
        });
        entry.n += 1;
        entry.last = now;
        if entry.n > FREE_FAILURES {
            let exponent = (entry.n - FREE_FAILURES).min(16);
            let wait = Duration::from_secs(1 << exponent).min(MAX_LOCKOUT);
            entry.not_before = now + wait;
        }
    }

    /// Checks a user name and password, throttled by address and user name; argon2 runs off
    /// the async workers. Credentials verified in the last minute pass at once, throttle or
    /// not: they prove the password, so another's failures never lock out a polling script.
    pub async fn check_password(&self, ip: IpAddr, name: &str, password: &str) -> Result<(), AuthError> {
        let digest = hex::encode(Md5::digest(format!("{name}\u{0}{password}").as_bytes()));
        let recently = {
            let verified = self.inner.verified.lock().unwrap_or_else(PoisonError::into_inner);
            verified
                .get(&digest)
                .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
        };
        if recently {
            return Ok(());
        }
        if let Some(retry_after) = self.throttled(ip, name) {
            return Err(AuthError::Throttled { retry_after });
        }
        let hash = self.inner.users.get(name).cloned();
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(hash) => verify(&password, &hash),
            // Spend the same time for an unknown user, so that timing does not tell.
            None => {
                let _ = hash_password(&password);
                false
            }
        })
        .await
        .unwrap_or(false);
        self.record(ip, name, ok);
        if !ok {
            return Err(AuthError::Unauthorized {
                message: "wrong user name or password".to_string(),
                basic: true,
            });
        }
        let mut verified = self.inner.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified.retain(|_, at| at.elapsed() < VERIFIED_FOR);
        verified.insert(digest, Instant::now());
        Ok(())
    }

    /// Logs a user in: a new session, with its cookie token and CSRF token.
    pub async fn login(&self, ip: IpAddr, name: &str, password: &str) -> Result<NewSession, AuthError> {
        self.check_password(ip, name, password).await?;
        let token = hex::encode(rand::random::<[u8; 32]>());
        let csrf_token = hex::encode(rand::random::<[u8; 16]>());
        let expires_at = crate::serve::jobs::unix_now() + self.inner.session_ttl.as_secs() as i64;
        self.inner
            .store
            .insert_session(
                token_hash(&token),
                SessionRecord {
                    user_name: name.to_string(),
                    csrf_token: csrf_token.clone(),
                    expires_at,
                },
            )
            .await
            .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        Ok(NewSession {
            user: name.to_string(),
            token,
            csrf_token,
            expires_at,
            max_age: self.inner.session_ttl,
        })
    }

    /// Ends the session whose cookie the request carries.
    pub async fn logout(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        if let Some(token) = session_cookie(headers) {
            self.inner
                .store
                .delete_session(token_hash(&token))
                .await
                .map_err(|e| AuthError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }

    /// Who makes this request: the session cookie, else HTTP Basic. A state-changing
    /// request made with the cookie needs the CSRF header.
    pub async fn principal(
        &self,
        method: &Method,
        headers: &HeaderMap,
        ip: IpAddr,
    ) -> Result<Principal, AuthError> {
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        // Browsers send cached Basic credentials, and no credentials at all are needed when
        // the service is open: what a browser says about the request's origin counts for all.
        if !safe && cross_site(headers) {
            return Err(AuthError::CrossSite);
        }
        if self.is_open() {
            return Ok(Principal {
                name: "local".to_string(),
                via: Via::Open,
            });
        }
        if let Some((name, password)) = basic_credentials(headers) {
            self.check_password(ip, &name, &password).await?;
            return Ok(Principal {
                name,
                via: Via::Basic,
            });
        }
        if let Some(token) = session_cookie(headers) {
            let session = self
                .inner
                .store
                .session(token_hash(&token), crate::serve::jobs::unix_now())
                .await
                .map_err(|e| AuthError::Unavailable(e.to_string()))?;
            if let Some(session) = session
                && self.inner.users.contains_key(&session.user_name)
            {
                let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                if !safe && !sent.is_some_and(|sent| constant_time_eq(sent, &session.csrf_token)) {
                    return Err(AuthError::Csrf);
                }
                return Ok(Principal {
                    name: session.user_name,
                    via: Via::Session {
                        csrf_token: session.csrf_token,
                        expires_at: session.expires_at,
                    },
                });
            }
            return Err(AuthError::Unauthorized {
                message: "the session has expired: log in again".to_string(),
                basic: false,
            });
        }
        Err(AuthError::Unauthorized {
            message: "log in first (POST /api/login), or send HTTP Basic credentials".to_string(),
            basic: false,
        })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts);
        state.auth.principal(&parts.method, &parts.headers, ip).await
    }
}

/// The peer's address (the service is meant to sit behind nothing, or a local proxy).
pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Refuses a state-changing request that a browser marks as sent from another site: the
/// rule [`Auth::principal`] applies, for the one such request made before there is a user
/// (a login: another site must not sign a browser in to an account of its choosing).
pub fn refuse_cross_site(headers: &HeaderMap) -> Result<(), AuthError> {
    if cross_site(headers) {
        return Err(AuthError::CrossSite);
    }
    Ok(())
}

/// Whether a browser marks the request as coming from another origin: `Sec-Fetch-Site`
/// other than `same-origin` or `none`, or an `Origin` whose host is not the `Host` asked.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    match (text("origin"), text("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
            !origin_host.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Md5::digest(token.as_bytes()))
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie_header(session: &NewSession) -> String {
    format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        session.token,
        session.max_age.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie_header() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_only_argon2id_is_accepted() {
        let hash = hash_password("s3cret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(check_hash(&hash).is_ok());
        assert!(verify("s3cret", &hash));
        assert!(!verify("S3cret", &hash));
        assert!(check_hash("plain").is_err());
        assert!(check_hash(&hash.replacen("argon2id", "argon2i", 1)).is_err());
    }

    #[test]
    fn reads_basic_credentials_and_the_session_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic Y2xlcms6cHc6eA=="),
        );
        assert_eq!(basic_credentials(&headers), Some(("clerk".into(), "pw:x".into())));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; bihu_session=t0k; c=d"),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("t0k"));
    }

    #[tokio::test]
    async fn failures_beyond_the_free_ones_lock_the_address_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let auth = Auth::new(&[], Duration::from_secs(60), store);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..FREE_FAILURES {
            auth.record(ip, "clerk", false);
            assert_eq!(auth.throttled(ip, "clerk"), None);
        }
        auth.record(ip, "clerk", false);
        let wait = auth.throttled(ip, "clerk").expect("locked out");
        assert!(wait <= Duration::from_secs(2), "{wait:?}");
        assert_eq!(auth.throttled(IpAddr::from([10, 0, 0, 2]), "clerk"), None);
        auth.record(ip, "clerk", true);
        assert_eq!(auth.throttled(ip, "clerk"), None);
    }

    #[tokio::test]
    async fn one_users_failures_behind_a_proxy_lock_out_neither_another_user_nor_a_known_password() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let users = [
            User {
                name: "clerk".into(),
                password_hash: hash_password("clerk-pw").unwrap(),
            },
            User {
                name: "cron".into(),
                password_hash: hash_password("cron-pw").unwrap(),
            },
        ];
        let auth = Auth::new(&users, Duration::from_secs(60), store);
        // Every client comes through one reverse proxy.
        let proxy = IpAddr::from([127, 0, 0, 1]);
        auth.check_password(proxy, "cron", "cron-pw").await.unwrap();
        for _ in 0..=FREE_FAILURES {
            let refused = auth.check_password(proxy, "clerk", "typo").await;
            assert!(
                matches!(refused, Err(AuthError::Unauthorized { .. })),
                "{refused:?}"
            );
        }
        let refused = auth.check_password(proxy, "clerk", "clerk-pw").await;
        assert!(matches!(refused, Err(AuthError::Throttled { .. })), "{refused:?}");
        // Another user at the same address is not locked out by the clerk's failures.
        auth.check_password(proxy, "cron", "cron-pw").await.unwrap();
        for _ in 0..=FREE_FAILURES {
            let _ = auth.check_password(proxy, "cron", "guess").await;
        }
        // cron's own failures lock its name, but its password, verified in the last
        // minute, still passes: a polling script is not shut out by someone's guesses.
        assert!(auth.throttled(proxy, "cron").is_some());
        auth.check_password(proxy, "cron", "cron-pw").await.unwrap();
    }
}
