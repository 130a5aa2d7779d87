//! Subjects: the people under investigation, found by username ignoring case, set on
//! cases, and shown with their cases and recent activity.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code, error_field};
use casefile::models::users::Role;

const SUBJECT_FIELDS: &str = "id username displayName department title location managerUsername \
     departureDate watchlists notes createdAt updatedAt";

/// Upserts a subject as `token`; returns the whole response body.
async fn upsert_as(app: &TestApp, token: &str, input: Value) -> Value {
    app.mutate(token, "upsertSubject", input, &format!("subject {{ {SUBJECT_FIELDS} }}")).await
}

/// Upserts a subject as the admin and returns it (fails the test on errors).
async fn upsert(app: &TestApp, input: Value) -> Value {
    let body = upsert_as(app, &app.admin_token, input).await;
    assert!(body.get("errors").is_none(), "upsertSubject failed: {body}");
    body["data"]["upsertSubject"]["subject"].clone()
}

/// Runs a query as the admin with variables and returns `data` (fails the test on errors).
async fn query(app: &TestApp, query: &str, variables: Value) -> Value {
    let (status, body) = app.graphql(&app.admin_token, query, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

fn usernames(connection: &Value) -> Vec<String> {
    let nodes = connection["nodes"].as_array().expect("nodes");
    nodes.iter().map(|n| n["username"].as_str().expect("username").to_lowercase()).collect()
}

#[tokio::test]
async fn upsert_subject_creates_then_updates_the_same_subject_by_username_ignoring_case() {
    let app = TestApp::new().await;
    let created = upsert(
        &app,
        json!({ "username": "Alice@Example.test", "displayName": "Alice Liddell",
                "department": "Finance", "title": "Controller", "location": "Oxford",
                "managerUsername": "queen@example.test", "departureDate": "2027-01-31",
                "watchlists": ["departing"], "notes": "Gave notice" }),
    )
    .await;
    assert_eq!(
        created["username"].as_str().map(str::to_lowercase).as_deref(),
        Some("alice@example.test")
    );
    assert_eq!(created["departureDate"], "2027-01-31");
    assert_eq!(created["watchlists"], json!(["departing"]));

    let updated =
        upsert(&app, json!({ "username": "alice@EXAMPLE.test", "department": "Legal" })).await;
    assert_eq!(updated["id"], created["id"], "same subject");
    assert_eq!(updated["department"], "Legal");
    for untouched in [
        "displayName",
        "title",
        "location",
        "managerUsername",
        "departureDate",
        "watchlists",
        "notes",
        "createdAt",
    ] {
        assert_eq!(updated[untouched], created[untouched], "{untouched} must stay");
    }
    let data = query(&app, "{ subjects { totalCount } }", json!({})).await;
    assert_eq!(data["subjects"]["totalCount"], 1);
}

#[tokio::test]
async fn a_username_that_is_not_an_email_is_refused_and_nothing_is_stored() {
    let app = TestApp::new().await;
    for username in ["not-an-email", "", "alice@", "@example.test", "alice example@example.test"] {
        let body = upsert_as(&app, &app.admin_token.clone(), json!({ "username": username })).await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{username:?}: {body}");
        assert_eq!(error_field(&body), Some("username"), "{username:?}");
    }
    let data = query(&app, "{ subjects { totalCount } }", json!({})).await;
    assert_eq!(data["subjects"]["totalCount"], 0);
}

#[tokio::test]
async fn subject_is_found_by_id_or_by_username_ignoring_case_within_the_tenant() {
    let app = TestApp::new().await;
    let alice = upsert(&app, json!({ "username": "alice@example.test" })).await;
    let other = app.create_tenant("Other", &[]).await;
    let (_, other_token) = app.create_user(other, Role::Admin).await;
    let foreign =
        upsert_as(&app, &other_token, json!({ "username": "mallory@example.test" })).await;
    let foreign_id = foreign["data"]["upsertSubject"]["subject"]["id"].clone();
    assert!(foreign_id.is_string(), "{foreign}");

    let data = query(
        &app,
        "query($id: ID!, $foreign: ID!) { byId: subject(id: $id) { id username } \
         byName: subject(username: \"ALICE@Example.Test\") { id } \
         missing: subject(username: \"nobody@example.test\") { id } \
         theirs: subject(username: \"mallory@example.test\") { id } \
         theirsById: subject(id: $foreign) { id } node(id: $id) { __typename id } }",
        json!({ "id": alice["id"], "foreign": foreign_id }),
    )
    .await;
    assert_eq!(data["byId"], json!({ "id": alice["id"], "username": alice["username"] }));
    assert_eq!(data["byName"], json!({ "id": alice["id"] }));
    assert_eq!(data["missing"], Value::Null);
    assert_eq!(data["theirs"], Value::Null, "another tenant's subject is invisible");
    assert_eq!(data["theirsById"], Value::Null);
    assert_eq!(data["node"], json!({ "__typename": "Subject", "id": alice["id"] }));
}

#[tokio::test]
async fn subjects_are_listed_by_username_filtered_and_paged() {
    let app = TestApp::new().await;
    let people = [
        ("erin@corp.test", "Finance", vec!["departing"]),
        ("bob@example.test", "Finance", vec![]),
        ("dave@corp.test", "Legal", vec!["departing", "contractors"]),
        ("alice@example.test", "Legal", vec!["contractors"]),
        ("carol@example.test", "Sales", vec![]),
    ];
    for (username, department, watchlists) in &people {
        upsert(
            &app,
            json!({ "username": username, "department": department, "watchlists": watchlists }),
        )
        .await;
    }
    let list = "query($filter: SubjectFilter) { subjects(filter: $filter) { totalCount nodes { username } } }";
    let table = [
        (
            json!(null),
            vec![
                "alice@example.test",
                "bob@example.test",
                "carol@example.test",
                "dave@corp.test",
                "erin@corp.test",
            ],
        ),
        (json!({ "usernameContains": "corp" }), vec!["dave@corp.test", "erin@corp.test"]),
        (json!({ "usernameContains": "CORP.TEST" }), vec!["dave@corp.test", "erin@corp.test"]),
        (json!({ "department": "Finance" }), vec!["bob@example.test", "erin@corp.test"]),
        (json!({ "watchlist": "departing" }), vec!["dave@corp.test", "erin@corp.test"]),
        (
            json!({ "watchlist": "contractors", "department": "Legal" }),
            vec!["alice@example.test", "dave@corp.test"],
        ),
        (json!({ "usernameContains": "example", "watchlist": "departing" }), vec![]),
    ];
    for (filter, expected) in table {
        let data = query(&app, list, json!({ "filter": filter })).await;
        assert_eq!(usernames(&data["subjects"]), expected, "filter {filter}");
        assert_eq!(data["subjects"]["totalCount"], json!(expected.len()), "filter {filter}");
    }

    let page = "query($after: String) { subjects(first: 2, after: $after) { totalCount nodes { username } \
                pageInfo { hasNextPage endCursor } } }";
    let (mut seen, mut after) = (Vec::new(), Value::Null);
    for expected_more in [true, true, false] {
        let data = query(&app, page, json!({ "after": after })).await;
        assert_eq!(data["subjects"]["totalCount"], 5);
        assert_eq!(data["subjects"]["pageInfo"]["hasNextPage"], expected_more);
        seen.extend(usernames(&data["subjects"]));
        after = data["subjects"]["pageInfo"]["endCursor"].clone();
    }
    let mut all: Vec<&str> = people.iter().map(|p| p.0).collect();
    all.sort();
    assert_eq!(seen, all);
}

const SET_SUBJECT: &str = "case { version subject { id username } }";

#[tokio::test]
async fn set_case_subject_sets_and_clears_the_subject_and_bumps_the_version() {
    let app = TestApp::new().await;
    let case = app.case_named("Data theft").await;
    let alice = upsert(&app, json!({ "username": "alice@example.test" })).await;
    let token = app.admin_token.clone();

    let input = json!({ "caseId": case["id"], "subjectId": alice["id"] });
    let body = app.mutate(&token, "setCaseSubject", input.clone(), SET_SUBJECT).await;
    assert_eq!(
        body["data"]["setCaseSubject"]["case"],
        json!({ "version": 2, "subject": { "id": alice["id"], "username": alice["username"] } }),
        "{body}"
    );
    let body = app.mutate(&token, "setCaseSubject", input, SET_SUBJECT).await;
    assert_eq!(body["data"]["setCaseSubject"]["case"]["version"], 2, "the same subject is a no-op");

    let clear = json!({ "caseId": case["id"], "subjectId": null });
    let body = app.mutate(&token, "setCaseSubject", clear, SET_SUBJECT).await;
    assert_eq!(body["data"]["setCaseSubject"]["case"], json!({ "version": 3, "subject": null }));
    let read = app.read_case(case["id"].as_str().expect("id")).await;
    assert_eq!((read["version"].clone(), read["subject"].clone()), (json!(3), Value::Null));
}

#[tokio::test]
async fn set_case_subject_to_another_tenants_subject_is_not_found_and_changes_nothing() {
    let app = TestApp::new().await;
    let case = app.case_named("Data theft").await;
    let other = app.create_tenant("Other", &[]).await;
    let (_, other_token) = app.create_user(other, Role::Admin).await;
    let foreign =
        upsert_as(&app, &other_token, json!({ "username": "mallory@example.test" })).await;
    let input = json!({ "caseId": case["id"], "subjectId": foreign["data"]["upsertSubject"]["subject"]["id"] });
    let body = app.mutate(&app.admin_token, "setCaseSubject", input, SET_SUBJECT).await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let read = app.read_case(case["id"].as_str().expect("id")).await;
    assert_eq!(read, case, "the case is unchanged");
}

#[tokio::test]
async fn subject_cases_lists_the_cases_about_that_subject() {
    let app = TestApp::new().await;
    let alice = upsert(&app, json!({ "username": "alice@example.test" })).await;
    let bob = upsert(&app, json!({ "username": "bob@example.test" })).await;
    let mut numbers = Vec::new();
    for (name, subject) in
        [("First", &alice), ("Second", &bob), ("Third", &alice), ("Fourth", &Value::Null)]
    {
        let input = json!({ "name": name, "subjectId": subject["id"] });
        numbers.push(
            app.create_case(&app.admin_token, input).await["number"].as_i64().expect("number"),
        );
    }
    let data = query(
        &app,
        "query($a: ID!, $b: ID!) { a: subject(id: $a) { cases { totalCount nodes { number } } } \
         b: subject(id: $b) { cases { totalCount nodes { number } } } }",
        json!({ "a": alice["id"], "b": bob["id"] }),
    )
    .await;
    let sorted_numbers = |who: &str| {
        let nodes = data[who]["cases"]["nodes"].as_array().expect("nodes");
        let mut found: Vec<i64> =
            nodes.iter().map(|n| n["number"].as_i64().expect("number")).collect();
        found.sort();
        found
    };
    assert_eq!(sorted_numbers("a"), vec![numbers[0], numbers[2]]);
    assert_eq!(data["a"]["cases"]["totalCount"], 2);
    assert_eq!(sorted_numbers("b"), vec![numbers[1]]);
    assert_eq!(data["b"]["cases"]["totalCount"], 1);
}

/// A detection by `actor`, observed `days_ago` days before now.
fn activity(external_id: &str, actor: &str, days_ago: i64, risk_score: i32) -> Value {
    let mut d = detection(external_id, risk_score);
    d["actor"] = json!(actor);
    d["observedAt"] = json!((Utc::now() - Duration::days(days_ago)).to_rfc3339());
    d
}

#[tokio::test]
async fn recent_activity_and_risk_summary_cover_the_subjects_detections_of_the_last_days() {
    let app = TestApp::new().await;
    let carol = upsert(&app, json!({ "username": "carol@example.test" })).await;
    app.ingest(
        &app.admin_token,
        vec![
            activity("old", "Carol@Example.test", 100, 9),
            activity("recent", "carol@example.test", 10, 5),
            activity("newest", "CAROL@example.test", 1, 2),
            activity("someone-else", "dan@example.test", 5, 8),
        ],
    )
    .await;
    let data = query(
        &app,
        "query($id: ID!) { subject(id: $id) { \
         recent: recentActivity { totalCount nodes { externalId } } \
         longer: recentActivity(days: 120) { totalCount nodes { externalId } } \
         risk: riskSummary { critical high medium low informational highest } \
         longerRisk: riskSummary(days: 120) { critical high medium low informational highest } } }",
        json!({ "id": carol["id"] }),
    )
    .await;
    let external_ids = |key: &str| {
        let nodes = data["subject"][key]["nodes"].as_array().expect("nodes");
        let mut ids: Vec<String> = nodes
            .iter()
            .map(|n| n["externalId"].as_str().expect("externalId").to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(external_ids("recent"), ["newest", "recent"], "the last 90 days by default");
    assert_eq!(data["subject"]["recent"]["totalCount"], 2);
    assert_eq!(external_ids("longer"), ["newest", "old", "recent"]);
    assert_eq!(data["subject"]["longer"]["totalCount"], 3);
    assert_eq!(
        data["subject"]["risk"],
        json!({ "critical": 0, "high": 0, "medium": 1, "low": 1, "informational": 0, "highest": "MEDIUM" })
    );
    assert_eq!(
        data["subject"]["longerRisk"],
        json!({ "critical": 1, "high": 0, "medium": 1, "low": 1, "informational": 0, "highest": "CRITICAL" })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_upserts_of_one_username_all_succeed_with_one_subject() {
    let app = std::sync::Arc::new(TestApp::new().await);
    for round in 0..4 {
        let spellings = [
            format!("Race{round}.Äsa@example.test"),
            format!("race{round}.äsa@example.test"),
            format!("RACE{round}.ÄSA@EXAMPLE.TEST"),
            format!("rAcE{round}.äSa@Example.Test"),
        ];
        let calls = (0..8).map(|i| {
            let app = app.clone();
            let username = spellings[i % spellings.len()].clone();
            tokio::spawn(async move {
                upsert_as(&app, &app.admin_token, json!({ "username": username, "title": "T" }))
                    .await
            })
        });
        let bodies = futures_util::future::join_all(calls).await;
        let mut ids = std::collections::HashSet::new();
        for body in bodies {
            let body = body.expect("task");
            assert!(body.get("errors").is_none(), "round {round}: {body}");
            ids.insert(body["data"]["upsertSubject"]["subject"]["id"].clone());
        }
        assert_eq!(ids.len(), 1, "round {round}: one subject for every spelling: {ids:?}");
    }
    let data = query(&app, "{ subjects { totalCount } }", json!({})).await;
    assert_eq!(data["subjects"]["totalCount"], 4);
}
