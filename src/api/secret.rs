//! Secrets that must never leak: the agent's secret key (and, as a courtesy, nothing else).
//!
//! A [`Secret`] can be used for signing through [`Secret::expose`], but its `Debug` and
//! `Display` print a fixed mask, so a secret inside a config struct cannot end up in a log
//! line or an error message by accident.

use std::fmt;

/// A value that is signed with but never sent, logged or printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The raw value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        assert!(!format!("{secret}").contains("s3cr3t"));
        assert_eq!(secret.expose(), "s3cr3t-value");
    }

    #[test]
    fn the_masks_are_fixed_whatever_the_value() {
        for value in ["", "k", "s3cr3t-value"] {
            assert_eq!(format!("{:?}", Secret::new(value)), "Secret(***)");
            assert_eq!(Secret::new(value).to_string(), "***");
        }
    }

    #[test]
    fn a_blank_secret_is_empty_and_a_set_one_is_not() {
        assert!(Secret::new("").is_empty());
        assert!(Secret::new(" \t ").is_empty());
        assert!(!Secret::new("k").is_empty());
        assert!(!Secret::new(" k ").is_empty());
    }
}
