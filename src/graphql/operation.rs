//! What each operation gets of its own, on every transport: loaders scoped to the
//! viewer's tenant, and a batching gate around its execution.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute};
use async_graphql::{Data, Response};

use crate::auth::Viewer;
use crate::db::DbPool;
use crate::graphql::Loaders;
use crate::graphql::batching::Gate;

/// Registers the per-operation data on a schema. The transport attaches the viewer (and
/// the request id) to each request; the extension adds the loaders when execution starts.
pub struct PerOperation;

impl ExtensionFactory for PerOperation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerOperation)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for PerOperation {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let (Ok(db), Ok(viewer)) = (ctx.data::<DbPool>(), ctx.data::<Viewer>()) else {
            // No viewer (the schema printer) or no database: nothing to load.
            return next.run(ctx, operation_name).await;
        };
        let gate = Gate::new();
        let mut data = Data::default();
        data.insert(Loaders::new(db.clone(), viewer.tenant_id, &gate));
        gate.run(next.run_with_data(ctx, operation_name, data)).await
    }
}
