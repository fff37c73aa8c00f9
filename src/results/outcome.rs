//! What became of one row: its [`Status`] and the [`RowOutcome`] written beside it.
//!
//! The statuses are the output contract (`status` column, summary keys, exit codes); this
//! module is the one place that spells them and says which are final.

use std::fmt;

use serde::Serialize;

use crate::api::client::TransportError;
use crate::api::protocol::{Answer, QuotePage};

/// A row's outcome class, as the `status` column spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Renewed,
    NotRenewable,
    InvalidParams,
    InvalidInput,
    Unauthorized,
    VerificationFailed,
    ServerError,
    TransportError,
    ProtocolError,
    /// `--dry-run` only: valid, would be sent.
    Ready,
}

impl Status {
    /// The statuses of a real run, as summaries list them (`ready` is `--dry-run`'s alone).
    pub const ALL: [Status; 9] = [
        Status::Renewed,
        Status::NotRenewable,
        Status::InvalidParams,
        Status::InvalidInput,
        Status::Unauthorized,
        Status::VerificationFailed,
        Status::ServerError,
        Status::TransportError,
        Status::ProtocolError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Renewed => "renewed",
            Status::NotRenewable => "not_renewable",
            Status::InvalidParams => "invalid_params",
            Status::InvalidInput => "invalid_input",
            Status::Unauthorized => "unauthorized",
            Status::VerificationFailed => "verification_failed",
            Status::ServerError => "server_error",
            Status::TransportError => "transport_error",
            Status::ProtocolError => "protocol_error",
            Status::Ready => "ready",
        }
    }

    /// The status in Chinese words, for people (`--zh-headers`' `状态说明` column); the
    /// `status` column keeps the machine value, which programs and `--resume` read.
    pub fn zh_description(self) -> &'static str {
        match self {
            Status::Renewed => "续保成功",
            Status::NotRenewable => "不可续保（无续保信息）",
            Status::InvalidParams => "参数被拒（壁虎不接受）",
            Status::InvalidInput => "输入有误（未发送）",
            Status::Unauthorized => "未授权（Token 失效或无权限，可重试）",
            Status::VerificationFailed => "校验失败（签名或时间，可重试）",
            Status::ServerError => "服务器错误（可重试）",
            Status::TransportError => "网络错误（可重试）",
            Status::ProtocolError => "应答异常（可重试）",
            Status::Ready => "可发送（仅校验）",
        }
    }

    /// Reads a `status` cell: any status this tool writes, `ready` (a `--dry-run` file's)
    /// included.
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .chain([Status::Ready])
            .find(|status| status.as_str() == text.trim())
    }

    /// Final outcomes are kept by `--resume`; the others are worth another run.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Renewed | Status::NotRenewable | Status::InvalidParams | Status::InvalidInput
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result columns of one output row (the input's own columns are written beside them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOutcome {
    pub status: Status,
    pub http_status: Option<u16>,
    pub message: String,
    pub renewal_token: String,
    pub quote_url: String,
    /// Requests sent for this row (0 for rows rejected locally and for copies of a duplicate).
    pub attempts: u32,
    pub warnings: Vec<String>,
    /// When Bihu gave the answer this row carries (Unix ms): just now for a fresh answer, the
    /// recorded time for one reused from the history; `None` when no answer came (rejected
    /// locally, no connection, never sent). Written as ISO 8601 in `answered_at`.
    pub answered_at: Option<i64>,
}

impl Default for RowOutcome {
    fn default() -> Self {
        RowOutcome {
            status: Status::InvalidInput,
            http_status: None,
            message: String::new(),
            renewal_token: String::new(),
            quote_url: String::new(),
            attempts: 0,
            warnings: Vec::new(),
            answered_at: None,
        }
    }
}

impl RowOutcome {
    /// A row rejected before any request.
    pub fn invalid_input(message: String, warnings: Vec<String>) -> RowOutcome {
        RowOutcome {
            status: Status::InvalidInput,
            http_status: None,
            message,
            renewal_token: String::new(),
            quote_url: String::new(),
            attempts: 0,
            warnings,
            answered_at: None,
        }
    }

    /// The outcome of the last attempt's answer, given at `answered_at` (Unix ms); `token` is
    /// the Token it was sent with.
    pub fn from_answer(
        answer: Answer,
        attempts: u32,
        quote_page: &QuotePage,
        token: &str,
        answered_at: i64,
    ) -> RowOutcome {
        let http_status = Some(answer.http_status());
        let (status, message, renewal_token) = match answer {
            Answer::Renewed { renewal_token, msg } => (Status::Renewed, msg, renewal_token),
            Answer::NotRenewable { msg } => (Status::NotRenewable, msg, String::new()),
            Answer::InvalidParams { msg } => (Status::InvalidParams, msg, String::new()),
            Answer::Unauthorized { msg } => (Status::Unauthorized, msg, String::new()),
            Answer::VerificationFailed { msg } => (Status::VerificationFailed, msg, String::new()),
            Answer::Transient { status, msg, .. } => (
                Status::ServerError,
                format!("HTTP {status}: {msg}"),
                String::new(),
            ),
            Answer::Protocol { problem, .. } => (Status::ProtocolError, problem.to_string(), String::new()),
        };
        let quote_url = if renewal_token.is_empty() {
            String::new()
        } else {
            quote_page.url(token, &renewal_token)
        };
        RowOutcome {
            status,
            http_status,
            message,
            renewal_token,
            quote_url,
            attempts,
            warnings: Vec::new(),
            answered_at: Some(answered_at),
        }
    }

    pub fn transport(error: &TransportError, attempts: u32) -> RowOutcome {
        RowOutcome {
            status: Status::TransportError,
            http_status: None,
            message: error.to_string(),
            renewal_token: String::new(),
            quote_url: String::new(),
            attempts,
            warnings: Vec::new(),
            answered_at: None,
        }
    }
}
