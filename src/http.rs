//! The HTTP surface: GraphQL over HTTP and WebSocket, GraphiQL, evidence files, health,
//! readiness, metrics.

pub mod audit;
pub mod export;
pub mod files;
pub mod graphiql;
pub mod graphql;
pub mod guard;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod negotiate;
pub mod pipe;
pub mod stall;
pub mod transfer;
pub mod ws;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::app::AppState;

/// The header that carries the request id to the client.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of one HTTP request: in every log line of the request, in the `x-request-id`
/// response header, and in `INTERNAL` errors, so a report can be matched to the log.
pub use crate::error::RequestId;

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<RequestId>().cloned().unwrap_or_default())
    }
}

/// The client address of a request: the TCP peer, or, when the peer is one of
/// `CASEFILE_TRUSTED_PROXIES`, the address its `X-Forwarded-For` names ([`guard::client`]).
/// The rate limits count by it and the change record keeps it as `clientAddress`.
/// `None` when the server was started without connect info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        let peer = peer.map(|info| info.0.ip());
        Ok(ClientAddress(state.guard.client_address(peer, &parts.headers)))
    }
}

/// Gives each request a fresh id (a client-sent one is not trusted), a tracing span, and
/// echoes the id in the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = RequestId::new();
    request.extensions_mut().insert(id.clone());
    let span = tracing::info_span!("request", request_id = %id.0, method = %request.method(), path = %request.uri().path());
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER.clone(), value);
    }
    response
}

/// Every route of casefile.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let body_limit = state.limits.max_body_bytes;
    let cors_origins = state.guard.cors_origins().clone();
    let http = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/healthz", get(health::healthz))
        .route("/audit/public-key", get(audit::public_key))
        .route("/audit/export", get(audit::export))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::handler))
        .merge(graphiql::routes())
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ));
    // WebSockets and the streaming file routes (evidence files, case export) stay outside
    // compression and the total timeout: they have their own limits (an idle timeout, the
    // upload and export limits).
    let router = Router::new()
        .route("/graphql/ws", get(ws::handler))
        .route("/cases/{number}/export", get(export::handler))
        .merge(files::routes())
        // Streamed without the request timeout: a long NDJSON body commits chunk by chunk.
        .route("/ingest/detections", axum::routing::post(ingest::post))
        .merge(http)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::new())
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(middleware::from_fn(request_id))
        .with_state(state);
    guard::cors::apply(router, &cors_origins)
}

/// An error as the REST endpoints (files, export, audit export, NDJSON ingest) answer it:
/// the GraphQL error body of [`crate::graphql::errors::response`], with the code's status
/// or `status` when the endpoint answers another (a REST body that fails a check is 422
/// where GraphQL's table says 400; 413, 416), `Cache-Control: no-store`, for
/// `UNAUTHENTICATED` a `WWW-Authenticate: Bearer` challenge, and for `RATE_LIMITED` its
/// `Retry-After`.
pub(crate) fn rest_error(
    error: &crate::error::AppError,
    request_id: &RequestId,
    status: Option<axum::http::StatusCode>,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse as _;
    let body = crate::graphql::errors::response(error, request_id);
    let mut response = (status.unwrap_or_else(|| error.status()), axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if matches!(error, crate::error::AppError::Unauthenticated) {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(seconds) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
