//! Webhook endpoints: ADMINs register, change and delete them; every change is recorded
//! (never the secret). Each webhook has its delivery channel (`webhook:<uuid>`, see
//! [`crate::delivery::webhooks`]) opened at the tenant's head when it is created.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Viewer;
use crate::config::WebhookConfig;
use crate::delivery::address;
use crate::domain::access;
use crate::domain::record::{Changes, global_id, record};
use crate::error::{AppError, AppResult};
use crate::graphql::ids::Kind;
use crate::models::delivery as cursors;
use crate::models::events::{CaseEventKind, NewEvent, Origin};
use crate::models::ids::TenantId;
use crate::models::webhooks::{self, NewWebhook, Webhook, WebhookChanges};

/// Shortest and longest secret accepted (characters).
pub const SECRET_LENGTH: std::ops::RangeInclusive<usize> = 16..=1024;
/// The reason shown for an endpoint an ADMIN disabled.
pub const DISABLED_BY_ADMIN: &str = "disabled by an administrator";

/// What `createWebhook` / `updateWebhook` set (`None`: left alone on update).
#[derive(Debug, Default, Clone)]
pub struct WebhookDraft {
    pub url: Option<String>,
    pub event_kinds: Option<Vec<CaseEventKind>>,
    pub secret: Option<String>,
    pub enabled: Option<bool>,
}

/// A checked URL: http(s), no credentials, and a public host unless allowed.
async fn checked_url(text: &str, config: &WebhookConfig) -> AppResult<String> {
    let url = address::parse(text).map_err(|e| AppError::validation("url", e))?;
    address::resolve(&url, config.webhook_allow_private)
        .await
        .map_err(|e| AppError::validation("url", e))?;
    Ok(url.to_string())
}

fn checked_secret(secret: &str) -> AppResult<&str> {
    let length = secret.chars().count();
    if !SECRET_LENGTH.contains(&length) || secret.trim().is_empty() {
        return Err(AppError::validation(
            "secret",
            format!(
                "the secret must be {} to {} characters",
                SECRET_LENGTH.start(),
                SECRET_LENGTH.end()
            ),
        ));
    }
    Ok(secret)
}

