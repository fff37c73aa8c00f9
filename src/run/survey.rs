//! The survey: one read of the whole input before the run starts, for the row count (the
//! progress bar's total, the `.xlsx` size check) and the vehicles that occur in more than
//! one row, the only ones whose outcomes the pipeline remembers for their copies.

use std::collections::HashMap;
use std::sync::Arc;

use crate::leads::input::{InputError, LeadReader};
use crate::results::outcome::RowOutcome;

/// What the run learns from reading the whole input once before it starts.
pub(super) struct Survey {
    pub(super) n_rows: u64,
    pub(super) duplicates: HashMap<u64, Duplicate>,
}

/// A vehicle that occurs in more than one row.
pub(super) struct Duplicate {
    /// Its rows not written yet; the entry goes when the last one is.
    pub(super) remaining: u32,
    pub(super) first_row: Option<u64>,
    /// The first row's outcome, once written, for the copies.
    pub(super) outcome: Option<Arc<RowOutcome>>,
}

impl Survey {
    /// Counts the rows (for the progress bar's total) and finds the vehicles that occur more
    /// than once, so that the run remembers outcomes for those only: its memory then grows
    /// with the duplicates, not with the list (8 bytes a row while surveying).
    pub(super) fn of(mut reader: LeadReader) -> Result<Survey, InputError> {
        let mut keys = Vec::new();
        let mut n_rows = 0;
        while let Some(lead) = reader.next_lead() {
            n_rows += 1;
            if let Ok(lead) = lead? {
                keys.push(lead.dedupe_key());
            }
        }
        keys.sort_unstable();
        let duplicates = keys
            .chunk_by(|a, b| a == b)
            .filter(|same| same.len() > 1)
            .map(|same| {
                let duplicate = Duplicate {
                    remaining: same.len() as u32,
                    first_row: None,
                    outcome: None,
                };
                (same[0], duplicate)
            })
            .collect();
        Ok(Survey { n_rows, duplicates })
    }
}
