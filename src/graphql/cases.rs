//! Cases: the `Case` type, the `case` and `cases` queries (`cases/query.rs`) and the case
//! mutations (`cases/mutation.rs`).

pub mod inputs;
pub mod legal_hold;
pub mod mutation;
pub mod query;

use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::Registry;
use async_graphql::{
    Context, ContextSelectionSet, ID, Object, OutputType, Positioned, ServerResult, SimpleObject,
    Value,
};
use chrono::{DateTime, Utc};

use crate::domain::access::{self, CaseAction};
use crate::graphql::detections::{
    DetectionFilterInput, DetectionOrderInput, ListedDetection, nested_connection,
};
use crate::graphql::loaders::Loaders;
use crate::graphql::messages::Message;
use crate::graphql::nested::DetectionParent;
use crate::graphql::pagination::{Conn, ConnectionTotal, PageArgs, Total};
use crate::graphql::plain;
use crate::graphql::subjects::{self, Subject};
use crate::graphql::users::{self, User};
use crate::graphql::{ids, viewer_and_loaders};
use crate::models::cases;
use crate::models::detections::list::DetectionFilter;
use crate::models::enums::{CaseKind, CaseStatus, Resolution, Severity};

pub use mutation::CaseMutation;
pub use query::CaseQuery;

/// An investigation: the detections behind an incident, the person under investigation,
/// findings, and its life from NEW to RESOLVED to ARCHIVED.
pub struct Case(pub cases::Case);

/// Linked detections counted by severity.
#[derive(SimpleObject)]
pub struct RiskSummary {
    /// How many are CRITICAL.
    pub critical: i32,
    /// How many are HIGH.
    pub high: i32,
    /// How many are MEDIUM.
    pub medium: i32,
    /// How many are LOW.
    pub low: i32,
    /// How many are INFORMATIONAL.
    pub informational: i32,
    /// The most severe level with any detection; null when there are none.
    pub highest: Option<Severity>,
}

impl RiskSummary {
    /// From counts per severity rank (index 1–5).
    pub fn from_ranks(counts: [i32; 6]) -> Self {
        let highest =
            (1..=5).rev().find(|&r| counts[r] > 0).and_then(|r| Severity::from_rank(r as i16));
        Self {
            critical: counts[5],
            high: counts[4],
            medium: counts[3],
            low: counts[2],
            informational: counts[1],
            highest,
        }
    }
}

/// A MITRE ATT&CK tactic seen in a case, with its techniques.
#[derive(SimpleObject)]
pub struct MitreTacticSummary {
    /// The tactic's ATT&CK id, such as `TA0010`.
    pub tactic_id: String,
    /// The tactic's name, such as `Exfiltration`.
    pub tactic_name: String,
    /// The tactic's techniques seen in the case's detections, by technique id.
    pub techniques: Vec<MitreTechniqueCount>,
}

/// How many of a case's detections show a technique.
#[derive(SimpleObject)]
pub struct MitreTechniqueCount {
    /// The technique's ATT&CK id, such as `T1048`.
    pub technique_id: String,
    /// The technique's name, such as `Exfiltration Over Alternative Protocol`.
    pub technique_name: String,
    /// How many of the case's detections show the technique.
    pub count: i32,
}

/// What kind of thing an impacted entity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum EntityType {
    /// A device, named by its hostname.
    Device,
    /// A person, named by the detections' actor username.
    User,
    /// An IP address of a device.
    IpAddress,
}

/// A device, user or IP address seen in a case's detections.
#[derive(SimpleObject)]
pub struct ImpactedEntity {
    /// Whether this is a device, a user or an IP address.
    #[graphql(name = "type")]
    pub entity_type: EntityType,
    /// The hostname, username or IP address.
    pub name: String,
    /// How many of the case's detections name this entity.
    pub detection_count: i32,
    /// The most severe of those detections.
    pub highest_severity: Severity,
}