fn kinds(kinds: &[CaseEventKind]) -> Vec<String> {
    let mut names: Vec<String> = kinds.iter().map(|k| k.as_str().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

/// Registers an endpoint; deliveries start with the next change (no history).
pub async fn create(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    config: &WebhookConfig,
    draft: WebhookDraft,
) -> AppResult<Webhook> {
    viewer.require(access::ADMINISTER)?;
    let url = checked_url(draft.url.as_deref().unwrap_or_default(), config).await?;
    let secret = checked_secret(draft.secret.as_deref().unwrap_or_default())?;
    let now = Utc::now();
    let new = NewWebhook {
        id: Uuid::now_v7(),
        tenant_id: viewer.tenant_id,
        url: &url,
        event_kinds: kinds(draft.event_kinds.as_deref().unwrap_or_default()),
        secret,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let hook = webhooks::insert(conn, &new).await?;
        cursors::open(conn, viewer.tenant_id, &hook.channel()).await?;
        let changes = Changes::new()
            .field("url", Value::Null, &hook.url)
            .field("eventKinds", Value::Null, hook.kinds().collect::<Vec<_>>())
            .field("enabled", Value::Null, true)
            .into_value();
        let event = NewEvent::new("webhook.created").target(id(&hook)).changes(changes);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(hook)
    })
    .await
}

/// Changes an endpoint. `enabled: true` on a disabled one resumes delivery where it
/// stopped; `enabled: false` pauses it.
pub async fn update(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    config: &WebhookConfig,
    id_: Uuid,
    draft: WebhookDraft,
) -> AppResult<Webhook> {
    viewer.require(access::ADMINISTER)?;
    let url = match draft.url.as_deref() {
        Some(text) => Some(checked_url(text, config).await?),
        None => None,
    };
    let secret = draft.secret.as_deref().map(checked_secret).transpose()?.map(str::to_owned);
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let before = webhooks::lock(conn, viewer.tenant_id, id_)
            .await?
            .ok_or(AppError::NotFound("webhook"))?;
        let enabling = draft.enabled == Some(true) && !before.enabled;
        let disabling = draft.enabled == Some(false) && before.enabled;
        let changes = WebhookChanges {
            url,
            event_kinds: draft.event_kinds.as_deref().map(kinds),
            secret,
            enabled: draft.enabled,
            disabled_reason: if enabling {
                Some(None)
            } else if disabling {
                Some(Some(DISABLED_BY_ADMIN.to_owned()))
            } else {
                None
            },
            updated_at: Some(Utc::now()),
        };
        let after = webhooks::update(conn, viewer.tenant_id, id_, &changes).await?;
        if enabling {
            cursors::resume(conn, viewer.tenant_id, &after.channel()).await?;
        } else if disabling {
            cursors::pause(conn, viewer.tenant_id, &after.channel(), DISABLED_BY_ADMIN).await?;
        }
        let mut record_changes = Changes::new()
            .diff("url", &before.url, &after.url)
            .diff("eventKinds", before.kinds().collect::<Vec<_>>(), after.kinds().collect())
            .diff("enabled", before.enabled, after.enabled)
            .diff("disabledReason", &before.disabled_reason, &after.disabled_reason);
        if changes.secret.is_some() {
            record_changes = record_changes.fact("secretChanged", true);
        }
        if !record_changes.is_empty() {
            let event = NewEvent::new("webhook.updated")
                .target(id(&after))
                .changes(record_changes.into_value());
            record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        }
        Ok(after)
    })
    .await
}

/// Deletes an endpoint, its delivery log and its channel.
pub async fn delete(conn: &mut AsyncPgConnection, viewer: &Viewer, id_: Uuid) -> AppResult<Uuid> {
    viewer.require(access::ADMINISTER)?;
    let viewer = *viewer;
    conn.transaction(async |conn| {
        let hook = webhooks::lock(conn, viewer.tenant_id, id_)
            .await?
            .ok_or(AppError::NotFound("webhook"))?;
        webhooks::delete(conn, viewer.tenant_id, id_).await?;
        cursors::close(conn, viewer.tenant_id, &hook.channel()).await?;
        let changes = Changes::new().field("url", &hook.url, Value::Null).into_value();
        let event = NewEvent::new("webhook.deleted").target(id(&hook)).changes(changes);
        record(conn, viewer.tenant_id, &viewer.origin(), vec![event]).await?;
        Ok(hook.id)
    })
    .await
}

/// Disables an endpoint that failed too often (casefile itself: a SYSTEM event) and
/// pauses its channel; nothing when it is gone or disabled already.
pub async fn disable(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id_: Uuid,
    reason: &str,
) -> AppResult<()> {
    conn.transaction(async |conn| {
        let Some(before) = webhooks::lock(conn, tenant, id_).await? else { return Ok(()) };
        if !before.enabled {
            return Ok(());
        }
        let changes = WebhookChanges {
            enabled: Some(false),
            disabled_reason: Some(Some(reason.to_owned())),
            updated_at: Some(Utc::now()),
            ..WebhookChanges::default()
        };
        let after = webhooks::update(conn, tenant, id_, &changes).await?;
        cursors::pause(conn, tenant, &after.channel(), reason).await?;
        let record_changes = Changes::new()
            .field("enabled", true, false)
            .field("disabledReason", Value::Null, reason)
            .into_value();
        let event = NewEvent::new("webhook.disabled").target(id(&after)).changes(record_changes);
        record(conn, tenant, &Origin::system(), vec![event]).await?;
        Ok(())
    })
    .await
}

fn id(hook: &Webhook) -> String {
    global_id(Kind::Webhook, hook.id)
}
