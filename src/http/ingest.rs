//! `POST /ingest/detections`: bulk ingestion for pipelines. The body is NDJSON
//! (`Content-Type: application/x-ndjson`), one `DetectionInput` per line, any number of
//! lines of at most 1 MiB each, read as a stream: lines are gathered into chunks of
//! 1,000 and each chunk is checked and committed on its own (`domain::ingest::
//! ingest_chunk`, the same rules, idempotency and automatic cases as `ingestDetections`),
//! so memory stays bounded and a client that disconnects keeps the chunks that committed.
//! A bad line is reported with its 1-based line number and never stops the good ones.
//!
//! The answer: `{"accepted": n, "duplicates": n, "rejected": [{"line": k, "code": …,
//! "field": …, "message": …}], "autoCases": [case numbers]}`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::auth;
use crate::db::pool;
use crate::domain::access;
use crate::domain::ingest::{self, DetectionDraft, DeviceDraft, FileDraft};
use crate::error::{AppError, BAD_REQUEST, Code, RequestId};
use crate::models::detections::MAX_INGEST;
use crate::models::enums::{DetectionSource, FileAvailability};

/// Longest line accepted, in bytes (without its newline).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Lines committed together.
pub const CHUNK_LINES: usize = MAX_INGEST;

/// The media type of the body.
const NDJSON: &str = "application/x-ndjson";

