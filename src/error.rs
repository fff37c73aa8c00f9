//! The fatal errors of a command and the exit codes, defined in one place.
//!
//! What befalls one row is never an [`Error`]: it is an output row with a status
//! (`outcome.rs`). An `Error` stops the command before or instead of its work.

use std::io;
use std::path::{Path, PathBuf};

use crate::api::client::LoginError;
use crate::leads::input::InputError;

/// Exit codes, as documented in the README.
pub mod exit {
    /// Every row reached a final outcome.
    pub const OK: i32 = 0;
    /// The run finished, but some rows ended in a transient failure (rerun with `--resume`);
    /// or Bihu could not be reached for the first login (nothing was renewed).
    pub const SOME_TRANSIENT: i32 = 1;
    /// Usage, configuration or input-file error, before any request.
    pub const USAGE: i32 = 2;
    /// Aborted because the credentials were rejected.
    pub const CREDENTIALS: i32 = 3;
    /// A results file or the journal could not be written during the run, or another file
    /// stopped it after requests were sent; `--resume` goes on once the cause is fixed.
    pub const WRITE_FAILED: i32 = 4;
    /// Interrupted (SIGINT / SIGTERM): 128 + 2.
    pub const INTERRUPTED: i32 = 130;
}

/// What stops a run or a dry run, sorted by the exit code it calls for: the variant is the
/// marker the command line branches on, the story (an `anyhow` chain of contexts where there
/// is one) is what a person reads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Refused before any request was sent: OUTPUT's files, the answer history, a setting,
    /// an earlier OUTPUT that does not fit this input.
    #[error("{}", story(.0))]
    Refused(anyhow::Error),
    /// The input file cannot be read as a lead list (found before any request).
    #[error(transparent)]
    Input(#[from] InputError),
    /// A file beside OUTPUT (its lock, `.partial` or journal) cannot be created before the
    /// first request: the directory is missing, not a directory, read-only, full.
    #[error("cannot create {}: {}; nothing was sent", file.display(), place_problem(file, source))]
    Unwritable { file: PathBuf, source: io::Error },
    /// Bihu rejected the credentials before any row was sent (the first login).
    #[error("{}", story(.0))]
    Credentials(anyhow::Error),
    /// The first login got no verdict (Bihu unreachable, a server error): nothing was
    /// renewed, and the same command may simply be run again.
    #[error("{}", story(.0))]
    Unreached(anyhow::Error),
    /// Writing OUTPUT's `.partial` or journal failed during the run (disk full, directory
    /// gone, permission lost): the run stopped taking rows at once.
    #[error(
        "cannot write {path}: {source}. The run stopped at once; every answer already in the journal is kept. Fix the cause (free space, restore the directory or its permissions), then run the same command with --resume"
    )]
    Write { path: PathBuf, source: io::Error },
    /// A file stopped the run after requests were sent: the input turned out unreadable or
    /// the journal not this input's, or the finished results could not be put in place.
    #[error("{}", story(.0))]
    Midrun(anyhow::Error),
    /// The summary JSON could not be written after a run: the results are all written.
    #[error(
        "cannot write the summary {path}: {source}. Every row's result is in the results file; only the summary is missing"
    )]
    Summary { path: PathBuf, source: io::Error },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Refused(_) | Error::Input(_) | Error::Unwritable { .. } => exit::USAGE,
            Error::Credentials(_) => exit::CREDENTIALS,
            Error::Unreached(_) => exit::SOME_TRANSIENT,
            Error::Write { .. } | Error::Midrun(_) | Error::Summary { .. } => exit::WRITE_FAILED,
        }
    }

    /// A login that failed, told by what it says of the credentials: rejected by Bihu
    /// ([`Error::Credentials`]), refused before it was sent (an agent id that is no number:
    /// [`Error::Refused`]), or no verdict (Bihu unreachable or erring: [`Error::Unreached`]).
    /// `context` says whose login it was and what it was for.
    pub fn login(error: LoginError, context: String) -> Error {
        if error.is_rejection() {
            Error::Credentials(anyhow::Error::new(error).context(context))
        } else if let LoginError::AgentIdNotNumeric(_) = error {
            Error::Refused(anyhow::Error::new(error).context(context))
        } else {
            Error::Unreached(anyhow::Error::new(error).context(format!(
                "{context}: Bihu gave no verdict, so run the same command again later (if this persists, check --base-url and any proxy setting)"
            )))
        }
    }

    /// [`Error::Unwritable`] for `file`.
    pub fn unwritable(file: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let file = file.into();
        move |source| Error::Unwritable { file, source }
    }
}

/// The error and its causes, joined with `: `, leaving out a cause whose text the message
/// already carries (typed errors that print their source themselves).
pub fn story(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Why `file` cannot be created, said of the place it was to go, then the system's words:
/// one text for a missing directory, a file in the way, a read-only or full directory.
fn place_problem(file: &Path, source: &io::Error) -> String {
    let dir = file
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let why = match source.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            format!("the directory {} is not writable", dir.display())
        }
        io::ErrorKind::NotADirectory => match file.ancestors().skip(1).find(|place| place.is_file()) {
            Some(in_the_way) => format!("{} is a file, not a directory", in_the_way.display()),
            None => format!("{} is not a directory", dir.display()),
        },
        io::ErrorKind::NotFound => format!("the directory {} does not exist", dir.display()),
        io::ErrorKind::StorageFull => format!("the disk holding {} is full", dir.display()),
        _ => return source.to_string(),
    };
    format!("{why}: {source}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way a place refuses a file reads alike: the file, the place, the system's
    /// words, nothing sent. Permission denied and a read-only disk, which a test running
    /// as root cannot provoke, take the same path as the others.
    #[test]
    fn an_unwritable_place_is_named_with_its_problem() {
        let text =
            |file: &str, kind: io::ErrorKind| Error::unwritable(file)(io::Error::from(kind)).to_string();
        assert_eq!(
            text("/srv/out/leads.results.csv.lock", io::ErrorKind::PermissionDenied),
            "cannot create /srv/out/leads.results.csv.lock: the directory /srv/out is not writable: permission denied; nothing was sent"
        );
        assert!(
            text("/srv/out/x.lock", io::ErrorKind::ReadOnlyFilesystem)
                .contains("the directory /srv/out is not writable: "),
        );
        assert_eq!(
            text("x.csv.lock", io::ErrorKind::NotFound),
            "cannot create x.csv.lock: the directory . does not exist: entity not found; nothing was sent"
        );
        assert!(text("/srv/x.lock", io::ErrorKind::StorageFull).contains("the disk holding /srv is full"));
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("leads.csv");
        std::fs::write(&list, "plate\n").unwrap();
        let inside = list.join("out.csv.lock");
        let error = std::fs::File::create(&inside).unwrap_err();
        let refused = Error::unwritable(&inside)(error);
        assert_eq!(refused.exit_code(), exit::USAGE);
        assert!(
            refused
                .to_string()
                .contains(&format!("{} is a file, not a directory: ", list.display())),
            "{refused}"
        );
        assert_eq!(
            text("/srv/x.lock", io::ErrorKind::Other),
            "cannot create /srv/x.lock: other error; nothing was sent"
        );
    }
}
