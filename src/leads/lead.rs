//! One lead-list row read into a typed [`Lead`], or rejected with reasons a clerk can act on.
//!
//! Owns the plate, VIN and engine-number rules of `RENEWAL_API.md` ("Plates, VINs, engine
//! numbers") and the choice of what to send: the plate when it is an ordinary one, the VIN and
//! engine number when both are valid, all three when all are. Pure: a string in, a value or a
//! reason out.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use md5::{Digest, Md5};

use crate::leads::city::City;

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

/// Separates several reasons (or warnings) inside one cell of the results.
pub const LIST_SEPARATOR: &str = " | ";

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, reason) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str(LIST_SEPARATOR)?;
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
    /// A field longer than [`crate::leads::input::MAX_FIELD_BYTES`].
    FieldTooLong,
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
            ReasonKind::FieldTooLong => "field_too_long",
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

    /// The same 64 bits as [`Lead::dedupe_key`] of a lead with this key (in-process only).
    pub fn dedupe_key(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

/// [`VehicleKey`] borrowed from a [`Lead`]: the same variants and fields in the same order, so
/// it hashes exactly as the owned key does (`&str` hashes as `String`).
#[derive(Hash)]
enum VehicleKeyRef<'a> {
    Plate { plate: &'a str, city: u8 },
    Vin { vin: &'a str, engine: &'a str, city: u8 },
}

impl Lead {
    pub fn key(&self) -> VehicleKey {
        match self.key_ref() {
            VehicleKeyRef::Plate { plate, city } => VehicleKey::Plate {
                plate: plate.to_string(),
                city,
            },
            VehicleKeyRef::Vin { vin, engine, city } => VehicleKey::Vin {
                vin: vin.to_string(),
                engine: engine.to_string(),
                city,
            },
        }
    }

    /// A de-duplication key for in-memory maps and sorts: 64 bits of SipHash over exactly what
    /// [`Lead::key`] holds (plate and city, else VIN, engine number and city, the variant
    /// hashed first so that a plate key never equals a VIN key). Among a million vehicles the
    /// odds that two collide are about 1 in 37 million (n²/2⁶⁵). No allocation, no MD5.
    ///
    /// `DefaultHasher::new()` is deterministic within a process but not promised across Rust
    /// releases, so the key must never be stored or sent: use [`VehicleKey::fingerprint`] for
    /// that.
    pub fn dedupe_key(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.key_ref().hash(&mut hasher);
        hasher.finish()
    }

    /// [`VehicleKey::fingerprint`] of [`Lead::key`], without building the key: the same
    /// digest, fed part by part.
    pub fn fingerprint(&self) -> u128 {
        let mut md5 = Md5::new();
        let mut city = itoa::Buffer::new();
        match self.key_ref() {
            VehicleKeyRef::Plate { plate, city: id } => {
                for part in ["P\u{1}", plate, "\u{1}", city.format(id)] {
                    md5.update(part.as_bytes());
                }
            }
            VehicleKeyRef::Vin {
                vin,
                engine,
                city: id,
            } => {
                for part in ["V\u{1}", vin, "\u{1}", engine, "\u{1}", city.format(id)] {
                    md5.update(part.as_bytes());
                }
            }
        }
        u128::from_be_bytes(md5.finalize().into())
    }

    fn key_ref(&self) -> VehicleKeyRef<'_> {
        match (&self.plate, &self.vin, &self.engine) {
            (Some(plate), _, _) => VehicleKeyRef::Plate {
                plate,
                city: self.city.id,
            },
            (None, Some(vin), Some(engine)) => VehicleKeyRef::Vin {
                vin,
                engine,
                city: self.city.id,
            },
            _ => unreachable!("a Lead always has a plate or a VIN and an engine number"),
        }
    }
}

