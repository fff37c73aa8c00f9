//! One batch run, from input to ordered output: the validated settings, the pipeline that
//! paces, sends and retries, the events it reports, the progress display, the end-of-run
//! summary, the quota runs share, and the dry run that sends nothing.
//!
//! May import `leads`, `api` and `results`; never `report`, `sandbox` or `cmd`.

pub mod config;
pub mod dry_run;
pub mod events;
pub mod pipeline;
pub mod progress;
pub mod quota;
pub mod summary;
pub mod window;
