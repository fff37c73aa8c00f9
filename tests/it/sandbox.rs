//! The sandbox server over real HTTP: every answer of `RENEWAL_API.md`, the faults it can
//! inject, and what it counts and records.

use std::time::{Duration, Instant};

use bihu_renew::api::protocol::{
    self, Answer, LOGIN_PATH, LoginFailure, LoginRequest, QUOTE_PATH, RENEWAL_PATH, RenewalRequest,
};
use bihu_renew::api::secret::Secret;
use bihu_renew::api::sign;
use bihu_renew::leads::city::City;
use bihu_renew::leads::lead::Lead;
use bihu_renew::sandbox::{self, DROPPED_STATUS, Sandbox, SandboxConfig, StatsSnapshot};
use serde::Serialize;
use serde_json::Value;

use crate::support::{agent, client, lead, recording_sandbox, start_sandbox, unix_now};

/// An HTTP answer, read whole.
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn answer(&self) -> Answer {
        protocol::classify(self.status, self.retry_after, &self.body)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads a whole answer; a connection broken before the end is an error.
async fn try_read(response: reqwest::Response) -> reqwest::Result<Reply> {
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header(reqwest::header::RETRY_AFTER).and_then(|value| value.parse().ok());
    let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
    let status = response.status().as_u16();
    let body = response.bytes().await?.to_vec();
    Ok(Reply {
        status,
        retry_after,
        content_type,
        body,
    })
}

async fn read(response: reqwest::Response) -> Reply {
    try_read(response).await.expect("the body arrives")
}

async fn try_post(sandbox: &Sandbox, path: &str, body: &impl Serialize) -> reqwest::Result<Reply> {
    let url = sandbox.base_url().join(path).unwrap();
    try_read(client().post(url).json(body).send().await?).await
}

async fn post(sandbox: &Sandbox, path: &str, body: &impl Serialize) -> Reply {
    try_post(sandbox, path, body).await.expect("the sandbox answers")
}

async fn renew(sandbox: &Sandbox, body: &impl Serialize) -> Answer {
    post(sandbox, RENEWAL_PATH, body).await.answer()
}

/// A sandbox whose login takes the user name `clerk`.
async fn clerk_sandbox() -> Sandbox {
    start_sandbox(SandboxConfig {
        user_name: Some("clerk".into()),
        ..SandboxConfig::default()
    })
    .await
}

/// A sandbox that meets every vehicle's first request with a fault, a 500 with a chance of
/// `fail_rate` and a dropped connection with a chance of `drop_rate`, and lets its retries
/// through.
async fn faulting_first_attempts(fail_rate: f64, drop_rate: f64) -> Sandbox {
    start_sandbox(SandboxConfig {
        fail_rate,
        drop_rate,
        fail_first_attempts_only: true,
        ..SandboxConfig::default()
    })
    .await
}

/// The answer to a renewal signed with a secret that is not the sandbox's.
async fn renew_with_a_wrong_secret(sandbox: &Sandbox) -> Answer {
    let config = sandbox.config();
    let wrong = protocol::Agent {
        secret: Secret::new("not-the-secret"),
        ..agent(config)
    };
    renew_as(sandbox, &wrong, &config.token).await
}

/// Sends each body and asserts that the answer is invalid parameters whose message holds
/// its text.
async fn assert_invalid_params<B: Serialize + std::fmt::Debug>(
    sandbox: &Sandbox,
    cases: impl IntoIterator<Item = (B, &str)>,
) {
    for (body, expected) in cases {
        let answer = renew(sandbox, &body).await;
        assert!(
            matches!(answer, Answer::InvalidParams { .. }),
            "{body:?}: {answer:?}"
        );
        assert_msg_contains(&answer, expected);
    }
}

/// A request for `lead` signed with the sandbox's own agent and token, now.
fn signed(sandbox: &Sandbox, lead: &Lead) -> RenewalRequest {
    let config = sandbox.config();
    RenewalRequest::signed(lead, &agent(config), &config.token, unix_now())
}

/// Re-signs a request whose fields a test changed by hand.
fn resign(sandbox: &Sandbox, mut request: RenewalRequest) -> RenewalRequest {
    let config = sandbox.config();
    request.sec_code = sign::renewal_sec_code(&request.signed_fields(), &config.secret_label, &config.secret);
    request
}

fn to_json(request: &RenewalRequest) -> Value {
    serde_json::to_value(request).unwrap()
}

/// The first Beijing plate `京A000nn` for which the sandbox's answer is (or is not) a renewal.
fn beijing_plate(renewable: bool) -> String {
    let percent = SandboxConfig::default().not_renewable_percent;
    (0..)
        .map(|n| format!("京A{n:05}"))
        .find(|plate| sandbox::expected_renewal(Some(plate), None, None, "1", percent).is_some() == renewable)
        .unwrap()
}

fn assert_msg_contains(answer: &Answer, expected: &str) {
    let msg = match answer {
        Answer::Renewed { msg, .. }
        | Answer::NotRenewable { msg }
        | Answer::InvalidParams { msg }
        | Answer::Unauthorized { msg }
        | Answer::VerificationFailed { msg }
        | Answer::Transient { msg, .. } => msg,
        Answer::Protocol { .. } => panic!("not an answer of the spec: {answer:?}"),
    };
    assert!(msg.contains(expected), "{msg:?} should mention {expected:?}");
}

async fn login(sandbox: &Sandbox, request: &LoginRequest) -> Result<String, LoginFailure> {
    let reply = post(sandbox, LOGIN_PATH, request).await;
    protocol::classify_login(reply.status, &reply.body)
}

#[tokio::test]
async fn renewal_answers_the_expected_token() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let plate = beijing_plate(true);
    let reply = post(&sandbox, RENEWAL_PATH, &signed(&sandbox, &lead(&plate))).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.content_type.starts_with("application/json"),
        "{}",
        reply.content_type
    );
    let expected = sandbox::expected_renewal(Some(&plate), None, None, "1", 20).unwrap();
    assert_eq!(
        reply.answer(),
        Answer::Renewed {
            renewal_token: expected,
            msg: "续保成功".into()
        }
    );
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(json["code"], 200);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn renewal_by_vin_and_engine_number() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let lead = bihu_renew::leads::lead::validate(
        &bihu_renew::leads::lead::RawLead {
            vin: "LS4ASE2A2GJ137027",
            engine: "2192209",
            city: "1",
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let answer = renew(&sandbox, &signed(&sandbox, &lead)).await;
    match sandbox::expected_renewal(None, Some("LS4ASE2A2GJ137027"), Some("2192209"), "1", 20) {
        Some(renewal_token) => assert!(
            matches!(&answer, Answer::Renewed { renewal_token: got, .. } if *got == renewal_token),
            "{answer:?}"
        ),
        None => assert!(matches!(answer, Answer::NotRenewable { .. }), "{answer:?}"),
    }
}

#[tokio::test]
async fn vehicle_without_renewal_data_is_206() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let reply = post(
        &sandbox,
        RENEWAL_PATH,
        &signed(&sandbox, &lead(&beijing_plate(false))),
    )
    .await;
    assert_eq!(reply.status, 206);
    assert_eq!(
        reply.answer(),
        Answer::NotRenewable {
            msg: "续保失败 / no renewal data for this vehicle".into()
        }
    );
}

