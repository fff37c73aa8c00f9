//! Why a job was aborted, read from the message the job keeps: the CLI's exit-3 stop when
//! Bihu refused the agent's credentials (a 403 Token, a 406 signature), or anything else the
//! service aborts a job on (its store, its files), which is no fault of the credentials.

/// What stopped an aborted job; it picks the page's title and what the clerk is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortKind {
    /// The circuit breaker tripped on 403s: the Token expired or is not valid.
    Token,
    /// It tripped on 406s only: the signature or the clock.
    Signature,
    /// The service stopped the run itself (see the message).
    Other,
}

impl AbortKind {
    /// The kind of `message`, as `run::breaker` words the stop:
    /// "stopped after N consecutive credential failures (A×403, B×406). …".
    pub fn of(message: &str) -> AbortKind {
        let Some(counts) = message
            .strip_prefix("stopped after ")
            .filter(|rest| rest.contains("consecutive credential failures ("))
            .and_then(|rest| rest.split_once('(')?.1.split_once(')'))
            .map(|(counts, _)| counts)
        else {
            return AbortKind::Other;
        };
        let count = |code: &str| -> u64 {
            counts
                .split(',')
                .map(str::trim)
                .find_map(|part| part.strip_suffix(code)?.strip_suffix('×')?.parse().ok())
                .unwrap_or(0)
        };
        if count("403") > 0 {
            AbortKind::Token
        } else if count("406") > 0 {
            AbortKind::Signature
        } else {
            AbortKind::Other
        }
    }

    /// The page's heading: only a credentials stop blames the credentials.
    pub fn title_key(self) -> &'static str {
        match self {
            AbortKind::Token | AbortKind::Signature => "aborted.title",
            AbortKind::Other => "aborted.title_other",
        }
    }

    /// What to do, in a clerk's words.
    pub fn text_key(self) -> &'static str {
        match self {
            AbortKind::Token => "aborted.403",
            AbortKind::Signature => "aborted.406",
            AbortKind::Other => "aborted.other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::pages::text::Lang;

    #[test]
    fn only_a_credentials_stop_is_titled_as_one() {
        let token =
            AbortKind::of("stopped after 3 consecutive credential failures (3×403, 0×406). HTTP 403: …");
        let signature =
            AbortKind::of("stopped after 3 consecutive credential failures (0×403, 3×406). HTTP 406: …");
        let mixed = AbortKind::of("stopped after 3 consecutive credential failures (1×403, 2×406).");
        let store = AbortKind::of("the job store: disk I/O error");
        let lookalike = AbortKind::of("the results file (3×403, 0×406) cannot be written");
        assert_eq!(
            (token, signature, mixed, store, lookalike),
            (
                AbortKind::Token,
                AbortKind::Signature,
                AbortKind::Token,
                AbortKind::Other,
                AbortKind::Other
            )
        );
        assert_eq!(Lang::Zh.t(token.title_key()), "任务已中止：壁虎拒绝了代理的凭证");
        assert_eq!(
            Lang::Zh.t(signature.title_key()),
            "任务已中止：壁虎拒绝了代理的凭证"
        );
        assert_eq!(Lang::Zh.t(store.title_key()), "任务意外中止");
        assert_eq!(Lang::En.t(store.title_key()), "The job stopped unexpectedly");
        assert!(Lang::Zh.t(store.text_key()).starts_with("这不是代理凭证的问题"));
        assert!(!Lang::Zh.t(store.text_key()).contains("Token"));
        assert!(Lang::Zh.t(token.text_key()).contains("Token 已过期"));
        assert!(Lang::Zh.t(signature.text_key()).contains("密钥"));
    }
}
