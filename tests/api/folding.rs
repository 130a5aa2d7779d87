//! One case-folding rule (Unicode, not the server's locale): names, usernames, e-mails,
//! actors, hostnames and rule names compare equal ignoring case in uniqueness, lookups,
//! filters and list paging, with non-ASCII letters (Ä/ä, Å/å, Σ/σ/ς) too.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code};

pub(crate) async fn upsert_subject(app: &TestApp, username: &str) -> Value {
    let body = app
        .mutate(
            &app.admin_token,
            "upsertSubject",
            json!({ "username": username }),
            "subject { id username }",
        )
        .await;
    assert!(body.get("errors").is_none(), "upsertSubject {username}: {body}");
    body["data"]["upsertSubject"]["subject"].clone()
}

async fn data(app: &TestApp, query: &str, variables: Value) -> Value {
    let (status, body) = app.graphql(&app.admin_token, query, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn case_names_clash_ignoring_unicode_case() {
    let app = TestApp::new().await;
    for (first, twin) in [
        ("Ärger", "ärger"),
        ("Ärger im Büro", "ÄRGER IM BÜRO"),
        ("Åsa review", "åSA REVIEW"),
        ("ΣΑΣ", "σας"),
    ] {
        app.case_named(first).await;
        let body = app
            .mutate(&app.admin_token, "createCase", json!({ "name": twin }), "case { id }")
            .await;
        assert_eq!(error_code(&body), Some("NAME_TAKEN"), "{twin} after {first}: {body}");
    }
    let renamed = app.case_named("Other").await;
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({ "id": renamed["id"], "name": "ÄRGER" }),
            "case { id }",
        )
        .await;
    assert_eq!(error_code(&body), Some("NAME_TAKEN"), "rename: {body}");
    let data = app.query_ok("{ cases { totalCount } }").await;
    assert_eq!(data["cases"]["totalCount"], 5);
}

#[tokio::test]
async fn upsert_subject_finds_the_same_subject_by_a_non_ascii_username_in_any_case() {
    let app = TestApp::new().await;
    let first = upsert_subject(&app, "ÅSA@example.com").await;
    let again = upsert_subject(&app, "åsa@EXAMPLE.com").await;
    assert_eq!(again["id"], first["id"], "one subject");
    assert_eq!(again["username"], "ÅSA@example.com", "the username as first given");
    let sigma = upsert_subject(&app, "ΣΑΣ@example.com").await;
    assert_eq!(upsert_subject(&app, "σας@example.com").await["id"], sigma["id"]);

    for lookup in ["åsa@example.com", "ÅSA@EXAMPLE.COM", "A\u{30a}sa@example.com"] {
        let found = data(
            &app,
            "query($u: String!) { subject(username: $u) { id } }",
            json!({ "u": lookup }),
        )
        .await;
        assert_eq!(found["subject"]["id"], first["id"], "subject(username: {lookup:?})");
    }
    let count = app.query_ok("{ subjects { totalCount } }").await;
    assert_eq!(count["subjects"]["totalCount"], 2);
    let filtered = data(
        &app,
        "query($f: SubjectFilter) { subjects(filter: $f) { nodes { id } } }",
        json!({ "f": { "usernameContains": "ÅS" } }),
    )
    .await;
    assert_eq!(filtered["subjects"]["nodes"], json!([{ "id": first["id"] }]));
}

#[tokio::test]
async fn case_filters_by_name_and_subject_ignore_unicode_case() {
    let app = TestApp::new().await;
    let subject = upsert_subject(&app, "åsa@example.com").await;
    let case = app
        .create_case(
            &app.admin_token.clone(),
            json!({ "name": "Ärger mit Åsa", "subjectId": subject["id"] }),
        )
        .await;
    app.case_named("Something else").await;
    for filter in [
        json!({ "nameContains": "ÄRGER" }),
        json!({ "nameContains": "mit åSA" }),
        json!({ "subjectUsername": "ÅSA@example.com" }),
    ] {
        let found = data(
            &app,
            "query($f: CaseFilter) { cases(filter: $f) { nodes { id } } }",
            json!({ "f": filter }),
        )
        .await;
        assert_eq!(found["cases"]["nodes"], json!([{ "id": case["id"] }]), "{filter}");
    }
}

#[tokio::test]
async fn detection_filters_and_the_actors_subject_ignore_unicode_case() {
    let app = TestApp::new().await;
    let subject = upsert_subject(&app, "ÅSA@example.com").await;
    let mut matching = detection("fold-1", 2);
    matching["actor"] = json!("åsa@example.com");
    matching["device"] = json!({ "hostname": "SÖDERMALM-01" });
    matching["ruleName"] = json!("ΣΑΣ Übung");
    let other = detection("fold-2", 2);
    let ids = app.ingest(&app.admin_token.clone(), vec![matching, other]).await;
    for filter in [
        json!({ "actor": "ÅSA@EXAMPLE.COM" }),
        json!({ "deviceHostname": "södermalm-01" }),
        json!({ "ruleName": "σας übung" }),
    ] {
        let found = data(
            &app,
            "query($f: DetectionFilter) { detections(filter: $f) { nodes { id subject { id } } } }",
            json!({ "f": filter }),
        )
        .await;
        assert_eq!(
            found["detections"]["nodes"],
            json!([{ "id": ids[0], "subject": { "id": subject["id"] } }]),
            "{filter}"
        );
    }
    let activity = data(
        &app,
        "query($u: String!) { subject(username: $u) { recentActivity(days: 3650) { nodes { id } } } }",
        json!({ "u": "åsa@example.com" }),
    )
    .await;
    assert_eq!(activity["subject"]["recentActivity"]["nodes"], json!([{ "id": ids[0] }]));
}

#[tokio::test]
async fn user_e_mails_clash_ignoring_unicode_case() {
    let app = TestApp::new().await;
    let input = |email: &str| json!({ "email": email, "displayName": "Öle", "role": "ANALYST" });
    let body =
        app.mutate(&app.admin_token, "createUser", input("Öle@acme.test"), "user { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
    for twin in ["öle@acme.test", "O\u{308}LE@ACME.TEST"] {
        let body = app.mutate(&app.admin_token, "createUser", input(twin), "user { id }").await;
        assert_eq!(error_code(&body), Some("NAME_TAKEN"), "{twin}: {body}");
    }
}

/// Every node of a list walked with `first: 2`, and the same list read in one page.
async fn walk(app: &TestApp, field: &str, key: &str) -> (Vec<String>, Vec<String>) {
    let all =
        data(app, &format!("{{ {field}(first: 100) {{ nodes {{ {key} }} }} }}"), json!({})).await;
    let all: Vec<String> = all[field]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n[key].as_str().expect("key").to_owned())
        .collect();
    let mut walked = Vec::new();
    let mut after = Value::Null;
    for _ in 0..50 {
        let page = data(
            app,
            &format!(
                "query($after: String) {{ {field}(first: 2, after: $after) {{ nodes {{ {key} }} pageInfo {{ hasNextPage endCursor }} }} }}"
            ),
            json!({ "after": after }),
        )
        .await;
        for node in page[field]["nodes"].as_array().expect("nodes") {
            walked.push(node[key].as_str().expect("key").to_owned());
        }
        if page[field]["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = page[field]["pageInfo"]["endCursor"].clone();
    }
    (walked, all)
}

const MIXED: [&str; 9] = [
    "Ärger@x.test",
    "arzt@x.test",
    "äsop@x.test",
    "Åsa@x.test",
    "azur@x.test",
    "ΣΑΣ@x.test",
    "σβ@x.test",
    "Zoe@x.test",
    "éa@x.test",
];

fn folded_order(values: &[String]) -> Vec<String> {
    let mut sorted = values.to_vec();
    sorted.sort_by_key(|v| casefile::models::fold::fold(v));
    sorted
}

#[tokio::test]
async fn the_user_list_pages_by_e_mail_over_non_ascii_values_without_skips_or_repeats() {
    let app = TestApp::new().await;
    for email in MIXED {
        let input = json!({ "email": email, "displayName": "U", "role": "READ_ONLY" });
        let body = app.mutate(&app.admin_token, "createUser", input, "user { id }").await;
        assert!(body.get("errors").is_none(), "{email}: {body}");
    }
    let (walked, all) = walk(&app, "users", "email").await;
    assert_eq!(all.len(), MIXED.len() + 1, "the admin too");
    assert_eq!(walked, all, "pages of two, walked through");
    assert_eq!(all, folded_order(&all), "ordered by the folded e-mail");
}

#[tokio::test]
async fn the_subject_list_pages_by_username_over_non_ascii_values_without_skips_or_repeats() {
    let app = TestApp::new().await;
    for username in MIXED {
        upsert_subject(&app, username).await;
    }
    let (walked, all) = walk(&app, "subjects", "username").await;
    assert_eq!(all.len(), MIXED.len());
    assert_eq!(walked, all, "pages of two, walked through");
    assert_eq!(all, folded_order(&all), "ordered by the folded username");
}
