//! What an answer means for its row: the HTTP status decides, the body adds the message, the
//! `RenewalToken` and on an HTTP 200 its own `code` ([`classify`]); a login answer read into a
//! Token ([`classify_login`]).
//!
//! Pure: no I/O and no clock. The client and the sandbox both read answers through here.

use std::borrow::Cow;

use serde_json::Value;

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
    #[error(
        "HTTP 200 with a RenewalToken that is not one ({0}): a token is letters, digits and -, at most 128 long"
    )]
    BadRenewalToken(String),
    #[error(
        "HTTP 200 without a RenewalToken, and the body's code is {body_code}, which the spec does not have"
    )]
    UnknownBodyCode { body_code: i64 },
    #[error("the answer's body exceeded {mb} MB ({limit} bytes); reading stopped there", mb = .limit >> 20)]
    BodyTooLarge { limit: usize },
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

/// The most of a `msg` kept for the results file, in characters; the rest is cut with a note.
pub const MESSAGE_MAX_CHARS: usize = 500;

/// The longest `RenewalToken` taken as one.
pub const RENEWAL_TOKEN_MAX_LEN: usize = 128;

/// The codes of the spec's table, which a body `code` may name on an HTTP 200 (a gateway that
/// answers 200 for everything).
pub const SPEC_BODY_CODES: [u16; 5] = [206, 403, 406, 412, 500];

/// Whether `token` has a RenewalToken's shape: ASCII letters, digits and `-`, starting with a
/// letter or digit (so that no spreadsheet reads it as a formula), at most
/// [`RENEWAL_TOKEN_MAX_LEN`] long.
pub fn is_renewal_token(token: &str) -> bool {
    token.len() <= RENEWAL_TOKEN_MAX_LEN
        && token.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A message cut to [`MESSAGE_MAX_CHARS`], saying how much was cut.
fn bounded(msg: String) -> String {
    match msg.char_indices().nth(MESSAGE_MAX_CHARS) {
        None => msg,
        Some((end, _)) => format!("{}… ({} more bytes cut)", &msg[..end], msg.len() - end),
    }
}

/// The answer to give when a body passed [`crate::api::body::ANSWER_BODY_LIMIT`].
pub fn too_large(status: u16, limit: usize) -> Answer {
    Answer::Protocol {
        status,
        problem: ProtocolProblem::BodyTooLarge { limit },
    }
}

/// Set once a run has warned that a body `code` overrode HTTP 200.
static BODY_CODE_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reads an answer: the HTTP status decides, the body adds the message and the token. On an
/// HTTP 200 the body's `code` is read too: one of the spec's other codes decides instead (with
/// a warning, once), an unknown one with no token is a protocol error.
pub fn classify(status: u16, retry_after_secs: Option<u64>, body: &[u8]) -> Answer {
    let text = AnswerText::read(body);
    if status == 200
        && let Ok(AnswerText { code: Some(code), .. }) = &text
        && let Ok(code) = u16::try_from(*code)
        && SPEC_BODY_CODES.contains(&code)
    {
        if !BODY_CODE_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "the server answers HTTP 200 with body code {code}: answers are read by their body code (the spec's table) for the rest of this run"
            );
        }
        return by_status(code, retry_after_secs, text, body);
    }
    by_status(status, retry_after_secs, text, body)
}

