//! The two `secCode` signatures of the Bihu API, as pure functions.
//!
//! Renewal: the sent fields with non-empty (trimmed) values plus the secret under its label,
//! sorted by key with ASCII case folding, joined `key=value&…`, MD5, lowercase hex.
//! Login: a fixed-order string, not sorted. See `RENEWAL_API.md`, "secCode" and "Login".
//! No clock is read here: the caller passes the timestamp inside the fields.

use md5::{Digest, Md5};

use crate::secret::Secret;

/// The secret's key in the signed string unless an operator changes it.
pub const DEFAULT_SECRET_KEY_LABEL: &str = "secretKey";

/// The string that the renewal `secCode` is the MD5 of. It contains the secret: never log it.
pub fn renewal_signed_string<K: AsRef<str>, V: AsRef<str>>(
    fields: &[(K, V)],
    secret_label: &str,
    secret: &Secret,
) -> String {
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(key, value)| (key.as_ref(), value.as_ref().trim()))
        .filter(|(_, value)| !value.is_empty())
        .collect();
    pairs.push((secret_label, secret.expose().trim()));
    // Case-insensitive order; a stable sort keeps equal-folding keys in their given order.
    pairs.sort_by(|a, b| {
        a.0.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.0.bytes().map(|c| c.to_ascii_lowercase()))
    });
    let mut joined = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            joined.push('&');
        }
        joined.push_str(key);
        joined.push('=');
        joined.push_str(value);
    }
    joined
}

/// The renewal `secCode` over the fields that are sent (without `secCode` itself).
pub fn renewal_sec_code<K: AsRef<str>, V: AsRef<str>>(
    fields: &[(K, V)],
    secret_label: &str,
    secret: &Secret,
) -> String {
    md5_hex(&renewal_signed_string(fields, secret_label, secret))
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
    hex::encode(Md5::digest(text.as_bytes()))
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
}
