//! Application state shared by every request.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{FileLimits, Limits};
use crate::db::DbPool;
use crate::graphql::{self, CasefileSchema};
use crate::http::metrics::Metrics;
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
}

impl AppState {
    pub fn new(
        db: DbPool,
        limits: Limits,
        files: FileLimits,
        data_dir: PathBuf,
        storage: Storage,
    ) -> Self {
        let schema = graphql::build(Some((db.clone(), storage.clone())), &limits);
        Self {
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
