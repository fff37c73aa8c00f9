//! One lead-list row read into a typed [`Lead`], or rejected with reasons a clerk can act on.
//!
//! Owns the plate, VIN and engine-number rules of `RENEWAL_API.md` ("Plates, VINs, engine
//! numbers") and the choice of what to send: the plate when it is an ordinary one, the VIN and
//! engine number when both are valid, all three when all are. Pure: a string in, a value or a
//! reason out.

use std::fmt;

use md5::{Digest, Md5};

use crate::city::City;

/// The vehicle columns of one row, as typed (empty where the column is absent or blank).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawLead<'a> {
    pub plate: &'a str,
    pub vin: &'a str,
    pub engine: &'a str,
    pub city: &'a str,
}

/// A row that can be sent: what to send, and what the clerk should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub plate: Option<String>,
    pub vin: Option<String>,
    pub engine: Option<String>,
    pub city: City,
    pub warnings: Vec<String>,
}

/// A row that is not sent: every reason found, and any warnings met on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reasons: Vec<Reason>,
    pub warnings: Vec<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, reason) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str(crate::output::LIST_SEPARATOR)?;
            }
            f.write_str(&reason.text)?;
        }
        Ok(())
    }
}

/// One reason a row is not sent: a kind to count by, and the sentence for the clerk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub kind: ReasonKind,
    pub text: String,
}

/// What kind of problem a [`Reason`] is, for counting (dry-run summary, reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// A new-energy or special plate, with no VIN and engine number to fall back on.
    PlateUnsupported,
    PlateInvalid,
    VinInvalid,
    VinWithoutEngine,
    EngineWithoutVin,
    NoVehicle,
    CityUnknown,
    NoCity,
    /// More or fewer fields than the header.
    RaggedRow,
    /// Bytes that are not text in the file's encoding.
    Undecodable,
}

impl ReasonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::PlateUnsupported => "plate_unsupported",
            ReasonKind::PlateInvalid => "plate_invalid",
            ReasonKind::VinInvalid => "vin_invalid",
            ReasonKind::VinWithoutEngine => "vin_without_engine",
            ReasonKind::EngineWithoutVin => "engine_without_vin",
            ReasonKind::NoVehicle => "no_vehicle",
            ReasonKind::CityUnknown => "city_unknown",
            ReasonKind::NoCity => "no_city",
            ReasonKind::RaggedRow => "ragged_row",
            ReasonKind::Undecodable => "undecodable",
        }
    }
}

impl Reason {
    pub fn new(kind: ReasonKind, text: impl Into<String>) -> Reason {
        Reason {
            kind,
            text: text.into(),
        }
    }
}

/// What identifies a vehicle for de-duplication: the plate when one is sent, else the VIN
/// and engine number; always with the city, since renewal is per city.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VehicleKey {
    Plate { plate: String, city: u8 },
    Vin { vin: String, engine: String, city: u8 },
}

impl VehicleKey {
    /// A 128-bit digest of the key, so that maps over millions of vehicles stay compact.
    pub fn fingerprint(&self) -> u128 {
        let text = match self {
            VehicleKey::Plate { plate, city } => format!("P\u{1}{plate}\u{1}{city}"),
            VehicleKey::Vin { vin, engine, city } => format!("V\u{1}{vin}\u{1}{engine}\u{1}{city}"),
        };
        u128::from_be_bytes(Md5::digest(text.as_bytes()).into())
    }
}

impl Lead {
    pub fn key(&self) -> VehicleKey {
        match (&self.plate, &self.vin, &self.engine) {
            (Some(plate), _, _) => VehicleKey::Plate {
                plate: plate.clone(),
                city: self.city.id,
            },
            (None, Some(vin), Some(engine)) => VehicleKey::Vin {
                vin: vin.clone(),
                engine: engine.clone(),
                city: self.city.id,
            },
            _ => unreachable!("a Lead always has a plate or a VIN and an engine number"),
        }
    }
}

const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";
const SPECIAL_MARKS: &str = "使领警学挂港澳";

