//! The batch run, in one place: read → validate → dedupe → pace → sign → send → retry →
//! order → write.
//!
//! - A survey reads the input once first: the row count, and which vehicles occur more than
//!   once (only their outcomes are remembered, so memory does not grow with the list).
//! - A blocking thread reads and validates the input (`input.rs`), beside the earlier OUTPUT
//!   when resuming (`resume.rs`), and hands rows over in batches through a bounded channel.
//! - One loop ([`Run::drive`]) does the rest. It takes rows in order into a window bounded in
//!   rows and bytes (`window.rs`):
//!   rejected, kept and duplicate rows are decided at once; each vehicle to renew is queued,
//!   in order, for one of `concurrency` request slots.
//! - A row's turn takes a request slot from the [`Quota`] (shared with other runs, which take
//!   turns for slots), passes its rate limiter, then sends one attempt. A row that must wait
//!   out a backoff leaves its slot and is parked; when its time comes it goes before the
//!   fresh rows.
//! - Every answer is appended to the journal beside OUTPUT as it arrives (`journal.rs`), and
//!   the front of the window is written in input order as soon as it is decided (`output.rs`),
//!   both flushed after every batch: what is on disk is a clean, resumable prefix plus every
//!   answer beyond it. A failed write stops the run at once (no new request is sent).
//! - One run per OUTPUT: the run holds OUTPUT's lock (`lock.rs`) from start to end.
//! - One stop token ends intake: cancelled from outside (Ctrl-C) or by the credential
//!   breaker when 403/406 answers keep coming.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use csv::StringRecord;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::client::{self, Client, Http, Proxies};
use crate::api::protocol::Answer;
use crate::api::transport::Transport;
use crate::error::Error;
use crate::leads::input::{InputError, InputRow, LeadReader};
use crate::leads::lead::Lead;
use crate::results::history::{self, History};
use crate::results::journal::{self, Journal};
use crate::results::lock::OutputLock;
use crate::results::outcome::{RowOutcome, Status};
use crate::results::output::{self, OutputTarget, ResultWriter};
use crate::results::resume::{self, PreviousRows};
use crate::results::table::{Format, TableReader};
use crate::results::xlsx;
use crate::run::config::{Existing, RunConfig};
use crate::run::events::{Event, Observer};
use crate::run::quota::{Member, Quota};
use crate::run::summary::{RunEnd, Summary};
use crate::run::window::{self, BATCH_BYTES, Finished, RowResult, WINDOW_BYTES, Window};

/// Runs a whole list over HTTP within `quota` (the command line's own, or the service's
/// shared one). `cancel` stops intake (Ctrl-C); the result says how the run ended.
pub async fn run(
    config: RunConfig,
    quota: &Quota,
    observer: Arc<dyn Observer>,
    cancel: CancellationToken,
) -> Result<Summary, Error> {
    run_over(config, quota, observer, cancel, http_transport).await
}

/// The HTTP transport of a run: reqwest, with the environment's proxies.
fn http_transport(config: &RunConfig) -> Result<Arc<dyn Transport>, Error> {
    let http = Http::new(
        &config.base_url,
        config.timeout,
        config.concurrency.get(),
        Proxies::Environment,
    )
    .map_err(|e| Error::Usage(format!("cannot build the HTTP client: {e}")))?;
    Ok(Arc::new(http))
}

