//! Creating, changing, resolving, archiving and deleting cases.

use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::auth::Viewer;
use crate::domain::access::{self, CaseAction};
use crate::domain::record::{Changes, record};
use crate::domain::{case_detections, case_record, on_constraint};
use crate::error::{AppError, AppResult, Code};
use crate::models::cases::{self, Case, CaseChanges, NewCase, rules};
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};
use crate::models::events::CaseEventKind;
use crate::models::fold::fold;
use crate::models::ids::{CaseId, DetectionId, SubjectId, UserId};
use crate::models::tenants::{self, License};
use crate::models::{detections, links, subjects, users};
use serde_json::Value;

/// Most cases one `deleteCases` call may delete.
pub const MAX_DELETE: usize = 100;
/// Detections older than this that no case holds go when their last case is deleted.
pub const ORPHAN_DETECTION_AGE_DAYS: i64 = 90;

/// A field of an update: left alone, cleared, or set.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Patch<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }
}

impl<T> From<async_graphql::MaybeUndefined<T>> for Patch<T> {
    fn from(value: async_graphql::MaybeUndefined<T>) -> Self {
        match value {
            async_graphql::MaybeUndefined::Undefined => Patch::Keep,
            async_graphql::MaybeUndefined::Null => Patch::Clear,
            async_graphql::MaybeUndefined::Value(v) => Patch::Set(v),
        }
    }
}

/// What `createCase` asks for.
#[derive(Debug, Clone)]
pub struct CreateCase {
    pub kind: CaseKind,
    pub name: String,
    pub description: Option<String>,
    pub severity: Option<Severity>,
    pub status: CaseStatus,
    pub assignee: Option<UserId>,
    pub subject: Option<SubjectId>,
    pub detections: Vec<DetectionId>,
}

/// What `updateCase` asks for.
#[derive(Debug, Clone, Default)]
pub struct UpdateCase {
    pub expected_version: Option<i32>,
    pub name: Patch<String>,
    pub description: Patch<String>,
    pub findings: Patch<String>,
    pub severity: Patch<Severity>,
    pub status: Patch<CaseStatus>,
    pub assignee: Patch<UserId>,
}

fn name_taken(name: &str) -> AppError {
    AppError::Rule(Code::NameTaken, format!("a case named {name:?} exists already"))
}

/// The assignee's sort key, after checking the user may be assigned.
async fn assignee_sort(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: UserId,
) -> AppResult<String> {
    let user = users::find(conn, viewer.tenant_id, id)
        .await?
        .ok_or_else(|| AppError::validation("assigneeId", "no such user"))?;
    if !user.active {
        return Err(AppError::validation("assigneeId", "a deactivated user cannot be an assignee"));
    }
    if !user.role.assignable() {
        return Err(AppError::validation(
            "assigneeId",
            format!(
                "a {} user cannot be an assignee: only ADMIN and ANALYST users can",
                user.role.as_str()
            ),
        ));
    }
    Ok(fold(&user.display_name))
}

/// The subject's sort key ("" for none), after checking the subject exists.
async fn subject_sort(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    subject: Option<SubjectId>,
) -> AppResult<String> {
    let Some(id) = subject else { return Ok(String::new()) };
    let found = subjects::find_many(conn, viewer.tenant_id, &[id]).await?;
    found.first().map(|s| s.key()).ok_or(AppError::NotFound("subject"))
}

fn check_status_for_create(status: CaseStatus) -> AppResult<()> {
    if matches!(status, CaseStatus::New | CaseStatus::Investigating) {
        Ok(())
    } else {
        Err(AppError::validation("status", "a new case starts NEW or INVESTIGATING"))
    }
}

