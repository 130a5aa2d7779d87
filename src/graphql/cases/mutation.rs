//! The case mutations. Each resolver decodes its input and calls one domain operation.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use crate::db::{DbPool, pool};
use crate::domain::case_detections;
use crate::domain::cases::{self as ops, CreateCase, UpdateCase};
use crate::graphql::cases::Case;
use crate::graphql::ids::{self, Kind};
use crate::graphql::viewer_and_loaders;
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};
use crate::models::ids::{CaseId, DetectionId, SubjectId, UserId};

#[derive(InputObject)]
pub struct CreateCaseInput {
    pub client_mutation_id: Option<String>,
    #[graphql(default_with = "Some(CaseKind::SelfManaged)")]
    pub kind: Option<CaseKind>,
    pub name: String,
    pub description: Option<String>,
    pub severity: Option<Severity>,
    /// NEW or INVESTIGATING.
    #[graphql(default_with = "Some(CaseStatus::New)")]
    pub status: Option<CaseStatus>,
    pub assignee_id: Option<ID>,
    pub subject_id: Option<ID>,
    pub detection_ids: Option<Vec<ID>>,
}

/// An absent field is left alone; an explicit null clears it.
#[derive(InputObject)]
pub struct UpdateCaseInput {
    pub client_mutation_id: Option<String>,
    pub id: ID,
    /// Fails with VERSION_CONFLICT unless the case is at this version.
    pub expected_version: Option<i32>,
    pub name: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub findings: MaybeUndefined<String>,
    pub severity: MaybeUndefined<Severity>,
    pub status: MaybeUndefined<CaseStatus>,
    pub assignee_id: MaybeUndefined<ID>,
}

#[derive(InputObject)]
pub struct CaseRefInput {
    pub client_mutation_id: Option<String>,
    pub id: ID,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct ResolveCaseInput {
    pub client_mutation_id: Option<String>,
    pub id: ID,
    pub resolution: Resolution,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct DeleteCasesInput {
    pub client_mutation_id: Option<String>,
    /// At most 100; all are deleted or none.
    pub ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct CaseDetectionsInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    pub detection_ids: Vec<ID>,
}

#[derive(InputObject)]
pub struct SetCaseSubjectInput {
    pub client_mutation_id: Option<String>,
    pub case_id: ID,
    /// Null removes the subject.
    pub subject_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct CasePayload {
    pub client_mutation_id: Option<String>,
    pub case: Case,
}

#[derive(SimpleObject)]
pub struct DeleteCasesPayload {
    pub client_mutation_id: Option<String>,
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
    /// Opens a case. Service requests need their license and take only a name and a description.
    async fn create_case(
        &self,
        ctx: &Context<'_>,
        input: CreateCaseInput,
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
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let case = ops::create(&mut conn, viewer, create).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Changes a case's details. An absent field is left alone; an explicit null clears it.
    async fn update_case(
        &self,
        ctx: &Context<'_>,
        input: UpdateCaseInput,
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
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let case = ops::update(&mut conn, viewer, id, update).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Resolves a case with a verdict. A resolved case never changes or reopens.
    async fn resolve_case(
        &self,
        ctx: &Context<'_>,
        input: ResolveCaseInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.id, "id")?;
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let case =
            ops::resolve(&mut conn, viewer, id, input.resolution, input.expected_version).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Archives a case: its detection links are removed for good.
    async fn archive_case(
        &self,
        ctx: &Context<'_>,
        input: CaseRefInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.id, "id")?;
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let case = ops::archive(&mut conn, viewer, id, input.expected_version).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Deletes self-managed cases: all of them, or none when one cannot be deleted.
    async fn delete_cases(
        &self,
        ctx: &Context<'_>,
        input: DeleteCasesInput,
    ) -> async_graphql::Result<DeleteCasesPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let list = input
            .ids
            .iter()
            .map(|id| case_id(id, "ids"))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let deleted = ops::delete(&mut conn, viewer, list).await?;
        Ok(DeleteCasesPayload {
            client_mutation_id: input.client_mutation_id,
            deleted_ids: deleted.into_iter().map(|id| ids::encode(Kind::Case, id.0)).collect(),
        })
    }

    /// Adds detections to a case (at most 10,000 per case; beyond that none are added).
    async fn add_detections_to_case(
        &self,
        ctx: &Context<'_>,
        input: CaseDetectionsInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.case_id, "caseId")?;
        let detections = detection_ids(&input.detection_ids, "detectionIds")?;
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let case = case_detections::add(&mut conn, viewer, id, detections).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Removes detections from a case.
    async fn remove_detections_from_case(
        &self,
        ctx: &Context<'_>,
        input: CaseDetectionsInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.case_id, "caseId")?;
        let detections = detection_ids(&input.detection_ids, "detectionIds")?;
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let case = case_detections::remove(&mut conn, viewer, id, detections).await?;
        Ok(payload(input.client_mutation_id, case))
    }

    /// Names the case's subject, or removes it with a null `subjectId`.
    async fn set_case_subject(
        &self,
        ctx: &Context<'_>,
        input: SetCaseSubjectInput,
    ) -> async_graphql::Result<CasePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let id = case_id(&input.case_id, "caseId")?;
        let subject = input
            .subject_id
            .map(|s| ids::expect(Kind::Subject, &s, "subjectId").map(SubjectId))
            .transpose()?;
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let case = ops::set_subject(&mut conn, viewer, id, subject).await?;
        Ok(payload(input.client_mutation_id, case))
    }
}
