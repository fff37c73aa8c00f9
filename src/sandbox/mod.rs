//! A local Bihu server: the renewal, login and quote-page endpoints of `RENEWAL_API.md`,
//! answering deterministically, with faults (latency, 500s, dropped connections) on demand.
//!
//! Tests start it in-process on `127.0.0.1:0` with [`Sandbox::start`] and talk to it over real
//! HTTP; a demo command can run it with [`serve`], which takes its shutdown as a future. The
//! sandbox checks requests as strictly as the spec allows (exact field names and JSON types,
//! the signature over what was actually received), so a client that passes here speaks the
//! contract. It reuses the client's own pieces (`sign`, `lead`, `city`, `protocol`) so that
//! both sides read the one spec the same way.
//!
//! Which vehicle is renewable is decided by a hash of its identity ([`expected_renewal`]),
//! so a test can know every answer in advance. Faults come in the order a real service shows
//! them: latency first; a dropped connection, like a broken network or proxy, before the
//! request is looked at; a 500 only for a request that passed every check, as a backend that
//! fails while doing the actual lookup (a bad signature is a 406 even at `fail_rate` 1.0).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::protocol::{LOGIN_PATH, QUOTE_PATH, RENEWAL_PATH};
use crate::api::secret::Secret;
use crate::api::sign;
use crate::leads::city::City;
use crate::leads::lead::{PlateCheck, VehicleKey, check_plate, check_vin, normalise_plate, normalise_vin};

/// How the sandbox behaves. Rates are shares in `0.0..=1.0` (below 0 never, above 1 always).
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The only `AgentId` served; any other is answered 403.
    pub agent_id: String,
    /// A Token valid from the start, as if the agent had logged in already.
    pub token: String,
    pub secret: Secret,
    /// The secret's key in the renewal signed string.
    pub secret_label: String,
    /// Login is accepted only for this user name; `None` accepts any non-empty one.
    pub user_name: Option<String>,
    /// Share of renewal requests answered 500 (only requests that passed every check).
    pub fail_rate: f64,
    /// If true, `fail_rate` and `drop_rate` apply only to the first request for a vehicle, so
    /// a client that retries always gets through.
    pub fail_first_attempts_only: bool,
    /// If set, 500s carry `Retry-After: N`.
    pub retry_after_secs: Option<u64>,
    /// Added before each renewal request is answered.
    pub latency: Duration,
    /// Share of renewal requests whose connection is dropped without a response.
    pub drop_rate: f64,
    /// Tokens expire this long after issue (the configured one counts from the start); without
    /// it the configured token never expires and logged-in ones live for the login's `timeout`.
    pub token_ttl: Option<Duration>,
    /// The share of vehicles, in percent, that have no renewal data (answered 206).
    pub not_renewable_percent: u8,
    /// A `TimeStamp` further than this from the server clock is answered 406.
    pub max_clock_skew: Duration,
    /// Seconds the server's clock is ahead of this machine's (behind when negative): what it
    /// checks timestamps against and sends as its `Date` header, to rehearse a skewed clock.
    pub clock_offset_secs: i64,
    /// Keep every renewal request for [`Sandbox::requests`].
    pub record_requests: bool,
    /// The share of vehicles, in percent, that are flaky: their first one or two requests
    /// (which, [`flaky_failures`] says) are answered 500 however the request is, and the
    /// rest as usual. Decided by the vehicle's identity, so a test knows them in advance.
    pub flaky_percent: u8,
    /// If set, the 500s of a third of the flaky vehicles carry `Retry-After: N`
    /// ([`flaky_retry_after`] says which).
    pub flaky_retry_after_secs: Option<u64>,
    /// Count the requests per vehicle for [`Sandbox::vehicle_requests`] (flaky vehicles are
    /// counted whatever this says). About 70 MB for a million vehicles: off in the demo
    /// sandbox that `run --sandbox` and `serve --sandbox` carry in their own process.
    pub count_per_vehicle: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            agent_id: "102".to_string(),
            token: "4773EEC3EE9B572851C11DF730DCE827".to_string(),
            secret: Secret::new("sandbox-secret"),
            secret_label: sign::DEFAULT_SECRET_KEY_LABEL.to_string(),
            user_name: None,
            fail_rate: 0.0,
            fail_first_attempts_only: false,
            retry_after_secs: None,
            latency: Duration::ZERO,
            drop_rate: 0.0,
            token_ttl: None,
            not_renewable_percent: 20,
            max_clock_skew: Duration::from_secs(300),
            clock_offset_secs: 0,
            record_requests: false,
            flaky_percent: 0,
            flaky_retry_after_secs: None,
            count_per_vehicle: true,
        }
    }
}

impl SandboxConfig {
    /// The defaults with a little of a real service's roughness, for demos.
    pub fn demo() -> Self {
        SandboxConfig {
            latency: Duration::from_millis(30),
            fail_rate: 0.05,
            retry_after_secs: None,
            count_per_vehicle: false,
            ..SandboxConfig::default()
        }
    }
}

