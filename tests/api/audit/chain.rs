//! The hash chain: verification after tampering, signed checkpoints checked with an
//! independent Ed25519 implementation, the export's hashes recomputed from the documented
//! encoding, concurrent writers, and the NOTIFY of a commit.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::TestApp;

const VERIFY: &str = "query($c: AuditCheckpointInput) { verifyAuditChain(checkpoint: $c) \
     { ok checked firstBrokenSequence extendsCheckpoint } }";

async fn verify(app: &TestApp, checkpoint: Value) -> Value {
    let (status, body) = app.graphql(&app.admin_token, VERIFY, json!({ "c": checkpoint })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["verifyAuditChain"].clone()
}

/// A few cases created, changed and deleted: a mixed workload.
async fn workload(app: &TestApp) {
    for i in 0..3 {
        let case = app.case_named(&format!("Work {i}")).await;
        let body = app
            .mutate(
                &app.admin_token,
                "updateCase",
                json!({"id": case["id"], "severity": "HIGH"}),
                "case { id }",
            )
            .await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let gone = app.case_named("Work gone").await;
    app.mutate(&app.admin_token, "deleteCases", json!({"ids": [gone["id"]]}), "deletedIds").await;
}

async fn sql(app: &TestApp, statement: &str) {
    let mut conn = app.conn().await;
    diesel::sql_query(statement).execute(&mut conn).await.expect(statement);
}

#[tokio::test]
async fn the_chain_verifies_after_a_mixed_workload_and_names_an_edited_row() {
    let app = TestApp::new().await;
    workload(&app).await;
    let total = app.events(app.tenant_id).await.len() as i64;
    assert_eq!(total, 11, "3 from the first start, 2 per worked case, 2 for the deleted one");
    let report = verify(&app, Value::Null).await;
    assert_eq!(
        report,
        json!({"ok": true, "checked": total, "firstBrokenSequence": null, "extendsCheckpoint": null})
    );

    sql(&app, "UPDATE audit_events SET changes = '{\"name\": {\"before\": null, \"after\": \"forged\"}}' WHERE sequence = 5").await;
    let report = verify(&app, Value::Null).await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["firstBrokenSequence"], 5);
    assert_eq!(report["checked"], 5);
}

#[tokio::test]
async fn a_deleted_row_breaks_the_chain_at_its_number() {
    let app = TestApp::new().await;
    workload(&app).await;
    sql(&app, "DELETE FROM audit_events WHERE sequence = 6").await;
    let report = verify(&app, Value::Null).await;
    assert_eq!(
        (report["ok"].clone(), report["firstBrokenSequence"].clone()),
        (json!(false), json!(6))
    );

    // Cutting off the tail is found too: the head still names the last event.
    let app = TestApp::new().await;
    workload(&app).await;
    let last = app.events(app.tenant_id).await.len();
    sql(&app, &format!("DELETE FROM audit_events WHERE sequence >= {}", last - 1)).await;
    let report = verify(&app, Value::Null).await;
    assert_eq!(report["firstBrokenSequence"], json!(last - 1));
}

#[tokio::test]
async fn reordered_rows_break_the_chain_where_the_order_changes() {
    let app = TestApp::new().await;
    workload(&app).await;
    sql(&app, "UPDATE audit_events SET sequence = 1000000 WHERE sequence = 7").await;
    sql(&app, "UPDATE audit_events SET sequence = 7 WHERE sequence = 8").await;
    sql(&app, "UPDATE audit_events SET sequence = 8 WHERE sequence = 1000000").await;
    let report = verify(&app, Value::Null).await;
    assert_eq!(
        (report["ok"].clone(), report["firstBrokenSequence"].clone()),
        (json!(false), json!(7))
    );
}

const CHECKPOINT: &str =
    "{ auditCheckpoint { sequence hash at signature publicKey } tenant { id } }";

#[tokio::test]
async fn a_checkpoint_signature_verifies_with_an_independent_ed25519_implementation() {
    let app = TestApp::new().await;
    workload(&app).await;
    let data = app.query_ok(CHECKPOINT).await;
    let checkpoint = &data["auditCheckpoint"];
    let head = app.events(app.tenant_id).await.pop().expect("events");
    assert_eq!(checkpoint["sequence"], head.sequence);
    assert_eq!(checkpoint["hash"], head.hash);
    let text = format!(
        "casefile-audit-checkpoint:v1:{}:{}:{}:{}",
        data["tenant"]["id"].as_str().unwrap_or_default(),
        checkpoint["sequence"],
        checkpoint["hash"].as_str().unwrap_or_default(),
        checkpoint["at"].as_str().unwrap_or_default(),
    );
    let public_key =
        STANDARD.decode(checkpoint["publicKey"].as_str().unwrap_or_default()).expect("base64");
    let signature =
        STANDARD.decode(checkpoint["signature"].as_str().unwrap_or_default()).expect("base64");
    assert_eq!((public_key.len(), signature.len()), (32, 64));
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public_key);
    assert!(key.verify(text.as_bytes(), &signature).is_ok(), "the signature covers {text}");
    assert!(key.verify(format!("{text}x").as_bytes(), &signature).is_err());

    // The same key is served at /audit/public-key, without a token.
    let served: Value = app
        .http
        .get(app.url("/audit/public-key"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(served["publicKey"], checkpoint["publicKey"]);
}

#[tokio::test]
async fn a_consistent_rewrite_passes_the_plain_check_but_not_an_earlier_checkpoint() {
    let app = TestApp::new().await;
    workload(&app).await;
    let checkpoint = app.query_ok(CHECKPOINT).await["auditCheckpoint"].clone();
    let kept = json!({
        "sequence": checkpoint["sequence"], "hash": checkpoint["hash"],
        "at": checkpoint["at"], "signature": checkpoint["signature"],
    });
    app.case_named("After the checkpoint").await;
    let report = verify(&app, kept.clone()).await;
    assert_eq!(
        (report["ok"].clone(), report["extendsCheckpoint"].clone()),
        (json!(true), json!(true))
    );

    // Someone with database access rewrites event 4 and every hash after it.
    let mut events = app.events(app.tenant_id).await;
    let mut previous = events[2].hash.clone();
    for event in events.iter_mut().skip(3) {
        if event.sequence == 4 {
            event.changes = json!({"name": {"before": null, "after": "rewritten"}});
        }
        event.previous_hash = previous.clone();
        event.hash = event.compute_hash();
        previous = event.hash.clone();
    }
    let mut conn = app.conn().await;
    for event in events.iter().skip(3) {
        diesel::sql_query("UPDATE audit_events SET changes = $1, previous_hash = $2, hash = $3 WHERE tenant_id = $4 AND sequence = $5")
            .bind::<diesel::sql_types::Jsonb, _>(&event.changes)
            .bind::<diesel::sql_types::Text, _>(&event.previous_hash)
            .bind::<diesel::sql_types::Text, _>(&event.hash)
            .bind::<diesel::sql_types::Uuid, _>(app.tenant_id.0)
            .bind::<diesel::sql_types::BigInt, _>(event.sequence)
            .execute(&mut conn)
            .await
            .expect("rewrite");
    }
    diesel::sql_query("UPDATE audit_heads SET last_hash = $1 WHERE tenant_id = $2")
        .bind::<diesel::sql_types::Text, _>(&previous)
        .bind::<diesel::sql_types::Uuid, _>(app.tenant_id.0)
        .execute(&mut conn)
        .await
        .expect("rewrite the head");
    drop(conn);

    let plain = verify(&app, Value::Null).await;
    assert_eq!(plain["ok"], true, "a consistent rewrite holds together: {plain}");
    let report = verify(&app, kept.clone()).await;
    assert_eq!(report["extendsCheckpoint"], false, "{report}");

    // A checkpoint with a forged signature never extends.
    let mut forged = kept;
    forged["signature"] = json!(STANDARD.encode([7u8; 64]));
    assert_eq!(verify(&app, forged).await["extendsCheckpoint"], false);
}

/// The documented encoding, written here from the README's words, not the server's code.
fn documented_hash(row: &Value) -> String {
    let text = |name: &str| match &row[name] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    fn sorted(value: &Value) -> String {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let inner: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{}:{}", Value::String((*k).clone()), sorted(&map[*k])))
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
            Value::Array(items) => {
                format!("[{}]", items.iter().map(sorted).collect::<Vec<_>>().join(","))
            }
            other => other.to_string(),
        }
    }
    let lines = [
        "casefile-audit-event:v1".to_owned(),
        text("previousHash"),
        text("tenantId"),
        text("sequence"),
        text("id"),
        text("at"),
        text("actorId"),
        text("actorType"),
        text("requestId"),
        text("clientAddress"),
        text("action"),
        text("caseId"),
        text("caseNumber"),
        text("caseEventKind"),
        text("targetId"),
        sorted(&row["changes"]),
    ];
    let digest = ring::digest::digest(&ring::digest::SHA256, lines.join("\n").as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_export_streams_every_event_and_its_hash_recomputes_from_the_documented_encoding() {
    let app = TestApp::new().await;
    workload(&app).await;
    let response = app
        .http
        .get(app.url("/audit/export"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.expect("body");
    let rows: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let events = app.events(app.tenant_id).await;
    assert_eq!(rows.len(), events.len());
    let mut previous = "0".repeat(64);
    for (row, event) in rows.iter().zip(&events) {
        assert_eq!(row["sequence"], event.sequence);
        assert_eq!(row["previousHash"], previous);
        assert_eq!(documented_hash(row), row["hash"].as_str().unwrap_or_default(), "{row}");
        previous = event.hash.clone();
    }

    // CSV, and a time range that holds nothing.
    let csv = app
        .http
        .get(app.url("/audit/export?format=csv"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("body");
    assert!(csv.starts_with("tenantId,sequence,id,at,actorId,actorType,"), "{csv}");
    assert_eq!(csv.lines().count(), events.len() + 1);
    let empty = app
        .http
        .get(app.url("/audit/export?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z"))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("export");
    assert_eq!(empty.status(), 200);
    assert_eq!(empty.text().await.expect("body"), "");
}

#[tokio::test]
async fn the_export_answers_bad_parameters_and_other_roles_with_codes() {
    let app = TestApp::new().await;
    for (query, field) in
        [("format=xml", "format"), ("from=yesterday", "from"), ("to=1", "to"), ("bogus=1", "bogus")]
    {
        let response = app
            .http
            .get(app.url(&format!("/audit/export?{query}")))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .expect("export");
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED", "{query}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{query}");
    }
    let (_, analyst) = app.create_user(app.tenant_id, casefile::models::users::Role::Analyst).await;
    let response =
        app.http.get(app.url("/audit/export")).bearer_auth(&analyst).send().await.expect("export");
    assert_eq!(response.status(), 403);
    let response = app.http.get(app.url("/audit/export")).send().await.expect("export");
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_in_one_tenant_leave_a_gap_free_valid_chain() {
    let app = TestApp::with_pool(16, std::time::Duration::from_secs(30)).await;
    let started = std::time::Instant::now();
    let writes = (0..50).map(|i| {
        let app = &app;
        async move {
            let body = app
                .mutate(
                    &app.admin_token,
                    "createCase",
                    json!({"name": format!("Concurrent {i}")}),
                    "case { id }",
                )
                .await;
            assert!(body.get("errors").is_none(), "{body}");
        }
    });
    futures_util::future::join_all(writes).await;
    println!("50 concurrent createCase calls took {:?}", started.elapsed());
    let events = app.events(app.tenant_id).await;
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<_>>());
    assert_eq!(events.iter().filter(|e| e.action == "case.created").count(), 50);
    for pair in events.windows(2) {
        assert!(pair[0].at <= pair[1].at, "times follow the sequence");
    }
    let report = verify(&app, Value::Null).await;
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn a_commit_notifies_tenant_and_sequence_and_a_rollback_nothing() {
    use diesel_async::AsyncConnection;
    let app = TestApp::new().await;
    let taken = app.case_named("Taken").await;
    let other = app.case_named("Other").await;
    let mut listener =
        diesel_async::AsyncPgConnection::establish(&app.database_url).await.expect("connect");
    diesel::sql_query("LISTEN casefile_events").execute(&mut listener).await.expect("listen");
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({"id": other["id"], "name": taken["name"]}),
            "case { id }",
        )
        .await;
    assert!(body.get("errors").is_some(), "{body}");
    let body = app
        .mutate(
            &app.admin_token,
            "updateCase",
            json!({"id": other["id"], "severity": "LOW"}),
            "case { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let last = app.events(app.tenant_id).await.pop().expect("events").sequence;
    let mut notifications = std::pin::pin!(listener.notifications_stream());
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), notifications.next())
        .await
        .expect("a notification within 30 s")
        .expect("stream open")
        .expect("notification");
    assert_eq!(first.channel, "casefile_events");
    assert_eq!(
        first.payload,
        format!("{}:{last}", app.tenant_id.0),
        "only the committed change notified"
    );
}
