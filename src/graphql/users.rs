//! Users: the `User` type and the `viewer` query.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::db::{DbPool, pool};
use crate::domain::admin;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{Conn, ListCount, PageArgs, Total, connection};
use crate::graphql::viewer_and_loaders;
use crate::models::ids::{TokenId, UserId};
use crate::models::users::{self, Role};

/// A person or integration with access to the tenant.
pub struct User(pub users::User);

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
        self.0.role()
    }

    /// Whether cases can be assigned to this user (admins and analysts only).
    async fn assignable(&self) -> bool {
        self.0.role().assignable()
    }
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The user the request's token belongs to.
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
    /// assigned to (admins and analysts).
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
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

#[derive(InputObject)]
pub struct CreateUserInput {
    pub client_mutation_id: Option<String>,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

#[derive(SimpleObject)]
pub struct UserPayload {
    pub client_mutation_id: Option<String>,
    pub user: User,
}

#[derive(InputObject)]
pub struct CreateApiTokenInput {
    pub client_mutation_id: Option<String>,
    pub user_id: ID,
    pub name: String,
    /// Never expires when absent.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    pub client_mutation_id: Option<String>,
    pub token_id: ID,
    /// The token: shown only now, stored only as a hash.
    pub token: String,
}

#[derive(InputObject)]
pub struct RevokeApiTokenInput {
    pub client_mutation_id: Option<String>,
    pub token_id: ID,
}

#[derive(SimpleObject)]
pub struct RevokeApiTokenPayload {
    pub client_mutation_id: Option<String>,
    pub token_id: ID,
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Adds a user to the tenant (admins only).
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        input: CreateUserInput,
    ) -> async_graphql::Result<UserPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let user =
            admin::create_user(&mut conn, viewer, &input.email, &input.display_name, input.role)
                .await?;
        Ok(UserPayload { client_mutation_id: input.client_mutation_id, user: User(user) })
    }

    /// Creates an API token for a user of the tenant (admins only); the token is shown once.
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
    ) -> async_graphql::Result<CreateApiTokenPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        viewer.require(crate::domain::access::ADMINISTER)?;
        let user = UserId(ids::expect(Kind::User, &input.user_id, "userId")?);
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let (id, token) =
            admin::create_token(&mut conn, viewer, user, &input.name, input.expires_at).await?;
        Ok(CreateApiTokenPayload {
            client_mutation_id: input.client_mutation_id,
            token_id: ids::encode(Kind::ApiToken, id.0),
            token,
        })
    }

    /// Revokes a token at once: an admin any of the tenant's, anyone else their own.
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiTokenInput,
    ) -> async_graphql::Result<RevokeApiTokenPayload> {
        let (viewer, _) = viewer_and_loaders(ctx)?;
        // The CLI prints token ids as global ids; a bare UUID is accepted too.
        let uuid = match ids::decode(&input.token_id) {
            Some((Kind::ApiToken, uuid)) => uuid,
            _ => uuid::Uuid::parse_str(&input.token_id)
                .map_err(|_| AppError::validation("tokenId", "`tokenId` is not an ApiToken id"))?,
        };
        let mut conn = pool::get(ctx.data::<DbPool>()?).await?;
        let id = admin::revoke_token(&mut conn, viewer, TokenId(uuid)).await?;
        Ok(RevokeApiTokenPayload {
            client_mutation_id: input.client_mutation_id,
            token_id: ids::encode(Kind::ApiToken, id.0),
        })
    }
}
