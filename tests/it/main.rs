//! The integration tests, one binary: each module covers one part of the tool over real
//! loopback HTTP.

mod browser;
mod browser_smoke;
mod check;
mod docs;
mod fuzz;
mod held_down;
mod history;
mod hostile;
mod inputs;
mod journal;
mod messages;
mod pages;
mod report;
mod resume;
mod run;
mod sandbox;
mod serve;
mod support;
mod xlsx;