/// Runs a whole list over the transport that `connect` makes once the run knows it has rows
/// to send (tests drive the pipeline through a fake one).
pub async fn run_over(
    config: RunConfig,
    quota: &Quota,
    observer: Arc<dyn Observer>,
    cancel: CancellationToken,
    connect: impl FnOnce(&RunConfig) -> Result<Arc<dyn Transport>, Error>,
) -> Result<Summary, Error> {
    let started = Instant::now();
    // First of all: another run on this OUTPUT must not see its files touched.
    let _lock = match &config.output {
        OutputTarget::File(path) => Some(OutputLock::acquire(path)?),
        OutputTarget::Stdout => None,
    };
    let reader = LeadReader::open(&config.input, &config.input_options)?;
    let headers = reader.headers().clone();
    let mut prepared = prepare_output(&config, &reader)?;
    if let Some(summary) = prepared.nothing_to_do(&config, started) {
        return Ok(summary);
    }

    // Never the Token or the secret: only what says which run this is.
    tracing::debug!(
        input = %config.input.display(),
        output = %config.output.display(),
        base_url = %config.base_url,
        agent_id = %config.agent.agent_id,
        rate = config.rate.get(),
        burst = config.burst.get(),
        concurrency = config.concurrency.get(),
        retries = config.retries,
        "starting the run"
    );
    let survey = {
        // A workbook's sheet is shared, not read again.
        let survey_reader = reader.reopen()?;
        tokio::task::spawn_blocking(move || Survey::of(survey_reader))
            .await
            .expect("the survey does not panic")?
    };
    observer.on_event(&Event::Total { rows: survey.n_rows });
    tracing::debug!(
        rows = survey.n_rows,
        duplicated_vehicles = survey.duplicates.len(),
        "surveyed the input"
    );

    if let OutputTarget::File(path) = &config.output
        && Format::of(path) == Format::Xlsx
        && survey.n_rows >= xlsx::MAX_ROWS
    {
        return Err(Error::Usage(format!(
            "{} has {} rows, more than the {} an .xlsx sheet holds; nothing was sent. Write the results as CSV (-o with a .csv name)",
            config.input.display(),
            survey.n_rows,
            xlsx::MAX_ROWS - 1
        )));
    }

    // Every file the run writes is created before the first request (a login included).
    let mut writer = config
        .output
        .open(config.output_style)
        .map_err(Error::file("cannot create", written_path(&config.output)))?;
    writer
        .write_header(&headers)
        .map_err(write_error(written_path(&config.output)))?;
    writer
        .flush()
        .map_err(write_error(written_path(&config.output)))?;
    let journal_live = std::mem::take(&mut prepared.journal_live);
    let journal = match &config.output {
        OutputTarget::File(path) if journal::enabled() => {
            let path = journal::journal_path(path);
            let journal =
                Journal::create(&path, journal_live.values()).map_err(Error::file("cannot create", &path))?;
            Some(journal)
        }
        _ => None,
    };

    // Opened before the first request: a history that cannot be opened stops the run here.
    // With reuse on, the vehicles it holds recent answers for are read once, so that rows
    // for other vehicles need no query.
    let (history, answered) = match &config.history {
        Some(settings) => {
            let path = settings.path.clone();
            let reuse = settings.reuse_within.map(|within| {
                let ms = i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
                (
                    config.agent.agent_id.clone(),
                    history::unix_ms_now().saturating_sub(ms),
                )
            });
            let opened = tokio::task::spawn_blocking(move || {
                let mut history = History::open(&path)?;
                let answered = match reuse {
                    Some((agent_id, since)) => Some(history.answered_since(&agent_id, since)?),
                    None => None,
                };
                Ok::<_, history::HistoryError>((history, answered))
            })
            .await
            .expect("opening the history does not panic");
            let (history, answered) = opened
                .map_err(|error| Error::Usage(format!("{error}; nothing was sent. Check --history")))?;
            (Some(history), answered)
        }
        None => (None, None),
    };

    let client = Client::over(connect(&config)?, config.agent.clone(), &config.base_url);
    let shared = Arc::new(RunState::new(
        &config,
        quota.member(),
        client,
        observer.clone(),
        cancel.child_token(),
    ));
    let token = match &config.token {
        Some(token) => token.clone(),
        None => shared.first_login().await?,
    };
    shared.tokens.set(token);

    let (batches_rx, reader_thread) =
        spawn_reader(reader, prepared.previous_rows, journal_live, config.window());

    let mut run = Run {
        config: &config,
        shared: shared.clone(),
        writer,
        journal,
        duplicates: survey.duplicates,
        window: Window::new(config.window(), WINDOW_BYTES),
        received: VecDeque::new(),
        fresh: VecDeque::new(),
        retries: VecDeque::new(),
        parked: BTreeMap::new(),
        counts: BTreeMap::new(),
        n_written: 0,
        n_read: 0,
        n_kept: 0,
        n_duplicates: 0,
        n_reused: 0,
        history,
        answered,
        answered_read: std::time::Instant::now(),
        to_record: Vec::new(),
        halted: false,
    };
    let input_done = match run.drive(batches_rx).await {
        Ok(input_done) => input_done,
        Err(error) => {
            // Whatever failed, the answers already journalled are pushed out if they can be.
            if let Some(journal) = run.journal.take() {
                let _ = journal.finish();
            }
            return Err(error);
        }
    };
    let _ = reader_thread.join();
    let written = written_path(&config.output);
    run.writer.flush().map_err(write_error(&written))?;

    let complete = input_done && !run.halted && run.n_written == run.n_read;
    let journal = run.journal.take();
    if complete {
        // OUTPUT is on disk before the journal goes: a power cut loses neither.
        run.writer.sync().map_err(write_error(&written))?;
        config.output.complete().map_err(|source| match &config.output {
            OutputTarget::File(path) if Format::of(path) == Format::Xlsx => Error::Write {
                path: path.clone(),
                source,
            },
            _ => Error::file("cannot rename", &written)(source),
        })?;
        if let OutputTarget::File(path) = &config.output {
            sync_directory(path).map_err(Error::file("cannot sync the directory of", path))?;
        }
        if let Some(journal) = journal {
            let path = journal.path().to_path_buf();
            drop(journal);
            journal::remove(&path).map_err(Error::file("cannot remove", &path))?;
        }
    } else {
        if let Some(journal) = journal {
            let path = journal.path().to_path_buf();
            journal.finish().map_err(write_error(&path))?;
        }
        if let OutputTarget::File(path) = &config.output {
            resume::consolidate(path)?;
        }
    }

    let end = if complete {
        RunEnd::Completed
    } else if shared.breaker.tripped().is_some() {
        RunEnd::Aborted
    } else {
        RunEnd::Interrupted
    };
    // OUTPUT after consolidation also holds earlier rows beyond this run's prefix.
    let rows_total = survey.n_rows.max(run.n_read);
    let mut summary = run.summary(&config, started, rows_total, end);
    summary.stop_reason = shared.breaker.tripped().map(str::to_string);
    if end != RunEnd::Completed {
        if let OutputTarget::File(path) = &config.output {
            summary.absorb_file(path);
        }
        summary.not_reached = rows_total.saturating_sub(summary.rows_written);
    }
    Ok(summary)
}

/// The file the run writes its rows into: OUTPUT's `.partial`, or stdout.
fn written_path(output: &OutputTarget) -> std::path::PathBuf {
    match output {
        OutputTarget::File(path) => output::partial_path(path),
        OutputTarget::Stdout => "stdout".into(),
    }
}

fn write_error(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Write { path, source }
}

/// `fsync`s the directory holding `path`, so that a rename in it survives a power cut.
fn sync_directory(path: &std::path::Path) -> std::io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => fs::File::open(dir)?.sync_all(),
        None => fs::File::open(".")?.sync_all(),
    }
}

/// What the output side looks like before the first row: a fresh file, or an earlier run
/// to continue.
struct Prepared {
    previous: Option<resume::Previous>,
    previous_rows: Option<PreviousRows>,
    input_exhausted_by_previous: bool,
    /// The journal's records for rows that OUTPUT does not hold as final, by row.
    journal_live: BTreeMap<u64, journal::Record>,
}

fn prepare_output(config: &RunConfig, reader: &LeadReader) -> Result<Prepared, Error> {
    let mut prepared = Prepared {
        previous: None,
        previous_rows: None,
        input_exhausted_by_previous: false,
        journal_live: BTreeMap::new(),
    };
    let OutputTarget::File(path) = &config.output else {
        return Ok(prepared);
    };
    let partial = output::partial_path(path);
    let journal_path = journal::journal_path(path);
    let exists = path.exists() || partial.exists() || journal_path.exists();
    match config.existing {
        Existing::Refuse if exists => {
            let which = [path, &partial, &journal_path]
                .into_iter()
                .find(|file| file.exists())
                .expect("one exists")
                .clone();
            return Err(Error::Usage(format!(
                "{} already exists; nothing was sent. Pass --resume to continue it (rows already renewed are kept), or --force to start over, or -o to write elsewhere",
                which.display()
            )));
        }
        Existing::Refuse => {}
        Existing::Overwrite => {
            for file in [path, &partial, &journal_path] {
                if file.exists() {
                    fs::remove_file(file).map_err(Error::file("cannot remove", file))?;
                }
            }
        }
        Existing::Resume => {
            resume::consolidate(path)?;
            // One flag a row: which rows OUTPUT holds as final (the journal's others count).
            let mut final_rows = Vec::new();
            if path.exists() {
                let mut input = reader.reopen()?;
                let previous =
                    resume::verify_each(path, &mut input, |status| final_rows.push(status.is_final()))?;
                prepared.input_exhausted_by_previous = input.next_row().is_none();
                prepared.previous = Some(previous);
                prepared.previous_rows = Some(PreviousRows::open(path)?);
            }
            if journal_path.exists() {
                let is_final = |row: u64| {
                    row.checked_sub(1)
                        .and_then(|i| final_rows.get(i as usize))
                        .copied()
                        .unwrap_or(false)
                };
                prepared.journal_live = journal::load_live(&journal_path, is_final).map_err(|error| {
                    Error::Resume(format!(
                        "cannot read the journal {}: {error}. Move it away to resume from {} alone, or pass --force to start over",
                        journal_path.display(),
                        path.display()
                    ))
                })?;
            }
        }
    }
    Ok(prepared)
}

