//! The two `secCode` signatures of the Bihu API, as pure functions.
//!
//! Renewal: the sent fields with non-empty (trimmed) values plus the secret under its label,
//! sorted by key with ASCII case folding, joined `key=value&…`, MD5, lowercase hex.
//! Login: a fixed-order string, not sorted. See `RENEWAL_API.md`, "secCode" and "Login".
//! No clock is read here: the caller passes the timestamp inside the fields.
//!
//! Signing runs once per attempt: the renewal string goes to MD5 piece by piece and is never
//! built, so only the 32 hex digits are allocated.

use std::cmp::Ordering;

use md5::{Digest, Md5};

use crate::api::secret::Secret;

/// The secret's key in the signed string unless an operator changes it.
pub const DEFAULT_SECRET_KEY_LABEL: &str = "secretKey";

/// The order of keys in the signed string: bytes compared after ASCII case folding.
pub fn cmp_keys(a: &str, b: &str) -> Ordering {
    for (x, y) in a.bytes().zip(b.bytes()) {
        match x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
    }
    a.len().cmp(&b.len())
}

/// The string that the renewal `secCode` is the MD5 of. It contains the secret: never log it.
pub fn renewal_signed_string<K: AsRef<str>, V: AsRef<str>>(
    fields: &[(K, V)],
    secret_label: &str,
    secret: &Secret,
) -> String {
    let mut joined = String::new();
    join_signed_pairs(&sorted_fields(fields), secret_label, secret, |piece| {
        joined.push_str(piece)
    });
    joined
}

/// The renewal `secCode` over the fields that are sent (without `secCode` itself).
pub fn renewal_sec_code<K: AsRef<str>, V: AsRef<str>>(
    fields: &[(K, V)],
    secret_label: &str,
    secret: &Secret,
) -> String {
    renewal_sec_code_sorted(&sorted_fields(fields), secret_label, secret)
}

/// [`renewal_sec_code`] for fields whose keys are already in [`cmp_keys`] order, as a request
/// with a fixed set of keys can list them: no sorting, and the signed string goes to MD5 piece
/// by piece instead of being joined first.
pub fn renewal_sec_code_sorted(
    sorted_fields: &[(&str, &str)],
    secret_label: &str,
    secret: &Secret,
) -> String {
    debug_assert!(
        sorted_fields.is_sorted_by(|a, b| cmp_keys(a.0, b.0).is_le()),
        "fields not in signing order"
    );
    let mut md5 = Md5::new();
    join_signed_pairs(sorted_fields, secret_label, secret, |piece| md5.update(piece));
    hex_digest(md5)
}

/// The login `secCode`: MD5 of the fixed-order
/// `agentId=…&userName=…&secretKey=…&timestamp=…&timeout=…`.
pub fn login_sec_code(
    agent_id: &str,
    user_name: &str,
    secret: &Secret,
    timestamp: i64,
    timeout_secs: u64,
) -> String {
    md5_hex(&format!(
        "agentId={agent_id}&userName={user_name}&secretKey={}&timestamp={timestamp}&timeout={timeout_secs}",
        secret.expose()
    ))
}

/// MD5 of the UTF-8 bytes, as 32 lowercase hex digits.
pub fn md5_hex(text: &str) -> String {
    hex_digest(Md5::new_with_prefix(text))
}

fn hex_digest(md5: Md5) -> String {
    let mut digits = [0; 32];
    hex::encode_to_slice(md5.finalize(), &mut digits).expect("16 bytes make 32 hex digits");
    String::from_utf8(digits.to_vec()).expect("hex digits are ASCII")
}

/// The fields as given, in signing order; a stable sort keeps equal-folding keys in their
/// given order.
fn sorted_fields<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> Vec<(&str, &str)> {
    let mut sorted: Vec<(&str, &str)> = fields
        .iter()
        .map(|(key, value)| (key.as_ref(), value.as_ref()))
        .collect();
    sorted.sort_by(|a, b| cmp_keys(a.0, b.0));
    sorted
}

