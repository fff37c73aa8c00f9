//! A job as the API shows it ([`JobView`], with the [`Links`] to its files and actions):
//! the JSON of `GET /api/jobs/{id}`, of the event stream, and of the pages. Keep it stable.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::results::outcome::Status;
use crate::serve::store::{JobRecord, JobState, Preview};

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: i64,
    pub file_name: String,
    pub state: JobState,
    /// The city for rows without one, if the upload gave one.
    pub city_code: Option<u8>,
    pub rows: u64,
    pub rows_done: u64,
    /// Rows written so far, by status (every status, zeros included).
    pub counts: BTreeMap<String, u64>,
    /// Renewal requests sent for this job, retries included, over all its runs.
    pub requests: u64,
    pub created_by: String,
    /// UTC, RFC 3339.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub preview: Option<Preview>,
    /// The job reuses answers from the history at most this old (`7d`); `null`: it asks
    /// Bihu for every vehicle.
    pub reuse_within: Option<String>,
    /// Why an aborted job stopped (credentials refused, as the CLI's exit 3), or a note.
    pub message: Option<String>,
    pub links: Links,
}

/// Where a job's files and actions are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Links {
    pub this: String,
    pub results_csv: String,
    /// The results as an `.xlsx` workbook, once the job has stopped (done, cancelled or
    /// aborted); `null` until then.
    pub results_xlsx: Option<String>,
    pub report_html: String,
    pub report_json: String,
    pub events: String,
}

impl From<&JobRecord> for JobView {
    fn from(job: &JobRecord) -> Self {
        let mut counts: BTreeMap<String, u64> =
            Status::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
        counts.extend(job.counts.iter().map(|(k, v)| (k.clone(), *v)));
        let this = format!("/api/jobs/{}", job.id);
        JobView {
            id: job.id,
            file_name: job.file_name.clone(),
            state: job.state,
            city_code: job.city_code,
            rows: job.rows,
            rows_done: job.rows_done,
            counts,
            requests: job.requests,
            created_by: job.created_by.clone(),
            created_at: rfc3339(job.created_at),
            started_at: job.started_at.map(rfc3339),
            finished_at: job.finished_at.map(rfc3339),
            preview: job.preview.clone(),
            reuse_within: job
                .reuse_within
                .map(|secs| crate::results::history::format_duration(Duration::from_secs(secs))),
            message: job.message.clone(),
            links: Links {
                results_csv: format!("{this}/results.csv"),
                results_xlsx: crate::serve::jobs::results_xlsx_available(job)
                    .then(|| format!("{this}/results.xlsx")),
                report_html: format!("{this}/report.html"),
                report_json: format!("{this}/report.json"),
                events: format!("{this}/events"),
                this,
            },
        }
    }
}

/// Unix seconds as `2026-12-01T23:05:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = crate::results::history::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_seconds_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_166_245), "2026-12-01T23:04:05Z");
    }
}
