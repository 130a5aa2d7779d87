//! Property tests over the real router: random and garbled GraphQL documents, random
//! values for typed inputs, random and forged cursors, random global ids, random NDJSON
//! lines and random upload headers. Every answer must be harmless (`super::harmless`).
//! Each property runs a fixed number of cases on one app, without persisted failures.

mod values;

use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use super::corpus::{Fixture, forge_cursor, raw, raw_request};
use super::{harmless, operation, post_graphql, send};
use crate::common::TestApp;
use crate::common::fixtures::detection;
use values::{input_object, json_value, nasty_text};

/// Cases per property: enough to reach the odd corner, few enough that the file runs in
/// well under a minute on a loaded two-core machine.
const CASES: u32 = 64;

/// Runs `check` on `CASES` values of the strategy, against one app and its fixture, on a
/// runtime of its own (proptest's runner is synchronous). A failure is shrunk a little and
/// reported with its smallest value.
fn property<S, C, F>(strategy: impl FnOnce(&Fixture) -> S, check: C)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    C: Fn(Arc<TestApp>, Arc<Fixture>, S::Value) -> F,
    F: Future<Output = Result<(), String>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (app, fixture) = runtime.block_on(async {
        let app = TestApp::new().await;
        let fixture = Fixture::new(&app).await;
        (Arc::new(app), Arc::new(fixture))
    });
    let strategy = strategy(&fixture);
    let config =
        Config { failure_persistence: None, max_shrink_iters: 200, ..Config::with_cases(CASES) };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        runtime.block_on(check(app.clone(), fixture.clone(), value)).map_err(TestCaseError::fail)
    });
    runtime.block_on(async move { drop(app) });
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// Valid documents to garble.
const DOCUMENTS: [&str; 6] = [
    "{ viewer { id email } }",
    "query($n: Int) { cases(first: $n, orderBy: { field: NAME, direction: ASC }) { edges { cursor node { id name } } } }",
    "mutation { createCase(input: { name: \"x\", severity: HIGH }) { case { id version } } }",
    "{ detections(filter: { minSeverity: HIGH, observedAt: { from: \"2026-01-01T00:00:00Z\" } }) { totalCount } }",
    "query Q { node(id: \"abc\") { ... on Case { name } __typename } }",
    "{ caseStats(window: P30D) { __typename } }",
];

/// A garbled document: a valid one with bytes cut, doubled or replaced, random text from
/// GraphQL's punctuation, or a random nesting of selections, lists and objects.
fn garbled_document() -> impl Strategy<Value = String> {
    let edited = (
        0..DOCUMENTS.len(),
        prop::collection::vec((any::<prop::sample::Index>(), 0..4u8, any::<char>()), 1..8),
    )
        .prop_map(|(doc, edits)| {
            let mut chars: Vec<char> = DOCUMENTS[doc].chars().collect();
            for (at, op, c) in edits {
                if chars.is_empty() {
                    break;
                }
                let at = at.index(chars.len());
                match op {
                    0 => {
                        chars.remove(at);
                    }
                    1 => chars.insert(at, c),
                    2 => chars[at] = c,
                    _ => {
                        let tail: Vec<char> = chars[at..].to_vec();
                        chars.extend(tail);
                    }
                }
            }
            chars.into_iter().collect()
        });
    let punctuation = "[{}()\\[\\]:$@!.=|&\" a-z0-9_,\n\\\\#-]{0,300}";
    let nesting = (0..3u8, 1..400usize).prop_map(|(kind, depth)| match kind {
        0 => format!("{}{{ id }}{}", "{ viewer ".repeat(depth), " }".repeat(depth)),
        1 => format!(
            "{{ cases(filter: {{ status: {}NEW{} }}) {{ totalCount }} }}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        _ => format!(
            "{{ cases(filter: {}\"x\"{}) {{ totalCount }} }}",
            "{ search: ".repeat(depth),
            " }".repeat(depth)
        ),
    });
    prop_oneof![4 => edited, 2 => punctuation.prop_map(String::from), 1 => any::<String>(), 2 => nesting]
}