/// Full-width ASCII forms (`Ａ`, `１`, `－`) and the ideographic space to their ASCII twins.
fn to_half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Strips the noise clerks' lists carry: spaces, `·`, `-`, `.`, full-width forms, lower case.
pub fn normalise_plate(text: &str) -> String {
    text.chars()
        .map(to_half_width)
        .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '・' | '-' | '.' | '\u{2027}'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Upper case, no spaces or dashes, half-width.
pub fn normalise_vin(text: &str) -> String {
    text.chars()
        .map(to_half_width)
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// What a plate is, for renewal purposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlateCheck {
    /// A 7-character ordinary plate: can be renewed by plate.
    Ordinary(String),
    /// A real plate of a kind the renewal API does not take (new-energy, special).
    Unsupported { plate: String, why: String },
    /// Not a plate as written.
    Invalid { plate: String, why: String },
}

fn is_plate_letter(c: char) -> bool {
    c.is_ascii_uppercase() && c != 'I' && c != 'O'
}

fn is_serial_char(c: char) -> bool {
    is_plate_letter(c) || c.is_ascii_digit()
}

/// Checks a normalised plate against the spec's rules.
pub fn check_plate(plate: &str) -> PlateCheck {
    let chars: Vec<char> = plate.chars().collect();
    let unsupported = |why: String| PlateCheck::Unsupported {
        plate: plate.to_string(),
        why,
    };
    let invalid = |why: String| PlateCheck::Invalid {
        plate: plate.to_string(),
        why,
    };

    if let Some(mark) = chars.iter().find(|c| SPECIAL_MARKS.contains(**c)) {
        return unsupported(format!(
            "plate {plate} is a special plate (marked {mark}); the renewal API takes only ordinary 7-character plates"
        ));
    }
    let Some(&first) = chars.first() else {
        return invalid("plate is empty".to_string());
    };
    if !PROVINCES.contains(first) {
        return invalid(format!(
            "plate {plate} does not start with a province character such as 京, 沪 or 粤; check the first character"
        ));
    }
    if chars.len() == 8 {
        let serial = &chars[2..];
        let new_energy_shape = is_plate_letter(chars[1])
            && serial.iter().all(|c| is_serial_char(*c))
            && (matches!(serial[0], 'D' | 'F') || matches!(serial[5], 'D' | 'F'));
        if new_energy_shape {
            return unsupported(format!(
                "plate {plate} is a new-energy plate (8 characters); the renewal API takes only ordinary 7-character plates"
            ));
        }
    }
    if chars.len() != 7 {
        return invalid(format!(
            "plate {plate} has {} characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character",
            chars.len()
        ));
    }
    if !is_plate_letter(chars[1]) {
        return invalid(format!(
            "plate {plate}: the second character must be a letter other than I or O, found '{}'",
            chars[1]
        ));
    }
    if let Some(bad) = chars[2..].iter().find(|c| !is_serial_char(**c)) {
        let hint = match bad {
            'I' => " (plates use 1, never I)",
            'O' => " (plates use 0, never O)",
            _ => "",
        };
        return invalid(format!(
            "plate {plate}: the last five characters must be letters or digits without I or O, found '{bad}'{hint}"
        ));
    }
    PlateCheck::Ordinary(plate.to_string())
}

/// The ISO 3779 check digit a VIN's 9th position should carry, or `None` if a character has
/// no value (which [`check_vin`] reports first).
pub fn vin_check_digit(vin: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0;
    for (c, weight) in vin.chars().zip(WEIGHTS) {
        let value = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='H' => c as u32 - 'A' as u32 + 1,
            'J'..='N' => c as u32 - 'J' as u32 + 1,
            'P' => 7,
            'R' => 9,
            'S'..='Z' => c as u32 - 'S' as u32 + 2,
            _ => return None,
        };
        sum += value * weight;
    }
    Some(match sum % 11 {
        10 => 'X',
        digit => char::from_digit(digit, 10).expect("a remainder below 10 is a digit"),
    })
}

/// A normalised VIN: `Ok((vin, warning))`, or why it cannot be sent.
pub fn check_vin(vin: &str) -> Result<(String, Option<String>), String> {
    let n_chars = vin.chars().count();
    if n_chars != 17 {
        return Err(format!(
            "VIN {vin} has {n_chars} characters; a VIN has 17: check for a missing or extra character"
        ));
    }
    if let Some(bad) = vin.chars().find(|c| matches!(c, 'I' | 'O' | 'Q')) {
        return Err(format!(
            "VIN {vin} contains '{bad}', which VINs never use (usually 1 or 0 typed by mistake)"
        ));
    }
    if let Some(bad) = vin.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!(
            "VIN {vin} contains '{bad}'; a VIN has only letters and digits"
        ));
    }
    let expected = vin_check_digit(vin).expect("characters were checked above");
    let found = vin.chars().nth(8).expect("17 characters");
    let warning = (expected != found).then(|| {
        format!(
            "VIN {vin}: check digit (9th character) is '{found}', expected '{expected}'; sent anyway (imported and old vehicles may not follow it), but check for a typo"
        )
    });
    Ok((vin.to_string(), warning))
}

