//! The short fuzz target of issue 15: property tests over the lead reader and the answer
//! classifier, for a bounded number of cases from a fixed seed (no persistence file), so the
//! suite stays fast and every run tries the same inputs. A failure prints the shrunk input.

use std::io::Write;

use bihu_renew::api::answer::{Answer, MESSAGE_MAX_CHARS, classify, is_renewal_token};
use bihu_renew::leads::input::{InputOptions, LeadReader};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::{Map, Value, json};

/// 128 cases a property, the same ones every run.
fn config() -> Config {
    Config {
        cases: 128,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(15),
        ..Config::default()
    }
}

/// The most a message the reader or the classifier produces may be, in characters.
const MESSAGE_BOUND: usize = 4096;

/// Reads a whole file: the rows' count and their row numbers, or the refusal's message.
fn read_all(bytes: &[u8]) -> Result<Vec<u64>, String> {
    let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    let mut reader = LeadReader::open(file.path(), &InputOptions::default()).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    while let Some(row) = reader.next_row() {
        let row = row.map_err(|e| e.to_string())?;
        if let Err(rejection) = &row.lead {
            assert!(!rejection.to_string().trim().is_empty(), "a rejection says why");
            assert!(
                rejection.to_string().chars().count() <= MESSAGE_BOUND,
                "{rejection}"
            );
        }
        rows.push(row.row);
    }
    Ok(rows)
}

/// A CSV field as a clerk's file may hold it: a plate, a number, text with Chinese, quoted
/// text with commas, doubled quotes or a line break, or nothing.
fn field() -> impl Strategy<Value = String> {
    let quoted =
        |pattern: &'static str| pattern.prop_map(|text| format!("\"{}\"", text.replace('"', "\"\"")));
    prop_oneof![
        3 => "[京沪粤][A-Z][0-9]{5}",
        3 => "[0-9]{1,3}",
        3 => "[a-zA-Z0-9 张三·-]{0,12}",
        3 => quoted("[a-zA-Z0-9 ,\"张三]{0,12}"),
        1 => quoted("[a-z ,]{0,8}\n[a-z ]{0,8}"),
        2 => Just(String::new()),
    ]
}

/// A data row: mostly three fields as the header has, sometimes fewer or more (ragged). Its
/// first field is never empty, so that no row is a blank line (which holds no record).
fn row() -> impl Strategy<Value = Vec<String>> {
    (
        "[京沪][A-Z][0-9]{5}|x|\"\"\"\"",
        prop::collection::vec(field(), 0..=3),
    )
        .prop_map(|(first, rest)| {
            let mut row = vec![first];
            row.extend(rest);
            row
        })
}

/// Pieces of text-like files: separators, quotes, line ends, a BOM, Chinese, plates; with
/// `mixed`, also Chinese in GBK and a byte that is neither.
fn text_piece(mixed: bool) -> impl Strategy<Value = Vec<u8>> {
    let mut pieces: Vec<&'static [u8]> = vec![
        b"a",
        b"1",
        b",",
        b";",
        b"\t",
        b" ",
        b"\"",
        b"\"\"",
        b"\n",
        b"\r\n",
        b"\r",
        "\u{feff}".as_bytes(),
        "京A12345".as_bytes(),
        "张三".as_bytes(),
        b"=1+1",
    ];
    if mixed {
        pieces.extend([b"\xd5\xc5\xc8\xfd".as_slice(), b"\xff"]);
    }
    prop::sample::select(pieces).prop_map(<[u8]>::to_vec)
}

/// An HTTP status: the spec's, the transient ones, or any.
fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        2 => Just(200u16),
        2 => prop::sample::select(vec![200u16, 206, 403, 406, 412, 429, 500, 502, 503, 504]),
        1 => any::<u16>(),
    ]
}

/// A JSON value of any kind, small.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|x| json!(x)),
        ".{0,40}".prop_map(Value::String),
        "[A-Za-z0-9-]{1,140}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A RenewalToken's value: mostly strings, some of a token's shape and some nearly so.
fn token_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => "[A-F0-9]{32}".prop_map(Value::String),
        1 => "[A-Za-z0-9-]{0,140}".prop_map(Value::String),
        1 => "[=+@ -]?[A-Za-z0-9 ]{1,20}[\t\r\n]?".prop_map(Value::String),
        1 => json_value(),
    ]
}

