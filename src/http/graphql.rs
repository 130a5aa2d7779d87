//! GraphQL over HTTP, as its spec says: `POST /graphql` (JSON bodies only), `GET /graphql`
//! (queries only), the response type negotiated from `Accept`, request errors as 400 for
//! `application/graphql-response+json`, and batches of a bounded size. Nothing is ever
//! executed from a `text/plain`, form or multipart body, so a cross-site form cannot run
//! an operation.

// Early exits carry a finished `Response`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use async_graphql::parser::types::OperationType as GqlOp;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::app::AppState;
use crate::auth::Viewer;
use crate::error::{AppError, BAD_REQUEST, Code, PERSISTED_QUERY_NOT_FOUND};
use crate::graphql::{errors, request_data, selected_operation};
use crate::http::metrics::{OperationType, Outcome};
use crate::http::negotiate::{ResponseType, response_type};
use crate::http::{ClientAddress, RequestId};

mod params;
mod persisted;
mod response;

use params::{check_content_type, params_from_json, params_from_query, read_body};
use response::{error_body, json_response};

/// `GET /graphql?query=…&operationName=…&variables=…&extensions=…`
pub async fn get(
    State(state): State<AppState>,
    request_id: RequestId,
    client: ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let started = Instant::now();
    let (rt, viewer) = match admit(&state, client, &headers, &request_id, started).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let request = match params_from_query(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(message) => {
            return request_failure(
                &state,
                rt,
                &request_id,
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                &message,
                started,
            );
        }
    };
    execute_single(&state, rt, &request_id, viewer, request, Method::Get, started).await
}

/// `POST /graphql` with an `application/json` body: one operation or a batch.
pub async fn post(
    State(state): State<AppState>,
    request_id: RequestId,
    client: ClientAddress,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (rt, viewer) = match admit(&state, client, &headers, &request_id, started).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let fail = |status, code, message: &str| {
        request_failure(&state, rt, &request_id, status, code, message, started)
    };
    if let Err(message) = check_content_type(&headers) {
        return fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, BAD_REQUEST, &message);
    }
    let bytes = match read_body(&headers, body, state.limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err((status, message)) => return fail(status, BAD_REQUEST, &message),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return fail(
            StatusCode::BAD_REQUEST,
            BAD_REQUEST,
            "the request body is empty: send a JSON object with `query`",
        );
    }
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            return fail(
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                &format!("the body is not valid JSON: {e}"),
            );
        }
    };
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return fail(
                    StatusCode::BAD_REQUEST,
                    BAD_REQUEST,
                    "an empty batch has nothing to run",
                );
            }
            if items.len() > state.limits.max_batch {
                let message =
                    format!("a batch may hold at most {} operations", state.limits.max_batch);
                return fail(StatusCode::BAD_REQUEST, "BATCH_TOO_LARGE", &message);
            }
            let mut requests = Vec::with_capacity(items.len());
            for item in &items {
                match params_from_json(item) {
                    Ok(request) => requests.push(request),
                    Err(message) => return fail(StatusCode::BAD_REQUEST, BAD_REQUEST, &message),
                }
            }
            let mut results = Vec::with_capacity(requests.len());
            for request in requests {
                let (_, body) =
                    run(&state, rt, &request_id, viewer, request, Method::Post, Instant::now())
                        .await;
                results.push(body);
            }
            json_response(StatusCode::OK, rt, &results)
        }
        other => match params_from_json(&other) {
            Ok(request) => {
                execute_single(&state, rt, &request_id, viewer, request, Method::Post, started)
                    .await
            }
            Err(message) => fail(StatusCode::BAD_REQUEST, BAD_REQUEST, &message),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// What every request goes through first: a response type the client accepts, and a valid
/// token within its rate limit ([`crate::http::guard`]).
async fn admit(
    state: &AppState,
    client: ClientAddress,
    headers: &HeaderMap,
    request_id: &RequestId,
    started: Instant,
) -> Result<(ResponseType, Viewer), Response> {
    let rt = negotiate(headers, request_id)?;
    let viewer = authenticate(state, client, headers, rt, request_id, started).await?;
    Ok((rt, viewer))
}

fn negotiate(headers: &HeaderMap, request_id: &RequestId) -> Result<ResponseType, Response> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    response_type(accept).ok_or_else(|| {
        let body = error_body(
            BAD_REQUEST,
            "accept `application/graphql-response+json` or `application/json`",
            request_id,
        );
        json_response(StatusCode::NOT_ACCEPTABLE, ResponseType::Json, &body)
    })
}

