//! The rules a case obeys: names, lengths, sanitized findings, closed and archived cases,
//! optimistic versions, the 10,000-detection limit, service requests and licenses,
//! assignees, and what each mutation changes. Every refusal leaves the case as it was.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{CASE_FIELDS, detection, error_code, error_field};
use casefile::graphql::ids::{self, Kind};
use casefile::models::tenants::License;
use casefile::models::users::Role;

const ALL_STATUSES: &str = "[NEW INVESTIGATING ON_HOLD ACTION_REQUIRED RESOLVED ARCHIVED]";

/// The case with this id as `token` sees it, with [`CASE_FIELDS`].
async fn read(app: &TestApp, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ case(id: $id) {{ {CASE_FIELDS} }} }}");
    let (_, body) = app.graphql(token, &query, json!({ "id": id })).await;
    assert!(body["data"]["case"].is_object(), "no case {id}: {body}");
    body["data"]["case"].clone()
}

/// How many cases of any status and kind `token`'s tenant has.
async fn case_total(app: &TestApp, token: &str) -> i64 {
    let query = format!("{{ cases(filter: {{ status: {ALL_STATUSES} }}) {{ totalCount }} }}");
    let (_, body) = app.graphql(token, &query, json!({})).await;
    body["data"]["cases"]["totalCount"].as_i64().unwrap_or_else(|| panic!("totalCount: {body}"))
}

/// Runs `mutation` and asserts it fails with `code` (and `extensions.field` when given).
async fn expect_error(
    app: &TestApp,
    token: &str,
    mutation: &str,
    input: Value,
    code: &str,
    field: Option<&str>,
) {
    let body = app.mutate(token, mutation, input.clone(), "clientMutationId").await;
    assert_eq!(error_code(&body), Some(code), "{mutation} {input}: {body}");
    if field.is_some() {
        assert_eq!(error_field(&body), field, "{mutation} {input}: {body}");
    }
}

/// Like [`expect_error`], and the case reads back exactly as before (version, fields, counts).
async fn refused_unchanged(
    app: &TestApp,
    token: &str,
    case_id: &str,
    mutation: &str,
    input: Value,
    code: &str,
    field: Option<&str>,
) {
    let before = read(app, token, case_id).await;
    expect_error(app, token, mutation, input.clone(), code, field).await;
    assert_eq!(read(app, token, case_id).await, before, "{mutation} {input} changed the case");
}

/// Like [`expect_error`] for `createCase`, and no case was created.
async fn create_refused(app: &TestApp, token: &str, input: Value, code: &str, field: Option<&str>) {
    let before = case_total(app, token).await;
    expect_error(app, token, "createCase", input, code, field).await;
    assert_eq!(case_total(app, token).await, before, "a refused createCase created a case");
}

/// Runs a mutation that must succeed and returns its payload's `case` with [`CASE_FIELDS`].
async fn change(app: &TestApp, token: &str, mutation: &str, input: Value) -> Value {
    let body = app.mutate(token, mutation, input, &format!("case {{ {CASE_FIELDS} }}")).await;
    assert!(body.get("errors").is_none(), "{mutation}: {body}");
    body["data"][mutation]["case"].clone()
}

async fn subject_id(app: &TestApp, token: &str, username: &str) -> String {
    let body =
        app.mutate(token, "upsertSubject", json!({ "username": username }), "subject { id }").await;
    body["data"]["upsertSubject"]["subject"]["id"].as_str().expect("subject id").to_owned()
}

fn id_of(case: &Value) -> String {
    case["id"].as_str().expect("case id").to_owned()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a DateTime")).expect("RFC 3339").to_utc()
}

fn user_gid(user: casefile::models::ids::UserId) -> String {
    ids::encode(Kind::User, user.0).0
}

