//! The case mutations. Each resolver decodes its input and calls one domain operation.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use crate::domain::case_detections;
use crate::domain::cases::{self as ops, CreateCase, UpdateCase};
use crate::graphql::cases::Case;
use crate::graphql::ids::{self, Kind};
use crate::graphql::own_conn;
use crate::graphql::viewer_and_loaders;
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};
use crate::models::ids::{CaseId, DetectionId, SubjectId, UserId};
use crate::storage::Storage;

/// A new case. A service request takes only `kind`, `name` and `description` (anything
/// else answers `UNSUPPORTED_FOR_KIND`).
#[derive(InputObject)]
pub struct CreateCaseInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// What the case is; service requests need the tenant's license (`LICENSE_REQUIRED`).
    #[graphql(default_with = "Some(CaseKind::SelfManaged)")]
    pub kind: Option<CaseKind>,
    /// 1–50 characters after trimming: letters and digits of any script, spaces and
    /// `. , : ; ' ! ? ( ) - _ /`; unique in the tenant ignoring case (`NAME_TAKEN`).
    pub name: String,
    /// At most 1,000 characters.
    pub description: Option<String>,
    /// How severe the incident is; absent: not set.
    pub severity: Option<Severity>,
    /// NEW or INVESTIGATING.
    #[graphql(default_with = "Some(CaseStatus::New)")]
    pub status: Option<CaseStatus>,
    /// Who works the case: an ADMIN or ANALYST user of the tenant; absent: unassigned.
    pub assignee_id: Option<ID>,
    /// The person under investigation (a Subject id); `NOT_FOUND` when there is none.
    pub subject_id: Option<ID>,
    /// Detections to put in the case at once (at most 10,000; XDR and FILE_ACTIVITY only).
    pub detection_ids: Option<Vec<ID>>,
}

/// Changes to a case. An absent field is left alone; an explicit null clears it.
#[derive(InputObject)]
pub struct UpdateCaseInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The case's global id.
    pub id: ID,
    /// Fails with VERSION_CONFLICT unless the case is at this version.
    pub expected_version: Option<i32>,
    /// A new name (the rules of `createCase`); null is `VALIDATION_FAILED`.
    pub name: MaybeUndefined<String>,
    /// A new description (at most 1,000 characters); null clears it.
    pub description: MaybeUndefined<String>,
    /// New findings: at most 30,000 characters of basic HTML, sanitized on write (what is
    /// not allowed is removed); null clears them.
    pub findings: MaybeUndefined<String>,
    /// A new severity; null clears it.
    pub severity: MaybeUndefined<Severity>,
    /// An open status (NEW, INVESTIGATING, ON_HOLD, ACTION_REQUIRED); resolve with
    /// `resolveCase` and archive with `archiveCase`. The only change a service request takes.
    pub status: MaybeUndefined<CaseStatus>,
    /// A new assignee (an ADMIN or ANALYST user); null unassigns the case.
    pub assignee_id: MaybeUndefined<ID>,
}

/// A case to act on.
#[derive(InputObject)]
pub struct CaseRefInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The case's global id.
    pub id: ID,
    /// Fails with VERSION_CONFLICT unless the case is at this version.
    pub expected_version: Option<i32>,
}

/// A case to resolve and its verdict.
#[derive(InputObject)]
pub struct ResolveCaseInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The case's global id.
    pub id: ID,
    /// The verdict.
    pub resolution: Resolution,
    /// Fails with VERSION_CONFLICT unless the case is at this version.
    pub expected_version: Option<i32>,
}

/// Self-managed cases to delete.
#[derive(InputObject)]
pub struct DeleteCasesInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// At most 100; all are deleted or none.
    pub ids: Vec<ID>,
}

/// A case and detections to add to it or remove from it.
#[derive(InputObject)]
pub struct CaseDetectionsInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The case's global id.
    pub case_id: ID,
    /// Detection ids of the tenant; one that does not exist answers `NOT_FOUND` and
    /// nothing changes. Ids already in (or already out of) the case are ignored.
    pub detection_ids: Vec<ID>,
}

