//! Ingesting detections: checked item by item (nothing is stored when one is bad),
//! idempotent on (source, external id), and high-risk ones gathered into automatic cases.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;

use crate::auth::Viewer;
use crate::domain::record::{Changes, global_id, record};
use crate::domain::{access, optional_text, required_text, violates};
use crate::domain::{case_detections, case_record};
use crate::error::{AppError, AppResult, Code};
use crate::graphql::ids::Kind;
use crate::models::cases::{self, Case, CaseChanges, NewCase, rules};
use crate::models::detections::{self, Detection, MAX_INGEST, NewDetection, RAW_MAX_BYTES};
use crate::models::enums::{CaseKind, CaseStatus, DetectionSource, FileAvailability, Severity};
use crate::models::events::{CaseEventKind, NewEvent};
use crate::models::ids::{CaseId, DetectionId};
use crate::models::{links, storable, tenants};

/// One detection as a sensor reports it.
#[derive(Debug, Clone)]
pub struct DetectionDraft {
    pub external_id: String,
    pub source: DetectionSource,
    pub rule_name: String,
    pub description: Option<String>,
    pub observed_at: DateTime<Utc>,
    pub risk_score: i32,
    pub risk_indicators: Vec<(String, i32)>,
    pub device: Option<DeviceDraft>,
    pub actor: Option<String>,
    pub mitre: Vec<[String; 4]>,
    pub file: Option<FileDraft>,
    pub raw: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct DeviceDraft {
    pub id: Option<String>,
    pub hostname: String,
    pub device_type: Option<String>,
    pub ip: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FileDraft {
    pub name: String,
    pub path: Option<String>,
    pub size: Option<f64>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub mime_type: Option<String>,
    pub availability: Option<FileAvailability>,
}

/// What one ingestion did.
#[derive(Debug)]
pub struct IngestOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    /// One per distinct (source, external id) of the input, in input order (empty for a
    /// bulk ingestion's chunk, whose answer holds no detections).
    pub detections: Vec<Detection>,
    /// Automatic cases created or extended.
    pub auto_cases: Vec<Case>,
}

fn hex(value: Option<&str>, field: &str, len: usize) -> AppResult<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::validation(field, format!("must be {len} hexadecimal digits")));
    }
    Ok(Some(value.to_ascii_lowercase()))
}