/// The answer to 京J97896's renewal, signed now as `agent` with `token`.
async fn renew_as(sandbox: &Sandbox, agent: &protocol::Agent, token: &str) -> Answer {
    let request = RenewalRequest::signed(&lead("京J97896"), agent, token, unix_now());
    renew(sandbox, &request).await
}

#[tokio::test]
async fn wrong_agent_id_is_403() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let other_agent = protocol::Agent {
        agent_id: "103".into(),
        ..agent(sandbox.config())
    };
    let answer = renew_as(&sandbox, &other_agent, &sandbox.config().token).await;
    assert!(matches!(answer, Answer::Unauthorized { .. }), "{answer:?}");
    assert_msg_contains(&answer, "AgentId 103");
}

#[tokio::test]
async fn unknown_token_is_403() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let answer = renew_as(
        &sandbox,
        &agent(sandbox.config()),
        "00000000000000000000000000000000",
    )
    .await;
    assert!(matches!(answer, Answer::Unauthorized { .. }), "{answer:?}");
    assert_msg_contains(&answer, "unknown");
}

#[tokio::test]
async fn token_expires_after_its_ttl() {
    let sandbox = start_sandbox(SandboxConfig {
        token_ttl: Some(Duration::from_millis(400)),
        ..SandboxConfig::default()
    })
    .await;
    let plate = beijing_plate(true);
    let fresh = renew(&sandbox, &signed(&sandbox, &lead(&plate))).await;
    assert!(matches!(fresh, Answer::Renewed { .. }), "{fresh:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stale = renew(&sandbox, &signed(&sandbox, &lead(&plate))).await;
    assert!(matches!(stale, Answer::Unauthorized { .. }), "{stale:?}");
    assert_msg_contains(&stale, "expired");
}

#[tokio::test]
async fn expire_tokens_expires_every_token_issued_so_far() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let config = sandbox.config().clone();
    let plate = beijing_plate(true);
    let login_request = LoginRequest::signed(&agent(&config), "clerk", unix_now(), 5000).unwrap();
    let logged_in = login(&sandbox, &login_request).await.unwrap();

    sandbox.expire_tokens();
    for token in [config.token.as_str(), logged_in.as_str()] {
        let request = RenewalRequest::signed(&lead(&plate), &agent(&config), token, unix_now());
        let answer = renew(&sandbox, &request).await;
        assert!(
            matches!(answer, Answer::Unauthorized { .. }),
            "{token}: {answer:?}"
        );
        assert_msg_contains(&answer, "expired");
    }

    // A login after the expiry gives a token that works.
    let fresh = login(&sandbox, &login_request).await.unwrap();
    let request = RenewalRequest::signed(&lead(&plate), &agent(&config), &fresh, unix_now());
    let answer = renew(&sandbox, &request).await;
    assert!(matches!(answer, Answer::Renewed { .. }), "{answer:?}");
}