/// The province characters an ordinary plate starts with.
pub fn is_province(c: char) -> bool {
    matches!(
        c,
        '京' | '津'
            | '沪'
            | '渝'
            | '冀'
            | '豫'
            | '云'
            | '辽'
            | '黑'
            | '湘'
            | '皖'
            | '鲁'
            | '新'
            | '苏'
            | '浙'
            | '赣'
            | '鄂'
            | '桂'
            | '甘'
            | '晋'
            | '蒙'
            | '陕'
            | '吉'
            | '闽'
            | '贵'
            | '粤'
            | '青'
            | '藏'
            | '川'
            | '宁'
            | '琼'
    )
}

/// The marks of special plates (embassy, consulate, police, learner, trailer, Hong Kong, Macau).
fn is_special_mark(c: char) -> bool {
    matches!(c, '使' | '领' | '警' | '学' | '挂' | '港' | '澳')
}

/// Full-width ASCII forms (`Ａ`, `１`, `－`) and the ideographic space to their ASCII twins.
fn to_half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Maps to half width, drops `is_noise`, upper-cases ASCII. One allocation, sized to the
/// input (no mapping lengthens a character's UTF-8: full-width forms shrink from 3 bytes to
/// 1), and runs of characters that stay as they are are copied whole, so that text already
/// normal (most of it) costs one scan and one copy.
#[inline]
fn normalise(text: &str, is_noise: impl Fn(char) -> bool) -> String {
    if text.is_empty() {
        // Most rows lack one of the columns: no call, no scan.
        return String::new();
    }
    let mut normal = String::with_capacity(text.len());
    // Where the run of characters kept as they are starts.
    let mut run_start = 0;
    let mut i = 0;
    while let Some(&byte) = text.as_bytes().get(i) {
        // Most characters are upper-case letters and digits, which stay as they are (no
        // normaliser counts them as noise): one test, no decoding.
        if byte.is_ascii_uppercase() || byte.is_ascii_digit() {
            i += 1;
            continue;
        }
        let c = text[i..].chars().next().expect("`i` is at a character boundary");
        let next = i + c.len_utf8();
        let half = to_half_width(c);
        let upper = half.to_ascii_uppercase();
        // `upper == c` means `half == c` too: a half-width form is ASCII, and `c` is not.
        if upper != c || is_noise(c) {
            normal.push_str(&text[run_start..i]);
            if !is_noise(half) {
                normal.push(upper);
            }
            run_start = next;
        }
        i = next;
    }
    normal.push_str(&text[run_start..]);
    normal
}

/// Strips the noise clerks' lists carry: spaces, `·`, `-`, `.`, full-width forms, lower case.
#[inline]
pub fn normalise_plate(text: &str) -> String {
    normalise(text, |c| {
        c.is_whitespace() || matches!(c, '·' | '•' | '・' | '-' | '.' | '\u{2027}')
    })
}

