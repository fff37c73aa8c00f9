//! The fatal errors of a command and the exit codes, defined in one place.
//!
//! What befalls one row is never an [`Error`]: it is an output row with a status
//! (`outcome.rs`). An `Error` stops the command before or instead of its work.

use std::io;
use std::path::PathBuf;

use crate::leads::input::InputError;

/// Exit codes, as documented in the README.
pub mod exit {
    /// Every row reached a final outcome.
    pub const OK: i32 = 0;
    /// The run finished, but some rows ended in a transient failure (rerun with `--resume`).
    pub const SOME_TRANSIENT: i32 = 1;
    /// Usage, configuration or input-file error, before any request.
    pub const USAGE: i32 = 2;
    /// Aborted because the credentials were rejected.
    pub const CREDENTIALS: i32 = 3;
    /// A results file or the journal could not be written during the run; `--resume` goes on.
    pub const WRITE_FAILED: i32 = 4;
    /// Interrupted (SIGINT / SIGTERM): 128 + 2.
    pub const INTERRUPTED: i32 = 130;
}

/// What stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, a variable or a config value is missing or wrong.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Input(#[from] InputError),
    /// A file given to `report` cannot be read, or is not a results file.
    #[error("{0}")]
    Report(String),
    #[error("{action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Writing OUTPUT's `.partial` or journal failed during the run (disk full, directory
    /// gone, permission lost): the run stopped taking rows at once.
    #[error(
        "cannot write {path}: {source}. The run stopped at once; every answer already in the journal is kept. Fix the cause (free space, restore the directory or its permissions), then run the same command with --resume"
    )]
    Write { path: PathBuf, source: io::Error },
    /// The summary JSON could not be written after a run: the results are all written.
    #[error(
        "cannot write the summary {path}: {source}. Every row's result is in the results file; only the summary is missing"
    )]
    Summary { path: PathBuf, source: io::Error },
    /// The existing OUTPUT was not made from this input, or is not a results file.
    #[error("{0}")]
    Resume(String),
    /// The credentials were refused before any row could be sent (e.g. the first login).
    #[error("{0}")]
    Credentials(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Credentials(_) => exit::CREDENTIALS,
            Error::Write { .. } | Error::Summary { .. } => exit::WRITE_FAILED,
            Error::Usage(_)
            | Error::Input(_)
            | Error::Report(_)
            | Error::File { .. }
            | Error::Resume(_)
            | Error::Io(_) => exit::USAGE,
        }
    }

    pub fn file(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { action, path, source }
    }
}