#[tokio::test]
async fn wrong_secret_is_406() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let answer = renew_with_a_wrong_secret(&sandbox).await;
    assert!(matches!(answer, Answer::VerificationFailed { .. }), "{answer:?}");
    assert_msg_contains(&answer, "secCode");
}

#[tokio::test]
async fn stale_or_future_timestamp_is_406_within_the_skew_is_fine() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let config = sandbox.config();
    let plate = beijing_plate(true);
    // A few seconds past the 300 s limit: the server reads its clock a moment after the
    // client did, and on a busy machine that moment can cross a second boundary. The exact
    // boundary (300 s accepted, 301 s refused) is a unit test in src/sandbox/checks.rs.
    for offset in [-305, 305] {
        let request =
            RenewalRequest::signed(&lead(&plate), &agent(config), &config.token, unix_now() + offset);
        let answer = renew(&sandbox, &request).await;
        assert!(
            matches!(answer, Answer::VerificationFailed { .. }),
            "{offset}: {answer:?}"
        );
        assert_msg_contains(&answer, "TimeStamp");
    }
    for offset in [-290, 290] {
        let request =
            RenewalRequest::signed(&lead(&plate), &agent(config), &config.token, unix_now() + offset);
        let answer = renew(&sandbox, &request).await;
        assert!(matches!(answer, Answer::Renewed { .. }), "{offset}: {answer:?}");
    }
}

