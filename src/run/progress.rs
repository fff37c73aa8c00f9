//! Progress on stderr: an indicatif bar on a terminal, a line every few seconds without one
//! (cron mails stay short), or nothing. An [`Observer`] of the pipeline's events.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::results::outcome::Status;
use crate::run::events::{Event, Observer};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    /// One line every `every` (for logs and cron).
    Lines {
        every: Duration,
    },
    Off,
}

impl ProgressMode {
    /// A bar on a terminal, lines otherwise; `Off` when asked.
    pub fn detect(no_progress: bool) -> ProgressMode {
        use std::io::IsTerminal;
        if no_progress {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines {
                every: Duration::from_secs(5),
            }
        }
    }
}

#[derive(Default)]
struct Counts {
    total: AtomicU64,
    written: AtomicU64,
    renewed: AtomicU64,
    not_renewable: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

/// The progress display of one run.
pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    counts: Arc<Counts>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts showing progress (the line mode needs a tokio runtime).
    pub fn start(mode: ProgressMode) -> Progress {
        let counts = Arc::new(Counts::default());
        let started = Instant::now();
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{wide_bar:.cyan/blue}] {pos}/{len} rows {rate} ETA {eta} {msg}",
                )
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = write!(out, "{:.1}/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let ticker = match mode {
            ProgressMode::Lines { every } => {
                let counts = counts.clone();
                Some(tokio::spawn(async move {
                    let mut interval = tokio::time::interval(every);
                    interval.tick().await;
                    loop {
                        interval.tick().await;
                        eprintln!("{}", line(&counts, started));
                    }
                }))
            }
            _ => None,
        };
        Progress {
            mode,
            bar,
            counts,
            ticker,
        }
    }

    /// Clears the bar and stops the ticker, before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(ticker) = &self.ticker {
            ticker.abort();
        }
    }
}

fn line(counts: &Counts, started: Instant) -> String {
    let total = counts.total.load(Ordering::Relaxed);
    let written = counts.written.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let rate = written as f64 / elapsed;
    let share = if total > 0 {
        format!(" ({:.1}%)", 100.0 * written as f64 / total as f64)
    } else {
        String::new()
    };
    let eta = if total > written && rate > 0.0 {
        format!(", ETA {}s", ((total - written) as f64 / rate).round())
    } else {
        String::new()
    };
    format!(
        "progress: {written}/{total} rows{share}, {rate:.1} rows/s{eta}; renewed {}, not renewable {}, rejected {}, failed {}; {} requests ({} retries)",
        counts.renewed.load(Ordering::Relaxed),
        counts.not_renewable.load(Ordering::Relaxed),
        counts.rejected.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        counts.requests.load(Ordering::Relaxed),
        counts.retries.load(Ordering::Relaxed),
    )
}

impl Observer for Progress {
    fn on_event(&self, event: &Event) {
        let counts = &self.counts;
        match event {
            Event::Total { rows } => {
                counts.total.store(*rows, Ordering::Relaxed);
                if let Some(bar) = &self.bar {
                    bar.set_length(*rows);
                }
            }
            Event::Attempt { retry, .. } => {
                counts.requests.fetch_add(1, Ordering::Relaxed);
                if *retry {
                    counts.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
            Event::RowWritten { status, .. } => {
                counts.written.fetch_add(1, Ordering::Relaxed);
                let counter = match status {
                    Status::Renewed => &counts.renewed,
                    Status::NotRenewable => &counts.not_renewable,
                    Status::InvalidInput | Status::InvalidParams => &counts.rejected,
                    _ => &counts.failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!(
                        "renewed {} failed {}",
                        counts.renewed.load(Ordering::Relaxed),
                        counts.failed.load(Ordering::Relaxed)
                    ));
                }
            }
            Event::Stopping { reason } => {
                let text = format!("bihu-renew: stopping: {reason}");
                match &self.bar {
                    Some(bar) => bar.println(text),
                    None if self.mode != ProgressMode::Off => eprintln!("{text}"),
                    None => {}
                }
            }
        }
    }
}
