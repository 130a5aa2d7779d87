//! One measure per limit: a value that passes casefile's own check is never refused by
//! the database with an `INTERNAL` error, and the limits count what they say they count.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code, error_field};

/// A `raw` object whose compact JSON has about `bytes` bytes: an array of zeros, which
/// PostgreSQL's jsonb text writes with a space after every comma (half as long again).
fn raw_of(bytes: usize) -> Value {
    json!({ "zeros": vec![0; bytes / 2] })
}

#[tokio::test]
async fn raw_json_is_measured_compact_once_whatever_jsonb_text_would_measure() {
    let app = TestApp::new().await;
    let raw = raw_of(64 * 1024 - 64);
    let compact = serde_json::to_vec(&raw).expect("json").len();
    assert!(compact <= 64 * 1024, "{compact}");
    let mut item = detection("raw-near-limit", 2);
    item["raw"] = raw.clone();
    let body = app
        .mutate(
            &app.admin_token,
            "ingestDetections",
            json!({ "detections": [item] }),
            "accepted detections { raw }",
        )
        .await;
    assert!(body.get("errors").is_none(), "a payload under the limit is accepted: {body}");
    assert_eq!(body["data"]["ingestDetections"]["accepted"], 1);
    assert_eq!(body["data"]["ingestDetections"]["detections"][0]["raw"], raw, "stored whole");

    let mut item = detection("raw-over-limit", 2);
    item["raw"] = raw_of(64 * 1024 + 64);
    let body = app
        .mutate(&app.admin_token, "ingestDetections", json!({ "detections": [item] }), "accepted")
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{body}");
    assert_eq!(error_field(&body), Some("detections.0.raw"), "{body}");
}

/// An e-mail address of `chars` characters, most of them two bytes long.
fn wide_email(chars: usize) -> String {
    let domain = "@example.test";
    format!("{}{domain}", "ä".repeat(chars - domain.len()))
}

#[tokio::test]
async fn e_mail_addresses_have_at_most_254_characters_not_bytes() {
    let app = TestApp::new().await;
    let at_limit = wide_email(254);
    assert!(at_limit.len() > 254, "more bytes than characters");
    let subject = |username: &str| json!({ "username": username });
    let body = app
        .mutate(&app.admin_token, "upsertSubject", subject(&at_limit), "subject { username }")
        .await;
    assert!(body.get("errors").is_none(), "254 characters are allowed: {body}");
    let user = |email: &str| json!({ "email": email, "displayName": "Wide", "role": "ANALYST" });
    let body = app.mutate(&app.admin_token, "createUser", user(&at_limit), "user { email }").await;
    assert!(body.get("errors").is_none(), "254 characters are allowed: {body}");

    let over = wide_email(255);
    let body =
        app.mutate(&app.admin_token, "upsertSubject", subject(&over), "subject { id }").await;
    assert_eq!(
        (error_code(&body), error_field(&body)),
        (Some("VALIDATION_FAILED"), Some("username")),
        "{body}"
    );
    let body = app.mutate(&app.admin_token, "createUser", user(&over), "user { id }").await;
    assert_eq!(
        (error_code(&body), error_field(&body)),
        (Some("VALIDATION_FAILED"), Some("email")),
        "{body}"
    );
}
