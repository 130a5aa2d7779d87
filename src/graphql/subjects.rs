//! Subjects: the `Subject` type, its queries and `upsertSubject`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::subjects::{self as ops, SubjectDraft};
use crate::error::AppError;
use crate::graphql::cases::inputs::{CaseFilterInput, filter_text};
use crate::graphql::cases::{Case, ListedCase, RiskSummary};
use crate::graphql::detections::{ListedDetection, nested_connection};
use crate::graphql::ids::{self, Kind};
use crate::graphql::nested::{CaseSpec, DetectionParent, NestedCases};
use crate::graphql::own_conn;
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::scalars::Date;
use crate::graphql::viewer_and_loaders;
use crate::models::cases::list::CaseOrder;
use crate::models::detections::list::{DetectionFilter, DetectionOrder};
use crate::models::fold::fold;
use crate::models::ids::SubjectId;
use crate::models::page::Page;
use crate::models::subjects::{self, SubjectFilter};
use std::sync::Arc;

/// The person under investigation, known by username (an e-mail address).
pub struct Subject(pub subjects::Subject);

/// How far back a subject's activity is looked at unless asked otherwise.
const DEFAULT_DAYS: i32 = 90;
/// Longest look back of a subject's activity.
const MAX_DAYS: i32 = 3650;

fn check_days(days: Option<i32>) -> Result<i32, AppError> {
    let days = days.unwrap_or(DEFAULT_DAYS);
    if (1..=MAX_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(AppError::validation("days", format!("`days` is between 1 and {MAX_DAYS}")))
    }
}

/// The person under investigation, known by username (an e-mail address), with a
/// profile, cases and recent activity (detections whose actor is the username). Every role
/// but INGEST reads subjects; `upsertSubject` writes them.
#[Object]
impl Subject {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Subject, self.0.id.0)
    }

    /// E-mail address, unique in the tenant ignoring case.
    async fn username(&self) -> &str {
        &self.0.username
    }

    /// The person's name.
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }

    /// The person's department.
    async fn department(&self) -> Option<&str> {
        self.0.department.as_deref()
    }

    /// The person's job title.
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }

    /// Where the person works.
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }

    /// The manager's username (an e-mail address).
    async fn manager_username(&self) -> Option<&str> {
        self.0.manager_username.as_deref()
    }

    /// The day the person leaves (or left) the organisation.
    async fn departure_date(&self) -> Option<Date> {
        self.0.departure_date.map(Date)
    }

    /// The names of the watchlists the person is on.
    async fn watchlists(&self) -> Vec<String> {
        self.0.watchlists.iter().flatten().cloned().collect()
    }

    /// Profile notes.
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }

    /// When the subject was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the subject's profile last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The subject's cases (open ones unless `filter.status` says otherwise), most
    /// recently updated first.
    async fn cases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many cases (1–100; default 50).")] first: Option<i32>,
        #[graphql(
            desc = "The cases after this cursor (an `endCursor` or edge `cursor` of this list)."
        )]
        after: Option<String>,
        #[graphql(desc = "Which of the subject's cases; absent: the open ones.")] filter: Option<
            CaseFilterInput,
        >,
    ) -> async_graphql::Result<Conn<ListedCase>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        let filter = filter.unwrap_or_default().into_model()?;
        let order = CaseOrder::default();
        let request = PageArgs::forward(first, after).request(|text| order.decode_cursor(text))?;
        let spec = Arc::new(CaseSpec { filter, order, request: request.clone() });
        let key = NestedCases { subject: self.0.id, spec };
        let page = loaders.nested_cases.load_one(key.clone()).await?.unwrap_or_default();
        let page = Page { rows: page.rows.clone(), more: page.more };
        Ok(connection(
            page,
            &request,
            Total::NestedCases(key),
            |c| order.cursor(c),
            |c| ListedCase(Case(c)),
        ))
    }

    /// Detections whose actor is the subject, observed in the last `days` days, newest first.
    async fn recent_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 90, desc = "How many days back to look: 1–3650.")] days: Option<i32>,
        #[graphql(desc = "How many detections (1–100; default 50).")] first: Option<i32>,
        #[graphql(
            desc = "The detections after this cursor (an `endCursor` or edge `cursor` of this list)."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<Conn<ListedDetection>> {
        let days = check_days(days)?;
        nested_connection(
            ctx,
            DetectionParent::Actor(self.0.key()),
            PageArgs::forward(first, after),
            DetectionFilter::default(),
            DetectionOrder::default(),
            Some(days),
        )
        .await
    }

    /// The subject's detections of the last `days` days counted by severity.
    async fn risk_summary(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 90, desc = "How many days back to look: 1–3650.")] days: Option<i32>,
    ) -> async_graphql::Result<RiskSummary> {
        let days = check_days(days)?;
        let (_, loaders) = viewer_and_loaders(ctx)?;
        let counts = loaders.subject_risk.load_one((self.0.key(), days)).await?.unwrap_or([0; 6]);
        Ok(RiskSummary::from_ranks(counts))
    }
}

/// Which subjects a list holds.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "SubjectFilter")]
pub struct SubjectFilterInput {
    /// Part of the username, ignoring case (at most 255 characters, like every text filter).
    pub username_contains: Option<String>,
    /// The department, ignoring case.
    pub department: Option<String>,
    /// Subjects on this watchlist.
    pub watchlist: Option<String>,
}

#[derive(Default)]
pub struct SubjectQuery;

