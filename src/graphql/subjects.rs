//! Subjects: the `Subject` type, its queries and `upsertSubject`.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::db::{DbPool, pool};
use crate::domain::subjects::{self as ops, SubjectDraft};
use crate::error::AppError;
use crate::graphql::cases::inputs::{CaseFilterInput, filter_text};
use crate::graphql::cases::{Case, RiskSummary};
use crate::graphql::detections::{Detection, nested_connection};
use crate::graphql::ids::{self, Kind};
use crate::graphql::nested::{CaseSpec, DetectionParent, NestedCases};
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

    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }

    async fn department(&self) -> Option<&str> {
        self.0.department.as_deref()
    }

    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }

    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }

    async fn manager_username(&self) -> Option<&str> {
        self.0.manager_username.as_deref()
    }

    async fn departure_date(&self) -> Option<Date> {
        self.0.departure_date.map(Date)
    }

    async fn watchlists(&self) -> Vec<String> {
        self.0.watchlists.iter().flatten().cloned().collect()
    }

    /// Profile notes.
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The subject's cases (open ones unless `filter.status` says otherwise).
    async fn cases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<CaseFilterInput>,
    ) -> async_graphql::Result<Conn<Case>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        let filter = filter.unwrap_or_default().into_model()?;
        let order = CaseOrder::default();
        let request = PageArgs::forward(first, after).request(|text| order.decode_cursor(text))?;
        let spec = Arc::new(CaseSpec { filter, order, request: request.clone() });
        let key = NestedCases { subject: self.0.id, spec };
        let page = loaders.nested_cases.load_one(key.clone()).await?.unwrap_or_default();
        let page = Page { rows: page.rows.clone(), more: page.more };
        Ok(connection(page, &request, Total::NestedCases(key), |c| order.cursor(c), Case))
    }

    /// Detections whose actor is the subject, observed in the last `days` days, newest first.
    async fn recent_activity(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 90)] days: Option<i32>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Detection>> {
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
        #[graphql(default = 90)] days: Option<i32>,
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
    /// Part of the username, ignoring case.
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
    /// The subject with this global id or this username (ignoring case).
    async fn subject(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
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

    /// The tenant's subjects, by username.
    async fn subjects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<SubjectFilterInput>,
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

#[derive(InputObject)]
pub struct UpsertSubjectInput {
    pub client_mutation_id: Option<String>,
    /// The subject's e-mail address; an existing subject with it (ignoring case) is changed.
    pub username: String,
    pub display_name: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub location: Option<String>,
    pub manager_username: Option<String>,
    pub departure_date: Option<Date>,
    pub watchlists: Option<Vec<String>>,
    pub notes: Option<String>,
}

#[derive(SimpleObject)]
pub struct SubjectPayload {
    pub client_mutation_id: Option<String>,
    pub subject: Subject,
}

#[derive(Default)]
pub struct SubjectMutation;

#[Object]
impl SubjectMutation {
    /// Creates the subject with this username, or changes the one that exists. Fields
    /// left out stay as they are.
    async fn upsert_subject(
        &self,
        ctx: &Context<'_>,
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
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let subject = ops::upsert(&mut conn, viewer, draft).await?;
        Ok(SubjectPayload {
            client_mutation_id: input.client_mutation_id,
            subject: Subject(subject),
        })
    }
}
