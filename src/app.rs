//! Application state shared by every request.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{FileLimits, Limits};
use crate::db::DbPool;
use crate::graphql::{self, CasefileSchema};
use crate::http::metrics::Metrics;
use crate::signing::AuditKey;
use crate::storage::Storage;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DbPool,
    pub schema: CasefileSchema,
    pub limits: Arc<Limits>,
    pub files: Arc<FileLimits>,
    pub metrics: Arc<Metrics>,
    pub data_dir: Arc<PathBuf>,
    /// Evidence file contents.
    pub storage: Storage,
    /// Signs audit checkpoints; its public key is served at `/audit/public-key`.
    pub audit_key: Arc<AuditKey>,
}

impl AppState {
    /// The state with the audit signing key from the data dir (generated when missing).
    pub fn new(
        db: DbPool,
        limits: Limits,
        files: FileLimits,
        data_dir: PathBuf,
        storage: Storage,
    ) -> anyhow::Result<Self> {
        let key = AuditKey::load(None, &data_dir)?;
        Ok(Self::with_key(db, limits, files, data_dir, storage, key))
    }

    /// The state with this audit signing key.
    pub fn with_key(
        db: DbPool,
        limits: Limits,
        files: FileLimits,
        data_dir: PathBuf,
        storage: Storage,
        key: AuditKey,
    ) -> Self {
        let audit_key = Arc::new(key);
        let schema =
            graphql::build(Some((db.clone(), storage.clone(), audit_key.clone())), &limits);
        Self {
            audit_key,
            metrics: Arc::new(Metrics::new(db.clone())),
            db,
            schema,
            limits: Arc::new(limits),
            files: Arc::new(files),
            data_dir: Arc::new(data_dir),
            storage,
        }
    }
}
