//! `PUT /detections/{id}/file` and `GET /detections/{id}/file`: evidence file contents,
//! streamed both ways (never whole in memory), with bearer auth and GraphQL-shaped errors.
//!
//! These routes sit outside the compression and total-timeout layers of the other HTTP
//! routes (`http::router`): a body is sent as stored, so `Content-Length`, `ETag` and
//! `Range` stay true, and a long transfer is only cut when it stops moving
//! (`CASEFILE_FILE_IDLE_TIMEOUT_SECS`). Uploads have their own size limit
//! (`CASEFILE_MAX_UPLOAD_BYTES`), not the GraphQL body limit.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

use crate::app::AppState;
use crate::auth::Viewer;
use crate::db::pool;
use crate::domain::evidence::{self, Uploaded};
use crate::error::{AppError, Code, RequestId};
use crate::graphql::ids::{self, Kind};
use crate::http::ClientAddress;
use crate::http::transfer::{idle_timeout, tracked};
use crate::models::ids::DetectionId;
use crate::storage::UploadError;

/// The evidence file routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/detections/{id}/file", put(upload).get(download))
        // The upload limit is the handler's own (it streams the body).
        .layer(DefaultBodyLimit::disable())
}

/// An error of these endpoints, answered in the GraphQL error shape.
struct FileError {
    status: StatusCode,
    error: AppError,
    request_id: RequestId,
}

impl FileError {
    fn new(error: AppError, request_id: &RequestId) -> Self {
        let status = match error.code() {
            // A REST body that fails a check.
            Code::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            code => code.status(),
        };
        FileError { status, error, request_id: request_id.clone() }
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for FileError {
    fn into_response(self) -> Response {
        crate::http::rest_error(&self.error, &self.request_id, Some(self.status))
    }
}

async fn viewer(
    state: &AppState,
    headers: &HeaderMap,
    request_id: &RequestId,
    client: ClientAddress,
) -> Result<Viewer, AppError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let viewer = state.guard.authenticate(&state.db, client.0, authorization).await?;
    Ok(Viewer { request_id: uuid::Uuid::parse_str(&request_id.0).ok(), ..viewer })
}

/// A detection's global id, or a bare UUID; anything else names no detection.
fn detection_id(raw: &str) -> Result<DetectionId, AppError> {
    if let Ok(uuid) = uuid::Uuid::parse_str(raw) {
        return Ok(DetectionId(uuid));
    }
    match ids::decode(raw) {
        Some((Kind::Detection, uuid)) => Ok(DetectionId(uuid)),
        _ => Err(AppError::NotFound("detection")),
    }
}

/// `PUT /detections/{id}/file`: the body is the file's contents.
async fn upload(
    State(state): State<AppState>,
    request_id: RequestId,
    client: ClientAddress,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, FileError> {
    let fail = |e: AppError| FileError::new(e, &request_id);
    let viewer = viewer(&state, &headers, &request_id, client).await.map_err(fail)?;
    let id = detection_id(&id).map_err(fail)?;
    {
        let mut conn = pool::get(&state.db).await.map_err(fail)?;
        let checked = evidence::check_upload(&mut conn, &viewer, id).await;
        conn.settle(checked).await.map_err(fail)?;
    }
    let limit = state.files.max_upload_bytes;
    let too_large = || {
        fail(AppError::Rule(
            Code::LimitExceeded,
            format!("the file is larger than the upload limit of {limit} bytes"),
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let stream = idle_timeout(body.into_data_stream(), state.files.idle_timeout());
    let staged = match state.storage.stage(viewer.tenant_id, stream, limit).await {
        Ok(staged) => staged,
        Err(UploadError::TooLarge(_)) => return Err(too_large()),
        Err(UploadError::Body(error)) => {
            tracing::info!(%error, "upload body ended early");
            return Err(fail(AppError::validation("body", format!("reading the upload: {error}")))
                .with_status(StatusCode::BAD_REQUEST));
        }
        Err(UploadError::Store(error)) => {
            return Err(fail(AppError::Internal(anyhow::anyhow!("storing an upload: {error}"))));
        }
    };
    let (sha256, size) = (staged.sha256.to_string(), staged.size);
    let outcome = evidence::finish_upload(&state.db, &state.storage, &viewer, id, staged)
        .await
        .map_err(fail)?;
    let status = match outcome {
        Uploaded::Created => StatusCode::CREATED,
        Uploaded::Unchanged => StatusCode::OK,
    };
    tracing::info!(detection = %id.0, %sha256, size, created = status == StatusCode::CREATED, "evidence uploaded");
    let body = json!({ "sha256": sha256, "size": size });
    Ok((
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body.to_string(),
    )
        .into_response())
}

/// What a `Range` header asks of a content of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    /// No range, or one this endpoint answers whole (several ranges, other units).
    Whole,
    /// The bytes `start..end`.
    Part(u64, u64),
    /// A single range that lies outside the content (416).
    Unsatisfiable,
}

fn parse_range(value: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeAsk::Whole };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(n) if size > 0 => RangeAsk::Part(size.saturating_sub(n), size),
            Some(_) => RangeAsk::Unsatisfiable,
            None => RangeAsk::Whole,
        },
        // bytes=A-: from A to the end.
        (false, true) => match parse(first) {
            Some(a) if a < size => RangeAsk::Part(a, size),
            Some(_) => RangeAsk::Unsatisfiable,
            None => RangeAsk::Whole,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(a), Some(b)) if a <= b && a < size => RangeAsk::Part(a, b.min(size - 1) + 1),
            (Some(a), Some(b)) if a <= b => RangeAsk::Unsatisfiable,
            _ => RangeAsk::Whole,
        },
        (true, true) => RangeAsk::Whole,
    }
}

