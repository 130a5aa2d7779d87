//! The `case` and `cases` queries.

use async_graphql::{Context, ID, Object};

use crate::error::AppError;
use crate::graphql::cases::inputs::{CaseFilterInput, CaseOrderInput};
use crate::graphql::cases::{Case, ListedCase};
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::viewer_and_loaders;
use crate::models::cases::{self, list::CaseFilter, list::CaseOrder};
use crate::models::ids::CaseId;

#[derive(Default)]
pub struct CaseQuery;

#[Object]
impl CaseQuery {
    /// The case with this global id or this number; null when there is none in the
    /// viewer's tenant. Give exactly one of `id` and `number` (else `VALIDATION_FAILED`).
    /// Every role but INGEST (`FORBIDDEN`).
    async fn case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case's global id.")] id: Option<ID>,
        #[graphql(desc = "The case's number in the tenant.")] number: Option<i32>,
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
    /// updated first unless `orderBy` says otherwise. Every role but INGEST (`FORBIDDEN`);
    /// paging arguments or filters out of range answer `VALIDATION_FAILED`.
    #[allow(clippy::too_many_arguments)]
    async fn cases(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Forward paging: how many cases (1–100; 50 when neither `first` nor `last` is given). Not with `last` or `before`."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Forward paging: the cases after this cursor (an `endCursor` or edge `cursor` of this list in the same order)."
        )]
        after: Option<String>,
        #[graphql(
            desc = "Backward paging: how many cases (1–100), the last ones or those before `before`. Not with `first` or `after`."
        )]
        last: Option<i32>,
        #[graphql(
            desc = "Backward paging: the cases before this cursor (a `startCursor` or edge `cursor` of this list in the same order)."
        )]
        before: Option<String>,
        #[graphql(desc = "Which cases; absent: the open ones.")] filter: Option<CaseFilterInput>,
        #[graphql(desc = "The order; absent: UPDATED_AT DESC (most recently changed first).")]
        order_by: Option<CaseOrderInput>,
    ) -> async_graphql::Result<Conn<ListedCase>> {
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
) -> async_graphql::Result<Conn<ListedCase>> {
    let (viewer, _) = viewer_and_loaders(ctx)?;
    viewer.require_read()?;
    let request = args.request(|text| order.decode_cursor(text))?;
    let mut conn = crate::graphql::conn(ctx).await?;
    let (page, total) = if ctx.look_ahead().field("totalCount").exists() {
        // Asked for: counted by the statement that reads the page.
        let (page, count) =
            cases::list::page_and_count(&mut conn, viewer.tenant_id, &filter, order, &request)
                .await
                .map_err(AppError::from)?;
        (page, Total::Known(count))
    } else {
        let page = cases::list::page(&mut conn, viewer.tenant_id, &filter, order, &request)
            .await
            .map_err(AppError::from)?;
        (page, Total::List(ListCount::Cases(viewer.tenant_id, Box::new(filter))))
    };
    drop(conn);
    Ok(connection(page, &request, total, |c| order.cursor(c), |c| ListedCase(Case(c))))
}
