//! GraphQL over HTTP, as its spec says: `POST /graphql` (JSON bodies only), `GET /graphql`
//! (queries only), the response type negotiated from `Accept`, request errors as 400 for
//! `application/graphql-response+json`, and batches of a bounded size. Nothing is ever
//! executed from a `text/plain`, form or multipart body, so a cross-site form cannot run
//! an operation.

// Early exits carry a finished `Response`; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::time::Instant;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType as GqlOp,
};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::auth::{self, Viewer};
use crate::error::{AppError, BAD_REQUEST, Code, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED};
use crate::graphql::request_data;
use crate::http::RequestId;
use crate::http::metrics::{OperationType, Outcome};
use crate::http::negotiate::{ResponseType, response_type};

/// `GET /graphql?query=…&operationName=…&variables=…&extensions=…`
pub async fn get(
    State(state): State<AppState>,
    request_id: RequestId,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let started = Instant::now();
    let rt = match negotiate(&headers, &request_id) {
        Ok(rt) => rt,
        Err(response) => return response,
    };
    let viewer = match authenticate(&state, &headers, rt, &request_id).await {
        Ok(viewer) => viewer,
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
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let rt = match negotiate(&headers, &request_id) {
        Ok(rt) => rt,
        Err(response) => return response,
    };
    let viewer = match authenticate(&state, &headers, rt, &request_id).await {
        Ok(viewer) => viewer,
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
            json_response(StatusCode::OK, rt, &Value::Array(results))
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
    headers: &HeaderMap,
    rt: ResponseType,
    request_id: &RequestId,
) -> Result<Viewer, Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth::authenticate(&state.db, authorization).await {
        Ok(viewer) => Ok(viewer),
        Err(error) => {
            state.metrics.observe(OperationType::Unknown, Outcome::Rejected, 0.0);
            let body = error_body(error.code().as_str(), &error.public_message(), request_id);
            let mut response = json_response(error.status(), rt, &body);
            if matches!(error, AppError::Unauthenticated) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Err(response)
        }
    }
}

/// Only `application/json` (UTF-8) bodies are executed.
fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err("send the request with `Content-Type: application/json`".into());
    };
    let value = value.to_str().map_err(|_| "unreadable Content-Type".to_owned())?;
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(format!(
            "`{media}` bodies are not executed: send `Content-Type: application/json`"
        ));
    }
    for param in parts {
        if let Some((k, v)) = param.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
            && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err("only UTF-8 request bodies are accepted".into());
        }
    }
    Ok(())
}

async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, (StatusCode, String)> {
    let too_large =
        || (StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is over {limit} bytes"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let is_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some());
        if is_limit {
            too_large()
        } else {
            (StatusCode::BAD_REQUEST, "the request body could not be read".to_owned())
        }
    })
}

/// Reads `{query, operationName, variables, extensions}` strictly: wrong types are request errors.
fn params_from_json(value: &Value) -> Result<async_graphql::Request, String> {
    let Value::Object(map) = value else {
        return Err("the body must be a JSON object (or an array of them)".into());
    };
    let query = match map.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(_) => return Err("`query` must be a string".into()),
        None => return Err("`query` is missing".into()),
    };
    let operation_name = match map.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err("`operationName` must be a string".into()),
    };
    let variables = object_param(map.get("variables"), "variables")?;
    let extensions = object_param(map.get("extensions"), "extensions")?;
    Ok(build_request(query, operation_name, variables, extensions))
}

fn object_param(value: Option<&Value>, name: &str) -> Result<Option<Map<String, Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map.clone())),
        Some(_) => Err(format!("`{name}` must be an object")),
    }
}

/// Reads the URL-encoded parameters of a GET request; `variables` and `extensions` are JSON text.
fn params_from_query(raw: &str) -> Result<async_graphql::Request, String> {
    let mut query = None;
    let mut operation_name = None;
    let mut variables = None;
    let mut extensions = None;
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let slot = match key.as_ref() {
            "query" => &mut query,
            "operationName" => &mut operation_name,
            "variables" => &mut variables,
            "extensions" => &mut extensions,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(format!("`{key}` is given more than once"));
        }
    }
    let query = query.ok_or("`query` is missing")?;
    let parse_json =
        |text: Option<String>, name: &str| -> Result<Option<Map<String, Value>>, String> {
            match text.filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(map)) => Ok(Some(map)),
                    Ok(Value::Null) => Ok(None),
                    _ => Err(format!("`{name}` must be a JSON object")),
                },
            }
        };
    let variables = parse_json(variables, "variables")?;
    let extensions = parse_json(extensions, "extensions")?;
    Ok(build_request(query, operation_name.filter(|n| !n.is_empty()), variables, extensions))
}

