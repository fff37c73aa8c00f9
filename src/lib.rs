//! bihu-renew: bulk renewal of car-insurance leads against Bihu's renewal API.
//!
//! # Layout
//! The folders are the stages of a run, lowest first; a module imports only from those above
//! it in this list (`error` is shared by all).
//! - [`leads`]: the city table, plate and VIN rules, columns, encodings, reading CSV and workbooks.
//! - [`api`]: the secret, signing, request and answer types, the quote URL, the HTTP client.
//! - [`results`]: row outcomes, the results CSV format, and making an OUTPUT safe to resume.
//! - [`run`]: the batch run: the pipeline and each stage it drives, settings, summary, dry run.
//! - [`report`]: reading results files back: figures, changes since an earlier run, HTML.
//! - [`listen`]: the HTTP listener under the sandbox and the service: a connection cap,
//!   header-read and body idle timeouts, graceful shutdown.
//! - [`sandbox`]: a local Bihu server (renewal, login, quote page) with fault injection.
//! - [`serve`]: the back-office service (`bihu-renew serve`): JSON API, job store, shared quota.
//! - [`cmd`]: the command line and one module per subcommand, with its arguments.
//! - [`error`]: fatal errors and exit codes.

pub mod api;
pub mod cmd;
pub mod error;
pub mod leads;
pub mod listen;
pub mod report;
pub mod results;
pub mod run;
pub mod sandbox;
pub mod serve;
