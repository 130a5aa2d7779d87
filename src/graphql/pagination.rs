//! Relay connections over keyset pages: the `first`/`after`/`last`/`before` arguments,
//! checked and turned into a [`PageRequest`], and the connection built from a page.

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields};
use async_graphql::{Context, Object, OutputType};

use crate::error::{AppError, AppResult};
use crate::graphql::nested::{CountOf, NestedCases, NestedDetections, NestedMessages};
use crate::graphql::viewer_and_loaders;
use crate::models::cases::list::CaseFilter;
use crate::models::detections::list::DetectionFilter;
use crate::models::ids::TenantId;
use crate::models::page::{Cursor, Page, PageRequest};
use crate::models::subjects::SubjectFilter;
use crate::models::{cases, detections, subjects, users};

/// Most rows one page may hold, and the size of a page when none is asked for.
pub const MAX_PAGE: i32 = 100;
pub const DEFAULT_PAGE: i32 = 50;

/// The paging arguments of a connection field.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn forward(first: Option<i32>, after: Option<String>) -> Self {
        Self { first, after, last: None, before: None }
    }

    /// Checks the arguments: `first` or `last` (1–100, default 50 forward), `after` only
    /// with forward paging and `before` only with backward paging. `decode` reads a
    /// cursor of the list's order.
    pub fn request(&self, decode: impl Fn(&str) -> Option<Cursor>) -> AppResult<PageRequest> {
        let check = |value: i32, field: &str| {
            if (1..=MAX_PAGE).contains(&value) {
                Ok(i64::from(value))
            } else {
                Err(AppError::validation(
                    field,
                    format!("`{field}` must be between 1 and {MAX_PAGE} (got {value})"),
                ))
            }
        };
        let cursor = |text: &str, field: &str| {
            decode(text).ok_or_else(|| {
                AppError::validation(field, format!("`{field}` is not a cursor of this list"))
            })
        };
        let backward = self.last.is_some() || self.before.is_some();
        if backward && (self.first.is_some() || self.after.is_some()) {
            return Err(AppError::validation(
                if self.last.is_some() { "last" } else { "before" },
                "page forward with `first`/`after` or backward with `last`/`before`, not both",
            ));
        }
        if backward {
            Ok(PageRequest {
                limit: check(self.last.unwrap_or(DEFAULT_PAGE), "last")?,
                cursor: self.before.as_deref().map(|t| cursor(t, "before")).transpose()?,
                backward: true,
            })
        } else {
            Ok(PageRequest {
                limit: check(self.first.unwrap_or(DEFAULT_PAGE), "first")?,
                cursor: self.after.as_deref().map(|t| cursor(t, "after")).transpose()?,
                backward: false,
            })
        }
    }
}

/// What `totalCount` counts; counted only when a client asks for it.
pub enum Total {
    /// Known already.
    Known(i64),
    /// A top-level list, counted with one statement.
    List(ListCount),
    /// Nested lists, counted for every parent of a batch at once.
    NestedDetections(NestedDetections),
    NestedCases(NestedCases),
    /// A case's activity, counted for every case of a batch at once.
    Activity(crate::models::ids::CaseId),
    /// A case's messages, counted for every case of a batch at once.
    NestedMessages(NestedMessages),
}

/// The top-level lists and their filters.
pub enum ListCount {
    Cases(TenantId, Box<CaseFilter>),
    Detections(TenantId, Box<DetectionFilter>),
    Subjects(TenantId, SubjectFilter),
    Users(TenantId, Option<bool>),
    AuditEvents(TenantId, Box<crate::models::events::list::EventFilter>),
    Webhooks(TenantId),
    WebhookDeliveries(TenantId, uuid::Uuid),
}

/// The fields every connection has besides its edges.
pub struct ConnectionTotal(pub Total);

