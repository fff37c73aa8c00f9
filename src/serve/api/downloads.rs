//! What a job gives to take away: its results as CSV (while running, the prefix so far)
//! or, once stopped, as a workbook, and its report as HTML or JSON, named as the clerk
//! knows the list.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::report::{Language, Report};
use crate::serve::AppState;
use crate::serve::api::{ApiError, job_id};
use crate::serve::auth::Principal;
use crate::serve::jobs::Jobs;

/// `GET /api/jobs/{id}/results.csv`: the results file (while running, the prefix so far).
pub(super) async fn results_csv(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let path = state.jobs.results_path(id).await?;
    attachment(
        &path,
        "text/csv; charset=utf-8",
        format!("job-{id}.results.csv"),
        || format!("job {id}'s results"),
    )
    .await
}

/// `GET /api/jobs/{id}/results.xlsx`: the results as an Excel workbook, once the job has
/// stopped (409 before, with what to do).
pub(super) async fn results_xlsx(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let path = state.jobs.results_xlsx_path(id).await?;
    attachment(
        &path,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        format!("job-{id}.results.xlsx"),
        || format!("job {id}'s workbook"),
    )
    .await
}

/// A file streamed as a download named `file_name`, never cached; `what` names it in the
/// 404 when it cannot be read.
async fn attachment(
    path: &std::path::Path,
    content_type: &str,
    file_name: String,
    what: impl FnOnce() -> String,
) -> Result<Response, ApiError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, format!("{} cannot be read: {e}", what())))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

/// The report of job `id`, its file named for `language`'s reader.
async fn build_report(state: &AppState, id: &str, language: Language) -> Result<Report, ApiError> {
    let id = job_id(id)?;
    let job = state.jobs.view(id).await?;
    let path = state.jobs.results_path(id).await?;
    let city = Jobs::city(&job);
    let mut report = tokio::task::spawn_blocking(move || Report::build(&[path], None, city))
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("the report failed: {e}")))?
        .map_err(|e| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("job {id}'s results cannot be reported: {e}"),
            )
        })?;
    // Named as the clerk knows the list, not by where the service keeps it.
    for file in &mut report.files {
        file.path = match language {
            Language::English => format!("{} (job {id})", job.file_name),
            Language::Chinese => format!("{}（任务 {id}）", job.file_name),
        };
    }
    Ok(report)
}

/// `report.html`'s query: `lang=zh` for Chinese labels (the pages' embedded report), else
/// the CLI's English.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ReportQuery {
    lang: Option<String>,
}

impl ReportQuery {
    fn language(&self) -> Result<Language, ApiError> {
        match self.lang.as_deref().map(str::trim) {
            None | Some("" | "en") => Ok(Language::English),
            Some("zh" | "zh-CN" | "zh-cn") => Ok(Language::Chinese),
            Some(other) => Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "lang={:?} is not a report language: use zh or en",
                    other.chars().take(20).collect::<String>()
                ),
            )),
        }
    }
}

/// `GET /api/jobs/{id}/report.html[?lang=zh]`.
pub(super) async fn report_html(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let language = query.language()?;
    let report = build_report(&state, &id, language).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        report.to_html_in(language),
    )
        .into_response())
}

pub(super) async fn report_json(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let report = build_report(&state, &id, Language::English).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(report)).into_response())
}
