//! The `case` and `cases` queries.

use async_graphql::{Context, ID, Object};

use crate::error::AppError;
use crate::graphql::cases::Case;
use crate::graphql::cases::inputs::{CaseFilterInput, CaseOrderInput};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::viewer_and_loaders;
use crate::models::cases::{self, list::CaseFilter, list::CaseOrder};
use crate::models::ids::CaseId;

#[derive(Default)]
pub struct CaseQuery;

#[Object]
impl CaseQuery {
    /// The case with this global id or this number; null when there is none.
    async fn case(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        number: Option<i32>,
    ) -> async_graphql::Result<Option<Case>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        match (id, number) {
            (Some(id), None) => {
                let Some((Kind::Case, uuid)) = ids::decode(&id) else { return Ok(None) };
                Ok(loaders.cases.load_one(CaseId(uuid)).await?.map(Case))
            }
            (None, Some(number)) => {
                let mut conn = crate::graphql::conn(ctx).await?;
                let case = cases::find_by_number(&mut conn, viewer.tenant_id, number)
                    .await
                    .map_err(AppError::from)?;
                Ok(case.map(Case))
            }
            _ => Err(AppError::validation("id", "give either `id` or `number`").into()),
        }
    }

    /// The tenant's cases: open ones unless `filter.status` says otherwise, most recently
    /// updated first unless `orderBy` says otherwise.
    #[allow(clippy::too_many_arguments)]
    async fn cases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<CaseFilterInput>,
        order_by: Option<CaseOrderInput>,
    ) -> async_graphql::Result<Conn<Case>> {
        let filter = filter.unwrap_or_default().into_model()?;
        case_connection(ctx, PageArgs { first, after, last, before }, filter, order_by.into()).await
    }
}

/// A page of cases as a connection; used by `cases` and by `Subject.cases`.
pub async fn case_connection(
    ctx: &Context<'_>,
    args: PageArgs,
    filter: CaseFilter,
    order: CaseOrder,
) -> async_graphql::Result<Conn<Case>> {
    let (viewer, _) = viewer_and_loaders(ctx)?;
    viewer.require_read()?;
    let request = args.request(|text| order.decode_cursor(text))?;
    let mut conn = crate::graphql::conn(ctx).await?;
    let page = cases::list::page(&mut conn, viewer.tenant_id, &filter, order, &request)
        .await
        .map_err(AppError::from)?;
    drop(conn);
    let total = Total::List(ListCount::Cases(viewer.tenant_id, Box::new(filter)));
    Ok(connection(page, &request, total, |c| order.cursor(c), Case))
}
