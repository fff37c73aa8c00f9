//! `bihu-renew completions SHELL` and `bihu-renew man`: generated from the clap definitions,
//! so they never drift from the real flags.
//!
//! Two things the generators get wrong or leave out are mended here. clap_complete's bash
//! script names its states from the binary's name inconsistently when the name has a hyphen
//! (`bihu__renew__subcmd__run` where a word is read, `bihu__subcmd__renew__subcmd__run` where
//! it is completed), so completion stopped after the subcommand; [`bash_fix`] makes the two
//! agree. clap_mangen writes options and their variables but no ENVIRONMENT or EXIT STATUS
//! section, and nothing for pages that are not asked for; [`man`] adds both sections and
//! writes one page per subcommand.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use clap_mangen::roff::{Roff, bold, roman};

use crate::error::exit;

pub fn completions(mut command: clap::Command, shell: clap_complete::Shell) -> anyhow::Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, BIN, &mut script);
    let mut script = String::from_utf8(script).expect("clap_complete writes UTF-8");
    if shell == clap_complete::Shell::Bash {
        script = bash_fix(&script);
    }
    std::io::stdout().write_all(script.as_bytes())?;
    Ok(exit::OK)
}

const BIN: &str = "bihu-renew";

/// Makes the states a bash script completes in match the states it reads words into.
///
/// The reading loop names a state by the binary's name with `-` as `__`, then `__subcmd__`
/// and the subcommand (`bihu__renew__subcmd__run`); the completing `case` spells the
/// binary's own hyphen as `__subcmd__` too (`bihu__subcmd__renew__subcmd__run`), so no arm
/// ever matched after a subcommand. A script already consistent comes back unchanged.
pub fn bash_fix(script: &str) -> String {
    let read = BIN.replace('-', "__");
    let completed = BIN.replace('-', "__subcmd__");
    script.replace(&format!("{completed}__"), &format!("{read}__"))
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (run, check, report, …); the top-level page
    /// without one.
    pub page: Option<String>,

    /// Write every page (bihu-renew.1, bihu-renew-run.1, …) into this directory instead, for
    /// `man -l` or a MANPATH directory's man1/.
    #[arg(long, conflicts_with = "page")]
    pub out: Option<PathBuf>,
}

pub fn man(command: clap::Command, args: &ManArgs) -> anyhow::Result<i32> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    if let Some(dir) = &args.out {
        let written = write_pages(&command, dir)?;
        for path in written {
            eprintln!("bihu-renew: wrote {}", path.display());
        }
        return Ok(exit::OK);
    }
    let page = match args.page.as_deref() {
        None => command.clone(),
        Some(name) => subcommand(&command, name)?.clone(),
    };
    std::io::stdout().write_all(&render(&page, &command)?)?;
    Ok(exit::OK)
}

fn subcommand<'a>(top: &'a clap::Command, name: &str) -> anyhow::Result<&'a clap::Command> {
    top.find_subcommand(name).ok_or_else(|| {
        let names: Vec<&str> = top.get_subcommands().map(clap::Command::get_name).collect();
        anyhow::anyhow!(
            "no man page for {name:?}: name a subcommand ({}), or none for the top-level page",
            names.join(", ")
        )
    })
}

