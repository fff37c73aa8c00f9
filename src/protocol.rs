//! The renewal and login messages: request bodies as the spec spells them, and answers read
//! into an [`Answer`] (what happened to the row, whatever the HTTP status).
//!
//! Pure: no I/O and no clock. The HTTP client (`client.rs`) and the sandbox server
//! (`sandbox.rs`) both build on these types, so the two sides cannot drift apart.

use std::borrow::Cow;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lead::Lead;
use crate::secret::Secret;
use crate::sign;

pub const RENEWAL_PATH: &str = "unite/unitecheckrenewal";
pub const LOGIN_PATH: &str = "unite/login";
pub const QUOTE_PATH: &str = "DoQuote/SelectInsuranceNew";

/// Who is asking: the agent's identity and how it signs.
#[derive(Debug, Clone)]
pub struct Agent {
    pub agent_id: String,
    pub secret: Secret,
    /// The secret's key in the signed string (`secretKey` unless changed).
    pub secret_label: String,
}

/// The body of `unite/unitecheckrenewal`, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalRequest {
    #[serde(rename = "LicenseNo", skip_serializing_if = "Option::is_none", default)]
    pub license_no: Option<String>,
    #[serde(rename = "CarVin", skip_serializing_if = "Option::is_none", default)]
    pub car_vin: Option<String>,
    #[serde(rename = "EngineNo", skip_serializing_if = "Option::is_none", default)]
    pub engine_no: Option<String>,
    #[serde(rename = "CityCode")]
    pub city_code: String,
    #[serde(rename = "AgentId")]
    pub agent_id: String,
    #[serde(rename = "Token")]
    pub token: String,
    #[serde(rename = "TimeStamp")]
    pub time_stamp: i64,
    #[serde(rename = "secCode")]
    pub sec_code: String,
}

impl RenewalRequest {
    /// A signed request for one lead at `timestamp` (unix seconds).
    pub fn signed(lead: &Lead, agent: &Agent, token: &str, timestamp: i64) -> RenewalRequest {
        let mut request = RenewalRequest {
            license_no: lead.plate.clone(),
            car_vin: lead.vin.clone(),
            engine_no: lead.engine.clone(),
            city_code: lead.city.id.to_string(),
            agent_id: agent.agent_id.clone(),
            token: token.to_string(),
            time_stamp: timestamp,
            sec_code: String::new(),
        };
        request.sec_code =
            sign::renewal_sec_code(&request.signed_fields(), &agent.secret_label, &agent.secret);
        request
    }

    /// The fields that are sent, other than `secCode`, as the signature sees them.
    pub fn signed_fields(&self) -> Vec<(&'static str, Cow<'_, str>)> {
        let optional = [
            ("LicenseNo", &self.license_no),
            ("CarVin", &self.car_vin),
            ("EngineNo", &self.engine_no),
        ];
        let mut fields: Vec<(&'static str, Cow<'_, str>)> = optional
            .into_iter()
            .filter_map(|(key, value)| value.as_deref().map(|value| (key, Cow::Borrowed(value))))
            .collect();
        fields.push(("CityCode", Cow::Borrowed(&self.city_code)));
        fields.push(("AgentId", Cow::Borrowed(&self.agent_id)));
        fields.push(("Token", Cow::Borrowed(&self.token)));
        fields.push(("TimeStamp", Cow::Owned(self.time_stamp.to_string())));
        fields
    }
}

/// The body of `unite/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    #[serde(rename = "agentId")]
    pub agent_id: i64,
    #[serde(rename = "userName")]
    pub user_name: String,
    pub timestamp: i64,
    /// The Token's lifetime in seconds.
    pub timeout: u64,
    #[serde(rename = "secCode")]
    pub sec_code: String,
}