#[tokio::test]
async fn names_with_other_characters_empty_or_over_50_characters_are_refused() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let case = id_of(&app.case_named("Existing").await);
    let long = "a".repeat(51);
    for bad in ["<b>x</b>", "Case {1}", "say \"hi\"", "cost $5", "two\nlines", &long, "", "   "] {
        create_refused(&app, token, json!({ "name": bad }), "VALIDATION_FAILED", Some("name"))
            .await;
        let input = json!({ "id": case, "name": bad });
        refused_unchanged(
            &app,
            token,
            &case,
            "updateCase",
            input,
            "VALIDATION_FAILED",
            Some("name"),
        )
        .await;
    }
    let null_name = json!({ "id": case, "name": null });
    refused_unchanged(
        &app,
        token,
        &case,
        "updateCase",
        null_name,
        "VALIDATION_FAILED",
        Some("name"),
    )
    .await;
}

#[tokio::test]
async fn names_in_any_script_with_the_allowed_punctuation_are_accepted_and_stored_trimmed() {
    let app = TestApp::new().await;
    let fifty = "x".repeat(50);
    let cases = [
        ("  Überprüfung 東京 (2)  ", "Überprüfung 東京 (2)"),
        ("Дело 42 ملف", "Дело 42 ملف"),
        ("Triage: a, b; c's d! e? (f-g_h/i).", "Triage: a, b; c's d! e? (f-g_h/i)."),
        (fifty.as_str(), fifty.as_str()),
    ];
    for (input, stored) in cases {
        assert_eq!(app.case_named(input).await["name"], stored, "created from {input:?}");
    }
    let id = id_of(&app.case_named("Before rename").await);
    let renamed =
        change(&app, &app.admin_token, "updateCase", json!({ "id": id, "name": " After " })).await;
    assert_eq!(renamed["name"], "After");
    assert_eq!(read(&app, &app.admin_token, &id).await["name"], "After");
}

#[tokio::test]
async fn names_are_unique_in_a_tenant_ignoring_case_on_create_and_rename() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    app.case_named("Phishing Wave").await;
    for taken in ["Phishing Wave", "phishing wave", "  PHISHING WAVE "] {
        create_refused(&app, token, json!({ "name": taken }), "NAME_TAKEN", None).await;
    }
    let other = id_of(&app.case_named("Other").await);
    let input = json!({ "id": other, "name": "PHISHING wave" });
    refused_unchanged(&app, token, &other, "updateCase", input, "NAME_TAKEN", None).await;

    let tenant = app.create_tenant("Elsewhere", &[]).await;
    let (_, foreign) = app.create_user(tenant, Role::Analyst).await;
    let theirs = app.create_case(&foreign, json!({ "name": "Phishing Wave" })).await;
    assert_eq!(theirs["name"], "Phishing Wave", "another tenant may use the same name");
}

#[tokio::test]
async fn description_is_at_most_1000_and_findings_at_most_30000_characters() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let (long_desc, desc) = ("d".repeat(1001), "é".repeat(1000));
    let input = json!({ "name": "Too long", "description": long_desc });
    create_refused(&app, token, input, "VALIDATION_FAILED", Some("description")).await;
    let case = app.create_case(token, json!({ "name": "Just right", "description": desc })).await;
    assert_eq!(case["description"], desc.as_str(), "1,000 characters (not bytes) are accepted");
    let id = id_of(&case);

    let input = json!({ "id": id, "description": long_desc });
    refused_unchanged(
        &app,
        token,
        &id,
        "updateCase",
        input,
        "VALIDATION_FAILED",
        Some("description"),
    )
    .await;
    let input = json!({ "id": id, "findings": "f".repeat(30_001) });
    refused_unchanged(&app, token, &id, "updateCase", input, "VALIDATION_FAILED", Some("findings"))
        .await;
    let findings = "f".repeat(30_000);
    let updated =
        change(&app, token, "updateCase", json!({ "id": id, "findings": findings })).await;
    assert_eq!(updated["findings"], findings.as_str());
    assert_eq!(updated["version"], 2);
}

