//! The GraphQL schema: roots merged from one module per domain, limits, and the
//! per-request context (viewer and loaders). Knows nothing of HTTP.

pub mod batching;
pub mod cases;
pub mod detections;
pub mod ids;
pub mod limits;
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

/// The root query: one part per domain.
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

/// The root mutation: one part per domain.
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
///
/// Depth, cost and directives are measured by [`limits::QueryLimits`] (coded errors);
/// async-graphql's bound of 64 nested selection sets, the parser's own, stays behind it.
pub fn build(db: Option<DbPool>, limits: &Limits) -> CasefileSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_recursive_depth(64)
        .extension(limits::QueryLimits::new(limits));
    if let Some(db) = db {
        builder = builder.data(db);
    }
    builder.finish()
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
