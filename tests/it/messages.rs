//! Command-line messages from the real binary: each error is the only thing said, and the
//! fix it suggests is one the command accepts.

use bihu_renew::sandbox::SandboxConfig;

use crate::support::{run_binary, start_sandbox};

const BANNER: &str = "running against the built-in sandbox";

#[tokio::test]
async fn sandbox_banner_comes_only_after_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("leads.csv");
    std::fs::write(&input, "LicenseNo,CityCode\n京J97896,1\n").unwrap();
    let input = input.to_str().unwrap();

    // A flag error, a missing input and an existing output: the error alone, exit 2.
    let missing = dir.path().join("nope.csv");
    for args in [
        vec!["run", input, "--sandbox", "--rate", "0"],
        vec!["run", missing.to_str().unwrap(), "--sandbox"],
    ] {
        let out = run_binary(&args, &[]).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains(BANNER), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("sandbox served"), "{args:?}: {}", out.stderr);
    }

    let first = run_binary(&["run", input, "--sandbox", "--no-progress"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains(BANNER), "{}", first.stderr);
    // The demo sandbox fails a few requests on purpose, so the count may include a retry.
    assert!(
        first.stderr.contains("sandbox served requests "),
        "{}",
        first.stderr
    );

    let again = run_binary(&["run", input, "--sandbox", "--no-progress"], &[]).await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(!again.stderr.contains(BANNER), "{}", again.stderr);
}

#[tokio::test]
async fn login_without_credentials_suggests_what_login_accepts() {
    let out = run_binary(&["login"], &[]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--user-name (or BIHU_USER_NAME)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("--sandbox"), "{}", out.stderr);
    assert!(out.stderr.contains("`bihu-renew sandbox`"), "{}", out.stderr);
    // What it suggests works: login against a sandbox with the flags it names.
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let base = sandbox.base_url().to_string();
    let config = sandbox.config();
    let login = run_binary(
        &[
            "login",
            "--base-url",
            &base,
            "--agent-id",
            &config.agent_id,
            "--secret-key",
            config.secret.expose(),
            "--user-name",
            "anyone",
        ],
        &[],
    )
    .await;
    assert_eq!(login.code, 0, "{}", login.stderr);
    assert_eq!(login.stdout_text().trim().len(), 32, "{}", login.stdout_text());
    // `run` has a --sandbox of its own, and says so.
    let run = run_binary(&["run", "x.csv"], &[]).await;
    assert!(run.stderr.contains("`run --sandbox`"), "{}", run.stderr);
}
