//! Application state shared by every request.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{AbuseLimits, FileLimits, Limits};
use crate::db::DbPool;
use crate::events::EventHub;
use crate::graphql::documents::Documents;
use crate::graphql::{self, CasefileSchema};
use crate::http::guard::Guard;
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
    /// Signs audit checkpoints; its public key is served at `/audit/public-key`.
    pub audit_key: Arc<AuditKey>,
    /// The fan-out of the change record to this server's subscribers.
    pub events: EventHub,
    /// Parsed and validated documents, and the persisted queries' store.
    pub documents: Arc<Documents>,
    /// Evidence file contents.
    pub storage: Storage,
    /// Rate limits, WebSocket caps, trusted proxies, CORS.
    pub guard: Arc<Guard>,
}

impl AppState {
    /// The state with the audit signing key from the data dir (generated when missing).
    /// Its subscribers hear of new events once [`EventHub::listen`] has started the
    /// `LISTEN` connection (`state.events.listen(url)`).
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
        let events = EventHub::new(db.clone());
        let documents = Arc::new(Documents::default());
        let runtime = graphql::Runtime {
            db: db.clone(),
            audit_key: audit_key.clone(),
            events: events.clone(),
            storage: storage.clone(),
            webhooks: crate::config::WebhookConfig::default(),
        };
        let schema = graphql::build_with(Some(runtime), &limits, documents.clone());
        let guard = Arc::new(Guard::new(&AbuseLimits::default(), limits.max_body_bytes));
        Self {
            guard,
            audit_key,
            events,
            documents,
            metrics: Arc::new(Metrics::new(db.clone())),
            db,
            schema,
            limits: Arc::new(limits),
            files: Arc::new(files),
            data_dir: Arc::new(data_dir),
            storage,
        }
    }

    /// The state with these abuse limits (the defaults otherwise).
    pub fn with_abuse_limits(mut self, abuse: &AbuseLimits) -> Self {
        self.guard = Arc::new(Guard::new(abuse, self.limits.max_body_bytes));
        self
    }

    /// The state with these webhook settings (the schema checks URLs with them).
    pub fn with_webhooks(mut self, webhooks: crate::config::WebhookConfig) -> Self {
        let runtime = graphql::Runtime {
            db: self.db.clone(),
            audit_key: self.audit_key.clone(),
            events: self.events.clone(),
            storage: self.storage.clone(),
            webhooks,
        };
        self.schema = graphql::build_with(Some(runtime), &self.limits, self.documents.clone());
        self
    }
}
