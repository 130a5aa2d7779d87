//! The GraphQL schema: roots merged from one module per domain, limits, and the
//! per-request context (viewer and loaders). Knows nothing of HTTP.

pub mod audit;
pub mod batching;
pub mod cases;
pub mod detections;
pub mod documents;
pub mod errors;
pub mod ids;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod messages;
pub mod nested;
pub mod node;
pub mod notifications;
pub mod operation;
pub mod order;
pub mod pagination;
pub mod pipeline;
pub mod plain;
pub mod scalars;
pub mod stats;
pub mod storable;
pub mod subjects;
pub mod tenants;
pub mod users;
pub mod webhooks;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationDefinition};
use async_graphql::{Context, MergedObject, MergedSubscription, Positioned, Schema};

use std::sync::Arc;

use crate::auth::Viewer;
use crate::config::Limits;
use crate::db::{DbConn, DbPool, LossWitness, pool};
use crate::error::{AppError, RequestId};
use crate::events::EventHub;
use crate::signing::AuditKey;
use crate::storage::Storage;

pub use loaders::Loaders;

/// Everything a client reads, within the tenant of the request's token (sent as
/// `Authorization: Bearer <token>`, or in the WebSocket's `connection_init` payload; none,
/// or one unknown, revoked or expired, answers `UNAUTHENTICATED`).
#[derive(MergedObject, Default)]
pub struct Query(
    node::NodeQuery,
    users::UserQuery,
    tenants::TenantQuery,
    cases::CaseQuery,
    detections::DetectionQuery,
    subjects::SubjectQuery,
    users::UsersListQuery,
    audit::AuditQuery,
    webhooks::WebhookQuery,
    stats::StatsQuery,
);

/// Everything a client changes. Each mutation takes one `input` and answers a payload
/// with the changed objects; a mutation that fails changes nothing and answers an error
/// with a stable `extensions.code` (and `extensions.field` for `VALIDATION_FAILED`).
#[derive(MergedObject, Default)]
pub struct Mutation(
    cases::CaseMutation,
    messages::MessageMutation,
    cases::legal_hold::LegalHoldMutation,
    subjects::SubjectMutation,
    detections::DetectionMutation,
    users::UserMutation,
    tenants::TenantMutation,
    webhooks::WebhookMutation,
    notifications::NotificationMutation,
);

/// Everything a client follows live, over the WebSocket: events read from the change
/// record, replayed from a cursor and then live, on any server.
#[derive(MergedSubscription, Default)]
pub struct Subscription(live::LiveSubscription);

pub type CasefileSchema = Schema<Query, Mutation, Subscription>;

/// What resolvers reach beyond the request: the pool, the key that signs audit
/// checkpoints, the fan-out of the change record, and the evidence store.
pub struct Runtime {
    pub db: DbPool,
    pub audit_key: Arc<AuditKey>,
    pub events: EventHub,
    pub storage: Storage,
    /// How webhook URLs are checked (`CASEFILE_WEBHOOK_ALLOW_PRIVATE`).
    pub webhooks: crate::config::WebhookConfig,
}

/// Builds the schema with its limits. The pool is schema-wide data; the viewer and the
/// loaders are attached to each operation ([`request_data`], [`operation::execute`]).
///
/// Depth, cost and directives are measured by [`limits::QueryLimits`] (coded errors);
/// async-graphql's bound of 64 nested selection sets, the parser's own, stays behind it.
///
/// Subscriptions need the server's [`EventHub`]; without it they answer `INTERNAL` (the
/// schema printer has none).
pub fn build(runtime: Option<Runtime>, limits: &Limits) -> CasefileSchema {
    build_with(runtime, limits, Arc::default())
}

/// [`build`] with the server's document cache (shared with the transports, which parse
/// through it): a validation that passed is not run again for the same document,
/// operation and variables.
pub fn build_with(
    runtime: Option<Runtime>,
    limits: &Limits,
    documents: Arc<documents::Documents>,
) -> CasefileSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        // The only extension: each one costs every field of every response.
        .extension(pipeline::Pipeline::new(limits::QueryLimits::new(limits), documents))
        .limit_recursive_depth(64);
    if !limits.introspection {
        // Suggestions ("did you mean …") would give the schema away field by field.
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder = describe_library_types(builder);
    if let Some(Runtime { db, audit_key, events, storage, webhooks }) = runtime {
        builder = builder.data(db).data(audit_key).data(events).data(storage).data(webhooks);
    }
    builder.finish()
}