/// Checks one draft and turns it into a row. Validation errors name the draft's field;
/// the caller puts the item's place in front.
fn check(tenant: crate::models::ids::TenantId, d: DetectionDraft) -> AppResult<NewDetection> {
    if d.risk_score < 0 {
        return Err(AppError::validation("riskScore", "riskScore must be 0 or more"));
    }
    if d.risk_indicators.len() > 100 {
        return Err(AppError::validation("riskIndicators", "at most 100 risk indicators"));
    }
    let mut indicators = Vec::with_capacity(d.risk_indicators.len());
    for (i, (name, weight)) in d.risk_indicators.iter().enumerate() {
        let name = required_text(name, &format!("riskIndicators.{i}.name"), 200)?;
        if *weight < 0 {
            return Err(AppError::validation(
                format!("riskIndicators.{i}.weight"),
                "a weight is 0 or more",
            ));
        }
        indicators.push(json!({ "name": name, "weight": weight }));
    }
    if d.mitre.len() > 100 {
        return Err(AppError::validation("mitre", "at most 100 MITRE techniques"));
    }
    let mut mitre = Vec::with_capacity(d.mitre.len());
    for (i, [tactic_id, tactic_name, technique_id, technique_name]) in d.mitre.iter().enumerate() {
        mitre.push(json!({
            "tacticId": required_text(tactic_id, &format!("mitre.{i}.tacticId"), 20)?,
            "tacticName": required_text(tactic_name, &format!("mitre.{i}.tacticName"), 200)?,
            "techniqueId": required_text(technique_id, &format!("mitre.{i}.techniqueId"), 20)?,
            "techniqueName": required_text(technique_name, &format!("mitre.{i}.techniqueName"), 200)?,
        }));
    }
    let (device_id, device_hostname, device_type, device_ip) = match &d.device {
        Some(device) => {
            let ip = match device.ip.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                Some(ip) => Some(
                    ip.parse::<IpAddr>()
                        .map_err(|_| AppError::validation("device.ip", "not an IP address"))?
                        .to_string(),
                ),
                None => None,
            };
            (
                optional_text(device.id.as_deref(), "device.id", 200)?,
                Some(required_text(&device.hostname, "device.hostname", 255)?),
                optional_text(device.device_type.as_deref(), "device.type", 100)?,
                ip,
            )
        }
        None => (None, None, None, None),
    };
    let file = match &d.file {
        Some(file) => {
            let size = match file.size {
                Some(size)
                    if !(size.is_finite()
                        && size >= 0.0
                        && size.fract() == 0.0
                        && size <= 9.0e15) =>
                {
                    return Err(AppError::validation(
                        "file.size",
                        "a size is a whole number of bytes",
                    ));
                }
                Some(size) => Some(size as i64),
                None => None,
            };
            Some((
                required_text(&file.name, "file.name", 1000)?,
                optional_text(file.path.as_deref(), "file.path", 4000)?,
                size,
                hex(file.sha256.as_deref(), "file.sha256", 64)?,
                hex(file.md5.as_deref(), "file.md5", 32)?,
                optional_text(file.mime_type.as_deref(), "file.mimeType", 255)?,
                file.availability.unwrap_or(FileAvailability::NoFileAvailable),
            ))
        }
        None => None,
    };
    if !storable::time(&d.observed_at) {
        return Err(AppError::validation(
            "observedAt",
            format!("`observedAt` is {}", storable::TIME_RULE),
        ));
    }
    if let Some(raw) = &d.raw {
        if !storable::json(raw) {
            return Err(AppError::validation(
                "raw",
                format!("`raw`'s strings and keys are {}", storable::TEXT_RULE),
            ));
        }
        let size = serde_json::to_vec(raw).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > RAW_MAX_BYTES {
            return Err(AppError::validation(
                "raw",
                format!("raw JSON has at most {RAW_MAX_BYTES} bytes (this has {size})"),
            ));
        }
    }
    let (file_name, file_path, file_size, file_sha256, file_md5, file_mime_type, file_availability) =
        match file {
            Some((n, p, s, sha, md5, mime, a)) => (Some(n), p, s, sha, md5, mime, Some(a)),
            None => (None, None, None, None, None, None, None),
        };
    Ok(NewDetection {
        id: DetectionId::new(),
        tenant_id: tenant,
        external_id: required_text(&d.external_id, "externalId", 200)?,
        source: d.source,
        rule_name: required_text(&d.rule_name, "ruleName", 200)?,
        description: optional_text(d.description.as_deref(), "description", 10_000)?,
        observed_at: d.observed_at,
        risk_score: d.risk_score,
        risk_indicators: serde_json::Value::Array(indicators),
        device_id,
        device_hostname,
        device_type,
        device_ip,
        actor: optional_text(d.actor.as_deref(), "actor", 254)?,
        mitre: serde_json::Value::Array(mitre),
        file_name,
        file_path,
        file_size,
        file_sha256,
        file_md5,
        file_mime_type,
        file_availability,
        raw: d.raw,
    })
}

/// Stores the new detections of `drafts` and files high-risk ones into automatic cases.
/// All or nothing: one invalid draft fails the call.
pub async fn ingest(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    drafts: Vec<DetectionDraft>,
) -> AppResult<IngestOutcome> {
    viewer.require(access::INGEST)?;
    if drafts.len() > MAX_INGEST {
        return Err(AppError::validation(
            "detections",
            format!("at most {MAX_INGEST} detections per call (got {})", drafts.len()),
        ));
    }
    let mut rows: Vec<NewDetection> = Vec::with_capacity(drafts.len());
    for (at, draft) in drafts.into_iter().enumerate() {
        rows.push(
            check(viewer.tenant_id, draft).map_err(|e| e.within(&format!("detections.{at}.")))?,
        );
    }
    store(conn, viewer, rows, true).await
}

