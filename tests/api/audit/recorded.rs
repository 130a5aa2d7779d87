//! Every mutation and writing command records exactly its events.

use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn create_case_records_one_created_event_with_the_viewer_and_no_description_text() {
    let app = TestApp::new().await;
    let before = app.events(app.tenant_id).await.len() as i64;
    let body = app
        .mutate(
            &app.admin_token,
            "createCase",
            json!({"name": "Phishing wave", "description": "very secret description", "severity": "HIGH"}),
            "case { id number }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let events = app.events_after(app.tenant_id, before).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.action, "case.created");
    assert_eq!(event.case_event_kind.as_deref(), Some("CREATED"));
    assert_eq!(event.actor_id, Some(app.admin_id));
    assert_eq!(event.actor_type, "USER");
    assert_eq!(
        event.case_number,
        body["data"]["createCase"]["case"]["number"].as_i64().map(|n| n as i32)
    );
    assert_eq!(event.target_id.as_deref(), body["data"]["createCase"]["case"]["id"].as_str());
    assert_eq!(event.changes["name"], json!({"before": null, "after": "Phishing wave"}));
    assert_eq!(event.changes["severity"]["after"], "HIGH");
    assert_eq!(event.changes["description"]["after"]["length"], 23);
    assert!(!serde_json::to_string(&event.changes).unwrap_or_default().contains("secret"));
    assert_eq!(event.client_address.as_deref(), Some("127.0.0.1"));
    assert!(event.request_id.is_some());
    assert_eq!(event.hash, event.compute_hash());
}
