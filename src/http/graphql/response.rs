//! Writing a GraphQL-over-HTTP response: stable error codes, request ids on internal
//! errors, and the negotiated media type.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::{Code, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED};
use crate::http::RequestId;
use crate::http::negotiate::ResponseType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Parse,
    Request,
    Execution,
}

/// Gives every error a stable code and every internal error the request id; a request
/// error (nothing executed) has no `data` entry at all.
pub(super) fn finish(body: &mut Value, stage: Stage, request_id: &RequestId) {
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

pub(super) fn error_body(code: &str, message: &str, request_id: &RequestId) -> Value {
    let mut extensions = Map::new();
    extensions.insert("code".into(), Value::String(code.into()));
    if code == Code::Internal.as_str() {
        extensions.insert("requestId".into(), Value::String(request_id.0.clone()));
    }
    json!({ "errors": [{ "message": message, "extensions": extensions }] })
}

pub(super) fn json_response(status: StatusCode, rt: ResponseType, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(rt.content_type())),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (status, headers, bytes).into_response()
}
