//! `GET /audit/public-key` (the key that signs checkpoints) and `GET /audit/export`
//! (ADMIN: the tenant's change record as NDJSON or CSV, streamed in chunks of events so
//! memory stays constant whatever its size).

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::stream;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::db::pool;
use crate::domain::access;
use crate::error::{AppError, RequestId};
use crate::graphql::ids::{self, Kind};
use crate::http::ClientAddress;
use crate::models::events::{Event, format_at, list};
use crate::models::ids::TenantId;

/// Events read per statement of an export.
const CHUNK: i64 = 500;

/// The columns of a CSV export, in order (the `AuditEvent` fields, with the ids the hash covers).
const COLUMNS: [&str; 16] = [
    "tenantId",
    "sequence",
    "id",
    "at",
    "actorId",
    "actorType",
    "requestId",
    "clientAddress",
    "action",
    "caseId",
    "caseNumber",
    "caseEventKind",
    "targetId",
    "changes",
    "previousHash",
    "hash",
];

/// `GET /audit/public-key`: the server's Ed25519 public key (standard base64 of the raw
/// 32 bytes) as JSON, with the checkpoint text format it verifies.
pub async fn public_key(State(state): State<AppState>) -> Response {
    let body = json!({
        "algorithm": "Ed25519",
        "publicKey": state.audit_key.public_key_base64(),
        "signedText": "casefile-audit-checkpoint:v1:<tenant global id>:<sequence>:<hash>:<at>",
    });
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// The export's format and time range.
type Params = (Format, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The export's parameters: `format` (ndjson, the default, or csv), `from` (inclusive)
/// and `to` (exclusive), RFC 3339.
fn parse_params(query: &str) -> Result<Params, AppError> {
    let mut format = Format::Ndjson;
    let (mut from, mut to) = (None, None);
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let time = |field: &str| {
            DateTime::parse_from_rfc3339(&value).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                AppError::validation(
                    field,
                    format!("`{field}` is an RFC 3339 time (2026-03-31T14:05:00Z)"),
                )
            })
        };
        match name.as_ref() {
            "format" => {
                format = match value.as_ref() {
                    "ndjson" => Format::Ndjson,
                    "csv" => Format::Csv,
                    _ => return Err(AppError::validation("format", "`format` is ndjson or csv")),
                }
            }
            "from" => from = Some(time("from")?),
            "to" => to = Some(time("to")?),
            other => {
                return Err(AppError::validation(other, format!("unknown parameter `{other}`")));
            }
        }
    }
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(AppError::validation("to", "`to` is not before `from`"));
    }
    Ok((format, from, to))
}

/// An error as the REST endpoints answer it: the GraphQL error shape, with its status.
fn error_response(error: &AppError, request_id: &RequestId) -> Response {
    crate::http::rest_error(error, request_id, None)
}

/// `GET /audit/export?format=ndjson|csv&from=<RFC 3339>&to=<RFC 3339>` (ADMIN).
pub async fn export(
    State(state): State<AppState>,
    request_id: RequestId,
    client: ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let viewer = match state.guard.authenticate(&state.db, client.0, authorization).await {
        Ok(viewer) => viewer,
        Err(error) => return error_response(&error, &request_id),
    };
    if let Err(error) = viewer.require(access::ADMINISTER) {
        return error_response(&error, &request_id);
    }
    let (format, from, to) = match parse_params(query.as_deref().unwrap_or("")) {
        Ok(params) => params,
        Err(error) => return error_response(&error, &request_id),
    };
    let tenant = viewer.tenant_id;
    let db = state.db.clone();
    // State: the last sequence written, and whether the header (CSV) is out.
    let chunks = stream::unfold(Some((0_i64, false)), move |state| {
        let db = db.clone();
        async move {
            let (after, header_done) = state?;
            let rows = async {
                let mut conn = pool::get(&db).await?;
                Ok::<_, AppError>(
                    list::range_after(&mut conn, tenant, after, from, to, CHUNK).await?,
                )
            }
            .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(error) => {
                    // The status is sent already: end the body early, which clients see as
                    // a broken transfer, and log why.
                    tracing::error!(%error, "audit export failed mid-stream");
                    return Some((Err(std::io::Error::other("export failed")), None));
                }
            };
            let last = rows.last().map(|e| e.sequence);
            let mut bytes = Vec::new();
            if format == Format::Csv && !header_done {
                bytes.extend_from_slice(COLUMNS.join(",").as_bytes());
                bytes.extend_from_slice(b"\r\n");
            }
            if rows.is_empty() && header_done {
                return None;
            }
            write_rows(&mut bytes, format, tenant, &rows);
            let next = match last {
                Some(last) if rows.len() as i64 == CHUNK => Some((last, true)),
                _ => None,
            };
            // An empty chunk (a header only, or nothing) still ends the stream after it.
            Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), next))
        }
    });
    let (content_type, name) = match format {
        Format::Ndjson => ("application/x-ndjson", "audit.ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "audit.csv"),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\""))
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An event as an export row: the `AuditEvent` fields, ids as global ids, `at` in the
/// hashed form.
fn row(tenant: TenantId, event: &Event) -> Value {
    json!({
        "tenantId": ids::encode(Kind::Tenant, tenant.0).0,
        "sequence": event.sequence,
        "id": ids::encode(Kind::AuditEvent, event.id).0,
        "at": format_at(event.at),
        "actorId": event.actor_id.map(|a| ids::encode(Kind::User, a.0).0),
        "actorType": event.actor_type,
        "requestId": event.request_id,
        "clientAddress": event.client_address,
        "action": event.action,
        "caseId": event.case_id.map(|c| ids::encode(Kind::Case, c.0).0),
        "caseNumber": event.case_number,
        "caseEventKind": event.case_event_kind,
        "targetId": event.target_id,
        "changes": event.changes,
        "previousHash": event.previous_hash,
        "hash": event.hash,
    })
}

fn write_rows(out: &mut Vec<u8>, format: Format, tenant: TenantId, rows: &[Event]) {
    match format {
        Format::Ndjson => {
            for event in rows {
                out.extend_from_slice(row(tenant, event).to_string().as_bytes());
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut writer =
                csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
            for event in rows {
                let value = row(tenant, event);
                let fields: Vec<String> = COLUMNS
                    .iter()
                    .map(|name| match &value[*name] {
                        Value::Null => String::new(),
                        Value::String(text) => text.clone(),
                        Value::Object(_) => crate::models::events::canonical_json(&value[*name]),
                        other => other.to_string(),
                    })
                    .collect();
                let _ = writer.write_record(&fields);
            }
            if let Ok(bytes) = writer.into_inner() {
                out.extend_from_slice(&bytes);
            }
        }
    }
}
