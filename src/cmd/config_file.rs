//! The TOML configuration file (`--config FILE`): credentials and run settings for cron jobs
//! that should not put them on a command line visible in `ps`.
//!
//! Precedence is flag > environment > file > default; this module only reads the file and
//! checks who else can read it. The command layer (`cmd/`) merges.

use anyhow::Context;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every setting the file may hold; all optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub base_url: Option<String>,
    #[serde(default, deserialize_with = "text_or_number")]
    pub agent_id: Option<String>,
    pub token: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_label: Option<String>,
    pub user_name: Option<String>,
    /// Fallback city, after the row's own and the plate's prefix: an id or a name.
    #[serde(default, deserialize_with = "text_or_number")]
    pub city_code: Option<String>,
    pub rate: Option<u32>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
    pub retries: Option<u32>,
    /// Seconds per request.
    pub timeout: Option<f64>,
    /// The answer history (`--history`).
    pub history: Option<PathBuf>,
    /// Reuse answers at most this old (`--reuse-within`: `12h`, `7d`).
    pub reuse_within: Option<String>,
    /// `bihu-renew serve`'s own settings.
    pub serve: Option<ServeTable>,
}

/// The `[serve]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeTable {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Upload size limit in MB [default: 100].
    pub max_upload_mb: Option<u64>,
    /// Days after which a finished job's files and row are deleted [default: 30].
    pub retention_days: Option<u64>,
    /// Hours a login lasts [default: 12].
    pub session_hours: Option<u64>,
    /// An upload's reuse window when it gives none (`7d`, or `off`); else the top-level
    /// `reuse_within`; else no reuse.
    pub reuse_within: Option<String>,
    #[serde(default)]
    pub users: Vec<ServeUser>,
}

/// One `[[serve.users]]` entry.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeUser {
    pub name: String,
    /// argon2id in PHC format, from `bihu-renew hash-password`.
    pub password_hash: String,
}

impl std::fmt::Debug for ServeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `agent_id = 102` and `agent_id = "102"` mean the same.
fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(i64),
    }
    Ok(
        Option::<TextOrNumber>::deserialize(deserializer)?.map(|value| match value {
            TextOrNumber::Text(text) => text,
            TextOrNumber::Number(n) => n.to_string(),
        }),
    )
}

impl ConfigFile {
    /// Reads `path`, or an empty configuration when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<ConfigFile> {
        let Some(path) = path else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let config: ConfigFile = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("config {}: {}", path.display(), redacted(&text, &e)))?;
        if let Some(warning) = config.permission_warning(path) {
            eprintln!("bihu-renew: warning: {warning}");
        }
        Ok(config)
    }

    /// A warning when the file holds the secret key and others may read it.
    pub fn permission_warning(&self, path: &Path) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        self.secret_key.as_ref()?;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} holds the secret key but can be read by others (mode {:o}); run: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            )
        })
    }
}

/// The keys the file may hold, which an error may name.
const KEYS: [&str; 12] = [
    "base_url",
    "agent_id",
    "token",
    "secret_key",
    "secret_key_label",
    "user_name",
    "city_code",
    "rate",
    "burst",
    "concurrency",
    "retries",
    "timeout",
];

/// A TOML error told without the file's values: the line number, the key written on that line
/// and what is wrong, with every quoted piece of the message that is not a key name left out.
/// `toml`'s own message shows the offending line, which can be `secret_key = "…` or a token.
fn redacted(text: &str, error: &toml::de::Error) -> String {
    let mut place = String::new();
    if let Some(span) = error.span() {
        let start = span.start.min(text.len());
        let line_number = text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count() + 1;
        place = format!("line {line_number}");
        let line = text.lines().nth(line_number - 1).unwrap_or("");
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty()
                && key.len() <= 40
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                place.push_str(&format!(", key {key}"));
            }
        }
        place.push_str(": ");
    }
    let message = error.message().lines().next().unwrap_or("").trim();
    let mut shown = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"', '\'']) {
        shown.push_str(&rest[..open]);
        let quote = rest[open..].chars().next().expect("found");
        let after = &rest[open + 1..];
        match after.find(quote) {
            Some(close) => {
                let inner = &after[..close];
                if KEYS.contains(&inner) {
                    shown.push_str(&format!("{quote}{inner}{quote}"));
                } else {
                    shown.push_str("(value not shown)");
                }
                rest = &after[close + 1..];
            }
            None => {
                shown.push_str("(value not shown)");
                rest = "";
            }
        }
    }
    shown.push_str(rest);
    format!("{place}{shown} (the file's values are not shown here)")
}

