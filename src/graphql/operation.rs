//! What each operation gets of its own, on every transport: loaders scoped to the
//! viewer's tenant, and a batching gate around its execution.

use async_graphql::Data;
use async_graphql::extensions::{ExtensionContext, NextExecute};

use crate::auth::Viewer;
use crate::db::{DbPool, LossWitness};
use crate::graphql::Loaders;
use crate::graphql::batching::Gate;

/// Runs an operation's execution with its loaders and gate (the `execute` step of the
/// schema's one extension, [`super::pipeline`]). The transport attaches the viewer (and
/// the request id) to each request; the loaders are added here.
/// `witness` learns of any connection of the operation that comes back broken.
pub(crate) async fn execute(
    ctx: &ExtensionContext<'_>,
    operation_name: Option<&str>,
    witness: LossWitness,
    next: NextExecute<'_>,
) -> async_graphql::Response {
    let mut data = Data::default();
    data.insert(witness.clone());
    let (Ok(db), Ok(viewer)) = (ctx.data::<DbPool>(), ctx.data::<Viewer>()) else {
        // No viewer (the schema printer) or no database: nothing to load.
        return next.run_with_data(ctx, operation_name, data).await;
    };
    let gate = Gate::new();
    data.insert(Loaders::new(db.clone(), viewer.tenant_id, &gate, Some(witness)));
    gate.run(next.run_with_data(ctx, operation_name, data)).await
}