/// What one chunk of a bulk ingestion did: `ingest`'s outcome for the valid items, and
/// each invalid item's place in the chunk with its error.
#[derive(Debug)]
pub struct ChunkOutcome {
    pub outcome: IngestOutcome,
    pub rejected: Vec<(usize, AppError)>,
}

/// Bulk ingestion (`POST /ingest/detections`): each draft is checked on its own, the
/// valid ones stored as `ingest` stores them (idempotent, automatic cases) in one
/// transaction, and the invalid ones reported with their place in `drafts`. A bad item
/// never stops the good ones.
pub async fn ingest_chunk(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    drafts: Vec<(usize, DetectionDraft)>,
) -> AppResult<ChunkOutcome> {
    viewer.require(access::INGEST)?;
    if drafts.len() > MAX_INGEST {
        return Err(AppError::validation(
            "detections",
            format!("at most {MAX_INGEST} detections per chunk (got {})", drafts.len()),
        ));
    }
    let mut rows = Vec::with_capacity(drafts.len());
    let mut rejected = Vec::new();
    for (at, draft) in drafts {
        match check(viewer.tenant_id, draft) {
            Ok(row) => rows.push(row),
            Err(error) => rejected.push((at, error)),
        }
    }
    let outcome = if rows.is_empty() {
        IngestOutcome { accepted: 0, duplicates: 0, detections: Vec::new(), auto_cases: Vec::new() }
    } else {
        store(conn, viewer, rows, false).await?
    };
    Ok(ChunkOutcome { outcome, rejected })
}

/// A new detection that may go into an automatic case.
struct Candidate<'a> {
    id: DetectionId,
    severity: Severity,
    rule_name: &'a str,
    device_hostname: Option<&'a str>,
}