#[Object]
impl SubjectQuery {
    /// The subject with this global id or this username (ignoring case); null when there
    /// is none in the viewer's tenant. Give exactly one of `id` and `username` (else
    /// `VALIDATION_FAILED`). Every role but INGEST (`FORBIDDEN`).
    async fn subject(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The subject's global id.")] id: Option<ID>,
        #[graphql(desc = "The subject's username (an e-mail address), ignoring case.")]
        username: Option<String>,
    ) -> async_graphql::Result<Option<Subject>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        match (id, username) {
            (Some(id), None) => {
                let Some((Kind::Subject, uuid)) = ids::decode(&id) else { return Ok(None) };
                Ok(loaders.subjects.load_one(SubjectId(uuid)).await?.map(Subject))
            }
            (None, Some(username)) => {
                Ok(loaders.subjects_by_username.load_one(fold(username.trim())).await?.map(Subject))
            }
            _ => Err(AppError::validation("id", "give either `id` or `username`").into()),
        }
    }

    /// The tenant's subjects, by username. Every role but INGEST (`FORBIDDEN`).
    async fn subjects(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many subjects (1–100; default 50).")] first: Option<i32>,
        #[graphql(
            desc = "The subjects after this cursor (an `endCursor` or edge `cursor` of this list)."
        )]
        after: Option<String>,
        #[graphql(desc = "Which subjects; absent: all.")] filter: Option<SubjectFilterInput>,
    ) -> async_graphql::Result<Conn<Subject>> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        let request = PageArgs::forward(first, after).request(subjects::decode_cursor)?;
        let filter = filter.unwrap_or_default();
        let filter = SubjectFilter {
            username_contains: filter_text(filter.username_contains, "usernameContains")?,
            department: filter_text(filter.department, "department")?,
            watchlist: filter_text(filter.watchlist, "watchlist")?,
        };
        let mut conn = crate::graphql::conn(ctx).await?;
        let page = subjects::page(&mut conn, viewer.tenant_id, &filter, &request)
            .await
            .map_err(AppError::from)?;
        drop(conn);
        let total = Total::List(ListCount::Subjects(viewer.tenant_id, filter));
        Ok(connection(page, &request, total, subjects::cursor, Subject))
    }
}

/// A subject's profile. An absent field is left as it is; a blank text clears it.
#[derive(InputObject)]
pub struct UpsertSubjectInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The subject's e-mail address; an existing subject with it (ignoring case) is changed.
    pub username: String,
    /// The person's name (at most 200 characters).
    pub display_name: Option<String>,
    /// The department (at most 200 characters).
    pub department: Option<String>,
    /// The job title (at most 200 characters).
    pub title: Option<String>,
    /// Where the person works (at most 200 characters).
    pub location: Option<String>,
    /// The manager's e-mail address.
    pub manager_username: Option<String>,
    /// The day the person leaves (or left).
    pub departure_date: Option<Date>,
    /// The watchlists the person is on, replacing the old list: at most 50 names of 1–100
    /// characters (repeats are dropped).
    pub watchlists: Option<Vec<String>>,
    /// Profile notes (at most 10,000 characters).
    pub notes: Option<String>,
}

/// The result of `upsertSubject`.
#[derive(SimpleObject)]
pub struct SubjectPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The subject as it is after the mutation.
    pub subject: Subject,
}

#[derive(Default)]
pub struct SubjectMutation;

#[Object]
impl SubjectMutation {
    /// Creates the subject with this username, or changes the one that exists. Fields
    /// left out stay as they are. ADMIN, ANALYST and SUPER_ADMIN. Errors: `FORBIDDEN`,
    /// `VALIDATION_FAILED`.
    async fn upsert_subject(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The subject's username and the profile fields to set.")]
        input: UpsertSubjectInput,
    ) -> async_graphql::Result<SubjectPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let draft = SubjectDraft {
            username: input.username,
            display_name: input.display_name,
            department: input.department,
            title: input.title,
            location: input.location,
            manager_username: input.manager_username,
            departure_date: input.departure_date.map(|d| d.0),
            watchlists: input.watchlists,
            notes: input.notes,
        };
        let mut conn = own_conn(ctx).await?;
        let subject = ops::upsert(&mut conn, viewer, draft).await?;
        Ok(SubjectPayload {
            client_mutation_id: input.client_mutation_id,
            subject: Subject(subject),
        })
    }
}

/// The fields of a subject [`plain`] answers: a case list item's subject.
pub(crate) const PLAIN_FIELDS: &[&str] = &[
    "id",
    "username",
    "displayName",
    "department",
    "title",
    "location",
    "managerUsername",
    "departureDate",
    "watchlists",
    "notes",
    "createdAt",
    "updatedAt",
];

/// The subject `set` asks of, built directly (see `graphql::plain`); the values are those
/// of `Subject`'s resolvers above.
pub(crate) fn plain(
    s: &subjects::Subject,
    set: &async_graphql::parser::types::SelectionSet,
) -> Option<async_graphql::Value> {
    use crate::graphql::plain;
    plain::object(set, "Subject", |name, _| {
        Some(match name {
            "id" => async_graphql::Value::String(ids::encode(Kind::Subject, s.id.0).0),
            "username" => plain::text(&s.username),
            "displayName" => plain::optional_text(s.display_name.as_deref()),
            "department" => plain::optional_text(s.department.as_deref()),
            "title" => plain::optional_text(s.title.as_deref()),
            "location" => plain::optional_text(s.location.as_deref()),
            "managerUsername" => plain::optional_text(s.manager_username.as_deref()),
            "departureDate" => plain::optional_scalar(s.departure_date.map(Date).as_ref()),
            "watchlists" => async_graphql::Value::List(
                s.watchlists.iter().flatten().map(|w| plain::text(w)).collect(),
            ),
            "notes" => plain::optional_text(s.notes.as_deref()),
            "createdAt" => plain::scalar(&s.created_at),
            "updatedAt" => plain::scalar(&s.updated_at),
            _ => return None,
        })
    })
}
