//! Writing a GraphQL-over-HTTP response: the schema's response serialized straight to
//! bytes (fields in the order the operation selected them), and the negotiated media type.
//! Error codes are set by the schema itself ([`crate::graphql::errors`]), for every transport.

use std::collections::BTreeMap;

use async_graphql::{ErrorExtensionValues, ServerError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Code;
use crate::http::RequestId;
use crate::http::negotiate::ResponseType;

/// A response body as sent: a request error (nothing executed) has no `data` entry at all.
#[derive(Serialize)]
pub(super) struct Body {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ServerError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<async_graphql::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: BTreeMap<String, async_graphql::Value>,
}

impl Body {
    /// The response of an operation that executed.
    pub(super) fn executed(response: async_graphql::Response) -> Self {
        Body { errors: response.errors, data: Some(response.data), extensions: response.extensions }
    }

    /// The response of a request that failed before execution.
    pub(super) fn request_error(response: async_graphql::Response) -> Self {
        Body { errors: response.errors, data: None, extensions: response.extensions }
    }
}

/// A request error found by the HTTP layer itself (before the schema saw the request).
pub(super) fn error_body(code: &str, message: &str, request_id: &RequestId) -> Body {
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    if code == Code::Internal.as_str() {
        extensions.set("requestId", request_id.0.as_str());
    }
    let mut error = ServerError::new(message, None);
    error.extensions = Some(extensions);
    Body { errors: vec![error], data: None, extensions: BTreeMap::new() }
}

pub(super) fn json_response<T: Serialize>(
    status: StatusCode,
    rt: ResponseType,
    body: &T,
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(rt.content_type())),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (status, headers, bytes).into_response()
}