/// A case and its new subject.
#[derive(InputObject)]
pub struct SetCaseSubjectInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The case's global id.
    pub case_id: ID,
    /// A Subject id of the tenant; null removes the subject.
    pub subject_id: Option<ID>,
}

/// The result of a case mutation.
#[derive(SimpleObject)]
pub struct CasePayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The case as it is after the mutation.
    pub case: Case,
}

/// The result of `deleteCases`.
#[derive(SimpleObject)]
pub struct DeleteCasesPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The ids of the deleted cases, in input order without repeats.
    pub deleted_ids: Vec<ID>,
}

fn case_id(id: &ID, field: &str) -> async_graphql::Result<CaseId> {
    Ok(CaseId(ids::expect(Kind::Case, id, field)?))
}

fn detection_ids(list: &[ID], field: &str) -> async_graphql::Result<Vec<DetectionId>> {
    Ok(list
        .iter()
        .map(|id| ids::expect(Kind::Detection, id, field).map(DetectionId))
        .collect::<Result<_, _>>()?)
}

fn payload(client_mutation_id: Option<String>, case: crate::models::cases::Case) -> CasePayload {
    CasePayload { client_mutation_id, case: Case(case) }
}

#[derive(Default)]
pub struct CaseMutation;

#[Object]
impl CaseMutation {
    /// Opens a case. Service requests need their license and take only a name and a
    /// description. ADMIN, ANALYST and SUPER_ADMIN. Errors: `FORBIDDEN`,
    /// `VALIDATION_FAILED`, `NAME_TAKEN`, `LICENSE_REQUIRED`, `UNSUPPORTED_FOR_KIND`,
    /// `NOT_FOUND` (subject or detection), `LIMIT_EXCEEDED`.
    async fn create_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new case.")] input: CreateCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let create = CreateCase {
            kind: input.kind.unwrap_or(CaseKind::SelfManaged),
            name: input.name,
            description: input.description,
            severity: input.severity,
            status: input.status.unwrap_or(CaseStatus::New),
            assignee: input
                .assignee_id
                .map(|id| ids::expect(Kind::User, &id, "assigneeId").map(UserId))
                .transpose()?,
            subject: input
                .subject_id
                .map(|id| ids::expect(Kind::Subject, &id, "subjectId").map(SubjectId))
                .transpose()?,
            detections: detection_ids(&input.detection_ids.unwrap_or_default(), "detectionIds")?,
        };
        let mut conn = own_conn(ctx).await?;
        let case = ops::create(&mut conn, viewer, create).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Changes a case's details. An absent field is left alone; an explicit null clears it.
    /// ADMIN, ANALYST and SUPER_ADMIN; a service request's status only ADMIN and
    /// PROVIDER_ANALYST. Errors: `FORBIDDEN`, `NOT_FOUND`, `VALIDATION_FAILED`,
    /// `NAME_TAKEN`, `CASE_CLOSED`, `CASE_ARCHIVED`, `VERSION_CONFLICT`,
    /// `UNSUPPORTED_FOR_KIND`.
    async fn update_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and the changes.")] input: UpdateCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.id, "id")?;
        let assignee = match input.assignee_id {
            MaybeUndefined::Value(id) => {
                MaybeUndefined::Value(UserId(ids::expect(Kind::User, &id, "assigneeId")?))
            }
            MaybeUndefined::Null => MaybeUndefined::Null,
            MaybeUndefined::Undefined => MaybeUndefined::Undefined,
        };
        let update = UpdateCase {
            expected_version: input.expected_version,
            name: input.name.into(),
            description: input.description.into(),
            findings: input.findings.into(),
            severity: input.severity.into(),
            status: input.status.into(),
            assignee: assignee.into(),
        };
        let mut conn = own_conn(ctx).await?;
        let case = ops::update(&mut conn, viewer, id, update).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Resolves an open case with a verdict. A resolved case never changes or reopens.
    /// ADMIN and ANALYST; a service request ADMIN and PROVIDER_ANALYST. Errors:
    /// `FORBIDDEN`, `NOT_FOUND`, `CASE_CLOSED`, `CASE_ARCHIVED`, `VERSION_CONFLICT`.
    async fn resolve_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and its verdict.")] input: ResolveCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.id, "id")?;
        let mut conn = own_conn(ctx).await?;
        let case =
            ops::resolve(&mut conn, viewer, id, input.resolution, input.expected_version).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Archives a case, open or resolved: its detection links and its stored file contents
    /// (those no other case needs) are removed for good and it never changes again. ADMIN
    /// and ANALYST. Errors: `FORBIDDEN`, `NOT_FOUND`, `CASE_ARCHIVED`, `VERSION_CONFLICT`,
    /// `LEGAL_HOLD`.
    async fn archive_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case to archive.")] input: CaseRefInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.id, "id")?;
        let mut conn = own_conn(ctx).await?;
        let storage = ctx.data::<Storage>()?;
        let case = ops::archive(&mut conn, storage, viewer, id, input.expected_version).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Deletes self-managed cases: all of them, or none when one cannot be deleted.
    /// Detections older than 90 days that no other case holds, and stored file contents no
    /// case needs any more, are deleted with them. ADMIN and ANALYST. Errors: `FORBIDDEN`,
    /// `VALIDATION_FAILED` (over 100 ids), `NOT_FOUND`, `UNSUPPORTED_FOR_KIND` (a service
    /// request), `LEGAL_HOLD`.
    async fn delete_cases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cases to delete.")] input: DeleteCasesInput,
    ) -> async_graphql::Result<DeleteCasesPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let list = input
            .ids
            .iter()
            .map(|id| case_id(id, "ids"))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let mut conn = own_conn(ctx).await?;
        let deleted = ops::delete(&mut conn, ctx.data::<Storage>()?, viewer, list).await?;
        Ok(DeleteCasesPayload {
            client_mutation_id: input.client_mutation_id,
            deleted_ids: deleted.into_iter().map(|id| ids::encode(Kind::Case, id.0)).collect(),
        })
    }

    /// Adds detections to an open self-managed case (at most 10,000 per case; beyond that
    /// none are added). MDR and MANAGED_RISK detections never go into a self-managed case.
    /// ADMIN, ANALYST and SUPER_ADMIN. Errors: `FORBIDDEN`, `NOT_FOUND`, `LIMIT_EXCEEDED`,
    /// `UNSUPPORTED_FOR_KIND`, `CASE_CLOSED`, `CASE_ARCHIVED`.
    async fn add_detections_to_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and the detections to add.")] input: CaseDetectionsInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.case_id, "caseId")?;
        let detections = detection_ids(&input.detection_ids, "detectionIds")?;
        let mut conn = own_conn(ctx).await?;
        let case = case_detections::add(&mut conn, viewer, id, detections).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Removes detections from an open self-managed case. ADMIN, ANALYST and SUPER_ADMIN.
    /// Errors: `FORBIDDEN`, `NOT_FOUND`, `UNSUPPORTED_FOR_KIND`, `CASE_CLOSED`,
    /// `CASE_ARCHIVED`.
    async fn remove_detections_from_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and the detections to remove.")] input: CaseDetectionsInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.case_id, "caseId")?;
        let detections = detection_ids(&input.detection_ids, "detectionIds")?;
        let mut conn = own_conn(ctx).await?;
        let case = case_detections::remove(&mut conn, viewer, id, detections).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Names the case's subject, or removes it with a null `subjectId`. Open self-managed
    /// cases; ADMIN, ANALYST and SUPER_ADMIN. Errors: `FORBIDDEN`, `NOT_FOUND`,
    /// `UNSUPPORTED_FOR_KIND`, `CASE_CLOSED`, `CASE_ARCHIVED`.
    async fn set_case_subject(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and its subject.")] input: SetCaseSubjectInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.case_id, "caseId")?;
        let subject = input
            .subject_id
            .map(|s| ids::expect(Kind::Subject, &s, "subjectId").map(SubjectId))
            .transpose()?;
        let mut conn = own_conn(ctx).await?;
        let case = ops::set_subject(&mut conn, viewer, id, subject).await?;
        Ok(payload(input.client_mutation_id, case))
    }
}
