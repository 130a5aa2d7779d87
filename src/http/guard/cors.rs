//! CORS for browser front ends on other origins (`CASEFILE_CORS_ORIGINS`). Without
//! origins the router answers no CORS header at all (same origin only). A request from
//! an origin that is not listed gets no `Access-Control-*` header either, preflight or not.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::CorsOrigins;
use crate::http::REQUEST_ID_HEADER;

/// How long a browser may keep a preflight's answer.
const MAX_AGE: Duration = Duration::from_secs(600);

/// `router` with CORS for `origins` (unchanged when there are none).
pub fn apply(router: Router, origins: &CorsOrigins) -> Router {
    let listed: Vec<HeaderValue> =
        origins.0.iter().filter_map(|origin| HeaderValue::from_str(origin).ok()).collect();
    if listed.is_empty() {
        return router;
    }
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(listed.clone()))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .expose_headers([REQUEST_ID_HEADER.clone(), header::RETRY_AFTER])
        .max_age(MAX_AGE);
    let listed = Arc::new(listed);
    router.layer(cors).layer(middleware::from_fn(move |request: Request, next: Next| {
        let listed = listed.clone();
        async move { strip_unlisted(&listed, request, next).await }
    }))
}

/// Takes every `Access-Control-*` header off the answer to an unlisted origin (the CORS
/// layer answers a preflight's methods and headers to any origin).
async fn strip_unlisted(listed: &[HeaderValue], request: Request, next: Next) -> Response {
    let unlisted = request.headers().get(header::ORIGIN).is_some_and(|o| !listed.contains(o));
    let mut response = next.run(request).await;
    if unlisted {
        let headers = response.headers_mut();
        let names: Vec<HeaderName> = headers
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in names {
            headers.remove(name);
        }
    }
    response
}
