//! The reader thread: reads and validates the input (`leads::input`) on a blocking thread,
//! pairs each row with what earlier runs left for it when resuming (OUTPUT's row, or the
//! journal's newer record), and hands rows to the pipeline in batches through a bounded
//! channel.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use crate::leads::input::{InputError, InputRow, LeadReader};
use crate::results::journal;
use crate::results::outcome::RowOutcome;
use crate::results::resume::PreviousRows;
use crate::run::window::{self, BATCH_BYTES};

/// One input row, with what earlier runs left for it when resuming.
pub(super) type Intake = Result<(InputRow, Earlier), InputError>;

/// What earlier runs left for a row.
pub(super) enum Earlier {
    Nothing,
    /// OUTPUT's row (kept if final, done again if not).
    Output(RowOutcome),
    /// The journal's latest record, newer than OUTPUT's row: a final answer, or a row that was
    /// waiting out a backoff.
    Journal(journal::Record),
}

/// Rows cross from the reader thread in batches of this many (or [`BATCH_BYTES`]): the main
/// loop is woken once a batch, and the reader once a batch when it waits for room, instead of
/// once a row each. The channel holds a few batches (256 rows at most): rows read far ahead
/// are out of the processor's cache by the time they are sent (measured in BENCHMARKS.md).
const READ_BATCH: usize = 64;

pub(super) fn spawn(
    mut reader: LeadReader,
    mut previous: Option<PreviousRows>,
    mut journalled: BTreeMap<u64, journal::Record>,
    capacity: usize,
) -> (mpsc::Receiver<Vec<Intake>>, std::thread::JoinHandle<()>) {
    let (batches_tx, batches_rx) = mpsc::channel((capacity.min(256) / READ_BATCH).max(2));
    let thread = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(READ_BATCH);
        let mut batch_bytes = 0;
        while let Some(row) = reader.next_row() {
            let previous_row = previous.as_mut().and_then(PreviousRows::next_outcome);
            let failed = row.is_err();
            batch_bytes += row.as_ref().map_or(0, |row| window::row_bytes(&row.fields));
            batch.push(row.map(|row| {
                let earlier = match (journalled.remove(&row.row), previous_row) {
                    (Some(record), _) => Earlier::Journal(record),
                    (None, Some(outcome)) => Earlier::Output(outcome),
                    (None, None) => Earlier::Nothing,
                };
                (row, earlier)
            }));
            if failed || batch.len() == READ_BATCH || batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                let full = std::mem::replace(&mut batch, Vec::with_capacity(READ_BATCH));
                if batches_tx.blocking_send(full).is_err() || failed {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = batches_tx.blocking_send(batch);
        }
    });
    (batches_rx, thread)
}