#[tokio::test]
async fn findings_keep_basic_html_and_lose_scripts_event_handlers_and_javascript_links() {
    let app = TestApp::new().await;
    let id = id_of(&app.case_named("Sanitized").await);
    let html = concat!(
        "<h2>Summary</h2><p>Seen <b>twice</b> and <i>once</i></p>",
        "<script>alert(1)</script><img src=x onerror=alert(1)>",
        "<ul><li>one</li></ul><a href=\"javascript:alert(1)\">bad link</a>",
        "<a href=\"https://x.test\">good link</a>",
    );
    let stored = change(
        &app,
        &app.admin_token,
        "updateCase",
        json!({ "id": id, "findings": html }),
    )
    .await["findings"]
        .as_str()
        .expect("findings")
        .to_owned();
    assert_eq!(read(&app, &app.admin_token, &id).await["findings"], stored.as_str());
    let lower = stored.to_lowercase();
    for gone in ["<script", "onerror", "javascript:", "<img"] {
        assert!(!lower.contains(gone), "{gone:?} came back in {stored}");
    }
    for kept in ["<h2>Summary</h2>", "<b>twice</b>", "<i>once</i>", "<ul><li>one</li></ul>"] {
        assert!(stored.contains(kept), "{kept:?} missing from {stored}");
    }
    assert!(stored.contains("href=\"https://x.test\""), "https link lost: {stored}");
    assert!(stored.contains("good link</a>"), "{stored}");
}

/// A case with one of two detections linked, and a subject to set: every kind of change.
async fn changes_to_try(
    app: &TestApp,
    case_id: &str,
    linked: &str,
    free: &str,
) -> Vec<(&'static str, Value)> {
    let subject = subject_id(app, &app.admin_token, "mallory@example.test").await;
    vec![
        ("updateCase", json!({ "id": case_id, "name": "Edited" })),
        ("updateCase", json!({ "id": case_id, "status": "INVESTIGATING" })),
        ("resolveCase", json!({ "id": case_id, "resolution": "INCONCLUSIVE" })),
        ("addDetectionsToCase", json!({ "caseId": case_id, "detectionIds": [free] })),
        ("removeDetectionsFromCase", json!({ "caseId": case_id, "detectionIds": [linked] })),
        ("setCaseSubject", json!({ "caseId": case_id, "subjectId": subject })),
        ("setCaseSubject", json!({ "caseId": case_id, "subjectId": null })),
    ]
}

#[tokio::test]
async fn a_resolved_case_refuses_every_change_with_case_closed() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let d = app.ingest(token, vec![detection("closed-1", 2), detection("closed-2", 2)]).await;
    let case = app.create_case(token, json!({ "name": "Closed", "detectionIds": [d[0]] })).await;
    let id = id_of(&case);
    change(&app, token, "resolveCase", json!({ "id": id, "resolution": "FALSE_POSITIVE" })).await;
    for (mutation, input) in changes_to_try(&app, &id, &d[0], &d[1]).await {
        refused_unchanged(&app, token, &id, mutation, input, "CASE_CLOSED", None).await;
    }
}

#[tokio::test]
async fn an_archived_case_refuses_every_change_and_a_second_archive_with_case_archived() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let d = app.ingest(token, vec![detection("arch-1", 2), detection("arch-2", 2)]).await;
    let case = app.create_case(token, json!({ "name": "Archived", "detectionIds": [d[0]] })).await;
    let id = id_of(&case);
    change(&app, token, "archiveCase", json!({ "id": id })).await;
    let mut tries = changes_to_try(&app, &id, &d[0], &d[1]).await;
    tries.push(("archiveCase", json!({ "id": id })));
    for (mutation, input) in tries {
        refused_unchanged(&app, token, &id, mutation, input, "CASE_ARCHIVED", None).await;
    }
}

