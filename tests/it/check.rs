//! `bihu-renew check` from the real binary against the sandbox: one renewal at most, said
//! before it is sent, and a wrong label, a wrong secret, a wrong clock and a wrong Token
//! each named as such.

use bihu_renew::sandbox::{Sandbox, SandboxConfig};

use crate::support::{BinOutput, run_binary, start_sandbox};

const PLATE: &str = "京J97896";

/// `check` for [`PLATE`] against `sandbox`, with its agent id and the other flags given.
async fn check(sandbox: &Sandbox, flags: &[&str]) -> BinOutput {
    let base = sandbox.base_url().to_string();
    let agent_id = sandbox.config().agent_id.clone();
    let mut args = vec![
        "check",
        "--plate",
        PLATE,
        "--base-url",
        &base,
        "--agent-id",
        &agent_id,
    ];
    args.extend_from_slice(flags);
    run_binary(&args, &[]).await
}

/// The sandbox's own secret, the one requests must be signed with.
fn secret(sandbox: &Sandbox) -> String {
    sandbox.config().secret.expose().to_string()
}

#[tokio::test]
async fn right_credentials_cost_one_request_said_up_front() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let secret = secret(&sandbox);
    let out = check(&sandbox, &["--secret-key", &secret, "--user-name", "clerk"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let first = out.stderr.lines().next().unwrap();
    assert!(first.contains("one renewal request for 京J97896"), "{first}");
    assert!(first.contains("quota"), "{first}");
    assert!(out.stderr.contains("Every credential works"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "stdout carries data only");
    let stats = sandbox.stats();
    assert_eq!(
        (stats.requests, stats.renewed, stats.logins),
        (1, 1, 1),
        "{stats:?}"
    );

    // With a Token and no user name: no login, still one request.
    let token = sandbox.config().token.clone();
    let out = check(&sandbox, &["--secret-key", &secret, "--token", &token]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!((sandbox.stats().requests, sandbox.stats().logins), (2, 1));
}

#[tokio::test]
async fn a_wrong_label_is_told_from_a_wrong_secret() {
    let sandbox = start_sandbox(SandboxConfig {
        secret_label: "SecretKey".into(),
        ..SandboxConfig::default()
    })
    .await;
    let secret = secret(&sandbox);

    // The login signs without a label, so it proves the secret: the renewal's 406 is the label.
    let out = check(&sandbox, &["--secret-key", &secret, "--user-name", "clerk"]).await;
    out.assert_said(3, &["so the label is wrong", "try --secret-key-label SecretKey"]);
    assert_eq!(sandbox.stats().requests, 1);

    // With the label the sandbox wants, it passes.
    let fixed = check(
        &sandbox,
        &[
            "--secret-key",
            &secret,
            "--user-name",
            "clerk",
            "--secret-key-label",
            "SecretKey",
        ],
    )
    .await;
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);

    // A wrong secret fails the login already: named, and no renewal is sent.
    let before = sandbox.stats().requests;
    let out = check(
        &sandbox,
        &["--secret-key", "not-the-secret", "--user-name", "clerk"],
    )
    .await;
    out.assert_said(3, &["so the secret key is wrong", "no quota was used"]);
    assert_eq!(sandbox.stats().requests, before);

    // Without a user name the two cannot be told apart, and the message says what would.
    let token = sandbox.config().token.clone();
    let out = check(&sandbox, &["--secret-key", "not-the-secret", "--token", &token]).await;
    out.assert_said(3, &["the secret key or its label", "Pass --user-name too"]);
}

#[tokio::test]
async fn a_wrong_clock_is_named_from_the_servers_date() {
    // The server's clock 10 minutes behind: this machine is 600 s ahead of it.
    let sandbox = start_sandbox(SandboxConfig {
        clock_offset_secs: -600,
        ..SandboxConfig::default()
    })
    .await;
    let secret = secret(&sandbox);
    for flags in [
        vec!["--secret-key", secret.as_str(), "--user-name", "clerk"],
        vec![
            "--secret-key",
            secret.as_str(),
            "--token",
            "4773EEC3EE9B572851C11DF730DCE827",
        ],
    ] {
        let out = check(&sandbox, &flags).await;
        assert_eq!(out.code, 3, "{flags:?}: {}", out.stderr);
        let said = &out.stderr;
        assert!(said.contains("s ahead of the server's"), "{flags:?}: {said}");
        assert!(said.contains("set the clock right"), "{flags:?}: {said}");
        assert!(!said.contains("label is wrong"), "{flags:?}: {said}");
    }
    // A skew the API still allows is only a warning.
    let close = start_sandbox(SandboxConfig {
        clock_offset_secs: 120,
        ..SandboxConfig::default()
    })
    .await;
    let out = check(&close, &["--secret-key", &secret, "--user-name", "clerk"]).await;
    out.assert_said(0, &["warning: this machine's clock is", "behind the server's"]);
}

#[tokio::test]
async fn a_wrong_token_and_a_bad_vehicle() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let secret = secret(&sandbox);
    let out = check(
        &sandbox,
        &[
            "--secret-key",
            &secret,
            "--token",
            "0123456789ABCDEF0123456789ABCDEF",
        ],
    )
    .await;
    out.assert_said(3, &["the Token is wrong or expired"]);

    // A Token given with a user name that logs in: the Token is what is wrong.
    let out = check(
        &sandbox,
        &[
            "--secret-key",
            &secret,
            "--user-name",
            "clerk",
            "--token",
            "0123456789ABCDEF0123456789ABCDEF",
        ],
    )
    .await;
    out.assert_said(3, &["the Token given"]);

    // A plate the API cannot take is refused before anything is sent.
    let before = sandbox.stats();
    let base = sandbox.base_url().to_string();
    let out = run_binary(
        &[
            "check",
            "--plate",
            "京J9789",
            "--base-url",
            &base,
            "--agent-id",
            "102",
            "--secret-key",
            &secret,
            "--user-name",
            "clerk",
        ],
        &[],
    )
    .await;
    out.assert_said(2, &["has 6 characters", "nothing was sent"]);
    assert_eq!(sandbox.stats(), before);
}
