//! `casefile seed`: a small seed keeps every invariant the API keeps (the stored keys,
//! sort keys and per-case aggregates equal what the API computes, numbers, life-cycle
//! times, the link limit), the API reads it back consistently, and the same seed twice
//! writes the same data.

use std::collections::HashMap;

use chrono::{Duration, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Int2, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;

use crate::common::{TestApp, fresh_database};
use casefile::db::schema::{case_detections, detections, subjects, tenants, users};
use casefile::domain::seed::{self, Scale, SeedOptions, SeededTenant};
use casefile::models::cases::{self, Case, rules};
use casefile::models::enums::CaseStatus;
use casefile::models::fold::fold;
use casefile::models::ids::UserId;
use casefile::models::subjects::Subject;
use casefile::models::tokens;
use casefile::models::users::User;

fn options(seed: u64) -> SeedOptions {
    SeedOptions {
        plan: Scale::Small.plan(),
        seed,
        anchor: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().expect("a time"),
        batch: 700,
    }
}

async fn run_seed(conn: &mut AsyncPgConnection, seed: u64) -> Vec<SeededTenant> {
    seed::run(conn, &options(seed), &mut |_| {}).await.expect("seed")
}

/// A detection's rule name, hostname and actor, each with its stored key.
type DetectionKeys =
    (String, String, Option<String>, Option<String>, Option<String>, Option<String>);

#[derive(QueryableByName)]
struct LinkCount {
    #[diesel(sql_type = SqlUuid)]
    case_id: uuid::Uuid,
    #[diesel(sql_type = Int2)]
    severity: i16,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Digest {
    #[diesel(sql_type = Text)]
    digest: String,
}

#[tokio::test]
async fn a_small_seed_keeps_every_invariant_the_api_keeps() {
    let app = TestApp::new().await;
    let mut conn = AsyncPgConnection::establish(&app.database_url).await.expect("connect");
    let seeded = run_seed(&mut conn, 7).await;
    assert_eq!(seeded.len(), 1);
    let t = &seeded[0];
    let plan = Scale::Small.plan();
    assert_eq!((t.cases, t.detections), (plan.cases, plan.detections));
    let tenant: (i32, i32, Option<i32>) = tenants::table
        .find(t.id)
        .select((
            tenants::next_case_number,
            tenants::archive_after_days,
            tenants::delete_resolved_after_days,
        ))
        .first(&mut conn)
        .await
        .expect("tenant");

    let all: Vec<Case> = diesel::sql_query(format!(
        "SELECT {} FROM cases WHERE tenant_id = $1 ORDER BY number",
        cases::COLUMNS
    ))
    .bind::<SqlUuid, _>(t.id)
    .load(&mut conn)
    .await
    .expect("cases");
    let people: HashMap<UserId, User> = users::table
        .filter(users::tenant_id.eq(t.id))
        .select(User::as_select())
        .load(&mut conn)
        .await
        .expect("users")
        .into_iter()
        .map(|u| (u.id, u))
        .collect();
    let subjects_by_id: HashMap<_, Subject> = subjects::table
        .filter(subjects::tenant_id.eq(t.id))
        .select(Subject::as_select())
        .load(&mut conn)
        .await
        .expect("subjects")
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let counted: Vec<LinkCount> = diesel::sql_query(
        "SELECT l.case_id, d.severity, count(*) AS n FROM case_detections l \
         JOIN detections d ON d.tenant_id = l.tenant_id AND d.id = l.detection_id \
         WHERE l.tenant_id = $1 GROUP BY 1, 2",
    )
    .bind::<SqlUuid, _>(t.id)
    .load(&mut conn)
    .await
    .expect("link counts");
    let mut by_case: HashMap<uuid::Uuid, [i32; 6]> = HashMap::new();
    for row in counted {
        by_case.entry(row.case_id).or_default()[row.severity as usize] += row.n as i32;
    }

    // Numbers 1..N per tenant and the tenant's next number after them.
    let numbers: Vec<i32> = all.iter().map(|c| c.number).collect();
    assert_eq!(numbers, (1..=all.len() as i32).collect::<Vec<_>>());
    assert_eq!(tenant.0, all.len() as i32 + 1);
    let mut open = 0;
    let mut statuses: HashMap<CaseStatus, usize> = HashMap::new();
    for case in &all {
        let at = format!("case {}", case.number);
        *statuses.entry(case.status).or_default() += 1;
        // The naming rule and the fold, as createCase applies them.
        assert_eq!(rules::name(&case.name).ok().as_deref(), Some(case.name.as_str()), "{at}");
        assert_eq!(case.name_key, fold(&case.name), "{at}");
        // Aggregates equal the linked detections', as the linking operations compute them.
        let counts = by_case.get(&case.id.0).copied().unwrap_or_default();
        assert_eq!(case.detection_count, counts.iter().sum::<i32>(), "{at}");
        assert_eq!(
            [
                case.risk_informational,
                case.risk_low,
                case.risk_medium,
                case.risk_high,
                case.risk_critical
            ],
            [counts[1], counts[2], counts[3], counts[4], counts[5]],
            "{at}"
        );
        assert!(i64::from(case.detection_count) <= cases::MAX_DETECTIONS, "{at}");
        if case.auto_created {
            let highest = (1..=5).rev().find(|&r| counts[r] > 0).unwrap_or(0) as i16;
            let rank = case.severity.map(|s| s.rank()).unwrap_or(0);
            assert!(
                rank >= highest,
                "{at}: an automatic case is at least as severe as its detections"
            );
            assert!(case.auto_rule_name.is_some() && case.auto_device.is_some(), "{at}");
            assert!(case.created_by_id.is_none(), "{at}");
        }
        // Sort keys.
        match case.assignee_id {
            Some(id) => {
                let user = &people[&id];
                assert!(user.role.assignable() && user.active, "{at}");
                assert_eq!(case.assignee_sort, fold(&user.display_name), "{at}");
            }
            None => assert_eq!(case.assignee_sort, "", "{at}"),
        }
        match case.subject_id {
            Some(id) => assert_eq!(case.subject_sort, subjects_by_id[&id].username_key, "{at}"),
            None => assert_eq!(case.subject_sort, "", "{at}"),
        }
        // Life-cycle times.
        assert_eq!(case.archive_at, case.created_at + Duration::days(tenant.1.into()), "{at}");
        assert!(case.updated_at >= case.created_at, "{at}");
        assert!(case.archive_at > options(7).anchor, "{at}: not due for archival");
        match case.status {
            CaseStatus::Resolved => {
                assert!(case.resolution.is_some() && case.resolved_at.is_some(), "{at}");
                assert!(case.archived_at.is_none(), "{at}");
            }
            CaseStatus::Archived => {
                assert!(case.archived_at.is_some(), "{at}");
                assert_eq!(case.detection_count, 0, "{at}: archiving removes the links");
            }
            _ => {
                open += 1;
                assert!(case.resolution.is_none() && case.resolved_at.is_none(), "{at}");
                assert!(case.archived_at.is_none() && case.delete_at.is_none(), "{at}");
            }
        }
        assert_eq!(case.resolution.is_some(), case.resolved_at.is_some(), "{at}");
        assert_eq!(
            case.delete_at,
            case.resolved_at.map(|r| r + Duration::days(tenant.2.expect("a delete policy").into())),
            "{at}"
        );
    }
    assert_eq!(open, t.open_cases);
    // The skew: most cases closed, a few open, one case far larger than the rest.
    assert!(open * 10 < all.len(), "few open cases: {statuses:?}");
    assert!(statuses[&CaseStatus::Resolved] > statuses[&CaseStatus::Archived]);
    let mut sizes: Vec<i32> = all.iter().map(|c| c.detection_count).collect();
    sizes.sort_unstable();
    assert_eq!(sizes.last().copied(), Some(plan.largest_case as i32));
    assert!(
        sizes[sizes.len() / 2] < 20,
        "most cases hold few detections: median {}",
        sizes[sizes.len() / 2]
    );

    // Each link carries its detection's sort keys.
    let stale: Digest = diesel::sql_query(
        "SELECT count(*)::text AS digest FROM case_detections l JOIN detections d \
         ON d.tenant_id = l.tenant_id AND d.id = l.detection_id WHERE l.tenant_id = $1 AND \
         (l.observed_at, l.ingested_at, l.risk_score, l.rule_name_key) IS DISTINCT FROM \
         (d.observed_at, d.ingested_at, d.risk_score, d.rule_name_key)",
    )
    .bind::<SqlUuid, _>(t.id)
    .get_result(&mut conn)
    .await
    .expect("link keys");
    assert_eq!(stale.digest, "0");

    // Detection keys.
    let keys: Vec<DetectionKeys> = detections::table
        .filter(detections::tenant_id.eq(t.id))
        .select((
            detections::rule_name,
            detections::rule_name_key,
            detections::device_hostname,
            detections::device_hostname_key,
            detections::actor,
            detections::actor_key,
        ))
        .load(&mut conn)
        .await
        .expect("detections");
    assert_eq!(keys.len(), plan.detections);
    for (rule, rule_key, host, host_key, actor, actor_key) in keys {
        assert_eq!(rule_key, fold(&rule));
        assert_eq!(host_key, host.as_deref().map(fold));
        assert_eq!(actor_key, actor.as_deref().map(fold));
    }

    // Read through the API as the seeded tenant's admin.
    let admin =
        people.values().find(|u| u.role == casefile::models::users::Role::Admin).expect("an admin");
    let (_, token) = tokens::create(&mut conn, admin, "test", None).await.expect("token");
    let (_, body) = app
        .graphql(
            &token,
            "query($n: Int) { cases { totalCount } case(number: $n) { status detectionCount \
             riskSummary { critical high medium low informational } detections(first: 100) { totalCount nodes { id } } } }",
            json!({ "n": t.largest_case.0 }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["cases"]["totalCount"], open as i64, "{body}");
    let case = &body["data"]["case"];
    assert_eq!(case["detectionCount"], plan.largest_case as i64, "{body}");
    assert_eq!(case["detections"]["totalCount"], plan.largest_case as i64, "{body}");
    assert_eq!(case["detections"]["nodes"].as_array().map(Vec::len), Some(100));
    let summary = &case["riskSummary"];
    let sum: i64 = ["critical", "high", "medium", "low", "informational"]
        .iter()
        .map(|k| summary[k].as_i64().expect("a count"))
        .sum();
    assert_eq!(sum, plan.largest_case as i64);

    // One SYSTEM event per committed batch in the tenant's change record.
    let events = app.events(casefile::models::ids::TenantId(t.id)).await;
    let seeded: Vec<_> = events.iter().filter(|e| e.action == "data.seeded").collect();
    let batch = options(7).batch;
    let batches =
        1 + plan.detections.div_ceil(batch) + plan.cases.div_ceil(batch) + t.links.div_ceil(batch);
    assert_eq!(seeded.len(), batches);
    assert!(seeded.iter().all(|e| e.actor_type == "SYSTEM" && e.actor_id.is_none()));

    // A seeded database refuses the same seed again, before writing anything.
    let error = seed::run(&mut conn, &options(7), &mut |_| {}).await.expect_err("seeded twice");
    assert!(error.to_string().contains("seed"), "{error}");
}

/// A digest of every row of the table (in a fixed order).
async fn digest(conn: &mut AsyncPgConnection, table: &str) -> String {
    let row: Digest = diesel::sql_query(format!(
        "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS digest FROM {table} t"
    ))
    .get_result(conn)
    .await
    .expect("digest");
    row.digest
}

#[tokio::test]
async fn the_same_seed_twice_writes_the_same_data() {
    let (one, two) = (fresh_database().await, fresh_database().await);
    let mut a = AsyncPgConnection::establish(&one.url).await.expect("connect");
    let mut b = AsyncPgConnection::establish(&two.url).await.expect("connect");
    run_seed(&mut a, 11).await;
    run_seed(&mut b, 11).await;
    for table in ["tenants", "users", "subjects", "detections", "cases", "case_detections"] {
        let (x, y) = (digest(&mut a, table).await, digest(&mut b, table).await);
        assert!(!x.is_empty(), "{table} is empty");
        assert_eq!(x, y, "{table} differs between two runs of one seed");
    }
    // Another seed writes other data.
    let three = fresh_database().await;
    let mut c = AsyncPgConnection::establish(&three.url).await.expect("connect");
    run_seed(&mut c, 12).await;
    assert_ne!(digest(&mut a, "cases").await, digest(&mut c, "cases").await);
}

#[derive(QueryableByName, PartialEq, Debug)]
struct SchemaItem {
    #[diesel(sql_type = Text)]
    item: String,
}

/// Every index and constraint of the schema with its definition (and whether a
/// constraint is validated), in a fixed order.
async fn schema_items(conn: &mut AsyncPgConnection) -> Vec<SchemaItem> {
    diesel::sql_query(
        "SELECT indexname || ': ' || indexdef AS item FROM pg_indexes \
           WHERE schemaname = current_schema() \
         UNION ALL \
         SELECT conrelid::regclass::text || '.' || conname || ': ' || pg_get_constraintdef(oid) \
           || CASE WHEN convalidated THEN '' ELSE ' (not validated)' END \
           FROM pg_constraint WHERE connamespace = current_schema()::regnamespace \
         ORDER BY 1",
    )
    .load(conn)
    .await
    .expect("schema items")
}

#[tokio::test]
async fn a_seed_of_a_fresh_database_leaves_every_index_and_constraint_as_it_found_them() {
    let db = fresh_database().await;
    let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect");
    let before = schema_items(&mut conn).await;
    assert!(before.iter().any(|i| i.item.starts_with("detections_tenant_observed_idx")));
    // A fresh database: the indexes and foreign keys are set aside and built back.
    run_seed(&mut conn, 21).await;
    assert_eq!(schema_items(&mut conn).await, before);
    // A database holding data: the second seed writes with every index in place.
    let second = run_seed(&mut conn, 22).await;
    assert_eq!(schema_items(&mut conn).await, before);
    let tenants: i64 = tenants::table.count().get_result(&mut conn).await.expect("count");
    assert_eq!(tenants, 2);
    let links: i64 = case_detections::table
        .filter(case_detections::tenant_id.eq(second[0].id))
        .count()
        .get_result(&mut conn)
        .await
        .expect("links");
    assert_eq!(links as usize, second[0].links);
}
