//! `GET /metrics`: Prometheus text format.

use std::sync::atomic::AtomicI64;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::app::AppState;
use crate::db::DbPool;

/// The kind of GraphQL operation a request ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationType {
    Query,
    Mutation,
    Subscription,
    /// The document could not be read far enough to tell.
    Unknown,
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Executed without errors.
    Ok,
    /// Executed, with errors in the response.
    Error,
    /// Refused before execution (authentication, HTTP rules, parsing, validation).
    Rejected,
}

impl OperationType {
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
            OperationType::Unknown => "unknown",
        }
    }
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
        }
    }
}

impl EncodeLabelValue for OperationType {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    operation: OperationType,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: OperationType,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransferLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransferOutcomeLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// The registry and the handles the server updates.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    pool: Family<PoolLabels, Gauge>,
    websockets: Gauge<i64, AtomicI64>,
    transfers_active: Family<TransferLabels, Gauge>,
    transfers: Family<TransferOutcomeLabels, Counter>,
    /// The retention jobs' counters (`casefile_jobs_*`).
    pub jobs: crate::jobs::JobMetrics,
    db: DbPool,
}

impl Metrics {
    pub fn new(db: DbPool) -> Self {
        let mut registry = Registry::with_prefix("casefile");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "graphql_requests",
            "GraphQL requests by operation type and outcome",
            requests.clone(),
        );
        let latency = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "graphql_request_duration_seconds",
            "GraphQL request latency",
            latency.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Pool connections: in_use, idle, waiting (callers waiting for one), max",
            pool.clone(),
        );
        let websockets = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "websocket_connections",
            "Open GraphQL WebSocket connections",
            websockets.clone(),
        );
        let transfers_active = Family::<TransferLabels, Gauge>::default();
        registry.register(
            "file_transfers_active",
            "Evidence downloads and case exports being sent, by kind (download, export)",
            transfers_active.clone(),
        );
        let transfers = Family::<TransferOutcomeLabels, Counter>::default();
        registry.register(
            "file_transfers",
            "Evidence downloads and case exports that ended, by kind and outcome: complete; \
             cut (the client left or read nothing for the idle timeout); failed (a content \
             could not be read or did not match its SHA-256)",
            transfers.clone(),
        );
        let jobs = crate::jobs::JobMetrics::register(&mut registry);
        Self {
            registry,
            requests,
            latency,
            pool,
            websockets,
            transfers_active,
            transfers,
            jobs,
            db,
        }
    }

    /// Counts one GraphQL request and its latency.
    pub fn observe(&self, operation: OperationType, outcome: Outcome, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { operation, outcome }).inc();
        self.latency.get_or_create(&OperationLabels { operation }).observe(seconds);
    }

    /// Tracks an open WebSocket until the guard is dropped.
    pub fn websocket_opened(&self) -> WebSocketGuard {
        self.websockets.inc();
        WebSocketGuard(self.websockets.clone())
    }

    /// Tracks a download or export (`kind`) until the guard is dropped; an outcome not
    /// set by then is `cut`.
    pub fn transfer_started(&self, kind: &'static str) -> TransferGuard {
        let active = self.transfers_active.get_or_create(&TransferLabels { kind }).clone();
        active.inc();
        TransferGuard { kind, outcome: "cut", active, ended: self.transfers.clone() }
    }

    /// The text exposition, with pool gauges read now.
    pub fn render(&self) -> String {
        let status = self.db.status();
        let in_use = status.size.saturating_sub(status.available);
        for (state, value) in [
            ("in_use", in_use),
            ("idle", status.available),
            ("waiting", status.waiting),
            ("max", status.max_size),
        ] {
            self.pool
                .get_or_create(&PoolLabels { state })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics encoding failed");
        }
        out
    }
}

/// Decrements the open WebSocket gauge when the connection ends.
pub struct WebSocketGuard(Gauge<i64, AtomicI64>);

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// One download or export being sent; counts its outcome when dropped.
pub struct TransferGuard {
    kind: &'static str,
    outcome: &'static str,
    active: Gauge,
    ended: Family<TransferOutcomeLabels, Counter>,
}

impl TransferGuard {
    /// The transfer sent everything.
    pub fn complete(&mut self) {
        self.outcome = "complete";
    }

    /// The server could not read or verify what it was sending.
    pub fn failed(&mut self) {
        self.outcome = "failed";
    }
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.active.dec();
        let labels = TransferOutcomeLabels { kind: self.kind, outcome: self.outcome };
        self.ended.get_or_create(&labels).inc();
    }
}

pub async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
}
