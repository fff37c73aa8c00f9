//! The JSON API: routes and thin handlers over [`Jobs`](crate::serve::jobs::Jobs) and
//! [`Auth`](crate::serve::auth::Auth). Every refusal is a 4xx with `{"error": "..."}`; bodies
//! are bounded (uploads by `max_upload_mb`, everything else by a few kilobytes).
//!
//! The job's JSON shape ([`JobView`]) is what the pages use too: keep it stable.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::leads::city::City;
use crate::report::Report;
use crate::results::outcome::Status;
use crate::serve::AppState;
use crate::serve::auth::{self, AuthError, Principal, Via};
use crate::serve::jobs::{self, JobError, Jobs, Upload};
use crate::serve::store::{JobRecord, JobState, Preview};

/// Bodies other than uploads (a login) are small.
const SMALL_BODY: usize = 16 * 1024;
/// A multipart text field (city_code, start) is short.
const MAX_TEXT_FIELD: usize = 256;

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

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

/// What login and `GET /api/session` answer.
#[derive(Serialize)]
struct SessionView {
    user: String,
    /// `session`, `basic` or `open` (no users configured).
    auth: &'static str,
    /// Send it as `X-CSRF-Token` with state-changing requests made with the cookie.
    csrf_token: Option<String>,
    expires_at: Option<String>,
}

/// `POST /api/login`: JSON or form `{name, password}`; sets the session cookie.
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if state.auth.is_open() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "no users are configured: the service is open on loopback and needs no login".to_string(),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form: LoginForm = if content_type.starts_with("application/json") {
        serde_json::from_slice(&body).map_err(|e| {
            bad_request(format!(
                "the login body is not {{\"name\", \"password\"}} JSON: {e}"
            ))
        })?
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded_form(&body)?
    } else {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the login as application/json or application/x-www-form-urlencoded with name and password"
                .to_string(),
        ));
    };
    let session = match state.auth.login(ip, &form.name, &form.password).await {
        Ok(session) => session,
        // As it is: a 429 keeps its Retry-After.
        Err(refusal) => return Ok(refusal.into_response()),
    };
    let view = SessionView {
        user: session.user.clone(),
        auth: "session",
        csrf_token: Some(session.csrf_token.clone()),
        expires_at: Some(rfc3339(session.expires_at)),
    };
    let mut response = Json(view).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&auth::session_cookie_header(&session)).expect("a cookie is ASCII"),
    );
    Ok(response)
}

fn auth_refusal(error: AuthError) -> ApiError {
    let response = error.clone().into_response();
    let message = match error {
        AuthError::Unauthorized { message, .. } | AuthError::Unavailable(message) => message,
        AuthError::Throttled { retry_after } => {
            format!(
                "too many failed logins from this address: try again in {} s",
                retry_after.as_secs().max(1)
            )
        }
        AuthError::Csrf | AuthError::CrossSite => "refused".to_string(),
    };
    ApiError(response.status(), message)
}

fn serde_urlencoded_form(body: &[u8]) -> Result<LoginForm, ApiError> {
    let mut name = None;
    let mut password = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        match &*key {
            "name" => name = Some(value.into_owned()),
            "password" => password = Some(value.into_owned()),
            _ => {}
        }
    }
    match (name, password) {
        (Some(name), Some(password)) => Ok(LoginForm { name, password }),
        _ => Err(bad_request("the login form needs name and password")),
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// `POST /api/logout`: ends the session and clears the cookie.
async fn logout(
    State(state): State<AppState>,
    _principal: Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.auth.logout(&headers).await.map_err(auth_refusal)?;
    let mut response = Json(serde_json::json!({ "logged_out": true })).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&auth::clear_cookie_header()).expect("a cookie is ASCII"),
    );
    Ok(response)
}

