//! Archive and delete by hand and by the retention jobs (injected clock): what goes with
//! a case (links, stored contents no other case needs, old detections), legal hold, two
//! runners at once, and the sweeper retrying a failed removal.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::error_code;
use crate::evidence::{file_event, sha256_hex};
use casefile::jobs::{JobMetrics, JobReport, run_once};
use casefile::models::users::Role;

const CASE: &str = "id status detectionCount viewerCanArchive viewerCanDelete \
    legalHold { reason setBy { id } setAt }";

/// Ingests file events, uploads `contents[i]` to the i-th and returns their ids.
async fn stored(app: &TestApp, prefix: &str, contents: &[&[u8]]) -> Vec<String> {
    let events: Vec<Value> = (0..contents.len())
        .map(|i| file_event(&format!("{prefix}-{i}"), &format!("{prefix}-{i}.bin"), None))
        .collect();
    let ids = app.ingest(&app.admin_token, events).await;
    for (id, bytes) in ids.iter().zip(contents) {
        let (status, body) = app.upload(&app.admin_token, id, bytes.to_vec()).await;
        assert!(status.is_success(), "{body}");
    }
    ids
}

async fn content_stored(app: &TestApp, id: &str) -> bool {
    let (_, body) = app
        .graphql(
            &app.admin_token,
            "query($id: ID!) { detection(id: $id) { file { contentStored } } }",
            json!({ "id": id }),
        )
        .await;
    body["data"]["detection"]["file"]["contentStored"].as_bool().expect("a file")
}

async fn case(app: &TestApp, id: &str) -> Value {
    let (_, body) = app
        .graphql(
            &app.admin_token,
            &format!("query($id: ID!) {{ case(id: $id) {{ {CASE} }} }}"),
            json!({ "id": id }),
        )
        .await;
    body["data"]["case"].clone()
}

async fn archive(app: &TestApp, token: &str, id: &str) -> Value {
    app.mutate(token, "archiveCase", json!({ "id": id }), "case { id status }").await
}

async fn hold(app: &TestApp, token: &str, id: &str, reason: Value) -> Value {
    app.mutate(
        token,
        "setLegalHold",
        json!({ "caseId": id, "reason": reason }),
        &format!("case {{ {CASE} }}"),
    )
    .await
}

async fn jobs(app: &TestApp, now: chrono::DateTime<Utc>) -> JobReport {
    let mut conn = app.conn().await;
    run_once(&mut conn, &app.storage, now, &JobMetrics::default()).await
}

async fn pending_removals(app: &TestApp) -> i64 {
    let mut conn = app.conn().await;
    casefile::models::evidence::pending_removals(&mut conn).await.expect("count")
}

