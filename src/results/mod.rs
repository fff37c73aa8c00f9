//! What a run leaves behind: a row's outcome and status, the results file format (CSV, or an `.xlsx` made from it), and making an
//! earlier OUTPUT safe to continue; the journal of answers and the lock of one run per OUTPUT;
//! the history of final answers that later runs (and the service) may reuse, and the times
//! and windows they are written in.
//!
//! May import `leads` and `api`; knows nothing of how a run is driven.

pub mod formula;
pub mod history;
pub mod journal;
pub mod lock;
pub mod outcome;
pub mod output;
pub mod resume;
pub mod table;
pub mod times;
pub mod xlsx;
