//! The sandbox's checks of a renewal or login body, in the order the spec implies: shape and
//! types (412), agent and Token (403), clock and signature (406), values (412). Pure: the
//! body, the config, the clock and the token table come in as arguments, so unit tests run
//! them with the spec's vectors.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::SandboxConfig;
use super::state::TokenStatus;
use crate::api::sign;
use crate::leads::city::City;
use crate::leads::lead::{PlateCheck, check_plate, check_vin, normalise_plate, normalise_vin};

/// Why a request is refused: the HTTP status and the `msg`, Chinese first as Bihu writes it,
/// then what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) msg: String,
}

impl Refusal {
    pub(super) fn invalid(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 412,
            msg: format!("参数校验失败 / {detail}"),
        }
    }

    pub(super) fn unauthorized(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 403,
            msg: format!("未授权 / {detail}"),
        }
    }

    pub(super) fn verification(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 406,
            msg: format!("校验失败 / {detail}"),
        }
    }

    pub(super) fn login_failed(detail: impl fmt::Display) -> Refusal {
        Refusal {
            status: 416,
            msg: format!("登录失败 / {detail}"),
        }
    }
}

/// A renewal request that passed every check: the vehicle, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Vehicle {
    pub(super) license_no: Option<String>,
    pub(super) car_vin: Option<String>,
    pub(super) engine_no: Option<String>,
    pub(super) city: City,
}

pub(super) fn json_kind(value: &Value) -> &'static str {
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
pub(super) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Refusal> {
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
pub(super) struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    pub(super) fn missing(&self, key: &str) -> Refusal {
        match self.0.keys().find(|found| found.eq_ignore_ascii_case(key)) {
            Some(found) => Refusal::invalid(format!(
                "{key} is missing (found {found}: field names are case-sensitive)"
            )),
            None => Refusal::invalid(format!("{key} is missing")),
        }
    }

    /// A required string, non-empty after trimming; returned as sent.
    pub(super) fn string(&self, key: &str) -> Result<&'a str, Refusal> {
        self.optional_string(key)?.ok_or_else(|| match self.0.get(key) {
            Some(_) => Refusal::invalid(format!("{key} is empty")),
            None => self.missing(key),
        })
    }

    /// A string if present and non-empty after trimming (the spec leaves empty fields out,
    /// so an empty one counts as absent); another JSON type is refused.
    pub(super) fn optional_string(&self, key: &str) -> Result<Option<&'a str>, Refusal> {
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
    pub(super) fn integer(&self, key: &str) -> Result<i64, Refusal> {
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
pub(super) fn received_signed_fields(object: &Map<String, Value>) -> Vec<(&str, String)> {
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
pub(super) fn renewal_signature_matches(
    object: &Map<String, Value>,
    sec_code: &str,
    config: &SandboxConfig,
) -> bool {
    let expected = sign::renewal_sec_code(
        &received_signed_fields(object),
        &config.secret_label,
        &config.secret,
    );
    expected.eq_ignore_ascii_case(sec_code.trim())
}

/// 406 when `timestamp` is further than the allowed skew from `now_unix`.
pub(super) fn check_clock(
    timestamp: i64,
    now_unix: i64,
    config: &SandboxConfig,
    key: &str,
) -> Result<(), Refusal> {
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
pub(super) fn parse_city_code(text: &str) -> Option<City> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u8>().ok().and_then(City::by_id)
}

/// Checks a renewal body in the documented order: shape and types (412), agent and Token
/// (403), clock and signature (406), values (412).
pub(super) fn check_renewal(
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
pub(super) fn check_login(config: &SandboxConfig, body: &[u8], now_unix: i64) -> Result<Duration, Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::secret::Secret;
    use crate::sandbox::SPEC_PLATE_BODY;
    use serde_json::json;

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
}
