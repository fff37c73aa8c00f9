//! One batch run, from input to ordered output. The pipeline (`pipeline.rs`) is the run
//! in one place; the stages it drives each have a file:
//! - before the first request: the validated settings (`config`), OUTPUT's files
//!   (`files`: refuse, overwrite or resume, create, close), the survey of the input
//!   (`survey`), the answer history (`reuse`);
//! - while rows go: the reader thread (`reader`), the ordered window (`window`), a row's
//!   turn in a request slot (`turn`), the Token and its re-login (`tokens`), the credential
//!   breaker (`breaker`), the quota runs share (`quota`);
//! - around it: the events it reports (`events`), the progress display (`progress`), the
//!   end-of-run account (`summary`), and the dry run that sends nothing (`dry_run`).
//!
//! May import `leads`, `api` and `results`; never `report`, `sandbox`, `serve` or `cmd`.

mod breaker;
pub mod config;
pub mod dry_run;
pub mod events;
mod files;
pub mod pipeline;
pub mod progress;
pub mod quota;
mod reader;
mod reuse;
pub mod summary;
mod survey;
mod tokens;
mod turn;
pub mod window;
