//! The renewal and login requests, field for field as the spec spells them, and the API's
//! paths. What the answers mean is [`crate::api::answer`]; the quote page's URL is
//! [`crate::api::quote`].
//!
//! Pure: no I/O and no clock. The HTTP client (`client.rs`) and the sandbox server both
//! build on these types, so the two sides cannot drift apart.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::api::secret::Secret;
use crate::api::sign;
use crate::leads::lead::Lead;

pub use crate::api::answer::{
    Answer, LoginFailure, MESSAGE_MAX_CHARS, ProtocolProblem, RENEWAL_TOKEN_MAX_LEN, SPEC_BODY_CODES,
    classify, classify_login, get_ignore_case, is_renewal_token, too_large,
};
pub use crate::api::quote::{QUOTE_PATH, QuotePage, normalise_base, quote_url};

pub const RENEWAL_PATH: &str = "unite/unitecheckrenewal";
pub const LOGIN_PATH: &str = "unite/login";

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
        let mut city_code = itoa::Buffer::new();
        let city_code = city_code.format(lead.city.id);
        let mut time_stamp = itoa::Buffer::new();
        // Every field but `secCode`, in signing order (`sign::cmp_keys`), so that signing needs
        // no sort. A field that is not sent signs as an empty one does: not at all.
        let fields = [
            ("AgentId", agent.agent_id.as_str()),
            ("CarVin", lead.vin.as_deref().unwrap_or_default()),
            ("CityCode", city_code),
            ("EngineNo", lead.engine.as_deref().unwrap_or_default()),
            ("LicenseNo", lead.plate.as_deref().unwrap_or_default()),
            ("TimeStamp", time_stamp.format(timestamp)),
            ("Token", token),
        ];
        RenewalRequest {
            license_no: lead.plate.clone(),
            car_vin: lead.vin.clone(),
            engine_no: lead.engine.clone(),
            city_code: city_code.to_owned(),
            agent_id: agent.agent_id.clone(),
            token: token.to_owned(),
            time_stamp: timestamp,
            sec_code: sign::renewal_sec_code_sorted(&fields, &agent.secret_label, &agent.secret),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leads::city::City;
    use serde_json::Value;

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

    /// `RenewalRequest::signed` as first written: owned copies, then the generic signature over
    /// `signed_fields` (which `sign`'s tests hold to the reference algorithm).
    fn reference_signed(lead: &Lead, agent: &Agent, token: &str, timestamp: i64) -> RenewalRequest {
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

    #[test]
    fn signed_bodies_are_byte_identical_to_the_reference() {
        let text = |value: &str| Some(value.to_string());
        let vehicles = [
            (text("京J97896"), None, None),
            (None, text("LS4ASE2A2GJ137027"), text("2192209")),
            (
                text("粤B12345"),
                text("LS4ASE2A2GJ137027"),
                text("4G15S 4L9AM4623"),
            ),
            (text(" 京J97896 "), text(""), text("  ")),
            (None, None, None),
        ];
        let agents = [
            ("102", "xxxxx", "secretKey"),
            (" 7 ", " s e c ", "SecretKey"),
            ("", "", "token"),
            ("102", "xxxxx", "AAA"),
            ("102", "xxxxx", "zzz"),
            ("102", "xxxxx", "CityCode"),
            ("102", "xxxxx", ""),
        ];
        let tokens = ["4773EEC3EE9B572851C11DF730DCE827", "  ", "", "a\"quote\\"];
        for (plate, vin, engine) in vehicles {
            for city in [1, 11, 23] {
                let lead = Lead {
                    plate: plate.clone(),
                    vin: vin.clone(),
                    engine: engine.clone(),
                    city: City::by_id(city).unwrap(),
                    warnings: vec![],
                };
                for (agent_id, secret, label) in agents {
                    let agent = Agent {
                        agent_id: agent_id.into(),
                        secret: Secret::new(secret),
                        secret_label: label.into(),
                    };
                    for token in tokens {
                        for timestamp in [11111111, 0, -1, i64::MAX, i64::MIN] {
                            let request = RenewalRequest::signed(&lead, &agent, token, timestamp);
                            let expected = reference_signed(&lead, &agent, token, timestamp);
                            assert_eq!(
                                serde_json::to_vec(&request).unwrap(),
                                serde_json::to_vec(&expected).unwrap()
                            );
                            assert_eq!(request, expected);
                        }
                    }
                }
            }
        }
    }
}
