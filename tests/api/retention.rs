//! Deleting cases and the tenant's retention policies: what goes with a deleted case,
//! all-or-nothing deletes, and the archive and delete dates the policies set.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code, error_field};
use casefile::models::tenants::License;
use casefile::models::users::Role;

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).expect("a time").to_utc()
}

/// A detection observed `days_ago` days ago.
fn observed(external_id: &str, days_ago: i64) -> Value {
    let mut d = detection(external_id, 2);
    d["observedAt"] = json!((Utc::now() - Duration::days(days_ago)).to_rfc3339());
    d
}

async fn exists(app: &TestApp, kind: &str, id: &str) -> bool {
    let query = format!("query($id: ID!) {{ {kind}(id: $id) {{ id }} }}");
    let (_, body) = app.graphql(&app.admin_token, &query, json!({ "id": id })).await;
    body["data"][kind].is_object()
}

async fn delete(app: &TestApp, ids: Value) -> Value {
    app.mutate(&app.admin_token, "deleteCases", json!({ "ids": ids }), "deletedIds").await
}

#[tokio::test]
async fn deleting_a_case_removes_it_and_the_old_detections_no_other_case_holds() {
    let app = TestApp::new().await;
    let ids = app
        .ingest(
            &app.admin_token,
            vec![observed("old-alone", 100), observed("recent", 10), observed("old-shared", 120)],
        )
        .await;
    let (old_alone, recent, old_shared) = (&ids[0], &ids[1], &ids[2]);
    let doomed = app
        .create_case(&app.admin_token.clone(), json!({ "name": "Doomed", "detectionIds": ids }))
        .await;
    let keeper = app
        .create_case(
            &app.admin_token.clone(),
            json!({ "name": "Keeper", "detectionIds": [old_shared] }),
        )
        .await;
    let doomed_id = doomed["id"].as_str().expect("id");

    let body = delete(&app, json!([doomed_id])).await;
    assert_eq!(body["data"]["deleteCases"]["deletedIds"], json!([doomed_id]), "{body}");

    assert!(!exists(&app, "case", doomed_id).await, "the case is gone");
    assert!(!exists(&app, "detection", old_alone).await, "an old detection no case holds goes");
    assert!(exists(&app, "detection", recent).await, "a recent detection stays");
    assert!(exists(&app, "detection", old_shared).await, "a detection another case holds stays");
    let kept = app.read_case(keeper["id"].as_str().expect("id")).await;
    assert_eq!(kept["detectionCount"], 1);
    assert_eq!(kept["version"], keeper["version"], "the other case is untouched");
}

#[tokio::test]
async fn deleting_is_all_or_nothing() {
    let app = TestApp::new().await;
    let tenant = app.create_tenant("Managed", &[License::Mdr]).await;
    let (_, admin) = app.create_user(tenant, Role::Admin).await;
    let own = app.create_case(&admin, json!({ "name": "Own" })).await;
    let request =
        app.create_case(&admin, json!({ "name": "Ask MDR", "kind": "MDR_SERVICE_REQUEST" })).await;

    let body = app
        .mutate(&admin, "deleteCases", json!({ "ids": [own["id"], request["id"]] }), "deletedIds")
        .await;
    assert_eq!(error_code(&body), Some("UNSUPPORTED_FOR_KIND"), "{body}");

    let missing =
        casefile::graphql::ids::encode(casefile::graphql::ids::Kind::Case, uuid::Uuid::now_v7());
    let body = app
        .mutate(&admin, "deleteCases", json!({ "ids": [own["id"], missing] }), "deletedIds")
        .await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");

    let query = "query($id: ID!) { case(id: $id) { version } }";
    for case in [&own, &request] {
        let (_, body) = app.graphql(&admin, query, json!({ "id": case["id"] })).await;
        assert_eq!(body["data"]["case"]["version"], 1, "{body}");
    }
}

#[tokio::test]
async fn a_deleted_cases_name_is_free_again_but_its_number_is_never_reused() {
    let app = TestApp::new().await;
    let first = app.case_named("Reused name").await;
    delete(&app, json!([first["id"]])).await;
    let second = app.case_named("reused NAME").await;
    assert_eq!(second["number"].as_i64(), first["number"].as_i64().map(|n| n + 1));
}

