//! The run's side of the answer history (`--history`): opened before the first request,
//! it records this run's final answers with each flush and, with `--reuse-within`, answers
//! a row from its vehicle's recent enough answer instead of a request. A history that fails
//! later costs only reuse, never the run's results.

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::leads::lead::Lead;
use crate::results::history::{self, History};
use crate::results::outcome::RowOutcome;
use crate::run::config::RunConfig;

pub(super) struct Reuse {
    /// The answer history (`--history`), until a write to it fails.
    history: Option<History>,
    /// The vehicles the history holds recent answers for (with reuse on), and when answers
    /// recorded since were last added to it.
    answered: Option<history::AnsweredSet>,
    answered_read: Instant,
    /// `--reuse-within`, for the message when the answered set passes its cap.
    within: Option<Duration>,
    /// Final answers of this run not yet in the history (recorded with each flush).
    to_record: Vec<history::Answer>,
}

impl Reuse {
    /// Opens the history before the first request: one that cannot be opened stops the run
    /// here. With reuse on, the vehicles it holds recent answers for are read once, so that
    /// rows for other vehicles need no query.
    pub(super) async fn open(config: &RunConfig) -> Result<Reuse, Error> {
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
                let (history, answered) = opened.map_err(|error| {
                    Error::Refused(
                        anyhow::Error::new(error)
                            .context("cannot use the answer history, nothing was sent. Check --history"),
                    )
                })?;
                if let (Some(answered), Some(within)) = (&answered, settings.reuse_within)
                    && !answered.is_complete()
                {
                    tracing::warn!("{}", answered.past_cap_message(history.path(), within));
                }
                (Some(history), answered)
            }
            None => (None, None),
        };
        Ok(Reuse {
            within: config.history.as_ref().and_then(|settings| settings.reuse_within),
            history,
            answered,
            answered_read: Instant::now(),
            to_record: Vec::new(),
        })
    }

    /// The row's answer from the history, when `--reuse-within` is on and its vehicle's latest
    /// final answer is recent enough: no request, `attempts` 0, the quote URL that `quote_url`
    /// makes of the answer's RenewalToken with the current Token. A history that cannot be
    /// read sends the row as usual.
    pub(super) fn lookup(
        &self,
        config: &RunConfig,
        lead: &Lead,
        quote_url: impl FnOnce(&str) -> String,
    ) -> Option<RowOutcome> {
        let within = config.history.as_ref()?.reuse_within?;
        let history = self.history.as_ref()?;
        if let Some(answered) = &self.answered
            && !answered.may_have(lead.dedupe_key())
        {
            return None;
        }
        let agent_id = &config.agent.agent_id;
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
            quote_url(&answer.renewal_token)
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
    pub(super) fn refresh(&mut self, agent_id: &str) {
        const EVERY: Duration = Duration::from_secs(1);
        let (Some(history), Some(answered)) = (&self.history, &mut self.answered) else {
            return;
        };
        if self.answered_read.elapsed() < EVERY {
            return;
        }
        self.answered_read = Instant::now();
        let was_complete = answered.is_complete();
        if let Err(error) = history.refresh(answered, agent_id) {
            // Without it every row is looked up, as if the set had grown past its cap.
            tracing::warn!("cannot read new answers from the history, every row is looked up: {error}");
            self.answered = None;
        } else if was_complete
            && !answered.is_complete()
            && let Some(within) = self.within
        {
            tracing::warn!("{}", answered.past_cap_message(history.path(), within));
        }
    }

    /// Keeps a row's answer for the next [`Reuse::record`], if the history takes it.
    pub(super) fn note(&mut self, agent_id: &str, lead: &Lead, outcome: &RowOutcome) {
        if self.history.is_some() && history::is_recorded(outcome.status) {
            self.to_record.push(history::Answer {
                agent_id: agent_id.to_string(),
                vehicle: lead.key(),
                status: outcome.status,
                http_status: outcome.http_status,
                renewal_token: outcome.renewal_token.clone(),
                message: outcome.message.clone(),
                answered_at: outcome.answered_at.unwrap_or_else(history::unix_ms_now),
            });
        }
    }

    /// Whether answers wait for [`Reuse::record`].
    pub(super) fn has_unrecorded(&self) -> bool {
        !self.to_record.is_empty()
    }

    /// Records this batch's final answers in the history, in one transaction. A failure
    /// (the file gone, the disk full, another writer holding it beyond the busy timeout)
    /// costs only later reuse, never this run's results: it is reported once and the run goes
    /// on without the history.
    pub(super) fn record(&mut self) {
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
}