#[test]
fn garbled_documents_never_hurt() {
    property(
        |_| garbled_document(),
        |app, _, document| async move {
            let answer = operation(&app, &document, json!({})).await?;
            harmless(&answer, &document)
        },
    );
}

/// Operations with one variable `$v` of an input type, and the input's fields.
fn typed_operations(fixture: &Fixture) -> Vec<(&'static str, Value)> {
    let _ = fixture;
    vec![
        (
            "mutation($v: CreateCaseInput!) { createCase(input: $v) { case { id name } } }",
            json!("CreateCaseInput"),
        ),
        (
            "mutation($v: UpdateCaseInput!) { updateCase(input: $v) { case { id version } } }",
            json!("UpdateCaseInput"),
        ),
        (
            "query($v: CaseFilter) { cases(filter: $v) { totalCount edges { node { id } } } }",
            json!("CaseFilter"),
        ),
        (
            "query($v: DetectionFilter) { detections(filter: $v) { totalCount } }",
            json!("DetectionFilter"),
        ),
        (
            "mutation($v: [DetectionInput!]!) { ingestDetections(input: { detections: $v }) { accepted } }",
            json!("DetectionInput"),
        ),
        (
            "mutation($v: UpsertSubjectInput!) { upsertSubject(input: $v) { subject { id } } }",
            json!("UpsertSubjectInput"),
        ),
        (
            "mutation($v: PostMessageInput!) { postMessage(input: $v) { message { id } } }",
            json!("PostMessageInput"),
        ),
        (
            "query($v: SubjectFilter) { subjects(filter: $v) { totalCount } }",
            json!("SubjectFilter"),
        ),
        (
            "query($v: AuditEventFilter) { auditEvents(filter: $v) { totalCount } }",
            json!("AuditEventFilter"),
        ),
    ]
}

#[test]
fn random_values_for_typed_inputs_never_hurt() {
    property(
        |fixture| {
            let operations = typed_operations(fixture);
            let case_id = fixture.case_id.clone();
            let detection_id = fixture.detection_id.clone();
            (0..operations.len()).prop_flat_map(move |i| {
                let (query, input) = operations[i].clone();
                let input = input.as_str().expect("a name").to_owned();
                let value = prop_oneof![
                    4 => input_object(&input, &case_id, &detection_id),
                    1 => json_value(),
                ];
                let value = if input == "DetectionInput" {
                    prop::collection::vec(value, 1..4).prop_map(Value::Array).boxed()
                } else {
                    value.boxed()
                };
                (Just(query), value)
            })
        },
        |app, _, (query, value)| async move {
            let variables = json!({ "v": value });
            let answer = operation(&app, query, variables.clone()).await?;
            harmless(&answer, &variables.to_string())
        },
    );
}

/// Random cursor text: random strings, base64 of random bytes, and cursors the server
/// made with their key, tie-breaker or order replaced by random values.
fn cursor_text(fixture: &Fixture) -> impl Strategy<Value = String> + use<> {
    let cursors = [
        fixture.case_cursor.clone(),
        fixture.name_cursor.clone(),
        fixture.detection_cursor.clone(),
    ];
    let forged = (0..3usize, json_value(), 0..4u8).prop_map(move |(which, a, part)| {
        forge_cursor(&cursors[which], |c| match part {
            0 => c["k"] = a,
            1 => c["t"] = a,
            2 => c["o"] = a,
            _ => c["t"] = json!({ "n": a }),
        })
    });
    let keyed = (
        0..3usize,
        prop_oneof![
            any::<i64>().prop_map(|i| json!({ "i": i })),
            values::time_text().prop_map(|t| json!({ "d": t })),
            nasty_text().prop_map(|t| json!({ "s": t })),
        ],
    )
        .prop_map({
            let cursors = [
                fixture.case_cursor.clone(),
                fixture.name_cursor.clone(),
                fixture.detection_cursor.clone(),
            ];
            move |(which, key)| forge_cursor(&cursors[which], |c| c["k"] = key)
        });
    prop_oneof![
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| STANDARD.encode(b)),
        1 => json_value().prop_map(|v| URL_SAFE_NO_PAD.encode(v.to_string())),
        3 => forged,
        4 => keyed,
    ]
}