#[tokio::test]
async fn uppercase_sec_code_is_accepted() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let mut request = signed(&sandbox, &lead(&beijing_plate(true)));
    request.sec_code = request.sec_code.to_uppercase();
    let answer = renew(&sandbox, &request).await;
    assert!(matches!(answer, Answer::Renewed { .. }), "{answer:?}");
}

#[tokio::test]
async fn malformed_bodies_are_412_naming_the_problem() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let request = signed(&sandbox, &lead("京J97896"));

    let mut missing_token = to_json(&request);
    missing_token.as_object_mut().unwrap().remove("Token");
    let mut timestamp_as_string = to_json(&request);
    timestamp_as_string["TimeStamp"] = Value::String(request.time_stamp.to_string());
    let mut no_vehicle = to_json(&request);
    no_vehicle.as_object_mut().unwrap().remove("LicenseNo");

    let cases = [
        (missing_token, "Token is missing"),
        (timestamp_as_string, "TimeStamp must be a JSON number"),
        (no_vehicle, "no vehicle"),
        (Value::String("not an object".into()), "not a JSON object"),
    ];
    assert_invalid_params(&sandbox, cases).await;

    let url = sandbox.base_url().join(RENEWAL_PATH).unwrap();
    let response = client().post(url).body("{not json").send().await.unwrap();
    let reply = read(response).await;
    assert_eq!(reply.status, 412, "{}", reply.text());
}

#[tokio::test]
async fn bad_values_are_412_even_when_correctly_signed() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let beijing = City::by_id(1).unwrap();

    let bad_city = resign(
        &sandbox,
        RenewalRequest {
            city_code: "24".into(),
            ..signed(&sandbox, &lead("京J97896"))
        },
    );
    let short_plate = Lead {
        plate: Some("京A1234".into()),
        vin: None,
        engine: None,
        city: beijing,
        warnings: vec![],
    };
    let new_energy_plate = Lead {
        plate: Some("粤BD12345".into()),
        ..short_plate.clone()
    };
    let short_vin = Lead {
        plate: None,
        vin: Some("LS4ASE2A2GJ13702".into()),
        engine: Some("2192209".into()),
        ..short_plate.clone()
    };
    let cases = [
        (bad_city, "CityCode 24"),
        (signed(&sandbox, &short_plate), "LicenseNo"),
        (signed(&sandbox, &new_energy_plate), "new-energy"),
        (signed(&sandbox, &short_vin), "CarVin"),
    ];
    assert_invalid_params(&sandbox, cases).await;

    // A VIN whose check digit is wrong is still accepted: old and imported vehicles have them.
    let wrong_check_digit = Lead {
        vin: Some("LS4ASE2A3GJ137027".into()),
        ..short_vin
    };
    let answer = renew(&sandbox, &signed(&sandbox, &wrong_check_digit)).await;
    assert!(
        matches!(answer, Answer::Renewed { .. } | Answer::NotRenewable { .. }),
        "{answer:?}"
    );
}

#[tokio::test]
async fn fail_rate_one_answers_500_with_retry_after() {
    let sandbox = start_sandbox(SandboxConfig {
        fail_rate: 1.0,
        retry_after_secs: Some(7),
        ..SandboxConfig::default()
    })
    .await;
    let reply = post(&sandbox, RENEWAL_PATH, &signed(&sandbox, &lead("京J97896"))).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.retry_after, Some(7));
    let answer = reply.answer();
    assert!(
        matches!(
            answer,
            Answer::Transient {
                status: 500,
                retry_after_secs: Some(7),
                ..
            }
        ),
        "{answer:?}"
    );

    // 500s strike only requests that pass the checks: a bad signature is still a 406.
    let answer = renew_with_a_wrong_secret(&sandbox).await;
    assert!(matches!(answer, Answer::VerificationFailed { .. }), "{answer:?}");
}