/// Reads one row. `default_city` is the run's `--city-code`.
pub fn validate(raw: &RawLead<'_>, default_city: Option<City>) -> Result<Lead, Rejection> {
    let mut warnings = Vec::new();
    let mut reasons = Vec::new();

    let plate_text = normalise_plate(raw.plate);
    let plate_check = (!plate_text.is_empty()).then(|| check_plate(&plate_text));
    let vin_text = normalise_vin(raw.vin);
    let engine = raw.engine.trim();

    // The VIN + engine pair, if it can be sent; otherwise why not (None when neither given).
    let by_vin: Option<Result<(String, String), Reason>> = match (vin_text.is_empty(), engine.is_empty()) {
        (true, true) => None,
        (false, true) => Some(Err(Reason::new(
            ReasonKind::VinWithoutEngine,
            format!("VIN {vin_text} has no engine number; renewal by VIN needs the EngineNo too"),
        ))),
        (true, false) => Some(Err(Reason::new(
            ReasonKind::EngineWithoutVin,
            format!("engine number {engine} has no VIN; renewal by engine number needs the CarVin too"),
        ))),
        (false, false) => Some(
            check_vin(&vin_text)
                .map(|(vin, warning)| {
                    warnings.extend(warning);
                    (vin, engine.to_string())
                })
                .map_err(|why| Reason::new(ReasonKind::VinInvalid, why)),
        ),
    };

    let (plate, vin, engine) = match (plate_check, by_vin) {
        (Some(PlateCheck::Ordinary(plate)), Some(Ok((vin, engine)))) => {
            (Some(plate), Some(vin), Some(engine))
        }
        (Some(PlateCheck::Ordinary(plate)), Some(Err(why))) => {
            warnings.push(format!("{}; sent by plate only", why.text));
            (Some(plate), None, None)
        }
        (Some(PlateCheck::Ordinary(plate)), None) => (Some(plate), None, None),
        (
            Some(PlateCheck::Unsupported { why, .. } | PlateCheck::Invalid { why, .. }),
            Some(Ok((vin, engine))),
        ) => {
            warnings.push(format!("{why}; renewed by VIN and engine number instead"));
            (None, Some(vin), Some(engine))
        }
        (Some(PlateCheck::Unsupported { why, .. }), by_vin) => {
            reasons.push(Reason::new(
                ReasonKind::PlateUnsupported,
                format!("{why}: add the VIN (CarVin) and engine number (EngineNo) to renew it"),
            ));
            reasons.extend(by_vin.and_then(Result::err));
            (None, None, None)
        }
        (Some(PlateCheck::Invalid { why, .. }), by_vin) => {
            reasons.push(Reason::new(ReasonKind::PlateInvalid, why));
            reasons.extend(by_vin.and_then(Result::err));
            (None, None, None)
        }
        (None, Some(Ok((vin, engine)))) => (None, Some(vin), Some(engine)),
        (None, Some(Err(why))) => {
            reasons.push(why);
            (None, None, None)
        }
        (None, None) => {
            reasons.push(Reason::new(
                ReasonKind::NoVehicle,
                "no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo)",
            ));
            (None, None, None)
        }
    };

    let city = resolve_city(raw.city, default_city, &plate_text, &mut warnings, &mut reasons);

    match city {
        Some(city) if reasons.is_empty() => Ok(Lead {
            plate,
            vin,
            engine,
            city,
            warnings,
        }),
        _ => Err(Rejection { reasons, warnings }),
    }
}

