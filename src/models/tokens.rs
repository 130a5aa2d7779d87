//! API tokens: random, shown once, stored only as a SHA-256 hash, revocable, optionally expiring.

use base64::Engine;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::schema::{api_tokens, users};
use crate::models::ids::{TenantId, TokenId, UserId};
use crate::models::sql::{Bind, Sql};
use crate::models::users::User;

/// Every token starts with this, so leaked tokens are easy to spot in logs and scanners.
pub const TOKEN_PREFIX: &str = "cf_";

/// A new token: its secret text (shown once) and the hash that is stored.
pub struct GeneratedToken {
    pub secret: String,
    pub hash: Vec<u8>,
}

/// 32 random bytes from the operating system's CSPRNG, base64url encoded.
pub fn generate() -> GeneratedToken {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    let secret =
        format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&secret);
    GeneratedToken { secret, hash }
}

/// The stored form of a token.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_tokens, check_for_backend(diesel::pg::Pg))]
pub struct ApiToken {
    pub id: TokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Usable now: not revoked and not past its expiry.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct NewApiToken<'a> {
    pub id: TokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: &'a str,
    pub token_hash: &'a [u8],
    pub expires_at: Option<DateTime<Utc>>,
}

/// Stores a new token for `user` and returns its id and secret.
pub async fn create(
    conn: &mut AsyncPgConnection,
    user: &User,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> QueryResult<(TokenId, String)> {
    let generated = generate();
    let new = NewApiToken {
        id: TokenId::new(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        name,
        token_hash: &generated.hash,
        expires_at,
    };
    diesel::insert_into(api_tokens::table).values(&new).execute(conn).await?;
    Ok((new.id, generated.secret))
}

/// The token with this secret and its user, whatever the token's state, as long as the
/// user is active (a deactivated user's tokens find nothing): one statement.
pub async fn find_by_secret(
    conn: &mut AsyncPgConnection,
    secret: &str,
) -> QueryResult<Option<(ApiToken, User)>> {
    api_tokens::table
        .inner_join(
            users::table.on(users::tenant_id
                .eq(api_tokens::tenant_id)
                .and(users::id.eq(api_tokens::user_id))),
        )
        .filter(api_tokens::token_hash.eq(hash(secret)))
        .filter(users::active.eq(true))
        .select((ApiToken::as_select(), User::as_select()))
        .first(conn)
        .await
        .optional()
}

/// What authenticating a token reads: the token's state and its user's role.
#[derive(Debug, Clone, QueryableByName)]
pub struct TokenUse {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: TokenId,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub tenant_id: TenantId,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub user_id: UserId,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub role: crate::models::users::Role,
}

impl TokenUse {
    /// Usable at `now`: not revoked and not past its expiry.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

/// The token with this secret and its user's role, as long as the user is active, and
/// in the same statement the token's use recorded when it is usable and its last use is
/// over a minute old (so reads do not turn into writes): authentication is one statement.
pub async fn use_secret(
    conn: &mut AsyncPgConnection,
    secret: &str,
) -> QueryResult<Option<TokenUse>> {
    // One shape, cached per connection: authentication runs on every request.
    let mut sql = Sql::new(
        "WITH found AS (SELECT t.id, t.tenant_id, t.user_id, t.expires_at, t.revoked_at, \
         t.last_used_at, u.role FROM api_tokens t \
         JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id \
         WHERE t.token_hash = ",
    );
    sql.bind(Bind::Bytes(hash(secret))).push(
        " AND u.active), \
         touched AS (UPDATE api_tokens SET last_used_at = now() FROM found \
         WHERE api_tokens.id = found.id AND found.revoked_at IS NULL \
         AND (found.expires_at IS NULL OR found.expires_at > now()) \
         AND (found.last_used_at IS NULL OR found.last_used_at < now() - interval '1 minute')) \
         SELECT id, tenant_id, user_id, expires_at, revoked_at, role FROM found",
    );
    sql.cache(true);
    sql.into_query().get_result(conn).await.optional()
}

/// Records a use, at most once a minute per token so reads do not turn into writes.
pub async fn touch(conn: &mut AsyncPgConnection, id: TokenId) -> QueryResult<usize> {
    diesel::update(api_tokens::table.find(id))
        .filter(
            api_tokens::last_used_at
                .is_null()
                .or(api_tokens::last_used_at.lt(Utc::now() - chrono::Duration::minutes(1))),
        )
        .set(api_tokens::last_used_at.eq(Utc::now()))
        .execute(conn)
        .await
}

/// Revokes a token of the tenant; `None` when there is no such token.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: TokenId,
) -> QueryResult<Option<ApiToken>> {
    diesel::update(
        api_tokens::table.filter(api_tokens::tenant_id.eq(tenant).and(api_tokens::id.eq(id))),
    )
    // Revoking twice keeps the first time.
    .set(api_tokens::revoked_at.eq(diesel::dsl::sql::<
        diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
    >("coalesce(revoked_at, now())")))
    .returning(ApiToken::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// A token of the tenant by id.
pub async fn find(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: TokenId,
) -> QueryResult<Option<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::tenant_id.eq(tenant).and(api_tokens::id.eq(id)))
        .select(ApiToken::as_select())
        .first(conn)
        .await
        .optional()
}

/// The tenant's tokens among `ids`, in one statement (the DataLoader's query).
pub async fn find_many(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    ids: &[TokenId],
) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::tenant_id.eq(tenant).and(api_tokens::id.eq_any(ids)))
        .select(ApiToken::as_select())
        .load(conn)
        .await
}

/// The tokens of these users of the tenant, oldest first, in one statement (the DataLoader's query).
pub async fn of_users(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    users: &[UserId],
) -> QueryResult<Vec<ApiToken>> {
    api_tokens::table
        .filter(api_tokens::tenant_id.eq(tenant).and(api_tokens::user_id.eq_any(users)))
        .order((api_tokens::created_at.asc(), api_tokens::id.asc()))
        .select(ApiToken::as_select())
        .load(conn)
        .await
}
