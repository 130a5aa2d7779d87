//! Existing rows re-keyed with the one folding rule (`models::fold`): the step the
//! migration runner runs in the migration that added the key columns, and a start on a
//! database whose rows predate it.

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code};
use crate::folding::upsert_subject;

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
}

async fn key(app: &TestApp, sql: &str) -> Option<String> {
    let mut conn = app.conn().await;
    let rows: Vec<Key> = diesel::sql_query(sql).load(&mut conn).await.expect("read a key");
    rows.into_iter().next().and_then(|k| k.key)
}

async fn exec(app: &TestApp, sql: &str) {
    let mut conn = app.conn().await;
    diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
}

#[tokio::test]
async fn the_rekey_step_rewrites_stale_keys_with_the_rust_fold_and_keeps_twins_apart() {
    let app = TestApp::new().await;
    let older = app.case_named("Ärger").await;
    let younger = app.case_named("Placeholder").await;
    upsert_subject(&app, "ÅSA@example.com").await;
    let mut activity = detection("rekey-1", 2);
    activity["actor"] = json!("ÅSA@example.com");
    activity["device"] = json!({ "hostname": "SÖDER" });
    activity["ruleName"] = json!("ΣΑΣ");
    app.ingest(&app.admin_token.clone(), vec![activity]).await;
    // Keys as lower() under the "C" locale left them, and a twin name that lower() let in.
    let number = |case: &Value| case["number"].as_i64().expect("number");
    exec(&app, &format!("UPDATE cases SET name_key = 'Ärger', created_at = now() - interval '1 day' WHERE number = {}", number(&older))).await;
    exec(
        &app,
        &format!(
            "UPDATE cases SET name = 'ärger', name_key = 'ärger' WHERE number = {}",
            number(&younger)
        ),
    )
    .await;
    exec(&app, "UPDATE subjects SET username_key = 'Åsa@example.com'").await;
    exec(&app, "UPDATE detections SET actor_key = 'Åsa@example.com', device_hostname_key = 'SÖder', rule_name_key = 'ΣΑΣ'").await;
    exec(&app, "UPDATE users SET email_key = upper(email)").await;
    exec(&app, "UPDATE tenants SET name_key = 'DEFAULT'").await;

    let done = casefile::db::migrations::rekey(&app.database_url).await.expect("re-key");
    assert_eq!(done.collisions, 1, "{done:?}");

    let younger_id: String = {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = Text)]
            id: String,
        }
        let mut conn = app.conn().await;
        let rows: Vec<Id> = diesel::sql_query(format!(
            "SELECT id::text AS id FROM cases WHERE number = {}",
            number(&younger)
        ))
        .load(&mut conn)
        .await
        .expect("id");
        rows.into_iter().next().expect("the younger case").id
    };
    let name_key = |n: i64| format!("SELECT name_key AS key FROM cases WHERE number = {n}");
    assert_eq!(
        key(&app, &name_key(number(&older))).await.as_deref(),
        Some("ärger"),
        "the older keeps the fold"
    );
    assert_eq!(
        key(&app, &name_key(number(&younger))).await,
        Some(format!("ärger\u{1}{younger_id}")),
        "the younger twin keeps a key of its own"
    );
    assert_eq!(
        key(&app, "SELECT username_key AS key FROM subjects").await.as_deref(),
        Some("åsa@example.com")
    );
    assert_eq!(
        key(&app, "SELECT actor_key AS key FROM detections").await.as_deref(),
        Some("åsa@example.com")
    );
    assert_eq!(
        key(&app, "SELECT device_hostname_key AS key FROM detections").await.as_deref(),
        Some("söder")
    );
    assert_eq!(
        key(&app, "SELECT rule_name_key AS key FROM detections").await.as_deref(),
        Some("σασ")
    );
    assert_eq!(
        key(&app, "SELECT DISTINCT (email_key = lower(email))::text AS key FROM users")
            .await
            .as_deref(),
        Some("true")
    );
    assert_eq!(key(&app, "SELECT name_key AS key FROM tenants").await.as_deref(), Some("default"));

    let again = casefile::db::migrations::rekey(&app.database_url).await.expect("re-key again");
    assert_eq!((again.keys, again.collisions), (0, 1), "idempotent");
    let body =
        app.mutate(&app.admin_token, "createCase", json!({ "name": "ÄRGER" }), "case { id }").await;
    assert_eq!(error_code(&body), Some("NAME_TAKEN"), "{body}");
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    flag: bool,
}

/// Reverts the migrations down to the one before the folded keys.
async fn revert_to_before_folding(url: &str) {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        use diesel_async::AsyncPgConnection;
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        use diesel_migrations::MigrationHarness;
        let mut conn =
            AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).expect("connect");
        loop {
            let applied = conn.applied_migrations().expect("applied migrations");
            let newest = applied.iter().map(|v| v.to_string().replace('-', "")).max();
            if newest.is_none_or(|v| v.as_str() < "20261130000003") {
                break;
            }
            conn.revert_last_migration(casefile::db::migrations::MIGRATIONS).expect("revert");
        }
    })
    .await
    .expect("revert task");
}