#[test]
fn random_cursors_never_hurt() {
    const LISTS: [&str; 5] = [
        "query($c: String) { cases(after: $c) { totalCount edges { cursor } } }",
        "query($c: String) { cases(last: 3, before: $c) { edges { cursor } } }",
        "query($c: String) { cases(after: $c, orderBy: { field: NAME, direction: ASC }) { edges { cursor } } }",
        "query($c: String) { detections(after: $c) { edges { cursor } } }",
        "query($c: String) { detections(last: 2, before: $c, orderBy: { field: OBSERVED_AT, direction: ASC }) { edges { cursor } } }",
    ];
    property(
        |fixture| (0..LISTS.len(), cursor_text(fixture)),
        |app, _, (list, cursor)| async move {
            let variables = json!({ "c": cursor });
            let answer = operation(&app, LISTS[list], variables.clone()).await?;
            harmless(&answer, &variables.to_string())
        },
    );
}

/// Random global ids: random text, base64 of random bytes, and base64 of `Type:text`.
fn global_id(fixture: &Fixture) -> impl Strategy<Value = String> + use<> {
    let kinds = prop::sample::select(vec![
        "Case",
        "Detection",
        "User",
        "Tenant",
        "Subject",
        "Message",
        "Webhook",
        "ApiToken",
        "AuditEvent",
        "Bogus",
        "",
    ]);
    let real = prop::sample::select(vec![
        fixture.case_id.clone(),
        fixture.foreign_case_id.clone(),
        fixture.detection_id.clone(),
        fixture.foreign_detection_id.clone(),
    ]);
    prop_oneof![
        any::<String>(),
        nasty_text(),
        prop::collection::vec(any::<u8>(), 0..80).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        (
            kinds,
            prop_oneof![
                nasty_text(),
                any::<u128>().prop_map(|u| uuid::Uuid::from_u128(u).to_string())
            ]
        )
            .prop_map(|(kind, rest)| URL_SAFE_NO_PAD.encode(format!("{kind}:{rest}"))),
        (real, 0..4u8).prop_map(|(id, cut)| id[..id.len() - usize::from(cut)].to_owned()),
    ]
}

#[test]
fn random_global_ids_never_hurt() {
    const USES: [&str; 6] = [
        "query($i: ID!) { node(id: $i) { id __typename } }",
        "query($i: ID!) { nodes(ids: [$i, $i]) { id } }",
        "query($i: ID!) { case(id: $i) { id } detection(id: $i) { id } subject(id: $i) { id } }",
        "mutation($i: ID!) { updateCase(input: { id: $i, name: \"renamed\" }) { case { id } } }",
        "mutation($i: ID!) { postMessage(input: { caseId: $i, body: \"hi\" }) { message { id } } }",
        "query($i: ID!) { cases(filter: { assigneeIds: [$i], hasDetection: $i }) { totalCount } }",
    ];
    property(
        |fixture| (0..USES.len(), global_id(fixture)),
        |app, _, (use_, id)| async move {
            let variables = json!({ "i": id });
            let answer = operation(&app, USES[use_], variables.clone()).await?;
            harmless(&answer, &variables.to_string())
        },
    );
}

