//! Webhooks: the `Webhook` type with its delivery log, `Query.webhooks` and the
//! `createWebhook`, `updateWebhook`, `deleteWebhook` mutations (ADMIN only).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::config::WebhookConfig;
use crate::domain::access;
use crate::domain::webhooks::{self as domain, WebhookDraft};
use crate::error::AppError;
use crate::events::cursor::EventCursor;
use crate::graphql::ids::{self, Kind};
use crate::graphql::own_conn;
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::viewer_and_loaders;
use crate::models::events::CaseEventKind;
use crate::models::webhooks;

/// An endpoint that receives the tenant's case events as signed JSON POSTs.
pub struct Webhook(pub webhooks::Webhook);

/// An HTTPS (or HTTP) endpoint that receives the tenant's case events as signed JSON
/// POSTs, at least once and in order. Visible to ADMIN users only; its secret never is.
#[Object]
impl Webhook {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Webhook, self.0.id)
    }

    /// Where events are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The case event kinds delivered; empty: every kind.
    async fn event_kinds(&self) -> Vec<CaseEventKind> {
        self.0.kinds().filter_map(CaseEventKind::parse).collect()
    }

    /// Whether events are delivered. A disabled endpoint keeps its place: enabling it
    /// again delivers from the first event it had not delivered.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Why it is disabled (after `CASEFILE_WEBHOOK_MAX_ATTEMPTS` failures in a row, or
    /// by an ADMIN); null while enabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// When it was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The delivery log, newest event first: one entry per event sent (or being sent),
    /// with its attempts and the last answer.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many deliveries (1–100; default 50).")] first: Option<i32>,
        #[graphql(desc = "The deliveries after this cursor (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<Conn<WebhookDelivery>> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let request = PageArgs::forward(first, after).request(webhooks::decode_delivery_cursor)?;
        let mut conn = crate::graphql::conn(ctx).await?;
        let page = webhooks::deliveries(&mut conn, viewer.tenant_id, self.0.id, &request)
            .await
            .map_err(AppError::from)?;
        drop(conn);
        let total = Total::List(ListCount::WebhookDeliveries(viewer.tenant_id, self.0.id));
        Ok(connection(page, &request, total, webhooks::delivery_cursor, WebhookDelivery))
    }
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeliveryStatus {
    /// Not delivered yet: being sent, or waiting for its next attempt.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: the endpoint was disabled on this delivery's last failure.
    Failed,
}

/// One event sent to one endpoint, over all its attempts.
pub struct WebhookDelivery(pub webhooks::LoggedDelivery);

/// One event sent to one endpoint, over all its attempts. Its `id` is the
/// `X-Casefile-Delivery` header and the body's `id`, the same on every attempt.
#[Object]
impl WebhookDelivery {
    /// The delivery id (as in the `X-Casefile-Delivery` header).
    async fn id(&self) -> ID {
        ID(self.0.delivery.id.to_string())
    }

    /// The cursor of the delivered event (as live subscriptions and the body's `cursor` give it).
    async fn event_cursor(&self) -> String {
        let d = &self.0.delivery;
        let hash = self.0.event_hash.chars().take(16).collect();
        EventCursor { tenant: d.tenant_id, sequence: d.event_sequence, hash }.encode()
    }

    /// The event's case event kind.
    async fn kind(&self) -> async_graphql::Result<CaseEventKind> {
        let kind = &self.0.delivery.kind;
        CaseEventKind::parse(kind)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("stored kind {kind}")).into())
    }

    /// Where the delivery stands.
    async fn status(&self) -> DeliveryStatus {
        match self.0.delivery.status.as_str() {
            "DELIVERED" => DeliveryStatus::Delivered,
            "FAILED" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }

    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.delivery.attempts
    }

    /// The HTTP status of the last answer; null when there was none (no connection, a
    /// timeout, a refused address).
    async fn last_status_code(&self) -> Option<i32> {
        self.0.delivery.last_status_code
    }

    /// What went wrong at the last failed attempt; null after success.
    async fn last_error(&self) -> Option<&str> {
        let d = &self.0.delivery;
        if d.status == "DELIVERED" { None } else { d.last_error.as_deref() }
    }

    /// When the endpoint accepted it; null until then.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivery.delivered_at
    }
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The tenant's webhooks, oldest first. ADMIN only (`FORBIDDEN`).
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many webhooks (1–100; default 50).")] first: Option<i32>,
        #[graphql(desc = "The webhooks after this cursor (an `endCursor` of this list).")]
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Webhook>> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let request = PageArgs::forward(first, after).request(webhooks::decode_cursor)?;
        let mut conn = crate::graphql::conn(ctx).await?;
        let page =
            webhooks::page(&mut conn, viewer.tenant_id, &request).await.map_err(AppError::from)?;
        drop(conn);
        let total = Total::List(ListCount::Webhooks(viewer.tenant_id));
        Ok(connection(page, &request, total, webhooks::cursor, Webhook))
    }
}

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
    /// An http or https URL without credentials, whose host is public (unless the server
    /// allows private addresses).
    pub url: String,
    /// The case event kinds to deliver; absent or empty: every kind.
    pub event_kinds: Option<Vec<CaseEventKind>>,
    /// The HMAC-SHA256 key of the signatures (16–1024 characters). Write-only.
    pub secret: String,
}