fn count(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// An investigation: the detections behind an incident, the person under investigation
/// (its subject), findings, and its life from NEW through RESOLVED to ARCHIVED. Every role
/// but INGEST reads the tenant's cases; the `viewerCan*` fields tell what the viewer may
/// do to this one.
#[Object]
impl Case {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(ids::Kind::Case, self.0.id.0)
    }

    /// The tenant's number for the case, shown to people.
    async fn number(&self) -> i32 {
        self.0.number
    }

    /// A self-managed case, or a service request to a provider's team (fixed at creation).
    async fn kind(&self) -> CaseKind {
        self.0.kind
    }

    /// 1–50 characters, unique in the tenant ignoring case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// At most 1,000 characters.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// At most 30,000 characters of basic HTML (headings, paragraphs, bold, italics,
    /// underline, lists, links), sanitized on write.
    async fn findings(&self) -> Option<&str> {
        self.0.findings.as_deref()
    }

    /// How severe the incident is, as the case's editors judge it; null when not set.
    async fn severity(&self) -> Option<Severity> {
        self.0.severity
    }

    /// Where the case is in its life; a new case starts NEW or INVESTIGATING.
    async fn status(&self) -> CaseStatus {
        self.0.status
    }

    /// The verdict, once resolved.
    async fn resolution(&self) -> Option<Resolution> {
        self.0.resolution
    }

    /// Whether casefile opened the case for high-risk detections.
    async fn auto_created(&self) -> bool {
        self.0.auto_created
    }

    /// Who works the case; null when unassigned.
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.assignee_id).await
    }

    /// The person under investigation.
    async fn subject(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Subject>> {
        let Some(id) = self.0.subject_id else { return Ok(None) };
        let (_, loaders) = viewer_and_loaders(ctx)?;
        Ok(loaders.subjects.load_one(id).await?.map(Subject))
    }

    /// Who created the case; null for automatic cases.
    async fn created_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.created_by_id).await
    }

    /// Who changed the case last; null when casefile did.
    async fn last_modified_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(ctx, self.0.last_modified_by_id).await
    }

    /// When the case was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the case last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// When the case was resolved; null while it is open.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }

    /// When the case is archived automatically: creation + the tenant's archiveAfterDays.
    async fn archive_at(&self) -> DateTime<Utc> {
        self.0.archive_at
    }

    /// When the case was archived (by hand or at `archiveAt`); null while it is not.
    async fn archived_at(&self) -> Option<DateTime<Utc>> {
        self.0.archived_at
    }

    /// When a resolved case is deleted; null when never.
    async fn delete_at(&self) -> Option<DateTime<Utc>> {
        self.0.delete_at
    }

    /// Increases on every change; pass it as `expectedVersion` to avoid overwriting others' edits.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The legal hold while one is set (never archived or deleted meanwhile); null otherwise.
    async fn legal_hold(&self) -> Option<legal_hold::LegalHold> {
        legal_hold::LegalHold::of(&self.0)
    }

    /// How many detections the case holds (at most 10,000).
    async fn detection_count(&self) -> i32 {
        self.0.detection_count
    }

    /// The case's detections counted by severity.
    async fn risk_summary(&self) -> RiskSummary {
        let c = &self.0;
        RiskSummary::from_ranks([
            0,
            c.risk_informational,
            c.risk_low,
            c.risk_medium,
            c.risk_high,
            c.risk_critical,
        ])
    }

    /// The detections the case holds (none once it is archived), newest first unless
    /// `orderBy` says otherwise. Paging arguments out of range answer `VALIDATION_FAILED`.
    #[allow(clippy::too_many_arguments)]
    async fn detections(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Forward paging: how many detections (1–100; 50 when neither `first` nor `last` is given). Not with `last` or `before`."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Forward paging: the detections after this cursor (an `endCursor` or edge `cursor` of this list in the same order)."
        )]
        after: Option<String>,
        #[graphql(
            desc = "Backward paging: how many detections (1–100), the last ones or those before `before`. Not with `first` or `after`."
        )]
        last: Option<i32>,
        #[graphql(
            desc = "Backward paging: the detections before this cursor (a `startCursor` or edge `cursor` of this list in the same order)."
        )]
        before: Option<String>,
        #[graphql(desc = "Which of the case's detections to list; absent: all.")] filter: Option<
            DetectionFilterInput,
        >,
        #[graphql(desc = "The order; absent: OBSERVED_AT DESC (newest first).")] order_by: Option<
            DetectionOrderInput,
        >,
    ) -> async_graphql::Result<Conn<ListedDetection>> {
        let args = PageArgs { first, after, last, before };
        let filter = filter.unwrap_or_default().into_model()?;
        let unfiltered = filter == DetectionFilter::default();
        let parent = DetectionParent::Case(self.0.id);
        let mut page = nested_connection(ctx, parent, args, filter, order_by.into(), None).await?;
        if unfiltered {
            // Every link counts: the case row keeps that number in the transaction that
            // links (and archival sets it to 0 with the links gone).
            page.additional_fields = ConnectionTotal(Total::Known(self.0.detection_count.into()));
        }
        Ok(page)
    }

    /// The case's change record, newest first: every change, by whom and when (events
    /// outlive the case's content: long text appears only as digests).
    async fn activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many events (1–100; default 50).")] first: Option<i32>,
        #[graphql(
            desc = "The events after this cursor (older ones), an `endCursor` or edge `cursor` of this list."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Conn<crate::graphql::audit::AuditEvent>> {
        crate::graphql::audit::activity(ctx, self.0.id, first, after).await
    }

    /// The messages on the case, oldest first (none once it is archived). Paging
    /// arguments out of range answer `VALIDATION_FAILED`.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Forward paging: how many messages (1–100; 50 when neither `first` nor `last` is given). Not with `last` or `before`."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Forward paging: the messages after this cursor (an `endCursor` or edge `cursor` of this list)."
        )]
        after: Option<String>,
        #[graphql(
            desc = "Backward paging: how many messages (1–100), the newest ones or those before `before`. Not with `first` or `after`."
        )]
        last: Option<i32>,
        #[graphql(
            desc = "Backward paging: the messages before this cursor (a `startCursor` or edge `cursor` of this list)."
        )]
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Message>> {
        let args = PageArgs { first, after, last, before };
        crate::graphql::messages::case_messages(ctx, self.0.id, args).await
    }

    /// The MITRE ATT&CK tactics and techniques of the case's detections, by tactic id.
    async fn mitre_summary(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<MitreTacticSummary>> {
        let (_, loaders) = viewer_and_loaders(ctx)?;
        let rows = loaders.mitre.load_one(self.0.id).await?.unwrap_or_default();
        let mut out: Vec<MitreTacticSummary> = Vec::new();
        for row in rows {
            let technique = MitreTechniqueCount {
                technique_id: row.technique_id,
                technique_name: row.technique_name,
                count: count(row.count),
            };
            match out.iter_mut().find(|t| t.tactic_id == row.tactic_id) {
                Some(tactic) => tactic.techniques.push(technique),
                None => out.push(MitreTacticSummary {
                    tactic_id: row.tactic_id,
                    tactic_name: row.tactic_name,
                    techniques: vec![technique],
                }),
            }
        }
        Ok(out)
    }

    /// The devices, users and IP addresses of the case's detections, most detections first.
    async fn impacted_entities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ImpactedEntity>> {
        let (_, loaders) = viewer_and_loaders(ctx)?;
        let rows = loaders.entities.load_one(self.0.id).await?.unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|row| ImpactedEntity {
                entity_type: match row.entity_type.as_str() {
                    "DEVICE" => EntityType::Device,
                    "USER" => EntityType::User,
                    _ => EntityType::IpAddress,
                },
                name: row.name,
                detection_count: count(row.count),
                highest_severity: Severity::from_rank(row.highest)
                    .unwrap_or(Severity::Informational),
            })
            .collect())
    }

    /// Whether the viewer may change this case now (details, findings, detections, subject;
    /// the status of a service request).
    async fn viewer_can_edit(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        can(ctx, CaseAction::Edit, &self.0)
    }

    /// Whether the viewer may resolve this case now (it is open, and the role may:
    /// ADMIN and ANALYST; for a service request ADMIN and PROVIDER_ANALYST).
    async fn viewer_can_resolve(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        can(ctx, CaseAction::Resolve, &self.0)
    }

    /// Whether the viewer may archive this case now (ADMIN and ANALYST; not once archived).
    async fn viewer_can_archive(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        can(ctx, CaseAction::Archive, &self.0)
    }

    /// Whether the viewer may delete this case (ADMIN and ANALYST; self-managed cases only).
    async fn viewer_can_delete(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        can(ctx, CaseAction::Delete, &self.0)
    }

    /// Whether the viewer may post a message on this case now (it is open; every role but
    /// READ_ONLY and INGEST).
    async fn viewer_can_post_message(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        can(ctx, CaseAction::PostMessage, &self.0)
    }
}

