//! The pages clerks use: sign in, the jobs (upload and list), and a job (its check, its live
//! progress, its results). Rendered from `templates/pages/` by askama; the stylesheet and the
//! one small script are embedded in the binary, and nothing is fetched from elsewhere.
//!
//! The pages have no path of their own into the engine: reading, they show the same
//! [`JobView`] the API answers; acting, their plain HTML forms post here, and each handler
//! checks the form's CSRF token by the API's own rule ([`Auth::principal`] with the token as
//! the header a script would send), then calls the API's handler itself
//! ([`api::create_job`], [`api::start_job`], ...). So upload, start, cancel and retry work
//! without JavaScript; the script only adds the drop zone and the live progress, which
//! follows the API's event stream.
//!
//! Chinese first, English with `?lang=en` (kept in a cookie); every text is in [`text`].

mod abort_kind;
mod rejected_row;
pub mod text;
mod view;

use std::net::IpAddr;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::serve::AppState;
use crate::serve::api::{self, ApiError, JobView};
use crate::serve::auth::{self, AuthError, Principal, Via};
use crate::serve::jobs::JobError;
use text::Lang;
use view::{Chrome, ErrorView, JobPage, JobsPage, LoginPage, Notice};

/// The cookie that keeps the chosen language.
pub const LANG_COOKIE: &str = "bihu_lang";
/// Forms other than uploads are a few fields.
const FORM_BODY: usize = 16 * 1024;
/// The CSRF field of an upload is short.
const MAX_CSRF_FIELD: usize = 256;

const CSS: &str = include_str!("assets/pages.css");
const JS: &str = include_str!("assets/pages.js");

/// Every page's answer carries this policy: only this service's own files, no inline script.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'";

/// The pages' routes; `serve::router` merges them beside the API's.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/jobs") }))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout_submit))
        // The upload is bounded by `max_upload_mb` as it streams, in the API's handler.
        .route(
            "/jobs",
            get(jobs_page).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/{action}", post(job_action))
        .route("/static/pages.css", get(css))
        .route("/static/pages.js", get(js))
        // Any other path (the API's own unknown paths answer in JSON, in `api::routes`).
        .fallback(no_such_page)
        .layer(DefaultBodyLimit::max(FORM_BODY))
}

/// What every page handler needs to know about the request.
pub struct PageCtx {
    lang: Lang,
    /// `?lang=` asked for a language: keep it in the cookie.
    remember_lang: bool,
    /// The path asked for, for the language link and the way back after signing in.
    path: String,
    /// The query's pairs, as sent.
    query: Vec<(String, String)>,
    headers: HeaderMap,
    ip: IpAddr,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|query| form_fields(query.as_bytes()))
            .unwrap_or_default();
        let asked = field(&query, "lang").and_then(Lang::parse);
        let kept = cookie(&parts.headers, LANG_COOKIE).and_then(|value| Lang::parse(&value));
        Ok(PageCtx {
            lang: asked.or(kept).unwrap_or(Lang::Zh),
            remember_lang: asked.is_some(),
            path: parts.uri.path().to_string(),
            query,
            headers: parts.headers.clone(),
            ip: auth::client_ip(parts),
        })
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

impl PageCtx {
    /// The frame of a page for `principal`.
    fn chrome(&self, state: &AppState, principal: Option<&Principal>) -> Chrome {
        let (user, csrf) = match principal {
            Some(Principal {
                name,
                via: Via::Session { csrf_token, .. },
            }) => (Some(name.clone()), csrf_token.clone()),
            Some(Principal {
                name,
                via: Via::Basic,
            }) => (Some(name.clone()), String::new()),
            _ => (None, String::new()),
        };
        let other = match self.lang {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        };
        Chrome {
            lang: self.lang,
            user,
            csrf,
            open: state.auth.is_open(),
            signed_in_by_session: matches!(
                principal,
                Some(Principal {
                    via: Via::Session { .. },
                    ..
                })
            ),
            other_lang_href: format!("{}?lang={}", self.path, other.code()),
        }
    }