impl Prepared {
    /// A resumed run whose OUTPUT is complete and final: nothing to send, nothing to write.
    fn nothing_to_do(&self, config: &RunConfig, started: Instant) -> Option<Summary> {
        let previous = self.previous?;
        if !self.input_exhausted_by_previous
            || previous.n_final != previous.n_rows
            || !self.journal_live.is_empty()
        {
            return None;
        }
        let OutputTarget::File(path) = &config.output else {
            return None;
        };
        let mut summary = empty_summary(config, started, previous.n_rows, RunEnd::Completed);
        summary.kept_from_before = previous.n_rows;
        summary.stop_reason = Some(format!(
            "nothing to do: all {} rows of {} already have a final outcome; no request sent",
            previous.n_rows,
            path.display()
        ));
        summary.absorb_file(path);
        Some(summary)
    }
}

fn empty_summary(config: &RunConfig, started: Instant, rows_total: u64, end: RunEnd) -> Summary {
    let mut summary = Summary {
        input: config.input.display().to_string(),
        output: config.output.display(),
        end,
        stop_reason: None,
        rows_total,
        rows_written: 0,
        by_status: BTreeMap::new(),
        requests: 0,
        retries: 0,
        logins: 0,
        duplicates: 0,
        kept_from_before: 0,
        reused: 0,
        processed: 0,
        remaining_transient: 0,
        not_reached: 0,
        elapsed_secs: started.elapsed().as_secs_f64(),
        requests_per_sec: 0.0,
        rows_per_sec: 0.0,
    };
    summary.set_counts(&BTreeMap::new());
    summary
}

impl Summary {
    /// Recounts rows by status from OUTPUT as it is on disk (after an early stop it holds
    /// earlier runs' rows beyond this run's prefix).
    fn absorb_file(&mut self, path: &std::path::Path) {
        let Ok(mut reader) = TableReader::open(path) else {
            return;
        };
        let Ok(layout) = output::Layout::of_header(reader.headers()) else {
            return;
        };
        let mut by_status = BTreeMap::new();
        let mut record = StringRecord::new();
        while let Ok(true) = reader.read_record(&mut record) {
            if let Some((_, outcome)) = layout.parse(&record) {
                *by_status.entry(outcome.status).or_default() += 1;
            }
        }
        self.set_counts(&by_status);
    }
}

/// What the run learns from reading the whole input once before it starts.
struct Survey {
    n_rows: u64,
    duplicates: HashMap<u64, Duplicate>,
}

/// A vehicle that occurs in more than one row.
struct Duplicate {
    /// Its rows not written yet; the entry goes when the last one is.
    remaining: u32,
    first_row: Option<u64>,
    /// The first row's outcome, once written, for the copies.
    outcome: Option<Arc<RowOutcome>>,
}

impl Survey {
    /// Counts the rows (for the progress bar's total) and finds the vehicles that occur more
    /// than once, so that the run remembers outcomes for those only: its memory then grows
    /// with the duplicates, not with the list (8 bytes a row while surveying).
    fn of(mut reader: LeadReader) -> Result<Survey, InputError> {
        let mut keys = Vec::new();
        let mut n_rows = 0;
        while let Some(lead) = reader.next_lead() {
            n_rows += 1;
            if let Ok(lead) = lead? {
                keys.push(lead.dedupe_key());
            }
        }
        keys.sort_unstable();
        let duplicates = keys
            .chunk_by(|a, b| a == b)
            .filter(|same| same.len() > 1)
            .map(|same| {
                let duplicate = Duplicate {
                    remaining: same.len() as u32,
                    first_row: None,
                    outcome: None,
                };
                (same[0], duplicate)
            })
            .collect();
        Ok(Survey { n_rows, duplicates })
    }
}

/// One input row, with what earlier runs left for it when resuming.
type Intake = Result<(InputRow, Earlier), InputError>;

/// What earlier runs left for a row.
enum Earlier {
    Nothing,
    /// OUTPUT's row (kept if final, done again if not).
    Output(RowOutcome),
    /// The journal's latest record, newer than OUTPUT's row: a final answer, or a row that was
    /// waiting out a backoff.
    Journal(journal::Record),
}

/// Rows cross from the reader thread in batches of this many (or [`BATCH_BYTES`]): the main
/// loop is woken once a batch, and the reader once a batch when it waits for room, instead of
/// once a row each.
const READ_BATCH: usize = 256;

fn spawn_reader(
    mut reader: LeadReader,
    mut previous: Option<PreviousRows>,
    mut journalled: BTreeMap<u64, journal::Record>,
    capacity: usize,
) -> (mpsc::Receiver<Vec<Intake>>, std::thread::JoinHandle<()>) {
    let (batches_tx, batches_rx) = mpsc::channel((capacity.min(1024) / READ_BATCH).max(2));
    let thread = std::thread::spawn(move || {
        let mut batch = Vec::with_capacity(READ_BATCH);
        let mut batch_bytes = 0;
        while let Some(row) = reader.next_row() {
            let previous_row = previous.as_mut().and_then(PreviousRows::next_outcome);
            let failed = row.is_err();
            batch_bytes += row.as_ref().map_or(0, |row| window::row_bytes(&row.fields));
            batch.push(row.map(|row| {
                let earlier = match (journalled.remove(&row.row), previous_row) {
                    (Some(record), _) => Earlier::Journal(record),
                    (None, Some(outcome)) => Earlier::Output(outcome),
                    (None, None) => Earlier::Nothing,
                };
                (row, earlier)
            }));
            if failed || batch.len() == READ_BATCH || batch_bytes >= BATCH_BYTES {
                batch_bytes = 0;
                let full = std::mem::replace(&mut batch, Vec::with_capacity(READ_BATCH));
                if batches_tx.blocking_send(full).is_err() || failed {
                    return;
                }
            }
        }
        if !batch.is_empty() {
            let _ = batches_tx.blocking_send(batch);
        }
    });
    (batches_rx, thread)
}

