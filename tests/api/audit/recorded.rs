//! Every mutation, writing command and the first start records exactly its events:
//! actor, action, case event kind and changes; no free text and no secrets.

use casefile::models::events::Event;
use casefile::models::ids::TenantId;
use casefile::models::users::Role;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code};

/// Runs `f` and returns the events it recorded in the tenant.
async fn recorded(app: &TestApp, tenant: TenantId, before: i64) -> Vec<Event> {
    app.events_after(tenant, before).await
}

async fn last_sequence(app: &TestApp, tenant: TenantId) -> i64 {
    app.events(tenant).await.last().map_or(0, |e| e.sequence)
}

fn actions(events: &[Event]) -> Vec<(&str, Option<&str>)> {
    events.iter().map(|e| (e.action.as_str(), e.case_event_kind.as_deref())).collect()
}

fn assert_no_text(events: &[Event], texts: &[&str]) {
    for event in events {
        let json = event.changes.to_string();
        for text in texts {
            assert!(!json.contains(text), "{text:?} in {}: {json}", event.action);
        }
    }
}

#[tokio::test]
async fn the_first_start_records_tenant_admin_and_token_as_system() {
    let app = TestApp::new().await;
    let events = app.events(app.tenant_id).await;
    assert_eq!(
        actions(&events),
        [("tenant.created", None), ("user.created", None), ("token.created", None)]
    );
    for event in &events {
        assert_eq!(event.actor_type, "SYSTEM");
        assert_eq!(event.actor_id, None);
        assert_eq!(event.request_id, None);
    }
    assert_eq!(events[1].changes["email"]["after"], "admin@localhost");
    assert_eq!(events[1].changes["role"]["after"], "ADMIN");
    assert_no_text(&events, &[&app.admin_token, "cf_"]);
}

