//! Users: the `User` type and the `viewer` query.

use async_graphql::{Context, ID, Object};

use crate::error::AppError;
use crate::graphql::{ids, viewer_and_loaders};
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