struct Run<'a> {
    config: &'a RunConfig,
    shared: Arc<RunState>,
    writer: ResultWriter,
    /// Every answer as it arrives (none for stdout).
    journal: Option<Journal>,
    duplicates: HashMap<u64, Duplicate>,
    /// Rows read and not written yet, in input order: the last `window.len()` of the
    /// `n_read` rows taken in.
    window: Window,
    /// Rows received from the reader, not yet taken into the window.
    received: VecDeque<Intake>,
    /// Vehicles waiting for a request slot, in input order.
    fresh: VecDeque<Job>,
    /// Rows back from a backoff: they go before fresh ones.
    retries: VecDeque<Job>,
    /// Rows waiting out a backoff, by the time they may go again. They hold no request slot.
    /// On tokio's clock, which tests can pause.
    parked: BTreeMap<(tokio::time::Instant, u64), Job>,
    counts: BTreeMap<Status, u64>,
    n_written: u64,
    n_read: u64,
    n_kept: u64,
    n_duplicates: u64,
    n_reused: u64,
    /// The answer history (`--history`), until a write to it fails.
    history: Option<History>,
    /// The vehicles the history holds recent answers for (with reuse on), and when answers
    /// recorded since were last added to it.
    answered: Option<history::AnsweredSet>,
    answered_read: std::time::Instant,
    /// Final answers of this run not yet in the history (recorded with each flush).
    to_record: Vec<history::Answer>,
    /// A row was abandoned: nothing after it may be written, or OUTPUT would have a gap.
    halted: bool,
}