/// Upper case, no spaces or dashes, half-width.
#[inline]
pub fn normalise_vin(text: &str) -> String {
    normalise(text, |c| c.is_whitespace() || c == '-')
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

/// Why a plate cannot be sent: [`PlateCheck`] without the plate, so that [`validate`] can
/// keep the one copy it has.
enum PlateFault {
    Unsupported(String),
    Invalid(String),
}

/// A plate's letter: upper case, never I or O (read as 1 and 0).
pub fn is_plate_letter(c: char) -> bool {
    c.is_ascii_uppercase() && c != 'I' && c != 'O'
}

/// One of a plate's last five: a plate letter or a digit.
pub fn is_serial_char(c: char) -> bool {
    is_plate_letter(c) || c.is_ascii_digit()
}

/// Checks a normalised plate against the spec's rules.
pub fn check_plate(plate: &str) -> PlateCheck {
    match plate_fault(plate) {
        Ok(()) => PlateCheck::Ordinary(plate.to_string()),
        Err(PlateFault::Unsupported(why)) => PlateCheck::Unsupported {
            plate: plate.to_string(),
            why,
        },
        Err(PlateFault::Invalid(why)) => PlateCheck::Invalid {
            plate: plate.to_string(),
            why,
        },
    }
}

/// The shape that passes every rule of [`plate_fault_by_rules`], seen in one look: a province
/// character, then a plate letter and five serial characters, all ASCII (so no special mark).
fn is_ordinary_plate(plate: &str) -> bool {
    let mut chars = plate.chars();
    let Some(province) = chars.next() else {
        return false;
    };
    let rest = chars.as_str().as_bytes();
    is_province(province)
        && rest.len() == 6
        && is_plate_letter(char::from(rest[0]))
        && rest[1..].iter().all(|b| is_serial_char(char::from(*b)))
}

/// [`check_plate`]'s verdict without a copy of the plate. The ordinary plates of most rows
/// pass [`is_ordinary_plate`] and skip the rules.
fn plate_fault(plate: &str) -> Result<(), PlateFault> {
    if is_ordinary_plate(plate) {
        return Ok(());
    }
    plate_fault_by_rules(plate)
}

/// The spec's rules, in order, on the first 8 characters (the rules look no further: a longer
/// plate is only counted); allocates only for the message of the rule that fails.
fn plate_fault_by_rules(plate: &str) -> Result<(), PlateFault> {
    let mut head = ['\0'; 8];
    let mut n_chars = 0;
    for c in plate.chars() {
        if is_special_mark(c) {
            return Err(PlateFault::Unsupported(format!(
                "plate {plate} is a special plate (marked {c}); the renewal API takes only ordinary 7-character plates"
            )));
        }
        if let Some(slot) = head.get_mut(n_chars) {
            *slot = c;
        }
        n_chars += 1;
    }
    if n_chars == 0 {
        return Err(PlateFault::Invalid("plate is empty".to_string()));
    }
    if !is_province(head[0]) {
        return Err(PlateFault::Invalid(format!(
            "plate {plate} does not start with a province character such as 京, 沪 or 粤; check the first character"
        )));
    }
    if n_chars == 8 {
        let serial = &head[2..];
        let new_energy_shape = is_plate_letter(head[1])
            && serial.iter().all(|c| is_serial_char(*c))
            && (matches!(serial[0], 'D' | 'F') || matches!(serial[5], 'D' | 'F'));
        if new_energy_shape {
            return Err(PlateFault::Unsupported(format!(
                "plate {plate} is a new-energy plate (8 characters); the renewal API takes only ordinary 7-character plates"
            )));
        }
    }
    if n_chars != 7 {
        return Err(PlateFault::Invalid(format!(
            "plate {plate} has {n_chars} characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character"
        )));
    }
    if !is_plate_letter(head[1]) {
        return Err(PlateFault::Invalid(format!(
            "plate {plate}: the second character must be a letter other than I or O, found '{}'",
            head[1]
        )));
    }
    if let Some(bad) = head[2..7].iter().find(|c| !is_serial_char(**c)) {
        let hint = match bad {
            'I' => " (plates use 1, never I)",
            'O' => " (plates use 0, never O)",
            _ => "",
        };
        return Err(PlateFault::Invalid(format!(
            "plate {plate}: the last five characters must be letters or digits without I or O, found '{bad}'{hint}"
        )));
    }
    Ok(())
}

/// The ISO 3779 check digit a VIN's 9th position should carry, or `None` if a character has
/// no value (which [`check_vin`] reports first).
pub fn vin_check_digit(vin: &str) -> Option<char> {
    const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];
    let mut sum = 0;
    // Bytes, not characters: every character with a value is one ASCII byte, and the first
    // byte of any other character has none either.
    for (byte, weight) in vin.bytes().zip(WEIGHTS) {
        let value = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'H' => byte - b'A' + 1,
            b'J'..=b'N' => byte - b'J' + 1,
            b'P' => 7,
            b'R' => 9,
            b'S'..=b'Z' => byte - b'S' + 2,
            _ => return None,
        };
        sum += u32::from(value) * weight;
    }
    Some(match sum % 11 {
        10 => 'X',
        digit => char::from_digit(digit, 10).expect("a remainder below 10 is a digit"),
    })
}