/// Counts since the start. `requests` counts renewal requests, answered or dropped;
/// `logins` counts successful logins and `login_failures` refused ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub renewed: u64,
    pub not_renewable: u64,
    pub unauthorized: u64,
    pub verification_failed: u64,
    pub invalid_params: u64,
    pub server_errors: u64,
    pub dropped: u64,
    pub logins: u64,
    pub login_failures: u64,
    /// The most renewal requests being handled at once (latency included).
    pub max_in_flight: u64,
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests {}: 200×{} 206×{} 403×{} 406×{} 412×{} 500×{} dropped×{}; logins {} (failed {}); max in flight {}",
            self.requests,
            self.renewed,
            self.not_renewable,
            self.unauthorized,
            self.verification_failed,
            self.invalid_params,
            self.server_errors,
            self.dropped,
            self.logins,
            self.login_failures,
            self.max_in_flight
        )
    }
}

/// The status recorded for a request whose connection was dropped: no HTTP status was sent.
pub const DROPPED_STATUS: u16 = 0;

/// One renewal request as received, when [`SandboxConfig::record_requests`] is on.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub at: Instant,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
    /// The HTTP status answered, or [`DROPPED_STATUS`].
    pub status: u16,
}

/// A running sandbox. Dropping it stops the server without waiting; [`Sandbox::shutdown`]
/// stops it and waits.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Sandbox {
    /// Binds `listen` (port 0 picks a free port) and serves in a spawned task.
    pub async fn start(listen: SocketAddr, config: SandboxConfig) -> io::Result<Sandbox> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(listener, Arc::clone(&shared), stop.clone().cancelled_owned()));
        Ok(Sandbox {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://{addr}/`, the base URL a client joins the endpoint paths to.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.addr)).expect("a socket address makes a URL")
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.counters.snapshot()
    }

    /// Every renewal request so far, in arrival order; empty unless `record_requests`.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.records).clone()
    }

    /// Renewal requests received so far for each vehicle, by its identity as the client
    /// sent it (see [`vehicle_fingerprint`]), answered or not.
    pub fn vehicle_requests(&self) -> HashMap<u128, u64> {
        lock(&self.shared.per_vehicle).clone()
    }

    /// Every token issued so far, the configured one included, is answered 403 from now on.
    /// Tokens from later logins are valid.
    pub fn expire_tokens(&self) {
        for entry in lock(&self.shared.tokens).values_mut() {
            entry.revoked = true;
        }
    }

    /// Stops accepting, lets requests in progress finish, and waits for the server task.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!("sandbox server stopped with an error: {error}"),
                Err(join_error) => tracing::warn!("sandbox server task failed: {join_error}"),
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // A test that panics never reaches `shutdown`; the server must not outlive it.
        self.stop.cancel();
    }
}

/// Serves the sandbox on `listener` until `shutdown` completes, then finishes the requests in
/// progress and returns.
pub async fn serve(
    listener: TcpListener,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    run(listener, Arc::new(Shared::new(config)), shutdown).await
}

/// The machinery under both [`serve`] and [`Sandbox::start`]; the latter keeps `shared` to
/// read the statistics.
async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown)
        .await
}

fn router(shared: Arc<Shared>) -> Router {
    let offset = shared.config.clock_offset_secs;
    let router = Router::new()
        .route(&format!("/{RENEWAL_PATH}"), post(renewal_handler))
        .route(&format!("/{LOGIN_PATH}"), post(login_handler))
        .route(&format!("/{QUOTE_PATH}"), get(quote_handler))
        .fallback(not_found_handler)
        .with_state(shared);
    if offset == 0 {
        // hyper's own `Date` header is this machine's clock, and costs nothing per request.
        return router;
    }
    router.layer(axum::middleware::map_response(
        move |mut response: Response| async move {
            let date = httpdate::fmt_http_date(server_clock(offset));
            if let Ok(value) = HeaderValue::from_str(&date) {
                response.headers_mut().insert(header::DATE, value);
            }
            response
        },
    ))
}

/// The server's clock: this machine's, `offset` seconds ahead.
fn server_clock(offset: i64) -> SystemTime {
    let now = SystemTime::now();
    let shift = Duration::from_secs(offset.unsigned_abs());
    if offset >= 0 { now + shift } else { now - shift }
}

/// The answer the sandbox gives a valid renewal request for this vehicle: `Some(RenewalToken)`
/// (HTTP 200) or `None` (HTTP 206). The identity is the plate when one is given, else the VIN
/// and engine number, always with the city (as [`VehicleKey`] defines it); input noise that
/// the normalisers strip does not change the answer.
pub fn expected_renewal(
    license_no: Option<&str>,
    car_vin: Option<&str>,
    engine_no: Option<&str>,
    city_code: &str,
    not_renewable_percent: u8,
) -> Option<String> {
    let fingerprint = vehicle_key(license_no, car_vin, engine_no, city_code).fingerprint();
    if fingerprint % 100 < u128::from(not_renewable_percent) {
        return None;
    }
    // Hashed once more so that the token does not reveal the identity's fingerprint.
    Some(sign::md5_hex(&format!("sandbox RenewalToken {fingerprint:032x}")).to_ascii_uppercase())
}

/// The identity under which the sandbox counts a vehicle's requests
/// ([`Sandbox::vehicle_requests`]) and decides whether it is flaky.
pub fn vehicle_fingerprint(
    license_no: Option<&str>,
    car_vin: Option<&str>,
    engine_no: Option<&str>,
    city_code: &str,
) -> u128 {
    vehicle_key(license_no, car_vin, engine_no, city_code).fingerprint()
}

/// How many first requests of this vehicle a sandbox with `flaky_percent` answers 500: 0 for
/// most, 1 or 2 for the flaky ones.
pub fn flaky_failures(fingerprint: u128, flaky_percent: u8) -> u32 {
    // Other bits than the renewable share's (`% 100` of the whole fingerprint).
    let bits = fingerprint >> 64;
    if bits % 100 < u128::from(flaky_percent) {
        1 + ((bits >> 32) % 2) as u32
    } else {
        0
    }
}

