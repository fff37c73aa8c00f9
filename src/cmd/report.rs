//! `bihu-renew report`: accounts for results files (`crate::report`) and prints the account on
//! stdout, since it is the data asked for; notes go to stderr. Writes the HTML page, the JSON
//! and the changes CSV when asked.

use anyhow::Context;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use crate::error::exit;
use crate::report::Report;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Results CSVs written by `run` (several are counted together; interrupted ones too).
    #[arg(required = true, value_name = "RESULTS.csv")]
    pub files: Vec<PathBuf>,

    /// An earlier results CSV: count, per vehicle, what changed since.
    #[arg(long, value_name = "PREVIOUS.csv")]
    pub against: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page (works offline, prints on A4).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Also write the report's figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write the vehicles that changed since --against as CSV, with both outcomes.
    #[arg(long, value_name = "FILE", requires = "against")]
    pub changes: Option<PathBuf>,

    /// The --city-code the runs used, for rows whose own city column is empty and whose
    /// plate names no Bihu city (a results file does not record it); without it such rows
    /// count under city "unknown".
    #[arg(long)]
    pub city_code: Option<String>,

    /// Write cells of the --changes CSV as they are, even those a spreadsheet would run as
    /// formulas (by default such a cell, one starting with = + - @ tab or CR, gets a ' in front).
    #[arg(long)]
    pub raw_cells: bool,
}

pub async fn run(args: ReportArgs) -> anyhow::Result<i32> {
    // Reading big files is blocking work: keep it off the runtime's threads.
    tokio::task::spawn_blocking(move || report(&args))
        .await
        .context("the worker thread stopped")?
}

fn report(args: &ReportArgs) -> anyhow::Result<i32> {
    refuse_overwriting_inputs(args)?;
    let default_city = args
        .city_code
        .as_deref()
        .map(crate::cmd::parse_city_flag)
        .transpose()?;
    let report = Report::build(&args.files, args.against.as_deref(), default_city)?;
    for note in &report.notes {
        eprintln!("bihu-renew: note: {note}");
    }
    let mut stdout = io::stdout().lock();
    match write!(stdout, "{report}").and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
            return Err(anyhow::Error::new(error).context("cannot write the report to stdout"));
        }
        _ => {}
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).expect("a report serialises") + "\n";
        fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bihu-renew: wrote the JSON to {}", path.display());
    }
    if let Some(path) = &args.html {
        fs::write(path, report.to_html()).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("bihu-renew: wrote the HTML page to {}", path.display());
    }
    if let (Some(path), Some(comparison)) = (&args.changes, &report.against) {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        comparison
            .write_changes_csv(
                BufWriter::new(file),
                crate::results::formula::FormulaGuard(!args.raw_cells),
            )
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "bihu-renew: wrote {} changed vehicles to {}",
            comparison.changed.len(),
            path.display()
        );
    }
    Ok(exit::OK)
}

/// A mistyped flag must not replace a results file with a report.
fn refuse_overwriting_inputs(args: &ReportArgs) -> anyhow::Result<()> {
    let inputs: Vec<PathBuf> = args
        .files
        .iter()
        .chain(&args.against)
        .filter_map(|path| fs::canonicalize(path).ok())
        .collect();
    for (flag, output) in [
        ("--html", &args.html),
        ("--json", &args.json),
        ("--changes", &args.changes),
    ] {
        if let Some(path) = output
            && let Ok(real) = fs::canonicalize(path)
            && inputs.contains(&real)
        {
            return Err(anyhow::anyhow!(
                "{flag} {} is one of the results files read: writing it would destroy it; choose another file",
                path.display()
            ));
        }
    }
    Ok(())
}
