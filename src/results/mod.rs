//! What a run leaves behind: a row's outcome and status, the results CSV format, and making an
//! earlier OUTPUT safe to continue.
//!
//! May import `leads` and `api`; knows nothing of how a run is driven.

pub mod outcome;
pub mod output;
pub mod resume;