/// Whether a flaky vehicle's 500s carry `flaky_retry_after_secs`.
pub fn flaky_retry_after(fingerprint: u128) -> bool {
    (fingerprint >> 100).is_multiple_of(3)
}

/// The vehicle's identity, read leniently: a city code that is not a number counts as city 0
/// (the checks answer such a request 412 before anyone asks).
fn vehicle_key(
    license_no: Option<&str>,
    car_vin: Option<&str>,
    engine_no: Option<&str>,
    city_code: &str,
) -> VehicleKey {
    let city = city_code.trim().parse().unwrap_or(0);
    match license_no.map(normalise_plate).filter(|plate| !plate.is_empty()) {
        Some(plate) => VehicleKey::Plate { plate, city },
        None => VehicleKey::Vin {
            vin: car_vin.map(normalise_vin).unwrap_or_default(),
            engine: engine_no.map(str::trim).unwrap_or_default().to_string(),
            city,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// State

struct Shared {
    config: SandboxConfig,
    tokens: Mutex<HashMap<String, TokenEntry>>,
    /// Fingerprints of the vehicles seen, for `fail_first_attempts_only`.
    seen_vehicles: Mutex<HashSet<u128>>,
    /// Renewal requests by vehicle fingerprint.
    per_vehicle: Mutex<HashMap<u128, u64>>,
    counters: Counters,
    records: Mutex<Vec<RecordedRequest>>,
}

struct TokenEntry {
    expires_at: Option<Instant>,
    /// Set by [`Sandbox::expire_tokens`].
    revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenStatus {
    Valid,
    Unknown,
    Expired,
}

impl Shared {
    fn new(config: SandboxConfig) -> Shared {
        let started = Instant::now();
        let mut tokens = HashMap::new();
        if !config.token.trim().is_empty() {
            tokens.insert(
                config.token.trim().to_string(),
                TokenEntry {
                    expires_at: config.token_ttl.and_then(|ttl| started.checked_add(ttl)),
                    revoked: false,
                },
            );
        }
        Shared {
            config,
            tokens: Mutex::new(tokens),
            seen_vehicles: Mutex::new(HashSet::new()),
            per_vehicle: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            records: Mutex::new(Vec::new()),
        }
    }

    fn token_status(&self, token: &str) -> TokenStatus {
        match lock(&self.tokens).get(token.trim()) {
            None => TokenStatus::Unknown,
            Some(entry) if entry.revoked => TokenStatus::Expired,
            Some(entry) if entry.expires_at.is_some_and(|at| Instant::now() >= at) => TokenStatus::Expired,
            Some(_) => TokenStatus::Valid,
        }
    }

    /// A fresh Token, valid for `lifetime` (forever if that overflows the clock).
    fn issue_token(&self, lifetime: Duration) -> String {
        let token = format!("{:032X}", rand::random::<u128>());
        let entry = TokenEntry {
            expires_at: Instant::now().checked_add(lifetime),
            revoked: false,
        };
        lock(&self.tokens).insert(token.clone(), entry);
        token
    }

    /// Whether the fault rates apply to this request: always, or with
    /// `fail_first_attempts_only` only when its vehicle has not been seen before. A body that
    /// names no vehicle counts as a first attempt every time.
    fn faults_apply(&self, body: &[u8]) -> bool {
        if !self.config.fail_first_attempts_only {
            return true;
        }
        match fault_fingerprint(body) {
            Some(fingerprint) => lock(&self.seen_vehicles).insert(fingerprint),
            None => true,
        }
    }

    fn record(&self, at: Instant, body: &[u8], status: u16) {
        if self.config.record_requests {
            lock(&self.records).push(RecordedRequest {
                at,
                body: String::from_utf8_lossy(body).into_owned(),
                status,
            });
        }
    }
}

/// The vehicle a request body names, read leniently (before any check) for fault injection.
fn fault_fingerprint(body: &[u8]) -> Option<u128> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    Some(
        vehicle_key(
            text("LicenseNo"),
            text("CarVin"),
            text("EngineNo"),
            text("CityCode").unwrap_or_default(),
        )
        .fingerprint(),
    )
}

/// A poisoned lock only means a handler panicked; the data (counters, sets) is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn chance(rate: f64) -> bool {
    // `random` is in [0, 1): a rate of 0 never fires, 1 always does.
    rate > 0.0 && rand::random::<f64>() < rate
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    renewed: AtomicU64,
    not_renewable: AtomicU64,
    unauthorized: AtomicU64,
    verification_failed: AtomicU64,
    invalid_params: AtomicU64,
    server_errors: AtomicU64,
    dropped: AtomicU64,
    logins: AtomicU64,
    login_failures: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn count_renewal(&self, status: u16) {
        let counter = match status {
            200 => &self.renewed,
            206 => &self.not_renewable,
            403 => &self.unauthorized,
            406 => &self.verification_failed,
            412 => &self.invalid_params,
            500 => &self.server_errors,
            DROPPED_STATUS => &self.dropped,
            _ => return,
        };
        Counters::bump(counter);
    }

    fn snapshot(&self) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: read(&self.requests),
            renewed: read(&self.renewed),
            not_renewable: read(&self.not_renewable),
            unauthorized: read(&self.unauthorized),
            verification_failed: read(&self.verification_failed),
            invalid_params: read(&self.invalid_params),
            server_errors: read(&self.server_errors),
            dropped: read(&self.dropped),
            logins: read(&self.logins),
            login_failures: read(&self.login_failures),
            max_in_flight: read(&self.max_in_flight),
        }
    }
}

