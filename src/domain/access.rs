//! Who may do what to a case: DESIGN.md's role table, and the states in which a case
//! still changes. The mutations and the `viewerCan*` flags both ask these functions.

use crate::auth::Viewer;
use crate::error::{AppError, AppResult, Code};
use crate::models::cases::Case;
use crate::models::enums::{CaseKind, CaseStatus};
use crate::models::ids::UserId;
use crate::models::users::Role::{self, *};

/// Something done to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseAction {
    /// Change details, findings, detections or the subject (self-managed), or the status
    /// (a service request).
    Edit,
    Resolve,
    Archive,
    Delete,
    PostMessage,
}

/// Roles that may create cases.
pub const CREATE: &[Role] = &[Admin, Analyst, SuperAdmin];
/// Roles that may ingest detections.
pub const INGEST: &[Role] = &[Admin, Analyst, Ingest];
/// Roles that may create and change subjects.
pub const EDIT_SUBJECTS: &[Role] = &[Admin, Analyst, SuperAdmin];
/// Roles that manage users, tokens and policies.
pub const ADMINISTER: &[Role] = &[Admin];

/// The roles that may do `action` to a case of `kind`.
pub const fn roles(action: CaseAction, kind: CaseKind) -> &'static [Role] {
    let service_request = kind.is_service_request();
    match action {
        CaseAction::Edit if service_request => &[Admin, ProviderAnalyst],
        CaseAction::Edit => &[Admin, Analyst, SuperAdmin],
        CaseAction::Resolve if service_request => &[Admin, ProviderAnalyst],
        CaseAction::Resolve => &[Admin, Analyst],
        CaseAction::Archive => &[Admin, Analyst],
        CaseAction::Delete => &[Admin, Analyst],
        CaseAction::PostMessage => &[Admin, Analyst, SuperAdmin, ProviderAnalyst],
    }
}

/// The roles that may do `action` to a case of some kind: checked before the case is
/// even looked up, so a role that never may learns nothing about ids.
pub fn roles_any_kind(action: CaseAction) -> Vec<Role> {
    let mut out: Vec<Role> = roles(action, CaseKind::SelfManaged).to_vec();
    for role in roles(action, CaseKind::MdrServiceRequest) {
        if !out.contains(role) {
            out.push(*role);
        }
    }
    out
}

/// `FORBIDDEN` unless the viewer's role may do `action` to some case.
pub fn precheck(viewer: &Viewer, action: CaseAction) -> AppResult<()> {
    viewer.require(&roles_any_kind(action))
}

/// `FORBIDDEN` unless the viewer's role may do `action` to this case.
pub fn check_role(viewer: &Viewer, action: CaseAction, case: &Case) -> AppResult<()> {
    viewer.require(roles(action, case.kind))
}

/// `CASE_ARCHIVED` for an archived case, `CASE_CLOSED` for a resolved one: neither changes.
pub fn check_open(case: &Case) -> AppResult<()> {
    match case.status {
        CaseStatus::Archived => Err(AppError::Rule(
            Code::CaseArchived,
            format!("case {} is archived and never changes again", case.number),
        )),
        CaseStatus::Resolved => Err(AppError::Rule(
            Code::CaseClosed,
            format!("case {} is resolved: it cannot change or be reopened", case.number),
        )),
        _ => Ok(()),
    }
}

/// `VERSION_CONFLICT` when the client's expected version is not the case's.
pub fn check_version(case: &Case, expected: Option<i32>) -> AppResult<()> {
    match expected {
        Some(version) if version != case.version => Err(AppError::Rule(
            Code::VersionConflict,
            format!(
                "case {} is at version {}, not {version}: someone else changed it; reload and retry",
                case.number, case.version
            ),
        )),
        _ => Ok(()),
    }
}

/// Whether `viewer` may see the API tokens of `owner`: an ADMIN, or the owner itself.
pub fn require_token_reader(viewer: &Viewer, owner: UserId) -> AppResult<()> {
    if viewer.user_id == owner { Ok(()) } else { viewer.require(ADMINISTER) }
}

/// `UNSUPPORTED_FOR_KIND` for a service request.
pub fn require_self_managed(case_kind: CaseKind, what: &str) -> AppResult<()> {
    if case_kind.is_service_request() {
        return Err(AppError::Rule(
            Code::UnsupportedForKind,
            format!("a service request has no {what}"),
        ));
    }
    Ok(())
}

/// Whether the viewer may do `action` to the case as it is now (the `viewerCan*` flags).
pub fn viewer_can(viewer: &Viewer, action: CaseAction, case: &Case) -> bool {
    if check_role(viewer, action, case).is_err() {
        return false;
    }
    let status = case.status;
    match action {
        CaseAction::Edit | CaseAction::Resolve | CaseAction::PostMessage => status.is_open(),
        CaseAction::Archive => status != CaseStatus::Archived && !case.is_held(),
        CaseAction::Delete => !case.kind.is_service_request() && !case.is_held(),
    }
}