/// Reads a secret from a file (`--secret-key-file`): the first line, trimmed.
pub fn read_secret_file(path: &PathBuf) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read secret key file {}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.is_empty() {
        return Err(anyhow::anyhow!("secret key file {} is empty", path.display()));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_and_numbers_as_text() {
        let config: ConfigFile = toml::from_str(
            r#"
            base_url = "http://127.0.0.1:9/"
            agent_id = 102
            token = "T"
            secret_key = "S"
            user_name = "clerk"
            city_code = "广州"
            rate = 5
            concurrency = 2
            retries = 1
            "#,
        )
        .unwrap();
        assert_eq!(config.agent_id.as_deref(), Some("102"));
        assert_eq!(config.city_code.as_deref(), Some("广州"));
        assert_eq!(config.rate, Some(5));
        assert_eq!(config.burst, None);
    }

    /// Issue 15, case 8: a TOML error never echoes the file's values.
    #[test]
    fn toml_errors_name_the_line_and_key_but_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bihu.toml");
        for (text, line, key) in [
            ("agent_id = 102\nsecretkey = \"SECRET-9f8e7d\"\n", 2, "secretkey"),
            (
                "agent_id = 102\n\nsecret_key = \"SECRET-9f8e7d\n",
                3,
                "secret_key",
            ),
            ("token = SECRET-9f8e7d\n", 1, "token"),
            ("rate = \"SECRET-9f8e7d\"\n", 1, "rate"),
            (
                "secret_key = 'SECRET-9f8e7d'\nsecret_key = 'SECRET-9f8e7d'\n",
                2,
                "secret_key",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let message = ConfigFile::load(Some(&path)).unwrap_err().to_string();
            assert!(!message.contains("9f8e7d"), "{text:?}: {message}");
            assert!(message.contains(&format!("line {line}")), "{text:?}: {message}");
            assert!(message.contains(&format!("key {key}")), "{text:?}: {message}");
            assert!(message.len() < 400, "{message}");
        }
    }

    #[test]
    fn reads_the_serve_table_with_its_users() {
        let config: ConfigFile = toml::from_str(
            r#"
            agent_id = 102
            [serve]
            listen = "0.0.0.0:8080"
            max_upload_mb = 20
            [[serve.users]]
            name = "clerk"
            password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
            "#,
        )
        .unwrap();
        let serve = config.serve.unwrap();
        assert_eq!(serve.listen.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!((serve.max_upload_mb, serve.retention_days), (Some(20), None));
        assert_eq!(serve.users[0].name, "clerk");
        assert!(!format!("{:?}", serve.users[0]).contains("argon2id"));
        assert!(toml::from_str::<ConfigFile>("[serve]\nlisten_on = 1").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<ConfigFile>("secret = \"x\"").is_err());
    }

    #[test]
    fn warns_when_others_can_read_the_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bihu.toml");
        std::fs::write(&path, "secret_key = \"S\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = ConfigFile::load(Some(&path)).unwrap();
        assert!(config.permission_warning(&path).unwrap().contains("chmod 600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(config.permission_warning(&path), None);
        let without_secret = ConfigFile {
            token: Some("T".into()),
            ..ConfigFile::default()
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(without_secret.permission_warning(&path), None);
    }
}