/// Counts a renewal handler as in flight until dropped, also when the client goes away
/// mid-latency and the handler future is dropped.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(counters: &'a Counters) -> InFlight<'a> {
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(counters)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The server clock in unix seconds (see [`SandboxConfig::clock_offset_secs`]).
fn unix_now(config: &SandboxConfig) -> i64 {
    server_clock(config.clock_offset_secs)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------------------------------------
// Checks (pure: the body, the config, the clock and the token table come in as arguments)

/// Why a request is refused: the HTTP status and the `msg`, Chinese first as Bihu writes it,
/// then what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: u16,
    msg: String,
}

impl Refusal {
    fn invalid(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 412,
            msg: format!("参数校验失败 / {detail}"),
        }
    }

    fn unauthorized(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 403,
            msg: format!("未授权 / {detail}"),
        }
    }

    fn verification(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 406,
            msg: format!("校验失败 / {detail}"),
        }
    }

    fn login_failed(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 416,
            msg: format!("登录失败 / {detail}"),
        }
    }
}

/// A renewal request that passed every check: the vehicle, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vehicle {
    license_no: Option<String>,
    car_vin: Option<String>,
    engine_no: Option<String>,
    city: City,
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a body as a JSON object, or says why it is not one.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(Refusal::invalid(format!(
            "the body is {}, not a JSON object",
            json_kind(&other)
        ))),
        Err(error) => Err(Refusal::invalid(format!("the body is not JSON: {error}"))),
    }
}

/// A body's fields with the spec's exact names and types; each failure is a 412 naming the
/// field. Names are matched exactly: the spec spells them, and a lenient sandbox would hide
/// a client's typo that the real service may not forgive.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn missing(&self, key: &str) -> Refusal {
        match self.0.keys().find(|found| found.eq_ignore_ascii_case(key)) {
            Some(found) => Refusal::invalid(format!(
                "{key} is missing (found {found}: field names are case-sensitive)"
            )),
            None => Refusal::invalid(format!("{key} is missing")),
        }
    }

    /// A required string, non-empty after trimming; returned as sent.
    fn string(&self, key: &str) -> Result<&'a str, Refusal> {
        self.optional_string(key)?.ok_or_else(|| match self.0.get(key) {
            Some(_) => Refusal::invalid(format!("{key} is empty")),
            None => self.missing(key),
        })
    }

    /// A string if present and non-empty after trimming (the spec leaves empty fields out,
    /// so an empty one counts as absent); another JSON type is refused.
    fn optional_string(&self, key: &str) -> Result<Option<&'a str>, Refusal> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok((!text.trim().is_empty()).then_some(text.as_str())),
            Some(other) => Err(Refusal::invalid(format!(
                "{key} must be a JSON string, found {}",
                json_kind(other)
            ))),
        }
    }

    /// A required whole JSON number (a numeric string is refused: the spec sends numbers).
    fn integer(&self, key: &str) -> Result<i64, Refusal> {
        match self.0.get(key) {
            None => Err(self.missing(key)),
            Some(Value::Number(number)) => number
                .as_i64()
                .ok_or_else(|| Refusal::invalid(format!("{key} must be a whole number, found {number}"))),
            Some(other) => Err(Refusal::invalid(format!(
                "{key} must be a JSON number, found {}",
                json_kind(other)
            ))),
        }
    }
}

/// The fields a renewal signature covers: every received field but `secCode`, strings as
/// sent and numbers as their decimal text (`sign` trims and leaves empty values out).
fn received_signed_fields(object: &Map<String, Value>) -> Vec<(&str, String)> {
    object
        .iter()
        .filter(|(key, _)| key.as_str() != "secCode")
        .filter_map(|(key, value)| {
            let text = match value {
                Value::Null => return None,
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Some((key.as_str(), text))
        })
        .collect()
}

/// Whether a renewal body's `secCode` is the signature of its other fields (hex in any case).
fn renewal_signature_matches(object: &Map<String, Value>, sec_code: &str, config: &SandboxConfig) -> bool {
    let expected = sign::renewal_sec_code(
        &received_signed_fields(object),
        &config.secret_label,
        &config.secret,
    );
    expected.eq_ignore_ascii_case(sec_code.trim())
}

/// 406 when `timestamp` is further than the allowed skew from `now_unix`.
fn check_clock(timestamp: i64, now_unix: i64, config: &SandboxConfig, key: &str) -> Result<(), Refusal> {
    let skew = timestamp.abs_diff(now_unix);
    if Duration::from_secs(skew) > config.max_clock_skew {
        let direction = if timestamp > now_unix {
            "ahead of"
        } else {
            "behind"
        };
        return Err(Refusal::verification(format!(
            "{key} {timestamp} is {skew} s {direction} the server clock (at most {} s allowed)",
            config.max_clock_skew.as_secs()
        )));
    }
    Ok(())
}

/// A `CityCode` is a city id as a string: `1` to `23` (`01` is read as 1).
fn parse_city_code(text: &str) -> Option<City> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u8>().ok().and_then(City::by_id)
}