    /// Adds the language cookie when asked for, and the pages' headers.
    fn finish(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        if self.remember_lang {
            let value = format!(
                "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
                self.lang.code()
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        headers
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("same-origin"),
        );
        response
    }

    /// A rendered page with its status.
    fn page(&self, status: StatusCode, page: &impl Template) -> Response {
        let response = match page.render() {
            Ok(html) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
            Err(error) => {
                tracing::error!(%error, "a page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response()
            }
        };
        self.finish(response)
    }

    fn redirect(&self, to: &str) -> Response {
        self.finish(Redirect::to(to).into_response())
    }

    /// Who asks for a page (a safe request).
    async fn viewer(&self, state: &AppState) -> Result<Principal, AuthError> {
        state.auth.principal(&Method::GET, &self.headers, self.ip).await
    }

    /// Who posts a form: the API's rule for a state-changing request, with the form's CSRF
    /// field as the header a script would send.
    async fn poster(&self, state: &AppState, csrf: Option<&str>) -> Result<Principal, AuthError> {
        let mut headers = self.headers.clone();
        headers.remove(auth::CSRF_HEADER);
        if let Some(token) = csrf
            && let Ok(value) = HeaderValue::from_str(token)
        {
            headers.insert(auth::CSRF_HEADER, value);
        }
        state.auth.principal(&Method::POST, &headers, self.ip).await
    }

    /// Who is signed in by their session, for the frame of an error page: no password is
    /// checked again (a throttled or refused Basic login stays as it was).
    async fn session_viewer(&self, state: &AppState) -> Option<Principal> {
        let mut headers = self.headers.clone();
        headers.remove(header::AUTHORIZATION);
        state.auth.principal(&Method::GET, &headers, self.ip).await.ok()
    }

    /// A refused request, as a page: to the sign-in page when not signed in, else the why,
    /// in the frame of whoever is signed in (so sign-out is there).
    async fn refused(&self, state: &AppState, error: AuthError) -> Response {
        match error {
            AuthError::Unauthorized { message, .. } => {
                let why = if message.contains("expired") {
                    "expired"
                } else {
                    "needed"
                };
                let next: String = url::form_urlencoded::byte_serialize(self.path.as_bytes()).collect();
                self.redirect(&format!("/login?why={why}&next={next}"))
            }
            AuthError::Csrf | AuthError::CrossSite => self.error_page(
                state,
                self.session_viewer(state).await.as_ref(),
                StatusCode::FORBIDDEN,
                ErrorView::new(self.lang, "error.csrf", None),
            ),
            AuthError::Throttled { retry_after } => self.error_page(
                state,
                self.session_viewer(state).await.as_ref(),
                StatusCode::TOO_MANY_REQUESTS,
                ErrorView::text(
                    self.lang.fill(
                        "login.throttled",
                        &[("s", retry_after.as_secs().max(1).to_string())],
                    ),
                    None,
                ),
            ),
            // The store that keeps sessions is what failed: nobody to show.
            AuthError::Unavailable(message) => self.error_page(
                state,
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorView::new(self.lang, "error.unavailable", Some(message)),
            ),
        }
    }

    /// An error page in the frame of `viewer` (None: not known, or nobody signed in).
    fn error_page(
        &self,
        state: &AppState,
        viewer: Option<&Principal>,
        status: StatusCode,
        error: ErrorView,
    ) -> Response {
        let page = view::ErrorPage {
            c: self.chrome(state, viewer),
            error,
        };
        self.page(status, &page)
    }
}

/// `GET /login`.
async fn login_page(State(state): State<AppState>, ctx: PageCtx) -> Response {
    if state.auth.is_open() {
        return ctx.redirect("/jobs");
    }
    let query = &ctx.query;
    let notice = match query.iter().find(|(k, _)| k == "why").map(|(_, v)| v.as_str()) {
        Some("needed") => Some(Notice::info(ctx.lang.t("login.needed"))),
        Some("expired") => Some(Notice::info(ctx.lang.t("login.expired"))),
        Some("signed_out") => Some(Notice::info(ctx.lang.t("login.signed_out"))),
        _ => None,
    };
    let next = query
        .iter()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| safe_next(v))
        .unwrap_or_else(|| "/jobs".to_string());
    let page = LoginPage {
        c: ctx.chrome(&state, None),
        notice,
        name: String::new(),
        next,
    };
    ctx.page(StatusCode::OK, &page)
}

/// A way back after signing in: a path of this service, nothing else.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') && !next.contains("://") {
        next.to_string()
    } else {
        "/jobs".to_string()
    }
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `POST /login`: the form `name`, `password`, `next`; sets the session cookie. Refused when
/// a browser says another site sent it, as `POST /api/login` is.
async fn login_submit(State(state): State<AppState>, ctx: PageCtx, body: axum::body::Bytes) -> Response {
    if state.auth.is_open() {
        return ctx.redirect("/jobs");
    }
    if let Err(refusal) = auth::refuse_cross_site(&ctx.headers) {
        return ctx.refused(&state, refusal).await;
    }
    let fields = form_fields(&body);
    let name = field(&fields, "name").unwrap_or("").trim().to_string();
    let password = field(&fields, "password").unwrap_or("");
    let next = safe_next(field(&fields, "next").unwrap_or("/jobs"));
    match state.auth.login(ctx.ip, &name, password).await {
        Ok(session) => {
            let mut response = ctx.redirect(&next);
            if let Ok(value) = HeaderValue::from_str(&auth::session_cookie_header(&session)) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(error) => {
            let (status, notice) = match &error {
                AuthError::Throttled { retry_after } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    Notice::error(ctx.lang.fill(
                        "login.throttled",
                        &[("s", retry_after.as_secs().max(1).to_string())],
                    )),
                ),
                AuthError::Unavailable(message) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Notice::error(format!("{} ({message})", ctx.lang.t("error.unavailable"))),
                ),
                _ => (StatusCode::UNAUTHORIZED, Notice::error(ctx.lang.t("login.wrong"))),
            };
            let page = LoginPage {
                c: ctx.chrome(&state, None),
                notice: Some(notice),
                name,
                next,
            };
            ctx.page(status, &page)
        }
    }
}

