//! The malformed-request corpus: a table of requests no client should send (invalid JSON
//! and UTF-8, wrong types for every kind of argument, huge strings and numbers, deep
//! nesting, forged cursors and ids, broken headers, path traversal), replayed against the
//! real router. Each must be refused (a 4xx or a coded GraphQL error) without harm.

mod entries;
mod graphql;
mod rest;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    Answer, REQUEST_TIMEOUT, harmless, ndjson_refused, post_graphql, refused, send, shorten,
};
use crate::common::TestApp;
use crate::common::fixtures::detection;
use casefile::models::users::Role;

/// One malformed request.
pub enum Sent {
    /// This body POSTed to `/graphql` as `application/json`.
    Body(Vec<u8>),
    /// One operation and its variables, as JSON.
    Operation(String, Value),
    /// This body POSTed to `/ingest/detections` as NDJSON.
    Ndjson(Vec<u8>),
    /// These bytes written on a connection of their own, as they are (the request line,
    /// headers and body).
    Raw(Vec<u8>),
    /// Like `Raw`, then the client stops writing (a body cut short).
    Cut(Vec<u8>),
    /// A GET of this path (and query), as the admin.
    Get(String),
}

/// What an entry must answer.
pub enum Expect {
    /// A 4xx or a coded GraphQL error.
    Refused,
    /// `data.<field>` null without an error: a read of an id that names nothing of the
    /// viewer's (DESIGN: another tenant's id answers as one that does not exist).
    Null(&'static str),
    /// Harmless, whether refused or not (a request within the rules, however odd).
    Harmless,
}

/// A named entry of the corpus.
pub struct Entry {
    pub name: String,
    pub sent: Sent,
    pub expect: Expect,
}

impl Entry {
    pub fn new(name: impl Into<String>, sent: Sent) -> Self {
        Entry { name: name.into(), sent, expect: Expect::Refused }
    }

    /// A read that must find nothing: `data.<field>` null.
    pub fn null(
        name: impl Into<String>,
        field: &'static str,
        query: &str,
        variables: Value,
    ) -> Self {
        Entry { expect: Expect::Null(field), ..Entry::op(name, query, variables) }
    }

    pub fn op(name: impl Into<String>, query: &str, variables: Value) -> Self {
        Entry::new(name, Sent::Operation(query.to_owned(), variables))
    }

    pub fn body(name: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Entry::new(name, Sent::Body(body.into()))
    }
}

/// What the corpus's entries refer to: the admin's own objects, another tenant's, and
/// cursors the server made.
pub struct Fixture {
    pub token: String,
    pub case_id: String,
    pub case_number: i64,
    pub detection_id: String,
    pub foreign_case_id: String,
    pub foreign_detection_id: String,
    /// An `endCursor` of `cases` (by the time of the last change), of `cases` by name,
    /// and of `detections`.
    pub case_cursor: String,
    pub name_cursor: String,
    pub detection_cursor: String,
}

impl Fixture {
    pub async fn new(app: &TestApp) -> Fixture {
        let token = app.admin_token.clone();
        let detections = app.ingest(&token, vec![detection("corpus-1", 2)]).await;
        let case = app.case_named("Corpus case").await;
        app.case_named("Corpus case 2").await;
        let tenant = app.create_tenant("Other tenant", &[]).await;
        let (_, other) = app.create_user(tenant, Role::Admin).await;
        let foreign_detection = app.ingest(&other, vec![detection("foreign-1", 2)]).await;
        let foreign_case = app.create_case(&other, json!({ "name": "Not yours" })).await;
        let data = app
            .query_ok(
                "{ cases(first: 1) { pageInfo { endCursor } } \
                 byName: cases(first: 1, orderBy: { field: NAME, direction: ASC }) { \
                   pageInfo { endCursor } } \
                 detections(first: 1) { pageInfo { endCursor } } }",
            )
            .await;
        let cursor =
            |list: &str| data[list]["pageInfo"]["endCursor"].as_str().expect("a cursor").to_owned();
        Fixture {
            token,
            case_id: case["id"].as_str().expect("id").to_owned(),
            case_number: case["number"].as_i64().expect("number"),
            detection_id: detections[0].clone(),
            foreign_case_id: foreign_case["id"].as_str().expect("id").to_owned(),
            foreign_detection_id: foreign_detection[0].clone(),
            case_cursor: cursor("cases"),
            name_cursor: cursor("byName"),
            detection_cursor: cursor("detections"),
        }
    }
}

/// `cursor`'s JSON with `edit` applied, encoded again (a forged cursor).
pub fn forge_cursor(cursor: &str, edit: impl FnOnce(&mut Value)) -> String {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).expect("a cursor is base64");
    let mut value: Value = serde_json::from_slice(&bytes).expect("a cursor is JSON");
    edit(&mut value);
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Replays one entry; the answer and the text it sent.
async fn replay(app: &TestApp, sent: &Sent) -> Result<(Answer, String), String> {
    Ok(match sent {
        Sent::Body(body) => {
            (post_graphql(app, body.clone()).await?, String::from_utf8_lossy(body).into_owned())
        }
        Sent::Operation(query, variables) => {
            let body = json!({ "query": query, "variables": variables }).to_string();
            (post_graphql(app, body.clone()).await?, body)
        }
        Sent::Ndjson(body) => {
            let request = app
                .http
                .post(app.url("/ingest/detections"))
                .bearer_auth(&app.admin_token)
                .header("content-type", "application/x-ndjson")
                .body(body.clone());
            (send(request).await?, String::from_utf8_lossy(body).into_owned())
        }
        Sent::Raw(bytes) => {
            (raw(app, bytes, false).await?, String::from_utf8_lossy(bytes).into_owned())
        }
        Sent::Cut(bytes) => {
            (raw(app, bytes, true).await?, String::from_utf8_lossy(bytes).into_owned())
        }
        Sent::Get(path) => {
            let request = app.http.get(app.url(path)).bearer_auth(&app.admin_token);
            (send(request).await?, path.clone())
        }
    })
}

/// Writes `bytes` on a connection of its own (then stops writing when `cut`), and reads
/// the answer to its end (the request asks the server to close).
pub async fn raw(app: &TestApp, bytes: &[u8], cut: bool) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await?;
        stream.write_all(bytes).await?;
        if cut {
            stream.shutdown().await?;
        }
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| "no answer within the timeout (a hang)".to_owned())?
        .map_err(|e| format!("the connection broke: {e}"))?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {}", shorten(&text)))?;
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok(Answer { status, text: body })
}

