//! Reading a GraphQL-over-HTTP request: the body's media type and size, and the
//! `query`/`operationName`/`variables`/`extensions` parameters, strictly typed.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use super::persisted;

/// Only `application/json` (UTF-8) bodies are executed.
pub(super) fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
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

pub(super) async fn read_body(
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
pub(super) fn params_from_json(value: &Value) -> Result<async_graphql::Request, String> {
    let Value::Object(map) = value else {
        return Err("the body must be a JSON object (or an array of them)".into());
    };
    let variables = object_param(map.get("variables"), "variables")?;
    let extensions = object_param(map.get("extensions"), "extensions")?;
    let query = match map.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(_) => return Err("`query` must be a string".into()),
        // A persisted query's hash stands for its document.
        None if persisted::is_persisted(extensions.as_ref()) => String::new(),
        None => return Err("`query` is missing".into()),
    };
    let operation_name = match map.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err("`operationName` must be a string".into()),
    };
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
pub(super) fn params_from_query(raw: &str) -> Result<async_graphql::Request, String> {
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
    let query = match query {
        Some(query) => query,
        // A persisted query's hash stands for its document.
        None if persisted::is_persisted(extensions.as_ref()) => String::new(),
        None => return Err("`query` is missing".into()),
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