#[tokio::test]
async fn a_stale_expected_version_is_a_version_conflict_and_the_current_one_applies() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let id = id_of(&app.case_named("Versioned").await);
    let input = json!({ "id": id, "expectedVersion": 1, "name": "Versioned 2" });
    assert_eq!(change(&app, token, "updateCase", input).await["version"], 2);

    let stale = [
        ("updateCase", json!({ "id": id, "expectedVersion": 1, "name": "Lost edit" })),
        ("resolveCase", json!({ "id": id, "expectedVersion": 1, "resolution": "FALSE_POSITIVE" })),
        ("archiveCase", json!({ "id": id, "expectedVersion": 1 })),
    ];
    for (mutation, input) in stale {
        refused_unchanged(&app, token, &id, mutation, input, "VERSION_CONFLICT", None).await;
    }
    let input = json!({ "id": id, "expectedVersion": 2, "resolution": "FALSE_POSITIVE" });
    assert_eq!(change(&app, token, "resolveCase", input).await["version"], 3);
    let input = json!({ "id": id, "expectedVersion": 2 });
    refused_unchanged(&app, token, &id, "archiveCase", input, "VERSION_CONFLICT", None).await;
    let archived =
        change(&app, token, "archiveCase", json!({ "id": id, "expectedVersion": 3 })).await;
    assert_eq!(
        (archived["version"].clone(), archived["status"].clone()),
        (json!(4), json!("ARCHIVED"))
    );
}

#[tokio::test]
async fn more_than_10000_detections_on_a_case_is_limit_exceeded_and_adds_none_of_the_batch() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let mut ids = Vec::new();
    for batch in 0..11 {
        let size = if batch < 10 { 1000 } else { 2 };
        let detections = (0..size).map(|i| detection(&format!("lim-{batch}-{i}"), 1)).collect();
        ids.extend(app.ingest(token, detections).await);
    }
    assert_eq!(ids.len(), 10_002);
    let id = id_of(&app.case_named("Full").await);
    for chunk in ids[..10_000].chunks(1000) {
        change(&app, token, "addDetectionsToCase", json!({ "caseId": id, "detectionIds": chunk }))
            .await;
    }
    let full = read(&app, token, &id).await;
    assert_eq!(
        (full["detectionCount"].clone(), full["version"].clone()),
        (json!(10_000), json!(11))
    );

    let input = json!({ "caseId": id, "detectionIds": &ids[10_000..] });
    refused_unchanged(&app, token, &id, "addDetectionsToCase", input, "LIMIT_EXCEEDED", None).await;
    for extra in &ids[10_000..] {
        let (_, body) = app
            .graphql(
                token,
                "query($id: ID!) { detection(id: $id) { cases { totalCount } } }",
                json!({ "id": extra }),
            )
            .await;
        assert_eq!(body["data"]["detection"]["cases"]["totalCount"], 0, "{body}");
    }
    let again = json!({ "caseId": id, "detectionIds": [ids[0]] });
    assert_eq!(
        change(&app, token, "addDetectionsToCase", again).await,
        full,
        "re-adding is a no-op"
    );
}

#[tokio::test]
async fn service_requests_need_the_mdr_or_managed_risk_license() {
    let app = TestApp::new().await;
    for kind in ["MDR_SERVICE_REQUEST", "MANAGED_RISK_SERVICE_REQUEST"] {
        let input = json!({ "name": "Help", "kind": kind });
        create_refused(&app, &app.admin_token, input, "LICENSE_REQUIRED", None).await;
    }
    for (license, kind, other_kind) in [
        (License::Mdr, "MDR_SERVICE_REQUEST", "MANAGED_RISK_SERVICE_REQUEST"),
        (License::ManagedRisk, "MANAGED_RISK_SERVICE_REQUEST", "MDR_SERVICE_REQUEST"),
    ] {
        let tenant = app.create_tenant(kind, &[license]).await;
        let (_, admin) = app.create_user(tenant, Role::Admin).await;
        let created = app.create_case(&admin, json!({ "name": "Help", "kind": kind })).await;
        assert_eq!(
            (created["kind"].as_str(), created["status"].as_str()),
            (Some(kind), Some("NEW"))
        );
        let input = json!({ "name": "Other help", "kind": other_kind });
        create_refused(&app, &admin, input, "LICENSE_REQUIRED", None).await;
    }
}

