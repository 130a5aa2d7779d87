//! `GET /cases/{number}/export?parts=summary,fileActivity,files`: one part alone answers
//! that file; several parts, or `files`, a ZIP streamed in constant memory with
//! `manifest.json`. Errors use the GraphQL error body shape with DESIGN.md's statuses.
//! The route is outside the compression and total-timeout layers: its bytes are sent as
//! made, and only a stream that stops moving for the idle timeout is cut.

use std::io;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use chrono::Utc;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::auth::Viewer;
use crate::domain::{self, audit};
use crate::error::{AppError, AppResult};
use crate::export::package::{self, Chunks, Contents, Entry, Manifest, ManifestCase, Missing};
use crate::export::{self, CaseSnapshot, Part, activity, names::FolderNamer, summary};
use crate::graphql::ids::{self, Kind};
use crate::http::{ClientAddress, RequestId, pipe};
use crate::models::events::Event;
use crate::storage::{ContentHash, Storage};

/// The export route's handler.
pub async fn handler(
    State(state): State<AppState>,
    request_id: RequestId,
    client: ClientAddress,
    headers: HeaderMap,
    Path(number): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match export(&state, &headers, client, &number, query.as_deref()).await {
        Ok(response) => response,
        Err(error) => error_response(&error, &request_id),
    }
}

/// An error as `{"errors":[{"message","extensions":{"code",…}}]}` with its HTTP status.
pub fn error_response(error: &AppError, request_id: &RequestId) -> Response {
    crate::http::rest_error(error, request_id, None)
}

async fn export(
    state: &AppState,
    headers: &HeaderMap,
    client: ClientAddress,
    number: &str,
    query: Option<&str>,
) -> AppResult<Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let viewer = state.guard.authenticate(&state.db, client.0, authorization).await?;
    let parts_param = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "parts").map(|(_, v)| v)
    });
    let parts = export::parse_parts(parts_param.as_deref())?;
    // A number that is not one names no case of the tenant.
    let number: i32 = number.parse().map_err(|_| AppError::NotFound("case"))?;
    let with_files = parts.contains(&Part::Files);
    let package = with_files || parts.len() > 1;
    let key = package.then_some(state.audit_key.as_ref());
    let snapshot = domain::export::snapshot(&state.db, &viewer, number, with_files, key).await?;
    let contents: u64 = stored_files(&snapshot).map(|(_, c)| c.size.max(0) as u64).sum();
    domain::export::check_size(&parts, contents, state.files.max_export_bytes)?;

    if let [part @ (Part::Summary | Part::FileActivity)] = parts.as_slice() {
        let (bytes, content_type) = match part {
            Part::Summary => (render_summary(&snapshot).await?, "application/pdf"),
            _ => (render_activity(&snapshot)?, "text/csv; charset=utf-8"),
        };
        let name = export::single_file_name(number, *part);
        let sha256 = package::hex(&Sha256::digest(&bytes));
        domain::export::record_exported(
            &state.db,
            &viewer,
            &snapshot.case,
            &parts,
            &name,
            &sha256,
            bytes.len() as u64,
        )
        .await?;
        let mut response = Response::new(Body::from(bytes));
        set_file_headers(response.headers_mut(), content_type, &name);
        return Ok(response);
    }

    let name = export::single_file_name(number, Part::Files);
    let entries = entries(state, &viewer, &snapshot, &parts).await?;
    let manifest = manifest(&snapshot, &viewer);
    let (writer, body, sent) = pipe::pipe(state.files.idle_timeout());
    let mut transfer = state.metrics.transfer_started("export");
    let db = state.db.clone();
    let case = snapshot.case.clone();
    let file_name = name.clone();
    tokio::spawn(async move {
        let written = match package::write(writer, entries, manifest).await {
            Ok(writer) => writer.finish().await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            // The client went away or stopped reading (`cut`), or a content could not be
            // read or did not match its address (`failed`): the work stops here, and the
            // client sees the connection cut, never a truncated package as a whole one.
            if !matches!(error.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::TimedOut) {
                transfer.failed();
            }
            tracing::warn!(%error, case = case.number, "case export stopped");
            return;
        }
        // The response reports what it sent once its last byte has gone to hyper; a
        // client that leaves before gets no `case.exported` event.
        let Ok(sent) = sent.await else {
            tracing::warn!(case = case.number, "case export stopped: the client went away");
            return;
        };
        transfer.complete();
        let recorded = domain::export::record_exported(
            &db,
            &viewer,
            &case,
            &parts,
            &file_name,
            &sent.sha256,
            sent.size,
        )
        .await;
        if let Err(error) = recorded {
            tracing::error!(%error, case = case.number, "the export was sent but not recorded");
        }
    });
    let mut response = Response::new(body);
    set_file_headers(response.headers_mut(), "application/zip", &name);
    Ok(response)
}

/// The case's detections whose contents are stored, in observation order.
fn stored_files(
    snapshot: &CaseSnapshot,
) -> impl Iterator<
    Item = (&crate::models::detections::ExportedDetection, &crate::models::evidence::CaseContent),
> {
    snapshot
        .detections
        .iter()
        .filter_map(|d| snapshot.contents.iter().find(|c| c.detection_id == d.id).map(|c| (d, c)))
}

