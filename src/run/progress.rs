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
    /// Rows kept from an earlier run (`--resume`): written, but not this run's work.
    kept: AtomicU64,
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
                    "{elapsed_precise} [{wide_bar:.cyan/blue}] {pos}/{len} rows {rate} ETA {pace_eta} {msg}",
                )
                .expect("a valid template")
                // Rate and ETA from this run's rows only: rows kept by --resume come at once.
                .with_key("rate", {
                    let counts = counts.clone();
                    move |_: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = write!(out, "{:.1}/s", Pace::of(&counts, started).rate);
                    }
                })
                .with_key("pace_eta", {
                    let counts = counts.clone();
                    move |_: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = match Pace::of(&counts, started).eta_secs {
                            Some(secs) => {
                                write!(out, "{}", indicatif::HumanDuration(Duration::from_secs(secs)))
                            }
                            None => write!(out, "-"),
                        };
                    }
                })
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

    /// A message on stderr that does not garble the bar, whatever the mode.
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
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

/// Rows per second and the time left, from the rows this run processed (kept rows excluded).
struct Pace {
    rate: f64,
    eta_secs: Option<u64>,
}

impl Pace {
    fn of(counts: &Counts, started: Instant) -> Pace {
        Pace::from(
            counts.total.load(Ordering::Relaxed),
            counts.written.load(Ordering::Relaxed),
            counts.kept.load(Ordering::Relaxed),
            started.elapsed(),
        )
    }

    fn from(total: u64, written: u64, kept: u64, elapsed: Duration) -> Pace {
        let processed = written.saturating_sub(kept);
        let rate = processed as f64 / elapsed.as_secs_f64().max(1e-9);
        let eta_secs =
            (total > written && rate > 0.0).then(|| ((total - written) as f64 / rate).round() as u64);
        Pace { rate, eta_secs }
    }
}

fn line(counts: &Counts, started: Instant) -> String {
    let total = counts.total.load(Ordering::Relaxed);
    let written = counts.written.load(Ordering::Relaxed);
    let Pace { rate, eta_secs } = Pace::of(counts, started);
    let share = if total > 0 {
        format!(" ({:.1}%)", 100.0 * written as f64 / total as f64)
    } else {
        String::new()
    };
    let eta = eta_secs.map_or(String::new(), |secs| format!(", ETA {secs}s"));
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
            Event::RowWritten { status, kept, .. } => {
                counts.written.fetch_add(1, Ordering::Relaxed);
                if *kept {
                    counts.kept.fetch_add(1, Ordering::Relaxed);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_count_only_this_runs_rows() {
        // Issue 16: 160 of 300 written after 2 s, 150 of them kept from before: 10 rows in
        // 2 s is 5/s, and the 140 left take 28 s (not "73.8/s, ETA 2s").
        let pace = Pace::from(300, 160, 150, Duration::from_secs(2));
        assert_eq!(pace.rate, 5.0);
        assert_eq!(pace.eta_secs, Some(28));
        let fresh = Pace::from(300, 100, 0, Duration::from_secs(10));
        assert_eq!((fresh.rate, fresh.eta_secs), (10.0, Some(20)));
        assert_eq!(Pace::from(300, 150, 150, Duration::from_secs(1)).eta_secs, None);
        assert_eq!(Pace::from(300, 300, 0, Duration::from_secs(1)).eta_secs, None);
    }

    #[test]
    fn the_cron_line_uses_this_runs_pace() {
        let counts = Counts::default();
        counts.total.store(300, Ordering::Relaxed);
        counts.written.store(150, Ordering::Relaxed);
        counts.kept.store(150, Ordering::Relaxed);
        let text = line(&counts, Instant::now());
        assert!(text.contains("0.0 rows/s"), "{text}");
        assert!(!text.contains("ETA"), "no ETA before this run has a pace: {text}");
    }
}