#[tokio::test]
async fn archiving_by_hand_removes_links_and_the_contents_no_other_case_needs() {
    let app = TestApp::new().await;
    let ids = stored(&app, "d", &[b"shared", b"only here", b"shared"]).await;
    let archived = app
        .create_case(
            &app.admin_token,
            json!({ "name": "Archived", "detectionIds": [ids[0], ids[1]] }),
        )
        .await;
    let other = app
        .create_case(&app.admin_token, json!({ "name": "Other", "detectionIds": [ids[2]] }))
        .await;
    let archived_id = archived["id"].as_str().expect("id");

    let body = archive(&app, &app.admin_token, archived_id).await;
    assert_eq!(body["data"]["archiveCase"]["case"]["status"], "ARCHIVED", "{body}");

    assert_eq!(case(&app, archived_id).await["detectionCount"], 0, "links gone");
    assert_eq!(case(&app, other["id"].as_str().expect("id")).await["detectionCount"], 1);
    assert!(!content_stored(&app, &ids[1]).await, "its own content went");
    assert!(content_stored(&app, &ids[0]).await, "a content another case needs stays");
    assert!(content_stored(&app, &ids[2]).await);
    assert_eq!(app.stored_objects(app.tenant_id), vec![sha256_hex(b"shared")]);
    assert_eq!(pending_removals(&app).await, 0, "removed after commit, nothing left queued");
    let response = app.download(&app.admin_token, &ids[1]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_by_hand_removes_contents_no_case_needs_and_keeps_shared_ones() {
    let app = TestApp::new().await;
    let ids = stored(&app, "d", &[b"shared", b"only here", b"shared"]).await;
    let doomed = app
        .create_case(
            &app.admin_token,
            json!({ "name": "Doomed", "detectionIds": [ids[0], ids[1]] }),
        )
        .await;
    app.create_case(&app.admin_token, json!({ "name": "Keeper", "detectionIds": [ids[2]] })).await;
    let body = app
        .mutate(&app.admin_token, "deleteCases", json!({ "ids": [doomed["id"]] }), "deletedIds")
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(!content_stored(&app, &ids[1]).await);
    assert!(content_stored(&app, &ids[2]).await);
    assert_eq!(app.stored_objects(app.tenant_id), vec![sha256_hex(b"shared")]);
}

#[tokio::test]
async fn a_held_case_survives_archive_and_delete_by_hand_and_by_the_job() {
    let app = TestApp::new().await;
    let ids = stored(&app, "d", &[b"evidence"]).await;
    let held = app
        .create_case(&app.admin_token, json!({ "name": "Held", "detectionIds": [ids[0]] }))
        .await;
    let held_id = held["id"].as_str().expect("id");
    let unheld = app.case_named("Unheld").await;

    let (_, reader) = app.create_user(app.tenant_id, Role::ReadOnly).await;
    let body = hold(&app, &reader, held_id, json!("Litigation 2026-17")).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let blank = hold(&app, &app.admin_token, held_id, json!("  ")).await;
    assert_eq!(error_code(&blank), Some("VALIDATION_FAILED"), "{blank}");

    let (_, analyst) = app.create_user(app.tenant_id, Role::Analyst).await;
    let body = hold(&app, &analyst, held_id, json!("Litigation 2026-17")).await;
    let set = &body["data"]["setLegalHold"]["case"];
    assert_eq!(set["legalHold"]["reason"], "Litigation 2026-17", "{body}");
    assert!(set["legalHold"]["setBy"]["id"].is_string());
    assert!(set["legalHold"]["setAt"].is_string());
    assert_eq!(set["viewerCanArchive"], false);
    assert_eq!(set["viewerCanDelete"], false);

    let body = archive(&app, &app.admin_token, held_id).await;
    assert_eq!(error_code(&body), Some("LEGAL_HOLD"), "{body}");
    let body = app
        .mutate(
            &app.admin_token,
            "deleteCases",
            json!({ "ids": [held_id, unheld["id"]] }),
            "deletedIds",
        )
        .await;
    assert_eq!(error_code(&body), Some("LEGAL_HOLD"), "{body}");
    assert!(case(&app, unheld["id"].as_str().expect("id")).await.is_object(), "all or none");

    // Far in the future: past every archive and delete date.
    let report = jobs(&app, Utc::now() + Duration::days(400)).await;
    assert_eq!(report.archived, 1, "only the unheld case: {report:?}");
    let after = case(&app, held_id).await;
    assert_eq!(after["status"], "NEW");
    assert_eq!(after["detectionCount"], 1);
    assert!(content_stored(&app, &ids[0]).await);

    let body = hold(&app, &app.admin_token, held_id, Value::Null).await;
    assert_eq!(body["data"]["setLegalHold"]["case"]["legalHold"], Value::Null, "{body}");
    let report = jobs(&app, Utc::now() + Duration::days(400)).await;
    assert_eq!(report.archived, 1, "lifted: archived now");
    assert_eq!(report.objects_purged, 1);
    assert!(!content_stored(&app, &ids[0]).await);

    let actions: Vec<String> =
        app.events(app.tenant_id).await.into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"case.legal_hold_set".to_owned()), "{actions:?}");
    assert!(actions.contains(&"case.legal_hold_lifted".to_owned()), "{actions:?}");
}