/// Creates a case, with its first detections when given.
pub async fn create(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    input: CreateCase,
) -> AppResult<Case> {
    viewer.require(access::CREATE)?;
    let name = rules::name(&input.name)?;
    let description = rules::description(input.description.as_deref())?;
    check_status_for_create(input.status)?;
    if input.kind.is_service_request() {
        let unsupported = [
            (!input.detections.is_empty(), "detections"),
            (input.subject.is_some(), "subject"),
            (input.severity.is_some(), "severity"),
            (input.assignee.is_some(), "assignee"),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(given, _)| *given) {
            access::require_self_managed(input.kind, what)?;
        }
    }
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let tenant =
            tenants::find(conn, viewer.tenant_id).await?.ok_or(AppError::NotFound("tenant"))?;
        let license = match input.kind {
            CaseKind::SelfManaged => None,
            CaseKind::MdrServiceRequest => Some(License::Mdr),
            CaseKind::ManagedRiskServiceRequest => Some(License::ManagedRisk),
        };
        if let Some(license) = license.filter(|l| !tenant.has_license(*l)) {
            return Err(AppError::Rule(
                Code::LicenseRequired,
                format!("a {} needs the {} license", input.kind.as_str(), license.as_str()),
            ));
        }
        let assignee_sort = match input.assignee {
            Some(id) => assignee_sort(conn, &viewer, id).await?,
            None => String::new(),
        };
        let subject_sort = subject_sort(conn, &viewer, input.subject).await?;
        let found =
            case_detections::load_for_case(conn, &viewer, input.kind, &input.detections).await?;
        if found.len() as i64 > cases::MAX_DETECTIONS {
            return Err(case_detections::limit_exceeded(0, found.len()));
        }
        let number = tenants::take_case_number(conn, viewer.tenant_id).await?;
        let now = Utc::now();
        let new = NewCase {
            id: CaseId::new(),
            tenant_id: viewer.tenant_id,
            number,
            kind: input.kind,
            name: &name,
            description: description.as_deref(),
            severity: input.severity.map_or(0, Severity::rank),
            status: input.status,
            auto_created: false,
            auto_rule_name: None,
            auto_device: None,
            assignee_id: input.assignee,
            assignee_sort: &assignee_sort,
            subject_id: input.subject,
            subject_sort: &subject_sort,
            created_by_id: Some(viewer.user_id),
            last_modified_by_id: Some(viewer.user_id),
            created_at: now,
            updated_at: now,
            archive_at: now + Duration::days(tenant.archive_after_days.into()),
        };
        let case = cases::insert(conn, &new)
            .await
            .map_err(|e| on_constraint(e, cases::NAME_KEY, || name_taken(&name)))?;
        let case = if found.is_empty() {
            case
        } else {
            let ids: Vec<DetectionId> = found.iter().map(|d| d.id).collect();
            links::add(conn, viewer.tenant_id, case.id, &ids).await?;
            let mut changes = CaseChanges::default();
            changes.set_risk_counts(links::counts_by_severity(conn, case.id).await?);
            cases::apply(conn, case.id, &changes).await?
        };
        let changes = case_record::diff(None, &case);
        let event = case_record::event("case.created", CaseEventKind::Created, &case, changes);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(case)
    })
    .await
}

/// Locks the tenant's case or fails with `NOT_FOUND`.
pub(crate) async fn lock(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: CaseId,
) -> AppResult<Case> {
    cases::lock(conn, viewer.tenant_id, id).await?.ok_or(AppError::NotFound("case"))
}

