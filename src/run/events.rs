//! What a run tells the world while it works: [`Event`]s to an [`Observer`].
//!
//! The terminal progress bar, the cron progress line and (later) a web page are observers;
//! the pipeline does not know which is listening. Observers are called from the pipeline's
//! tasks, so they must be quick and must not block.

use crate::results::outcome::Status;

/// One thing that happened in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The input's data rows have been counted.
    Total { rows: u64 },
    /// A request is about to be sent for a row (`retry` for the second attempt on).
    Attempt { row: u64, retry: bool },
    /// A row's outcome has been written, in input order.
    RowWritten {
        row: u64,
        status: Status,
        kept: bool,
        copied: bool,
    },
    /// The run stops taking new rows (interrupted, or credentials rejected).
    Stopping { reason: String },
}

/// Receives a run's events.
pub trait Observer: Send + Sync {
    fn on_event(&self, event: &Event);
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn on_event(&self, _event: &Event) {}
}
