//! Relay object identification: the `Node` interface, `node` and `nodes`.

use async_graphql::{Context, ID, Interface, Object};
use futures_util::future::try_join_all;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::graphql::audit::AuditEvent;
use crate::graphql::cases::Case;
use crate::graphql::detections::Detection;
use crate::graphql::messages::Message;
use crate::graphql::subjects::Subject;
use crate::graphql::users::{ApiToken, User};
use crate::graphql::webhooks::Webhook;
use crate::graphql::{Loaders, ids, tenants::Tenant, viewer_and_loaders};
use crate::models::ids::{CaseId, DetectionId, MessageId, SubjectId, TenantId, TokenId, UserId};

/// Most ids one `nodes` call may ask for.
pub const MAX_NODES: usize = 100;

/// An object with a global id that `node` can fetch again.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global id: opaque, stable, unique across types."))]
pub enum Node {
    Tenant(Tenant),
    User(User),
    Case(Case),
    Detection(Detection),
    Subject(Subject),
    ApiToken(ApiToken),
    AuditEvent(AuditEvent),
    Message(Message),
    Webhook(Webhook),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this global id, or null when there is none the viewer may see.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id, as any object's `id` field gives it.")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        load(viewer, loaders, &id).await
    }

    /// The objects with these global ids, in the same order, null where there is none (at most 100 ids).
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100 global ids (more: `VALIDATION_FAILED`).")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        if ids.len() > MAX_NODES {
            return Err(AppError::validation("ids", format!("at most {MAX_NODES} ids")).into());
        }
        try_join_all(ids.iter().map(|id| load(viewer, loaders, id))).await
    }
}

async fn load(viewer: &Viewer, loaders: &Loaders, id: &ID) -> async_graphql::Result<Option<Node>> {
    let Some((kind, uuid)) = ids::decode(id) else { return Ok(None) };
    Ok(match kind {
        ids::Kind::Tenant => {
            loaders.tenants.load_one(TenantId(uuid)).await?.map(|t| Node::Tenant(Tenant(t)))
        }
        ids::Kind::User => loaders.users.load_one(UserId(uuid)).await?.map(|u| Node::User(User(u))),
        ids::Kind::Case => loaders.cases.load_one(CaseId(uuid)).await?.map(|c| Node::Case(Case(c))),
        ids::Kind::Detection => loaders
            .detections
            .load_one(DetectionId(uuid))
            .await?
            .map(|d| Node::Detection(Detection(d))),
        ids::Kind::Subject => {
            loaders.subjects.load_one(SubjectId(uuid)).await?.map(|s| Node::Subject(Subject(s)))
        }
        // A token is visible to an ADMIN and to its own user only.
        // ADMIN sees every event; other readers those of a case they can read.
        ids::Kind::AuditEvent => match loaders.audit_events.load_one(uuid).await? {
            Some(event) if viewer.role == crate::models::users::Role::Admin => {
                Some(Node::AuditEvent(AuditEvent(event)))
            }
            Some(event) => match event.case_id {
                Some(case) if loaders.cases.load_one(case).await?.is_some() => {
                    Some(Node::AuditEvent(AuditEvent(event)))
                }
                _ => None,
            },
            None => None,
        },
        ids::Kind::ApiToken => loaders
            .api_tokens
            .load_one(TokenId(uuid))
            .await?
            .map(ApiToken)
            .filter(|t| t.visible_to(viewer))
            .map(Node::ApiToken),
        ids::Kind::Message => {
            loaders.messages.load_one(MessageId(uuid)).await?.map(|m| Node::Message(Message(m)))
        }
        // Webhooks are an ADMIN's.
        ids::Kind::Webhook if viewer.role == crate::models::users::Role::Admin => {
            loaders.webhooks.load_one(uuid).await?.map(|w| Node::Webhook(Webhook(w)))
        }
        ids::Kind::Webhook => None,
    })
}
