//! The JSON API: routes and thin handlers over [`Jobs`](crate::serve::jobs::Jobs) and
//! [`Auth`](crate::serve::auth::Auth). Every refusal is a 4xx with `{"error": "..."}`; bodies
//! are bounded (uploads by `max_upload_mb`, everything else by a few kilobytes).
//!
//! The job's JSON shape ([`JobView`], `view.rs`) is what the pages use too: keep it stable.
//! Here: the routes, the refusal type, and the job actions and event stream; signing in and
//! out in `login.rs`, the upload in `upload.rs`, results and reports in `downloads.rs`.

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;

use crate::serve::AppState;
use crate::serve::auth::{self, Principal};
use crate::serve::jobs::{JobError, Jobs};
use crate::serve::store::JobState;

mod downloads;
mod login;
mod upload;
mod view;

use downloads::{report_html, report_json, results_csv, results_xlsx};
use login::{login, logout, session};
pub(crate) use upload::create_job;
pub use view::{JobView, Links, rfc3339};

/// Bodies other than uploads (a login) are small.
const SMALL_BODY: usize = 16 * 1024;
/// The API's routes; `serve::router` merges them with the pages' and adds the state.
pub fn routes(state: AppState) -> Router<AppState> {
    let upload_limit = state.config.max_upload_bytes as usize + 64 * 1024;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/login", post(login).layer(DefaultBodyLimit::max(SMALL_BODY)))
        .route("/api/logout", post(logout))
        .route("/api/session", get(session))
        .route(
            "/api/jobs",
            get(list_jobs)
                .post(create_job)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/api/jobs/{id}", get(get_job).delete(delete_job))
        .route("/api/jobs/{id}/start", post(start_job))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/jobs/{id}/retry", post(retry_job))
        .route("/api/jobs/{id}/results.csv", get(results_csv))
        .route("/api/jobs/{id}/results.xlsx", get(results_xlsx))
        .route("/api/jobs/{id}/report.html", get(report_html))
        .route("/api/jobs/{id}/report.json", get(report_json))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/{*rest}", axum::routing::any(no_such_route))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(SMALL_BODY))
}

/// A refusal: status and message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> Self {
        let status = match &error {
            JobError::NotFound(_) => StatusCode::NOT_FOUND,
            JobError::Conflict(_) => StatusCode::CONFLICT,
            JobError::Unreadable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JobError::Store(_) | JobError::Io(_) => {
                tracing::error!(%error, "a job request failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError(status, error.to_string())
    }
}

/// The peer's address, for the login throttle.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(auth::client_ip(parts)))
    }
}

fn job_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("there is no job {text:?}: job ids are positive numbers"),
        )
    })
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn method_not_allowed() -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method; see the README for the API".to_string(),
    )
}

async fn no_such_route() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such API route; see the README for the API".to_string(),
    )
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

async fn list_jobs(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Vec<JobView>>, ApiError> {
    let jobs = state.jobs.list().await?;
    Ok(Json(jobs.iter().map(JobView::from).collect()))
}

async fn get_job(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    let job = state.jobs.view(job_id(&id)?).await?;
    Ok(Json(JobView::from(&job)))
}

async fn delete_job(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.jobs.delete(job_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn start_job(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(JobView::from(&state.jobs.start(job_id(&id)?).await?)))
}

pub(crate) async fn cancel_job(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(JobView::from(&state.jobs.cancel(job_id(&id)?).await?)))
}

pub(crate) async fn retry_job(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(JobView::from(&state.jobs.retry(job_id(&id)?).await?)))
}

/// How often the event stream looks for changes.
const EVENTS_EVERY: Duration = Duration::from_millis(500);

/// `GET /api/jobs/{id}/events`: server-sent events. `job` carries the job's JSON each time
/// it changes (the first at once); `end` comes when the job is done, cancelled or aborted,
/// and the stream closes.
async fn events(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let id = job_id(&id)?;
    state.jobs.view(id).await?;
    struct Cursor {
        jobs: Jobs,
        last: Option<String>,
        ended: bool,
    }
    let cursor = Cursor {
        jobs: state.jobs.clone(),
        last: None,
        ended: false,
    };
    let stream = futures::stream::unfold(cursor, move |mut cursor| async move {
        if cursor.ended {
            return None;
        }
        loop {
            let Ok(job) = cursor.jobs.view(id).await else {
                cursor.ended = true;
                return Some((Ok(SseEvent::default().event("end").data("deleted")), cursor));
            };
            let json = serde_json::to_string(&JobView::from(&job)).expect("a job serialises");
            let finished = matches!(
                job.state,
                JobState::Done | JobState::Cancelled | JobState::Aborted
            );
            if cursor.last.as_deref() != Some(&json) {
                cursor.last = Some(json.clone());
                return Some((Ok(SseEvent::default().event("job").data(json)), cursor));
            }
            if finished {
                cursor.ended = true;
                return Some((
                    Ok(SseEvent::default().event("end").data(job.state.as_str())),
                    cursor,
                ));
            }
            tokio::time::sleep(EVENTS_EVERY).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