async fn authenticate(
    state: &AppState,
    client: ClientAddress,
    headers: &HeaderMap,
    rt: ResponseType,
    request_id: &RequestId,
    started: Instant,
) -> Result<Viewer, Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match state.guard.authenticate(&state.db, client.0, authorization).await {
        Ok(viewer) => Ok(viewer),
        Err(error) => {
            state.metrics.observe(
                OperationType::Unknown,
                Outcome::Rejected,
                started.elapsed().as_secs_f64(),
            );
            let body = response::Body::request_error(errors::response(&error, request_id));
            let mut response = json_response(error.status(), rt, &body);
            let headers = response.headers_mut();
            if matches!(error, AppError::Unauthenticated) {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            if let Some(seconds) = error.retry_after() {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            Err(response)
        }
    }
}

async fn execute_single(
    state: &AppState,
    rt: ResponseType,
    request_id: &RequestId,
    viewer: Viewer,
    request: async_graphql::Request,
    method: Method,
    started: Instant,
) -> Response {
    let (status, body) = run(state, rt, request_id, viewer, request, method, started).await;
    let mut response = json_response(status, rt, &body);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// Parses, checks and executes one operation; returns the status it earns and its body.
async fn run(
    state: &AppState,
    rt: ResponseType,
    request_id: &RequestId,
    viewer: Viewer,
    mut request: async_graphql::Request,
    method: Method,
    started: Instant,
) -> (StatusCode, response::Body) {
    let request_error_status = match rt {
        ResponseType::GraphqlResponseJson => StatusCode::BAD_REQUEST,
        ResponseType::Json => StatusCode::OK,
    };
    match persisted::resolve(&state.documents, &mut request) {
        Ok(()) => {}
        Err(refusal) => {
            state.metrics.observe(
                OperationType::Unknown,
                Outcome::Rejected,
                started.elapsed().as_secs_f64(),
            );
            return match refusal {
                // Apollo's protocol: 200, and the client sends the document next.
                persisted::Refusal::NotFound => (
                    StatusCode::OK,
                    error_body(PERSISTED_QUERY_NOT_FOUND, persisted::NOT_FOUND_MESSAGE, request_id),
                ),
                persisted::Refusal::Invalid(message) => {
                    (StatusCode::BAD_REQUEST, error_body(BAD_REQUEST, message, request_id))
                }
            };
        }
    }
    let operation_name = request.operation_name.clone();
    // A document that does not parse (or nests too deep to parse safely) runs into the
    // schema's own error.
    let parsable = crate::graphql::limits::nesting::check(&request.query).is_ok();
    let op = parsable
        .then(|| request.parsed_query().ok())
        .flatten()
        .and_then(|doc| selected_operation(doc, operation_name.as_deref()).map(|op| op.node.ty));
    let operation = match op {
        Some(GqlOp::Query) => OperationType::Query,
        Some(GqlOp::Mutation) => OperationType::Mutation,
        Some(GqlOp::Subscription) => OperationType::Subscription,
        None => OperationType::Unknown,
    };
    if method == Method::Get && matches!(op, Some(GqlOp::Mutation | GqlOp::Subscription)) {
        state.metrics.observe(operation, Outcome::Rejected, started.elapsed().as_secs_f64());
        let body = error_body(
            BAD_REQUEST,
            "only queries may be sent by GET: send mutations by POST",
            request_id,
        );
        return (StatusCode::METHOD_NOT_ALLOWED, body);
    }
    if op == Some(GqlOp::Subscription) {
        state.metrics.observe(operation, Outcome::Rejected, started.elapsed().as_secs_f64());
        let body = error_body(
            BAD_REQUEST,
            "subscriptions run over the WebSocket at /graphql/ws",
            request_id,
        );
        return (request_error_status, body);
    }

    request.data = request_data(viewer, request_id.clone());
    let response = state.schema.execute(request).await;
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let outcome = if request_error {
        Outcome::Rejected
    } else if response.errors.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Error
    };
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.observe(operation, outcome, seconds);
    tracing::info!(
        operation = ?operation,
        operation_name = operation_name.as_deref().unwrap_or(""),
        outcome = ?outcome,
        errors = response.errors.len(),
        ms = (seconds * 1000.0).round(),
        "graphql request"
    );
    if request_error {
        (request_error_status, response::Body::request_error(response))
    } else if only_unavailable(&response) {
        // Nothing could be served because the database is out of reach: 503, as an
        // error-only response with that code answers (a client or proxy may retry).
        (Code::Unavailable.status(), response::Body::executed(response))
    } else {
        (StatusCode::OK, response::Body::executed(response))
    }
}

/// Whether the response has no data and every error is `UNAVAILABLE`.
fn only_unavailable(response: &async_graphql::Response) -> bool {
    let unavailable = async_graphql::Value::from(Code::Unavailable.as_str());
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| {
            error.extensions.as_ref().and_then(|ext| ext.get("code")) == Some(&unavailable)
        })
}

fn request_failure(
    state: &AppState,
    rt: ResponseType,
    request_id: &RequestId,
    status: StatusCode,
    code: &str,
    message: &str,
    started: Instant,
) -> Response {
    state.metrics.observe(
        OperationType::Unknown,
        Outcome::Rejected,
        started.elapsed().as_secs_f64(),
    );
    json_response(status, rt, &error_body(code, message, request_id))
}
