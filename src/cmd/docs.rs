//! `bihu-renew completions SHELL` and `bihu-renew man`: generated from the clap definitions,
//! so they never drift from the real flags.

use crate::error::{Error, exit};

pub fn completions(mut command: clap::Command, shell: clap_complete::Shell) -> Result<i32, Error> {
    clap_complete::generate(shell, &mut command, "bihu-renew", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man(command: clap::Command) -> Result<i32, Error> {
    clap_mangen::Man::new(command).render(&mut std::io::stdout())?;
    Ok(exit::OK)
}