/// Checks a renewal body in the documented order: shape and types (412), agent and Token
/// (403), clock and signature (406), values (412).
fn check_renewal(
    config: &SandboxConfig,
    body: &[u8],
    now_unix: i64,
    token_status: impl Fn(&str) -> TokenStatus,
) -> Result<Vehicle, Refusal> {
    let object = parse_object(body)?;
    let fields = Fields(&object);
    let agent_id = fields.string("AgentId")?;
    let token = fields.string("Token")?;
    let city_code = fields.string("CityCode")?;
    let timestamp = fields.integer("TimeStamp")?;
    let sec_code = fields.string("secCode")?;
    let license_no = fields.optional_string("LicenseNo")?;
    let car_vin = fields.optional_string("CarVin")?;
    let engine_no = fields.optional_string("EngineNo")?;
    if license_no.is_none() {
        match (car_vin, engine_no) {
            (Some(_), Some(_)) => {}
            (None, None) => {
                return Err(Refusal::invalid(
                    "no vehicle: send LicenseNo, or both CarVin and EngineNo",
                ));
            }
            (Some(_), None) => {
                return Err(Refusal::invalid(
                    "EngineNo is missing: without LicenseNo, CarVin needs EngineNo",
                ));
            }
            (None, Some(_)) => {
                return Err(Refusal::invalid(
                    "CarVin is missing: without LicenseNo, EngineNo needs CarVin",
                ));
            }
        }
    }

    if agent_id.trim() != config.agent_id.trim() {
        return Err(Refusal::unauthorized(format!(
            "AgentId {agent_id} is not allowed here"
        )));
    }
    match token_status(token) {
        TokenStatus::Valid => {}
        TokenStatus::Unknown => return Err(Refusal::unauthorized("Token is unknown: log in for a new one")),
        TokenStatus::Expired => return Err(Refusal::unauthorized("Token has expired: log in again")),
    }

    check_clock(timestamp, now_unix, config, "TimeStamp")?;
    if !renewal_signature_matches(&object, sec_code, config) {
        return Err(Refusal::verification(
            "secCode does not match the fields sent: check the secret key, its label and the signing rule",
        ));
    }

    let city = parse_city_code(city_code)
        .ok_or_else(|| Refusal::invalid(format!("CityCode {city_code} is not a Bihu city id (1 to 23)")))?;
    let license_no = match license_no.map(|plate| check_plate(&normalise_plate(plate))) {
        None => None,
        Some(PlateCheck::Ordinary(plate)) => Some(plate),
        Some(PlateCheck::Unsupported { why, .. } | PlateCheck::Invalid { why, .. }) => {
            return Err(Refusal::invalid(format!("LicenseNo: {why}")));
        }
    };
    let car_vin = match car_vin {
        None => None,
        Some(vin) => Some(
            check_vin(&normalise_vin(vin))
                .map(|(vin, _check_digit_warning)| vin)
                .map_err(|why| Refusal::invalid(format!("CarVin: {why}")))?,
        ),
    };
    Ok(Vehicle {
        license_no,
        car_vin,
        engine_no: engine_no.map(|engine| engine.trim().to_string()),
        city,
    })
}

/// Checks a login body in the documented order: shape (412), agent (403), user (416), clock
/// and signature (406). Returns the new Token's lifetime.
fn check_login(config: &SandboxConfig, body: &[u8], now_unix: i64) -> Result<Duration, Refusal> {
    let object = parse_object(body)?;
    let fields = Fields(&object);
    let agent_id = fields.integer("agentId")?;
    let user_name = fields.string("userName")?;
    let timestamp = fields.integer("timestamp")?;
    let timeout = fields.integer("timeout")?;
    let sec_code = fields.string("secCode")?;
    let timeout = u64::try_from(timeout)
        .map_err(|_| Refusal::invalid(format!("timeout must not be negative, found {timeout}")))?;

    let agent_id = agent_id.to_string();
    if agent_id != config.agent_id.trim() {
        return Err(Refusal {
            status: 403,
            msg: format!("拒绝登录 / agentId {agent_id} is not allowed here"),
        });
    }
    if config
        .user_name
        .as_deref()
        .is_some_and(|allowed| allowed != user_name)
    {
        return Err(Refusal::login_failed(format!("unknown user {user_name}")));
    }
    check_clock(timestamp, now_unix, config, "timestamp")?;
    let expected = sign::login_sec_code(&agent_id, user_name, &config.secret, timestamp, timeout);
    if !expected.eq_ignore_ascii_case(sec_code.trim()) {
        return Err(Refusal::verification(
            "secCode does not match agentId, userName, timestamp and timeout: check the secret key",
        ));
    }
    Ok(config.token_ttl.unwrap_or(Duration::from_secs(timeout)))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// A JSON answer `{"code":…,"msg":…,…}` with the HTTP status repeated in `code`.
fn json_answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn refusal_answer(refusal: &Refusal) -> Response {
    json_answer(
        refusal.status,
        json!({"code": refusal.status, "msg": refusal.msg}),
    )
}

/// A response whose body fails before its first byte: hyper then closes the connection
/// without sending even the status line, so the client sees a connection closed mid-request,
/// as when a proxy or the network drops it.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "sandbox: connection dropped on purpose (drop_rate)",
        ))
    });
    Response::new(Body::from_stream(failing))
}