#[tokio::test]
async fn fail_first_attempts_only_lets_the_retry_through() {
    let sandbox = faulting_first_attempts(1.0, 0.0).await;
    let plate = beijing_plate(true);
    let first = post(&sandbox, RENEWAL_PATH, &signed(&sandbox, &lead(&plate))).await;
    assert_eq!(first.status, 500);
    assert_eq!(first.retry_after, None, "no Retry-After unless configured");
    // The retry is signed anew; the same vehicle written with noise is the same vehicle.
    let retry = renew(&sandbox, &signed(&sandbox, &lead(&plate.replace('A', "a")))).await;
    assert!(matches!(retry, Answer::Renewed { .. }), "{retry:?}");
    // Another vehicle fails on its first attempt again.
    let other = post(&sandbox, RENEWAL_PATH, &signed(&sandbox, &lead("京J97896"))).await;
    assert_eq!(other.status, 500);
}

#[tokio::test]
async fn drop_rate_one_is_a_client_error() {
    let sandbox = start_sandbox(SandboxConfig {
        drop_rate: 1.0,
        record_requests: true,
        ..SandboxConfig::default()
    })
    .await;
    let result = try_post(&sandbox, RENEWAL_PATH, &signed(&sandbox, &lead("京J97896"))).await;
    let error = result
        .err()
        .expect("a dropped connection is an error, not an answer");
    // No status line ever arrives: reqwest reports the send itself as failed (IncompleteMessage).
    assert!(
        error.is_request() && !error.is_status() && !error.is_timeout(),
        "{error:?}"
    );

    // The server lives on: the login endpoint still answers.
    let config = sandbox.config().clone();
    let login_request = LoginRequest::signed(&agent(&config), "clerk", unix_now(), 60).unwrap();
    assert!(login(&sandbox, &login_request).await.is_ok());

    let stats = sandbox.stats();
    assert_eq!((stats.requests, stats.dropped), (1, 1), "{stats}");
    assert_eq!(sandbox.requests()[0].status, DROPPED_STATUS);
}

#[tokio::test]
async fn drops_also_spare_retries_with_fail_first_attempts_only() {
    let sandbox = faulting_first_attempts(0.0, 1.0).await;
    let plate = beijing_plate(true);
    assert!(
        try_post(&sandbox, RENEWAL_PATH, &signed(&sandbox, &lead(&plate)))
            .await
            .is_err()
    );
    let retry = renew(&sandbox, &signed(&sandbox, &lead(&plate))).await;
    assert!(matches!(retry, Answer::Renewed { .. }), "{retry:?}");
}

#[tokio::test]
async fn latency_is_added_and_concurrent_requests_are_counted_in_flight() {
    let latency = Duration::from_millis(250);
    let sandbox = start_sandbox(SandboxConfig {
        latency,
        ..SandboxConfig::default()
    })
    .await;
    let started = Instant::now();
    let answer = renew(&sandbox, &signed(&sandbox, &lead(&beijing_plate(true)))).await;
    assert!(matches!(answer, Answer::Renewed { .. }), "{answer:?}");
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    let requests: Vec<RenewalRequest> = (0..6)
        .map(|n| signed(&sandbox, &lead(&format!("京B{n:05}"))))
        .collect();
    // One client for all six: building a client (TLS roots included) takes long enough on a
    // loaded machine to serialise the requests it is meant to overlap.
    let http = client();
    let url = sandbox.base_url().join(RENEWAL_PATH).unwrap();
    let started = Instant::now();
    let answers = futures::future::join_all(requests.iter().map(|request| async {
        let response = http
            .post(url.clone())
            .json(request)
            .send()
            .await
            .expect("an answer");
        read(response).await.answer()
    }))
    .await;
    assert!(
        answers
            .iter()
            .all(|answer| matches!(answer, Answer::Renewed { .. } | Answer::NotRenewable { .. })),
        "{answers:?}"
    );
    // Served side by side, not one after another.
    assert!(started.elapsed() < latency * 4, "{:?}", started.elapsed());
    let stats = sandbox.stats();
    assert!(stats.max_in_flight > 1, "{stats}");
    assert_eq!(stats.requests, 7, "{stats}");
}