/// Stores checked rows (the first of each source and external id; the rest and those
/// stored before count as duplicates) and files automatic cases, in one transaction.
/// With `rows_back` the outcome carries one stored detection per distinct key (what
/// `ingestDetections` answers); without it (bulk ingestion) only the counts and cases,
/// and the insert returns nothing but the new ids.
async fn store(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    checked: Vec<NewDetection>,
    rows_back: bool,
) -> AppResult<IngestOutcome> {
    let total = checked.len();
    let mut rows: Vec<NewDetection> = Vec::with_capacity(total);
    let mut seen: HashSet<(DetectionSource, &str)> = HashSet::with_capacity(total);
    let mut first = vec![false; total];
    for (at, row) in checked.iter().enumerate() {
        first[at] = seen.insert((row.source, row.external_id.as_str()));
    }
    drop(seen);
    for (row, first) in checked.into_iter().zip(first) {
        if first {
            rows.push(row);
        }
    }
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let (stored, new_ids) = if rows_back {
            let stored = detections::insert_new(conn, &rows).await?;
            let ids = stored.iter().map(|d| d.id).collect::<Vec<_>>();
            (stored, ids)
        } else {
            let ids = detections::insert_new_ids(conn, &rows).await?;
            (Vec::new(), ids)
        };
        let accepted = new_ids.len();
        let tenant =
            tenants::find(conn, viewer.tenant_id).await?.ok_or(AppError::NotFound("tenant"))?;
        let min = tenant.auto_case_min_severity;
        // The candidates in input order: the new rows at or above the policy's severity
        // (the database's generated severity is `Severity::from_risk_score`).
        let new: HashSet<DetectionId> = new_ids.iter().copied().collect();
        let candidates: Vec<Candidate<'_>> = rows
            .iter()
            .filter(|r| r.source.allowed_in_self_managed() && new.contains(&r.id))
            .map(|r| Candidate {
                id: r.id,
                severity: Severity::from_risk_score(r.risk_score),
                rule_name: &r.rule_name,
                device_hostname: r.device_hostname.as_deref(),
            })
            .filter(|c| c.severity >= min)
            .collect();
        let mut events = Vec::new();
        let auto_cases = if tenant.auto_case_enabled && !candidates.is_empty() {
            // Filed under the tenant's lock: concurrent ingestions file one after the
            // other, and lock the tenant before any case, as case creation does.
            let tenant =
                tenants::lock(conn, viewer.tenant_id).await?.ok_or(AppError::NotFound("tenant"))?;
            file_auto_cases(conn, &tenant, &candidates, &mut events).await?
        } else {
            Vec::new()
        };
        let detections = if !rows_back {
            Vec::new()
        } else {
            let all = if stored.len() == rows.len() {
                stored
            } else {
                let keys: Vec<(DetectionSource, String)> =
                    rows.iter().map(|r| (r.source, r.external_id.clone())).collect();
                detections::find_by_keys(conn, viewer.tenant_id, &keys).await?
            };
            let mut by_key: HashMap<(DetectionSource, String), Detection> =
                all.into_iter().map(|d| ((d.source, d.external_id.clone()), d)).collect();
            rows.iter().filter_map(|r| by_key.remove(&(r.source, r.external_id.clone()))).collect()
        };
        if accepted > 0 {
            // In input order, whichever way the insert returned them.
            let ids: Vec<String> = rows
                .iter()
                .filter(|r| new.contains(&r.id))
                .map(|r| global_id(Kind::Detection, r.id.0))
                .collect();
            let cases: Vec<String> =
                auto_cases.iter().map(|c| global_id(Kind::Case, c.id.0)).collect();
            let changes = Changes::new()
                .fact("accepted", accepted)
                .fact("duplicates", total - accepted)
                .fact("detectionIds", ids)
                .fact("autoCaseIds", cases);
            events.insert(0, NewEvent::new("detections.ingested").changes(changes.into_value()));
        }
        record(conn, viewer.tenant_id, &viewer.origin(), events).await?;
        Ok(IngestOutcome { accepted, duplicates: total - accepted, detections, auto_cases })
    })
    .await
}