impl Run<'_> {
    /// The main loop; returns whether the whole input was read.
    ///
    /// One task does everything but reading: it takes rows into the window, starts a turn for
    /// each vehicle while fewer than `concurrency` are in flight (retries first, then fresh rows
    /// in input order, so a row started late never holds back the writing of the rows after
    /// it), parks rows for their backoff, and writes the front of the window as it is decided.
    ///
    /// Turns are futures polled by this loop rather than spawned tasks: on the current-thread
    /// runtime that spares a task, a channel and a wake-up per row. Measured against worker
    /// tasks and against sending threads in BENCHMARKS.md.
    async fn drive(&mut self, mut batches_rx: mpsc::Receiver<Vec<Intake>>) -> Result<bool, Error> {
        let slots = self.config.concurrency.get();
        let shared = self.shared.clone();
        // Registered once: a fresh `cancelled()` future in every turn would lock the token.
        let stopped = shared.stop.cancelled();
        tokio::pin!(stopped);
        let backoff_over = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(backoff_over);
        let mut in_flight = FuturesUnordered::new();
        let mut input_done = false;
        let mut stopping = false;
        loop {
            while self.window.has_room()
                && let Some(intake) = self.received.pop_front()
            {
                let (row, earlier) = intake?;
                self.intake(row, earlier)?;
            }
            if !stopping {
                while in_flight.len() < slots
                    && let Some(job) = self.retries.pop_front().or_else(|| self.fresh.pop_front())
                {
                    in_flight.push(turn(&shared, job));
                }
            }
            let wrote = self.write_ready()?;
            if wrote || self.journal.as_ref().is_some_and(Journal::is_dirty) || !self.to_record.is_empty() {
                self.flush()?;
            }
            if self.window.is_empty() && (stopping || (input_done && self.received.is_empty())) {
                break;
            }
            if let Some(&(due, _)) = self.parked.keys().next() {
                backoff_over.as_mut().reset(due);
            }
            tokio::select! {
                biased;
                _ = &mut stopped, if !stopping => {
                    stopping = true;
                    let reason = self.shared.breaker.tripped().unwrap_or("interrupted").to_string();
                    self.shared.observer.on_event(&Event::Stopping { reason });
                    self.received.clear();
                    for job in std::mem::take(&mut self.fresh) {
                        self.decide(job.seq, RowResult::Abandoned);
                    }
                    let parked = std::mem::take(&mut self.parked).into_values();
                    for job in std::mem::take(&mut self.retries).into_iter().chain(parked) {
                        self.finish_with_last(job);
                    }
                }
                Some(ended) = in_flight.next(), if !in_flight.is_empty() => {
                    // Every turn that has ended goes with this one, then one write and flush.
                    let mut ended = Some(ended);
                    while let Some((job, turn)) = ended {
                        self.after_turn(job, turn, stopping)?;
                        ended = in_flight.next().now_or_never().flatten();
                    }
                }
                _ = &mut backoff_over, if !self.parked.is_empty() => {
                    let now = tokio::time::Instant::now();
                    while let Some(entry) = self.parked.first_entry() && entry.key().0 <= now {
                        self.retries.push_back(entry.remove());
                    }
                }
                batch = batches_rx.recv(), if !stopping && !input_done && self.received.is_empty() => {
                    match batch {
                        Some(batch) => {
                            self.refresh_answered();
                            self.received.extend(batch);
                        }
                        None => input_done = true,
                    }
                }
                else => break,
            }
        }
        Ok(input_done)
    }

    /// Decides, in input order, what a row needs: nothing (rejected, kept), a copy of an
    /// earlier row, or a request.
    fn intake(&mut self, input: InputRow, earlier: Earlier) -> Result<(), Error> {
        let seq = self.n_read;
        self.n_read += 1;
        let InputRow { row, fields, lead } = input;
        let (previous, journalled) = match earlier {
            Earlier::Nothing => (None, None),
            Earlier::Output(outcome) => (Some(outcome), None),
            Earlier::Journal(record) => (None, Some(record)),
        };
        if let Some(record) = &journalled
            && lead.as_ref().ok().map(journal::vehicle_id) != Some(record.vehicle)
        {
            let path = match &self.config.output {
                OutputTarget::File(path) => journal::journal_path(path).display().to_string(),
                OutputTarget::Stdout => "the journal".to_string(),
            };
            return Err(Error::Resume(format!(
                "{path} holds an answer for data row {row} that is not this input's vehicle at row {row}: it was made from another input (or with another --city-code). Resume with the input and settings it was made from, or pass --force to start over"
            )));
        }
        let kept = previous.filter(|outcome| outcome.status.is_final());
        let lead = match lead {
            Err(rejection) => {
                let message = rejection.to_string();
                let result = match kept {
                    Some(outcome) => RowResult::Kept(outcome),
                    None => RowResult::Decided(RowOutcome::invalid_input(message, Vec::new())),
                };
                self.window.push(Finished {
                    row,
                    fields,
                    key: None,
                    warnings: rejection.warnings,
                    result,
                });
                return Ok(());
            }
            Ok(lead) => lead,
        };
        let key = lead.dedupe_key();
        let mut finished = Finished {
            row,
            fields,
            key: Some(key),
            warnings: lead.warnings.clone(),
            result: RowResult::Pending,
        };
        // A vehicle that needs asking may have a recent enough answer in the history.
        let answered = kept.is_some()
            || journalled.as_ref().is_some_and(|record| record.retry.is_none())
            || self
                .duplicates
                .get(&key)
                .is_some_and(|duplicate| duplicate.first_row.is_some());
        let reused = if answered { None } else { self.reuse(&lead) };
        let duplicate = self.duplicates.get_mut(&key);
        if let Some(outcome) = kept {
            // A vehicle answered before the interruption: its later rows copy this.
            if let Some(duplicate) = duplicate
                && duplicate.first_row.is_none()
            {
                duplicate.first_row = Some(row);
                duplicate.outcome = Some(Arc::new(RowOutcome {
                    warnings: Vec::new(),
                    ..outcome.clone()
                }));
            }
            finished.result = RowResult::Kept(outcome);
        } else if let Some(record) = journalled.as_ref().filter(|record| record.retry.is_none()) {
            // Answered before the interruption, beyond what OUTPUT holds.
            if let Some(duplicate) = duplicate
                && duplicate.first_row.is_none()
            {
                duplicate.first_row = Some(row);
                duplicate.outcome = Some(Arc::new(record.outcome.clone()));
            }
            finished.result = RowResult::Journalled(record.outcome.clone());
        } else if let Some(first_row) = duplicate.as_ref().and_then(|duplicate| duplicate.first_row) {
            finished.result = RowResult::CopyOf(first_row);
        } else if let Some(outcome) = reused {
            if let Some(duplicate) = duplicate {
                duplicate.first_row = Some(row);
            }
            self.n_reused += 1;
            finished.result = RowResult::Decided(outcome);
        } else {
            if let Some(duplicate) = duplicate {
                duplicate.first_row = Some(row);
            }
            let mut job = Job::new(seq, row, lead);
            match journalled.and_then(|record| Some((record.retry?, record.outcome))) {
                // Waiting out a backoff when the run ended: it goes on where it was.
                Some((retry, last)) => {
                    job.attempts = last.attempts;
                    job.transient_failures = retry.transient_failures;
                    job.last = Some(last);
                    let wait = retry.due_unix_ms.saturating_sub(journal::unix_ms_now());
                    if wait > 0 {
                        let due = tokio::time::Instant::now() + Duration::from_millis(wait);
                        self.parked.insert((due, seq), job);
                    } else {
                        self.retries.push_back(job);
                    }
                }
                None => self.fresh.push_back(job),
            }
        }
        self.window.push(finished);
        Ok(())
    }

    /// Handles the end of a row's turn; its answer goes to the journal at once.
    fn after_turn(&mut self, job: Job, turn: Turn, stopping: bool) -> Result<(), Error> {
        match turn {
            Turn::Done(outcome) => {
                self.journal(&job, &outcome, None)?;
                if self.history.is_some() && history::is_recorded(outcome.status) {
                    self.to_record.push(history::Answer {
                        agent_id: self.config.agent.agent_id.clone(),
                        vehicle: job.lead.key(),
                        status: outcome.status,
                        http_status: outcome.http_status,
                        renewal_token: outcome.renewal_token.clone(),
                        message: outcome.message.clone(),
                        answered_at: outcome.answered_at.unwrap_or_else(history::unix_ms_now),
                    });
                }
                self.decide(job.seq, RowResult::Decided(outcome));
            }
            Turn::Retry(delay) => {
                if let Some(last) = &job.last {
                    let retry = journal::Retry {
                        transient_failures: job.transient_failures,
                        due_unix_ms: journal::unix_ms_now() + delay.as_millis() as u64,
                    };
                    self.journal(&job, last, Some(retry))?;
                }
                if stopping {
                    // After a stop nothing more is sent: the row keeps what it has.
                    self.finish_with_last(job);
                } else {
                    self.parked
                        .insert((tokio::time::Instant::now() + delay, job.seq), job);
                }
            }
            Turn::Stopped => self.finish_with_last(job),
        }
        Ok(())
    }

    /// The row's answer from the history, when `--reuse-within` is on and its vehicle's latest
    /// final answer is recent enough: no request, `attempts` 0, the quote URL with the current
    /// Token. A history that cannot be read sends the row as usual.
    fn reuse(&self, lead: &Lead) -> Option<RowOutcome> {
        let within = self.config.history.as_ref()?.reuse_within?;
        let history = self.history.as_ref()?;
        if let Some(answered) = &self.answered
            && !answered.may_have(lead.dedupe_key())
        {
            return None;
        }
        let agent_id = &self.config.agent.agent_id;
        let answer = match history.lookup(agent_id, &lead.key(), history::unix_ms_now(), within) {
            Ok(answer) => answer?,
            Err(error) => {
                tracing::warn!("cannot look up the history, the row is sent: {error}");
                return None;
            }
        };
        let quote_url = if answer.renewal_token.is_empty() {
            String::new()
        } else {
            let token = self.shared.tokens.current();
            self.shared
                .client
                .quote_page()
                .url(&token.value, &answer.renewal_token)
        };
        Some(RowOutcome {
            status: answer.status,
            http_status: answer.http_status,
            message: format!(
                "reused the {} answer of {} from the history: {}",
                answer.status,
                history::format_time(answer.answered_at),
                answer.message
            ),
            renewal_token: answer.renewal_token,
            quote_url,
            attempts: 0,
            warnings: Vec::new(),
            answered_at: Some(answer.answered_at),
        })
    }

    /// About once a second, adds the answers recorded since (by another process sharing the
    /// file, or this run) to the answered set, so that they can be reused too.
    fn refresh_answered(&mut self) {
        const EVERY: Duration = Duration::from_secs(1);
        let (Some(history), Some(answered)) = (&self.history, &mut self.answered) else {
            return;
        };
        if self.answered_read.elapsed() < EVERY {
            return;
        }
        self.answered_read = std::time::Instant::now();
        if let Err(error) = history.refresh(answered, &self.config.agent.agent_id) {
            // Without it every row is looked up, as if the set had grown past its cap.
            tracing::warn!("cannot read new answers from the history, every row is looked up: {error}");
            self.answered = None;
        }
    }

    /// Records this batch's final answers in the history, in one transaction. A failure
    /// (the file gone, the disk full, another writer holding it beyond the busy timeout)
    /// costs only later reuse, never this run's results: it is reported once and the run goes
    /// on without the history.
    fn record_answers(&mut self) {
        if self.to_record.is_empty() {
            return;
        }
        let answers = std::mem::take(&mut self.to_record);
        let Some(history) = &mut self.history else {
            return;
        };
        if let Err(error) = history.record_all(&answers) {
            tracing::error!(
                "cannot record answers in the history, it is not used for the rest of this run (the results file has every answer): {error}"
            );
            self.history = None;
        }
    }

    /// Appends a row's latest answer to the journal (flushed with the batch).
    fn journal(
        &mut self,
        job: &Job,
        outcome: &RowOutcome,
        retry: Option<journal::Retry>,
    ) -> Result<(), Error> {
        let Some(journal) = &mut self.journal else {
            return Ok(());
        };
        journal
            .append_parts(job.row, journal::vehicle_id(&job.lead), outcome, retry)
            .map_err(|source| Error::Write {
                path: journal.path().to_path_buf(),
                source,
            })
    }

    /// Gives the row the outcome of its latest attempt, when the run stopped before the next;
    /// a row never sent is abandoned.
    fn finish_with_last(&mut self, job: Job) {
        let result = match job.last {
            Some(outcome) => RowResult::Decided(outcome),
            None => RowResult::Abandoned,
        };
        self.decide(job.seq, result);
    }

    fn decide(&mut self, seq: u64, result: RowResult) {
        let window_start = self.n_read - self.window.len() as u64;
        let index = (seq - window_start) as usize;
        self.window.decide(index, result);
    }

    /// Writes the decided rows at the front of the window; says whether it wrote any.
    fn write_ready(&mut self) -> Result<bool, Error> {
        let mut wrote = false;
        while let Some(finished) = self.window.pop_decided() {
            self.write(finished)?;
            wrote = true;
        }
        Ok(wrote)
    }

    /// One flush per batch: the journal's new answers, then the rows written in order, so
    /// that what is on disk is always a clean prefix plus the answers beyond it.
    fn flush(&mut self) -> Result<(), Error> {
        if let Some(journal) = &mut self.journal {
            journal.flush().map_err(write_error(journal.path()))?;
        }
        self.record_answers();
        self.writer
            .flush()
            .map_err(write_error(written_path(&self.config.output)))
    }

    /// Writes one row in order and remembers first outcomes for duplicates.
    fn write(&mut self, finished: Finished) -> Result<(), Error> {
        if self.halted {
            return Ok(());
        }
        let Finished {
            row,
            fields,
            key,
            warnings,
            result,
        } = finished;
        let output = &self.config.output;
        let write_error = |source| Error::Write {
            path: written_path(output),
            source,
        };
        let (status, kept, copied) = match result {
            RowResult::Pending => unreachable!("only decided rows are written"),
            RowResult::Abandoned => {
                self.halted = true;
                return Ok(());
            }
            RowResult::Kept(outcome) => {
                self.writer
                    .write_row(&fields, row, &outcome)
                    .map_err(write_error)?;
                self.n_kept += 1;
                (outcome.status, true, false)
            }
            RowResult::Journalled(mut outcome) => {
                outcome.warnings = warnings;
                self.writer
                    .write_row(&fields, row, &outcome)
                    .map_err(write_error)?;
                self.n_kept += 1;
                (outcome.status, true, false)
            }
            RowResult::Decided(mut outcome) => {
                outcome.warnings = warnings;
                self.writer
                    .write_row(&fields, row, &outcome)
                    .map_err(write_error)?;
                let status = outcome.status;
                if let Some(duplicate) = key.and_then(|key| self.duplicates.get_mut(&key))
                    && duplicate.first_row == Some(row)
                {
                    // Copies need the answer, not this row's own warnings.
                    outcome.warnings = Vec::new();
                    duplicate.outcome = Some(Arc::new(outcome));
                }
                (status, false, false)
            }
            RowResult::CopyOf(first_row) => {
                let first = key
                    .and_then(|key| self.duplicates.get(&key))
                    .and_then(|duplicate| duplicate.outcome.clone())
                    .expect("a first occurrence is written before its copies");
                let outcome = RowOutcome {
                    message: format!("same vehicle as row {first_row}: {}", first.message),
                    attempts: 0,
                    warnings,
                    ..(*first).clone()
                };
                self.writer
                    .write_row(&fields, row, &outcome)
                    .map_err(write_error)?;
                self.n_duplicates += 1;
                (outcome.status, false, true)
            }
        };
        if let Some(key) = key
            && let Some(duplicate) = self.duplicates.get_mut(&key)
        {
            duplicate.remaining -= 1;
            if duplicate.remaining == 0 {
                self.duplicates.remove(&key);
            }
        }
        self.n_written += 1;
        *self.counts.entry(status).or_default() += 1;
        self.shared.observer.on_event(&Event::RowWritten {
            row,
            status,
            kept,
            copied,
        });
        Ok(())
    }

    fn summary(&self, config: &RunConfig, started: Instant, rows_total: u64, end: RunEnd) -> Summary {
        let mut summary = empty_summary(config, started, rows_total, end);
        summary.set_counts(&self.counts);
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        summary.requests = self.shared.n_requests.load(Ordering::Relaxed);
        summary.retries = self.shared.n_retries.load(Ordering::Relaxed);
        summary.logins = self.shared.n_logins.load(Ordering::Relaxed);
        summary.duplicates = self.n_duplicates;
        summary.kept_from_before = self.n_kept;
        summary.reused = self.n_reused;
        summary.processed = self.n_written - self.n_kept;
        summary.not_reached = rows_total.saturating_sub(self.n_written);
        summary.requests_per_sec = summary.requests as f64 / elapsed;
        summary.rows_per_sec = self.n_written as f64 / elapsed;
        summary
    }
}