#[tokio::test]
async fn login_gives_a_token_that_renews() {
    let sandbox = clerk_sandbox().await;
    let config = sandbox.config().clone();
    let request = LoginRequest::signed(&agent(&config), "clerk", unix_now(), 5000).unwrap();
    let reply = post(&sandbox, LOGIN_PATH, &request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(json["msg"], "成功");
    let token = protocol::classify_login(reply.status, &reply.body).unwrap();
    assert_eq!(token.len(), 32);
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
        "{token}"
    );
    assert_ne!(token, config.token);

    let plate = beijing_plate(true);
    let renewal = RenewalRequest::signed(&lead(&plate), &agent(&config), &token, unix_now());
    let answer = renew(&sandbox, &renewal).await;
    let expected = sandbox::expected_renewal(Some(&plate), None, None, "1", 20).unwrap();
    assert!(
        matches!(&answer, Answer::Renewed { renewal_token, .. } if *renewal_token == expected),
        "{answer:?}"
    );
}

#[tokio::test]
async fn login_refusals() {
    let sandbox = clerk_sandbox().await;
    let config = sandbox.config().clone();

    let wrong_secret = protocol::Agent {
        secret: Secret::new("not-the-secret"),
        ..agent(&config)
    };
    let request = LoginRequest::signed(&wrong_secret, "clerk", unix_now(), 5000).unwrap();
    let failure = login(&sandbox, &request).await.unwrap_err();
    assert!(matches!(failure, LoginFailure::Verification(_)), "{failure:?}");

    let request = LoginRequest::signed(&agent(&config), "guest", unix_now(), 5000).unwrap();
    let failure = login(&sandbox, &request).await.unwrap_err();
    assert!(
        matches!(&failure, LoginFailure::Failed(msg) if msg.contains("unknown user")),
        "{failure:?}"
    );

    let other_agent = protocol::Agent {
        agent_id: "103".into(),
        ..agent(&config)
    };
    let request = LoginRequest::signed(&other_agent, "clerk", unix_now(), 5000).unwrap();
    let failure = login(&sandbox, &request).await.unwrap_err();
    assert!(matches!(failure, LoginFailure::Refused(_)), "{failure:?}");

    let request = LoginRequest::signed(&agent(&config), "clerk", unix_now() - 301, 5000).unwrap();
    let failure = login(&sandbox, &request).await.unwrap_err();
    assert!(matches!(failure, LoginFailure::Verification(_)), "{failure:?}");

    let reply = post(&sandbox, LOGIN_PATH, &serde_json::json!({"agentId": 102})).await;
    assert_eq!(reply.status, 412, "{}", reply.text());

    let stats = sandbox.stats();
    assert_eq!((stats.logins, stats.login_failures), (0, 5), "{stats}");
}