impl LoginRequest {
    /// `None` when the agent id is not a number (the login API sends it as one).
    pub fn signed(agent: &Agent, user_name: &str, timestamp: i64, timeout: u64) -> Option<LoginRequest> {
        let agent_id = agent.agent_id.trim().parse().ok()?;
        Some(LoginRequest {
            agent_id,
            user_name: user_name.to_string(),
            timestamp,
            timeout,
            sec_code: sign::login_sec_code(
                agent.agent_id.trim(),
                user_name,
                &agent.secret,
                timestamp,
                timeout,
            ),
        })
    }
}

/// What the API said about one renewal attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with a `RenewalToken`.
    Renewed { renewal_token: String, msg: String },
    /// 206: no renewal data for this vehicle. Final.
    NotRenewable { msg: String },
    /// 412: parameter check failed. Final.
    InvalidParams { msg: String },
    /// 403: Token unknown or expired, or agent not allowed.
    Unauthorized { msg: String },
    /// 406: signature or timestamp rejected.
    VerificationFailed { msg: String },
    /// 500, 502, 503, 504, 429: worth another try, after `retry_after_secs` if the server said.
    Transient {
        status: u16,
        msg: String,
        retry_after_secs: Option<u64>,
    },
    /// Anything else: an unknown status, a 200 without a token, a body that is not JSON.
    Protocol { status: u16, problem: ProtocolProblem },
}

/// The ways an answer can fail to be one the spec describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolProblem {
    #[error("HTTP 200 without a RenewalToken in the body")]
    MissingRenewalToken,
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("unexpected HTTP status {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    UnexpectedStatus { status: u16, body: String },
}

impl Answer {
    pub fn http_status(&self) -> u16 {
        match self {
            Answer::Renewed { .. } => 200,
            Answer::NotRenewable { .. } => 206,
            Answer::InvalidParams { .. } => 412,
            Answer::Unauthorized { .. } => 403,
            Answer::VerificationFailed { .. } => 406,
            Answer::Transient { status, .. } | Answer::Protocol { status, .. } => *status,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Answer::Transient { .. })
    }
}

/// Looks a key up in a JSON object ignoring ASCII case (`RenewalToken`, `renewalToken`, …).
pub fn get_ignore_case<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Shortened for messages: a body can be a whole HTML error page.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut short: String = text.chars().take(120).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// Reads an answer: the HTTP status decides, the body adds the message and the token.
pub fn classify(status: u16, retry_after_secs: Option<u64>, body: &[u8]) -> Answer {
    let json: Result<Value, _> = serde_json::from_slice(body);
    let msg = json
        .as_ref()
        .ok()
        .and_then(|value| text_of(get_ignore_case(value, "msg")))
        .unwrap_or_else(|| snippet(body));
    match status {
        200 => match &json {
            Err(error) => Answer::Protocol {
                status,
                problem: ProtocolProblem::NotJson(error.to_string()),
            },
            Ok(value) => {
                match text_of(get_ignore_case(value, "RenewalToken")).filter(|t| !t.trim().is_empty()) {
                    Some(renewal_token) => Answer::Renewed { renewal_token, msg },
                    None => Answer::Protocol {
                        status,
                        problem: ProtocolProblem::MissingRenewalToken,
                    },
                }
            }
        },
        206 => Answer::NotRenewable { msg },
        403 => Answer::Unauthorized { msg },
        406 => Answer::VerificationFailed { msg },
        412 => Answer::InvalidParams { msg },
        429 | 500 | 502 | 503 | 504 => Answer::Transient {
            status,
            msg,
            retry_after_secs,
        },
        _ => Answer::Protocol {
            status,
            problem: ProtocolProblem::UnexpectedStatus {
                status,
                body: snippet(body),
            },
        },
    }
}

/// What the login API answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginFailure {
    #[error("login failed (HTTP 416): {0}; check --user-name")]
    Failed(String),
    #[error("login refused (HTTP 403): {0}; check --agent-id and --user-name")]
    Refused(String),
    #[error("login verification failed (HTTP 406): {0}; check --secret-key and this machine's clock")]
    Verification(String),
    #[error("login: server error (HTTP {status}): {msg}")]
    Server { status: u16, msg: String },
    #[error("login: unexpected answer (HTTP {status}): {detail}")]
    Protocol { status: u16, detail: String },
}