/// Characters kept as they are in an RFC 5987 `filename*` value (its `attr-char`).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment` with the file's name (RFC 6266): an ASCII fallback in `filename` and the
/// exact name, UTF-8, in `filename*`.
fn content_disposition(name: &str) -> HeaderValue {
    // No folders in a name a browser saves.
    let base = name.rsplit(['/', '\\']).next().filter(|b| !b.is_empty()).unwrap_or("evidence");
    let fallback: String = base
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let exact = utf8_percent_encode(base, ATTR_CHAR);
    HeaderValue::from_str(&format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// `GET /detections/{id}/file`: the stored contents, whole or one byte range.
async fn download(
    State(state): State<AppState>,
    request_id: RequestId,
    client: ClientAddress,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, FileError> {
    let fail = |e: AppError| FileError::new(e, &request_id);
    let viewer = viewer(&state, &headers, &request_id, client).await.map_err(fail)?;
    let id = detection_id(&id).map_err(fail)?;
    let (detection, hash, size) = {
        let mut conn = pool::get(&state.db).await.map_err(fail)?;
        let found = evidence::find_download(&mut conn, &viewer, id).await;
        conn.settle(found).await.map_err(fail)?
    };
    let etag = format!("\"{hash}\"");
    let mut response_headers = HeaderMap::new();
    response_headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(detection.file_name.as_deref().unwrap_or("evidence")),
    );
    let if_none_match = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    // A Range applies unless If-Range names another version.
    let if_range = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok());
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range.is_none_or(|v| v.trim() == etag));
    let (status, range) = match parse_range(range_header, size) {
        RangeAsk::Whole => (StatusCode::OK, None),
        RangeAsk::Part(start, end) => (StatusCode::PARTIAL_CONTENT, Some(start..end)),
        RangeAsk::Unsatisfiable => {
            let mut response = fail(AppError::validation(
                "range",
                format!("the range lies outside the file's {size} bytes"),
            ))
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
    if let Some(r) = &range
        && let Ok(value) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1))
    {
        response_headers.insert(header::CONTENT_RANGE, value);
    }
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // An empty file has no range to ask the store for.
    let stream = if size == 0 {
        futures_util::stream::empty().boxed()
    } else {
        let opened = state
            .storage
            .open(viewer.tenant_id, &hash, Some(range.clone().unwrap_or(0..size)))
            .await
            .map_err(|e| fail(AppError::Internal(anyhow::anyhow!("reading stored content: {e}"))))?
            .ok_or_else(|| {
                fail(AppError::Internal(anyhow::anyhow!(
                    "stored content {hash} of tenant {} is missing from the object store",
                    viewer.tenant_id
                )))
            })?;
        idle_timeout(opened, state.files.idle_timeout()).boxed()
    };
    let stream = tracked(stream, length, state.metrics.transfer_started("download"));
    {
        let range = range.as_ref().map(|r| (r.start, r.end));
        let mut conn = pool::get(&state.db).await.map_err(fail)?;
        let recorded =
            evidence::record_download(&mut conn, &viewer, &detection, &hash, size, range).await;
        conn.settle(recorded).await.map_err(fail)?;
    }
    tracing::info!(detection = %id.0, sha256 = %hash, bytes = length, "evidence downloaded");
    Ok((status, response_headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), RangeAsk::Part(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), RangeAsk::Part(5, 10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), RangeAsk::Part(7, 10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), RangeAsk::Part(0, 10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), RangeAsk::Part(8, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=10-12"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=3-1"), 10), RangeAsk::Whole);
    }

    #[test]
    fn content_disposition_keeps_non_ascii_names_in_filename_star() {
        let value = content_disposition("C:\\Users\\x\\Résumé \"final\".pdf");
        assert_eq!(
            value.to_str().ok(),
            Some(
                "attachment; filename=\"R_sum_ _final_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf"
            )
        );
    }
}