fn build_request(
    query: String,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    extensions: Option<Map<String, Value>>,
) -> async_graphql::Request {
    let mut request = async_graphql::Request::new(query);
    request.operation_name = operation_name;
    if let Some(variables) = variables {
        request.variables = async_graphql::Variables::from_json(Value::Object(variables));
    }
    if let Some(extensions) = extensions {
        for (key, value) in extensions {
            if let Ok(value) = async_graphql::Value::from_json(value) {
                request.extensions.insert(key, value);
            }
        }
    }
    request
}

/// The operation the request selects, when the document names it unambiguously.
fn selected_operation(doc: &ExecutableDocument, name: Option<&str>) -> Option<GqlOp> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.iter().find(|(n, _)| n.as_str() == name).map(|(_, op)| op.node.ty)
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
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
) -> (StatusCode, Value) {
    let request_error_status = match rt {
        ResponseType::GraphqlResponseJson => StatusCode::BAD_REQUEST,
        ResponseType::Json => StatusCode::OK,
    };
    let operation_name = request.operation_name.clone();
    let op = match request.parsed_query() {
        Ok(doc) => selected_operation(doc, operation_name.as_deref()),
        Err(error) => {
            state.metrics.observe(
                OperationType::Unknown,
                Outcome::Rejected,
                started.elapsed().as_secs_f64(),
            );
            let mut body = serde_json::to_value(async_graphql::Response::from_errors(vec![error]))
                .unwrap_or_default();
            finish(&mut body, Stage::Parse, request_id);
            return (request_error_status, body);
        }
    };
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

    request.data = request_data(&state.db, viewer);
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
    let mut body = serde_json::to_value(&response).unwrap_or_default();
    if request_error {
        finish(&mut body, Stage::Request, request_id);
        (request_error_status, body)
    } else {
        finish(&mut body, Stage::Execution, request_id);
        (StatusCode::OK, body)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Parse,
    Request,
    Execution,
}

/// Gives every error a stable code and every internal error the request id; a request
/// error (nothing executed) has no `data` entry at all.
fn finish(body: &mut Value, stage: Stage, request_id: &RequestId) {
    let Value::Object(map) = body else { return };
    if stage != Stage::Execution {
        map.remove("data");
    }
    let Some(Value::Array(errors)) = map.get_mut("errors") else { return };
    for error in errors {
        let Value::Object(error) = error else { continue };
        let message = error.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
        let has_code = error.get("extensions").and_then(|e| e.get("code")).is_some();
        if !has_code {
            let code = match stage {
                Stage::Parse => GRAPHQL_PARSE_FAILED,
                Stage::Request if is_limit_message(&message) => Code::QueryTooComplex.as_str(),
                Stage::Request => GRAPHQL_VALIDATION_FAILED,
                Stage::Execution
                    if message.starts_with("Failed to parse")
                        || message.starts_with("Invalid value") =>
                {
                    Code::ValidationFailed.as_str()
                }
                Stage::Execution => {
                    tracing::error!(error = %message, "uncoded error during execution");
                    error.insert("message".into(), Value::String("internal error".into()));
                    Code::Internal.as_str()
                }
            };
            if let Value::Object(extensions) =
                error.entry("extensions").or_insert_with(|| Value::Object(Map::new()))
            {
                extensions.insert("code".into(), Value::String(code.into()));
            }
        }
        let Some(Value::Object(extensions)) = error.get_mut("extensions") else { continue };
        if extensions.get("code").and_then(Value::as_str) == Some(Code::Internal.as_str()) {
            extensions.insert("requestId".into(), Value::String(request_id.0.clone()));
        }
    }
}

fn is_limit_message(message: &str) -> bool {
    message.contains("too complex")
        || message.contains("nested too deep")
        || message.contains("too many directives")
}

fn error_body(code: &str, message: &str, request_id: &RequestId) -> Value {
    let mut extensions = Map::new();
    extensions.insert("code".into(), Value::String(code.into()));
    if code == Code::Internal.as_str() {
        extensions.insert("requestId".into(), Value::String(request_id.0.clone()));
    }
    json!({ "errors": [{ "message": message, "extensions": extensions }] })
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

fn json_response(status: StatusCode, rt: ResponseType, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(rt.content_type())),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (status, headers, bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_parameters_are_read_strictly() {
        let request =
            params_from_query("query=%7B__typename%7D&variables=%7B%22a%22%3A1%7D").expect("valid");
        assert_eq!(request.query, "{__typename}");
        assert!(params_from_query("variables=%7B%7D").is_err());
        assert!(params_from_query("query=a&query=b").is_err());
        assert!(params_from_query("query=a&variables=%5B%5D").is_err());
    }

    #[test]
    fn json_parameters_reject_wrong_types() {
        assert!(params_from_json(&json!({"query": 1})).is_err());
        assert!(params_from_json(&json!({"query": "{a}", "operationName": 0})).is_err());
        assert!(params_from_json(&json!({"query": "{a}", "variables": "x"})).is_err());
        assert!(params_from_json(&json!({"query": "{a}", "extensions": []})).is_err());
        assert!(params_from_json(&json!({"query": "{a}", "variables": null})).is_ok());
    }
}