/// Descriptions for the types async-graphql defines (the connections, its `DateTime`
/// scalar), which carry none of their own or one written for Rust programmers.
fn describe_library_types(
    builder: async_graphql::SchemaBuilder<Query, Mutation, Subscription>,
) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    use pagination::Conn;
    builder
        .override_output_type_description::<Conn<cases::Case>>(
            "One page of a case list: its cases (as `nodes`, or as `edges` with their cursors), \
             `pageInfo` to fetch the next or previous page, and `totalCount` across all pages.",
        )
        .override_output_type_description::<Conn<detections::Detection>>(
            "One page of a detection list: its detections (as `nodes`, or as `edges` with their \
             cursors), `pageInfo` to fetch the next or previous page, and `totalCount` across all \
             pages.",
        )
        .override_output_type_description::<Conn<subjects::Subject>>(
            "One page of a subject list: its subjects (as `nodes`, or as `edges` with their \
             cursors), `pageInfo` to fetch the next page, and `totalCount` across all pages.",
        )
        .override_output_type_description::<Conn<users::User>>(
            "One page of a user list: its users (as `nodes`, or as `edges` with their cursors), \
             `pageInfo` to fetch the next page, and `totalCount` across all pages.",
        )
        .override_output_type_description::<Conn<audit::AuditEvent>>(
            "One page of the change record, newest first: its events (as `nodes`, or as \
             `edges` with their cursors), `pageInfo` to fetch the next (older) page, and \
             `totalCount` across all pages.",
        )
        .override_output_type_description::<Conn<messages::Message>>(
            "One page of a case's messages, oldest first: its messages (as `nodes`, or as \
             `edges` with their cursors), `pageInfo` to fetch the next or previous page, and \
             `totalCount` across all pages.",
        )
        .override_output_type_description::<Conn<webhooks::Webhook>>(
            "One page of the tenant's webhooks, oldest first: its webhooks (as `nodes`, or as \
             `edges` with their cursors), `pageInfo` to fetch the next page, and `totalCount` \
             across all pages.",
        )
        .override_output_type_description::<Conn<webhooks::WebhookDelivery>>(
            "One page of a webhook's delivery log, newest event first: its deliveries (as \
             `nodes`, or as `edges` with their cursors), `pageInfo` to fetch the next (older) \
             page, and `totalCount` across all pages.",
        )
        .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
            "A point in time: an RFC 3339 string with a time zone offset \
             (`2026-03-31T14:05:00Z`); casefile answers in UTC.",
        )
}

/// The schema in SDL, exactly as `casefile schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    build(None, &Limits::default()).sdl()
}

/// The operation a request runs: the one it names, or the document's only one; `None`
/// when the name selects nothing (validation refuses the request then).
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.iter().find(|(n, _)| n.as_str() == name).map(|(_, operation)| operation)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()
        }
        _ => None,
    }
}

/// What a transport attaches to each operation: the viewer as it is now, and the id that
/// `INTERNAL` errors carry. The loaders are added by [`operation::execute`].
pub fn request_data(viewer: Viewer, request_id: RequestId) -> async_graphql::Data {
    let mut data = async_graphql::Data::default();
    let viewer = Viewer { request_id: uuid::Uuid::parse_str(&request_id.0).ok(), ..viewer };
    data.insert(viewer);
    data.insert(request_id);
    data
}

/// A connection for a resolver's own statement (a list page, a count). While it is out,
/// the operation's loader fetches wait: the rows it brings may ask for the same loaders.
pub async fn conn(ctx: &Context<'_>) -> async_graphql::Result<OperationConn> {
    let hold = ctx.data::<Loaders>().ok().and_then(Loaders::hold);
    let conn = own_conn(ctx).await?;
    Ok(OperationConn { conn, _hold: hold })
}

/// A connection for a mutation's statements: the operation learns when it comes back
/// broken (its errors then say `UNAVAILABLE`, see [`errors`]).
pub async fn own_conn(ctx: &Context<'_>) -> async_graphql::Result<DbConn> {
    let witness = ctx.data::<LossWitness>().ok();
    Ok(pool::get_witnessed(ctx.data::<DbPool>()?, witness).await?)
}

/// A connection taken by [`conn`].
pub struct OperationConn {
    conn: DbConn,
    _hold: Option<batching::Hold>,
}

impl std::ops::Deref for OperationConn {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for OperationConn {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

/// The viewer and the loaders of the current request.
pub fn viewer_and_loaders<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<(&'a Viewer, &'a Loaders)> {
    let viewer = ctx.data::<Viewer>().map_err(|_| AppError::Unauthenticated)?;
    let loaders = ctx.data::<Loaders>().map_err(|_| AppError::Unauthenticated)?;
    Ok((viewer, loaders))
}