/// Changes a case's details. A service request takes only a new status.
pub async fn update(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: CaseId,
    input: UpdateCase,
) -> AppResult<Case> {
    access::precheck(viewer, CaseAction::Edit)?;
    let name = match &input.name {
        Patch::Keep => None,
        Patch::Clear => return Err(AppError::validation("name", "a case needs a name")),
        Patch::Set(raw) => Some(rules::name(raw)?),
    };
    let description = match &input.description {
        Patch::Set(raw) => Patch::Set(rules::description(Some(raw))?),
        Patch::Clear => Patch::Clear,
        Patch::Keep => Patch::Keep,
    };
    let findings = match &input.findings {
        Patch::Set(raw) => Patch::Set(rules::findings(Some(raw))?),
        Patch::Clear => Patch::Clear,
        Patch::Keep => Patch::Keep,
    };
    let status = match input.status {
        Patch::Keep => None,
        Patch::Clear => return Err(AppError::validation("status", "a case always has a status")),
        Patch::Set(CaseStatus::Resolved) => {
            return Err(AppError::validation("status", "resolve a case with resolveCase"));
        }
        Patch::Set(CaseStatus::Archived) => {
            return Err(AppError::validation("status", "archive a case with archiveCase"));
        }
        Patch::Set(status) => Some(status),
    };
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let case = lock(conn, &viewer, id).await?;
        if case.kind.is_service_request() {
            let others = [
                (name.is_some(), "name change after creation"),
                (!input.description.is_keep(), "description change after creation"),
                (!input.findings.is_keep(), "findings"),
                (!input.severity.is_keep(), "severity"),
                (!input.assignee.is_keep(), "assignee"),
            ];
            if let Some((_, what)) = others.iter().find(|(given, _)| *given) {
                access::require_self_managed(case.kind, what)?;
            }
        }
        access::check_role(&viewer, CaseAction::Edit, &case)?;
        access::check_open(&case)?;
        access::check_version(&case, input.expected_version)?;
        let mut changes = CaseChanges::default();
        let mut changed = false;
        if let Some(name) = name.filter(|n| *n != case.name) {
            // The unique index on names answers NAME_TAKEN when the update runs.
            changes.name = Some(name);
            changed = true;
        }
        let text_patch = |patch: Patch<Option<String>>, current: &Option<String>| match patch {
            Patch::Keep => None,
            Patch::Clear => current.is_some().then_some(None),
            Patch::Set(value) => (value != *current).then_some(value),
        };
        changes.description = text_patch(description, &case.description);
        changes.findings = text_patch(findings, &case.findings);
        changed |= changes.description.is_some() || changes.findings.is_some();
        let severity = match input.severity {
            Patch::Keep => None,
            Patch::Clear => Some(None),
            Patch::Set(s) => Some(Some(s)),
        };
        if let Some(severity) = severity.filter(|s| *s != case.severity) {
            changes.severity = Some(severity.map_or(0, Severity::rank));
            changed = true;
        }
        if let Some(status) = status.filter(|s| *s != case.status) {
            changes.status = Some(status);
            changed = true;
        }
        match input.assignee {
            Patch::Keep => {}
            Patch::Clear => {
                if case.assignee_id.is_some() {
                    changes.assignee_id = Some(None);
                    changes.assignee_sort = Some(String::new());
                    changed = true;
                }
            }
            Patch::Set(user) => {
                let sort = assignee_sort(conn, &viewer, user).await?;
                if case.assignee_id != Some(user) {
                    changes.assignee_id = Some(Some(user));
                    changes.assignee_sort = Some(sort);
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(case);
        }
        let name = changes.name.clone().unwrap_or_default();
        let updated = cases::update(conn, case.id, Some(viewer.user_id), &changes)
            .await
            .map_err(|e| on_constraint(e, cases::NAME_KEY, || name_taken(&name)))?;
        let events = case_record::updated(&case, &updated).into_iter().collect();
        record(conn, viewer.tenant_id, &viewer.origin(), events).await?;
        Ok(updated)
    })
    .await
}

/// Resolves a case with a resolution; it never changes or reopens afterwards.
pub async fn resolve(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: CaseId,
    resolution: Resolution,
    expected_version: Option<i32>,
) -> AppResult<Case> {
    access::precheck(viewer, CaseAction::Resolve)?;
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let case = lock(conn, &viewer, id).await?;
        access::check_role(&viewer, CaseAction::Resolve, &case)?;
        access::check_open(&case)?;
        access::check_version(&case, expected_version)?;
        let tenant =
            tenants::find(conn, viewer.tenant_id).await?.ok_or(AppError::NotFound("tenant"))?;
        let now = Utc::now();
        let changes = CaseChanges {
            status: Some(CaseStatus::Resolved),
            resolution: Some(Some(resolution)),
            resolved_at: Some(Some(now)),
            delete_at: Some(
                tenant.delete_resolved_after_days.map(|days| now + Duration::days(days.into())),
            ),
            ..CaseChanges::default()
        };
        let resolved = cases::update(conn, case.id, Some(viewer.user_id), &changes).await?;
        let changes = case_record::diff(Some(&case), &resolved);
        let event =
            case_record::event("case.resolved", CaseEventKind::StatusChanged, &resolved, changes);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(resolved)
    })
    .await
}

