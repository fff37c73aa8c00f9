//! The run's window: the rows read and not written yet, in input order, bounded in rows and in
//! bytes.
//!
//! Rows are taken in while the window has room and leave from the front once decided (written
//! in input order). A row counts its fields' bytes: a list of large rows (each field may hold
//! up to 64 KB) fills the window by bytes long before it fills it by rows, so memory is bounded
//! by [`WINDOW_BYTES`] whatever the rows hold. The reader's batches are bounded the same way
//! ([`BATCH_BYTES`]).

use std::collections::VecDeque;

use csv::StringRecord;

use crate::leads::lead::Lead;
use crate::results::outcome::RowOutcome;

/// The most the window's rows may hold together (the first row is always taken in, however
/// large: one row is at most its columns times 64 KB).
pub const WINDOW_BYTES: usize = 16 << 20;

/// Rows cross from the reader thread in batches of at most this many bytes (and
/// `READ_BATCH` rows).
pub const BATCH_BYTES: usize = 1 << 20;

/// What a row costs in memory, near enough: its fields and their bounds.
pub fn row_bytes(fields: &StringRecord) -> usize {
    fields.as_slice().len() + fields.len() * std::mem::size_of::<usize>() + std::mem::size_of::<Finished>()
}

/// A row between reading and writing.
pub struct Finished {
    pub row: u64,
    pub fields: StringRecord,
    pub key: Option<u64>,
    pub warnings: Vec<String>,
    pub result: RowResult,
}

impl Finished {
    /// Makes this run's answer, not journalled yet, a decided row; returns the answer and its
    /// vehicle, for the journal.
    pub fn settle_answer(&mut self) -> Option<(Lead, &RowOutcome)> {
        let RowResult::Answered(..) = self.result else {
            return None;
        };
        let RowResult::Answered(outcome, lead) = std::mem::replace(&mut self.result, RowResult::Pending)
        else {
            unreachable!("matched just above");
        };
        self.result = RowResult::Decided(outcome);
        let RowResult::Decided(outcome) = &self.result else {
            unreachable!("set just above");
        };
        Some((lead, outcome))
    }

    fn bytes(&self) -> usize {
        row_bytes(&self.fields) + self.warnings.iter().map(String::len).sum::<usize>()
    }
}

pub enum RowResult {
    /// Queued, in flight or waiting out a backoff: nothing after it is written yet.
    Pending,
    Decided(RowOutcome),
    /// This run's answer for the vehicle, not journalled yet: OUTPUT takes it if the row is
    /// written by the next flush, else the journal does (which needs the vehicle).
    Answered(RowOutcome, Lead),
    /// An earlier run's final row, written again as it was (in this run's columns).
    Kept(RowOutcome),
    /// An earlier run's final answer, from its journal.
    Journalled(RowOutcome),
    /// Same vehicle as this earlier row: copy its outcome.
    CopyOf(u64),
    /// Never sent, because the run stopped first.
    Abandoned,
}

/// Rows read and not written yet, in input order.
pub struct Window {
    rows: VecDeque<Finished>,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
}

impl Window {
    pub fn new(max_rows: usize, max_bytes: usize) -> Window {
        Window {
            rows: VecDeque::new(),
            bytes: 0,
            max_rows: max_rows.max(1),
            max_bytes,
        }
    }

    /// Whether another row may come in: below both bounds, or empty (a row larger than the
    /// byte bound still goes, alone).
    pub fn has_room(&self) -> bool {
        self.rows.is_empty() || (self.rows.len() < self.max_rows && self.bytes < self.max_bytes)
    }

    pub fn push(&mut self, finished: Finished) {
        self.bytes += finished.bytes();
        self.rows.push_back(finished);
    }

    /// The front row, once decided.
    pub fn pop_decided(&mut self) -> Option<Finished> {
        if self
            .rows
            .front()
            .is_none_or(|front| matches!(front.result, RowResult::Pending))
        {
            return None;
        }
        let finished = self.rows.pop_front()?;
        self.bytes -= finished.bytes();
        Some(finished)
    }

    /// Decides the row `index` places from the front.
    pub fn decide(&mut self, index: usize, result: RowResult) {
        self.rows[index].result = result;
    }

    /// The row `index` places from the front.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Finished> {
        self.rows.get_mut(index)
    }

    /// Every row not written yet.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Finished> {
        self.rows.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The bytes its rows hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(row: u64, field_bytes: usize) -> Finished {
        Finished {
            row,
            fields: StringRecord::from(vec!["x".repeat(field_bytes)]),
            key: None,
            warnings: Vec::new(),
            result: RowResult::Pending,
        }
    }

    #[test]
    fn the_window_fills_by_rows_or_by_bytes_whichever_comes_first() {
        let mut window = Window::new(3, 1 << 20);
        for i in 0..3 {
            assert!(window.has_room());
            window.push(row(i, 10));
        }
        assert!(!window.has_room(), "full by rows");

        let mut window = Window::new(4096, 100_000);
        window.push(row(1, 60_000));
        assert!(window.has_room());
        window.push(row(2, 60_000));
        assert!(!window.has_room(), "full by bytes at two rows");
        assert!(window.bytes() > 120_000);

        // A row larger than the bound goes in alone.
        let mut window = Window::new(4096, 1000);
        assert!(window.has_room());
        window.push(row(1, 5000));
        assert!(!window.has_room());
    }

    #[test]
    fn rows_leave_from_the_front_once_decided_and_free_their_bytes() {
        let mut window = Window::new(10, 1 << 20);
        window.push(row(1, 100));
        window.push(row(2, 100));
        assert!(window.pop_decided().is_none(), "the front is pending");
        window.decide(1, RowResult::Abandoned);
        assert!(
            window.pop_decided().is_none(),
            "the second row waits for the first"
        );
        window.decide(0, RowResult::Abandoned);
        assert_eq!(window.pop_decided().map(|f| f.row), Some(1));
        assert_eq!(window.pop_decided().map(|f| f.row), Some(2));
        assert!(window.is_empty());
        assert_eq!(window.bytes(), 0);
    }
}