/// A vehicle to renew, with what its attempts so far have learnt.
struct Job {
    /// Its place in the window.
    seq: u64,
    row: u64,
    lead: Lead,
    attempts: u32,
    transient_failures: u32,
    logged_in_for_this_row: bool,
    /// The outcome of the latest attempt, written if the run stops during a backoff.
    last: Option<RowOutcome>,
    delays: Option<backon::ExponentialBackoff>,
}

impl Job {
    fn new(seq: u64, row: u64, lead: Lead) -> Job {
        Job {
            seq,
            row,
            lead,
            attempts: 0,
            transient_failures: 0,
            logged_in_for_this_row: false,
            last: None,
            delays: None,
        }
    }
}

/// How a row's turn in a request slot ended.
enum Turn {
    /// The row has its outcome (a panic in the attempt, a bug, is written as a protocol error).
    Done(RowOutcome),
    /// Send again after this backoff.
    Retry(Duration),
    /// The run stopped before this turn's request was sent.
    Stopped,
}

/// A row's turn in a request slot: waits for the rate limiter, then sends one attempt (and
/// another at once after a re-login).
async fn turn(shared: &RunState, mut job: Job) -> (Job, Turn) {
    // Held until the turn ends: the quota's concurrency counts requests of every run.
    let _slot = match shared.member.try_slot() {
        Some(slot) => slot,
        None => tokio::select! {
            biased;
            _ = shared.stop.cancelled() => return (job, Turn::Stopped),
            slot = shared.member.slot() => slot,
        },
    };
    loop {
        if !shared.try_pace() {
            // Only a row that must wait listens for the stop, which saves registering with the
            // stop token for every request when the limit does not bind.
            tokio::select! {
                biased;
                _ = shared.stop.cancelled() => return (job, Turn::Stopped),
                _ = shared.pace() => {}
            }
        }
        // A turn started in the same pass as the one that tripped the breaker sends nothing.
        if shared.stop.is_cancelled() {
            return (job, Turn::Stopped);
        }
        let turn = match AssertUnwindSafe(attempt(shared, &mut job)).catch_unwind().await {
            // Logged in again: the same row goes again at once, unless the run has stopped.
            Ok(Step::Again) if !shared.stop.is_cancelled() => continue,
            Ok(Step::Again) => Turn::Stopped,
            Ok(Step::Done(outcome)) => Turn::Done(outcome),
            Ok(Step::Retry(delay)) => Turn::Retry(delay),
            Err(_) => Turn::Done(RowOutcome {
                status: Status::ProtocolError,
                message: "internal error while renewing this row (see the log)".to_string(),
                ..RowOutcome::default()
            }),
        };
        return (job, turn);
    }
}