/// `GET /api/session`: who is logged in, and the CSRF token.
async fn session(principal: Principal) -> Json<SessionView> {
    let (auth, csrf_token, expires_at) = match principal.via {
        Via::Open => ("open", None, None),
        Via::Basic => ("basic", None, None),
        Via::Session {
            csrf_token,
            expires_at,
        } => ("session", Some(csrf_token), Some(rfc3339(expires_at))),
    };
    Json(SessionView {
        user: principal.name,
        auth,
        csrf_token,
        expires_at,
    })
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

/// Removes an upload's folder unless it was handed on.
struct UploadDir(Option<PathBuf>);

impl Drop for UploadDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `POST /api/jobs`: multipart with `file`, optional `city_code`, `start=true` and
/// `reuse_within` (`7d`, or `off`; the config's `reuse_within` when absent). The file is
/// streamed to disk, checked as `--dry-run` does, and becomes a job; any refusal leaves nothing.
pub(crate) async fn create_job(
    State(state): State<AppState>,
    principal: Principal,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<JobView>), ApiError> {
    let mut multipart = multipart.map_err(|e| {
        bad_request(format!(
            "send the list as multipart/form-data with a field named file: {e}"
        ))
    })?;
    let max = state.config.max_upload_bytes;
    let root = state.jobs.upload_root();
    let dir = root.join(hex::encode(rand::random::<[u8; 12]>()));
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot store uploads: {e}"),
        )
    })?;
    let mut guard = UploadDir(Some(dir.clone()));
    let mut file: Option<(String, String)> = None;
    let mut city_text: Option<String> = None;
    let mut reuse_text: Option<String> = None;
    let mut start = false;
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(max)
        } else {
            bad_request(format!(
                "the upload is not valid multipart/form-data: {}",
                e.body_text()
            ))
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(bad_request("send one file per job"));
                }
                let file_name = field
                    .file_name()
                    .map(clean_file_name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "upload.csv".to_string());
                let input_name = jobs::input_name(&file_name);
                let path = dir.join(&input_name);
                let mut out = tokio::fs::File::create(&path).await.map_err(|e| {
                    ApiError(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("cannot store the upload: {e}"),
                    )
                })?;
                let mut n_bytes: u64 = 0;
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    n_bytes += chunk.len() as u64;
                    if n_bytes > max {
                        return Err(too_large(max));
                    }
                    out.write_all(&chunk).await.map_err(|e| {
                        ApiError(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("cannot store the upload: {e}"),
                        )
                    })?;
                }
                out.flush().await.map_err(|e| {
                    ApiError(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("cannot store the upload: {e}"),
                    )
                })?;
                file = Some((file_name, input_name));
            }
            "city_code" | "start" | "reuse_within" => {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    text.extend_from_slice(&chunk);
                    if text.len() > MAX_TEXT_FIELD {
                        return Err(bad_request(format!("the field {name} is too long")));
                    }
                }
                let text = String::from_utf8(text)
                    .map_err(|_| bad_request(format!("the field {name} is not UTF-8")))?;
                if name == "start" {
                    start = match text.trim() {
                        "true" | "1" | "on" | "yes" => true,
                        "false" | "0" | "off" | "no" | "" => false,
                        other => {
                            return Err(bad_request(format!("start must be true or false, got {other:?}")));
                        }
                    };
                } else if name == "reuse_within" {
                    reuse_text = Some(text);
                } else {
                    city_text = Some(text);
                }
            }
            // Fields a form may add (a CSRF token, a submit button) are ignored.
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    let Some((file_name, input_name)) = file else {
        return Err(bad_request(
            "the upload has no field named file: send the lead list as file",
        ));
    };
    let city = match city_text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => Some(City::parse(text).ok_or_else(|| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("city_code {text:?} is not a Bihu city: use an id from 1 to 23 or a name such as 北京 or 广州"),
            )
        })?),
        None => None,
    };
    let reuse_within = match reuse_text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => state.config.reuse_within,
        Some("off" | "none" | "no" | "false") => None,
        Some(text) => Some(crate::results::history::parse_duration(text).map_err(|why| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("reuse_within: {why}, or off to ask Bihu for every vehicle"),
            )
        })?),
    };
    let upload = Upload {
        dir: guard.0.take().expect("set above"),
        file_name,
        input_name,
        city,
        start,
        reuse_within,
        created_by: principal.name,
    };
    let job = state.jobs.create(upload).await?;
    Ok((StatusCode::CREATED, Json(JobView::from(&job))))
}

fn too_large(max: u64) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the upload is larger than the limit of {} MB (max_upload_mb in [serve]); split the list",
            max / (1024 * 1024)
        ),
    )
}

/// The last path component, without control characters, at most 200 characters.
fn clean_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    base.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// `GET /api/jobs/{id}/results.csv`: the results file (while running, the prefix so far).
async fn results_csv(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let path = state.jobs.results_path(id).await?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("job {id}'s results cannot be read: {e}"),
        )
    })?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"job-{id}.results.csv\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/jobs/{id}/results.xlsx`: the results as an Excel workbook, once the job has
/// stopped (409 before, with what to do).
async fn results_xlsx(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = job_id(&id)?;
    let path = state.jobs.results_xlsx_path(id).await?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("job {id}'s workbook cannot be read: {e}"),
        )
    })?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"job-{id}.results.xlsx\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

async fn build_report(state: &AppState, id: &str) -> Result<Report, ApiError> {
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
        file.path = format!("{} (job {id})", job.file_name);
    }
    Ok(report)
}

async fn report_html(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let report = build_report(&state, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        report.to_html(),
    )
        .into_response())
}

async fn report_json(
    State(state): State<AppState>,
    _principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let report = build_report(&state, &id).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(report)).into_response())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_seconds_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_166_245), "2026-12-01T23:04:05Z");
    }

    #[test]
    fn file_names_lose_their_folders_and_control_characters() {
        assert_eq!(clean_file_name("C:\\Users\\x\\leads.csv"), "leads.csv");
        assert_eq!(clean_file_name("../../etc/pass\nwd"), "passwd");
    }
}