/// A raw request to `path` with these extra header lines and this body, as the admin.
pub fn raw_request(
    method: &str,
    path: &str,
    token: &str,
    headers: &[&str],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         authorization: Bearer {token}\r\n"
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Whether the answer is harmless and says `field` is null, with no error.
fn found_nothing(answer: &Answer, sent: &str, field: &str) -> Result<(), String> {
    harmless(answer, sent)?;
    let body = answer.json();
    if answer.status == 200 && body.get("errors").is_none() && body["data"][field].is_null() {
        Ok(())
    } else {
        Err(format!("expected `{field}` null: {} {}", answer.status, shorten(&answer.text)))
    }
}

/// Replays every entry (a few at a time) and fails with the list of those that did harm
/// or were accepted.
async fn replay_all(app: &TestApp, entries: Vec<Entry>) -> usize {
    use futures_util::StreamExt as _;
    let count = entries.len();
    let failures: Vec<String> = futures_util::stream::iter(entries)
        .map(|entry| async move {
            let outcome = match replay(app, &entry.sent).await {
                Ok((answer, sent)) => match entry.expect {
                    Expect::Refused if matches!(entry.sent, Sent::Ndjson(_)) => {
                        ndjson_refused(&answer, &sent)
                    }
                    Expect::Refused => refused(&answer, &sent),
                    Expect::Null(field) => found_nothing(&answer, &sent, field),
                    Expect::Harmless => harmless(&answer, &sent),
                },
                Err(why) => Err(why),
            };
            outcome.err().map(|why| format!("{}: {why}", entry.name))
        })
        .buffer_unordered(4)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} of {count} entries did harm:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

#[tokio::test]
async fn every_malformed_graphql_request_is_refused_with_a_code() {
    let app = TestApp::new().await;
    let fixture = Fixture::new(&app).await;
    let entries = graphql::entries(&fixture);
    let count = replay_all(&app, entries).await;
    eprintln!("graphql corpus: {count} entries");
    // The server still serves after the corpus.
    assert!(app.query_ok("{ viewer { email } }").await["viewer"]["email"].is_string());
}

#[tokio::test]
async fn every_malformed_argument_is_refused_with_a_code() {
    let app = TestApp::new().await;
    let fixture = Fixture::new(&app).await;
    let entries = entries::entries(&fixture);
    let count = replay_all(&app, entries).await;
    eprintln!("argument corpus: {count} entries");
}

#[tokio::test]
async fn every_malformed_ingest_upload_and_export_request_is_refused() {
    let app = TestApp::new().await;
    let fixture = Fixture::new(&app).await;
    let entries = rest::entries(&fixture);
    let count = replay_all(&app, entries).await;
    eprintln!("REST corpus: {count} entries");
    let (status, _) = app.graphql(&app.admin_token, "{ viewer { id } }", json!({})).await;
    assert_eq!(status, 200);
}