#[tokio::test]
async fn a_service_request_has_no_detections_subject_findings_severity_or_assignee() {
    let app = TestApp::new().await;
    let tenant = app.create_tenant("Managed", &[License::Mdr]).await;
    let (admin_id, admin) = app.create_user(tenant, Role::Admin).await;
    let d = app.ingest(&admin, vec![detection("sr-1", 2)]).await;
    let subject = subject_id(&app, &admin, "bob@example.test").await;
    let sr = json!({ "name": "Request", "kind": "MDR_SERVICE_REQUEST" });
    let extras = [
        ("detectionIds", json!([d[0]])),
        ("subjectId", json!(subject)),
        ("severity", json!("HIGH")),
        ("assigneeId", json!(user_gid(admin_id))),
    ];
    for (key, value) in &extras {
        let mut input = sr.clone();
        input[*key] = value.clone();
        create_refused(&app, &admin, input, "UNSUPPORTED_FOR_KIND", None).await;
    }
    let id = id_of(&app.create_case(&admin, sr).await);
    let updates = [
        ("name", json!("Renamed")),
        ("description", json!("More")),
        ("findings", json!("<p>x</p>")),
        ("severity", json!("HIGH")),
        ("assigneeId", json!(user_gid(admin_id))),
    ];
    for (key, value) in updates {
        let mut input = json!({ "id": id });
        input[key] = value;
        refused_unchanged(&app, &admin, &id, "updateCase", input, "UNSUPPORTED_FOR_KIND", None)
            .await;
    }
    for (mutation, input) in [
        ("addDetectionsToCase", json!({ "caseId": id, "detectionIds": [d[0]] })),
        ("removeDetectionsFromCase", json!({ "caseId": id, "detectionIds": [d[0]] })),
        ("setCaseSubject", json!({ "caseId": id, "subjectId": subject })),
    ] {
        refused_unchanged(&app, &admin, &id, mutation, input, "UNSUPPORTED_FOR_KIND", None).await;
    }
    let moved =
        change(&app, &admin, "updateCase", json!({ "id": id, "status": "INVESTIGATING" })).await;
    assert_eq!(
        (moved["status"].clone(), moved["version"].clone()),
        (json!("INVESTIGATING"), json!(2))
    );
}

#[tokio::test]
async fn mdr_and_managed_risk_detections_cannot_go_into_a_self_managed_case() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let mut managed = vec![detection("mdr-1", 2), detection("mr-1", 2)];
    managed[0]["source"] = json!("MDR");
    managed[1]["source"] = json!("MANAGED_RISK");
    let d = app.ingest(token, managed).await;
    let xdr = app.ingest(token, vec![detection("xdr-1", 2)]).await.remove(0);
    let id = id_of(&app.case_named("Self managed").await);
    for foreign in &d {
        let input = json!({ "name": "With managed", "detectionIds": [xdr, foreign] });
        create_refused(&app, token, input, "UNSUPPORTED_FOR_KIND", None).await;
        let input = json!({ "caseId": id, "detectionIds": [xdr, foreign] });
        refused_unchanged(
            &app,
            token,
            &id,
            "addDetectionsToCase",
            input,
            "UNSUPPORTED_FOR_KIND",
            None,
        )
        .await;
    }
    assert_eq!(read(&app, token, &id).await["detectionCount"], 0);
}

