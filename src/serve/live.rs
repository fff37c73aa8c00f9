//! A running job: its stop token, and the counters (rows, rows done, requests, rows by
//! status) its run's events feed, read by the job's page and saved to the store.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio_util::sync::CancellationToken;

use crate::results::outcome::Status;
use crate::run::events::{Event, Observer};
use crate::serve::store::Progress;

/// A job that is running: its stop, and the counters its events feed.
pub struct LiveJob {
    pub(super) cancel: CancellationToken,
    rows: AtomicU64,
    rows_done: AtomicU64,
    /// Requests of earlier runs of this job, plus this run's.
    requests: AtomicU64,
    counts: [AtomicU64; Status::ALL.len()],
}

impl LiveJob {
    pub(super) fn new(requests_before: u64, rows: u64) -> LiveJob {
        LiveJob {
            cancel: CancellationToken::new(),
            rows: AtomicU64::new(rows),
            rows_done: AtomicU64::new(0),
            requests: AtomicU64::new(requests_before),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(super) fn progress(&self) -> Progress {
        let counts = Status::ALL
            .iter()
            .zip(&self.counts)
            .map(|(status, n)| (status.as_str().to_string(), n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Progress {
            rows: self.rows.load(Ordering::Relaxed),
            rows_done: self.rows_done.load(Ordering::Relaxed),
            counts,
            requests: self.requests.load(Ordering::Relaxed),
        }
    }
}

impl Observer for LiveJob {
    fn on_event(&self, event: &Event) {
        match event {
            Event::Total { rows } => self.rows.store(*rows, Ordering::Relaxed),
            Event::Attempt { .. } => {
                self.requests.fetch_add(1, Ordering::Relaxed);
            }
            Event::RowWritten { status, .. } => {
                self.rows_done.fetch_add(1, Ordering::Relaxed);
                if let Some(i) = Status::ALL.iter().position(|s| s == status) {
                    self.counts[i].fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::Stopping { .. } => {}
        }
    }
}
