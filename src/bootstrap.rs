//! First start: on an empty database, a tenant `Default`, an admin `admin@localhost` and
//! an API token, shown once and written to `<data dir>/admin-token` (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::domain::admin;
use crate::models::events::{self, Origin};
use crate::models::ids::UserId;
use crate::models::users::{NewUser, Role};
use crate::models::{database, tenants, tokens, users};

/// Arbitrary key of the advisory lock that makes one replica bootstrap, the others wait.
const BOOTSTRAP_LOCK: i64 = 0x0ca5_ef11_0000_0001;

/// The file the first admin token is written to.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// Creates the first tenant, admin and token when the database has no tenant yet.
/// Returns the token when it was created now.
pub async fn run(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Option<String>> {
    conn.transaction(async |conn| {
        database::lock_transaction(conn, BOOTSTRAP_LOCK).await?;
        if tenants::count(conn).await? > 0 {
            return Ok(None);
        }
        let tenant = tenants::insert(conn, &tenants::NewTenant::new("Default", &[])).await?;
        let admin = users::insert(
            conn,
            &NewUser {
                id: UserId::new(),
                tenant_id: tenant.id,
                email: "admin@localhost",
                display_name: "Administrator",
                role: Role::Admin,
            },
        )
        .await?;
        let (token, secret) = tokens::create(conn, &admin, "bootstrap", None).await?;
        let events = vec![
            admin::tenant_created(&tenant),
            admin::user_created(&admin),
            admin::token_created(token, &admin, "bootstrap", None),
        ];
        events::append(conn, tenant.id, &Origin::system(), events).await?;
        Ok(Some(secret))
    })
    .await
}

/// Writes the token to `<data dir>/admin-token`, readable by its owner only.
pub fn write_token(data_dir: &Path, token: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(data_dir)?;
    let path = token_path(data_dir);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    // A file left by an earlier install may have wider permissions: narrow them.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    writeln!(file, "{token}")?;
    Ok(path)
}