/// One line: the fields of GraphQL's `DetectionInput`, by the same names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineInput {
    external_id: String,
    source: String,
    rule_name: String,
    #[serde(default)]
    description: Option<String>,
    observed_at: DateTime<Utc>,
    risk_score: i32,
    #[serde(default)]
    risk_indicators: Option<Vec<IndicatorLine>>,
    #[serde(default)]
    device: Option<DeviceLine>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    mitre: Option<Vec<MitreLine>>,
    #[serde(default)]
    file: Option<FileLine>,
    #[serde(default)]
    raw: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorLine {
    name: String,
    weight: i32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeviceLine {
    #[serde(default)]
    id: Option<String>,
    hostname: String,
    #[serde(default, rename = "type")]
    device_type: Option<String>,
    #[serde(default)]
    ip: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MitreLine {
    tactic_id: String,
    tactic_name: String,
    technique_id: String,
    technique_name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileLine {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    size: Option<f64>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    md5: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    availability: Option<String>,
}

/// A line that was not stored.
#[derive(Debug, Serialize)]
struct Rejected {
    line: u64,
    code: &'static str,
    field: Option<String>,
    message: String,
}

impl Rejected {
    fn validation(line: u64, field: Option<String>, message: impl Into<String>) -> Self {
        Rejected { line, code: Code::ValidationFailed.as_str(), field, message: message.into() }
    }
}

/// The answer.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    accepted: usize,
    duplicates: usize,
    rejected: Vec<Rejected>,
    auto_cases: Vec<i32>,
}

/// A line's JSON path as the API names fields: `device.hostname`, `mitre.0.tacticId`.
fn field_of(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let parts: Vec<String> = path
        .iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

/// serde's message without its position's line ("at line 1 column 9" says nothing
/// here): the column is kept.
fn position_free(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rsplit_once(" at line 1 column ") {
        Some((head, column)) => format!("{head} (column {column})"),
        None => message,
    }
}

/// Parses one line into a draft, or the reason it cannot be one.
fn parse_line(line_no: u64, bytes: &[u8]) -> Result<DetectionDraft, Rejected> {
    // Most lines are good: parse them without tracking the path, and parse a bad line
    // again with its path for the answer.
    let input = match serde_json::from_slice::<LineInput>(bytes) {
        Ok(input) => input,
        Err(_) => return Err(rejected_line(line_no, bytes)),
    };
    draft_of(line_no, input)
}

/// Why a line that is not a `DetectionInput` is not one: the field's path and serde's
/// message.
fn rejected_line(line_no: u64, bytes: &[u8]) -> Rejected {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<LineInput, _> = serde_path_to_error::deserialize(&mut de);
    if let Err(error) = parsed {
        let inner = error.inner();
        let syntax = inner.is_syntax() || inner.is_eof();
        let what =
            if syntax { "the line is not valid JSON" } else { "the line is not a DetectionInput" };
        let field = if syntax { None } else { field_of(error.path()) };
        return Rejected::validation(line_no, field, format!("{what}: {}", position_free(inner)));
    }
    match de.end() {
        Err(error) => Rejected::validation(
            line_no,
            None,
            format!("the line is not valid JSON: {}", position_free(&error)),
        ),
        // Not reached: a line that fails to parse fails here too.
        Ok(()) => Rejected::validation(line_no, None, "the line is not a DetectionInput"),
    }
}

/// The draft of a parsed line, or why its enum values are unknown.
fn draft_of(line_no: u64, input: LineInput) -> Result<DetectionDraft, Rejected> {
    let source = DetectionSource::parse(&input.source).ok_or_else(|| {
        Rejected::validation(
            line_no,
            Some("source".into()),
            format!("unknown source {:?}: XDR, FILE_ACTIVITY, MDR or MANAGED_RISK", input.source),
        )
    })?;
    let availability = match input.file.as_ref().and_then(|f| f.availability.as_deref()) {
        None => None,
        Some(value) => Some(FileAvailability::parse(value).ok_or_else(|| {
            Rejected::validation(
                line_no,
                Some("file.availability".into()),
                format!("unknown availability {value:?}"),
            )
        })?),
    };
    Ok(DetectionDraft {
        external_id: input.external_id,
        source,
        rule_name: input.rule_name,
        description: input.description,
        observed_at: input.observed_at,
        risk_score: input.risk_score,
        risk_indicators: input
            .risk_indicators
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.name, r.weight))
            .collect(),
        device: input.device.map(|d| DeviceDraft {
            id: d.id,
            hostname: d.hostname,
            device_type: d.device_type,
            ip: d.ip,
        }),
        actor: input.actor,
        mitre: input
            .mitre
            .unwrap_or_default()
            .into_iter()
            .map(|m| [m.tactic_id, m.tactic_name, m.technique_id, m.technique_name])
            .collect(),
        file: input.file.map(|f| FileDraft {
            name: f.name,
            path: f.path,
            size: f.size,
            sha256: f.sha256,
            md5: f.md5,
            mime_type: f.mime_type,
            availability,
        }),
        raw: input.raw,
    })
}

fn error_response(error: &AppError, request_id: &RequestId) -> Response {
    crate::http::rest_error(error, request_id, None)
}

fn error_with(status: StatusCode, code: &str, message: &str, request_id: &RequestId) -> Response {
    let mut extensions = json!({ "code": code });
    if code == Code::Internal.as_str() {
        extensions["requestId"] = json!(request_id.0);
    }
    let body = json!({ "errors": [{ "message": message, "extensions": extensions }] });
    let mut response = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The lines gathered for the next commit: (line number, draft).
struct Chunk {
    drafts: Vec<(usize, DetectionDraft)>,
    lines: Vec<u64>,
    count: usize,
}

impl Chunk {
    fn new() -> Self {
        Chunk { drafts: Vec::with_capacity(CHUNK_LINES), lines: Vec::new(), count: 0 }
    }
}

/// `POST /ingest/detections`.
pub async fn post(
    State(state): State<AppState>,
    request_id: RequestId,
    client: crate::http::ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let viewer = match state.guard.authenticate(&state.db, client.0, authorization).await {
        // The change record names the request and the client with each chunk's event.
        Ok(viewer) => {
            auth::Viewer { request_id: uuid::Uuid::parse_str(&request_id.0).ok(), ..viewer }
        }
        Err(error) => return error_response(&error, &request_id),
    };
    if let Err(error) = viewer.require(access::INGEST) {
        return error_response(&error, &request_id);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let essence = content_type.and_then(|v| v.split(';').next()).map(str::trim);
    if !essence.is_some_and(|e| e.eq_ignore_ascii_case(NDJSON)) {
        return error_with(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BAD_REQUEST,
            "send the detections as `Content-Type: application/x-ndjson`, one JSON object a line",
            &request_id,
        );
    }

    let mut summary = Summary::default();
    let mut stream = body.into_data_stream();
    // The line being read when it spans pieces of the body; `over` once it passed the
    // limit (the rest is skipped).
    let mut line: Vec<u8> = Vec::new();
    let mut over = false;
    let mut line_no: u64 = 0;
    let mut chunk = Chunk::new();
    // The chunk being committed while the next one is read and parsed: at most one, so
    // chunks commit in order and memory stays at two chunks.
    let mut pending: Option<Commit> = None;

    loop {
        let piece = match stream.next().await {
            Some(Ok(piece)) => piece,
            Some(Err(error)) => {
                // The client went away or the body broke: what committed stays.
                tracing::info!(%error, lines = line_no, "ingest body ended early");
                if let Err(error) = settle(&mut pending, &mut summary).await {
                    tracing::warn!(%error, "an ingest chunk failed after the body ended early");
                }
                return (StatusCode::BAD_REQUEST, axum::Json(json!({
                    "errors": [{ "message": "the request body ended early; the chunks committed before stay", "extensions": { "code": BAD_REQUEST } }],
                }))).into_response();
            }
            None => break,
        };
        let mut rest: &[u8] = &piece;
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    line_no += 1;
                    if over || line.len() + at > MAX_LINE_BYTES {
                        take_line(&mut chunk, &mut summary, line_no, &[], true);
                    } else if line.is_empty() {
                        // The whole line is in this piece: parsed where it lies.
                        take_line(&mut chunk, &mut summary, line_no, &rest[..at], false);
                    } else {
                        line.extend_from_slice(&rest[..at]);
                        take_line(&mut chunk, &mut summary, line_no, &line, false);
                    }
                    line.clear();
                    over = false;
                    rest = &rest[at + 1..];
                    if chunk.count >= CHUNK_LINES {
                        if let Err(error) = settle(&mut pending, &mut summary).await {
                            return error_response(&error, &request_id);
                        }
                        pending = start_commit(&state, viewer, &mut chunk);
                    }
                }
                None => {
                    if !over {
                        if line.len() + rest.len() > MAX_LINE_BYTES {
                            over = true;
                            line.clear();
                            line.shrink_to(64 * 1024);
                        } else {
                            line.extend_from_slice(rest);
                        }
                    }
                    rest = &[];
                }
            }
        }
    }
    if over || !line.is_empty() {
        line_no += 1;
        take_line(&mut chunk, &mut summary, line_no, &line, over);
    }
    if let Err(error) = settle(&mut pending, &mut summary).await {
        return error_response(&error, &request_id);
    }
    pending = start_commit(&state, viewer, &mut chunk);
    if let Err(error) = settle(&mut pending, &mut summary).await {
        return error_response(&error, &request_id);
    }
    summary.rejected.sort_by_key(|r| r.line);
    let mut response = (StatusCode::OK, axum::Json(&summary)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds a finished line to the chunk (blank lines are skipped).
fn take_line(chunk: &mut Chunk, summary: &mut Summary, line_no: u64, bytes: &[u8], over: bool) {
    if over {
        summary.rejected.push(Rejected::validation(
            line_no,
            None,
            format!("a line has at most {MAX_LINE_BYTES} bytes"),
        ));
        chunk.count += 1;
        return;
    }
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    chunk.count += 1;
    match parse_line(line_no, bytes) {
        Ok(draft) => {
            chunk.drafts.push((chunk.lines.len(), draft));
            chunk.lines.push(line_no);
        }
        Err(rejected) => summary.rejected.push(rejected),
    }
}

/// A chunk being checked and committed on a task of its own, with its line numbers.
type Commit = tokio::task::JoinHandle<Result<(ingest::ChunkOutcome, Vec<u64>), AppError>>;

/// Starts checking and committing the chunk's drafts in one transaction (on its own
/// task, which finishes even if the request is dropped), and empties the chunk.
fn start_commit(state: &AppState, viewer: auth::Viewer, chunk: &mut Chunk) -> Option<Commit> {
    let drafts = std::mem::take(&mut chunk.drafts);
    let lines = std::mem::take(&mut chunk.lines);
    chunk.count = 0;
    if drafts.is_empty() {
        return None;
    }
    let db = state.db.clone();
    Some(tokio::spawn(async move {
        let mut conn = pool::get(&db).await?;
        let done = ingest::ingest_chunk(&mut conn, &viewer, drafts).await;
        let done = conn.settle(done).await?;
        Ok((done, lines))
    }))
}

/// Waits for the chunk being committed, if any, and adds what it did to the answer.
async fn settle(pending: &mut Option<Commit>, summary: &mut Summary) -> Result<(), AppError> {
    let Some(task) = pending.take() else { return Ok(()) };
    let (done, lines) = task.await.map_err(|error| {
        AppError::Internal(anyhow::anyhow!("an ingest chunk failed: {error}"))
    })??;
    summary.accepted += done.outcome.accepted;
    summary.duplicates += done.outcome.duplicates;
    for (at, error) in done.rejected {
        let line = lines.get(at).copied().unwrap_or_default();
        let (field, message) = match &error {
            AppError::Validation { field, message } => (Some(field.clone()), message.clone()),
            other => (None, other.public_message()),
        };
        summary.rejected.push(Rejected { line, code: error.code().as_str(), field, message });
    }
    for case in done.outcome.auto_cases {
        if !summary.auto_cases.contains(&case.number) {
            summary.auto_cases.push(case.number);
        }
    }
    Ok(())
}

#[cfg(test)]
mod properties;