#[tokio::test]
async fn more_than_a_hundred_cases_in_one_delete_are_refused() {
    let app = TestApp::new().await;
    let case = app.case_named("Survivor").await;
    let ids: Vec<Value> = (0..101).map(|_| case["id"].clone()).collect();
    let body = delete(&app, json!(ids)).await;
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{body}");
    assert_eq!(error_field(&body), Some("ids"));
    assert_eq!(app.read_case(case["id"].as_str().expect("id")).await["version"], 1);
}

const POLICIES: &str = "tenant { retention { archiveAfterDays deleteResolvedAfterDays } \
     autoCasePolicy { enabled minSeverity } }";

#[tokio::test]
async fn a_new_tenant_archives_after_180_days_deletes_30_days_after_resolution_and_opens_auto_cases()
 {
    let app = TestApp::new().await;
    let data = app.query_ok(&format!("{{ {POLICIES} }}")).await;
    assert_eq!(
        data["tenant"],
        json!({ "retention": { "archiveAfterDays": 180, "deleteResolvedAfterDays": 30 },
                "autoCasePolicy": { "enabled": true, "minSeverity": "HIGH" } })
    );
}

#[tokio::test]
async fn archive_after_days_outside_90_to_365_is_refused_and_nothing_changes() {
    let app = TestApp::new().await;
    for (input, field) in [
        (json!({ "archiveAfterDays": 89 }), "archiveAfterDays"),
        (json!({ "archiveAfterDays": 366 }), "archiveAfterDays"),
        (
            json!({ "archiveAfterDays": 120, "deleteResolvedAfterDays": 0 }),
            "deleteResolvedAfterDays",
        ),
    ] {
        let body =
            app.mutate(&app.admin_token, "updateTenantPolicies", input.clone(), POLICIES).await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{input}: {body}");
        assert_eq!(error_field(&body), Some(field), "{input}: {body}");
    }
    let data =
        app.query_ok("{ tenant { retention { archiveAfterDays deleteResolvedAfterDays } } }").await;
    assert_eq!(
        data["tenant"]["retention"],
        json!({ "archiveAfterDays": 180, "deleteResolvedAfterDays": 30 })
    );
}

#[tokio::test]
async fn policies_set_the_archive_and_delete_dates_of_cases() {
    let app = TestApp::new().await;
    let body = app
        .mutate(
            &app.admin_token,
            "updateTenantPolicies",
            json!({ "archiveAfterDays": 90, "deleteResolvedAfterDays": null,
                    "autoCaseMinSeverity": "CRITICAL" }),
            POLICIES,
        )
        .await;
    assert_eq!(
        body["data"]["updateTenantPolicies"]["tenant"],
        json!({ "retention": { "archiveAfterDays": 90, "deleteResolvedAfterDays": null },
                "autoCasePolicy": { "enabled": true, "minSeverity": "CRITICAL" } }),
        "{body}"
    );
    let case = app.case_named("Short lived").await;
    assert_eq!(time(&case["archiveAt"]) - time(&case["createdAt"]), Duration::days(90));

    let body = app
        .mutate(
            &app.admin_token,
            "resolveCase",
            json!({ "id": case["id"], "resolution": "THREAT_MITIGATED" }),
            "case { resolvedAt deleteAt }",
        )
        .await;
    let resolved = &body["data"]["resolveCase"]["case"];
    assert!(resolved["resolvedAt"].is_string(), "{body}");
    assert_eq!(resolved["deleteAt"], Value::Null, "no delete date when the policy is never");

    // A HIGH detection no longer opens an automatic case; a CRITICAL one does.
    let body = app
        .mutate(
            &app.admin_token,
            "ingestDetections",
            json!({ "detections": [detection("high", 8), detection("critical", 9)] }),
            "autoCases { severity detectionCount }",
        )
        .await;
    assert_eq!(
        body["data"]["ingestDetections"]["autoCases"],
        json!([{ "severity": "CRITICAL", "detectionCount": 1 }]),
        "{body}"
    );
}
