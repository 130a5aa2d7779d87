//! Database access: the connection pool, the embedded cluster, migrations and the schema.

pub mod embedded;
pub mod migrations;
pub mod pool;
pub mod schema;

pub use pool::{DbConn, DbPool, LossWitness};

use crate::config::DatabaseConfig;
use embedded::EmbeddedPostgres;

/// The name of casefile's database inside the embedded cluster.
pub const EMBEDDED_DATABASE: &str = "casefile";

/// Where the data lives: `DATABASE_URL`, or the embedded cluster of the data dir.
pub struct Database {
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL` when set; otherwise attaches to or starts the embedded
    /// cluster in the data dir and makes sure casefile's database exists.
    pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Self> {
        if let Some(url) = config.database_url.as_deref().filter(|u| !u.trim().is_empty()) {
            return Ok(Self { url: url.to_owned(), embedded: None });
        }
        let cluster = EmbeddedPostgres::start(&config.data_dir).await?;
        if let Err(error) = cluster.ensure_database(EMBEDDED_DATABASE).await {
            let _ = cluster.stop().await;
            return Err(error.into());
        }
        Ok(Self { url: cluster.database_url(EMBEDDED_DATABASE), embedded: Some(cluster) })
    }

    /// Whether the database is the embedded cluster.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Stops the embedded cluster when this process started it.
    pub async fn close(self) {
        if let Some(cluster) = self.embedded
            && let Err(error) = cluster.stop().await
        {
            tracing::error!(%error, "stopping the embedded PostgreSQL failed");
        }
    }
}
