//! Application state shared by every request.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Limits;
use crate::db::DbPool;
use crate::events::EventHub;
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
    /// The fan-out of the change record to this server's subscribers.
    pub events: EventHub,
}

impl AppState {
    /// The state of a server; its subscribers hear of new events once
    /// [`EventHub::listen`] has started the `LISTEN` connection (`state.events.listen(url)`).
    pub fn new(db: DbPool, limits: Limits, data_dir: PathBuf) -> Self {
        let events = EventHub::new(db.clone());
        let schema = graphql::build(Some((db.clone(), events.clone())), &limits);
        Self {
            events,
            metrics: Arc::new(Metrics::new(db.clone())),
            db,
            schema,
            limits: Arc::new(limits),
            data_dir: Arc::new(data_dir),
        }
    }
}
