//! Signing in and out over the API: `POST /api/login` (JSON or a form; sets the session
//! cookie), `POST /api/logout`, and `GET /api/session` (who, how, and the CSRF token).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::serve::AppState;
use crate::serve::api::view::rfc3339;
use crate::serve::api::{ApiError, ClientIp, bad_request};
use crate::serve::auth::{self, AuthError, Principal, Via};

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

/// What login and `GET /api/session` answer.
#[derive(Serialize)]
pub(super) struct SessionView {
    user: String,
    /// `session`, `basic` or `open` (no users configured).
    auth: &'static str,
    /// Send it as `X-CSRF-Token` with state-changing requests made with the cookie.
    csrf_token: Option<String>,
    expires_at: Option<String>,
}

/// `POST /api/login`: JSON or form `{name, password}`; sets the session cookie. Refused
/// when a browser says another site sent it, as every state-changing request is.
pub(super) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Err(refusal) = auth::refuse_cross_site(&headers) {
        return Ok(refusal.into_response());
    }
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

/// `POST /api/logout`: ends the session and clears the cookie.
pub(super) async fn logout(
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
pub(super) async fn session(principal: Principal) -> Json<SessionView> {
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
