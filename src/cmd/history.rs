//! `bihu-renew history`: what the answer history (`run --history FILE`, or the service's
//! store) knows about a vehicle, on stdout as CSV; `--prune` trims it. Never sends a request.

use anyhow::Context;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;

use crate::cmd::config_file::ConfigFile;
use crate::error::exit;
use crate::leads::lead::{VehicleKey, normalise_plate, normalise_vin};
use crate::results::history::{self, History};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The history file (SQLite), as given to `run --history`.
    #[arg(long, env = "BIHU_HISTORY", value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// TOML file whose `history` key names the file, when --history is not given.
    #[arg(long, env = "BIHU_CONFIG")]
    pub config: Option<PathBuf>,

    /// A plate or a VIN (noise such as spaces and dashes is ignored): print every answer
    /// known for it, newest first. Without it, print how many answers the file holds.
    pub vehicle: Option<String>,

    /// Delete the answers older than this (`30d`, `12h`; s, m, h, d) before anything else.
    #[arg(long, value_name = "OLDER_THAN", value_parser = history::parse_duration)]
    pub prune: Option<std::time::Duration>,
}

/// The columns `history VEHICLE` prints.
pub const COLUMNS: [&str; 10] = [
    "answered_at",
    "agent_id",
    "plate",
    "vin",
    "engine_no",
    "city",
    "status",
    "http_status",
    "renewal_token",
    "message",
];

pub async fn run(args: HistoryArgs) -> anyhow::Result<i32> {
    tokio::task::spawn_blocking(move || show(&args))
        .await
        .context("the worker thread stopped")?
}

fn show(args: &HistoryArgs) -> anyhow::Result<i32> {
    let file = ConfigFile::load(args.config.as_deref())?;
    let path = args.history.clone().or(file.history).ok_or_else(|| {
        anyhow::anyhow!(
            "history needs --history FILE (or BIHU_HISTORY, or `history = \"FILE\"` in the --config file)"
        )
    })?;
    if !path.exists() {
        return Err(anyhow::anyhow!(
            "{} does not exist: a history is made by `run --history {}`",
            path.display(),
            path.display()
        ));
    }
    let mut history = History::open(&path)?;
    if let Some(older_than) = args.prune {
        let now = history::unix_ms_now();
        let cutoff = now.saturating_sub(older_than.as_millis() as i64);
        let n = history.prune(cutoff)?;
        eprintln!(
            "bihu-renew: pruned {n} answer{} given before {} from {}",
            if n == 1 { "" } else { "s" },
            history::format_time(cutoff),
            path.display()
        );
    }
    let mut stdout = io::stdout().lock();
    match &args.vehicle {
        Some(vehicle) => {
            let plate = normalise_plate(vehicle);
            let vin = normalise_vin(vehicle);
            let mut answers = history.list(&plate)?;
            if vin != plate {
                answers.extend(history.list(&vin)?);
                answers.sort_by_key(|answer| std::cmp::Reverse(answer.answered_at));
            }
            let mut csv = csv::Writer::from_writer(&mut stdout);
            csv.write_record(COLUMNS).context("cannot write to stdout")?;
            for answer in &answers {
                let (plate, vin, engine, city) = match &answer.vehicle {
                    VehicleKey::Plate { plate, city } => (plate.as_str(), "", "", *city),
                    VehicleKey::Vin { vin, engine, city } => ("", vin.as_str(), engine.as_str(), *city),
                };
                csv.write_record([
                    history::format_time(answer.answered_at).as_str(),
                    &answer.agent_id,
                    plate,
                    vin,
                    engine,
                    &city.to_string(),
                    answer.status.as_str(),
                    &answer.http_status.map(|s| s.to_string()).unwrap_or_default(),
                    &answer.renewal_token,
                    &answer.message,
                ])
                .context("cannot write to stdout")?;
            }
            csv.flush()?;
            if answers.is_empty() {
                eprintln!(
                    "bihu-renew: {} holds no answer for {vehicle:?} (looked for plate {plate} and VIN {vin})",
                    path.display()
                );
            }
        }
        None => {
            let n = history.count()?;
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            writeln!(stdout, "answers\t{n}\nfile_bytes\t{size}")?;
        }
    }
    Ok(exit::OK)
}
