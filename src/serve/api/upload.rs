//! `POST /api/jobs`: an upload streamed to its own folder within `max_upload_mb`, its
//! short fields (city, start, reuse window) bounded and parsed, then handed to the jobs as
//! an [`Upload`] to be checked; any refusal, and a request that goes away, leaves nothing
//! behind (the folder is an [`UploadDir`](crate::serve::upload::UploadDir)).

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::leads::city::City;
use crate::serve::AppState;
use crate::serve::api::view::JobView;
use crate::serve::api::{ApiError, bad_request};
use crate::serve::auth::Principal;
use crate::serve::jobs::{self, Upload};

/// A multipart text field (city_code, start) is short.
const MAX_TEXT_FIELD: usize = 256;

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
    // Removed when dropped: on any refusal below, or if the client goes away.
    let dir = state.jobs.upload_dir()?;
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
                let path = dir.path().join(&input_name);
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
        dir,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_their_folders_and_control_characters() {
        assert_eq!(clean_file_name("C:\\Users\\x\\leads.csv"), "leads.csv");
        assert_eq!(clean_file_name("../../etc/pass\nwd"), "passwd");
    }
}
