//! `bihu-renew completions SHELL` and `bihu-renew man`: generated from the clap definitions,
//! so they never drift from the real flags.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, exit};

pub fn completions(shell: clap_complete::Shell) -> Result<i32, Error> {
    clap_complete::generate(shell, &mut Cli::command(), "bihu-renew", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man() -> Result<i32, Error> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(exit::OK)
}
