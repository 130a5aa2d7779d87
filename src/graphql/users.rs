//! Users: the `User` type and the `viewer` query.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::admin;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::own_conn;
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::viewer_and_loaders;
use crate::models::ids::{TokenId, UserId};
use crate::models::tokens;
use crate::models::users::{self, Role};

/// A person or integration with access to the tenant.
pub struct User(pub users::User);

/// A person or integration with access to the tenant, signed in with API tokens. Every
/// role but INGEST reads the tenant's users; ADMIN users add them.
#[Object]
impl User {
    /// Global id.
    pub async fn id(&self) -> ID {
        ids::encode(ids::Kind::User, self.0.id.0)
    }

    /// Sign-in email, unique in the tenant.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// Name shown to people.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// What the user may do.
    async fn role(&self) -> Role {
        self.0.role
    }

    /// Whether cases can be assigned to this user (active admins and analysts only).
    async fn assignable(&self) -> bool {
        self.0.assignable()
    }

    /// Whether the user may sign in: a deactivated user's tokens answer `UNAUTHENTICATED`
    /// and it cannot be assigned (cases it is assigned to keep it until reassigned).
    async fn active(&self) -> bool {
        self.0.active
    }

    /// The user's API tokens, oldest first, revoked and expired ones included (secrets are
    /// never shown again). Only an ADMIN or the user itself may read them: anyone else gets
    /// `FORBIDDEN` on this field.
    async fn api_tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiToken>> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        crate::domain::access::require_token_reader(viewer, self.0.id)?;
        let tokens = loaders.user_tokens.load_one(self.0.id).await?.unwrap_or_default();
        Ok(tokens.into_iter().map(ApiToken).collect())
    }
}

/// An API token of a user: its secret is shown once at creation and never again.
pub struct ApiToken(pub tokens::ApiToken);

impl ApiToken {
    /// Whether `viewer` may see this token: an ADMIN, or the token's own user.
    pub fn visible_to(&self, viewer: &crate::auth::Viewer) -> bool {
        crate::domain::access::require_token_reader(viewer, self.0.user_id).is_ok()
    }
}

/// An API token of a user: what it is called, when it was made, last used, and when it
/// expires or was revoked. Its secret is shown once, by `createApiToken`, and never again.
/// Visible to ADMINs and to the token's own user.
#[Object]
impl ApiToken {
    /// Global id (what `revokeApiToken` takes).
    pub async fn id(&self) -> ID {
        ids::encode(Kind::ApiToken, self.0.id.0)
    }

    /// The name given at creation, to tell tokens apart.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// When the token was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the token stops working; null: never.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// When the token was last used (recorded at most once a minute); null: never.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }

    /// When the token was revoked; null while it is not.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The user the request's token belongs to (any role, INGEST included).
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let (viewer, loaders) = viewer_and_loaders(ctx)?;
        let user =
            loaders.users.load_one(viewer.user_id).await?.ok_or(AppError::Unauthenticated)?;
        Ok(User(user))
    }
}

#[Object]
impl UsersListQuery {
    /// The tenant's users by e-mail; `assignable: true` lists only those cases can be
    /// assigned to (admins and analysts). Every role but INGEST (`FORBIDDEN`).
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many users (1–100; default 50).")] first: Option<i32>,
        #[graphql(
            desc = "The users after this cursor (an `endCursor` or edge `cursor` of this list)."
        )]
        after: Option<String>,
        #[graphql(
            desc = "true: only ADMIN and ANALYST users; false: only the others; absent: all."
        )]
        assignable: Option<bool>,
    ) -> async_graphql::Result<Conn<User>> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require_read()?;
        let request = PageArgs::forward(first, after).request(users::decode_cursor)?;
        let mut conn = crate::graphql::conn(ctx).await?;
        let page = users::page(&mut conn, viewer.tenant_id, assignable, &request)
            .await
            .map_err(AppError::from)?;
        drop(conn);
        let total = Total::List(ListCount::Users(viewer.tenant_id, assignable));
        Ok(connection(page, &request, total, users::cursor, User))
    }
}

#[derive(Default)]
pub struct UsersListQuery;

/// A new user of the viewer's tenant.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The sign-in e-mail address, unique in the tenant (`NAME_TAKEN`).
    pub email: String,
    /// The name shown to people (1–200 characters).
    pub display_name: String,
    /// What the user may do.
    pub role: Role,
}

/// The result of a user mutation.
#[derive(SimpleObject)]
pub struct UserPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The user as it is after the mutation.
    pub user: User,
}

/// What `updateUser` changes: an absent or null field is left alone.
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
    /// The user to change.
    pub id: ID,
    /// A new name shown to people (1–200 characters, trimmed).
    pub display_name: Option<String>,
    /// A new role; it applies from the user's next request or WebSocket operation.
    pub role: Option<Role>,
    /// `false` deactivates the user (its tokens stop working at once), `true` reactivates it.
    pub active: Option<bool>,
}

