//! Webhooks (issue 12): a receiver on a loopback listener written here verifies the
//! signatures with `ring` (not casefile's code) and records what arrives.

mod receiver;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use casefile::config::WebhookConfig;
use casefile::models::events::Event;
use casefile::models::users::Role;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{error_code, error_field};
use receiver::{hex, receiver, verify};

const SECRET: &str = "a-test-secret-of-some-length";

fn config(max_attempts: u32) -> WebhookConfig {
    WebhookConfig {
        webhook_allow_private: true,
        webhook_max_attempts: max_attempts,
        webhook_retry_base_ms: 20,
        webhook_timeout_secs: 5,
    }
}

async fn create_webhook(app: &TestApp, url: &str, kinds: Option<Vec<&str>>) -> String {
    let mut input = json!({ "url": url, "secret": SECRET });
    if let Some(kinds) = kinds {
        input["eventKinds"] = json!(kinds);
    }
    let body = app.mutate(&app.admin_token, "createWebhook", input, "webhook { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["createWebhook"]["webhook"]["id"].as_str().expect("id").to_owned()
}

async fn head(app: &TestApp) -> i64 {
    let mut conn = app.conn().await;
    casefile::models::events::head(&mut conn, app.tenant_id).await.expect("head").last_sequence
}

/// The tenant's case events after `sequence`.
async fn case_events(app: &TestApp, sequence: i64) -> Vec<Event> {
    app.events_after(app.tenant_id, sequence)
        .await
        .into_iter()
        .filter(|e| e.case_event_kind.is_some())
        .collect()
}

fn cursor_of(event: &Event) -> String {
    casefile::events::cursor::EventCursor::of(event).encode()
}

/// Polls (every 20 ms, up to 60 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn set_status(app: &TestApp, case_id: &str, status: &str) {
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({ "id": case_id, "status": status }),
            "case { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn deliveries_are_signed_and_carry_exactly_the_documented_body_and_headers() {
    let app = TestApp::with_webhooks(config(10)).await;
    let (receiver, url) = receiver(200).await;
    create_webhook(&app, &url, None).await;
    let start = head(&app).await;
    let case = app.case_named("Signed").await;
    set_status(&app, case["id"].as_str().expect("id"), "INVESTIGATING").await;
    until("two deliveries", || receiver.accepted().len() >= 2).await;
    let events = case_events(&app, start).await;
    let got = receiver.accepted();
    assert_eq!(got.len(), events.len(), "one POST per case event");
    for (received, event) in got.iter().zip(&events) {
        let t = verify(received, SECRET);
        assert!((Utc::now().timestamp() - t).abs() < 300, "a current timestamp");
        let keys: BTreeSet<&str> =
            received.json.as_object().expect("an object").keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> =
            ["id", "kind", "cursor", "at", "caseId", "caseNumber", "actor", "changedFields"]
                .into_iter()
                .collect();
        assert_eq!(keys, expected);
        let kind = event.case_event_kind.as_deref().expect("a case event");
        assert_eq!(received.json["kind"], kind);
        assert_eq!(received.headers["x-casefile-event"], kind);
        assert_eq!(
            received.headers["x-casefile-delivery"],
            received.json["id"].as_str().expect("id")
        );
        assert_eq!(received.json["cursor"], cursor_of(event));
        assert_eq!(received.json["caseId"], case["id"]);
        assert_eq!(received.json["caseNumber"], case["number"]);
        assert_eq!(received.json["actor"]["email"], "admin@localhost");
        assert!(received.json["changedFields"].is_array());
        assert_eq!(received.headers["content-type"], "application/json");
    }
    assert_eq!(got[1].json["kind"], "STATUS_CHANGED");
    assert!(got[1].json["changedFields"].as_array().expect("fields").contains(&json!("status")));
    // A wrong secret does not verify.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"another secret entirely");
    let header = &got[0].headers["x-casefile-signature"];
    let (t, v1) = header.split_once(",v1=").expect("parts");
    let signed = format!("{}.{}", t.trim_start_matches("t="), got[0].body);
    assert!(ring::hmac::verify(&key, signed.as_bytes(), &hex(v1)).is_err());
}