/// A normalised VIN: `Ok((vin, warning))`, or why it cannot be sent.
pub fn check_vin(vin: &str) -> Result<(String, Option<String>), String> {
    vin_fault(vin).map(|warning| (vin.to_string(), warning))
}

/// [`check_vin`] without the copy of the VIN: `Ok(warning)` or why it cannot be sent.
fn vin_fault(vin: &str) -> Result<Option<String>, String> {
    let expected = match vin_check_digit(vin) {
        // 17 bytes that all carry a value are 17 characters that pass every rule below.
        Some(expected) if vin.len() == 17 => expected,
        _ => {
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
            vin_check_digit(vin).expect("characters were checked above")
        }
    };
    // 17 ASCII characters by now, so the 9th is the 9th byte.
    let found = char::from(vin.as_bytes()[8]);
    let warning = (expected != found).then(|| {
        format!(
            "VIN {vin}: check digit (9th character) is '{found}', expected '{expected}'; sent anyway (imported and old vehicles may not follow it), but check for a typo"
        )
    });
    Ok(warning)
}

/// Reads one row. `default_city` is the run's `--city-code`.
///
/// The normalised plate and VIN are built once and moved into the [`Lead`]; the checks only
/// borrow them, and allocate only for the messages of what fails.
pub fn validate(raw: &RawLead<'_>, default_city: Option<City>) -> Result<Lead, Rejection> {
    let mut warnings = Vec::new();
    let mut reasons = Vec::new();

    let plate_text = normalise_plate(raw.plate);
    let plate_check = (!plate_text.is_empty()).then(|| plate_fault(&plate_text));
    let vin_text = normalise_vin(raw.vin);
    let engine = raw.engine.trim();

    // Whether the VIN + engine pair can be sent, and why not (None when neither given).
    let by_vin: Option<Result<(), Reason>> = match (vin_text.is_empty(), engine.is_empty()) {
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
            vin_fault(&vin_text)
                .map(|warning| warnings.extend(warning))
                .map_err(|why| Reason::new(ReasonKind::VinInvalid, why)),
        ),
    };

    // What is sent: the plate, the VIN and engine number, or both.
    let (send_plate, send_vin) = match (plate_check, by_vin) {
        (Some(Ok(())), Some(Ok(()))) => (true, true),
        (Some(Ok(())), Some(Err(why))) => {
            warnings.push(format!("{}; sent by plate only", why.text));
            (true, false)
        }
        (Some(Ok(())), None) => (true, false),
        (Some(Err(PlateFault::Unsupported(why) | PlateFault::Invalid(why))), Some(Ok(()))) => {
            warnings.push(format!("{why}; renewed by VIN and engine number instead"));
            (false, true)
        }
        (Some(Err(PlateFault::Unsupported(why))), by_vin) => {
            reasons.push(Reason::new(
                ReasonKind::PlateUnsupported,
                format!("{why}: add the VIN (CarVin) and engine number (EngineNo) to renew it"),
            ));
            reasons.extend(by_vin.and_then(Result::err));
            (false, false)
        }
        (Some(Err(PlateFault::Invalid(why))), by_vin) => {
            reasons.push(Reason::new(ReasonKind::PlateInvalid, why));
            reasons.extend(by_vin.and_then(Result::err));
            (false, false)
        }
        (None, Some(Ok(()))) => (false, true),
        (None, Some(Err(why))) => {
            reasons.push(why);
            (false, false)
        }
        (None, None) => {
            reasons.push(Reason::new(
                ReasonKind::NoVehicle,
                "no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo)",
            ));
            (false, false)
        }
    };

    let city = resolve_city(raw.city, default_city, &plate_text, &mut warnings, &mut reasons);

    match city {
        Some(city) if reasons.is_empty() => Ok(Lead {
            plate: send_plate.then_some(plate_text),
            vin: send_vin.then_some(vin_text),
            engine: send_vin.then(|| engine.to_string()),
            city,
            warnings,
        }),
        _ => Err(Rejection { reasons, warnings }),
    }
}