#[tokio::test]
async fn create_case_records_one_created_event_with_the_viewer_and_no_description_text() {
    let app = TestApp::new().await;
    let before = last_sequence(&app, app.tenant_id).await;
    let body = app
        .mutate(
            &app.admin_token,
            "createCase",
            json!({"name": "Phishing wave", "description": "very secret description", "severity": "HIGH"}),
            "case { id number }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let events = recorded(&app, app.tenant_id, before).await;
    assert_eq!(actions(&events), [("case.created", Some("CREATED"))]);
    let event = &events[0];
    assert_eq!(event.actor_id, Some(app.admin_id));
    assert_eq!(event.actor_type, "USER");
    let case = &body["data"]["createCase"]["case"];
    assert_eq!(event.case_number.map(i64::from), case["number"].as_i64());
    assert_eq!(event.target_id.as_deref(), case["id"].as_str());
    assert_eq!(event.changes["name"], json!({"before": null, "after": "Phishing wave"}));
    assert_eq!(event.changes["severity"]["after"], "HIGH");
    assert_eq!(event.changes["description"]["after"]["length"], 23);
    assert_no_text(&events, &["secret"]);
    assert_eq!(event.client_address.as_deref(), Some("127.0.0.1"));
    assert!(event.request_id.is_some());
    assert_eq!(event.hash, event.compute_hash());
}

#[tokio::test]
async fn update_case_is_one_event_updated_or_status_changed_listing_every_changed_field() {
    let app = TestApp::new().await;
    let case = app.case_named("Rename me").await;
    let id = case["id"].as_str().unwrap_or_default().to_owned();
    let before = last_sequence(&app, app.tenant_id).await;
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({"id": id, "name": "Renamed", "findings": "the hidden findings", "severity": "LOW"}),
            "case { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({"id": id, "status": "INVESTIGATING", "assigneeId": ids_of_admin(&app).await}),
            "case { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    // Nothing changes: no event.
    let body = app
        .mutate(&app.admin_token, "updateCase", json!({"id": id, "name": "Renamed"}), "case { id }")
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let events = recorded(&app, app.tenant_id, before).await;
    assert_eq!(
        actions(&events),
        [("case.updated", Some("UPDATED")), ("case.updated", Some("STATUS_CHANGED"))]
    );
    let first = &events[0].changes;
    assert_eq!(first["name"], json!({"before": "Rename me", "after": "Renamed"}));
    assert_eq!(first["severity"], json!({"before": null, "after": "LOW"}));
    assert_eq!(first["findings"]["before"], Value::Null);
    assert_eq!(first["findings"]["after"]["length"], 19);
    let mut names: Vec<&String> = first.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    names.sort();
    assert_eq!(names, ["findings", "name", "severity"]);
    let second = &events[1].changes;
    assert_eq!(second["status"], json!({"before": "NEW", "after": "INVESTIGATING"}));
    assert_eq!(second["assignee"]["after"], ids_of_admin(&app).await);
    assert_no_text(&events, &["hidden"]);
}

async fn ids_of_admin(app: &TestApp) -> Value {
    app.query_ok("{ viewer { id } }").await["viewer"]["id"].clone()
}

#[tokio::test]
async fn a_case_life_records_each_step_with_its_action_and_kind() {
    let app = TestApp::new().await;
    let detections =
        app.ingest(&app.admin_token, vec![detection("life-1", 2), detection("life-2", 5)]).await;
    let subject = app
        .mutate(
            &app.admin_token,
            "upsertSubject",
            json!({"username": "bob@example.test"}),
            "subject { id }",
        )
        .await["data"]["upsertSubject"]["subject"]["id"]
        .clone();
    let case = app.case_named("Life").await;
    let id = case["id"].clone();
    let before = last_sequence(&app, app.tenant_id).await;
    for (name, input) in [
        ("addDetectionsToCase", json!({"caseId": id, "detectionIds": detections})),
        ("removeDetectionsFromCase", json!({"caseId": id, "detectionIds": [detections[0]]})),
        ("setCaseSubject", json!({"caseId": id, "subjectId": subject})),
        ("resolveCase", json!({"id": id, "resolution": "FALSE_POSITIVE"})),
    ] {
        let body = app.mutate(&app.admin_token, name, input, "case { id }").await;
        assert!(body.get("errors").is_none(), "{name}: {body}");
    }
    let archived = app.case_named("Archived").await;
    let body = app
        .mutate(&app.admin_token, "archiveCase", json!({"id": archived["id"]}), "case { id }")
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let gone = app.case_named("Gone").await;
    let other = app.case_named("Gone too").await;
    let body = app
        .mutate(
            &app.admin_token,
            "deleteCases",
            json!({"ids": [gone["id"], other["id"]]}),
            "deletedIds",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let events = recorded(&app, app.tenant_id, before).await;
    assert_eq!(
        actions(&events),
        [
            ("case.detections_added", Some("DETECTIONS_ADDED")),
            ("case.detections_removed", Some("DETECTIONS_REMOVED")),
            ("case.subject_set", Some("SUBJECT_CHANGED")),
            ("case.resolved", Some("STATUS_CHANGED")),
            ("case.created", Some("CREATED")),
            ("case.archived", Some("ARCHIVED")),
            ("case.created", Some("CREATED")),
            ("case.created", Some("CREATED")),
            ("case.deleted", Some("DELETED")),
            ("case.deleted", Some("DELETED")),
        ]
    );
    assert_eq!(events[0].changes["detectionsAdded"], json!(detections));
    assert_eq!(events[0].changes["detectionCount"], json!({"before": 0, "after": 2}));
    assert_eq!(events[1].changes["detectionsRemoved"], json!([detections[0]]));
    assert_eq!(events[2].changes["subject"], json!({"before": null, "after": subject}));
    assert_eq!(events[3].changes["status"]["after"], "RESOLVED");
    assert_eq!(events[3].changes["resolution"]["after"], "FALSE_POSITIVE");
    assert_eq!(events[5].changes["status"]["after"], "ARCHIVED");
    let deleted: Vec<&str> = events[8..].iter().filter_map(|e| e.target_id.as_deref()).collect();
    assert_eq!(deleted, [gone["id"].as_str().unwrap_or(""), other["id"].as_str().unwrap_or("")]);
    assert_eq!(events[8].changes["name"], json!({"before": "Gone", "after": null}));
}

#[tokio::test]
async fn ingestion_is_one_event_with_counts_and_ids_by_an_api_client() {
    let app = TestApp::new().await;
    let (ingest_user, token) = app.create_user(app.tenant_id, Role::Ingest).await;
    let before = last_sequence(&app, app.tenant_id).await;
    let ids = app.ingest(&token, vec![detection("in-1", 2), detection("in-2", 3)]).await;
    let again = app.ingest(&token, vec![detection("in-1", 2), detection("in-3", 3)]).await;
    let events = recorded(&app, app.tenant_id, before).await;
    assert_eq!(actions(&events), [("detections.ingested", None), ("detections.ingested", None)]);
    assert_eq!(events[0].actor_type, "API_CLIENT");
    assert_eq!(events[0].actor_id, Some(ingest_user));
    assert_eq!(events[0].changes["accepted"], 2);
    assert_eq!(events[0].changes["duplicates"], 0);
    assert_eq!(events[0].changes["detectionIds"], json!(ids));
    assert_eq!(events[1].changes["accepted"], 1);
    assert_eq!(events[1].changes["duplicates"], 1);
    assert_eq!(events[1].changes["detectionIds"], json!([again[1]]));
}

#[tokio::test]
async fn an_automatic_case_is_recorded_with_the_ingestion_that_opened_it() {
    let app = TestApp::new().await;
    let (_, token) = app.create_user(app.tenant_id, Role::Ingest).await;
    let before = last_sequence(&app, app.tenant_id).await;
    app.ingest(&token, vec![detection("auto-1", 9)]).await;
    app.ingest(&token, vec![detection("auto-2", 9)]).await;
    let events = recorded(&app, app.tenant_id, before).await;
    assert_eq!(
        actions(&events),
        [
            ("detections.ingested", None),
            ("case.created", Some("CREATED")),
            ("detections.ingested", None),
            ("case.detections_added", Some("DETECTIONS_ADDED")),
        ]
    );
    assert_eq!(events[1].changes["detectionCount"]["after"], 1);
    assert_eq!(events[0].changes["autoCaseIds"], json!([events[1].target_id]));
}

#[tokio::test]
async fn administration_records_users_tokens_policies_and_subjects_without_secrets_or_notes() {
    let app = TestApp::new().await;
    let before = last_sequence(&app, app.tenant_id).await;
    let user = app
        .mutate(
            &app.admin_token,
            "createUser",
            json!({"email": "ana@example.test", "displayName": "Ana", "role": "ANALYST"}),
            "user { id }",
        )
        .await["data"]["createUser"]["user"]["id"]
        .clone();
    let body = app
        .mutate(
            &app.admin_token,
            "updateUser",
            json!({"id": user, "role": "READ_ONLY"}),
            "user { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let created = app
        .mutate(
            &app.admin_token,
            "createApiToken",
            json!({"userId": user, "name": "laptop"}),
            "tokenId token",
        )
        .await["data"]["createApiToken"]
        .clone();
    let secret = created["token"].as_str().unwrap_or_default().to_owned();
    let body = app
        .mutate(
            &app.admin_token,
            "revokeApiToken",
            json!({"tokenId": created["tokenId"]}),
            "clientMutationId",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = app
        .mutate(
            &app.admin_token,
            "updateTenantPolicies",
            json!({"archiveAfterDays": 120}),
            "clientMutationId",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = app
        .mutate(
            &app.admin_token,
            "upsertSubject",
            json!({"username": "eve@example.test", "department": "Sales", "notes": "private notes"}),
            "subject { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let events = recorded(&app, app.tenant_id, before).await;
    assert_eq!(
        actions(&events),
        [
            ("user.created", None),
            ("user.updated", None),
            ("token.created", None),
            ("token.revoked", None),
            ("tenant.policies_updated", None),
            ("subject.upserted", None),
        ]
    );
    assert_eq!(events[0].target_id.as_ref(), user.as_str().map(str::to_owned).as_ref());
    assert_eq!(events[1].changes, json!({"role": {"before": "ANALYST", "after": "READ_ONLY"}}));
    assert_eq!(events[2].changes["name"]["after"], "laptop");
    assert_eq!(events[2].target_id.as_deref(), created["tokenId"].as_str());
    assert_eq!(events[4].changes, json!({"archiveAfterDays": {"before": 180, "after": 120}}));
    assert_eq!(events[5].changes["department"]["after"], "Sales");
    assert_eq!(events[5].changes["notes"]["after"]["length"], 13);
    assert_no_text(&events, &[&secret, "private"]);
    for event in &events {
        assert_eq!(event.actor_id, Some(app.admin_id));
    }
}

#[tokio::test]
async fn a_change_that_fails_records_nothing() {
    let app = TestApp::new().await;
    app.case_named("Taken").await;
    let case = app.case_named("Free").await;
    let before = last_sequence(&app, app.tenant_id).await;
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({"id": case["id"], "name": "taken"}),
            "case { id }",
        )
        .await;
    assert_eq!(error_code(&body), Some("NAME_TAKEN"), "{body}");
    let body = app
        .mutate(
            &app.admin_token,
            "createUser",
            json!({"email": "admin@localhost", "displayName": "x", "role": "ANALYST"}),
            "user { id }",
        )
        .await;
    assert_eq!(error_code(&body), Some("NAME_TAKEN"), "{body}");
    assert!(recorded(&app, app.tenant_id, before).await.is_empty());
    let mut conn = app.conn().await;
    let head = casefile::models::events::head(&mut conn, app.tenant_id).await.expect("head");
    assert_eq!(head.last_sequence, before);
}

#[tokio::test]
async fn the_writing_commands_record_their_events_as_system() {
    let app = TestApp::new().await;
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: Vec<String>| {
        let url = app.database_url.clone();
        let dir = dir.path().to_owned();
        async move {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
                .env("DATABASE_URL", url)
                .env("CASEFILE_DATA_DIR", dir)
                .args(args)
                .output()
                .await
                .expect("run the CLI");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            serde_json::from_slice::<Value>(&output.stdout).expect("JSON")
        }
    };
    let tenant =
        run(vec!["tenant".into(), "create".into(), "--name".into(), "Via CLI".into()]).await;
    let tenant_id = tenant["tenantId"].as_str().unwrap_or_default().to_owned();
    let user = run(vec![
        "user".into(),
        "create".into(),
        "--tenant".into(),
        tenant_id.clone(),
        "--email".into(),
        "cli@example.test".into(),
        "--role".into(),
        "ADMIN".into(),
    ])
    .await;
    let user_id = user["userId"].as_str().unwrap_or_default().to_owned();
    let token = run(vec!["token".into(), "create".into(), "--user".into(), user_id.clone()]).await;
    let secret = token["token"].as_str().unwrap_or_default().to_owned();

    let mut conn = app.conn().await;
    let (_, viewer) = casefile::models::tokens::find_by_secret(&mut conn, &secret)
        .await
        .expect("query")
        .expect("the token works");
    let events = app.events(viewer.tenant_id).await;
    assert_eq!(
        actions(&events),
        [("tenant.created", None), ("user.created", None), ("token.created", None)]
    );
    assert_eq!(events[0].target_id.as_deref(), Some(tenant_id.as_str()));
    assert_eq!(events[1].target_id.as_deref(), Some(user_id.as_str()));
    assert_eq!(events[2].target_id.as_deref(), token["tokenId"].as_str());
    for event in &events {
        assert_eq!((event.actor_type.as_str(), event.actor_id), ("SYSTEM", None));
    }
    assert_no_text(&events, &[&secret]);
}
