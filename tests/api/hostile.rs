//! Hostile input never hurts: whatever a client sends (garbled documents, wrong types,
//! huge or deeply nested values, forged cursors and ids, injection text, broken headers),
//! the answer is a 4xx or a GraphQL error with an `extensions.code` other than `INTERNAL`,
//! within a timeout, and no answer shows internal text (the database, the ORM, a panic).
//!
//! `properties` draws random inputs (proptest, a fixed number of cases); `corpus` replays a
//! table of malformed requests; `injection` checks that injection text that is accepted
//! comes back verbatim as data and is neutralised where it is exported.

mod corpus;
mod injection;
mod properties;

use std::time::Duration;

use serde_json::Value;

use crate::common::TestApp;

/// Longest any one hostile request may take before it counts as a hang.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Words of internal text no answer may show (unless the request itself sent them).
/// Compared ignoring case; `SQL` alone is compared as written.
const INTERNAL_WORDS: [&str; 8] =
    ["diesel", "panicked", "backtrace", "deadpool", "postgres", "relation", "sqlstate", "tokio"];

/// What the server answered to one hostile request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The `extensions.code` of every error of a GraphQL-shaped body.
    pub fn codes(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["extensions"]["code"].as_str().unwrap_or("<none>").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Sends a request with the hostile-input timeout: a request that takes longer is a hang.
pub async fn send(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let response = request
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("no answer (a hang, or the connection broke): {e}"))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| format!("the body broke off: {e}"))?;
    Ok(Answer { status, text: String::from_utf8_lossy(&bytes).into_owned() })
}

/// POSTs `body` to `/graphql` as JSON, as the admin.
pub async fn post_graphql(app: &TestApp, body: impl Into<reqwest::Body>) -> Result<Answer, String> {
    send(
        app.http
            .post(app.url("/graphql"))
            .bearer_auth(&app.admin_token)
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

/// POSTs one operation with its variables to `/graphql` as the admin.
pub async fn operation(app: &TestApp, query: &str, variables: Value) -> Result<Answer, String> {
    let body = serde_json::json!({ "query": query, "variables": variables });
    post_graphql(app, body.to_string()).await
}

/// Whether the answer did no harm: no 5xx; a 4xx, or a 2xx whose errors all carry a code
/// other than `INTERNAL` and `UNAVAILABLE`; no internal text that the request did not
/// send itself. `sent` is the request's text (its body, headers or path).
pub fn harmless(answer: &Answer, sent: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{why}: {} {}", answer.status, shorten(&answer.text)));
    if answer.status >= 500 {
        return fail("a server error");
    }
    let codes = answer.codes();
    if codes.iter().any(|c| c == "<none>") {
        return fail("an error without extensions.code");
    }
    if codes.iter().any(|c| c == "INTERNAL" || c == "UNAVAILABLE") {
        return fail("an internal error");
    }
    if !(200..500).contains(&answer.status) {
        return fail("an unexpected status");
    }
    let text = answer.text.to_lowercase();
    let sent_lower = sent.to_lowercase();
    for word in INTERNAL_WORDS {
        if text.contains(word) && !sent_lower.contains(word) {
            return fail(&format!("internal text ({word:?})"));
        }
    }
    if answer.text.contains("SQL") && !sent.contains("SQL") {
        return fail("internal text (\"SQL\")");
    }
    Ok(())
}

/// Whether the answer refused the request: harmless, and a 4xx or at least one coded error.
pub fn refused(answer: &Answer, sent: &str) -> Result<(), String> {
    harmless(answer, sent)?;
    if answer.status >= 400 || !answer.codes().is_empty() {
        Ok(())
    } else {
        Err(format!("accepted: {} {}", answer.status, shorten(&answer.text)))
    }
}

/// Whether an NDJSON ingest refused every line: harmless, and a 4xx, or nothing accepted
/// and every rejected line coded (not `INTERNAL`).
pub fn ndjson_refused(answer: &Answer, sent: &str) -> Result<(), String> {
    harmless(answer, sent)?;
    if answer.status >= 400 {
        return Ok(());
    }
    let body = answer.json();
    let rejected = body["rejected"].as_array().cloned().unwrap_or_default();
    let coded = rejected.iter().all(|r| {
        r["code"].as_str().is_some_and(|code| code != "INTERNAL" && code != "UNAVAILABLE")
    });
    if body["accepted"] == 0 && !rejected.is_empty() && coded {
        Ok(())
    } else {
        Err(format!(
            "not every line refused with a code: {} {}",
            answer.status,
            shorten(&answer.text)
        ))
    }
}

/// The text cut to a readable length for a failure message.
pub fn shorten(text: &str) -> String {
    if text.chars().count() <= 600 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(600).collect::<String>())
    }
}