#[tokio::test]
async fn every_event_arrives_in_order_per_case_after_the_receiver_was_down() {
    let app = TestApp::with_webhooks(config(1000)).await;
    let (receiver, url) = receiver(503).await;
    let webhook = create_webhook(&app, &url, None).await;
    let start = head(&app).await;
    let one = app.case_named("Down one").await;
    let two = app.case_named("Down two").await;
    for status in ["INVESTIGATING", "ON_HOLD", "INVESTIGATING"] {
        set_status(&app, one["id"].as_str().expect("id"), status).await;
        set_status(&app, two["id"].as_str().expect("id"), status).await;
    }
    until("a few refused attempts", || receiver.got().len() >= 5).await;
    assert!(receiver.accepted().is_empty());
    receiver.answer(200);
    let events = case_events(&app, start).await;
    assert_eq!(events.len(), 8);
    let last = cursor_of(events.last().expect("events"));
    until("every event", || receiver.accepted().iter().any(|r| r.json["cursor"] == last)).await;
    let accepted: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| r.json["cursor"].as_str().expect("c").to_owned())
        .collect();
    let expected: Vec<String> = events.iter().map(cursor_of).collect();
    assert_eq!(accepted, expected, "every event once, in the log's order (so per case too)");
    // Repeats (the refused attempts) carry the delivery id of their event.
    let mut ids: HashMap<String, String> = HashMap::new();
    for received in receiver.got() {
        let cursor = received.json["cursor"].as_str().expect("cursor").to_owned();
        let id = received.headers["x-casefile-delivery"].clone();
        assert_eq!(ids.entry(cursor).or_insert_with(|| id.clone()), &id, "same id on a repeat");
    }
    // The delivery log tells the same story, newest first.
    let data = app
        .query_ok(&format!(
            "{{ node(id: \"{webhook}\") {{ ... on Webhook {{ deliveries(first: 100) {{ totalCount \
             nodes {{ id eventCursor kind status attempts lastStatusCode deliveredAt }} }} }} }} }}"
        ))
        .await;
    let log = &data["node"]["deliveries"];
    assert_eq!(log["totalCount"], 8);
    let first = &log["nodes"][7];
    assert_eq!(first["eventCursor"], expected[0]);
    assert_eq!(first["status"], "DELIVERED");
    assert_eq!(first["lastStatusCode"], 200);
    assert!(first["attempts"].as_i64().expect("attempts") > 1, "{first}");
    assert_eq!(first["id"], ids[&expected[0]].as_str());
}