/// Row value, else the run's default, else the plate's prefix; warns when the city and the
/// plate disagree.
fn resolve_city(
    row_city: &str,
    default_city: Option<City>,
    plate: &str,
    warnings: &mut Vec<String>,
    reasons: &mut Vec<Reason>,
) -> Option<City> {
    let row_city = row_city.trim();
    let city = if !row_city.is_empty() {
        let Some(city) = City::parse(row_city) else {
            reasons.push(Reason::new(
                ReasonKind::CityUnknown,
                format!(
                    "city {row_city} is not a Bihu city: use an id from 1 to 23 or a city name such as 北京 or 广州"
                ),
            ));
            return None;
        };
        city
    } else if let Some(city) = default_city {
        city
    } else if let Some(city) = City::from_plate(plate) {
        return Some(city);
    } else {
        let plate_part = if plate.is_empty() {
            String::new()
        } else {
            format!(" and plate {plate} is not from a Bihu city's main prefix")
        };
        reasons.push(Reason::new(
            ReasonKind::NoCity,
            format!(
                "no city: the row has no CityCode{plate_part}; add a CityCode column or pass --city-code"
            ),
        ));
        return None;
    };
    let plate_has_province = plate.chars().next().is_some_and(|c| PROVINCES.contains(c));
    if plate_has_province && !city.matches_plate(plate) {
        let suggestion = City::from_plate(plate)
            .map(|other| format!(", the plate suggests {}", other.label()))
            .unwrap_or_default();
        warnings.push(format!(
            "city {} does not match plate {plate} (its main prefix is {}{suggestion}); sent as given, but renewal cannot cross regions",
            city.label(),
            city.plate_prefix
        ));
    }
    Some(city)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(plate: &'a str, vin: &'a str, engine: &'a str, city: &'a str) -> RawLead<'a> {
        RawLead {
            plate,
            vin,
            engine,
            city,
        }
    }

    fn ok(plate: &str, vin: &str, engine: &str, city: &str) -> Lead {
        validate(&raw(plate, vin, engine, city), None).unwrap_or_else(|e| panic!("rejected: {e}"))
    }

    fn rejected(plate: &str, vin: &str, engine: &str, city: &str) -> Rejection {
        validate(&raw(plate, vin, engine, city), None).expect_err("should be rejected")
    }

    #[test]
    fn plate_table() {
        let cases: &[(&str, &str)] = &[
            ("京J97896", "ordinary"),
            (" 京 j·978-96. ", "ordinary"),
            ("京Ｊ９７８９６", "ordinary"),
            ("粤BD12345", "unsupported"),
            ("粤B12345F", "unsupported"),
            ("粤B1234学", "unsupported"),
            ("使123456", "unsupported"),
            ("粤Z1234港", "unsupported"),
            ("京A1234", "invalid"),
            ("京A123456", "invalid"),
            ("京AI2345", "invalid"),
            ("京A12O45", "invalid"),
            ("京I12345", "invalid"),
            ("AB12345", "invalid"),
        ];
        for (input, kind) in cases {
            let got = check_plate(&normalise_plate(input));
            let got_kind = match got {
                PlateCheck::Ordinary(_) => "ordinary",
                PlateCheck::Unsupported { .. } => "unsupported",
                PlateCheck::Invalid { .. } => "invalid",
            };
            assert_eq!(got_kind, *kind, "{input}: {got:?}");
        }
        assert_eq!(normalise_plate(" 京 j·978-96. "), "京J97896");
    }

    #[test]
    fn vin_rules() {
        assert_eq!(vin_check_digit("LS4ASE2A2GJ137027"), Some('2'));
        let (vin, warning) = check_vin("LS4ASE2A2GJ137027").unwrap();
        assert_eq!(vin, "LS4ASE2A2GJ137027");
        assert_eq!(warning, None);
        let (_, warning) = check_vin("LS4ASE2A3GJ137027").unwrap();
        assert!(warning.unwrap().contains("check digit"));
        assert!(
            check_vin("LS4ASE2A2GJ13702")
                .unwrap_err()
                .contains("16 characters")
        );
        assert!(
            check_vin("LS4ASE2A2GJ1370277")
                .unwrap_err()
                .contains("18 characters")
        );
        assert!(check_vin("LS4ASE2A2GJI37027").unwrap_err().contains("'I'"));
        assert!(check_vin("LS4ASE2A2GJO37027").unwrap_err().contains("'O'"));
        assert!(check_vin("LS4ASE2A2GJQ37027").unwrap_err().contains("'Q'"));
        assert_eq!(normalise_vin(" ls4ase2a2gj137027 "), "LS4ASE2A2GJ137027");
    }

    #[test]
    fn ordinary_plate_with_inferred_city() {
        let lead = ok("京J97896", "", "", "");
        assert_eq!(lead.plate.as_deref(), Some("京J97896"));
        assert_eq!(lead.city.id, 1);
        assert!(lead.warnings.is_empty());
        assert_eq!(ok("粤B12345", "", "", "").city.id, 11);
    }

    #[test]
    fn all_three_are_sent_when_all_are_valid() {
        let lead = ok("京J97896", "LS4ASE2A2GJ137027", " 2192209 ", "1");
        assert_eq!(lead.plate.as_deref(), Some("京J97896"));
        assert_eq!(lead.vin.as_deref(), Some("LS4ASE2A2GJ137027"));
        assert_eq!(lead.engine.as_deref(), Some("2192209"));
    }

    #[test]
    fn engine_number_is_only_trimmed() {
        let lead = ok("", "LS4ASE2A2GJ137027", " 4G15S 4L9AM4623 ", "北京");
        assert_eq!(lead.engine.as_deref(), Some("4G15S 4L9AM4623"));
        assert_eq!(lead.plate, None);
    }

    #[test]
    fn new_energy_plate_falls_back_to_vin_with_a_warning() {
        let lead = ok("粤BD12345", "LS4ASE2A2GJ137027", "2192209", "");
        assert_eq!(lead.plate, None);
        assert_eq!(lead.vin.as_deref(), Some("LS4ASE2A2GJ137027"));
        assert_eq!(lead.city.id, 11, "city still inferred from the plate");
        assert!(lead.warnings[0].contains("new-energy"), "{:?}", lead.warnings);
    }

    #[test]
    fn new_energy_plate_alone_is_rejected_with_a_fix() {
        let rejection = rejected("粤BD12345", "", "", "");
        assert!(rejection.to_string().contains("new-energy"));
        assert!(rejection.to_string().contains("add the VIN"));
    }

    #[test]
    fn special_plate_is_rejected() {
        assert!(
            rejected("京A1234警", "", "", "1")
                .to_string()
                .contains("special plate")
        );
    }

    #[test]
    fn bad_check_digit_is_a_warning() {
        let lead = ok("", "LS4ASE2A3GJ137027", "2192209", "1");
        assert!(lead.warnings.iter().any(|w| w.contains("check digit")));
    }

    #[test]
    fn vin_without_engine_and_engine_without_vin() {
        assert!(
            rejected("", "LS4ASE2A2GJ137027", "", "1")
                .to_string()
                .contains("no engine number")
        );
        assert!(rejected("", "", "2192209", "1").to_string().contains("no VIN"));
        let lead = ok("京J97896", "LS4ASE2A2GJ137027", "", "");
        assert_eq!(lead.vin, None);
        assert!(lead.warnings[0].contains("sent by plate only"));
    }

    #[test]
    fn bad_vin_with_good_plate_sends_plate_and_warns() {
        let lead = ok("京J97896", "LS4ASE2A2GJ1370", "2192209", "");
        assert_eq!(lead.vin, None);
        assert!(lead.warnings[0].contains("15 characters"));
    }

    #[test]
    fn empty_row_is_rejected() {
        assert!(rejected("", "", "", "").to_string().contains("no vehicle"));
    }

    #[test]
    fn city_rules() {
        assert_eq!(ok("京J97896", "", "", "北京").city.id, 1);
        assert!(
            rejected("京J97896", "", "", "拉萨")
                .to_string()
                .contains("not a Bihu city")
        );
        assert!(
            rejected("", "LS4ASE2A2GJ137027", "2192209", "")
                .to_string()
                .contains("no city")
        );
        let default = validate(&raw("", "LS4ASE2A2GJ137027", "2192209", ""), City::by_id(6)).unwrap();
        assert_eq!(default.city.id, 6);
        assert!(rejected("藏A12345", "", "", "").to_string().contains("no city"));
    }

    #[test]
    fn city_contradicting_the_plate_is_a_warning() {
        let lead = ok("粤B12345", "", "", "1");
        assert_eq!(lead.city.id, 1);
        assert!(lead.warnings[0].contains("深圳 (11)"), "{:?}", lead.warnings);
        // A second prefix of the same province is also flagged, but still sent.
        let foshan_x = ok("粤X12345", "", "", "佛山");
        assert_eq!(foshan_x.warnings.len(), 1);
    }

    #[test]
    fn duplicate_keys_follow_normalisation() {
        let a = ok("京J97896", "", "", "");
        let b = ok(" 京j-97896", "", "", "1");
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key().fingerprint(), b.key().fingerprint());
        let c = ok("京J97896", "", "", "6");
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn rejection_lists_every_reason() {
        let rejection = rejected("京A1234", "", "", "拉萨");
        let kinds: Vec<ReasonKind> = rejection.reasons.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [ReasonKind::PlateInvalid, ReasonKind::CityUnknown],
            "{rejection:?}"
        );
    }
}
