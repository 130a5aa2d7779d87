//! The diesel migrations in `migrations/`, embedded in the binary, and the Rust steps
//! that belong to a migration.

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::models::rekey;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The migration that adds the folded key columns: [`rekey::run`] runs in its
/// transaction, right after its SQL, so the keys are exact as soon as it is recorded.
const FOLDING_KEYS: &str = "20261130000003";

/// The key of the session-level advisory lock the migration runner holds while it reads
/// and applies pending migrations (`pg_advisory_lock(bigint)`): the bytes of "casefile"
/// read as a big-endian number, the same on every server, so servers that start together
/// on one database migrate one after the other, and the later ones find nothing pending.
pub const MIGRATION_LOCK_KEY: i64 = i64::from_be_bytes(*b"casefile");

type Connection = AsyncConnectionWrapper<AsyncPgConnection>;

/// Opens the runner's connection, from a blocking thread of the runtime.
fn establish(url: &str) -> anyhow::Result<Connection> {
    let conn = tokio::runtime::Handle::current().block_on(super::pool::connect(url))?;
    Ok(Connection::from(conn))
}

/// Applies every pending migration and returns how many ran. The whole run holds the
/// advisory lock [`MIGRATION_LOCK_KEY`] (waiting for it while another server migrates).
pub async fn run(url: &str) -> anyhow::Result<usize> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        use diesel::Connection as _;
        let mut conn = establish(&url)?;
        crate::models::database::lock_session(&mut conn, MIGRATION_LOCK_KEY)
            .map_err(|e| anyhow::anyhow!("taking the migration lock: {e}"))?;
        // The lock is the session's: closing the connection (at the end of this closure,
        // or when this process dies) releases it.
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
        for migration in &pending {
            let version = migration.name().version().to_string().replace('-', "");
            let applied = if version == FOLDING_KEYS {
                conn.transaction(|conn| {
                    conn.run_migration(migration.as_ref())?;
                    let done = rekey::run(conn)?;
                    tracing::info!(keys = done.keys, collisions = done.collisions, "re-keyed");
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
            } else {
                conn.run_migration(migration.as_ref()).map(|_| ())
            };
            applied.map_err(|e| anyhow::anyhow!("migration {version} failed: {e}"))?;
        }
        Ok(pending.len())
    })
    .await?
}

/// Re-keys every stored key with the folding rule (idempotent; the migration runner
/// does it once, in the migration that added the keys). Returns what changed.
pub async fn rekey(url: &str) -> anyhow::Result<rekey::Rekeyed> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<rekey::Rekeyed> {
        use diesel::Connection as _;
        let mut conn = establish(&url)?;
        Ok(conn.transaction(|conn| {
            let done = rekey::run(conn)?;
            rekey::resync_links(conn)?;
            Ok::<_, diesel::result::Error>(done)
        })?)
    })
    .await?
}

/// The version of the newest migration embedded in this binary.
pub fn latest_version() -> Option<String> {
    MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .ok()?
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
}
