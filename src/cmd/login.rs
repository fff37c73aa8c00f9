//! `bihu-renew login`: logs in with the configured credentials and prints the Token on
//! stdout, for scripts that pass it on as BIHU_TOKEN.

use anyhow::Context;
use std::time::Duration;

use clap::Args;

use crate::api::client::{self, Client};
use crate::cmd::config_file::ConfigFile;
use crate::cmd::{CredentialArgs, Purpose, resolve_credentials};
use crate::error::{Error, exit};

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

pub async fn run(args: LoginArgs) -> anyhow::Result<i32> {
    let file = ConfigFile::load(args.credentials.config.as_deref())?;
    let credentials = resolve_credentials(&args.credentials, &file, Purpose::Login)?;
    let user_name = credentials
        .user_name
        .clone()
        .expect("resolve_credentials requires it");
    let client = Client::new(
        credentials.base_url,
        credentials.agent,
        Duration::from_secs(30),
        1,
    )
    .context("cannot build the HTTP client")?;
    let token = client
        .login(&user_name, client::unix_now())
        .await
        .map_err(|error| Error::login(error, format!("cannot log in as {user_name}")))?;
    println!("{token}");
    Ok(exit::OK)
}