fn by_status(
    status: u16,
    retry_after_secs: Option<u64>,
    text: Result<AnswerText, serde_json::Error>,
    body: &[u8],
) -> Answer {
    let message = |text: Result<AnswerText, serde_json::Error>| {
        bounded(
            text.ok()
                .and_then(|text| text.msg)
                .unwrap_or_else(|| snippet(body)),
        )
    };
    match status {
        200 => match text {
            Err(error) => Answer::Protocol {
                status,
                problem: ProtocolProblem::NotJson(error.to_string()),
            },
            Ok(AnswerText {
                msg,
                renewal_token,
                code,
            }) => match renewal_token
                .as_ref()
                .map(|token| token.as_deref().map(str::trim))
            {
                Some(Ok(token)) if is_renewal_token(token) => Answer::Renewed {
                    renewal_token: token.to_string(),
                    msg: bounded(msg.unwrap_or_else(|| snippet(body))),
                },
                Some(Ok(token)) if !token.is_empty() => Answer::Protocol {
                    status,
                    problem: ProtocolProblem::BadRenewalToken(snippet(token.as_bytes())),
                },
                Some(Err(shown)) => Answer::Protocol {
                    status,
                    problem: ProtocolProblem::BadRenewalToken(snippet(shown.as_bytes())),
                },
                Some(Ok(_)) | None => Answer::Protocol {
                    status,
                    problem: match code {
                        Some(body_code) if body_code != 200 => ProtocolProblem::UnknownBodyCode { body_code },
                        _ => ProtocolProblem::MissingRenewalToken,
                    },
                },
            },
        },
        206 => Answer::NotRenewable { msg: message(text) },
        403 => Answer::Unauthorized { msg: message(text) },
        406 => Answer::VerificationFailed { msg: message(text) },
        412 => Answer::InvalidParams { msg: message(text) },
        429 | 500 | 502 | 503 | 504 => Answer::Transient {
            status,
            msg: message(text),
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

/// What [`classify`] takes from a body that is JSON: `msg` as text (see [`text_of`]), the
/// `RenewalToken` (see [`token_of`]), `code` as a number (see [`code_of`]).
#[derive(Debug, PartialEq, Eq)]
struct AnswerText {
    msg: Option<String>,
    renewal_token: Option<Result<String, String>>,
    code: Option<i64>,
}

/// A `RenewalToken`: `Ok` when a string, `Err` with the JSON when another value; `None` when
/// absent or null.
fn token_of(value: Option<&Value>) -> Option<Result<String, String>> {
    match value? {
        Value::String(s) => Some(Ok(s.clone())),
        Value::Null => None,
        other => Some(Err(other.to_string())),
    }
}

/// A body `code`: a JSON integer, or a string holding one.
fn code_of(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl AnswerText {
    /// What `get_ignore_case`, `text_of` and `code_of` find in the body parsed into a
    /// [`Value`], and the same error when it is not JSON. Read without building the `Value`
    /// when the body is an object whose `msg` and `RenewalToken` are strings, as every answer
    /// of the spec is.
    fn read(body: &[u8]) -> Result<AnswerText, serde_json::Error> {
        // Checking the whole body once spares `serde_json` a UTF-8 check per string. A body that
        // is not UTF-8 is not JSON either: the `Value` below says so in its own words.
        if let Ok(text) = std::str::from_utf8(body)
            && let Ok(fields) = serde_json::from_str::<answer_body::AnswerBody>(text)
        {
            return Ok(AnswerText {
                msg: fields.msg.value().and_then(|text| text.0).map(Cow::into_owned),
                renewal_token: fields
                    .renewal_token
                    .value()
                    .and_then(|text| text.0)
                    .map(|token| Ok(token.into_owned())),
                code: fields.code.value().and_then(|code| code.0),
            });
        }
        let value: Value = serde_json::from_slice(body)?;
        Ok(AnswerText {
            msg: text_of(get_ignore_case(&value, "msg")),
            renewal_token: token_of(get_ignore_case(&value, "RenewalToken")),
            code: code_of(get_ignore_case(&value, "code")),
        })
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

/// Reads `msg` and `RenewalToken` out of an answer's body without a [`Value`] in between.
///
/// The parse goes through the same `serde_json` reader and the same `deserialize_any` calls as
/// a [`Value`] does, so it accepts no body that a `Value` would refuse, and it resolves the keys
/// as [`get_ignore_case`] does over the `Value`'s map. It refuses what it does not expect in an
/// answer (JSON that is not an object, a `msg` that is a number, `serde_json`'s raw-value
/// marker as a first key); the caller then reads a `Value` instead.
mod answer_body {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    /// The key under which `serde_json` passes a `RawValue` through a map: a `Value` whose first
    /// key this is means something else than an object.
    const RAW_VALUE_KEY: &str = "$serde_json::private::RawValue";

    #[derive(Default)]
    pub struct AnswerBody<'de> {
        pub msg: Found<'de, Text<'de>>,
        pub renewal_token: Found<'de, Text<'de>>,
        pub code: Found<'de, Code>,
    }

    /// One key looked up ignoring ASCII case, resolved as in a `serde_json::Map` (a `BTreeMap`):
    /// of the matching keys the least in byte order, of a repeated key the last value.
    pub struct Found<'de, T>(Option<(Cow<'de, str>, T)>);

    impl<T> Default for Found<'_, T> {
        fn default() -> Self {
            Found(None)
        }
    }

    impl<'de, T> Found<'de, T> {
        fn offer(&mut self, key: Cow<'de, str>, value: T) {
            match &self.0 {
                Some((kept, _)) if *kept < key => {}
                _ => self.0 = Some((key, value)),
            }
        }

        pub fn value(self) -> Option<T> {
            self.0.map(|(_, value)| value)
        }
    }

    /// A string or null (what `text_of` makes of it: `None` for null); any other value fails
    /// the parse.
    pub struct Text<'de>(pub Option<Cow<'de, str>>);

    /// What `code_of` makes of a value: an integer in range, or a string holding one.
    pub struct Code(pub Option<i64>);

    impl<'de> Deserialize<'de> for AnswerBody<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(AnswerBodyVisitor)
        }
    }

    struct AnswerBodyVisitor;

    impl<'de> Visitor<'de> for AnswerBodyVisitor {
        type Value = AnswerBody<'de>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut body = AnswerBody::default();
            let mut first = true;
            while let Some(Key(key)) = map.next_key()? {
                if std::mem::take(&mut first) && key == RAW_VALUE_KEY {
                    return Err(de::Error::custom("a raw value, not an object"));
                }
                if key.eq_ignore_ascii_case("msg") {
                    body.msg.offer(key, map.next_value()?);
                } else if key.eq_ignore_ascii_case("RenewalToken") {
                    body.renewal_token.offer(key, map.next_value()?);
                } else if key.eq_ignore_ascii_case("code") {
                    body.code.offer(key, map.next_value()?);
                } else {
                    map.next_value::<AnyJson>()?;
                }
            }
            Ok(body)
        }
    }

    /// A key as read, borrowed from the body unless it had escapes.
    struct Key<'de>(Cow<'de, str>);

    impl<'de> Deserialize<'de> for Key<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            // `serde_json` reads a key as a string, never as null.
            deserializer
                .deserialize_str(TextVisitor)
                .map(|text| Key(text.unwrap_or_default()))
        }
    }

    impl<'de> Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(TextVisitor).map(Text)
        }
    }

    struct TextVisitor;

    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a string or null")
        }

        fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(text)))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(text.to_owned())))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    impl<'de> Deserialize<'de> for Code {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(CodeVisitor)
        }
    }

    struct CodeVisitor;

    impl<'de> Visitor<'de> for CodeVisitor {
        type Value = Code;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a code")
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(Code(Some(n)))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(Code(i64::try_from(n).ok()))
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Code(None))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(Code(text.trim().parse().ok()))
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Code(None))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Code(None))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            AnyJson.visit_map(map).map(|_| Code(None))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            AnyJson.visit_seq(seq).map(|_| Code(None))
        }
    }

    /// Any JSON value, parsed through as a `Value` would be (numbers in range, strings valid)
    /// but kept nowhere.
    struct AnyJson;

    impl<'de> Deserialize<'de> for AnyJson {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(AnyJson)
        }
    }

    impl<'de> Visitor<'de> for AnyJson {
        type Value = AnyJson;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("any JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut first = true;
            while let Some(Key(key)) = map.next_key()? {
                if std::mem::take(&mut first) && key == RAW_VALUE_KEY {
                    return Err(de::Error::custom("a raw value, not an object"));
                }
                map.next_value::<AnyJson>()?;
            }
            Ok(AnyJson)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<AnyJson>()?.is_some() {}
            Ok(AnyJson)
        }

        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(AnyJson)
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(AnyJson)
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(AnyJson)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(AnyJson)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(AnyJson)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(AnyJson)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The body read over a `serde_json::Value`, as `classify` was first written: the reading
    /// it must keep.
    fn reference_read(body: &[u8]) -> Result<AnswerText, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        Ok(AnswerText {
            msg: text_of(get_ignore_case(&value, "msg")),
            renewal_token: token_of(get_ignore_case(&value, "RenewalToken")),
            code: code_of(get_ignore_case(&value, "code")),
        })
    }

    #[track_caller]
    fn assert_classified_as_the_reference(body: &[u8]) {
        assert_eq!(
            AnswerText::read(body).map_err(|e| e.to_string()),
            reference_read(body),
            "body {:?}",
            String::from_utf8_lossy(body)
        );
    }

    #[test]
    fn classify_reads_odd_bodies_as_the_value_did() {
        let deep = format!("{{\"msg\":\"m\",\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let long_html = format!("<html>{}</html>", "错误".repeat(100));
        let bodies: Vec<&[u8]> = vec![
            r#"{"code":200,"msg":"续保成功","RenewalToken":"xxxx"}"#.as_bytes(),
            br#"{"code":200,"msg":"\u7eed\u4fdd\u6210\u529f","RenewalToken":"0123456789ABCDEF"}"#,
            br#"{"code":200,"msg":"ok","renewalToken":"RT1"}"#,
            br#"{"code":200,"msg":"ok"}"#,
            b" \t\r\n{ \"msg\" : \"spaced\" , \"RenewalToken\" : \" RT \" } \n",
            b"",
            b"   ",
            b"{}",
            b"bad",
            b"<html>oops</html>",
            long_html.as_bytes(),
            // Keys that fold alike: a map sorts them, the least wins; a repeated key keeps its last.
            br#"{"msg":"a","msg":"b","RenewalToken":"1","RenewalToken":"2"}"#,
            br#"{"msg":"lower","MSG":"upper","Msg":"mixed"}"#,
            br#"{"RENEWALTOKEN":"A","renewaltoken":"B","RenewalToken":"C"}"#,
            br#"{"Msg":null,"msg":"x","RenewalToken":"t"}"#,
            br#"{"msg":null,"RenewalToken":null}"#,
            br#"{"msg":"x","msg":null,"RenewalToken":"t"}"#,
            br#"{"msg":null,"msg":"x","RenewalToken":"t"}"#,
            br#"{"RenewalToken":"   ","msg":"blank token"}"#,
            // Values that are not strings: text_of prints them.
            br#"{"msg":5,"RenewalToken":true}"#,
            br#"{"msg":1.5e3,"RenewalToken":-0}"#,
            br#"{"msg":12345678901234567890123,"RenewalToken":18446744073709551615}"#,
            br#"{"msg":[1,"a",null],"RenewalToken":{"b":[]}}"#,
            br#"{"msg":{"a":1},"RenewalToken":"t"}"#,
            br#"{"msg":"fine","MSG":7,"RenewalToken":"t"}"#,
            br#"{"code":1e400,"msg":"out of range","RenewalToken":"t"}"#,
            br#"{"code":-1e-400,"msg":"underflow is fine","RenewalToken":"t"}"#,
            br#"{"data":{"msg":"inner","RenewalToken":"no"},"msg":"outer","RenewalToken":"t"}"#,
            deep.as_bytes(),
            // serde_json's raw-value marker: a Value reads it specially as the first key only.
            br#"{"$serde_json::private::RawValue":"{\"msg\":\"raw\",\"RenewalToken\":\"t\"}"}"#,
            br#"{"$serde_json::private::RawValue":"[1]"}"#,
            br#"{"$serde_json::private::RawValue":5}"#,
            br#"{"$serde_json::private::RawValue":"{}","msg":"more"}"#,
            br#"{"a":1,"$serde_json::private::RawValue":"x","msg":"m","RenewalToken":"t"}"#,
            br#"{"x":[{"$serde_json::private::RawValue":"5"}],"msg":"m","RenewalToken":"t"}"#,
            br#"{"x":{"$serde_json::private::RawValue":"nope"},"msg":"m","RenewalToken":"t"}"#,
            // Escapes, in keys and values.
            br#"{"m\u0073g":"escaped key","Renewal\u0054oken":"t"}"#,
            br#"{"msg":"line\nbreak \"q\" \/ \\ \u00e9 \ud83d\ude00","RenewalToken":"t\tt"}"#,
            br#"{"msg":"\ud800","RenewalToken":"t"}"#,
            br#"{"msg":"\udc00x","RenewalToken":"t"}"#,
            br#"{"msg":"\x","RenewalToken":"t"}"#,
            br#"{"msg":"\u12","RenewalToken":"t"}"#,
            br#"{"code":"\ud800","msg":"lone surrogate elsewhere","RenewalToken":"t"}"#,
            b"{\"msg\":\"raw\ttab\",\"RenewalToken\":\"t\"}",
            b"{\"msg\":\"\xff\",\"RenewalToken\":\"t\"}",
            b"{\"code\":\"\xc3\",\"msg\":\"bad utf-8 elsewhere\",\"RenewalToken\":\"t\"}",
            "\u{feff}{\"msg\":\"bom\",\"RenewalToken\":\"t\"}".as_bytes(),
            // Not one JSON object.
            br#"{"msg":"x","RenewalToken":"t"} x"#,
            br#"{"msg":"x","RenewalToken":"t"}}"#,
            br#"{"msg":"x","RenewalToken":"t",}"#,
            br#"{"msg":"x" "RenewalToken":"t"}"#,
            br#"{"msg":"x","RenewalToken":"t""#,
            br#"{"msg":01,"RenewalToken":"t"}"#,
            br#"{msg:"x"}"#,
            br#"[{"msg":"in an array","RenewalToken":"t"}]"#,
            br#""a string""#,
            b"5",
            b"null",
            b"true",
        ];
        for body in bodies {
            assert_classified_as_the_reference(body);
        }
    }

    /// Bodies put together from pieces of answers, well formed or not, by a fixed-seed generator.
    #[test]
    fn classify_reads_generated_bodies_as_the_value_did() {
        const KEYS: [&str; 10] = [
            "\"msg\"",
            "\"MSG\"",
            "\"Msg\"",
            "\"RenewalToken\"",
            "\"renewaltoken\"",
            "\"RENEWALTOKEN\"",
            "\"code\"",
            "\"m\\u0073g\"",
            "\"$serde_json::private::RawValue\"",
            "\"\"",
        ];
        const VALUES: [&str; 14] = [
            "\"ok\"",
            "\"\\u7eed\\u4fdd\"",
            "null",
            "200",
            "-3.5e2",
            "1e400",
            "[1,{\"a\":null}]",
            "{\"msg\":\"in\"}",
            "\"  \"",
            "true",
            "\"\\ud800\"",
            "\"r\\\"t\"",
            "\"0123456789ABCDEF\"",
            "\"{\\\"msg\\\":\\\"raw\\\"}\"",
        ];
        const SEPARATORS: [&str; 6] = [",", ",", ",", " , ", ",,", ""];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        let mut n_read_short = 0;
        for _ in 0..3000 {
            let mut body = String::from("{");
            for i in 0..next(5) {
                if i > 0 {
                    body.push_str(SEPARATORS[next(SEPARATORS.len())]);
                }
                body.push_str(KEYS[next(KEYS.len())]);
                body.push(':');
                body.push_str(VALUES[next(VALUES.len())]);
            }
            if next(20) > 0 {
                body.push('}');
            }
            assert_classified_as_the_reference(body.as_bytes());
            n_read_short += usize::from(serde_json::from_str::<answer_body::AnswerBody>(&body).is_ok());
        }
        // Both ways of reading are exercised.
        assert!((500..2500).contains(&n_read_short), "{n_read_short}");
    }

    #[test]
    fn answers_of_the_spec_take_the_short_way() {
        for body in [
            r#"{"code":200,"msg":"续保成功","RenewalToken":"xxxx"}"#,
            r#"{"code":206,"msg":"\u7eed\u4fdd\u5931\u8d25"}"#,
            r#"{"code":500,"msg":null,"data":[{"a":1.5}]}"#,
        ] {
            assert!(
                serde_json::from_str::<answer_body::AnswerBody>(body).is_ok(),
                "{body}"
            );
        }
        for body in [r#"{"$serde_json::private::RawValue":"{}"}"#, r#"{"msg":5}"#, "[]"] {
            assert!(
                serde_json::from_str::<answer_body::AnswerBody>(body).is_err(),
                "{body}"
            );
        }
    }

    /// Issue 15, case 6: a 200 whose RenewalToken is not a token's string is no success.
    #[test]
    fn a_malformed_renewal_token_is_a_protocol_error_never_renewed() {
        for body in [
            r#"{"RenewalToken":{"x":"=1+1"}}"#.to_string(),
            r#"{"RenewalToken":["a"]}"#.to_string(),
            r#"{"RenewalToken":12}"#.to_string(),
            r#"{"RenewalToken":"=HYPERLINK(\"http://x\",\"click\")"}"#.to_string(),
            r#"{"RenewalToken":"-abc"}"#.to_string(),
            r#"{"RenewalToken":"ab cd"}"#.to_string(),
            format!(
                r#"{{"RenewalToken":"{}"}}"#,
                "A".repeat(RENEWAL_TOKEN_MAX_LEN + 1)
            ),
        ] {
            let answer = classify(200, None, body.as_bytes());
            assert!(
                matches!(
                    &answer,
                    Answer::Protocol {
                        status: 200,
                        problem: ProtocolProblem::BadRenewalToken(_)
                    }
                ),
                "{body}: {answer:?}"
            );
        }
        let long = "A".repeat(RENEWAL_TOKEN_MAX_LEN);
        assert!(matches!(
            classify(200, None, format!(r#"{{"RenewalToken":" {long} "}}"#).as_bytes()),
            Answer::Renewed { renewal_token, .. } if renewal_token == long
        ));
    }

    /// Pins three details cargo-mutants found untested: an empty token is a missing one, a
    /// `msg` of JSON null falls back to the body, and a short snippet gets no ellipsis while
    /// a long one does.
    #[test]
    fn an_empty_token_is_missing_a_null_msg_shows_the_body_and_snippets_mark_their_cut() {
        assert_eq!(
            classify(200, None, br#"{"RenewalToken":"  ","code":200}"#),
            Answer::Protocol {
                status: 200,
                problem: ProtocolProblem::MissingRenewalToken
            }
        );
        let body = br#"{"msg":null,"RenewalToken":"RT1"}"#;
        assert_eq!(
            classify(200, None, body),
            Answer::Renewed {
                renewal_token: "RT1".into(),
                msg: String::from_utf8_lossy(body).into_owned()
            }
        );
        assert_eq!(snippet(b"  short  "), "short");
        assert_eq!(snippet("续".repeat(120).as_bytes()), "续".repeat(120));
        assert_eq!(
            snippet("续".repeat(121).as_bytes()),
            format!("{}…", "续".repeat(120))
        );
    }

    /// A body `code` written as a string is read as the number.
    #[test]
    fn a_body_code_in_a_string_is_read_as_its_number() {
        assert_eq!(code_of(Some(&serde_json::json!(" 206 "))), Some(206));
        assert_eq!(code_of(Some(&serde_json::json!(206))), Some(206));
        assert_eq!(code_of(Some(&serde_json::json!("x"))), None);
        assert_eq!(code_of(Some(&serde_json::json!(true))), None);
        assert_eq!(code_of(None), None);
    }

    /// Issue 15, case 5: a `msg` of any size is cut in the answer; a body past the cap is a
    /// protocol error.
    #[test]
    fn long_messages_are_cut_and_say_so() {
        let body = format!(r#"{{"msg":"{}","RenewalToken":"RT1"}}"#, "续".repeat(100_000));
        let Answer::Renewed { msg, .. } = classify(200, None, body.as_bytes()) else {
            panic!("renewed");
        };
        assert_eq!(msg.chars().filter(|&c| c == '续').count(), MESSAGE_MAX_CHARS);
        assert!(msg.ends_with(&format!(
            "… ({} more bytes cut)",
            3 * (100_000 - MESSAGE_MAX_CHARS)
        )));
        let Answer::NotRenewable { msg } = classify(206, None, body.as_bytes()) else {
            panic!("206");
        };
        assert!(msg.len() < 2000);
        assert_eq!(
            too_large(200, 1 << 20).to_string_problem(),
            "the answer's body exceeded 1 MB (1048576 bytes); reading stopped there"
        );
    }

    /// The body's `code` on an HTTP 200: the spec's codes decide, others without a token are
    /// protocol errors naming both codes.
    #[test]
    fn a_body_code_on_http_200_is_read() {
        assert_eq!(
            classify(200, None, r#"{"code":206,"msg":"无续保信息"}"#.as_bytes()),
            Answer::NotRenewable {
                msg: "无续保信息".into()
            }
        );
        assert!(matches!(
            classify(200, None, br#"{"code":"403","msg":"token expired"}"#),
            Answer::Unauthorized { .. }
        ));
        assert!(matches!(
            classify(200, None, br#"{"code":406,"msg":"sig"}"#),
            Answer::VerificationFailed { .. }
        ));
        assert!(matches!(
            classify(200, None, br#"{"code":412,"msg":"p"}"#),
            Answer::InvalidParams { .. }
        ));
        assert!(matches!(
            classify(200, Some(2), br#"{"code":500,"msg":"busy"}"#),
            Answer::Transient {
                status: 500,
                retry_after_secs: Some(2),
                ..
            }
        ));
        // Even with a token: the body says it failed.
        assert!(matches!(
            classify(200, None, br#"{"code":206,"msg":"x","RenewalToken":"RT1"}"#),
            Answer::NotRenewable { .. }
        ));
        let unknown = classify(200, None, br#"{"code":999,"msg":"?"}"#);
        assert_eq!(
            unknown,
            Answer::Protocol {
                status: 200,
                problem: ProtocolProblem::UnknownBodyCode { body_code: 999 }
            }
        );
        let shown = unknown.to_string_problem();
        assert!(shown.contains("HTTP 200") && shown.contains("999"), "{shown}");
        // An unknown code with a token, and code 200: the token decides.
        for body in [
            br#"{"code":999,"RenewalToken":"RT1"}"#,
            br#"{"code":200,"RenewalToken":"RT1"}"#,
        ] {
            assert!(matches!(classify(200, None, body), Answer::Renewed { .. }));
        }
        // Another status than 200 is never overridden.
        assert!(matches!(
            classify(206, None, br#"{"code":200,"RenewalToken":"RT1"}"#),
            Answer::NotRenewable { .. }
        ));
    }

    /// A bounded fuzz over the classifier: bodies built from hostile pieces never panic, never
    /// make a `renewed` out of anything but a token-shaped string, and keep messages bounded.
    #[test]
    fn fuzzed_answers_are_bounded_and_never_wrongly_renewed() {
        const PIECES: [&str; 16] = [
            "{",
            "}",
            "\"msg\":",
            "\"RenewalToken\":",
            "\"code\":",
            "\"=1+1\"",
            "\"RT-1\"",
            "200",
            "206",
            "999",
            "{\"x\":1}",
            ",",
            "null",
            "\"\\ud800\"",
            "\"续保\"",
            "[",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        for _ in 0..5000 {
            let mut body = String::new();
            for _ in 0..next(12) {
                body.push_str(PIECES[next(PIECES.len())]);
            }
            if next(10) == 0 {
                body.push_str(&"m".repeat(next(3000)));
            }
            let status = [200, 206, 403, 406, 412, 418, 500][next(7)];
            let answer = classify(status, None, body.as_bytes());
            match &answer {
                Answer::Renewed { renewal_token, msg } => {
                    assert_eq!(status, 200, "{body}");
                    assert!(is_renewal_token(renewal_token), "{body}");
                    assert!(msg.chars().count() <= MESSAGE_MAX_CHARS + 40, "{body}");
                }
                Answer::NotRenewable { msg }
                | Answer::InvalidParams { msg }
                | Answer::Unauthorized { msg }
                | Answer::VerificationFailed { msg }
                | Answer::Transient { msg, .. } => assert!(msg.chars().count() <= MESSAGE_MAX_CHARS + 40),
                Answer::Protocol { problem, .. } => {
                    assert!(problem.to_string().chars().count() < 400, "{body}")
                }
            }
        }
    }

    impl Answer {
        fn to_string_problem(&self) -> String {
            match self {
                Answer::Protocol { problem, .. } => problem.to_string(),
                other => panic!("not a protocol error: {other:?}"),
            }
        }
    }
}