#[tokio::test]
async fn only_the_event_kinds_asked_for_are_sent() {
    let app = TestApp::with_webhooks(config(10)).await;
    let (receiver, url) = receiver(200).await;
    create_webhook(&app, &url, Some(vec!["STATUS_CHANGED"])).await;
    let case = app.case_named("Filtered").await;
    set_status(&app, case["id"].as_str().expect("id"), "INVESTIGATING").await;
    app.mutate(
        &app.admin_token,
        "updateCase",
        json!({ "id": case["id"], "name": "Renamed" }),
        "case { id }",
    )
    .await;
    set_status(&app, case["id"].as_str().expect("id"), "ON_HOLD").await;
    until("two deliveries", || receiver.accepted().len() >= 2).await;
    // The channel is in order: the last status change arrived, so everything before it
    // was handled (and skipped) already.
    let kinds: Vec<Value> = receiver.got().iter().map(|r| r.json["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("STATUS_CHANGED"), json!("STATUS_CHANGED")]);
}

#[tokio::test]
async fn an_endpoint_that_always_fails_ends_disabled_and_resumes_when_enabled() {
    let app = TestApp::with_webhooks(config(3)).await;
    let (receiver, url) = receiver(500).await;
    let webhook = create_webhook(&app, &url, None).await;
    let start = head(&app).await;
    app.case_named("Failing").await;
    let query = format!(
        "{{ node(id: \"{webhook}\") {{ ... on Webhook {{ enabled disabledReason \
         deliveries {{ nodes {{ id status attempts lastStatusCode lastError }} }} }} }} }}"
    );
    let mut hook = Value::Null;
    for _ in 0..1500 {
        hook = app.query_ok(&query).await["node"].clone();
        if hook["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hook["enabled"], false, "{hook}");
    let reason = hook["disabledReason"].as_str().expect("a reason");
    assert!(reason.contains("3 failed attempts") && reason.contains("500"), "{reason}");
    let delivery = &hook["deliveries"]["nodes"][0];
    assert_eq!(
        (delivery["status"].clone(), delivery["attempts"].clone()),
        (json!("FAILED"), json!(3))
    );
    assert_eq!(delivery["lastStatusCode"], 500);
    assert_eq!(receiver.got().len(), 3, "no attempt after the third");
    let disabled: Vec<Event> = app
        .events_after(app.tenant_id, start)
        .await
        .into_iter()
        .filter(|e| e.action == "webhook.disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "the disabling is recorded");
    assert_eq!(disabled[0].actor_type, "SYSTEM");
    // Still nothing while disabled.
    app.case_named("While disabled").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.got().len(), 3);
    receiver.answer(200);
    let body = app
        .mutate(
            &app.admin_token,
            "updateWebhook",
            json!({ "id": webhook, "enabled": true }),
            "webhook { enabled disabledReason }",
        )
        .await;
    assert_eq!(
        body["data"]["updateWebhook"]["webhook"],
        json!({ "enabled": true, "disabledReason": null })
    );
    let events = case_events(&app, start).await;
    let last = cursor_of(events.last().expect("events"));
    until("the resumed deliveries", || {
        receiver.accepted().iter().any(|r| r.json["cursor"] == last)
    })
    .await;
    let accepted: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| r.json["cursor"].as_str().expect("c").to_owned())
        .collect();
    assert_eq!(accepted, events.iter().map(cursor_of).collect::<Vec<_>>(), "from where it stopped");
    assert_eq!(
        receiver.accepted()[0].headers["x-casefile-delivery"],
        delivery["id"].as_str().expect("id"),
        "the failed delivery is the one completed"
    );
}

#[tokio::test]
async fn private_and_malformed_urls_are_refused_without_the_flag() {
    let app = TestApp::new().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "ftp://example.com/",
        "https://user:pass@example.com/",
        "not a url",
    ] {
        let body = app
            .mutate(
                &app.admin_token,
                "createWebhook",
                json!({ "url": url, "secret": SECRET }),
                "webhook { id }",
            )
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{url}: {body}");
        assert_eq!(error_field(&body), Some("url"), "{url}");
    }
    let body = app
        .mutate(
            &app.admin_token,
            "createWebhook",
            json!({ "url": "https://93.184.216.34/", "secret": "short" }),
            "webhook { id }",
        )
        .await;
    assert_eq!(error_field(&body), Some("secret"), "{body}");
    assert_eq!(app.query_ok("{ webhooks { totalCount } }").await["webhooks"]["totalCount"], 0);
}

#[tokio::test]
async fn a_private_address_is_refused_again_at_delivery() {
    let mut app = TestApp::with_webhooks(config(1000)).await;
    let (receiver, url) = receiver(200).await;
    let webhook = create_webhook(&app, &url, None).await;
    // Another server, without the flag, delivers from now on.
    app.stop_delivery().await;
    app.start_delivery(WebhookConfig { webhook_allow_private: false, ..config(1000) });
    app.case_named("Rebound").await;
    let query = format!(
        "{{ node(id: \"{webhook}\") {{ ... on Webhook {{ deliveries {{ nodes {{ status attempts lastError }} }} }} }} }}"
    );
    let mut log = Value::Null;
    for _ in 0..1500 {
        log = app.query_ok(&query).await["node"]["deliveries"]["nodes"][0].clone();
        if log["attempts"].as_i64().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log["status"], "PENDING", "{log}");
    assert!(log["lastError"].as_str().expect("error").contains("127.0.0.1"), "{log}");
    assert!(receiver.got().is_empty(), "nothing reached the private address");
}

#[tokio::test]
async fn only_admins_manage_webhooks_and_each_tenant_sees_its_own() {
    let app = TestApp::with_webhooks(config(10)).await;
    let (_receiver, url) = receiver(200).await;
    let webhook = create_webhook(&app, &url, None).await;
    let (_, analyst) = app.create_user(app.tenant_id, Role::Analyst).await;
    let input = json!({ "url": url, "secret": SECRET });
    let body = app.mutate(&analyst, "createWebhook", input, "webhook { id }").await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    let (_, body) = app.graphql(&analyst, "{ webhooks { totalCount } }", json!({})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));
    let body = app.mutate(&analyst, "deleteWebhook", json!({ "id": webhook }), "deletedId").await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"));

    let other = app.create_tenant("Other", &[]).await;
    let (_, other_admin) = app.create_user(other, Role::Admin).await;
    let update = json!({ "id": webhook, "enabled": false });
    let body = app.mutate(&other_admin, "updateWebhook", update, "webhook { id }").await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
    let body =
        app.mutate(&other_admin, "deleteWebhook", json!({ "id": webhook }), "deletedId").await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"));
    let (_, body) = app
        .graphql(
            &other_admin,
            &format!("{{ node(id: \"{webhook}\") {{ id }} webhooks {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(body["data"], json!({ "node": null, "webhooks": { "totalCount": 0 } }));

    // The secret is write-only: no field shows it, and the change record never holds it.
    let (_, body) =
        app.graphql(&app.admin_token, "{ webhooks { nodes { secret } } }", json!({})).await;
    assert!(body.get("errors").is_some());
    let log = app.events(app.tenant_id).await;
    assert!(log.iter().any(|e| e.action == "webhook.created"));
    assert!(log.iter().all(|e| !e.changes.to_string().contains(SECRET)));

    let body =
        app.mutate(&app.admin_token, "deleteWebhook", json!({ "id": webhook }), "deletedId").await;
    assert_eq!(body["data"]["deleteWebhook"]["deletedId"], webhook.as_str());
    assert_eq!(app.query_ok("{ webhooks { totalCount } }").await["webhooks"]["totalCount"], 0);
    assert!(app.events(app.tenant_id).await.iter().any(|e| e.action == "webhook.deleted"));
}

#[tokio::test]
async fn a_restarted_server_skips_nothing() {
    let mut app = TestApp::with_webhooks(config(10)).await;
    let (receiver, url) = receiver(200).await;
    create_webhook(&app, &url, None).await;
    let start = head(&app).await;
    app.case_named("Before the restart").await;
    until("the first delivery", || receiver.accepted().len() == 1).await;
    app.stop_delivery().await;
    for n in 0..3 {
        app.case_named(&format!("While stopped {n}")).await;
    }
    assert_eq!(receiver.got().len(), 1, "nothing is sent while no worker runs");
    app.start_delivery(config(10));
    let events = case_events(&app, start).await;
    let last = cursor_of(events.last().expect("events"));
    until("every event", || receiver.accepted().iter().any(|r| r.json["cursor"] == last)).await;
    let accepted: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| r.json["cursor"].as_str().expect("c").to_owned())
        .collect();
    assert_eq!(accepted, events.iter().map(cursor_of).collect::<Vec<_>>());
}

/// Prints the delay from an event's commit time to its arrival (median and p99 over 200
/// events). Printed, not asserted: the machine is shared.
#[tokio::test]
async fn commit_to_webhook_delay_is_measured() {
    let app = TestApp::with_webhooks(config(10)).await;
    let (receiver, url) = receiver(200).await;
    create_webhook(&app, &url, None).await;
    const EVENTS: usize = 200;
    for n in 0..EVENTS {
        app.case_named(&format!("Timed {n}")).await;
    }
    until("every delivery", || receiver.accepted().len() >= EVENTS).await;
    let mut delays: Vec<f64> = receiver
        .accepted()
        .iter()
        .map(|r| {
            let at: DateTime<Utc> = r.json["at"].as_str().expect("at").parse().expect("time");
            (r.at - at).num_microseconds().unwrap_or_default() as f64 / 1000.0
        })
        .collect();
    delays.sort_by(f64::total_cmp);
    let median = delays[delays.len() / 2];
    let p99 = delays[(delays.len() * 99) / 100 - 1];
    println!(
        "commit-to-webhook delay over {EVENTS} events: median {median:.1} ms, p99 {p99:.1} ms, max {:.1} ms",
        delays[delays.len() - 1]
    );
}
