//! The GraphQL schema: roots merged from one module per domain, limits, and the
//! per-request context (viewer and loaders). Knows nothing of HTTP.

pub mod batching;
pub mod cases;
pub mod detections;
pub mod ids;
pub mod loaders;
pub mod nested;
pub mod node;
pub mod pagination;
pub mod scalars;
pub mod subjects;
pub mod tenants;
pub mod users;

use async_graphql::{Context, EmptySubscription, MergedObject, Schema};

use crate::auth::Viewer;
use crate::config::Limits;
use crate::db::DbPool;
use crate::error::AppError;

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
);

/// Everything a client changes. Each mutation takes one `input` and answers a payload
/// with the changed objects; a mutation that fails changes nothing and answers an error
/// with a stable `extensions.code` (and `extensions.field` for `VALIDATION_FAILED`).
#[derive(MergedObject, Default)]
pub struct Mutation(
    cases::CaseMutation,
    subjects::SubjectMutation,
    detections::DetectionMutation,
    users::UserMutation,
    tenants::TenantMutation,
);

pub type CasefileSchema = Schema<Query, Mutation, EmptySubscription>;

/// Builds the schema with its limits. The pool is schema-wide data; the viewer and the
/// loaders are attached to each request by [`request_data`].
pub fn build(db: Option<DbPool>, limits: &Limits) -> CasefileSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(32);
    builder = describe_library_types(builder);
    if let Some(db) = db {
        builder = builder.data(db);
    }
    builder.finish()
}

/// Descriptions for the types async-graphql defines (the connections, its `DateTime`
/// scalar), which carry none of their own or one written for Rust programmers.
fn describe_library_types(
    builder: async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription>,
) -> async_graphql::SchemaBuilder<Query, Mutation, EmptySubscription> {
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
        .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
            "A point in time: an RFC 3339 string with a time zone offset \
             (`2026-03-31T14:05:00Z`); casefile answers in UTC.",
        )
}

/// The schema in SDL, exactly as `casefile schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    build(None, &Limits::default()).sdl()
}

/// What every operation of one request (or one WebSocket connection) can reach. With a
/// gate, the loaders batch by resolution pass (run the execution with [`batching::Gate::run`]).
pub fn request_data(
    db: &DbPool,
    viewer: Viewer,
    gate: Option<std::sync::Arc<batching::Gate>>,
) -> async_graphql::Data {
    let mut data = async_graphql::Data::default();
    data.insert(viewer);
    data.insert(Loaders::new(db.clone(), viewer.tenant_id, gate));
    data
}

/// The viewer and the loaders of the current request.
pub fn viewer_and_loaders<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<(&'a Viewer, &'a Loaders)> {
    let viewer = ctx.data::<Viewer>().map_err(|_| AppError::Unauthenticated)?;
    let loaders = ctx.data::<Loaders>().map_err(|_| AppError::Unauthenticated)?;
    Ok((viewer, loaders))
}