/// An answer body as Bihu, a gateway or a broken proxy might send: an object with some of
/// `code`, `msg` and a RenewalToken (its key in any case, its value of any JSON kind).
fn answer_body() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        2 => prop::sample::select(vec![200i64, 206, 403, 406, 412, 500, 999, -1]).prop_map(|n| json!(n)),
        1 => "[0-9]{1,4}".prop_map(Value::String),
        1 => json_value(),
    ];
    let token_key = prop::sample::select(vec![
        "RenewalToken",
        "renewalToken",
        "RENEWALTOKEN",
        "Renewal_Token",
    ]);
    (
        prop::option::of(code),
        prop::option::of(".{0,700}"),
        prop::option::of((token_key, token_value())),
    )
        .prop_map(|(code, msg, token)| {
            let mut object = Map::new();
            if let Some(code) = code {
                object.insert("code".into(), code);
            }
            if let Some(msg) = msg {
                object.insert("msg".into(), Value::String(msg));
            }
            if let Some((key, value)) = token {
                object.insert(key.into(), value);
            }
            Value::Object(object).to_string().into_bytes()
        })
}

/// The text an answer carries into the results file: its message, or its problem.
fn answer_text(answer: &Answer) -> String {
    match answer {
        Answer::Renewed { msg, .. }
        | Answer::NotRenewable { msg }
        | Answer::InvalidParams { msg }
        | Answer::Unauthorized { msg }
        | Answer::VerificationFailed { msg }
        | Answer::Transient { msg, .. } => msg.clone(),
        Answer::Protocol { problem, .. } => problem.to_string(),
    }
}

#[track_caller]
fn check_answer(status: u16, body: &[u8]) {
    let answer = classify(status, None, body);
    if let Answer::Renewed { renewal_token, .. } = &answer {
        assert_eq!(status, 200, "renewed without HTTP 200: {answer:?}");
        assert!(is_renewal_token(renewal_token), "renewed with {renewal_token:?}");
        assert!(!renewal_token.is_empty());
    }
    let text = answer_text(&answer);
    assert!(
        text.chars().count() <= MESSAGE_MAX_CHARS + 64,
        "{} characters",
        text.chars().count()
    );
}

proptest! {
    #![proptest_config(config())]

    /// Any bytes at all: the reader refuses the file with a bounded message, or reads it, never
    /// more rows than the file has lines, numbered 1, 2, 3, …
    #[test]
    fn the_lead_reader_survives_any_bytes(
        header in prop::sample::select(vec!["车牌号\n", "LicenseNo,CityCode\n", "plate;city\n", ""]),
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..2048),
            prop::collection::vec(text_piece(false), 0..400).prop_map(|pieces| pieces.concat()),
            prop::collection::vec(text_piece(true), 0..400).prop_map(|pieces| pieces.concat()),
        ],
    ) {
        let mut file = header.as_bytes().to_vec();
        file.extend_from_slice(&bytes);
        match read_all(&file) {
            Err(message) => prop_assert!(message.chars().count() <= MESSAGE_BOUND, "{message}"),
            Ok(rows) => {
                let n_lines = file.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
                prop_assert!(rows.len() <= n_lines, "{} rows from {n_lines} lines", rows.len());
                prop_assert!(rows.iter().copied().eq(1..=rows.len() as u64), "{rows:?}");
            }
        }
    }

    /// CSV as clerks' files hold it: every record is a row of the output (bad ones as
    /// rejections, none lost), or the whole file is refused, saying why.
    #[test]
    fn the_lead_reader_loses_no_record(rows in prop::collection::vec(row(), 0..40)) {
        let mut text = String::from("车牌号,城市,备注\n");
        for row in &rows {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        match read_all(text.as_bytes()) {
            Err(message) => {
                prop_assert!(message.chars().count() <= MESSAGE_BOUND, "{message}");
                // Only a quoted line break can make a list of these rows unreadable.
                prop_assert!(message.contains("quote") || rows.is_empty(), "{message}\n{text}");
            }
            Ok(read) => prop_assert_eq!(read.len(), rows.len(), "{}", text),
        }
    }

    /// Any status and any bytes: the classifier answers, never `renewed` without HTTP 200
    /// and a well-formed token, and its text stays bounded.
    #[test]
    fn the_classifier_survives_any_bytes(
        status in status(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        check_answer(status, &body);
    }

    /// JSON answers of every shape: the same.
    #[test]
    fn the_classifier_is_never_fooled_into_renewed(status in status(), body in answer_body()) {
        check_answer(status, &body);
    }
}
