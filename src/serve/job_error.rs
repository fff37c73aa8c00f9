//! Why a request about a job cannot be done: the one error of the job layer (jobs, uploads,
//! retention), which the API and the pages turn into a 4xx or 5xx with its message.

use crate::serve::store::StoreError;

/// Why a request about a job cannot be done; the API turns each into a 4xx.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("there is no job {0}")]
    NotFound(i64),
    /// The action does not apply in the job's state.
    #[error("{0}")]
    Conflict(String),
    /// The upload is not a lead list the CLI could read (its message).
    #[error("{0}")]
    Unreadable(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
}