#[tokio::test]
async fn migrating_re_keys_existing_rows_with_the_rust_fold_and_twins_do_not_fail_the_start() {
    let database = crate::common::fresh_database().await;
    let url = database.url.clone();
    revert_to_before_folding(&url).await;
    let mut conn = {
        use diesel_async::AsyncConnection;
        diesel_async::AsyncPgConnection::establish(&url).await.expect("connect")
    };
    let run = |sql: String| diesel::sql_query(sql);
    let tenant = "00000000-0000-4000-8000-000000000001";
    let (older, younger) =
        ("00000000-0000-4000-8000-0000000000c1", "00000000-0000-4000-8000-0000000000c2");
    let user = "00000000-0000-4000-8000-0000000000a1";
    let subject = "00000000-0000-4000-8000-0000000000b1";
    let flags: Vec<Flag> = run("SELECT lower('Ä') = 'Ä' AS flag".into())
        .load(&mut conn)
        .await
        .expect("ask the server");
    let ascii_lower = flags.iter().any(|f| f.flag);
    for sql in [
        format!("INSERT INTO tenants (id, name) VALUES ('{tenant}', 'Ökotest')"),
        format!(
            "INSERT INTO users (id, tenant_id, email, display_name, role) \
             VALUES ('{user}', '{tenant}', 'ÖLE@x.test', 'Öle Ärmel', 'ANALYST')"
        ),
        format!(
            "INSERT INTO subjects (id, tenant_id, username, department) \
             VALUES ('{subject}', '{tenant}', 'ÅSA@x.test', 'ÄMTER')"
        ),
        format!(
            "INSERT INTO cases (id, tenant_id, number, kind, name, status, archive_at, created_at, \
             assignee_id, assignee_sort, subject_id, subject_sort) \
             VALUES ('{older}', '{tenant}', 1, 'SELF_MANAGED', 'Ärger', 'NEW', now(), \
             now() - interval '1 day', '{user}', 'Öle Ärmel', '{subject}', 'ÅSA@x.test')"
        ),
        format!(
            "INSERT INTO detections (id, tenant_id, external_id, source, rule_name, observed_at, \
             risk_score, device_hostname, actor) VALUES (gen_random_uuid(), '{tenant}', 'e1', 'XDR', \
             'ΣΑΣ', now(), 1, 'SÖDER', 'ÅSA@x.test')"
        ),
    ] {
        run(sql.clone()).execute(&mut conn).await.expect(&sql);
    }
    if ascii_lower {
        // lower() folds ASCII only on this server: the twin name was accepted before.
        let sql = format!(
            "INSERT INTO cases (id, tenant_id, number, kind, name, status, archive_at) \
             VALUES ('{younger}', '{tenant}', 2, 'SELF_MANAGED', 'ärger', 'NEW', now())"
        );
        run(sql.clone()).execute(&mut conn).await.expect(&sql);
    }

    casefile::db::migrations::run(&url).await.expect("the start migrates and re-keys");

    let text = |sql: &str| {
        let (sql, url) = (sql.to_owned(), url.clone());
        async move {
            let mut conn = {
                use diesel_async::AsyncConnection;
                diesel_async::AsyncPgConnection::establish(&url).await.expect("connect")
            };
            let rows: Vec<Key> = diesel::sql_query(&sql).load(&mut conn).await.expect(&sql);
            rows.into_iter().next().and_then(|k| k.key)
        }
    };
    let expect = [
        ("SELECT name_key AS key FROM tenants", "ökotest".to_owned()),
        ("SELECT email_key AS key FROM users", "öle@x.test".to_owned()),
        ("SELECT username_key AS key FROM subjects", "åsa@x.test".to_owned()),
        ("SELECT department_key AS key FROM subjects", "ämter".to_owned()),
        (&*format!("SELECT name_key AS key FROM cases WHERE id = '{older}'"), "ärger".to_owned()),
        (
            &*format!("SELECT assignee_sort AS key FROM cases WHERE id = '{older}'"),
            "öle ärmel".to_owned(),
        ),
        (
            &*format!("SELECT subject_sort AS key FROM cases WHERE id = '{older}'"),
            "åsa@x.test".to_owned(),
        ),
        ("SELECT rule_name_key AS key FROM detections", "σασ".to_owned()),
        ("SELECT device_hostname_key AS key FROM detections", "söder".to_owned()),
        ("SELECT actor_key AS key FROM detections", "åsa@x.test".to_owned()),
    ];
    for (sql, key) in expect {
        assert_eq!(text(sql).await, Some(key), "{sql}");
    }
    if ascii_lower {
        let sql = format!("SELECT name_key AS key FROM cases WHERE id = '{younger}'");
        assert_eq!(text(&sql).await, Some(format!("ärger\u{1}{younger}")), "the younger twin");
    }
}