/// Reads a login answer into a Token.
pub fn classify_login(status: u16, body: &[u8]) -> Result<String, LoginFailure> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let msg = json
        .as_ref()
        .and_then(|value| text_of(get_ignore_case(value, "msg")))
        .unwrap_or_else(|| snippet(body));
    match status {
        200 => json
            .as_ref()
            .and_then(|value| text_of(get_ignore_case(value, "Token")))
            .filter(|token| !token.trim().is_empty())
            .ok_or_else(|| LoginFailure::Protocol {
                status,
                detail: format!("no Token in the body: {}", snippet(body)),
            }),
        416 => Err(LoginFailure::Failed(msg)),
        403 => Err(LoginFailure::Refused(msg)),
        406 => Err(LoginFailure::Verification(msg)),
        429 | 500..=599 => Err(LoginFailure::Server { status, msg }),
        _ => Err(LoginFailure::Protocol {
            status,
            detail: snippet(body),
        }),
    }
}

/// Makes sure a base URL ends in `/`, so that endpoint paths join under it.
pub fn normalise_base(mut base: Url) -> Url {
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

/// `{base}DoQuote/SelectInsuranceNew?Token=…&RenewalToken=…`, values percent-encoded.
pub fn quote_url(base: &Url, token: &str, renewal_token: &str) -> String {
    QuotePage::new(base).url(token, renewal_token)
}

/// The quote page of one base URL, joined once: a run builds a URL for every renewed row.
#[derive(Debug, Clone)]
pub struct QuotePage {
    page: String,
}

impl QuotePage {
    pub fn new(base: &Url) -> QuotePage {
        let page = normalise_base(base.clone())
            .join(QUOTE_PATH)
            .expect("a constant relative path joins");
        QuotePage {
            page: page.to_string(),
        }
    }

    /// The page for one renewal; values percent-encoded as a form would encode them.
    pub fn url(&self, token: &str, renewal_token: &str) -> String {
        let mut url = String::with_capacity(self.page.len() + token.len() + renewal_token.len() + 24);
        url.push_str(&self.page);
        url.push_str("?Token=");
        url.extend(url::form_urlencoded::byte_serialize(token.as_bytes()));
        url.push_str("&RenewalToken=");
        url.extend(url::form_urlencoded::byte_serialize(renewal_token.as_bytes()));
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::City;

    fn agent() -> Agent {
        Agent {
            agent_id: "102".into(),
            secret: Secret::new("xxxxx"),
            secret_label: "secretKey".into(),
        }
    }

    #[test]
    fn plate_request_matches_the_spec_body() {
        let lead = Lead {
            plate: Some("京J97896".into()),
            vin: None,
            engine: None,
            city: City::by_id(1).unwrap(),
            warnings: vec![],
        };
        let request = RenewalRequest::signed(&lead, &agent(), "4773EEC3EE9B572851C11DF730DCE827", 11111111);
        let body = serde_json::to_value(&request).unwrap();
        let expected: Value = serde_json::from_str(
            r#"{"LicenseNo":"京J97896","CityCode":"1","AgentId":"102",
            "Token":"4773EEC3EE9B572851C11DF730DCE827","TimeStamp":11111111,
            "secCode":"823e65a376a2cac922b10fe6f2e4b75c"}"#,
        )
        .unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn vin_request_matches_the_spec_body() {
        let lead = Lead {
            plate: None,
            vin: Some("LS4ASE2A2GJ137027".into()),
            engine: Some("2192209".into()),
            city: City::by_id(1).unwrap(),
            warnings: vec![],
        };
        let request = RenewalRequest::signed(&lead, &agent(), "4773EEC3EE9B572851C11DF730DCE827", 11111111);
        let body = serde_json::to_string(&request).unwrap();
        assert!(
            body.contains(r#""TimeStamp":11111111"#),
            "number, not string: {body}"
        );
        assert!(body.contains(r#""CityCode":"1""#), "string, not number: {body}");
        assert!(!body.contains("LicenseNo"), "empty fields are not sent: {body}");
        assert!(!body.contains("xxxxx"), "the secret is never sent");
        assert_eq!(request.sec_code, "f24fb0ce384c195998acec060f22ebdb");
    }

    #[test]
    fn every_status_class() {
        let ok = classify(200, None, br#"{"code":200,"msg":"ok","renewalToken":"RT1"}"#);
        assert_eq!(
            ok,
            Answer::Renewed {
                renewal_token: "RT1".into(),
                msg: "ok".into()
            }
        );
        assert_eq!(
            classify(200, None, br#"{"code":200,"msg":"ok"}"#),
            Answer::Protocol {
                status: 200,
                problem: ProtocolProblem::MissingRenewalToken
            }
        );
        assert!(matches!(
            classify(200, None, b"<html>oops</html>"),
            Answer::Protocol {
                status: 200,
                problem: ProtocolProblem::NotJson(_)
            }
        ));
        assert_eq!(
            classify(206, None, br#"{"msg":"no data"}"#),
            Answer::NotRenewable {
                msg: "no data".into()
            }
        );
        assert!(matches!(classify(403, None, b"{}"), Answer::Unauthorized { .. }));
        assert!(matches!(
            classify(406, None, b""),
            Answer::VerificationFailed { .. }
        ));
        assert!(matches!(classify(412, None, b"bad"), Answer::InvalidParams { msg } if msg == "bad"));
        for status in [429, 500, 502, 503, 504] {
            let answer = classify(status, Some(2), b"");
            assert!(answer.is_retryable(), "{status}");
            assert_eq!(answer.http_status(), status);
        }
        let teapot = classify(418, None, b"teapot");
        assert!(!teapot.is_retryable());
        assert!(matches!(
            teapot,
            Answer::Protocol {
                status: 418,
                problem: ProtocolProblem::UnexpectedStatus { .. }
            }
        ));
    }

    #[test]
    fn login_answers() {
        assert_eq!(
            classify_login(200, br#"{"code":200,"msg":"ok","token":"ABC"}"#),
            Ok("ABC".into())
        );
        assert!(matches!(
            classify_login(416, br#"{"msg":"no such user"}"#),
            Err(LoginFailure::Failed(_))
        ));
        assert!(matches!(classify_login(403, b""), Err(LoginFailure::Refused(_))));
        assert!(matches!(
            classify_login(406, b""),
            Err(LoginFailure::Verification(_))
        ));
        assert!(matches!(
            classify_login(500, b""),
            Err(LoginFailure::Server { .. })
        ));
        assert!(matches!(
            classify_login(200, b"{}"),
            Err(LoginFailure::Protocol { .. })
        ));
    }

    #[test]
    fn login_request_is_signed_in_fixed_order() {
        let request = LoginRequest::signed(&agent(), "clerk", 1489044754, 5000).unwrap();
        assert_eq!(request.agent_id, 102);
        assert_eq!(
            request.sec_code,
            sign::md5_hex("agentId=102&userName=clerk&secretKey=xxxxx&timestamp=1489044754&timeout=5000")
        );
        let body = serde_json::to_string(&request).unwrap();
        assert!(body.contains(r#""agentId":102"#));
    }

    #[test]
    fn quote_url_is_encoded_and_joined() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            quote_url(&base, "TOK EN&", "R/T+1"),
            "http://127.0.0.1:8080/DoQuote/SelectInsuranceNew?Token=TOK+EN%26&RenewalToken=R%2FT%2B1"
        );
        let nested = Url::parse("http://h/api").unwrap();
        assert!(quote_url(&nested, "T", "R").starts_with("http://h/api/DoQuote/"));
    }
}
