//! `POST /ingest/detections`: NDJSON bulk ingestion. Good, duplicate and bad lines in one
//! body (bad JSON, wrong types, a domain rule, an over-long line), the roles, automatic
//! cases, a body of 2,500 lines, and a client that breaks off keeping its committed chunks.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::detection;
use casefile::models::users::Role;

async fn post_ndjson(
    app: &TestApp,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url("/ingest/detections"))
        .header("content-type", "application/x-ndjson")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn lines(items: &[Value]) -> String {
    items.iter().map(|v| format!("{v}\n")).collect()
}

async fn detection_total(app: &TestApp) -> i64 {
    app.query_ok("{ detections(first: 1) { totalCount } }").await["detections"]["totalCount"]
        .as_i64()
        .expect("totalCount")
}

/// (line, code, field) of each rejected line.
fn rejected(body: &Value) -> Vec<(i64, String, Option<String>)> {
    body["rejected"]
        .as_array()
        .unwrap_or_else(|| panic!("no rejected list: {body}"))
        .iter()
        .map(|r| {
            (
                r["line"].as_i64().expect("line"),
                r["code"].as_str().expect("code").to_owned(),
                r["field"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[tokio::test]
async fn good_duplicate_and_bad_lines_each_get_their_answer() {
    let app = TestApp::new().await;
    let mut body = String::new();
    body += &format!("{}\n", detection("nd-1", 2)); // 1 good
    body += &format!("{}\n", detection("nd-1", 2)); // 2 duplicate of line 1
    body += "{\"externalId\": \"nd-x\", \n"; // 3 not JSON
    body += &format!(
        "{}\n",
        json!({ "externalId": "nd-3", "source": "XDR", "ruleName": "R",
        "observedAt": "2026-11-20T10:00:00Z", "riskScore": "high" })
    ); // 4 wrong type
    body += "\n"; // 5 blank: skipped
    body += &format!("{}\n", detection("nd-4", -1)); // 6 a domain rule
    body += &format!("{}\n", detection("nd-5", 3)); // 7 good
    body += &format!("{{\"externalId\": \"{}\"}}\n", "x".repeat(1024 * 1024 + 10)); // 8 too long
    body += &format!(
        "{}\n",
        json!({ "externalId": "nd-6", "source": "XDR", "ruleName": "R",
        "observedAt": "2026-11-20T10:00:00Z", "riskScore": 1, "device": { "hostname": "h", "colour": 1 } })
    ); // 9 unknown field
    body += &detection("nd-7", 4).to_string(); // 10 good, no final newline

    let (status, answer) = post_ndjson(&app, Some(&app.admin_token), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 3, "{answer}");
    assert_eq!(answer["duplicates"], 1, "{answer}");
    assert_eq!(answer["autoCases"], json!([]), "{answer}");
    assert_eq!(
        rejected(&answer),
        vec![
            (3, "VALIDATION_FAILED".to_owned(), None),
            (4, "VALIDATION_FAILED".to_owned(), Some("riskScore".to_owned())),
            (6, "VALIDATION_FAILED".to_owned(), Some("riskScore".to_owned())),
            (8, "VALIDATION_FAILED".to_owned(), None),
            (9, "VALIDATION_FAILED".to_owned(), Some("device.colour".to_owned())),
        ],
        "{answer}"
    );
    for r in answer["rejected"].as_array().expect("rejected") {
        assert!(!r["message"].as_str().expect("message").is_empty(), "{r}");
    }
    assert!(answer["rejected"][3]["message"].as_str().expect("message").contains("1048576"));
    assert_eq!(detection_total(&app).await, 3);

    // Idempotent: the same body again stores nothing new.
    let (status, again) = post_ndjson(&app, Some(&app.admin_token), body).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["accepted"].as_i64(), again["duplicates"].as_i64()), (Some(0), Some(4)));
    assert_eq!(detection_total(&app).await, 3);

    // The stored detection reads back as ingestDetections would store it.
    let data = app
        .query_ok("{ detections(first: 10, orderBy: { field: RISK_SCORE, direction: ASC }) { nodes { externalId riskScore severity device { hostname } } } }")
        .await;
    let nodes = &data["detections"]["nodes"];
    assert_eq!(nodes[0]["externalId"], "nd-1");
    assert_eq!(nodes[0]["severity"], "LOW");
    assert_eq!(nodes[2]["device"]["hostname"], "laptop-1");
}

#[tokio::test]
async fn the_roles_that_may_ingest_and_the_request_errors() {
    let app = TestApp::new().await;
    let body = lines(&[detection("r-1", 1)]);
    let (status, answer) = post_ndjson(&app, None, body.clone()).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    let (_, read_only) = app.create_user(app.tenant_id, Role::ReadOnly).await;
    let (status, answer) = post_ndjson(&app, Some(&read_only), body.clone()).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (_, super_admin) = app.create_user(app.tenant_id, Role::SuperAdmin).await;
    let (status, _) = post_ndjson(&app, Some(&super_admin), body.clone()).await;
    assert_eq!(status, 403);
    assert_eq!(detection_total(&app).await, 0);

    let (_, ingest) = app.create_user(app.tenant_id, Role::Ingest).await;
    let (status, answer) = post_ndjson(&app, Some(&ingest), body.clone()).await;
    assert_eq!((status, answer["accepted"].as_i64()), (200, Some(1)), "{answer}");
    let (_, analyst) = app.create_user(app.tenant_id, Role::Analyst).await;
    let (status, answer) = post_ndjson(&app, Some(&analyst), lines(&[detection("r-2", 1)])).await;
    assert_eq!((status, answer["accepted"].as_i64()), (200, Some(1)), "{answer}");

    // Another media type is refused before anything is read.
    let response = app
        .http
        .post(app.url("/ingest/detections"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body(lines(&[detection("r-3", 1)]))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 415);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert_eq!(detection_total(&app).await, 2);
}

#[tokio::test]
async fn high_risk_lines_open_automatic_cases_as_ingest_detections_does() {
    let app = TestApp::new().await;
    let items: Vec<Value> = (0..5).map(|i| detection(&format!("auto-{i}"), 9)).collect();
    let (status, answer) = post_ndjson(&app, Some(&app.admin_token), lines(&items)).await;
    assert_eq!(status, 200, "{answer}");
    let numbers = answer["autoCases"].as_array().expect("autoCases");
    assert_eq!(numbers.len(), 1, "{answer}");
    let number = numbers[0].as_i64().expect("a case number");
    let (_, body) = app
        .graphql(
            &app.admin_token,
            "query($n: Int) { case(number: $n) { autoCreated detectionCount riskSummary { critical } } }",
            json!({ "n": number }),
        )
        .await;
    let case = &body["data"]["case"];
    assert_eq!(case["autoCreated"], true, "{body}");
    assert_eq!(case["detectionCount"], 5, "{body}");
    assert_eq!(case["riskSummary"]["critical"], 5, "{body}");
}

#[tokio::test]
async fn a_body_of_2500_lines_is_stored_in_chunks() {
    let app = TestApp::new().await;
    let items: Vec<Value> = (0..2_500).map(|i| detection(&format!("bulk-{i}"), i % 7)).collect();
    let (status, answer) = post_ndjson(&app, Some(&app.admin_token), lines(&items)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2_500, "{answer}");
    assert_eq!(answer["rejected"], json!([]));
    assert_eq!(detection_total(&app).await, 2_500);
    // One `detections.ingested` event per committed chunk of 1,000 lines.
    let events = app.events(app.tenant_id).await;
    let accepted: Vec<i64> = events
        .iter()
        .filter(|e| e.action == "detections.ingested")
        .map(|e| e.changes["accepted"].as_i64().expect("accepted"))
        .collect();
    assert_eq!(accepted, vec![1_000, 1_000, 500]);
}

#[tokio::test]
async fn a_client_that_breaks_off_keeps_the_chunks_that_committed() {
    let app = TestApp::new().await;
    // 1,500 lines, then the body fails: the first 1,000 commit, the other 500 do not.
    let text = lines(&(0..1_500).map(|i| detection(&format!("cut-{i}"), 1)).collect::<Vec<_>>());
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(text.into_bytes()),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ];
    // The failure comes a moment later, so the lines reach the server before the reset.
    let stream = futures_util::StreamExt::then(futures_util::stream::iter(pieces), |piece| async {
        if piece.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        piece
    });
    let body = reqwest::Body::wrap_stream(stream);
    let sent = app
        .http
        .post(app.url("/ingest/detections"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await;
    assert!(
        sent.is_err() || sent.is_ok_and(|r| r.status() != 200),
        "the broken body was not refused"
    );
    // The server may still be finishing the chunk when the client sees the error.
    let mut total = 0;
    for _ in 0..50 {
        total = detection_total(&app).await;
        if total == 1_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(total, 1_000);
}