async fn renewal_handler(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let arrived = Instant::now();
    let _in_flight = InFlight::enter(&shared.counters);
    Counters::bump(&shared.counters.requests);
    let config = &shared.config;
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }

    let fingerprint = fault_fingerprint(&body);
    // The how-many-th request for this vehicle (1 for the first).
    let counted = config.count_per_vehicle || config.flaky_percent > 0;
    let nth = fingerprint.filter(|_| counted).map(|fingerprint| {
        let mut counts = lock(&shared.per_vehicle);
        let count = counts.entry(fingerprint).or_default();
        *count += 1;
        *count
    });
    let flaky = match (fingerprint, nth) {
        (Some(fingerprint), Some(nth)) if config.flaky_percent > 0 => {
            (nth <= u64::from(flaky_failures(fingerprint, config.flaky_percent))).then(|| {
                config
                    .flaky_retry_after_secs
                    .filter(|_| flaky_retry_after(fingerprint))
            })
        }
        _ => None,
    };
    let faults_apply = shared.faults_apply(&body);
    if faults_apply && chance(config.drop_rate) {
        shared.counters.count_renewal(DROPPED_STATUS);
        shared.record(arrived, &body, DROPPED_STATUS);
        return dropped_connection();
    }

    let checked = check_renewal(config, &body, unix_now(config), |token| {
        shared.token_status(token)
    });
    let (status, response) = match checked {
        Err(refusal) => (refusal.status, refusal_answer(&refusal)),
        Ok(_) if flaky.is_some() => {
            let mut response = json_answer(
                500,
                json!({"code": 500, "msg": "服务器内部错误 / injected fault: a flaky vehicle (flaky_percent)"}),
            );
            if let Some(secs) = flaky.flatten() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            (500, response)
        }
        Ok(_) if faults_apply && chance(config.fail_rate) => {
            let mut response = json_answer(
                500,
                json!({"code": 500, "msg": "服务器内部错误 / injected fault: the sandbox failed this request on purpose (fail_rate)"}),
            );
            if let Some(secs) = config.retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            (500, response)
        }
        Ok(vehicle) => {
            let answer = expected_renewal(
                vehicle.license_no.as_deref(),
                vehicle.car_vin.as_deref(),
                vehicle.engine_no.as_deref(),
                &vehicle.city.id.to_string(),
                config.not_renewable_percent,
            );
            match answer {
                Some(renewal_token) => (
                    200,
                    json_answer(
                        200,
                        json!({"code": 200, "msg": "续保成功", "RenewalToken": renewal_token}),
                    ),
                ),
                None => (
                    206,
                    json_answer(
                        206,
                        json!({"code": 206, "msg": "续保失败 / no renewal data for this vehicle"}),
                    ),
                ),
            }
        }
    };
    shared.counters.count_renewal(status);
    shared.record(arrived, &body, status);
    response
}

async fn login_handler(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match check_login(&shared.config, &body, unix_now(&shared.config)) {
        Ok(lifetime) => {
            let token = shared.issue_token(lifetime);
            Counters::bump(&shared.counters.logins);
            json_answer(200, json!({"code": 200, "msg": "成功", "Token": token}))
        }
        Err(refusal) => {
            Counters::bump(&shared.counters.login_failures);
            refusal_answer(&refusal)
        }
    }
}

async fn quote_handler(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |key: &str| {
        params
            .get(key)
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    };
    let (Some(token), Some(renewal_token)) = (param("Token"), param("RenewalToken")) else {
        return html_page(
            StatusCode::BAD_REQUEST,
            "参数错误 / Bad request",
            "The quote page needs both Token and RenewalToken in the query.",
        );
    };
    match shared.token_status(token) {
        TokenStatus::Valid => html_page(
            StatusCode::OK,
            "报价 / Quote",
            &format!("Sandbox quote placeholder for RenewalToken {renewal_token}."),
        ),
        TokenStatus::Unknown | TokenStatus::Expired => html_page(
            StatusCode::FORBIDDEN,
            "未授权 / Unauthorized",
            "The Token is unknown or has expired: log in again.",
        ),
    }
}

async fn not_found_handler(uri: Uri) -> Response {
    let msg = format!(
        "未找到 / no endpoint {}; the sandbox serves POST /{RENEWAL_PATH}, POST /{LOGIN_PATH} and GET /{QUOTE_PATH}",
        uri.path()
    );
    json_answer(404, json!({"code": 404, "msg": msg}))
}

/// A small UTF-8 page; `paragraph` must already be HTML-safe.
/// The sandbox's one page; askama escapes every value it is given.
#[derive(askama::Template)]
#[template(path = "sandbox_page.html")]
struct Page<'a> {
    title: &'a str,
    paragraph: &'a str,
}

