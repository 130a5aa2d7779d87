//! Messages: the `Message` type, `postMessage`, and the pages of `Case.messages`.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::messages as ops;
use crate::graphql::cases::Case;
use crate::graphql::ids::{self, Kind};
use crate::graphql::nested::NestedMessages;
use crate::graphql::own_conn;
use crate::graphql::pagination::{Conn, PageArgs, Total, connection};
use crate::graphql::users::User;
use crate::graphql::viewer_and_loaders;
use crate::models::ids::CaseId;
use crate::models::messages;

/// A message on a case.
pub struct Message(pub messages::Message);

/// A message on a case: immutable plain text between the case's team and a provider's
/// analysts. Whoever may read the case reads its messages.
#[Object]
impl Message {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Message, self.0.id.0)
    }

    /// The case the message was posted on.
    async fn case(&self, ctx: &Context<'_>) -> async_graphql::Result<Case> {
        let (_, loaders) = viewer_and_loaders(ctx)?;
        loaders
            .cases
            .load_one(self.0.case_id)
            .await?
            .map(Case)
            .ok_or_else(|| crate::error::AppError::NotFound("case").into())
    }

    /// Who posted it.
    async fn author(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let (_, loaders) = viewer_and_loaders(ctx)?;
        loaders
            .users
            .load_one(self.0.author_id)
            .await?
            .map(User)
            .ok_or_else(|| crate::error::AppError::NotFound("user").into())
    }

    /// The text exactly as it was sent: 1–10,000 characters of plain text.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// When it was posted.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A page of a case's messages, oldest first.
pub async fn case_messages(
    ctx: &Context<'_>,
    case: CaseId,
    args: PageArgs,
) -> async_graphql::Result<Conn<Message>> {
    let (viewer, loaders) = viewer_and_loaders(ctx)?;
    viewer.require_read()?;
    let request = args.request(messages::decode_cursor)?;
    let key = NestedMessages { case, request: Arc::new(request.clone()) };
    let page = loaders.nested_messages.load_one(key.clone()).await?.unwrap_or_default();
    let page = crate::models::page::Page { rows: page.rows.clone(), more: page.more };
    Ok(connection(page, &request, Total::NestedMessages(key), |row| row.cursor().encode(), Message))
}

/// A message to post.
#[derive(InputObject)]
pub struct PostMessageInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The case's global id.
    pub case_id: ID,
    /// Plain text, 1–10,000 characters, stored exactly as sent (not only white space).
    pub body: String,
}

/// What `postMessage` answers.
#[derive(SimpleObject)]
pub struct MessagePayload {
    /// The `clientMutationId` of the input, unchanged.
    pub client_mutation_id: Option<String>,
    /// The posted message.
    pub message: Message,
}

#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Posts a message on an open case. ADMIN, ANALYST, SUPER_ADMIN and PROVIDER_ANALYST
    /// (the provider's team works service requests through messages). Errors:
    /// `FORBIDDEN`, `NOT_FOUND`, `VALIDATION_FAILED` (`body`), `CASE_CLOSED` (resolved),
    /// `CASE_ARCHIVED`.
    async fn post_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The case and the text.")] input: PostMessageInput,
    ) -> async_graphql::Result<MessagePayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let case = CaseId(ids::expect(Kind::Case, &input.case_id, "caseId")?);
        let mut conn = own_conn(ctx).await?;
        let message = ops::post(&mut conn, viewer, case, input.body).await?;
        Ok(MessagePayload {
            client_mutation_id: input.client_mutation_id,
            message: Message(message),
        })
    }
}
