//! The `detection` and `detections` queries, and the detection lists of cases and subjects.

use async_graphql::{Context, ID, InputObject, Object};

use crate::error::{AppError, AppResult};
use crate::graphql::cases::inputs::filter_text;
use crate::graphql::detections::{Detection, ListedDetection};
use crate::graphql::ids::{self, Kind};
use crate::graphql::nested::{DetectionParent, DetectionSpec, NestedDetections};
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::scalars::{DateTimeRange, OrderDirection};
use crate::graphql::viewer_and_loaders;
use crate::models::detections::list::{DetectionFilter, DetectionOrder, DetectionOrderField};
use crate::models::enums::{DetectionSource, Severity};
use crate::models::ids::DetectionId;
use crate::models::page::Page;
use std::sync::Arc;

/// Which detections a list holds. Every field given narrows the list.
#[derive(Debug, Clone, Default, InputObject)]
#[graphql(name = "DetectionFilter")]
pub struct DetectionFilterInput {
    /// Detections from any of these sources; absent: every source.
    pub source: Option<Vec<DetectionSource>>,
    /// This severity or worse.
    pub min_severity: Option<Severity>,
    /// Detections observed in this range.
    pub observed_at: Option<DateTimeRange>,
    /// The actor's username, ignoring case (at most 255 characters, like every text filter).
    pub actor: Option<String>,
    /// The device's hostname, ignoring case.
    pub device_hostname: Option<String>,
    /// The rule's name, ignoring case.
    pub rule_name: Option<String>,
    /// The file's SHA-256.
    pub sha256: Option<String>,
    /// true: held by some case; false: by none.
    pub in_case: Option<bool>,
}

impl DetectionFilterInput {
    pub fn into_model(self) -> AppResult<DetectionFilter> {
        Ok(DetectionFilter {
            sources: self.source,
            min_severity: self.min_severity,
            observed_at: self.observed_at.into(),
            actor: filter_text(self.actor, "actor")?,
            device_hostname: filter_text(self.device_hostname, "deviceHostname")?,
            rule_name: filter_text(self.rule_name, "ruleName")?,
            sha256: filter_text(self.sha256, "sha256")?,
            in_case: self.in_case,
        })
    }
}

/// An order of a detection list; the default is OBSERVED_AT DESC. Ties are broken by id.
#[derive(Debug, Clone, Copy, InputObject)]
#[graphql(name = "DetectionOrder")]
pub struct DetectionOrderInput {
    /// What to sort by.
    pub field: DetectionOrderField,
    /// Which way.
    pub direction: OrderDirection,
}

impl From<Option<DetectionOrderInput>> for DetectionOrder {
    fn from(value: Option<DetectionOrderInput>) -> Self {
        value
            .map(|o| DetectionOrder { field: o.field, direction: o.direction.into() })
            .unwrap_or_default()
    }
}

#[derive(Default)]
pub struct DetectionQuery;

#[Object]
impl DetectionQuery {
    /// The detection with this global id; null when there is none in the viewer's tenant.
    /// Every role but INGEST (`FORBIDDEN`).
    async fn detection(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The detection's global id.")] id: ID,
    ) -> async_graphql::Result<Option<Detection>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        let Some((Kind::Detection, uuid)) = ids::decode(&id) else { return Ok(None) };
        Ok(loaders.detections.load_one(DetectionId(uuid)).await?.map(Detection))
    }

    /// The tenant's detections, most recently observed first unless `orderBy` says otherwise.
    /// Every role but INGEST (`FORBIDDEN`); paging arguments or filters out of range
    /// answer `VALIDATION_FAILED`.
    #[allow(clippy::too_many_arguments)]
    async fn detections(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Forward paging: how many detections (1–100; 50 when neither `first` nor `last` is given). Not with `last` or `before`."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Forward paging: the detections after this cursor (an `endCursor` or edge `cursor` of this list in the same order)."
        )]
        after: Option<String>,
        #[graphql(
            desc = "Backward paging: how many detections (1–100), the last ones or those before `before`. Not with `first` or `after`."
        )]
        last: Option<i32>,
        #[graphql(
            desc = "Backward paging: the detections before this cursor (a `startCursor` or edge `cursor` of this list in the same order)."
        )]
        before: Option<String>,
        #[graphql(desc = "Which detections; absent: all of the tenant's.")] filter: Option<
            DetectionFilterInput,
        >,
        #[graphql(desc = "The order; absent: OBSERVED_AT DESC (newest first).")] order_by: Option<
            DetectionOrderInput,
        >,
    ) -> async_graphql::Result<Conn<ListedDetection>> {
        detection_connection(ctx, PageArgs { first, after, last, before }, filter, order_by).await
    }
}

/// A page of the tenant's detections as a connection.
pub async fn detection_connection(
    ctx: &Context<'_>,
    args: PageArgs,
    filter: Option<DetectionFilterInput>,
    order: Option<DetectionOrderInput>,
) -> async_graphql::Result<Conn<ListedDetection>> {
    let filter = filter.unwrap_or_default().into_model()?;
    list(ctx, args, filter, order.into()).await
}

/// A page of a nested detection list (a case's detections, a subject's activity), loaded
/// together with the same list of every other parent in the response.
pub async fn nested_connection(
    ctx: &Context<'_>,
    parent: DetectionParent,
    args: PageArgs,
    filter: DetectionFilter,
    order: DetectionOrder,
    days: Option<i32>,
) -> async_graphql::Result<Conn<ListedDetection>> {
    let (viewer, loaders) = viewer_and_loaders(ctx)?;
    viewer.require_read()?;
    let request = args.request(|text| order.decode_cursor(text))?;
    let spec = Arc::new(DetectionSpec { filter, order, request: request.clone(), days });
    let key = NestedDetections { parent, spec };
    let page = loaders.nested_detections.load_one(key.clone()).await?.unwrap_or_default();
    // Parents of a batch with the same page share it; a page asked for once is not copied.
    let page = Arc::try_unwrap(page)
        .unwrap_or_else(|shared| Page { rows: shared.rows.clone(), more: shared.more });
    Ok(connection(
        page,
        &request,
        Total::NestedDetections(key),
        |row| order.cursor(row),
        |row| ListedDetection(Detection(row.detection)),
    ))
}

/// A page of the detections matching `filter`.
pub async fn list(
    ctx: &Context<'_>,
    args: PageArgs,
    filter: DetectionFilter,
    order: DetectionOrder,
) -> async_graphql::Result<Conn<ListedDetection>> {
    let (viewer, _) = viewer_and_loaders(ctx)?;
    viewer.require_read()?;
    let request = args.request(|text| order.decode_cursor(text))?;
    let mut conn = crate::graphql::conn(ctx).await?;
    let page = crate::models::detections::list::page(
        &mut conn,
        viewer.tenant_id,
        &filter,
        order,
        &request,
    )
    .await
    .map_err(AppError::from)?;
    drop(conn);
    let total = Total::List(ListCount::Detections(viewer.tenant_id, Box::new(filter)));
    Ok(connection(
        page,
        &request,
        total,
        |row| order.cursor(row),
        |row| ListedDetection(Detection(row.detection)),
    ))
}
