//! `completions` and `man` from the real binary: bash completes after a subcommand, and every
//! subcommand has a page with its options, variables and exit codes.

use crate::support::run_binary;

/// What bash's completion of `words` (the last one being completed) offers, with the script
/// the binary prints sourced and the function it registers for `bihu-renew` called as
/// readline would call it.
async fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = run_binary(&["completions", "bash"], &[]).await;
    assert_eq!(script.code, 0, "{}", script.stderr);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bihu-renew.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = format!(
        r#"source '{script}'
function_name=$(complete -p bihu-renew | sed -n 's/.*-F \([^ ]*\).*/\1/p')
[ -n "$function_name" ] || {{ echo "no completion registered for bihu-renew" >&2; exit 9; }}
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$function_name" bihu-renew "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        script = path.display(),
        words = quoted.join(" "),
    );
    let output = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &line])
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn bash_completes_a_subcommands_flags() {
    assert_eq!(bash_complete(&["bihu-renew", "run", "--dr"]).await, ["--dry-run"]);
    let report = bash_complete(&["bihu-renew", "report", "--ag"]).await;
    assert_eq!(report, ["--against"]);
    // And the subcommands themselves, as before.
    let top = bash_complete(&["bihu-renew", "ru"]).await;
    assert_eq!(top, ["run"]);
}

/// A page rendered as a person reads it (`man -l` would page it; groff formats the same).
fn formatted(roff: &[u8]) -> String {
    use std::io::Write;
    let mut groff = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-P", "-cbou"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("groff runs");
    groff.stdin.take().unwrap().write_all(roff).unwrap();
    let output = groff.wait_with_output().unwrap();
    assert!(output.status.success());
    // Undo hyphenation at line ends so that words can be searched for.
    String::from_utf8(output.stdout)
        .unwrap()
        .replace("‐\n", "")
        .replace("-\n", "")
}

#[tokio::test]
async fn man_prints_a_subcommands_page_with_variables_and_exit_codes() {
    let page = run_binary(&["man", "run"], &[]).await;
    assert_eq!(page.code, 0, "{}", page.stderr);
    let text = formatted(&page.stdout);
    for expected in [
        "BIHU-RENEW-RUN(1)",
        "--dry-run",
        "--secret-key-label",
        "ENVIRONMENT",
        "BIHU_SECRET_KEY",
        "HTTP_PROXY",
        "EXIT STATUS",
        "130",
        "interrupted",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let missing = run_binary(&["man", "nonesuch"], &[]).await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("name a subcommand (run"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn man_out_writes_every_page_the_top_page_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_binary(&["man", "--out", dir.path().to_str().unwrap()], &[]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let top = formatted(&std::fs::read(dir.path().join("bihu-renew.1")).unwrap());
    // Every page the top page refers to exists, and is a page of its own.
    for sub in ["run", "login", "check", "report", "sandbox", "completions", "man"] {
        let name = format!("bihu-renew-{sub}");
        assert!(
            top.contains(&format!("{name}(1)")),
            "top page lacks {name}(1):\n{top}"
        );
        let page = std::fs::read(dir.path().join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("no {name}.1: {e}"));
        let text = formatted(&page);
        assert!(text.contains(&format!("{}(1)", name.to_uppercase())), "{text}");
        assert!(text.contains("EXIT STATUS"), "{text}");
    }
    let report = formatted(&std::fs::read(dir.path().join("bihu-renew-report.1")).unwrap());
    assert!(report.contains("--against"), "{report}");
    let not_a_dir = run_binary(&["man", "--out", "/nonexistent/man1"], &[]).await;
    assert_eq!(not_a_dir.code, 2);
    assert!(not_a_dir.stderr.contains("mkdir -p"), "{}", not_a_dir.stderr);
}