/// An NDJSON body: lines that are good detections with one field replaced by a random
/// value, random JSON, or random bytes.
fn ndjson_body() -> impl Strategy<Value = Vec<u8>> {
    let fields = prop::sample::select(vec![
        "externalId",
        "source",
        "ruleName",
        "description",
        "observedAt",
        "riskScore",
        "riskIndicators",
        "device",
        "actor",
        "mitre",
        "file",
        "raw",
        "bogus",
    ]);
    let edited = (any::<u32>(), fields, prop_oneof![values::plausible(), json_value()]).prop_map(
        |(n, field, value)| {
            let mut d = detection(&format!("prop-{n}"), 8);
            d[field] = value;
            format!("{d}\n").into_bytes()
        },
    );
    let line = prop_oneof![
        6 => edited,
        1 => json_value().prop_map(|v| format!("{v}\n").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ];
    prop::collection::vec(line, 1..6).prop_map(|lines| lines.concat())
}

#[test]
fn random_ndjson_lines_never_hurt() {
    property(
        |_| ndjson_body(),
        |app, _, body| async move {
            let request = app
                .http
                .post(app.url("/ingest/detections"))
                .bearer_auth(&app.admin_token)
                .header("content-type", "application/x-ndjson")
                .body(body.clone());
            let answer = send(request).await?;
            let sent = String::from_utf8_lossy(&body);
            harmless(&answer, &sent)?;
            if answer.status != 200 {
                return Err(format!("NDJSON answered {}: {}", answer.status, answer.text));
            }
            let summary = answer.json();
            for rejected in summary["rejected"].as_array().cloned().unwrap_or_default() {
                let code = rejected["code"].as_str().unwrap_or("<none>");
                if matches!(code, "INTERNAL" | "UNAVAILABLE" | "<none>") {
                    return Err(format!("a line rejected with {code}: {rejected}"));
                }
            }
            Ok(())
        },
    );
}

/// Header values of any visible ASCII (what a header may carry).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,60}",
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "bytes [0-9]{0,20}-[0-9]{0,20}/[0-9*]{0,20}",
        "[a-z]{1,10}/[a-z+.-]{1,20}(; ?charset=[ -~]{0,10})?",
        "attachment; filename=\"[ -~]{0,40}\"",
    ]
    .prop_map(|v: String| v.trim().to_owned())
}

#[test]
fn random_upload_headers_never_hurt() {
    property(
        |_| {
            (
                prop::option::of(header_value()),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "content-type",
                            "content-range",
                            "content-disposition",
                            "x-file-name",
                            "content-encoding",
                            "expect",
                        ]),
                        header_value(),
                    ),
                    0..4,
                ),
                prop::collection::vec(any::<u8>(), 0..64),
                any::<bool>(),
            )
        },
        |app, fixture, (length, headers, body, with_file)| async move {
            let id =
                if with_file { upload_target(&app).await? } else { fixture.detection_id.clone() };
            let mut lines: Vec<String> =
                headers.iter().map(|(name, value)| format!("{name}: {value}")).collect();
            lines.push(format!(
                "content-length: {}",
                length.clone().unwrap_or_else(|| body.len().to_string())
            ));
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            let request = raw_request(
                "PUT",
                &format!("/detections/{id}/file"),
                &fixture.token,
                &lines,
                &body,
            );
            // A body shorter than its declared length: the client then stops writing.
            let short = length
                .as_deref()
                .and_then(|l| l.parse::<u64>().ok())
                .is_some_and(|l| l > body.len() as u64);
            let answer = raw(&app, &request, short).await?;
            harmless(&answer, &String::from_utf8_lossy(&request))
        },
    );
}

/// A new detection with file metadata and no content yet (an upload target).
async fn upload_target(app: &TestApp) -> Result<String, String> {
    let mut d = detection(&format!("upload-{}", uuid::Uuid::new_v4()), 2);
    d["file"] = json!({ "name": "evidence.bin", "availability": "EXACT_FILE_AVAILABLE" });
    let body = json!({
        "query": "mutation($d: [DetectionInput!]!) { ingestDetections(input: { detections: $d }) { detections { id } } }",
        "variables": { "d": [d] },
    });
    let answer = post_graphql(app, body.to_string()).await?;
    answer.json()["data"]["ingestDetections"]["detections"][0]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no upload target: {}", answer.text))
}
