//! The batch run, in one place: read → validate → dedupe → pace → sign → send → retry →
//! order → write. This file is the run's main loop and what it decides for each row; each
//! stage it drives has its own file in `run/`.
//!
//! - OUTPUT's files are settled first (`files.rs`: refused, removed, or read back to resume),
//!   and a survey reads the input once (`survey.rs`): the row count, and which vehicles occur
//!   more than once (only their outcomes are remembered, so memory does not grow with the
//!   list).
//! - A blocking thread reads and validates the input (`reader.rs`, over `leads::input`),
//!   beside the earlier OUTPUT when resuming, and hands rows over in batches through a
//!   bounded channel.
//! - One loop ([`Run::drive`]) does the rest. It takes rows in order, as the request slots
//!   need them, into a window bounded in rows and bytes (`window.rs`):
//!   rejected, kept, duplicate and reused (`reuse.rs`) rows are decided at once; each vehicle
//!   to renew is queued, in order, for one of `concurrency` request slots.
//! - A row's turn (`turn.rs`) takes a request slot from the [`Quota`] (shared with other
//!   runs, which take turns for slots), passes its rate limiter, then sends one attempt. A row
//!   that must wait out a backoff leaves its slot and is parked; when its time comes it goes
//!   before the fresh rows.
//! - The front of the window is written in input order as soon as it is decided, and
//!   flushed after every batch of answers; then every answer of the batch that OUTPUT did not
//!   take (its row waits behind an earlier one) is appended to the journal beside it
//!   (`results::journal`) and flushed too: what is on disk is a clean, resumable prefix plus
//!   every answer beyond it; an answer whose row is written at once is never journalled. A
//!   row that waited out a backoff is journalled at once, as its backoff was. A failed write
//!   stops the run at once (no new request is sent), and the answers it kept from disk go to
//!   the journal.
//! - One run per OUTPUT: the run holds OUTPUT's lock (`results::lock`) from start to end.
//! - One stop token ends intake: cancelled from outside (Ctrl-C) or by the credential
//!   breaker (`breaker.rs`) when 403/406 answers keep coming; a refused Token is renewed by
//!   one login at a time (`tokens.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::client::{Client, Http, Proxies};
use crate::api::transport::Transport;
use crate::error::Error;
use crate::leads::input::{InputRow, LeadReader};
use crate::leads::lead::Lead;
use crate::results::journal::{self, Journal};
use crate::results::lock::OutputLock;
use crate::results::outcome::{RowOutcome, Status};
use crate::results::output::{OutputTarget, ResultWriter};
use crate::run::config::RunConfig;
use crate::run::events::{Event, Observer};
use crate::run::files::{self, write_error, written_path};
use crate::run::quota::Quota;
use crate::run::reader::{self, Earlier, Intake};
use crate::run::reuse::Reuse;
use crate::run::summary::{RunEnd, Summary};
use crate::run::survey::{Duplicate, Survey};
use crate::run::turn::{self, Job, RunState, Turn};
use crate::run::window::{Finished, RowResult, WINDOW_BYTES, Window};

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
    .map_err(|error| Error::Refused(anyhow::Error::new(error).context("cannot build the HTTP client")))?;
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
    let mut prepared = files::prepare(&config, &reader)?;
    if let Some(summary) = prepared.nothing_to_do(&config, started) {
        // A journal left beside a complete OUTPUT (a run whose finished file could not be
        // renamed into place) holds nothing OUTPUT lacks: it goes.
        if let OutputTarget::File(path) = &config.output {
            let spent = journal::journal_path(path);
            if let Err(error) = journal::remove(&spent) {
                tracing::warn!("cannot remove the spent journal {}: {error}", spent.display());
            }
        }
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
    tracing::debug!(
        rows = survey.n_rows,
        duplicated_vehicles = survey.duplicates.len(),
        "surveyed the input"
    );

    let reuse = Reuse::open(&config).await?;
    let transport = connect(&config)?;
    // Every file the run writes is created before the first request (a login included),
    // and after every check that may still refuse the run, so that a refusal leaves none
    // behind to stop the next attempt as "already exists".
    let journal_live = std::mem::take(&mut prepared.journal_live);
    let (writer, journal) = files::create(&config, &headers, survey.n_rows, &journal_live)?;
    // Only now does the run start for whoever watches (the sandbox's banner waits for it).
    observer.on_event(&Event::Total { rows: survey.n_rows });

    let client = Client::over(transport, config.agent.clone(), &config.base_url);
    let shared = Arc::new(RunState::new(
        &config,
        quota.member(),
        client,
        observer.clone(),
        cancel.child_token(),
    ));
    let token = match &config.token {
        Some(token) => token.clone(),
        None => match shared.first_login().await {
            Ok(token) => token,
            Err(error) => {
                // No renewal was sent: the files made for the run go, so that the same
                // command can simply be run again (a resumed run's are kept as they were).
                files::discard(&config, writer, journal);
                return Err(error);
            }
        },
    };
    shared.tokens.set(token);

    let (batches_rx, reader_thread) =
        reader::spawn(reader, prepared.previous_rows, journal_live, config.window());

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
        reuse,
        halted: false,
        unjournalled: Vec::new(),
        unflushed: Vec::new(),
    };
    let input_done = match run.drive(batches_rx).await {
        Ok(input_done) => input_done,
        Err(error) => {
            // Whatever failed, every answer not known to be on disk goes to the journal, and
            // the journal is pushed out, if they can be.
            run.rescue_answers();
            if let Some(journal) = run.journal.take() {
                let _ = journal.finish();
            }
            return Err(error);
        }
    };
    let _ = reader_thread.join();
    let complete = input_done && !run.halted && run.n_written == run.n_read;
    files::close(&config, &mut run.writer, run.journal.take(), complete)?;

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
    /// The answer history: recording answers, and reusing them.
    reuse: Reuse,
    /// A row was abandoned: nothing after it may be written, or OUTPUT would have a gap.
    halted: bool,
    /// The window places (`seq`) of this run's answers not journalled yet
    /// ([`RowResult::Answered`]): at the next flush, those OUTPUT has not taken go to the
    /// journal.
    unjournalled: Vec<u64>,
    /// This run's answers written to OUTPUT since its last flush: on disk once that flush
    /// succeeds, for the journal if it fails.
    unflushed: Vec<(u64, Lead, RowOutcome)>,
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
            // Rows come in as they are needed: while fewer than `slots` wait for a request
            // slot. Rows waiting on earlier ones (behind a backoff) still fill the window to its
            // bounds, but in the usual flow the window holds only the rows in flight and the
            // next round, which stay in the processor's cache from reading to writing.
            while self.window.has_room()
                && self.fresh.len() < slots
                && let Some(intake) = self.received.pop_front()
            {
                let (row, earlier) = intake.map_err(|error| self.found_wrong(error.into()))?;
                self.intake(row, earlier)?;
            }
            if !stopping {
                while in_flight.len() < slots
                    && let Some(job) = self.retries.pop_front().or_else(|| self.fresh.pop_front())
                {
                    in_flight.push(turn::turn(&shared, job));
                }
            }
            let wrote = self.write_ready()?;
            if wrote
                || !self.unjournalled.is_empty()
                || self.journal.as_ref().is_some_and(Journal::is_dirty)
                || self.reuse.has_unrecorded()
            {
                self.flush()?;
            }
            if self.window.is_empty() && (stopping || (input_done && self.received.is_empty())) {
                break;
            }
            // Writing made room for rows already received: they come in now, since nothing
            // below would wake the loop for them (the reader waits on `received` being taken).
            if self.window.has_room() && self.fresh.len() < slots && !self.received.is_empty() {
                continue;
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
                            self.reuse.refresh(&self.config.agent.agent_id);
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

    /// A file found wrong once rows are flowing (the input unreadable further on, the journal
    /// not this input's): a refusal if no request has gone out yet (exit 2), else a run
    /// stopped midway (exit 4), which `--resume` continues once the file is put right.
    fn found_wrong(&self, story: anyhow::Error) -> Error {
        let sent =
            self.shared.n_requests.load(Ordering::Relaxed) + self.shared.n_logins.load(Ordering::Relaxed);
        if sent == 0 {
            Error::Refused(story)
        } else {
            Error::Midrun(story)
        }
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
            return Err(self.found_wrong(anyhow::anyhow!(
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
        let reused = if answered {
            None
        } else {
            self.reuse.lookup(self.config, &lead, |renewal_token| {
                let token = self.shared.tokens.current();
                self.shared.client.quote_page().url(&token.value, renewal_token)
            })
        };
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

    /// Handles the end of a row's turn. Its answer goes to OUTPUT or the journal with the
    /// batch ([`Run::flush`]); a row that waited out a backoff has its answer journalled at
    /// once, after the record of its backoff, which it supersedes.
    fn after_turn(&mut self, job: Job, turn: Turn, stopping: bool) -> Result<(), Error> {
        match turn {
            Turn::Done(outcome) => {
                self.reuse.note(&self.config.agent.agent_id, &job.lead, &outcome);
                if job.last.is_some() || self.journal.is_none() {
                    append(&mut self.journal, job.row, &job.lead, &outcome, None)?;
                    self.decide(job.seq, RowResult::Decided(outcome));
                } else {
                    self.unjournalled.push(job.seq);
                    self.decide(job.seq, RowResult::Answered(outcome, job.lead));
                }
            }
            Turn::Retry(delay) => {
                if let Some(last) = &job.last {
                    let retry = journal::Retry {
                        transient_failures: job.transient_failures,
                        due_unix_ms: journal::unix_ms_now() + delay.as_millis() as u64,
                    };
                    append(&mut self.journal, job.row, &job.lead, last, Some(retry))?;
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

    /// Journals the answers of the batch that OUTPUT did not take: those whose rows are still
    /// in the window (the rows written, and flushed just before, need no record).
    fn journal_the_rest(&mut self) -> Result<(), Error> {
        let window_start = self.n_read - self.window.len() as u64;
        let mut seqs = std::mem::take(&mut self.unjournalled);
        for seq in seqs.drain(..) {
            // Before the window: written (or journalled when the run halted).
            let Some(finished) = seq
                .checked_sub(window_start)
                .and_then(|index| self.window.get_mut(index as usize))
            else {
                continue;
            };
            let row = finished.row;
            if let Some((lead, outcome)) = finished.settle_answer() {
                append(&mut self.journal, row, &lead, outcome, None)?;
            }
        }
        // The emptied vector keeps its room for the next batch.
        self.unjournalled = seqs;
        Ok(())
    }

    /// After a failure, journals every answer not known to be on disk: those written to
    /// OUTPUT since its last good flush, and those still in the window. Best effort: the
    /// failure is what is told.
    fn rescue_answers(&mut self) {
        let rescued = std::mem::take(&mut self.unflushed)
            .iter()
            .try_for_each(|(row, lead, outcome)| append(&mut self.journal, *row, lead, outcome, None))
            .and_then(|()| {
                self.window.iter_mut().try_for_each(|finished| {
                    let row = finished.row;
                    match finished.settle_answer() {
                        Some((lead, outcome)) => append(&mut self.journal, row, &lead, outcome, None),
                        None => Ok(()),
                    }
                })
            });
        if let Err(error) = rescued {
            tracing::warn!("{error}");
        }
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

    /// One flush per batch: the rows written in order, then the batch's answers that OUTPUT
    /// did not take, into the journal, so that what is on disk is always a clean prefix plus
    /// the answers beyond it.
    fn flush(&mut self) -> Result<(), Error> {
        self.writer
            .flush()
            .map_err(write_error(written_path(&self.config.output)))?;
        self.unflushed.clear();
        self.journal_the_rest()?;
        if let Some(journal) = &mut self.journal {
            journal.flush().map_err(write_error(journal.path()))?;
        }
        self.reuse.record();
        Ok(())
    }

    /// Writes one row in order and remembers first outcomes for duplicates.
    fn write(&mut self, finished: Finished) -> Result<(), Error> {
        if self.halted {
            // Not written, so that OUTPUT has no gap: an answer goes to the journal instead.
            if let RowResult::Answered(outcome, lead) = finished.result {
                append(&mut self.journal, finished.row, &lead, &outcome, None)?;
            }
            return Ok(());
        }
        let Finished {
            row,
            fields,
            key,
            warnings,
            result,
        } = finished;
        let mut answered = None;
        let (mut outcome, kept, copied) = match result {
            RowResult::Pending => unreachable!("only decided rows are written"),
            RowResult::Abandoned => {
                self.halted = true;
                return Ok(());
            }
            RowResult::Kept(outcome) => (outcome, true, false),
            RowResult::Journalled(mut outcome) => {
                outcome.warnings = warnings;
                (outcome, true, false)
            }
            RowResult::Decided(mut outcome) => {
                outcome.warnings = warnings;
                (outcome, false, false)
            }
            RowResult::Answered(mut outcome, lead) => {
                answered = Some(lead);
                outcome.warnings = warnings;
                (outcome, false, false)
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
                (outcome, false, true)
            }
        };
        let written = self
            .writer
            .write_row(&fields, row, &outcome)
            .map_err(|source| Error::Write {
                path: written_path(&self.config.output),
                source,
            });
        let status = outcome.status;
        if kept {
            self.n_kept += 1;
        } else if copied {
            self.n_duplicates += 1;
        } else if let Some(duplicate) = key.and_then(|key| self.duplicates.get_mut(&key))
            && duplicate.first_row == Some(row)
        {
            // A first occurrence decided in this run: its copies need the answer, not this
            // row's own warnings.
            outcome.warnings = Vec::new();
            duplicate.outcome = Some(Arc::new(outcome.clone()));
        }
        // This run's answer is on disk once OUTPUT is flushed; until then it is kept for
        // the journal, should the flush (or this write) fail.
        if let Some(lead) = answered {
            self.unflushed.push((row, lead, outcome));
        }
        written?;
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
        let mut summary = Summary::empty(config, started, rows_total, end);
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

/// Appends a row's answer (or its backoff) to the journal, if the run keeps one; flushed with
/// the batch.
fn append(
    journal: &mut Option<Journal>,
    row: u64,
    lead: &Lead,
    outcome: &RowOutcome,
    retry: Option<journal::Retry>,
) -> Result<(), Error> {
    let Some(journal) = journal else {
        return Ok(());
    };
    journal
        .append_parts(row, journal::vehicle_id(lead), outcome, retry)
        .map_err(|source| Error::Write {
            path: journal.path().to_path_buf(),
            source,
        })
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