#[tokio::test]
async fn the_job_deletes_and_archives_as_of_its_clock_and_records_it_as_system() {
    let app = TestApp::new().await;
    let ids = stored(&app, "d", &[b"one", b"two"]).await;
    let resolved = app
        .create_case(&app.admin_token, json!({ "name": "Resolved", "detectionIds": [ids[0]] }))
        .await;
    let open = app
        .create_case(&app.admin_token, json!({ "name": "Open", "detectionIds": [ids[1]] }))
        .await;
    let resolved_id = resolved["id"].as_str().expect("id");
    let body = app
        .mutate(
            &app.admin_token,
            "resolveCase",
            json!({ "id": resolved_id, "resolution": "FALSE_POSITIVE" }),
            "case { deleteAt }",
        )
        .await;
    assert!(body["data"]["resolveCase"]["case"]["deleteAt"].is_string(), "{body}");

    assert_eq!(jobs(&app, Utc::now()).await, JobReport::default(), "nothing due yet");

    let report = jobs(&app, Utc::now() + Duration::days(31)).await;
    assert_eq!((report.deleted, report.archived, report.objects_purged), (1, 0, 1), "{report:?}");
    assert!(case(&app, resolved_id).await.is_null(), "deleted");
    assert_eq!(app.stored_objects(app.tenant_id), vec![sha256_hex(b"two")]);

    let report = jobs(&app, Utc::now() + Duration::days(181)).await;
    assert_eq!((report.deleted, report.archived, report.objects_purged), (0, 1, 1), "{report:?}");
    assert_eq!(case(&app, open["id"].as_str().expect("id")).await["status"], "ARCHIVED");
    assert!(app.stored_objects(app.tenant_id).is_empty());
    assert_eq!(jobs(&app, Utc::now() + Duration::days(181)).await, JobReport::default(), "once");

    let events = app.events(app.tenant_id).await;
    for action in ["case.deleted", "case.archived"] {
        let event = events.iter().find(|e| e.action == action).expect(action);
        assert_eq!(event.actor_type, "SYSTEM");
        assert_eq!(event.actor_id, None);
    }
}

#[tokio::test]
async fn two_job_runners_started_together_process_each_case_once() {
    let app = TestApp::new().await;
    let mut cases = Vec::new();
    for i in 0..12 {
        cases
            .push(app.case_named(&format!("Due {i}")).await["id"].as_str().expect("id").to_owned());
    }
    let now = Utc::now() + Duration::days(200);
    let (a, b) = tokio::join!(jobs(&app, now), jobs(&app, now));
    assert_eq!(a.archived + b.archived, 12, "{a:?} {b:?}");
    assert_eq!(a.failures + b.failures, 0);
    let archived =
        app.events(app.tenant_id).await.into_iter().filter(|e| e.action == "case.archived").count();
    assert_eq!(archived, 12, "one event per case");
    for id in &cases {
        assert_eq!(case(&app, id).await["status"], "ARCHIVED");
    }
}

#[tokio::test]
async fn a_removal_that_fails_is_queued_and_retried_by_the_sweeper() {
    let app = TestApp::new().await;
    let ids = stored(&app, "d", &[b"stubborn"]).await;
    let doomed = app
        .create_case(&app.admin_token, json!({ "name": "Doomed", "detectionIds": [ids[0]] }))
        .await;
    // The object cannot be removed while a folder stands where the file was.
    let object = app.data_dir.path().join(format!(
        "evidence/tenants/{}/sha256/{}",
        app.tenant_id.0,
        sha256_hex(b"stubborn")
    ));
    std::fs::remove_file(&object).expect("remove the object");
    std::fs::create_dir_all(object.join("blocker")).expect("a folder in its place");

    let body = archive(&app, &app.admin_token, doomed["id"].as_str().expect("id")).await;
    assert_eq!(
        body["data"]["archiveCase"]["case"]["status"], "ARCHIVED",
        "the archive commits: {body}"
    );
    assert!(!content_stored(&app, &ids[0]).await);
    assert_eq!(pending_removals(&app).await, 1, "the failed removal stays queued");

    let report = jobs(&app, Utc::now()).await;
    assert_eq!(report.objects_purged, 0, "not due again yet: {report:?}");
    assert_eq!(pending_removals(&app).await, 1);

    std::fs::remove_dir_all(&object).expect("clear the folder");
    std::fs::write(&object, b"stubborn").expect("the object again");
    let report = jobs(&app, Utc::now() + Duration::hours(1)).await;
    assert_eq!(report.objects_purged, 1, "{report:?}");
    assert!(!object.exists(), "the sweeper removed it");
    assert_eq!(pending_removals(&app).await, 0);
}
