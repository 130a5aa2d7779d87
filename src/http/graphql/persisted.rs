//! Apollo's automatic persisted queries: a client sends `extensions.persistedQuery`
//! (`{"version": 1, "sha256Hash": "<hex>"}`) and no `query` once the server knows the
//! document; on `PERSISTED_QUERY_NOT_FOUND` it sends the document with its hash, which
//! is checked and kept (in the bounded document cache, [`Documents`]).

use async_graphql::{Request, Value};

use crate::graphql::documents::{self, Documents};

/// Why a persisted-query request cannot run.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The hash names no document this server knows: the client sends it next.
    NotFound,
    /// The extension is malformed, or the document does not have the hash given.
    Invalid(&'static str),
}

/// The message Apollo's clients read (with `extensions.code`) to send the document.
pub(super) const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";

/// Whether the request's extensions name a persisted query.
pub(super) fn is_persisted(
    extensions: Option<&serde_json::Map<String, serde_json::Value>>,
) -> bool {
    extensions.is_some_and(|e| e.contains_key("persistedQuery"))
}

/// Gives the request its document: the one its persisted-query hash names (when it has
/// no `query`), or its own text checked against the hash and kept; without the extension,
/// its own text through the cache.
pub(super) fn resolve(documents: &Documents, request: &mut Request) -> Result<(), Refusal> {
    let Some(extension) = request.extensions.remove("persistedQuery") else {
        documents.attach(request);
        return Ok(());
    };
    let Value::Object(fields) = &extension else {
        return Err(Refusal::Invalid("`extensions.persistedQuery` must be an object"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_i64() == Some(1) => {}
        _ => return Err(Refusal::Invalid("Unsupported persisted query version")),
    }
    let hash = match fields.get("sha256Hash") {
        Some(Value::String(text)) => {
            parse_hex(text).ok_or(Refusal::Invalid("`sha256Hash` must be 64 hexadecimal digits"))?
        }
        _ => return Err(Refusal::Invalid("`extensions.persistedQuery.sha256Hash` is missing")),
    };
    if request.query.is_empty() {
        let stored = documents.get(&hash).ok_or(Refusal::NotFound)?;
        request.query = stored.text.to_string();
        request.set_parsed_query(async_graphql::parser::types::ExecutableDocument::clone(
            &stored.document,
        ));
        return Ok(());
    }
    if documents::hash(&request.query) != hash {
        return Err(Refusal::Invalid("provided sha does not match query"));
    }
    documents.attach(request);
    Ok(())
}

fn parse_hex(text: &str) -> Option<documents::Hash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_extension(query: &str, extension: serde_json::Value) -> Request {
        let mut request = Request::new(query);
        request
            .extensions
            .insert("persistedQuery".into(), Value::from_json(extension).expect("value"));
        request
    }

    fn hex(text: &str) -> String {
        documents::hash(text).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_hash_is_registered_with_its_document_then_runs_alone() {
        let documents = Documents::default();
        let text = "{ viewer { email } }";
        let ext = serde_json::json!({ "version": 1, "sha256Hash": hex(text) });
        let mut ask = with_extension("", ext.clone());
        assert_eq!(resolve(&documents, &mut ask), Err(Refusal::NotFound));
        let mut register = with_extension(text, ext.clone());
        assert_eq!(resolve(&documents, &mut register), Ok(()));
        let mut again = with_extension("", ext);
        assert_eq!(resolve(&documents, &mut again), Ok(()));
        assert_eq!(again.query, text);
    }

    #[test]
    fn a_wrong_hash_a_bad_version_or_garbage_is_refused() {
        let documents = Documents::default();
        let text = "{ a }";
        let wrong = serde_json::json!({ "version": 1, "sha256Hash": hex("{ b }") });
        assert_eq!(
            resolve(&documents, &mut with_extension(text, wrong)),
            Err(Refusal::Invalid("provided sha does not match query"))
        );
        assert_eq!(documents.size().0, 0, "a mismatched document is not kept");
        let version = serde_json::json!({ "version": 2, "sha256Hash": hex(text) });
        assert!(matches!(
            resolve(&documents, &mut with_extension(text, version)),
            Err(Refusal::Invalid(_))
        ));
        let short = serde_json::json!({ "version": 1, "sha256Hash": "abc" });
        assert!(matches!(
            resolve(&documents, &mut with_extension(text, short)),
            Err(Refusal::Invalid(_))
        ));
        assert!(parse_hex(&"zz".repeat(32)).is_none());
    }
}
