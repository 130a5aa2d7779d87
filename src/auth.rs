//! Who is asking: bearer tokens become a `Viewer` with a tenant and a role.

pub mod cache;

use std::net::IpAddr;

use chrono::Utc;
use uuid::Uuid;

use crate::db::{DbPool, pool};
use crate::error::{AppError, AppResult};
use crate::models::events::{ActorType, Origin};
use crate::models::ids::{TenantId, TokenId, UserId};
use crate::models::{tokens, users::Role};

/// The authenticated caller of one request, and where the request came from (which the
/// change record keeps with every event the request writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: Role,
    pub token_id: TokenId,
    /// The id of the request (or WebSocket operation), set by the transport.
    pub request_id: Option<Uuid>,
    /// The TCP peer of the connection, set by the transport.
    pub client_address: Option<IpAddr>,
}

impl Viewer {
    /// Who the change record names for this viewer's changes: `API_CLIENT` for tokens of
    /// INGEST users, `USER` for every other token.
    pub fn origin(&self) -> Origin {
        Origin {
            actor: Some(self.user_id),
            actor_type: if self.role == Role::Ingest {
                ActorType::ApiClient
            } else {
                ActorType::User
            },
            request_id: self.request_id,
            client_address: self.client_address,
        }
    }

    /// The same viewer, connected from `address`.
    pub fn with_client_address(self, address: Option<IpAddr>) -> Self {
        Viewer { client_address: address, ..self }
    }

    /// Fails with `FORBIDDEN` unless the viewer's role is one of `roles`.
    pub fn require(&self, roles: &[Role]) -> AppResult<()> {
        if roles.contains(&self.role) { Ok(()) } else { Err(AppError::Forbidden) }
    }

    /// Fails with `FORBIDDEN` for roles that may not read (integrations).
    pub fn require_read(&self) -> AppResult<()> {
        if self.role.can_read() { Ok(()) } else { Err(AppError::Forbidden) }
    }
}

/// The token from an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Resolves a bearer token to its viewer. Missing, unknown, revoked and expired tokens
/// all fail with `UNAUTHENTICATED`, the same way, so a caller learns nothing about which.
pub async fn authenticate(db: &DbPool, authorization: Option<&str>) -> AppResult<Viewer> {
    let secret = authorization.and_then(bearer_token).ok_or(AppError::Unauthenticated)?;
    if !secret.starts_with(tokens::TOKEN_PREFIX) || secret.len() > 200 {
        return Err(AppError::Unauthenticated);
    }
    let hash = tokens::hash(secret);
    if let Some(viewer) = cache::shared().get(&hash, std::time::Instant::now(), Utc::now()) {
        return Ok(viewer);
    }
    let mut conn = pool::get(db).await?;
    let token = tokens::use_secret(&mut conn, secret).await?.ok_or(AppError::Unauthenticated)?;
    if !token.is_active(Utc::now()) {
        return Err(AppError::Unauthenticated);
    }
    // Cached without the request's id and address: the transport sets those per request.
    let viewer = Viewer {
        user_id: token.user_id,
        tenant_id: token.tenant_id,
        role: token.role,
        token_id: token.id,
        request_id: None,
        client_address: None,
    };
    cache::shared().put(hash, viewer, token.expires_at, std::time::Instant::now());
    Ok(viewer)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_token_accepts_any_case_of_the_scheme_and_trims() {
        assert_eq!(bearer_token("Bearer cf_abc"), Some("cf_abc"));
        assert_eq!(bearer_token("bearer  cf_abc "), Some("cf_abc"));
        assert_eq!(bearer_token("Basic cf_abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("cf_abc"), None);
    }
}