/// Writes the top-level page and one per subcommand into `dir`.
fn write_pages(top: &clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(anyhow::anyhow!(
            "--out {}: not a directory; create it first (mkdir -p {})",
            dir.display(),
            dir.display()
        ));
    }
    let mut written = Vec::new();
    for page in std::iter::once(top).chain(top.get_subcommands()) {
        let path = dir.join(format!("{}.1", page_name(page)));
        std::fs::write(&path, render(page, top)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// `bihu-renew` or `bihu-renew-run`, as `man` looks pages up.
fn page_name(page: &clap::Command) -> String {
    page.get_display_name().unwrap_or(page.get_name()).to_string()
}

/// A page: clap_mangen's sections, then ENVIRONMENT, EXIT STATUS and SEE ALSO.
fn render(page: &clap::Command, top: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let is_top = page.get_name() == top.get_name();
    let man = clap_mangen::Man::new(page.clone())
        .title(page_name(page).to_uppercase())
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if page.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if page.has_subcommands() {
        man.render_subcommands_section(&mut out)?;
    }

    let mut roff = Roff::new();
    roff.control("SH", ["ENVIRONMENT"]);
    let mut variables: Vec<(String, String)> = page
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter_map(|arg| {
            let name = arg.get_env()?.to_string_lossy().into_owned();
            let long = arg
                .get_long()
                .map_or_else(String::new, |long| format!("--{long}"));
            Some((name, format!("as {long}; the flag wins over the variable.")))
        })
        .collect();
    variables.push((
        "BIHU_LOG".into(),
        "a tracing filter (such as bihu_renew=debug) for the log lines on stderr; overrides -v.".into(),
    ));
    if matches!(page.get_name(), "run" | "login" | "check") {
        variables.push((
            "HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY".into(),
            "the proxy for an http:// or https:// base URL, as for curl; never used for a loopback base URL."
                .into(),
        ));
    }
    for (name, meaning) in variables {
        roff.control("TP", []);
        roff.text([bold(name)]);
        roff.text([roman(meaning)]);
    }

    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in exit_codes(if is_top { "" } else { page.get_name() }) {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*meaning)]);
    }

    roff.control("SH", ["SEE ALSO"]);
    let others: Vec<String> = std::iter::once(top)
        .chain(top.get_subcommands())
        .filter(|other| page_name(other) != page_name(page))
        .map(|other| format!("{}(1)", page_name(other)))
        .collect();
    roff.text([roman(format!(
        "{}. The README.md of the source describes the input, output columns and statuses in full.",
        others.join(", ")
    ))]);
    roff.to_writer(&mut out)?;
    if !is_top {
        return Ok(out);
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// The exit codes of a subcommand (`""` for the top-level page: all of them).
pub fn exit_codes(subcommand: &str) -> &'static [(i32, &'static str)] {
    const USAGE: (i32, &str) = (
        exit::USAGE,
        "usage, configuration or input-file error, before any request",
    );
    match subcommand {
        "run" => &[
            (
                exit::OK,
                "every row reached a final outcome (renewed, not_renewable, invalid_params, invalid_input); with --dry-run, every row is ready",
            ),
            (
                exit::SOME_TRANSIENT,
                "the run finished, but some rows ended in a transient or credential failure (rerun with --resume); with --dry-run, some rows are invalid; or the first login got no verdict (nothing was renewed: run the same command again)",
            ),
            USAGE,
            (exit::CREDENTIALS, "aborted because the credentials were rejected"),
            (
                exit::WRITE_FAILED,
                "a file stopped the run after requests were sent (a results file or the journal not written, the finished file not renamed into place, the input unreadable or the journal another input's; fix it and rerun with --resume), or the --summary-json file could not be written",
            ),
            (
                exit::INTERRUPTED,
                "interrupted (SIGINT/SIGTERM); run the same command with --resume",
            ),
        ],
        "login" => &[
            (exit::OK, "logged in; the Token is on stdout"),
            (
                exit::SOME_TRANSIENT,
                "no verdict: Bihu could not be reached or answered with a server error",
            ),
            USAGE,
            (
                exit::CREDENTIALS,
                "the login was refused; the message says which credential",
            ),
        ],
        "check" => &[
            (
                exit::OK,
                "the credentials work: the renewal was signed and accepted",
            ),
            (
                exit::SOME_TRANSIENT,
                "no verdict: no answer, a server error, or the vehicle's parameters refused (412)",
            ),
            USAGE,
            (
                exit::CREDENTIALS,
                "a credential was refused; the message says which one as far as the answers tell",
            ),
        ],
        "report" => &[
            (exit::OK, "the report was written"),
            (
                exit::USAGE,
                "a file cannot be read or is not a results file, or a flag is wrong",
            ),
        ],
        "sandbox" => &[
            (exit::OK, "stopped by Ctrl-C or SIGTERM"),
            (
                exit::USAGE,
                "a flag is wrong, the address cannot be listened on, or the --record file cannot be created",
            ),
        ],
        "history" => &[
            (exit::OK, "the answers or the counts were printed"),
            (
                exit::USAGE,
                "the history file cannot be opened, or a flag is wrong",
            ),
        ],
        "completions" | "man" => &[(exit::OK, "written"), USAGE],
        _ => &[
            (exit::OK, "success (for run: every row reached a final outcome)"),
            (
                exit::SOME_TRANSIENT,
                "run: some rows ended in a transient or credential failure (rerun with --resume); run's first login, login and check: no verdict",
            ),
            USAGE,
            (
                exit::CREDENTIALS,
                "the credentials were rejected (run aborted, login or check refused)",
            ),
            (
                exit::WRITE_FAILED,
                "run: a file stopped the run after requests were sent (rerun with --resume once it is fixed), or the --summary-json file could not be written",
            ),
            (exit::INTERRUPTED, "run interrupted (SIGINT/SIGTERM)"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_fix_joins_the_two_spellings_of_a_state() {
        let script = "bihu__renew,run)\n cmd=\"bihu__renew__subcmd__run\"\n;;\ncase \"${cmd}\" in\n bihu__subcmd__renew__subcmd__run)\n";
        let fixed = bash_fix(script);
        assert!(!fixed.contains("bihu__subcmd__renew"), "{fixed}");
        assert_eq!(fixed.matches("bihu__renew__subcmd__run").count(), 2, "{fixed}");
        assert_eq!(bash_fix(&fixed), fixed);
    }
}
