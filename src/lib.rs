//! bihu-renew: bulk renewal of car-insurance leads against Bihu's renewal API.
//!
//! # Layout
//! - [`secret`]: the secret-key wrapper that never prints itself.
//! - [`sign`]: the renewal and login `secCode` signatures (pure).
//! - [`city`]: the Bihu city table and plate prefixes.
//! - [`lead`]: one row's vehicle columns into a typed [`lead::Lead`] or a rejection (pure).
//! - [`protocol`]: request bodies, answers, the quote URL (pure).
//! - [`sandbox`]: a local Bihu server (renewal, login, quote page) with fault injection, for tests.
//! - [`client`]: one renewal attempt or login over HTTP.
//! - [`input`]: streaming a lead list, finding its columns.
//! - [`outcome`]: row statuses and the result columns of one row.
//! - [`output`]: the results CSV.
//! - [`resume`]: making an earlier OUTPUT safe to continue.
//! - [`pipeline`]: the batch run, from input to ordered output.
//! - [`events`]: what a run reports while it works.
//! - [`summary`]: what a run reports at the end; exit codes.
//! - [`report`]: reading results files back: figures, changes since an earlier run, HTML.
//! - [`config`]: the validated settings of a run.
//! - [`error`]: fatal errors and exit codes.

pub mod city;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod config;
pub mod config_file;
pub mod dry_run;
pub mod error;
pub mod events;
pub mod input;
pub mod lead;
pub mod outcome;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod protocol;
pub mod report;
pub mod resume;
pub mod sandbox;
pub mod secret;
pub mod sign;
pub mod summary;