/// A new API token and the user it signs in as.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The user of the tenant the token belongs to.
    pub user_id: ID,
    /// What the token is for, shown in token lists (1–100 characters).
    pub name: String,
    /// When the token stops working (in the future); never expires when absent.
    #[graphql(validator(custom = "crate::graphql::scalars::storable_time"))]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The result of `createApiToken`.
#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The token's id, for `revokeApiToken`.
    pub token_id: ID,
    /// The token: shown only now, stored only as a hash. Send it as
    /// `Authorization: Bearer <token>`.
    pub token: String,
}

/// A token to revoke.
#[derive(InputObject)]
pub struct RevokeApiTokenInput {
    /// Any text the client chooses, returned unchanged in the payload (Relay).
    pub client_mutation_id: Option<String>,
    /// The token's id (as `createApiToken` answered it, or the bare UUID the CLI prints).
    pub token_id: ID,
}

/// The result of `revokeApiToken`.
#[derive(SimpleObject)]
pub struct RevokeApiTokenPayload {
    /// The input's `clientMutationId`, unchanged.
    pub client_mutation_id: Option<String>,
    /// The revoked token's id.
    pub token_id: ID,
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Adds a user to the tenant (admins only). Errors: `FORBIDDEN`, `VALIDATION_FAILED`,
    /// `NAME_TAKEN` (the e-mail is taken).
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let mut conn = own_conn(ctx).await?;
        let user =
            admin::create_user(&mut conn, viewer, &input.email, &input.display_name, input.role)
                .await?;
        Ok(UserPayload { client_mutation_id: input.client_mutation_id, user: User(user) })
    }

    /// Changes a user's display name, role or activity (admins only). A deactivated user's
    /// tokens answer `UNAUTHENTICATED` at once and it can no longer be assigned; cases
    /// assigned to it keep their assignee until reassigned. A change that would leave the
    /// tenant without an active ADMIN fails with `VALIDATION_FAILED` on `active` or `role`.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user and what to change.")] input: UpdateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(crate::domain::access::ADMINISTER)?;
        let id = UserId(ids::expect(Kind::User, &input.id, "id")?);
        let draft = admin::UserDraft {
            display_name: input.display_name,
            role: input.role,
            active: input.active,
        };
        let mut conn = own_conn(ctx).await?;
        let user = admin::update_user(&mut conn, viewer, id, draft).await?;
        Ok(UserPayload { client_mutation_id: input.client_mutation_id, user: User(user) })
    }

    /// Creates an API token for a user of the tenant (admins only); the token is shown once.
    /// Errors: `FORBIDDEN`, `VALIDATION_FAILED` (a name out of range, an expiry in the
    /// past), `NOT_FOUND` (no such user).
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token's user, name and expiry.")] input: CreateApiTokenInput,
    ) -> async_graphql::Result<CreateApiTokenPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(crate::domain::access::ADMINISTER)?;
        let user = UserId(ids::expect(Kind::User, &input.user_id, "userId")?);
        let mut conn = own_conn(ctx).await?;
        let (id, token) =
            admin::create_token(&mut conn, viewer, user, &input.name, input.expires_at).await?;
        Ok(CreateApiTokenPayload {
            client_mutation_id: input.client_mutation_id,
            token_id: ids::encode(Kind::ApiToken, id.0),
            token,
        })
    }

    /// Revokes a token at once: an admin any of the tenant's, anyone else their own.
    /// Errors: `FORBIDDEN`, `NOT_FOUND`, `VALIDATION_FAILED` (not a token id).
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The token to revoke.")] input: RevokeApiTokenInput,
    ) -> async_graphql::Result<RevokeApiTokenPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        // The CLI prints token ids as global ids; a bare UUID is accepted too.
        let uuid = match ids::decode(&input.token_id) {
            Some((Kind::ApiToken, uuid)) => uuid,
            _ => uuid::Uuid::parse_str(&input.token_id)
                .map_err(|_| AppError::validation("tokenId", "`tokenId` is not an ApiToken id"))?,
        };
        let mut conn = own_conn(ctx).await?;
        let id = admin::revoke_token(&mut conn, viewer, TokenId(uuid)).await?;
        Ok(RevokeApiTokenPayload {
            client_mutation_id: input.client_mutation_id,
            token_id: ids::encode(Kind::ApiToken, id.0),
        })
    }
}

/// The fields of a user [`plain`] answers: a list item's assignee or author.
pub(crate) const PLAIN_FIELDS: &[&str] =
    &["id", "email", "displayName", "role", "assignable", "active"];

/// The user `set` asks of, built directly (see `graphql::plain`); the values are those of
/// `User`'s resolvers above.
pub(crate) fn plain(
    u: &users::User,
    set: &async_graphql::parser::types::SelectionSet,
) -> Option<async_graphql::Value> {
    use crate::graphql::plain;
    plain::object(set, "User", |name, _| {
        Some(match name {
            "id" => async_graphql::Value::String(ids::encode(Kind::User, u.id.0).0),
            "email" => plain::text(&u.email),
            "displayName" => plain::text(&u.display_name),
            "role" => plain::enumeration(u.role),
            "assignable" => plain::scalar(&u.assignable()),
            "active" => plain::scalar(&u.active),
            _ => return None,
        })
    })
}