/// Hands out `key=value&key=value…` piece by piece: the sorted fields trimmed, without empty
/// ones, and the secret after every key that does not fold above its label (where a stable sort
/// of the fields followed by the secret would put it).
fn join_signed_pairs(
    sorted_fields: &[(&str, &str)],
    secret_label: &str,
    secret: &Secret,
    mut piece: impl FnMut(&str),
) {
    let mut n_pairs = 0;
    let mut pair = |key: &str, value: &str| {
        if n_pairs > 0 {
            piece("&");
        }
        piece(key);
        piece("=");
        piece(value);
        n_pairs += 1;
    };
    let mut secret = Some(secret.expose().trim());
    for &(key, value) in sorted_fields {
        if let Some(secret) = secret.take_if(|_| cmp_keys(key, secret_label).is_gt()) {
            pair(secret_label, secret);
        }
        let value = value.trim();
        if !value.is_empty() {
            pair(key, value);
        }
    }
    if let Some(secret) = secret {
        pair(secret_label, secret);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new("xxxxx")
    }

    #[test]
    fn spec_vector_vin_and_engine() {
        let fields = [
            ("CarVin", "LS4ASE2A2GJ137027"),
            ("EngineNo", "2192209"),
            ("CityCode", "1"),
            ("AgentId", "102"),
            ("Token", "4773EEC3EE9B572851C11DF730DCE827"),
            ("TimeStamp", "11111111"),
        ];
        assert_eq!(
            renewal_signed_string(&fields, DEFAULT_SECRET_KEY_LABEL, &secret()),
            "AgentId=102&CarVin=LS4ASE2A2GJ137027&CityCode=1&EngineNo=2192209&secretKey=xxxxx&TimeStamp=11111111&Token=4773EEC3EE9B572851C11DF730DCE827"
        );
        assert_eq!(
            renewal_sec_code(&fields, DEFAULT_SECRET_KEY_LABEL, &secret()),
            "f24fb0ce384c195998acec060f22ebdb"
        );
    }

    #[test]
    fn spec_vector_plate() {
        let fields = [
            ("LicenseNo", "京J97896"),
            ("CityCode", "1"),
            ("AgentId", "102"),
            ("Token", "4773EEC3EE9B572851C11DF730DCE827"),
            ("TimeStamp", "11111111"),
        ];
        assert_eq!(
            renewal_signed_string(&fields, DEFAULT_SECRET_KEY_LABEL, &secret()),
            "AgentId=102&CityCode=1&LicenseNo=京J97896&secretKey=xxxxx&TimeStamp=11111111&Token=4773EEC3EE9B572851C11DF730DCE827"
        );
        assert_eq!(
            renewal_sec_code(&fields, DEFAULT_SECRET_KEY_LABEL, &secret()),
            "823e65a376a2cac922b10fe6f2e4b75c"
        );
    }

    #[test]
    fn empty_values_are_left_out_and_values_trimmed() {
        let with_noise = [
            ("LicenseNo", " 京J97896 "),
            ("CarVin", "  "),
            ("CityCode", "1"),
            ("AgentId", "102"),
            ("Token", "4773EEC3EE9B572851C11DF730DCE827"),
            ("TimeStamp", "11111111"),
        ];
        assert_eq!(
            renewal_sec_code(&with_noise, DEFAULT_SECRET_KEY_LABEL, &secret()),
            "823e65a376a2cac922b10fe6f2e4b75c"
        );
    }

    #[test]
    fn secret_label_changes_the_hash_but_not_the_order() {
        let fields = [("AgentId", "102"), ("TimeStamp", "1")];
        let upper = renewal_signed_string(&fields, "SecretKey", &secret());
        assert_eq!(upper, "AgentId=102&SecretKey=xxxxx&TimeStamp=1");
        assert_ne!(
            renewal_sec_code(&fields, "SecretKey", &secret()),
            renewal_sec_code(&fields, DEFAULT_SECRET_KEY_LABEL, &secret())
        );
    }

    #[test]
    fn login_string_is_fixed_order() {
        let expected =
            md5_hex("agentId=102&userName=clerk&secretKey=xxxxx&timestamp=1489044754&timeout=5000");
        assert_eq!(
            login_sec_code("102", "clerk", &secret(), 1489044754, 5000),
            expected
        );
        assert_eq!(expected.len(), 32);
    }

    /// The signed string as first written: trim, drop empties, add the secret, stable-sort
    /// the lot by folded key, join. The faster paths must agree with it.
    fn reference_signed_string(fields: &[(&str, &str)], secret_label: &str, secret: &Secret) -> String {
        let mut pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(key, value)| (*key, value.trim()))
            .filter(|(_, value)| !value.is_empty())
            .collect();
        pairs.push((secret_label, secret.expose().trim()));
        pairs.sort_by(|a, b| {
            a.0.bytes()
                .map(|c| c.to_ascii_lowercase())
                .cmp(b.0.bytes().map(|c| c.to_ascii_lowercase()))
        });
        let joined: Vec<String> = pairs
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        joined.join("&")
    }

    #[test]
    fn every_path_signs_as_the_reference_does() {
        let field_sets: [&[(&str, &str)]; 6] = [
            &[
                ("LicenseNo", " 京J97896 "),
                ("CarVin", "LS4ASE2A2GJ137027"),
                ("EngineNo", "4G15S 4L9AM4623"),
                ("CityCode", "1"),
                ("AgentId", "102"),
                ("Token", "4773EEC3EE9B572851C11DF730DCE827"),
                ("TimeStamp", "-1"),
            ],
            &[
                ("CarVin", ""),
                ("CityCode", "23"),
                ("Token", "   "),
                ("TimeStamp", "0"),
            ],
            &[],
            // Keys that fold alike keep their given order, and the secret comes after them.
            &[
                ("token", "b"),
                ("Token", "a"),
                ("TOKEN", "c"),
                ("secretkey", "d"),
                ("SECRETKEY", "e"),
            ],
            &[
                ("Extra", "5"),
                ("AgentId", "\t102\n"),
                ("zeta", "z"),
                ("_under", "u"),
                ("[", "x"),
            ],
            &[
                ("a", "1"),
                ("A", "2"),
                ("ab", "3"),
                ("Aa", "4"),
                ("", "empty key"),
            ],
        ];
        let labels = [
            "secretKey",
            "SecretKey",
            "SECRETKEY",
            "token",
            "Token",
            "a",
            "",
            "zzz",
            "_",
            "AgentId",
        ];
        let secrets = [Secret::new("xxxxx"), Secret::new(" padded "), Secret::new("")];
        for fields in field_sets {
            let mut sorted = fields.to_vec();
            sorted.sort_by(|a, b| cmp_keys(a.0, b.0));
            for label in labels {
                for secret in &secrets {
                    let expected = reference_signed_string(fields, label, secret);
                    assert_eq!(renewal_signed_string(fields, label, secret), expected);
                    let expected = md5_hex(&expected);
                    assert_eq!(
                        renewal_sec_code(fields, label, secret),
                        expected,
                        "{fields:?} {label}"
                    );
                    assert_eq!(renewal_sec_code_sorted(&sorted, label, secret), expected);
                }
            }
        }
    }

    #[test]
    fn md5_hex_is_lowercase_hex() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            md5_hex("The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
    }
}