/// What one attempt leads to.
enum Step {
    Done(RowOutcome),
    /// Send again now (a fresh Token was obtained).
    Again,
    /// Send again after this backoff.
    Retry(Duration),
}

/// What every row's turn of this run shares.
struct RunState {
    client: Client,
    /// This run's place in the quota: its request slots and its rate limiter.
    member: Member,
    tokens: Tokens,
    retries: u32,
    backoff: crate::run::config::Backoff,
    stop: CancellationToken,
    breaker: Breaker,
    observer: Arc<dyn Observer>,
    n_requests: AtomicU64,
    n_retries: AtomicU64,
    n_logins: AtomicU64,
}

impl RunState {
    fn new(
        config: &RunConfig,
        member: Member,
        client: Client,
        observer: Arc<dyn Observer>,
        stop: CancellationToken,
    ) -> RunState {
        RunState {
            client,
            member,
            tokens: Tokens::new(config.user_name.clone()),
            retries: config.retries,
            backoff: config.backoff,
            breaker: Breaker::new(config, stop.clone()),
            stop,
            observer,
            n_requests: AtomicU64::new(0),
            n_retries: AtomicU64::new(0),
            n_logins: AtomicU64::new(0),
        }
    }

    /// Waits until the quota's rate limiter lets one more request go.
    async fn pace(&self) {
        self.member.quota().pace().await
    }

    /// Lets one more request go at once if nobody is waiting and the limiter has room.
    fn try_pace(&self) -> bool {
        self.member.quota().try_pace()
    }

    async fn first_login(&self) -> Result<String, Error> {
        let user_name = self
            .tokens
            .user_name
            .as_deref()
            .expect("config requires a token or a user name");
        self.pace().await;
        self.n_logins.fetch_add(1, Ordering::Relaxed);
        self.client
            .login(user_name, client::unix_now())
            .await
            .map_err(|error| {
                Error::Credentials(format!(
                    "cannot log in as {user_name} to get a Token: {error}; nothing was renewed"
                ))
            })
    }
}

