//! Races on cases answer with codes, never `INTERNAL`: an automatic case's name taken at
//! the moment it is inserted (by a case created or renamed by hand, or by another
//! ingestion), and concurrent additions at the 10,000-detection edge.

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code};
use casefile::graphql::ids::{self, Kind};

const INGESTED: &str = "accepted autoCases { id name detectionCount }";

/// A detection of `rule` on `host`, high enough to open an automatic case.
fn high(external_id: &str, rule: &str, host: &str) -> Value {
    let mut d = detection(external_id, 8);
    d["ruleName"] = json!(rule);
    d["device"] = json!({ "hostname": host });
    d
}

async fn ingest(app: &TestApp, detections: Vec<Value>) -> Value {
    let input = json!({ "detections": detections });
    app.mutate(&app.admin_token, "ingestDetections", input, INGESTED).await
}

/// A connection of the test's own, outside the app's pool.
async fn own_connection(app: &TestApp) -> AsyncPgConnection {
    AsyncPgConnection::establish(&app.database_url).await.expect("connect")
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).await.expect(sql).count
}

/// Waits until some statement of this database waits for a lock (the app's insert
/// waiting on the uncommitted row of the test's transaction).
async fn until_a_statement_waits_for_a_lock(conn: &mut AsyncPgConnection) {
    for _ in 0..200 {
        let waiting = count(
            conn,
            "SELECT count(*) AS count FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .await;
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no statement ever waited for the test's lock");
}

#[tokio::test]
async fn an_automatic_case_name_taken_while_it_is_inserted_gets_the_number_added() {
    let app = TestApp::new().await;
    let mut hand = own_connection(&app).await;
    let mut watch = own_connection(&app).await;
    // A case named like the automatic one, inserted but not yet committed: the ingestion's
    // insert waits for it on the unique index, then finds the name taken.
    diesel::sql_query("BEGIN").execute(&mut hand).await.expect("begin");
    diesel::sql_query(
        "INSERT INTO cases (id, tenant_id, number, kind, name, name_key, status, archive_at) \
         VALUES (gen_random_uuid(), $1::uuid, 9000, 'SELF_MANAGED', 'Beacon on host-1', \
                 'beacon on host-1', 'NEW', \
                 now() + interval '90 days')",
    )
    .bind::<Text, _>(app.tenant_id.0.to_string())
    .execute(&mut hand)
    .await
    .expect("insert the rival case");

    let commit_when_blocked = async {
        until_a_statement_waits_for_a_lock(&mut watch).await;
        diesel::sql_query("COMMIT").execute(&mut hand).await.expect("commit");
    };
    let (body, ()) =
        tokio::join!(ingest(&app, vec![high("race-1", "Beacon", "host-1")]), commit_when_blocked);
    assert!(body.get("errors").is_none(), "{body}");
    let auto = &body["data"]["ingestDetections"]["autoCases"][0];
    let number = app.read_case(auto["id"].as_str().expect("id")).await["number"].clone();
    assert_eq!(auto["name"], json!(format!("Beacon on host-1 ({number})")), "{body}");
    assert_eq!(auto["detectionCount"], 1);
}

#[tokio::test]
async fn concurrent_automatic_cases_and_hand_made_cases_wanting_one_name_all_get_codes() {
    let app = TestApp::new().await;
    for round in 0..4 {
        // Two rules that differ only in case give one name, ignoring case.
        let (upper, lower) = (format!("Beacon{round}"), format!("beacon{round}"));
        let name = format!("Beacon{round} on host");
        let by_hand =
            app.mutate(&app.admin_token, "createCase", json!({ "name": name }), "case { name }");
        // A rename takes no tenant lock: it can take the name between check and insert.
        let spare = app.case_named(&format!("Spare {round}")).await;
        let rename = app.mutate(
            &app.admin_token,
            "updateCase",
            json!({ "id": spare["id"], "name": name.to_uppercase() }),
            "case { name }",
        );
        let (first, second, hand, renamed) = tokio::join!(
            ingest(&app, vec![high(&format!("a-{round}"), &upper, "host")]),
            ingest(&app, vec![high(&format!("b-{round}"), &lower, "host")]),
            by_hand,
            rename,
        );
        let mut names = Vec::new();
        for body in [&first, &second] {
            assert!(body.get("errors").is_none(), "round {round}: {body}");
            let autos = body["data"]["ingestDetections"]["autoCases"].as_array().expect("autos");
            assert_eq!(autos.len(), 1, "{body}");
            names.push(autos[0]["name"].as_str().expect("name").to_lowercase());
        }
        for body in [&hand, &renamed] {
            match error_code(body) {
                None => names.push(name.to_lowercase()),
                Some(code) => assert_eq!(code, "NAME_TAKEN", "round {round}: {body}"),
            }
        }
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "round {round}: {names:?}");
        assert!(names.contains(&name.to_lowercase()), "someone has the plain name: {names:?}");
    }
}

#[tokio::test]
async fn two_concurrent_adds_at_the_10000_edge_let_exactly_one_through() {
    let app = TestApp::new().await;
    let case = app.case_named("At the edge").await;
    let case_id = case["id"].as_str().expect("id").to_owned();
    let case_uuid = ids::decode(&case_id).expect("a global id").1.to_string();
    let tenant = app.tenant_id.0.to_string();
    let mut conn = own_connection(&app).await;
    // 9,990 detections linked (the case's aggregates to match), 20 more to add.
    diesel::sql_query(
        "INSERT INTO detections (id, tenant_id, external_id, source, rule_name, rule_name_key, \
         observed_at, risk_score) \
         SELECT gen_random_uuid(), $1::uuid, 'edge-' || lpad(i::text, 5, '0'), 'XDR', 'Edge', 'edge', \
         now(), 1 \
         FROM generate_series(1, 10010) AS i",
    )
    .bind::<Text, _>(&tenant)
    .execute(&mut conn)
    .await
    .expect("seed detections");
    diesel::sql_query(
        "INSERT INTO case_detections (case_id, detection_id, tenant_id, observed_at, \
         ingested_at, risk_score, rule_name_key) SELECT $1::uuid, id, tenant_id, observed_at, \
         ingested_at, risk_score, rule_name_key FROM detections WHERE external_id <= 'edge-09990'",
    )
    .bind::<Text, _>(&case_uuid)
    .execute(&mut conn)
    .await
    .expect("seed links");
    diesel::sql_query(
        "UPDATE cases SET detection_count = 9990, risk_low = 9990 WHERE id = $1::uuid",
    )
    .bind::<Text, _>(&case_uuid)
    .execute(&mut conn)
    .await
    .expect("seed aggregates");

    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    let rest: Vec<Id> = diesel::sql_query(
        "SELECT id FROM detections WHERE external_id > 'edge-09990' ORDER BY external_id",
    )
    .load(&mut conn)
    .await
    .expect("the rest");
    let rest: Vec<String> = rest.iter().map(|r| ids::encode(Kind::Detection, r.id).0).collect();
    assert_eq!(rest.len(), 20);

    let add = |ids: &[String]| {
        app.mutate(
            &app.admin_token,
            "addDetectionsToCase",
            json!({ "caseId": case_id, "detectionIds": ids }),
            "case { detectionCount }",
        )
    };
    let (a, b) = tokio::join!(add(&rest[..10]), add(&rest[10..]));
    let mut codes = [error_code(&a), error_code(&b)];
    codes.sort();
    assert_eq!(codes, [None, Some("LIMIT_EXCEEDED")], "{a} {b}");
    let winner = if error_code(&a).is_none() { &a } else { &b };
    assert_eq!(winner["data"]["addDetectionsToCase"]["case"]["detectionCount"], 10_000);

    let read = app.read_case(&case_id).await;
    assert_eq!(read["detectionCount"], 10_000);
    assert_eq!(read["riskSummary"]["low"], 10_000);
    let links = count(
        &mut conn,
        &format!("SELECT count(*) AS count FROM case_detections WHERE case_id = '{case_uuid}'"),
    )
    .await;
    assert_eq!(links, 10_000, "the links and the count agree");
}