/// Puts each candidate (a new detection at or above the policy's severity, of a source
/// self-managed cases take) into the open automatic case of its rule and device created
/// today (UTC), or a new one.
async fn file_auto_cases(
    conn: &mut AsyncPgConnection,
    tenant: &tenants::Tenant,
    candidates: &[Candidate<'_>],
    events: &mut Vec<NewEvent>,
) -> AppResult<Vec<Case>> {
    let mut groups: Vec<((&str, &str), Vec<&Candidate<'_>>)> = Vec::new();
    for d in candidates {
        let key = (d.rule_name, d.device_hostname.unwrap_or_default());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(d),
            None => groups.push((key, vec![d])),
        }
    }
    let mut touched = Vec::new();
    let now = Utc::now();
    for ((rule, device), members) in groups {
        for chunk in members.chunks(cases::MAX_DETECTIONS as usize) {
            let ids: Vec<DetectionId> = chunk.iter().map(|d| d.id).collect();
            let highest = chunk.iter().map(|d| d.severity).max().unwrap_or(Severity::High);
            let open = cases::find_open_auto_case(conn, tenant.id, rule, device, now).await?;
            let (case, created) = match open.filter(|c| {
                i64::from(c.detection_count) + ids.len() as i64 <= cases::MAX_DETECTIONS
            }) {
                Some(case) => (case, false),
                None => (create_auto_case(conn, tenant, rule, device, highest, now).await?, true),
            };
            links::add(conn, tenant.id, case.id, &ids).await?;
            let mut changes = CaseChanges::default();
            changes.set_risk_counts(links::counts_by_severity(conn, case.id).await?);
            if case.severity.is_none_or(|severity| highest > severity) {
                changes.severity = Some(highest.rank());
            }
            let before = case;
            let case = if created {
                cases::apply(conn, before.id, &changes).await?
            } else {
                cases::update(conn, before.id, None, &changes).await?
            };
            events.push(if created {
                let changes = case_record::diff(None, &case);
                case_record::event("case.created", CaseEventKind::Created, &case, changes)
            } else {
                case_detections::detections_event(&before, &case, &ids, true)
            });
            touched.retain(|c: &Case| c.id != case.id);
            touched.push(case);
        }
    }
    Ok(touched)
}

async fn create_auto_case(
    conn: &mut AsyncPgConnection,
    tenant: &tenants::Tenant,
    rule: &str,
    device: &str,
    severity: Severity,
    now: DateTime<Utc>,
) -> AppResult<Case> {
    let number = tenants::take_case_number(conn, tenant.id).await?;
    let base = if device.is_empty() { rule.to_owned() } else { format!("{rule} on {device}") };
    let description = if device.is_empty() {
        format!("Opened automatically for {rule} detections.")
    } else {
        format!("Opened automatically for {rule} detections on {device}.")
    };
    let description: String = description.chars().take(rules::DESCRIPTION_MAX).collect();
    let mut new = NewCase {
        id: CaseId::new(),
        tenant_id: tenant.id,
        number,
        kind: CaseKind::SelfManaged,
        name: "",
        description: Some(&description),
        severity: severity.rank(),
        status: CaseStatus::New,
        auto_created: true,
        auto_rule_name: Some(rule),
        auto_device: Some(device),
        assignee_id: None,
        assignee_sort: "",
        subject_id: None,
        subject_sort: "",
        created_by_id: None,
        last_modified_by_id: None,
        created_at: now,
        updated_at: now,
        archive_at: now + Duration::days(tenant.archive_after_days.into()),
    };
    // The unique index on names decides, also against a case named (or renamed) by hand
    // at the same moment: each try runs in a savepoint, so a taken name rolls back only
    // that insert and the next name is tried, never the whole ingestion.
    let names = auto_case_names(&base, number);
    for name in &names {
        new.name = name;
        let inserted = conn.transaction(async |conn| cases::insert(conn, &new).await).await;
        match inserted {
            Ok(case) => return Ok(case),
            Err(error) if violates(&error, cases::NAME_KEY) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(AppError::Rule(
        Code::NameTaken,
        format!("every name tried for an automatic case is taken: {}", names.join(", ")),
    ))
}

/// The names an automatic case tries, in order: the rule and device, then the same with
/// the case number, then with the number and a counter (cut to the name's limit).
fn auto_case_names(base: &str, number: i32) -> Vec<String> {
    let mut names = Vec::new();
    let plain = rules::name_from(base, rules::NAME_MAX);
    if !plain.is_empty() {
        names.push(plain);
    }
    let suffixes =
        std::iter::once(format!(" ({number})")).chain((2..=4).map(|n| format!(" ({number}-{n})")));
    for suffix in suffixes {
        let stem = rules::name_from(base, rules::NAME_MAX - suffix.chars().count());
        names.push(if stem.is_empty() {
            format!("Automatic case {}", suffix.trim_matches([' ', '(', ')']))
        } else {
            format!("{stem}{suffix}")
        });
    }
    names
}

#[cfg(test)]
mod tests {
    use super::auto_case_names;

    #[test]
    fn automatic_case_names_fall_back_to_the_number_within_the_name_limit() {
        assert_eq!(
            auto_case_names("Rule on host", 7),
            [
                "Rule on host",
                "Rule on host (7)",
                "Rule on host (7-2)",
                "Rule on host (7-3)",
                "Rule on host (7-4)"
            ]
        );
        let long = "x".repeat(80);
        for name in auto_case_names(&long, 12345) {
            assert!(name.chars().count() <= 50, "{name}");
        }
        assert_eq!(auto_case_names("", 3)[..2], ["Automatic case 3", "Automatic case 3-2"]);
    }
}