#[tokio::test]
async fn quote_page() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let token = sandbox.config().token.clone();
    let get = |url: String| async move { read(client().get(url).send().await.unwrap()).await };

    let page = get(protocol::quote_url(&sandbox.base_url(), &token, "RT<1>")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let html = page.text();
    assert!(html.contains(r#"<meta charset="utf-8">"#), "{html}");
    assert!(html.contains("报价"), "{html}");
    assert!(
        !html.contains("RT<1>") && (html.contains("RT&lt;1&gt;") || html.contains("RT&#60;1&#62;")),
        "the RenewalToken is shown, escaped: {html}"
    );

    let unknown = get(protocol::quote_url(&sandbox.base_url(), "NOPE", "RT1")).await;
    assert_eq!(unknown.status, 403);
    assert!(unknown.content_type.starts_with("text/html"));

    let missing = get(sandbox.base_url().join(QUOTE_PATH).unwrap().to_string() + "?Token=" + &token).await;
    assert_eq!(missing.status, 400);

    sandbox.expire_tokens();
    let expired = get(protocol::quote_url(&sandbox.base_url(), &token, "RT1")).await;
    assert_eq!(expired.status, 403);
}

#[tokio::test]
async fn stats_count_every_outcome() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let config = sandbox.config().clone();
    let wrong_secret = protocol::Agent {
        secret: Secret::new("not-the-secret"),
        ..agent(&config)
    };
    let other_agent = protocol::Agent {
        agent_id: "103".into(),
        ..agent(&config)
    };
    let renewable = lead(&beijing_plate(true));
    let not_renewable = lead(&beijing_plate(false));
    renew(&sandbox, &signed(&sandbox, &renewable)).await;
    renew(&sandbox, &signed(&sandbox, &renewable)).await;
    renew(&sandbox, &signed(&sandbox, &not_renewable)).await;
    renew(
        &sandbox,
        &RenewalRequest::signed(&renewable, &other_agent, &config.token, unix_now()),
    )
    .await;
    renew(
        &sandbox,
        &RenewalRequest::signed(&renewable, &wrong_secret, &config.token, unix_now()),
    )
    .await;
    renew(&sandbox, &serde_json::json!({"AgentId": "102"})).await;
    login(
        &sandbox,
        &LoginRequest::signed(&agent(&config), "clerk", unix_now(), 60).unwrap(),
    )
    .await
    .unwrap();
    login(
        &sandbox,
        &LoginRequest::signed(&wrong_secret, "clerk", unix_now(), 60).unwrap(),
    )
    .await
    .unwrap_err();

    let stats = sandbox.stats();
    assert_eq!(
        stats,
        StatsSnapshot {
            requests: 6,
            renewed: 2,
            not_renewable: 1,
            unauthorized: 1,
            verification_failed: 1,
            invalid_params: 1,
            server_errors: 0,
            dropped: 0,
            logins: 1,
            login_failures: 1,
            max_in_flight: 1,
        }
    );
    assert_eq!(
        stats.to_string(),
        "requests 6: 200×2 206×1 403×1 406×1 412×1 500×0 dropped×0; logins 1 (failed 1); max in flight 1"
    );
    assert!(sandbox.requests().is_empty(), "nothing is recorded unless asked");
}

#[tokio::test]
async fn record_requests_keeps_bodies_in_order() {
    let sandbox = recording_sandbox().await;
    let first = signed(&sandbox, &lead(&beijing_plate(true)));
    let second = signed(&sandbox, &lead(&beijing_plate(false)));
    renew(&sandbox, &first).await;
    renew(&sandbox, &second).await;

    let recorded = sandbox.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].body, serde_json::to_string(&first).unwrap());
    assert_eq!(recorded[1].body, serde_json::to_string(&second).unwrap());
    assert_eq!((recorded[0].status, recorded[1].status), (200, 206));
    assert!(recorded[0].at <= recorded[1].at);
}

#[tokio::test]
async fn serve_stops_when_its_shutdown_future_completes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = SandboxConfig::default();
    let server = tokio::spawn(sandbox::serve(listener, config.clone(), async {
        stop_rx.await.ok();
    }));

    let url = format!("http://{addr}/{LOGIN_PATH}");
    let request = LoginRequest::signed(&agent(&config), "clerk", unix_now(), 60).unwrap();
    let reply = read(client().post(&url).json(&request).send().await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after its shutdown future")
        .unwrap()
        .unwrap();
    assert!(client().post(&url).json(&request).send().await.is_err());
}

#[tokio::test]
async fn shutdown_stops_the_sandbox() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let url = sandbox.base_url().join(RENEWAL_PATH).unwrap();
    let request = signed(&sandbox, &lead("京J97896"));
    assert!(client().post(url.clone()).json(&request).send().await.is_ok());
    tokio::time::timeout(Duration::from_secs(5), sandbox.shutdown())
        .await
        .expect("shutdown finishes");
    assert!(client().post(url).json(&request).send().await.is_err());
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let reply = post(&sandbox, "unite/nothing", &serde_json::json!({})).await;
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains(RENEWAL_PATH), "{}", reply.text());
}