fn can(ctx: &Context<'_>, action: CaseAction, case: &cases::Case) -> async_graphql::Result<bool> {
    let (viewer, _) = viewer_and_loaders(ctx)?;
    Ok(access::viewer_can(viewer, action, case))
}

async fn user(
    ctx: &Context<'_>,
    id: Option<crate::models::ids::UserId>,
) -> async_graphql::Result<Option<User>> {
    let Some(id) = id else { return Ok(None) };
    let (_, loaders) = viewer_and_loaders(ctx)?;
    Ok(loaders.users.load_one(id).await?.map(User))
}

/// A case as an item of a list (the case list, a subject's cases): built by
/// `graphql::plain` when every field asked for is a plain value of the row or a plainly
/// read assignee or subject (loaded with every other item's, one statement for the
/// page), as on the case list; resolved as a [`Case`] otherwise. The same GraphQL type.
pub struct ListedCase(pub Case);

/// The fields of a case [`plain_case`] answers.
const PLAIN_FIELDS: &[&str] = &[
    "id",
    "number",
    "kind",
    "name",
    "description",
    "findings",
    "severity",
    "status",
    "resolution",
    "autoCreated",
    "assignee",
    "subject",
    "createdAt",
    "updatedAt",
    "resolvedAt",
    "archiveAt",
    "archivedAt",
    "deleteAt",
    "version",
    "detectionCount",
];