fn html_page(status: StatusCode, title: &str, paragraph: &str) -> Response {
    use askama::Template;
    match (Page { title, paragraph }).render() {
        Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "4773EEC3EE9B572851C11DF730DCE827";
    /// The spec's example time, used as "now" so that its bodies pass the clock check.
    const SPEC_TIME: i64 = 11111111;

    fn spec_config() -> SandboxConfig {
        SandboxConfig {
            secret: Secret::new("xxxxx"),
            ..SandboxConfig::default()
        }
    }

    fn all_valid(_: &str) -> TokenStatus {
        TokenStatus::Valid
    }

    const SPEC_PLATE_BODY: &str = r#"{"LicenseNo":"京J97896","CityCode":"1","AgentId":"102",
        "Token":"4773EEC3EE9B572851C11DF730DCE827","TimeStamp":11111111,
        "secCode":"823e65a376a2cac922b10fe6f2e4b75c"}"#;
    const SPEC_VIN_BODY: &str = r#"{"CarVin":"LS4ASE2A2GJ137027","EngineNo":"2192209","CityCode":"1","AgentId":"102",
        "Token":"4773EEC3EE9B572851C11DF730DCE827","TimeStamp":11111111,
        "secCode":"f24fb0ce384c195998acec060f22ebdb"}"#;

    fn object(text: &str) -> Map<String, Value> {
        parse_object(text.as_bytes()).unwrap()
    }

    fn status_of(config: &SandboxConfig, body: &str) -> u16 {
        match check_renewal(config, body.as_bytes(), SPEC_TIME, all_valid) {
            Ok(_) => 200,
            Err(refusal) => refusal.status,
        }
    }

    #[test]
    fn spec_bodies_verify() {
        let config = spec_config();
        for body in [SPEC_PLATE_BODY, SPEC_VIN_BODY] {
            let object = object(body);
            let sec_code = object["secCode"].as_str().unwrap();
            assert!(renewal_signature_matches(&object, sec_code, &config), "{body}");
            assert!(renewal_signature_matches(
                &object,
                &sec_code.to_uppercase(),
                &config
            ));
        }
        let vehicle = check_renewal(&config, SPEC_VIN_BODY.as_bytes(), SPEC_TIME, all_valid).unwrap();
        assert_eq!(vehicle.car_vin.as_deref(), Some("LS4ASE2A2GJ137027"));
        assert_eq!(vehicle.engine_no.as_deref(), Some("2192209"));
        assert_eq!(vehicle.city.id, 1);
    }

    #[test]
    fn signature_covers_every_received_field() {
        let config = spec_config();
        let changed = object(&SPEC_PLATE_BODY.replace("97896", "97897"));
        assert!(!renewal_signature_matches(
            &changed,
            "823e65a376a2cac922b10fe6f2e4b75c",
            &config
        ));
        // A field the spec does not name is still signed: the signature is over what was sent.
        let mut extra = object(SPEC_PLATE_BODY);
        extra.insert("Extra".into(), json!(5));
        assert!(!renewal_signature_matches(
            &extra,
            "823e65a376a2cac922b10fe6f2e4b75c",
            &config
        ));
        let with_extra = sign::renewal_sec_code(
            &[
                ("LicenseNo", "京J97896"),
                ("CityCode", "1"),
                ("AgentId", "102"),
                ("Token", TOKEN),
                ("TimeStamp", "11111111"),
                ("Extra", "5"),
            ],
            "secretKey",
            &config.secret,
        );
        assert!(renewal_signature_matches(&extra, &with_extra, &config));
        // Another label is another signature.
        let other_label = SandboxConfig {
            secret_label: "SecretKey".into(),
            ..spec_config()
        };
        assert!(!renewal_signature_matches(
            &object(SPEC_PLATE_BODY),
            "823e65a376a2cac922b10fe6f2e4b75c",
            &other_label
        ));
    }

    #[test]
    fn checks_run_in_the_documented_order() {
        let config = spec_config();
        assert_eq!(status_of(&config, SPEC_PLATE_BODY), 200);
        // A shape problem wins over a wrong agent.
        let no_token_wrong_agent = SPEC_PLATE_BODY
            .replace(r#""Token":"4773EEC3EE9B572851C11DF730DCE827","#, "")
            .replace(r#""AgentId":"102""#, r#""AgentId":"7""#);
        assert_eq!(status_of(&config, &no_token_wrong_agent), 412);
        // A wrong agent wins over a signature that no longer matches.
        assert_eq!(
            status_of(&config, &SPEC_PLATE_BODY.replace(r#""102""#, r#""7""#)),
            403
        );
        // A bad signature wins over a bad value.
        assert_eq!(
            status_of(&config, &SPEC_PLATE_BODY.replace(r#""1""#, r#""24""#)),
            406
        );
        // An expired token is a 403 before the clock is looked at.
        let expired = check_renewal(&config, SPEC_PLATE_BODY.as_bytes(), SPEC_TIME + 1000, |_| {
            TokenStatus::Expired
        })
        .unwrap_err();
        assert_eq!(expired.status, 403);
        assert!(expired.msg.contains("expired"), "{}", expired.msg);
    }

    #[test]
    fn shape_problems_name_the_field() {
        let config = spec_config();
        let cases = [
            ("[1,2]", "not a JSON object"),
            ("not json", "not JSON"),
            (
                &SPEC_PLATE_BODY.replace("\"Token\"", "\"token\""),
                "Token is missing (found token",
            ),
            (
                &SPEC_PLATE_BODY.replace("11111111", "\"11111111\""),
                "TimeStamp must be a JSON number",
            ),
            (
                &SPEC_PLATE_BODY.replace("11111111", "11111111.5"),
                "TimeStamp must be a whole number",
            ),
            (
                &SPEC_PLATE_BODY.replace(r#""1""#, "1"),
                "CityCode must be a JSON string",
            ),
            (
                &SPEC_PLATE_BODY.replace(r#""102""#, r#""  ""#),
                "AgentId is empty",
            ),
            (&SPEC_PLATE_BODY.replace("LicenseNo", "Plate"), "no vehicle"),
            (
                &SPEC_VIN_BODY.replace("EngineNo", "Engine"),
                "EngineNo is missing",
            ),
        ];
        for (body, expected) in cases {
            let refusal = check_renewal(&config, body.as_bytes(), SPEC_TIME, all_valid).unwrap_err();
            assert_eq!(refusal.status, 412, "{body}");
            assert!(refusal.msg.contains(expected), "{body}: {}", refusal.msg);
            assert!(refusal.msg.starts_with("参数校验失败 / "), "{}", refusal.msg);
        }
    }

    #[test]
    fn clock_skew_limit_is_inclusive() {
        let config = spec_config();
        let ok = |now| check_renewal(&config, SPEC_PLATE_BODY.as_bytes(), now, all_valid);
        assert!(ok(SPEC_TIME + 300).is_ok());
        assert!(ok(SPEC_TIME - 300).is_ok());
        let late = ok(SPEC_TIME + 301).unwrap_err();
        assert_eq!(late.status, 406);
        assert!(late.msg.contains("301 s behind"), "{}", late.msg);
        assert_eq!(ok(SPEC_TIME - 301).unwrap_err().status, 406);
    }

    #[test]
    fn city_codes() {
        assert_eq!(parse_city_code("1").unwrap().id, 1);
        assert_eq!(parse_city_code(" 23 ").unwrap().id, 23);
        assert_eq!(parse_city_code("01").unwrap().id, 1);
        for bad in ["0", "24", "+1", "北京", "", "1.0", "300"] {
            assert_eq!(parse_city_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn login_checks() {
        let config = SandboxConfig {
            user_name: Some("clerk".into()),
            ..spec_config()
        };
        let body = |agent: i64, user: &str, secret: &str, timestamp: i64| {
            let sec_code =
                sign::login_sec_code(&agent.to_string(), user, &Secret::new(secret), timestamp, 5000);
            json!({"agentId": agent, "userName": user, "timestamp": timestamp, "timeout": 5000, "secCode": sec_code})
                .to_string()
        };
        let status = |text: String| match check_login(&config, text.as_bytes(), SPEC_TIME) {
            Ok(lifetime) => {
                assert_eq!(lifetime, Duration::from_secs(5000));
                200
            }
            Err(refusal) => refusal.status,
        };
        assert_eq!(status(body(102, "clerk", "xxxxx", SPEC_TIME)), 200);
        assert_eq!(status(body(7, "clerk", "xxxxx", SPEC_TIME)), 403);
        assert_eq!(status(body(102, "guest", "xxxxx", SPEC_TIME)), 416);
        assert_eq!(status(body(102, "clerk", "wrong", SPEC_TIME)), 406);
        assert_eq!(status(body(102, "clerk", "xxxxx", SPEC_TIME - 301)), 406);
        assert_eq!(
            status(body(102, "clerk", "xxxxx", SPEC_TIME).replace("102", "\"102\"")),
            412
        );
        assert_eq!(status("{}".into()), 412);
    }

    #[test]
    fn expected_renewal_is_deterministic_and_normalised() {
        let first = expected_renewal(Some("京J97896"), None, None, "1", 0).unwrap();
        assert_eq!(first.len(), 32);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
            "{first}"
        );
        assert_eq!(
            expected_renewal(Some("京J97896"), None, None, "1", 0),
            Some(first.clone())
        );
        assert_eq!(
            expected_renewal(Some(" 京j·978-96 "), None, None, " 1 ", 0),
            Some(first.clone())
        );
        // The plate decides even when a VIN comes along; the city is part of the identity.
        assert_eq!(
            expected_renewal(
                Some("京J97896"),
                Some("LS4ASE2A2GJ137027"),
                Some("2192209"),
                "1",
                0
            ),
            Some(first.clone())
        );
        assert_ne!(
            expected_renewal(Some("京J97896"), None, None, "2", 0),
            Some(first)
        );
        assert_eq!(expected_renewal(Some("京J97896"), None, None, "1", 100), None);
        let by_vin = expected_renewal(None, Some("ls4ase2a2gj137027"), Some(" 2192209 "), "1", 0);
        assert_eq!(
            by_vin,
            expected_renewal(None, Some("LS4ASE2A2GJ137027"), Some("2192209"), "1", 0)
        );
    }

    #[test]
    fn about_twenty_percent_are_not_renewable() {
        let n_plates = 10_000;
        let n_not_renewable = (0..n_plates)
            .filter(|n| expected_renewal(Some(&format!("粤B{n:05}")), None, None, "11", 20).is_none())
            .count();
        let share = n_not_renewable as f64 / n_plates as f64;
        assert!((0.18..=0.22).contains(&share), "share {share}");
    }

    #[test]
    fn fault_fingerprint_matches_the_vehicle_identity() {
        let expected = vehicle_key(Some("京J97896"), None, None, "1").fingerprint();
        assert_eq!(fault_fingerprint(SPEC_PLATE_BODY.as_bytes()), Some(expected));
        assert_eq!(fault_fingerprint(b"garbage"), None);
    }

    #[test]
    fn stats_display_is_one_line() {
        let stats = StatsSnapshot {
            requests: 120,
            renewed: 90,
            not_renewable: 20,
            server_errors: 10,
            logins: 1,
            max_in_flight: 8,
            ..StatsSnapshot::default()
        };
        let line = stats.to_string();
        assert!(!line.contains('\n'));
        assert!(line.starts_with("requests 120: 200×90 206×20 403×0"), "{line}");
        assert!(line.contains("500×10"), "{line}");
        assert!(line.ends_with("max in flight 8"), "{line}");
    }
}