#[Object]
impl ConnectionTotal {
    /// How many items the list holds across all its pages.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let count = match &self.0 {
            Total::Known(count) => *count,
            Total::NestedDetections(key) => {
                let (_, loaders) = viewer_and_loaders(ctx)?;
                loaders.nested_detections.load_one(CountOf(key.clone())).await?.unwrap_or(0)
            }
            Total::NestedCases(key) => {
                let (_, loaders) = viewer_and_loaders(ctx)?;
                loaders.nested_cases.load_one(CountOf(key.clone())).await?.unwrap_or(0)
            }
            Total::Activity(case) => {
                let (_, loaders) = viewer_and_loaders(ctx)?;
                let key = crate::graphql::loaders::ActivityKey::Count(*case);
                match loaders.activity.load_one(key).await? {
                    Some(crate::graphql::loaders::Activity::Count(count)) => count,
                    _ => 0,
                }
            }
            Total::NestedMessages(key) => {
                let (_, loaders) = viewer_and_loaders(ctx)?;
                loaders.nested_messages.load_one(CountOf(key.clone())).await?.unwrap_or(0)
            }
            Total::List(list) => {
                let mut conn = crate::graphql::conn(ctx).await?;
                count_in_database(&mut conn, list).await.map_err(AppError::from)?
            }
        };
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}

/// The count of a top-level list: one statement.
async fn count_in_database(
    conn: &mut diesel_async::AsyncPgConnection,
    list: &ListCount,
) -> diesel::QueryResult<i64> {
    match list {
        ListCount::Cases(tenant, filter) => cases::list::count(conn, *tenant, filter).await,
        ListCount::Detections(tenant, filter) => {
            detections::list::count(conn, *tenant, filter).await
        }
        ListCount::Subjects(tenant, filter) => subjects::count(conn, *tenant, filter).await,
        ListCount::Users(tenant, assignable) => users::count(conn, *tenant, *assignable).await,
        ListCount::AuditEvents(tenant, filter) => {
            crate::models::events::list::count(conn, *tenant, filter).await
        }
        ListCount::Webhooks(tenant) => crate::models::webhooks::count(conn, *tenant).await,
        ListCount::WebhookDeliveries(tenant, webhook) => {
            crate::models::webhooks::count_deliveries(conn, *tenant, *webhook).await
        }
    }
}

pub type Conn<N> = Connection<PageCursor, N, ConnectionTotal, EmptyFields>;

/// An edge's cursor, encoded only when a client reads it (`edges.cursor`, `pageInfo`): a
/// case page of 100 detections that asks for none encodes none.
pub enum PageCursor {
    Encoded(String),
    Deferred(Cursor),
}

impl From<String> for PageCursor {
    fn from(text: String) -> Self {
        PageCursor::Encoded(text)
    }
}

impl From<Cursor> for PageCursor {
    fn from(cursor: Cursor) -> Self {
        PageCursor::Deferred(cursor)
    }
}

impl CursorType for PageCursor {
    type Error = &'static str;

    /// Never called: the paging arguments are read by [`PageArgs::request`] with the
    /// list's own order.
    fn decode_cursor(_: &str) -> Result<Self, Self::Error> {
        Err("cursors are read by the list's order")
    }

    fn encode_cursor(&self) -> String {
        match self {
            PageCursor::Encoded(text) => text.clone(),
            PageCursor::Deferred(cursor) => cursor.encode(),
        }
    }
}

/// The connection of a page: its rows as nodes with their cursors.
pub fn connection<R, N: OutputType, C: Into<PageCursor>>(
    page: Page<R>,
    request: &PageRequest,
    total: Total,
    mut cursor: impl FnMut(&R) -> C,
    mut node: impl FnMut(R) -> N,
) -> Conn<N> {
    let (has_previous, has_next) = if request.backward {
        (page.more, request.cursor.is_some())
    } else {
        (request.cursor.is_some(), page.more)
    };
    let mut connection =
        Connection::with_additional_fields(has_previous, has_next, ConnectionTotal(total));
    connection.edges.extend(page.rows.into_iter().map(|row| {
        let cursor = cursor(&row).into();
        Edge::new(cursor, node(row))
    }));
    connection
}
