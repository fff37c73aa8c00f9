//! Refusals on every route: without credentials (401 from the API, the sign-in page for
//! pages), and a state change made with the session cookie but without the CSRF token
//! (403); a login sent from another site, to the API or the sign-in page's form, is refused
//! as any state change is.

use bihu_renew::serve::api::JobView;
use bihu_renew::serve::store::JobState;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Options, Service, header, plate_list};
use crate::support::no_redirects;

/// Every API route that needs a user, as `(method, path)`; `{id}` is a job's id.
/// `/api/login` and `/healthz` need none.
const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/session"),
    ("POST", "/api/logout"),
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/{id}"),
    ("DELETE", "/api/jobs/{id}"),
    ("POST", "/api/jobs/{id}/start"),
    ("POST", "/api/jobs/{id}/cancel"),
    ("POST", "/api/jobs/{id}/retry"),
    ("GET", "/api/jobs/{id}/results.csv"),
    ("GET", "/api/jobs/{id}/results.xlsx"),
    ("GET", "/api/jobs/{id}/report.html"),
    ("GET", "/api/jobs/{id}/report.json"),
    ("GET", "/api/jobs/{id}/events"),
];

/// Every page route that needs a user (the sign-in page and the assets need none).
const PAGE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/jobs"),
    ("POST", "/jobs"),
    ("GET", "/jobs/{id}"),
    ("POST", "/jobs/{id}/start"),
    ("POST", "/jobs/{id}/cancel"),
    ("POST", "/jobs/{id}/retry"),
    ("POST", "/logout"),
];

/// The request for `method path`, with a body of the kind the route takes.
fn request(http: &reqwest::Client, service: &Service, method: &str, path: &str) -> reqwest::RequestBuilder {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let request = http.request(method.clone(), service.url(path));
    if method != Method::POST {
        return request;
    }
    if path == "/api/jobs" || path == "/jobs" {
        let file = Part::bytes(plate_list(2).into_bytes()).file_name("a.csv");
        request.multipart(Form::new().part("file", file))
    } else {
        request.form(&[("name", "value")])
    }
}

async fn login(service: &Service) -> (String, String) {
    let login = service.login_request("clerk", "pw").send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let cookie = header(&login, "set-cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let session: Value = login.json().await.unwrap();
    (cookie, session["csrf_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn every_route_refuses_the_anonymous_and_cookie_state_changes_without_the_csrf_token() {
    let service = Service::start(Options::with_user("clerk", "pw")).await;
    let http = no_redirects();
    let job: JobView = service
        .upload_as("clerk", "pw", "b.csv", plate_list(3).into_bytes())
        .await
        .json()
        .await
        .unwrap();
    let with_id = |path: &str| path.replace("{id}", &job.id.to_string());

    for (method, path) in API_ROUTES {
        let path = with_id(path);
        let response = request(&http, &service, method, &path).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "anonymous {method} {path}"
        );
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("log in"),
            "{method} {path}: {error}"
        );
    }
    for (method, path) in PAGE_ROUTES {
        let path = with_id(path);
        let response = request(&http, &service, method, &path).send().await.unwrap();
        if path == "/logout" {
            // Signing out without a session: there is nothing to end.
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{method} {path}");
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "anonymous {method} {path}"
        );
        let location = header(&response, "location");
        assert!(
            location.starts_with("/login?why=needed"),
            "anonymous {method} {path} goes to {location}"
        );
    }

    let (cookie, csrf) = login(&service).await;
    for (method, path) in API_ROUTES.iter().chain(PAGE_ROUTES) {
        if *method == "GET" {
            continue;
        }
        let path = with_id(path);
        let response = request(&http, &service, method, &path)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{method} {path} with the cookie and no CSRF token"
        );
    }
    // Nothing was done: the job is still validated, the only one, and the session lives.
    let listed = http
        .get(service.url("/api/jobs"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK, "the session was not ended");
    let jobs: Vec<JobView> = listed.json().await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].state, JobState::Validated);
    assert_eq!(service.sandbox.stats().requests, 0);
    // The token makes the same request go through.
    let started = http
        .post(service.url(&format!("/api/jobs/{}/start", job.id)))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);
    service.shutdown().await;
}

#[tokio::test]
async fn a_login_sent_from_another_site_is_refused_and_sets_no_cookie() {
    let service = Service::start(Options::with_user("clerk", "pw")).await;
    let login = || service.login_request("clerk", "pw");
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let refused = login().header(header, value).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(refused.headers().get("set-cookie").is_none(), "{header}: {value}");
        let error: Value = refused.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("another site"),
            "{error}"
        );
    }
    // From the service's own pages, or from a script (no Origin), it is a login.
    let same = login()
        .header("origin", service.served.base.clone())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::OK);
    assert!(same.headers().get("set-cookie").is_some());
    assert_eq!(login().send().await.unwrap().status(), StatusCode::OK);

    // The sign-in page's form is refused the same way, with the page's refusal.
    let http = no_redirects();
    let form_login = || {
        http.post(service.url("/login"))
            .form(&[("name", "clerk"), ("password", "pw"), ("next", "/jobs")])
    };
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let refused = form_login().header(header, value).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "form, {header}: {value}");
        assert!(
            refused.headers().get("set-cookie").is_none(),
            "form, {header}: {value}"
        );
        assert!(
            refused.text().await.unwrap().contains("<html"),
            "a page, not JSON"
        );
    }
    let signed_in = form_login()
        .header("origin", service.served.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert!(signed_in.headers().get("set-cookie").is_some());
    service.shutdown().await;
}