#[tokio::test]
async fn only_admins_and_analysts_of_the_tenant_can_be_assignees() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let id = id_of(&app.case_named("Assign me").await);
    let other_tenant = app.create_tenant("Other", &[]).await;
    let mut refused = vec![user_gid(app.create_user(other_tenant, Role::Analyst).await.0)];
    for role in [Role::ReadOnly, Role::SuperAdmin, Role::ProviderAnalyst, Role::Ingest] {
        refused.push(user_gid(app.create_user(app.tenant_id, role).await.0));
    }
    for (n, user) in refused.iter().enumerate() {
        let input = json!({ "name": format!("Assigned {n}"), "assigneeId": user });
        create_refused(&app, token, input, "VALIDATION_FAILED", Some("assigneeId")).await;
        let input = json!({ "id": id, "assigneeId": user });
        refused_unchanged(
            &app,
            token,
            &id,
            "updateCase",
            input,
            "VALIDATION_FAILED",
            Some("assigneeId"),
        )
        .await;
    }
    for role in [Role::Admin, Role::Analyst] {
        let user = user_gid(app.create_user(app.tenant_id, role).await.0);
        let updated =
            change(&app, token, "updateCase", json!({ "id": id, "assigneeId": user })).await;
        assert_eq!(updated["assignee"]["id"], user.as_str());
        let created = app
            .create_case(
                token,
                json!({ "name": format!("For {}", role.as_str()), "assigneeId": user }),
            )
            .await;
        assert_eq!(created["assignee"]["id"], user.as_str());
    }
}

#[tokio::test]
async fn update_case_leaves_absent_fields_alone_and_clears_explicit_nulls() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let admin = user_gid(app.admin_id);
    let input = json!({ "name": "Partial", "description": "keep", "severity": "HIGH", "assigneeId": admin });
    let id = id_of(&app.create_case(token, input).await);
    let c =
        change(&app, token, "updateCase", json!({ "id": id, "findings": "<p>notes</p>" })).await;
    assert_eq!(
        [&c["description"], &c["severity"], &c["assignee"]["id"], &c["findings"], &c["name"]],
        [&json!("keep"), &json!("HIGH"), &json!(admin), &json!("<p>notes</p>"), &json!("Partial")]
    );
    let c = change(&app, token, "updateCase", json!({ "id": id, "description": null })).await;
    assert_eq!(c["description"], Value::Null);
    assert_eq!(
        (c["severity"].as_str(), c["findings"].as_str()),
        (Some("HIGH"), Some("<p>notes</p>"))
    );
    let input = json!({ "id": id, "severity": null, "assigneeId": null, "findings": null });
    let c = change(&app, token, "updateCase", input).await;
    assert_eq!([&c["severity"], &c["assignee"], &c["findings"]], [&Value::Null; 3]);
    assert_eq!((c["name"].as_str(), c["version"].as_i64()), (Some("Partial"), Some(4)));
}

#[tokio::test]
async fn status_resolved_or_archived_is_refused_by_update_and_create() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let id = id_of(&app.case_named("Status").await);
    for status in ["RESOLVED", "ARCHIVED"] {
        let input = json!({ "id": id, "status": status });
        refused_unchanged(
            &app,
            token,
            &id,
            "updateCase",
            input,
            "VALIDATION_FAILED",
            Some("status"),
        )
        .await;
        let input = json!({ "name": "Born closed", "status": status });
        create_refused(&app, token, input, "VALIDATION_FAILED", Some("status")).await;
    }
    for status in ["INVESTIGATING", "ON_HOLD", "ACTION_REQUIRED", "NEW"] {
        let c = change(&app, token, "updateCase", json!({ "id": id, "status": status })).await;
        assert_eq!(c["status"], status);
    }
    let c = app.create_case(token, json!({ "name": "Started", "status": "INVESTIGATING" })).await;
    assert_eq!(c["status"], "INVESTIGATING");
}

#[tokio::test]
async fn resolving_records_the_resolution_and_a_delete_date_30_days_later() {
    let app = TestApp::new().await;
    let id = id_of(&app.case_named("Done").await);
    let started = Utc::now();
    let input = json!({ "id": id, "resolution": "THREAT_MITIGATED" });
    let c = change(&app, &app.admin_token, "resolveCase", input).await;
    assert_eq!(
        (c["status"].as_str(), c["resolution"].as_str(), c["version"].as_i64()),
        (Some("RESOLVED"), Some("THREAT_MITIGATED"), Some(2))
    );
    let resolved_at = time(&c["resolvedAt"]);
    assert!((resolved_at - started).num_seconds().abs() < 60, "resolvedAt {resolved_at}");
    assert_eq!(time(&c["deleteAt"]), resolved_at + Duration::days(30));
    assert_eq!(c["archivedAt"], Value::Null);
}