/// `POST /logout`: ends the session, clears the cookie, back to the sign-in page.
async fn logout_submit(State(state): State<AppState>, ctx: PageCtx, body: axum::body::Bytes) -> Response {
    let fields = form_fields(&body);
    if let Err(error) = ctx.poster(&state, field(&fields, "csrf")).await {
        return match error {
            // Not signed in any more: signing out is done already.
            AuthError::Unauthorized { .. } => ctx.redirect("/login?why=signed_out"),
            error => ctx.refused(&state, error).await,
        };
    }
    if let Err(error) = state.auth.logout(&ctx.headers).await {
        return ctx.refused(&state, error).await;
    }
    let mut response = ctx.redirect(if state.auth.is_open() {
        "/jobs"
    } else {
        "/login?why=signed_out"
    });
    if let Ok(value) = HeaderValue::from_str(&auth::clear_cookie_header()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `GET /jobs`: the upload form and every job.
async fn jobs_page(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let principal = match ctx.viewer(&state).await {
        Ok(principal) => principal,
        Err(error) => return ctx.refused(&state, error).await,
    };
    render_jobs(&state, &ctx, &principal, StatusCode::OK, None).await
}

async fn render_jobs(
    state: &AppState,
    ctx: &PageCtx,
    principal: &Principal,
    status: StatusCode,
    error: Option<ErrorView>,
) -> Response {
    let jobs = match state.jobs.list().await {
        Ok(jobs) => jobs,
        Err(error) => return job_error_page(state, ctx, principal, error),
    };
    let page = JobsPage::new(
        ctx.chrome(state, Some(principal)),
        &jobs,
        state.config.reuse_within,
        error,
    );
    ctx.page(status, &page)
}

fn job_error_page(state: &AppState, ctx: &PageCtx, principal: &Principal, error: JobError) -> Response {
    let ApiError(status, message) = ApiError::from(error);
    ctx.error_page(
        state,
        Some(principal),
        status,
        ErrorView::from_api(ctx.lang, status, message),
    )
}

/// Any path that is no page: a page saying so, in the frame of whoever is signed in.
async fn no_such_page(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let viewer = ctx.session_viewer(&state).await;
    ctx.error_page(
        &state,
        viewer.as_ref(),
        StatusCode::NOT_FOUND,
        ErrorView::new(ctx.lang, "error.no_page", None),
    )
}

/// `POST /jobs`: the upload form (`csrf` first, then `file`, `city_code` and `reuse_within`), handed to the
/// API's `POST /api/jobs` handler; on success to the job's page, else the jobs page with why.
async fn upload(
    State(state): State<AppState>,
    ctx: PageCtx,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let mut multipart = match multipart {
        Ok(multipart) => multipart,
        Err(rejection) => {
            return ctx.error_page(
                &state,
                ctx.session_viewer(&state).await.as_ref(),
                StatusCode::BAD_REQUEST,
                ErrorView::new(ctx.lang, "error.no_file", Some(rejection.body_text())),
            );
        }
    };
    // The form puts its CSRF token first, so that it is known before the file streams.
    let mut csrf = None;
    if !state.auth.is_open() {
        match multipart.next_field().await {
            Ok(Some(mut first)) if first.name() == Some("csrf") => {
                let mut token = Vec::new();
                while let Ok(Some(chunk)) = first.chunk().await {
                    token.extend_from_slice(&chunk);
                    if token.len() > MAX_CSRF_FIELD {
                        break;
                    }
                }
                csrf = String::from_utf8(token).ok();
            }
            _ => {}
        }
    }
    let principal = match ctx.poster(&state, csrf.as_deref()).await {
        Ok(principal) => principal,
        Err(error) => return ctx.refused(&state, error).await,
    };
    match api::create_job(State(state.clone()), principal.clone(), Ok(multipart)).await {
        Ok((_, axum::Json(job))) => ctx.redirect(&format!("/jobs/{}", job.id)),
        Err(ApiError(status, message)) => {
            let error = ErrorView::from_api(ctx.lang, status, message);
            render_jobs(&state, &ctx, &principal, status, Some(error)).await
        }
    }
}

/// `GET /jobs/{id}`: the job's check, progress or results.
async fn job_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
    let principal = match ctx.viewer(&state).await {
        Ok(principal) => principal,
        Err(error) => return ctx.refused(&state, error).await,
    };
    render_job(&state, &ctx, &principal, &id, StatusCode::OK, None).await
}

async fn render_job(
    state: &AppState,
    ctx: &PageCtx,
    principal: &Principal,
    id: &str,
    status: StatusCode,
    error: Option<ErrorView>,
) -> Response {
    let id = match id.parse::<i64>() {
        Ok(id) if id > 0 => id,
        _ => return job_error_page(state, ctx, principal, JobError::NotFound(0)),
    };
    let job = match state.jobs.view(id).await {
        Ok(job) => job,
        Err(error) => return job_error_page(state, ctx, principal, error),
    };
    let page = JobPage::new(
        ctx.chrome(state, Some(principal)),
        &job,
        JobView::from(&job),
        error,
        crate::serve::jobs::unix_now(),
    );
    ctx.page(status, &page)
}

/// `POST /jobs/{id}/start|cancel|retry`: the form's button, handed to the API's handler;
/// back to the job's page, with why if it was refused.
async fn job_action(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let fields = form_fields(&body);
    let principal = match ctx.poster(&state, field(&fields, "csrf")).await {
        Ok(principal) => principal,
        Err(error) => return ctx.refused(&state, error).await,
    };
    let done = match action.as_str() {
        "start" => api::start_job(State(state.clone()), principal.clone(), Path(id.clone())).await,
        "cancel" => api::cancel_job(State(state.clone()), principal.clone(), Path(id.clone())).await,
        "retry" => api::retry_job(State(state.clone()), principal.clone(), Path(id.clone())).await,
        _ => {
            return ctx.error_page(
                &state,
                Some(&principal),
                StatusCode::NOT_FOUND,
                ErrorView::new(ctx.lang, "error.not_found", None),
            );
        }
    };
    match done {
        Ok(axum::Json(job)) => ctx.redirect(&format!("/jobs/{}", job.id)),
        Err(ApiError(status, message)) => {
            let error = ErrorView::from_api(ctx.lang, status, message);
            render_job(&state, &ctx, &principal, &id, status, Some(error)).await
        }
    }
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_after_signing_in_stays_on_this_service() {
        assert_eq!(safe_next("/jobs/3"), "/jobs/3");
        assert_eq!(safe_next("//evil.example/x"), "/jobs");
        assert_eq!(safe_next("https://evil.example/"), "/jobs");
        assert_eq!(safe_next("/\\evil.example"), "/jobs");
        assert_eq!(safe_next("jobs"), "/jobs");
    }
}
