//! The sandbox's axum handlers: renewal (with the faults: latency, drops, flaky vehicles,
//! injected 500s, in that order), login, the quote page and the 404 for anything else. Thin:
//! the verdict comes from [`checks`](super::checks), the memory from [`state`](super::state).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::checks::{Refusal, check_login, check_renewal};
use super::state::{Counters, InFlight, Shared, TokenStatus, chance, fault_fingerprint, lock, unix_now};
use super::{DROPPED_STATUS, expected_renewal, flaky_failures, flaky_retry_after};
use crate::api::protocol::{LOGIN_PATH, QUOTE_PATH, RENEWAL_PATH};

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

pub(super) async fn renewal_handler(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
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
    let (status, mut response) = match checked {
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
    if config.always_http_200 {
        *response.status_mut() = StatusCode::OK;
    }
    response
}

pub(super) async fn login_handler(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
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

pub(super) async fn quote_handler(
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

pub(super) async fn not_found_handler(uri: Uri) -> Response {
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