/// What `updateWebhook` changes: an absent field is left alone.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
    /// The webhook to change.
    pub id: ID,
    /// A new URL (checked as at creation).
    pub url: Option<String>,
    /// New event kinds; empty: every kind.
    pub event_kinds: Option<Vec<CaseEventKind>>,
    /// A new secret (16–1024 characters), used from the next attempt on.
    pub secret: Option<String>,
    /// `true` enables it (a disabled one resumes from where it stopped); `false` pauses it.
    pub enabled: Option<bool>,
}

/// A webhook to delete.
#[derive(InputObject)]
pub struct DeleteWebhookInput {
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
    /// The webhook to delete.
    pub id: ID,
}

/// The result of `createWebhook` and `updateWebhook`.
#[derive(SimpleObject)]
pub struct WebhookPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The webhook as it is after the mutation.
    pub webhook: Webhook,
}

/// The result of `deleteWebhook`.
#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The deleted webhook's id.
    pub deleted_id: ID,
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Registers an endpoint (ADMIN). It receives the case events committed from now on.
    /// Errors: `FORBIDDEN`, `VALIDATION_FAILED` (`url`: not http(s), credentials, a
    /// non-public host; `secret`).
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] input: CreateWebhookInput,
    ) -> async_graphql::Result<WebhookPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let draft = WebhookDraft {
            url: Some(input.url),
            event_kinds: input.event_kinds,
            secret: Some(input.secret),
            enabled: None,
        };
        let config = ctx.data::<WebhookConfig>()?;
        let mut conn = own_conn(ctx).await?;
        let hook = domain::create(&mut conn, viewer, config, draft).await?;
        Ok(WebhookPayload { client_mutation_id: input.client_mutation_id, webhook: Webhook(hook) })
    }

    /// Changes an endpoint (ADMIN); `enabled: true` re-enables a disabled one, which
    /// resumes from the first event it had not delivered. Errors: `FORBIDDEN`,
    /// `NOT_FOUND`, `VALIDATION_FAILED`.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook and what to change.")] input: UpdateWebhookInput,
    ) -> async_graphql::Result<WebhookPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let id = ids::expect(Kind::Webhook, &input.id, "id")?;
        let draft = WebhookDraft {
            url: input.url,
            event_kinds: input.event_kinds,
            secret: input.secret,
            enabled: input.enabled,
        };
        let config = ctx.data::<WebhookConfig>()?;
        let mut conn = own_conn(ctx).await?;
        let hook = domain::update(&mut conn, viewer, config, id, draft).await?;
        Ok(WebhookPayload { client_mutation_id: input.client_mutation_id, webhook: Webhook(hook) })
    }

    /// Deletes an endpoint and its delivery log (ADMIN). Errors: `FORBIDDEN`, `NOT_FOUND`.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook to delete.")] input: DeleteWebhookInput,
    ) -> async_graphql::Result<DeleteWebhookPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(access::ADMINISTER)?;
        let id = ids::expect(Kind::Webhook, &input.id, "id")?;
        let mut conn = own_conn(ctx).await?;
        let deleted = domain::delete(&mut conn, viewer, id).await?;
        Ok(DeleteWebhookPayload {
            client_mutation_id: input.client_mutation_id,
            deleted_id: ids::encode(Kind::Webhook, deleted),
        })
    }
}