/// Archives a case: its detection links go for good; subject, details and findings stay.
pub async fn archive(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: CaseId,
    expected_version: Option<i32>,
) -> AppResult<Case> {
    access::precheck(viewer, CaseAction::Archive)?;
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let case = lock(conn, &viewer, id).await?;
        access::check_role(&viewer, CaseAction::Archive, &case)?;
        if case.status == CaseStatus::Archived {
            access::check_open(&case)?;
        }
        access::check_version(&case, expected_version)?;
        links::remove_all(conn, case.id).await?;
        let mut changes = CaseChanges {
            status: Some(CaseStatus::Archived),
            archived_at: Some(Some(Utc::now())),
            ..CaseChanges::default()
        };
        changes.set_risk_counts([0; 6]);
        let archived = cases::update(conn, case.id, Some(viewer.user_id), &changes).await?;
        let changes = case_record::diff(Some(&case), &archived);
        let event =
            case_record::event("case.archived", CaseEventKind::Archived, &archived, changes);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(archived)
    })
    .await
}

/// Deletes self-managed cases, all or none. Detections older than 90 days that no other
/// case holds are deleted with them.
pub async fn delete(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    ids: Vec<CaseId>,
) -> AppResult<Vec<CaseId>> {
    viewer.require(access::roles(CaseAction::Delete, CaseKind::SelfManaged))?;
    if ids.len() > MAX_DELETE {
        return Err(AppError::validation("ids", format!("at most {MAX_DELETE} cases at once")));
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let found = cases::lock_many(conn, viewer.tenant_id, &unique).await?;
        if found.len() != unique.len() {
            return Err(AppError::NotFound("case"));
        }
        if let Some(request) = found.iter().find(|c| c.kind.is_service_request()) {
            return Err(AppError::Rule(
                Code::UnsupportedForKind,
                format!(
                    "case {} is a service request: only self-managed cases are deleted",
                    request.number
                ),
            ));
        }
        let held = links::detections_of(conn, &unique).await?;
        cases::delete_many(conn, &unique).await?;
        let before = Utc::now() - Duration::days(ORPHAN_DETECTION_AGE_DAYS);
        detections::delete_unheld_before(conn, &held, before).await?;
        let mut found = found;
        found.sort_by_key(|c| c.number);
        let events = found.iter().map(deleted_event).collect();
        record(conn, viewer.tenant_id, &viewer.origin(), events).await?;
        Ok(())
    })
    .await?;
    let mut seen = std::collections::HashSet::new();
    Ok(ids.into_iter().filter(|id| seen.insert(*id)).collect())
}

/// Sets (or, with `None`, clears) the case's subject.
pub async fn set_subject(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: CaseId,
    subject: Option<SubjectId>,
) -> AppResult<Case> {
    access::precheck(viewer, CaseAction::Edit)?;
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let case = lock(conn, &viewer, id).await?;
        access::require_self_managed(case.kind, "subject")?;
        access::check_role(&viewer, CaseAction::Edit, &case)?;
        access::check_open(&case)?;
        let sort = subject_sort(conn, &viewer, subject).await?;
        if case.subject_id == subject {
            return Ok(case);
        }
        let changes = CaseChanges {
            subject_id: Some(subject),
            subject_sort: Some(sort),
            ..CaseChanges::default()
        };
        let updated = cases::update(conn, case.id, Some(viewer.user_id), &changes).await?;
        let changes = case_record::diff(Some(&case), &updated);
        let event = case_record::event(
            "case.subject_set",
            CaseEventKind::SubjectChanged,
            &updated,
            changes,
        );
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(updated)
    })
    .await
}

/// The record of a deleted case: what it was (name, status, detection count); its
/// description and findings go with it.
pub(crate) fn deleted_event(case: &Case) -> crate::models::events::NewEvent {
    let changes = Changes::new()
        .field("name", &case.name, Value::Null)
        .field("status", case.status.as_str(), Value::Null)
        .field("detectionCount", case.detection_count, Value::Null);
    case_record::event("case.deleted", CaseEventKind::Deleted, case, changes)
}
