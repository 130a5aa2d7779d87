//! One case-folding rule (Unicode, not the server's locale): names, usernames, e-mails,
//! actors, hostnames and rule names compare equal ignoring case in uniqueness, lookups,
//! filters and list paging, with non-ASCII letters (Ä/ä, Å/å, Σ/σ/ς) too.

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code};

async fn upsert_subject(app: &TestApp, username: &str) -> Value {
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
    let url = crate::common::fresh_database().await;
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
