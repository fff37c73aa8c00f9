//! The validated settings of a run: everything the pipeline needs, already parsed and checked.
//!
//! The clap layer (`cli.rs`) holds what was typed; this layer holds built values (a parsed
//! URL, non-zero limits, durations, the secret wrapped). Tests build it directly.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::api::protocol::Agent;
use crate::leads::input::InputOptions;
use crate::results::output::{OutputStyle, OutputTarget};

/// What to do when OUTPUT (or its `.partial`) already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Stop with exit 2 and say how to go on.
    Refuse,
    /// Start over.
    Overwrite,
    /// Keep final rows, redo the rest.
    Resume,
}

/// Retry timing: exponential backoff with jitter between `min` and `max`; a server's
/// `Retry-After` is honoured up to `max_retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(500),
            max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// A run, ready to go.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub input: PathBuf,
    pub output: OutputTarget,
    pub existing: Existing,
    pub base_url: Url,
    pub agent: Agent,
    /// `None` when the tool is to log in first (then `user_name` is set).
    pub token: Option<String>,
    pub user_name: Option<String>,
    /// Encoding, worksheet, default city.
    pub input_options: InputOptions,
    pub output_style: OutputStyle,
    /// Requests per second, every attempt counted.
    pub rate: NonZeroU32,
    pub burst: NonZeroU32,
    /// Requests in flight at most.
    pub concurrency: NonZeroUsize,
    /// Retries after the first attempt, for transient failures.
    pub retries: u32,
    pub timeout: Duration,
    pub backoff: Backoff,
    /// Consecutive 403/406 answers (with no re-login possible) that abort the run.
    pub credential_failure_limit: u32,
    /// The answer history to record final answers in, and to reuse them from.
    pub history: Option<HistorySettings>,
}

/// `--history FILE` and `--reuse-within DURATION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySettings {
    pub path: PathBuf,
    /// Answer a row from the history when its vehicle's latest final answer is at most this
    /// old; `None`: record only, never reuse.
    pub reuse_within: Option<Duration>,
}

impl RunConfig {
    /// Rows that may be between intake and the writer at once: enough for rows waiting out
    /// a backoff not to stall the others, small enough for memory to stay flat.
    pub fn window(&self) -> usize {
        (self.concurrency.get() * 128).clamp(4096, 65_536)
    }
}
