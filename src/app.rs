//! Application state shared by every request.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Limits;
use crate::db::DbPool;
use crate::graphql::documents::Documents;
use crate::graphql::{self, CasefileSchema};
use crate::http::metrics::Metrics;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DbPool,
    pub schema: CasefileSchema,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub data_dir: Arc<PathBuf>,
    /// Parsed and validated documents, and the persisted queries' store.
    pub documents: Arc<Documents>,
}

impl AppState {
    pub fn new(db: DbPool, limits: Limits, data_dir: PathBuf) -> Self {
        let documents = Arc::new(Documents::default());
        let schema = graphql::build_with(Some(db.clone()), &limits, documents.clone());
        Self {
            documents,
            metrics: Arc::new(Metrics::new(db.clone())),
            db,
            schema,
            limits: Arc::new(limits),
            data_dir: Arc::new(data_dir),
        }
    }
}
