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
//!
//! Layout:
//! - this file: the settings ([`SandboxConfig`]), the running server ([`Sandbox`], [`serve`])
//!   with its router, and the deterministic answers ([`expected_renewal`], [`flaky_failures`]);
//! - `state`: what it remembers while running (Tokens, vehicles seen, counters, records);
//! - `checks`: the pure checks of a renewal or login body, each refusal a status and a `msg`;
//! - `handlers`: the axum handlers, which inject the faults and answer from the checks.

mod checks;
mod handlers;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::protocol::{LOGIN_PATH, QUOTE_PATH, RENEWAL_PATH};
use crate::api::secret::Secret;
use crate::api::sign;
use crate::leads::lead::{VehicleKey, normalise_plate, normalise_vin};
use crate::listen::{self, Limits};
use handlers::{login_handler, not_found_handler, quote_handler, renewal_handler};
use state::{Shared, lock};

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
    /// Keep every renewal request, body included, for [`Sandbox::requests`]: for tests in
    /// the same process, which read them back; memory grows with every request.
    pub record_requests: bool,
    /// Append each renewal request's arrival (seconds since the start, to the µs) and status
    /// to this file, one line each, written as it is answered: memory stays flat and a crash
    /// loses at most the request being answered. The lines are in answer order.
    pub record_to: Option<PathBuf>,
    /// Answer every renewal request HTTP 200 and give the outcome only in the body's `code`
    /// (206, 403, 406, 412, 500), as gateways in front of such APIs often do. Dropped
    /// connections stay dropped; a 500's `Retry-After` is still sent.
    pub always_http_200: bool,
    /// The connection cap and the timeouts of the listener.
    pub limits: Limits,
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
            record_to: None,
            always_http_200: false,
            limits: Limits::default(),
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
    /// The status answered, as the body's `code` says it (the HTTP status too, unless
    /// [`SandboxConfig::always_http_200`]), or [`DROPPED_STATUS`].
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
    /// Binds `listen` (port 0 picks a free port) and serves in a spawned task. Fails if the
    /// address is taken or [`SandboxConfig::record_to`] cannot be created.
    pub async fn start(listen: SocketAddr, config: SandboxConfig) -> io::Result<Sandbox> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config)?);
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
    run(listener, Arc::new(Shared::new(config)?), shutdown).await
}

/// The machinery under both [`serve`] and [`Sandbox::start`]; the latter keeps `shared` to
/// read the statistics.
async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = shared.config.limits;
    listen::serve(listener, router(shared), limits, shutdown).await
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

/// The spec's example renewal by plate (docs/RENEWAL_API.md), signed with the secret `xxxxx`:
/// a fixture of the checks' and the state's tests, kept here so that neither imports the other's
/// tests.
#[cfg(test)]
const SPEC_PLATE_BODY: &str = r#"{"LicenseNo":"京J97896","CityCode":"1","AgentId":"102",
        "Token":"4773EEC3EE9B572851C11DF730DCE827","TimeStamp":11111111,
        "secCode":"823e65a376a2cac922b10fe6f2e4b75c"}"#;

#[cfg(test)]
mod tests {
    use super::*;

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
