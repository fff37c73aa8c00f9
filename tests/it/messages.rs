//! Command-line messages from the real binary: each error is the only thing said, and the
//! fix it suggests is one the command accepts.

use bihu_renew::sandbox::SandboxConfig;

use crate::support::{run_binary, sandbox_flags, start_sandbox};

const BANNER: &str = "running against the built-in sandbox";

#[tokio::test]
async fn sandbox_banner_comes_only_after_the_checks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("leads.csv");
    std::fs::write(&input, "LicenseNo,CityCode\n京J97896,1\n").unwrap();
    let input = input.to_str().unwrap();

    // Flag errors, a missing or unreadable input, bad output paths and an existing output:
    // the error alone, exit 2, and no file left behind to refuse the next attempt.
    let missing = dir.path().join("nope.csv");
    let no_vehicle = dir.path().join("names.csv");
    std::fs::write(&no_vehicle, "name,phone\n张三,13800000000\n").unwrap();
    let in_a_file = format!("{input}/out.csv");
    let a_dir = dir.path().display().to_string();
    let history_in_a_file = format!("{input}/history.db");
    let summary_in_a_file = format!("{input}/summary.json");
    for (args, says) in [
        (
            vec!["run", input, "--sandbox", "--rate", "0"],
            "--rate must be at least 1",
        ),
        (
            vec!["run", input, "--sandbox", "--concurrency", "x"],
            "invalid value 'x'",
        ),
        (
            vec!["run", input, "--sandbox", "--city-code", "99"],
            "is not a Bihu city",
        ),
        (
            vec!["run", input, "--sandbox", "--reuse-within", "3x"],
            "is not a duration",
        ),
        (vec!["run", missing.to_str().unwrap(), "--sandbox"], "cannot read"),
        (vec!["run", &a_dir, "--sandbox"], "Is a directory"),
        (
            vec!["run", no_vehicle.to_str().unwrap(), "--sandbox"],
            "has no vehicle column",
        ),
        (
            vec!["run", input, "--sandbox", "-o", &in_a_file],
            "is a file, not a directory",
        ),
        (
            vec!["run", input, "--sandbox", "-o", &a_dir],
            "is a directory; nothing was sent",
        ),
        (
            vec!["run", input, "--sandbox", "--summary-json", &summary_in_a_file],
            "--summary-json",
        ),
        (
            vec!["run", input, "--sandbox", "--history", &history_in_a_file],
            "Check --history",
        ),
    ] {
        let out = run_binary(&args, &[]).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains(BANNER), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("sandbox served"), "{args:?}: {}", out.stderr);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".results."))
            .collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
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

/// An OUTPUT whose directory cannot take the run's files (a file in the way, a directory
/// that is not there): exit 2 before any request, the path and what is wrong with it
/// named, and `-o` suggested; the dry run alike. (Permission denied and a read-only disk
/// give the same message from the same code, `error::place_problem`; as root a test cannot
/// provoke them, so its unit test covers them.)
#[tokio::test]
async fn an_unwritable_output_names_the_path_and_suggests_o() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let flags = sandbox_flags(&sandbox);
    let credentials: Vec<&str> = flags
        .iter()
        .map(String::as_str)
        .chain(["--no-progress"])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("leads.csv");
    std::fs::write(&input, "LicenseNo\n京J97896\n").unwrap();
    let input = input.to_str().unwrap();
    let in_a_file = format!("{input}/out.csv");
    let missing_dir = dir.path().join("gone").join("out.csv");
    let missing_dir = missing_dir.to_str().unwrap();
    for (output, says) in [
        (in_a_file.as_str(), format!("{input} is a file, not a directory")),
        (
            missing_dir,
            format!(
                "the directory {} does not exist",
                dir.path().join("gone").display()
            ),
        ),
    ] {
        for dry in [false, true] {
            let mut args = vec!["run", input, "-o", output];
            args.extend(credentials.iter().copied());
            if dry {
                args.push("--dry-run");
            }
            let out = run_binary(&args, &[]).await;
            assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
            let stderr = &out.stderr;
            assert!(
                stderr.contains(&format!("cannot create {output}.lock: {says}")),
                "{stderr}"
            );
            assert!(stderr.contains("nothing was sent"), "{stderr}");
            assert!(
                stderr.contains("Use -o to write the results in a directory you can write to"),
                "{stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
        }
    }
    assert_eq!(sandbox.stats().requests, 0, "nothing was sent");
}

/// `login`'s exit code says what failed: an agent id no login takes is refused before
/// anything is sent (2), a host that cannot be reached is no verdict (1, naming the host),
/// and only Bihu's own refusal is 3.
#[tokio::test]
async fn login_tells_a_refusal_from_no_verdict_by_its_exit_code() {
    let sandbox = start_sandbox(SandboxConfig::default()).await;
    let base = sandbox.base_url().to_string();
    let config = sandbox.config();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = format!("http://{closed}/");
    let login = |base: &str, agent_id: &str, secret: &str| {
        let args: Vec<String> = [
            "login",
            "--base-url",
            base,
            "--agent-id",
            agent_id,
            "--secret-key",
            secret,
            "--user-name",
            "anyone",
        ]
        .map(str::to_string)
        .to_vec();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_binary(&args, &[]).await
        }
    };
    let secret = config.secret.expose();

    let not_numeric = login(&base, "abc", secret).await;
    assert_eq!(not_numeric.code, 2, "{}", not_numeric.stderr);
    assert!(
        not_numeric
            .stderr
            .contains("--agent-id \"abc\" is not a number; nothing was sent"),
        "{}",
        not_numeric.stderr
    );
    assert_eq!(sandbox.stats().logins, 0);

    let no_one = login(&unreachable, &config.agent_id, secret).await;
    assert_eq!(no_one.code, 1, "{}", no_one.stderr);
    assert!(no_one.stderr.contains(&closed.to_string()), "{}", no_one.stderr);
    assert!(!no_one.stderr.contains("rejected"), "{}", no_one.stderr);
    assert!(!no_one.stderr.contains(secret), "{}", no_one.stderr);

    let wrong_secret = login(&base, &config.agent_id, "not-the-secret").await;
    assert_eq!(wrong_secret.code, 3, "{}", wrong_secret.stderr);
    assert!(
        wrong_secret.stderr.contains("--secret-key"),
        "{}",
        wrong_secret.stderr
    );
    assert!(
        !wrong_secret.stderr.contains("not-the-secret"),
        "{}",
        wrong_secret.stderr
    );
}