async fn render_summary(snapshot: &CaseSnapshot) -> AppResult<Vec<u8>> {
    let snapshot = snapshot.clone();
    let exporter = snapshot.exporter.as_ref().map_or_else(
        || "an unknown user".to_owned(),
        |u| format!("{} <{}>", u.display_name, u.email),
    );
    let bytes =
        tokio::task::spawn_blocking(move || summary::render(&snapshot, &exporter, Utc::now()))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering the summary: {e}")))??;
    Ok(bytes)
}

fn render_activity(snapshot: &CaseSnapshot) -> AppResult<Vec<u8>> {
    activity::write(&snapshot.detections)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("writing the CSV: {e}")))
}

/// The package's entries: the summary and CSV when asked for, then every stored file.
async fn entries(
    state: &AppState,
    viewer: &Viewer,
    snapshot: &CaseSnapshot,
    parts: &[Part],
) -> AppResult<Vec<Entry>> {
    let now = Utc::now();
    let number = snapshot.case.number;
    let mut out = Vec::new();
    if parts.contains(&Part::Summary) {
        let contents = Contents::Bytes(render_summary(snapshot).await?);
        out.push(Entry {
            path: export::single_file_name(number, Part::Summary),
            modified: now,
            contents,
        });
    }
    if parts.contains(&Part::FileActivity) {
        let contents = Contents::Bytes(render_activity(snapshot)?);
        let path = export::single_file_name(number, Part::FileActivity);
        out.push(Entry { path, modified: now, contents });
    }
    if parts.contains(&Part::Files) {
        let mut namer = FolderNamer::default();
        for (detection, content) in stored_files(snapshot) {
            let Some(hash) = ContentHash::parse(&content.sha256) else { continue };
            let path = namer.path(detection.observed_at, detection.file_name.as_deref());
            let open =
                opener(state.storage.clone(), viewer.tenant_id, hash, state.files.idle_timeout());
            let contents = Contents::Stored { open, sha256: content.sha256.clone() };
            out.push(Entry { path, modified: detection.observed_at, contents });
        }
    }
    Ok(out)
}

/// Opens a stored content when its entry is written.
/// A read that waits longer than `idle` for the store fails (as a failed export, not a cut).
fn opener(
    storage: Storage,
    tenant: crate::models::ids::TenantId,
    hash: ContentHash,
    idle: std::time::Duration,
) -> package::Opener {
    Box::new(move || {
        Box::pin(async move {
            let stream =
                storage.open(tenant, &hash, None).await.map_err(io::Error::other)?.ok_or_else(
                    || {
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("stored content {} is gone", hash.as_str()),
                        )
                    },
                )?;
            let chunks: Chunks = crate::http::transfer::idle_timeout(stream, idle)
                .map_err(|e| io::Error::other(format!("reading stored content: {e}")))
                .boxed();
            Ok(chunks)
        })
    })
}

/// The manifest before its entries are written: the case, the detections whose contents
/// are not stored, the case's events and a signed checkpoint.
fn manifest(snapshot: &CaseSnapshot, viewer: &Viewer) -> Manifest {
    let missing = snapshot
        .detections
        .iter()
        .filter(|d| d.file_name.is_some() || d.file_sha256.is_some())
        .filter(|d| !snapshot.contents.iter().any(|c| c.detection_id == d.id))
        .map(|d| Missing {
            detection_id: ids::encode(Kind::Detection, d.id.0).0.to_string(),
            external_id: d.external_id.clone(),
            file_name: d.file_name.clone(),
            sha256: d.file_sha256.clone(),
        })
        .collect();
    Manifest {
        case: ManifestCase { number: snapshot.case.number, name: snapshot.case.name.clone() },
        exported_at: Utc::now(),
        entries: Vec::new(),
        missing,
        events: snapshot.events.iter().map(|e| event_json(e, viewer)).collect(),
        checkpoint: snapshot.checkpoint.as_ref().map_or(serde_json::Value::Null, |c| {
            json!({
                "tenantId": ids::encode(Kind::Tenant, snapshot.case.tenant_id.0).0.to_string(),
                "sequence": c.sequence,
                "hash": c.hash,
                "at": audit::api_time(c.at),
                "signature": c.signature,
                "publicKey": c.public_key,
                "signedText": audit::signed_text(snapshot.case.tenant_id, c.sequence, &c.hash, c.at),
            })
        }),
    }
}

/// One change-record event as the manifest lists it (the fields of `AuditEvent`; the
/// request id and client address only for an ADMIN, as the API shows them).
fn event_json(event: &Event, viewer: &Viewer) -> serde_json::Value {
    let admin = viewer.role == crate::models::users::Role::Admin;
    json!({
        "sequence": event.sequence,
        "id": ids::encode(Kind::AuditEvent, event.id).0.to_string(),
        "at": audit::api_time(event.at),
        "actorId": event.actor_id.map(|u| ids::encode(Kind::User, u.0).0.to_string()),
        "actorType": event.actor_type,
        "requestId": if admin { event.request_id.clone() } else { None },
        "clientAddress": if admin { event.client_address.clone() } else { None },
        "action": event.action,
        "caseNumber": event.case_number,
        "caseEventKind": event.case_event_kind,
        "targetId": event.target_id,
        "changes": event.changes,
        "previousHash": event.previous_hash,
        "hash": event.hash,
    })
}

fn set_file_headers(headers: &mut HeaderMap, content_type: &'static str, name: &str) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}