/// One attempt for a row: signs with a fresh `TimeStamp`, sends, and reads the answer.
async fn attempt(shared: &RunState, job: &mut Job) -> Step {
    let token = shared.tokens.current();
    job.attempts += 1;
    let attempts = job.attempts;
    shared.n_requests.fetch_add(1, Ordering::Relaxed);
    if attempts > 1 {
        shared.n_retries.fetch_add(1, Ordering::Relaxed);
    }
    shared.observer.on_event(&Event::Attempt {
        row: job.row,
        retry: attempts > 1,
    });
    let result = shared
        .client
        .renew(&job.lead, &token.value, client::unix_now())
        .await;
    match &result {
        Ok(answer) => tracing::trace!(row = job.row, attempts, status = answer.http_status(), "answer"),
        Err(error) => tracing::trace!(row = job.row, attempts, %error, "no answer"),
    }

    let retry_after = match &result {
        Ok(Answer::Unauthorized { .. }) if shared.tokens.can_login() && !job.logged_in_for_this_row => {
            job.logged_in_for_this_row = true;
            match shared.tokens.refresh(shared, token.generation).await {
                Ok(()) => return Step::Again,
                Err(login_error) => {
                    let answer = result.expect("matched Ok");
                    let mut outcome = RowOutcome::from_answer(
                        answer,
                        attempts,
                        shared.client.quote_page(),
                        &token.value,
                        history::unix_ms_now(),
                    );
                    outcome.message = format!("{}; logging in again failed: {login_error}", outcome.message);
                    shared.breaker.record(outcome.status);
                    return Step::Done(outcome);
                }
            }
        }
        Ok(Answer::Transient { retry_after_secs, .. }) => Some(retry_after_secs.unwrap_or(0)),
        Err(_) => Some(0),
        Ok(_) => None,
    };
    let outcome = match result {
        Ok(answer) => RowOutcome::from_answer(
            answer,
            attempts,
            shared.client.quote_page(),
            &token.value,
            history::unix_ms_now(),
        ),
        Err(error) => RowOutcome::transport(&error, attempts),
    };
    shared.breaker.record(outcome.status);
    let Some(retry_after_secs) = retry_after else {
        return Step::Done(outcome);
    };
    job.transient_failures += 1;
    if job.transient_failures > shared.retries {
        return Step::Done(outcome);
    }
    let backoff = shared.backoff;
    let delays = job.delays.get_or_insert_with(|| {
        backon::ExponentialBuilder::default()
            .with_min_delay(backoff.min)
            .with_max_delay(backoff.max)
            .with_jitter()
            .without_max_times()
            .build()
    });
    let asked = Duration::from_secs(retry_after_secs).min(backoff.max_retry_after);
    let delay = delays.next().unwrap_or(backoff.max).max(asked);
    tracing::debug!(row = job.row, attempts, ?delay, status = %outcome.status, "retrying after backoff");
    job.last = Some(outcome);
    Step::Retry(delay)
}

/// The Token in use, and the one login at a time that replaces it.
struct Tokens {
    current: RwLock<CurrentToken>,
    user_name: Option<String>,
    /// Held while logging in; remembers a failed login so that others do not retry it.
    login: tokio::sync::Mutex<Option<String>>,
}

#[derive(Clone)]
struct CurrentToken {
    generation: u64,
    value: Arc<str>,
}

impl Tokens {
    fn new(user_name: Option<String>) -> Tokens {
        Tokens {
            current: RwLock::new(CurrentToken {
                generation: 0,
                value: Arc::from(""),
            }),
            user_name,
            login: tokio::sync::Mutex::new(None),
        }
    }

    fn set(&self, token: String) {
        let mut current = self.current.write().expect("token lock");
        current.generation += 1;
        current.value = Arc::from(token);
    }

    fn current(&self) -> CurrentToken {
        self.current.read().expect("token lock").clone()
    }

    fn can_login(&self) -> bool {
        self.user_name.is_some()
    }

    /// Makes sure the Token is newer than `seen_generation`: logs in unless another row
    /// already did while this one waited.
    async fn refresh(&self, shared: &RunState, seen_generation: u64) -> Result<(), String> {
        let user_name = self.user_name.as_deref().ok_or("no --user-name to log in with")?;
        let mut failed = self.login.lock().await;
        if self.current().generation != seen_generation {
            return Ok(());
        }
        if let Some(error) = failed.as_ref() {
            return Err(error.clone());
        }
        shared.pace().await;
        shared.n_logins.fetch_add(1, Ordering::Relaxed);
        match shared.client.login(user_name, client::unix_now()).await {
            Ok(token) => {
                tracing::info!(user_name, "logged in again for a fresh Token");
                self.set(token);
                Ok(())
            }
            Err(error) => {
                tracing::warn!(user_name, %error, "login failed");
                *failed = Some(error.to_string());
                Err(error.to_string())
            }
        }
    }
}

/// Stops a run whose credentials keep being refused, instead of burning through the list.
struct Breaker {
    limit: u32,
    /// The current run of credential failures: 403s and 406s since the last answer that
    /// passed the credential checks.
    streak: Mutex<Streak>,
    agent_id: String,
    user_name: Option<String>,
    stop: CancellationToken,
    diagnosis: OnceLock<String>,
}

#[derive(Default, Clone, Copy)]
struct Streak {
    n_403: u32,
    n_406: u32,
}

impl Breaker {
    fn new(config: &RunConfig, stop: CancellationToken) -> Breaker {
        Breaker {
            limit: config.credential_failure_limit.max(1),
            streak: Mutex::new(Streak::default()),
            agent_id: config.agent.agent_id.clone(),
            user_name: config.user_name.clone(),
            stop,
            diagnosis: OnceLock::new(),
        }
    }

    fn record(&self, status: Status) {
        let mut streak = self.streak.lock().expect("breaker lock");
        match status {
            Status::Unauthorized => streak.n_403 += 1,
            Status::VerificationFailed => streak.n_406 += 1,
            // These answers passed the credential checks.
            Status::Renewed | Status::NotRenewable | Status::InvalidParams => *streak = Streak::default(),
            _ => return,
        }
        if streak.n_403 + streak.n_406 >= self.limit && self.diagnosis.get().is_none() {
            let _ = self.diagnosis.set(self.diagnose(*streak));
            self.stop.cancel();
        }
    }

    fn diagnose(&self, Streak { n_403, n_406 }: Streak) -> String {
        let consecutive = n_403 + n_406;
        let head = format!(
            "stopped after {consecutive} consecutive credential failures ({n_403}×403, {n_406}×406)."
        );
        let mut advice = Vec::new();
        if n_403 > 0 {
            let login = match &self.user_name {
                Some(user) => format!(
                    "logging in again as {user} did not help: check --user-name (BIHU_USER_NAME) and --agent-id (BIHU_AGENT_ID)"
                ),
                None => "get a fresh Token (bihu-renew login) or pass --user-name (BIHU_USER_NAME) so the tool logs in by itself".to_string(),
            };
            advice.push(format!(
                "HTTP 403: the Token is unknown or expired, or agent {} is not allowed; {login}",
                self.agent_id
            ));
        }
        if n_406 > 0 {
            advice.push(format!(
                "HTTP 406: the signature or timestamp was refused; check --secret-key (BIHU_SECRET_KEY), --secret-key-label if your contract spells it SecretKey, and this machine's clock (unix time here: {})",
                client::unix_now()
            ));
        }
        format!("{head} {}", advice.join(". "))
    }

    fn tripped(&self) -> Option<&str> {
        self.diagnosis.get().map(String::as_str)
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