impl OutputType for ListedCase {
    fn type_name() -> Cow<'static, str> {
        Case::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        Case::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match plain_case(ctx, &self.0.0).await {
            Some(value) => Ok(value),
            None => OutputType::resolve(&self.0, ctx, field).await,
        }
    }
}

/// The case `ctx` asks of, when every field it selects is plain; the values are those of
/// `Case`'s resolvers above. A failed load answers `None`: the usual way then reports the
/// error on its field.
async fn plain_case(ctx: &ContextSelectionSet<'_>, c: &cases::Case) -> Option<Value> {
    let set = &ctx.item.node;
    let assignee_set = plain::selection(set, "assignee");
    let subject_set = plain::selection(set, "subject");
    if !plain::selects_only(set, PLAIN_FIELDS)
        || assignee_set.is_some_and(|s| !plain::selects_only(s, users::PLAIN_FIELDS))
        || subject_set.is_some_and(|s| !plain::selects_only(s, subjects::PLAIN_FIELDS))
    {
        return None;
    }
    let loaders = ctx.data::<Loaders>().ok()?;
    let assignee = async {
        match (assignee_set, c.assignee_id) {
            (Some(_), Some(id)) => loaders.users.load_one(id).await,
            _ => Ok(None),
        }
    };
    let subject = async {
        match (subject_set, c.subject_id) {
            (Some(_), Some(id)) => loaders.subjects.load_one(id).await,
            _ => Ok(None),
        }
    };
    let (assignee, subject) = futures_util::join!(assignee, subject);
    let (assignee, subject) = (assignee.ok()?, subject.ok()?);
    plain::object(set, "Case", |name, selection| {
        Some(match name {
            "id" => Value::String(ids::encode(ids::Kind::Case, c.id.0).0),
            "number" => plain::scalar(&c.number),
            "kind" => plain::enumeration(c.kind),
            "name" => plain::text(&c.name),
            "description" => plain::optional_text(c.description.as_deref()),
            "findings" => plain::optional_text(c.findings.as_deref()),
            "severity" => c.severity.map_or(Value::Null, plain::enumeration),
            "status" => plain::enumeration(c.status),
            "resolution" => c.resolution.map_or(Value::Null, plain::enumeration),
            "autoCreated" => plain::scalar(&c.auto_created),
            "assignee" => match &assignee {
                Some(user) => users::plain(user, selection)?,
                None => Value::Null,
            },
            "subject" => match &subject {
                Some(subject) => subjects::plain(subject, selection)?,
                None => Value::Null,
            },
            "createdAt" => plain::scalar(&c.created_at),
            "updatedAt" => plain::scalar(&c.updated_at),
            "resolvedAt" => plain::optional_scalar(c.resolved_at.as_ref()),
            "archiveAt" => plain::scalar(&c.archive_at),
            "archivedAt" => plain::optional_scalar(c.archived_at.as_ref()),
            "deleteAt" => plain::optional_scalar(c.delete_at.as_ref()),
            "version" => plain::scalar(&c.version),
            "detectionCount" => plain::scalar(&c.detection_count),
            _ => return None,
        })
    })
}