#[tokio::test]
async fn archiving_removes_every_detection_link_and_records_archived_at() {
    let app = TestApp::new().await;
    let token = &app.admin_token;
    let d = app.ingest(token, vec![detection("a-1", 2), detection("a-2", 5)]).await;
    let input = json!({ "name": "To archive", "description": "kept", "detectionIds": d });
    let id = id_of(&app.create_case(token, input).await);
    change(&app, token, "updateCase", json!({ "id": id, "findings": "<p>kept</p>" })).await;
    let c = change(&app, token, "archiveCase", json!({ "id": id })).await;
    assert_eq!((c["status"].as_str(), c["version"].as_i64()), (Some("ARCHIVED"), Some(3)));
    assert!((time(&c["archivedAt"]) - Utc::now()).num_seconds().abs() < 60, "{c}");
    assert_eq!(c["detectionCount"], 0);
    let zero = json!({ "critical": 0, "high": 0, "medium": 0, "low": 0, "informational": 0, "highest": null });
    assert_eq!(c["riskSummary"], zero);
    assert_eq!(
        (c["description"].as_str(), c["findings"].as_str()),
        (Some("kept"), Some("<p>kept</p>"))
    );
    assert_eq!(read(&app, token, &id).await, c);
    let (_, body) = app
        .graphql(
            token,
            "query($id: ID!) { detection(id: $id) { cases { totalCount } } }",
            json!({ "id": d[0] }),
        )
        .await;
    assert_eq!(body["data"]["detection"]["cases"]["totalCount"], 0, "{body}");

    let resolved = id_of(&app.case_named("Resolved first").await);
    change(&app, token, "resolveCase", json!({ "id": resolved, "resolution": "FALSE_POSITIVE" }))
        .await;
    let c = change(&app, token, "archiveCase", json!({ "id": resolved })).await;
    assert_eq!(c["status"], "ARCHIVED", "archiving a resolved case is allowed");
}

#[tokio::test]
async fn every_change_bumps_version_updated_at_and_last_modified_by_and_a_no_op_does_not() {
    let app = TestApp::new().await;
    let admin = user_gid(app.admin_id);
    let (analyst_id, analyst) = app.create_user(app.tenant_id, Role::Analyst).await;
    let d = app.ingest(&analyst, vec![detection("v-1", 2)]).await;
    let created = app.case_named("Tracked").await;
    let id = id_of(&created);
    assert_eq!((created["version"].as_i64(), created["status"].as_str()), (Some(1), Some("NEW")));
    assert_eq!([&created["createdBy"]["id"], &created["lastModifiedBy"]["id"]], [&json!(admin); 2]);
    assert_eq!(time(&created["archiveAt"]), time(&created["createdAt"]) + Duration::days(180));

    let subject = subject_id(&app, &analyst, "eve@example.test").await;
    let steps = [
        ("updateCase", json!({ "id": id, "name": "Tracked 2" })),
        ("addDetectionsToCase", json!({ "caseId": id, "detectionIds": d })),
        ("removeDetectionsFromCase", json!({ "caseId": id, "detectionIds": d })),
        ("setCaseSubject", json!({ "caseId": id, "subjectId": subject })),
    ];
    let mut last = created;
    for (mutation, input) in steps {
        let c = change(&app, &analyst, mutation, input).await;
        assert_eq!(c["version"].as_i64(), last["version"].as_i64().map(|v| v + 1), "{mutation}");
        assert!(time(&c["updatedAt"]) > time(&last["updatedAt"]), "{mutation}: updatedAt");
        assert_eq!(c["lastModifiedBy"]["id"], user_gid(analyst_id).as_str(), "{mutation}");
        assert_eq!(c["createdBy"]["id"], admin.as_str(), "{mutation}");
        last = c;
    }
    let same =
        change(&app, &app.admin_token, "updateCase", json!({ "id": id, "name": "Tracked 2" }))
            .await;
    assert_eq!(same, last, "an update that changes nothing bumps nothing");
}