/// The row's own value, else the plate's prefix, else the run's default (`--city-code`, a
/// fallback: it never outranks what the plate says); warns when the city and the plate
/// disagree.
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
    } else if let Some(city) = City::from_plate(plate) {
        return Some(city);
    } else if let Some(city) = default_city {
        city
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
    let plate_has_province = plate.chars().next().is_some_and(is_province);
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

    #[test]
    fn several_reasons_print_joined_by_the_separator_and_one_prints_alone() {
        let reason = |text: &str| Reason {
            kind: ReasonKind::PlateInvalid,
            text: text.to_string(),
        };
        let rejection = |texts: &[&str]| Rejection {
            reasons: texts.iter().map(|text| reason(text)).collect(),
            warnings: Vec::new(),
        };
        assert_eq!(rejection(&["a"]).to_string(), "a");
        assert_eq!(rejection(&["a", "b"]).to_string(), "a | b");
        assert_eq!(rejection(&["a", "b", "c"]).to_string(), "a | b | c");
        assert_eq!(rejection(&[]).to_string(), "");
    }

    #[test]
    fn full_width_forms_and_the_ideographic_space_become_ascii() {
        assert_eq!(to_half_width('\u{3000}'), ' ');
        assert_eq!(to_half_width('Ａ'), 'A');
        assert_eq!(to_half_width('１'), '1');
        assert_eq!(to_half_width('－'), '-');
        assert_eq!(to_half_width('京'), '京');
        assert_eq!(to_half_width('\u{FF5F}'), '\u{FF5F}');
    }

    #[test]
    fn normalising_upper_cases_and_drops_noise_each_on_its_own() {
        // Lower case that is not noise is upper-cased; noise that needs no case change
        // (a space, a dash) is dropped: either alone is enough to leave the run as it was.
        assert_eq!(normalise_plate("京a12345"), "京A12345");
        assert_eq!(normalise_plate("京A 12-345"), "京A12345");
        assert_eq!(normalise_plate("京Ａ１２３４５"), "京A12345");
        assert_eq!(normalise_vin("lsvag2180e2100001"), "LSVAG2180E2100001");
        assert_eq!(normalise_vin("LSVAG 2180-E2100001"), "LSVAG2180E2100001");
    }

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

    /// ISO 3779's values of the letters (I, O and Q have none), each alone in the first place
    /// (weight 8) of an otherwise all-zero VIN: the check digit is its value times 8, mod 11
    /// (cargo-mutants: deleting the lone arms of P and R went unseen).
    #[test]
    fn every_letter_has_its_iso_3779_value() {
        let values = [
            ('A', 1),
            ('B', 2),
            ('C', 3),
            ('D', 4),
            ('E', 5),
            ('F', 6),
            ('G', 7),
            ('H', 8),
            ('J', 1),
            ('K', 2),
            ('L', 3),
            ('M', 4),
            ('N', 5),
            ('P', 7),
            ('R', 9),
            ('S', 2),
            ('T', 3),
            ('U', 4),
            ('V', 5),
            ('W', 6),
            ('X', 7),
            ('Y', 8),
            ('Z', 9),
        ];
        for (letter, value) in values {
            let vin = format!("{letter}{}", "0".repeat(16));
            let expected = match value * 8 % 11 {
                10 => 'X',
                digit => char::from_digit(digit, 10).unwrap(),
            };
            assert_eq!(vin_check_digit(&vin), Some(expected), "{letter}");
        }
        for letter in ['I', 'O', 'Q'] {
            assert_eq!(
                vin_check_digit(&format!("{letter}{}", "0".repeat(16))),
                None,
                "{letter}"
            );
        }
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
        // The default is a fallback: the plate's prefix outranks it, the row's city outranks both.
        let shanghai = City::by_id(6);
        let beijing = validate(&raw("京J97896", "", "", ""), shanghai).unwrap();
        assert_eq!((beijing.city.id, beijing.warnings.len()), (1, 0), "{beijing:?}");
        assert_eq!(
            validate(&raw("津A12345", "", "", ""), shanghai).unwrap().city.id,
            3
        );
        let own = validate(&raw("京J97896", "", "", "天津"), shanghai).unwrap();
        assert_eq!(own.city.id, 3);
        assert!(
            own.warnings[0].contains("does not match plate"),
            "{:?}",
            own.warnings
        );
        // A plate of no Bihu city takes the default, with the mismatch as a warning.
        let tibet = validate(&raw("藏A12345", "", "", ""), shanghai).unwrap();
        assert_eq!(tibet.city.id, 6);
        assert!(
            tibet.warnings[0].contains("does not match plate"),
            "{:?}",
            tibet.warnings
        );
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

    #[test]
    fn messages_are_pinned() {
        // Every sentence a clerk can meet here, word for word: plate, VIN, engine number, city;
        // whether the row is sent; its reasons and warnings.
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            bool,
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                "京A1234警",
                "",
                "",
                "1",
                false,
                &[
                    "plate_unsupported: plate 京A1234警 is a special plate (marked 警); the renewal API takes only ordinary 7-character plates: add the VIN (CarVin) and engine number (EngineNo) to renew it",
                ],
            ),
            (
                "AB12345",
                "",
                "",
                "1",
                false,
                &[
                    "plate_invalid: plate AB12345 does not start with a province character such as 京, 沪 or 粤; check the first character",
                ],
            ),
            (
                "粤BD12345",
                "",
                "",
                "",
                false,
                &[
                    "plate_unsupported: plate 粤BD12345 is a new-energy plate (8 characters); the renewal API takes only ordinary 7-character plates: add the VIN (CarVin) and engine number (EngineNo) to renew it",
                ],
            ),
            (
                "京A1234",
                "",
                "",
                "",
                false,
                &[
                    "plate_invalid: plate 京A1234 has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character",
                ],
            ),
            (
                "京I12345",
                "",
                "",
                "",
                false,
                &[
                    "plate_invalid: plate 京I12345: the second character must be a letter other than I or O, found 'I'",
                ],
            ),
            (
                "京AI2345",
                "",
                "",
                "",
                false,
                &[
                    "plate_invalid: plate 京AI2345: the last five characters must be letters or digits without I or O, found 'I' (plates use 1, never I)",
                ],
            ),
            (
                "京A12O45",
                "",
                "",
                "",
                false,
                &[
                    "plate_invalid: plate 京A12O45: the last five characters must be letters or digits without I or O, found 'O' (plates use 0, never O)",
                ],
            ),
            (
                "京A12#45",
                "",
                "",
                "",
                false,
                &[
                    "plate_invalid: plate 京A12#45: the last five characters must be letters or digits without I or O, found '#'",
                ],
            ),
            (
                "",
                "LS4ASE2A2GJ13702",
                "2192209",
                "1",
                false,
                &[
                    "vin_invalid: VIN LS4ASE2A2GJ13702 has 16 characters; a VIN has 17: check for a missing or extra character",
                ],
            ),
            (
                "",
                "LS4ASE2A2GJI37027",
                "2192209",
                "1",
                false,
                &[
                    "vin_invalid: VIN LS4ASE2A2GJI37027 contains 'I', which VINs never use (usually 1 or 0 typed by mistake)",
                ],
            ),
            (
                "",
                "LS4ASE2A2GJ13702#",
                "2192209",
                "1",
                false,
                &["vin_invalid: VIN LS4ASE2A2GJ13702# contains '#'; a VIN has only letters and digits"],
            ),
            (
                "",
                "LS4ASE2A3GJ137027",
                "2192209",
                "1",
                true,
                &[
                    "warning: VIN LS4ASE2A3GJ137027: check digit (9th character) is '3', expected '2'; sent anyway (imported and old vehicles may not follow it), but check for a typo",
                ],
            ),
            (
                "",
                "LS4ASE2A2GJ137027",
                "",
                "1",
                false,
                &[
                    "vin_without_engine: VIN LS4ASE2A2GJ137027 has no engine number; renewal by VIN needs the EngineNo too",
                ],
            ),
            (
                "",
                "",
                "2192209",
                "1",
                false,
                &[
                    "engine_without_vin: engine number 2192209 has no VIN; renewal by engine number needs the CarVin too",
                ],
            ),
            (
                "京J97896",
                "LS4ASE2A2GJ137027",
                "",
                "",
                true,
                &[
                    "warning: VIN LS4ASE2A2GJ137027 has no engine number; renewal by VIN needs the EngineNo too; sent by plate only",
                ],
            ),
            (
                "粤BD12345",
                "LS4ASE2A2GJ137027",
                "2192209",
                "",
                true,
                &[
                    "warning: plate 粤BD12345 is a new-energy plate (8 characters); the renewal API takes only ordinary 7-character plates; renewed by VIN and engine number instead",
                ],
            ),
            (
                "粤B12345",
                "",
                "",
                "1",
                true,
                &[
                    "warning: city 北京 (1) does not match plate 粤B12345 (its main prefix is 京, the plate suggests 深圳 (11)); sent as given, but renewal cannot cross regions",
                ],
            ),
            (
                "粤X12345",
                "",
                "",
                "佛山",
                true,
                &[
                    "warning: city 佛山 (20) does not match plate 粤X12345 (its main prefix is 粤E); sent as given, but renewal cannot cross regions",
                ],
            ),
            (
                "京A1234",
                "",
                "",
                "拉萨",
                false,
                &[
                    "plate_invalid: plate 京A1234 has 6 characters; an ordinary plate has 7 (province, letter, 5 letters or digits): check for a missing or extra character",
                    "city_unknown: city 拉萨 is not a Bihu city: use an id from 1 to 23 or a city name such as 北京 or 广州",
                ],
            ),
            (
                "藏A12345",
                "",
                "",
                "",
                false,
                &[
                    "no_city: no city: the row has no CityCode and plate 藏A12345 is not from a Bihu city's main prefix; add a CityCode column or pass --city-code",
                ],
            ),
            (
                "",
                "",
                "",
                "",
                false,
                &[
                    "no_vehicle: no vehicle: the row has neither a plate (LicenseNo) nor a VIN (CarVin) with an engine number (EngineNo)",
                    "no_city: no city: the row has no CityCode; add a CityCode column or pass --city-code",
                ],
            ),
        ];
        for (plate, vin, engine, city, is_ok, expected) in cases {
            let result = validate(&raw(plate, vin, engine, city), None);
            let lines: Vec<String> = match &result {
                Ok(lead) => lead.warnings.iter().map(|w| format!("warning: {w}")).collect(),
                Err(rejection) => rejection
                    .reasons
                    .iter()
                    .map(|reason| format!("{}: {}", reason.kind.as_str(), reason.text))
                    .chain(rejection.warnings.iter().map(|w| format!("warning: {w}")))
                    .collect(),
            };
            assert_eq!(result.is_ok(), *is_ok, "{plate:?} {vin:?} {engine:?} {city:?}");
            assert_eq!(lines, *expected, "{plate:?} {vin:?} {engine:?} {city:?}");
        }
    }

    /// Normalisation as it was first written: a char pipeline, the oracle for the run-copying one.
    fn normalise_by_chars(text: &str, is_noise: impl Fn(char) -> bool) -> String {
        text.chars()
            .map(to_half_width)
            .filter(|c| !is_noise(*c))
            .map(|c| c.to_ascii_uppercase())
            .collect()
    }

    #[test]
    fn normalisation_matches_the_char_pipeline() {
        let plate_noise =
            |c: char| c.is_whitespace() || matches!(c, '·' | '•' | '・' | '-' | '.' | '\u{2027}');
        let vin_noise = |c: char| c.is_whitespace() || c == '-';
        let inputs = [
            "",
            "京J97896",
            " 京 j·978-96. ",
            "京Ｊ９７８９６",
            "ｊｊ\u{3000}-－.．·•・\u{2027}\u{a0}\u{85}\t",
            "  ",
            "\u{3000}",
            "京ａ１２３４５",
            "ls4ase2a2gj137027",
            " LS4-ASE2A2 GJ137027 ",
            "Ｌｓ４ＡＳＥ２Ａ２ＧＪ１３７０２７",
            "é京ß\u{ff5f}\u{ff00}\u{ff01}\u{ff5e}z",
            "_a_",
        ];
        for input in inputs {
            assert_eq!(
                normalise_plate(input),
                normalise_by_chars(input, plate_noise),
                "{input:?}"
            );
            assert_eq!(
                normalise_vin(input),
                normalise_by_chars(input, vin_noise),
                "{input:?}"
            );
        }
    }

    #[test]
    fn the_ordinary_shortcut_agrees_with_the_rules() {
        let mut plates = Vec::new();
        for province in ["京", "粤", "藏", "使", "A", "Ａ", "é"] {
            for second in ["A", "I", "O", "Z", "1", "a", "学", ""] {
                for serial in [
                    "12345", "D1234", "1234F", "ABCDE", "1234", "123456", "12I45", "12O45", "1234警", "12 45",
                ] {
                    plates.push(format!("{province}{second}{serial}"));
                }
            }
        }
        plates.extend(["".to_string(), "京".to_string(), "京J97896港".to_string()]);
        for plate in &plates {
            assert_eq!(
                is_ordinary_plate(plate),
                plate_fault_by_rules(plate).is_ok(),
                "{plate:?}"
            );
        }
    }

    fn hash_of(key: &VehicleKey) -> u64 {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn dedupe_key_follows_the_vehicle_key() {
        let a = ok(" 京 j·978-96 ", "", "", "");
        let b = ok("京J97896", "", "", "1");
        assert_eq!(
            a.dedupe_key(),
            b.dedupe_key(),
            "the same vehicle written differently"
        );
        assert_ne!(
            a.dedupe_key(),
            ok("京J97896", "", "", "6").dedupe_key(),
            "another city"
        );
        assert_ne!(
            a.dedupe_key(),
            ok("京J97897", "", "", "").dedupe_key(),
            "another plate"
        );
        assert_eq!(a.dedupe_key(), a.key().dedupe_key(), "the owned key hashes alike");

        let by_vin = ok("", " ls4ase2a2gj137027 ", " 2192209 ", "1");
        assert_eq!(
            by_vin.dedupe_key(),
            ok("", "LS4ASE2A2GJ137027", "2192209", "北京").dedupe_key()
        );
        assert_ne!(
            by_vin.dedupe_key(),
            ok("", "LS4ASE2A2GJ137027", "2192208", "1").dedupe_key()
        );
        // A plate sent with a VIN is keyed by the plate alone, as `key` is.
        assert_eq!(
            ok("京J97896", "LS4ASE2A2GJ137027", "2192209", "").dedupe_key(),
            a.dedupe_key()
        );

        // A plate key never equals a VIN key, even over the same text.
        let plate_key = Lead {
            plate: Some("X".into()),
            vin: None,
            engine: None,
            city: City::by_id(1).unwrap(),
            warnings: Vec::new(),
        };
        let vin_key = Lead {
            plate: None,
            vin: Some("X".into()),
            engine: Some(String::new()),
            ..plate_key.clone()
        };
        assert_ne!(plate_key.dedupe_key(), vin_key.dedupe_key());
        // VIN and engine number are hashed apart: moving a character across does not collide.
        let moved = Lead {
            vin: Some("XY".into()),
            engine: Some("Z".into()),
            ..vin_key.clone()
        };
        let moved_back = Lead {
            vin: Some("X".into()),
            engine: Some("YZ".into()),
            ..vin_key.clone()
        };
        assert_ne!(moved.dedupe_key(), moved_back.dedupe_key());

        // Exactly the components of `key`: the borrowed key hashes as the owned one.
        for lead in [&a, &by_vin, &plate_key, &vin_key, &moved] {
            assert_eq!(lead.dedupe_key(), hash_of(&lead.key()));
        }
    }
}
