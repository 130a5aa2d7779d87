//! The case page and the case list at the database's speed: a case's detections in
//! every order and direction (ties broken by id, paged both ways), read by a range scan
//! of the link's index that stops after the page; the open-case list from a partial
//! index (with the values' custom plan and with the generic plan a cached statement may
//! switch to alike); and at most 4 SQL statements per request for both, authentication
//! included.

use serde_json::{Value, json};

use crate::case_lists::{analyst_named, new_case, subject};
use crate::common::TestApp;
use crate::common::fixtures::detection;
use casefile::graphql::ids;
use casefile::models::cases::list::{CaseFilter, CaseOrder};
use casefile::models::detections::list::{
    self, DetectionFilter, DetectionOrder, DetectionOrderField, Parents,
};
use casefile::models::enums::CaseStatus;
use casefile::models::ids::CaseId;
use casefile::models::page::{Direction, PageRequest};
use casefile::models::sql::{Bind, Sql, explain_analyze};
use diesel_async::AsyncPgConnection;

const FIELDS: [&str; 4] = ["OBSERVED_AT", "INGESTED_AT", "RISK_SCORE", "RULE_NAME"];

/// Detections with many ties in every order: three observation times, two ingest calls
/// (one ingest time each), four risk scores, rule names differing only in case.
fn tied_detections(prefix: &str, range: std::ops::Range<usize>) -> Vec<Value> {
    let times = ["2026-11-20T10:00:00Z", "2026-11-21T10:00:00Z", "2026-11-19T08:00:00Z"];
    let rules = ["Alpha rule", "alpha RULE", "Beta rule", "gamma"];
    range
        .map(|i| {
            let mut d = detection(&format!("{prefix}-{i}"), [1, 1, 5, 2][i % 4]);
            d["observedAt"] = json!(times[i % 3]);
            d["ruleName"] = json!(rules[(i / 2) % 4]);
            d
        })
        .collect()
}

/// A case holding `count` tied detections (ingested in two calls); returns its number
/// and the ids of detections ingested beside it that it does not hold.
async fn tied_case(app: &TestApp, count: usize) -> (i64, Vec<String>) {
    let mut held = app.ingest(&app.admin_token, tied_detections("held", 0..count / 2)).await;
    held.extend(app.ingest(&app.admin_token, tied_detections("held", count / 2..count)).await);
    let others = app.ingest(&app.admin_token, tied_detections("other", 0..5)).await;
    let (_, number) = new_case(app, json!({ "name": "Tied", "detectionIds": held })).await;
    new_case(app, json!({ "name": "Other", "detectionIds": others.clone() })).await;
    (number, others)
}

const PAGE: &str = "query($n: Int!, $order: DetectionOrder, $first: Int, $after: String, \
    $last: Int, $before: String, $filter: DetectionFilter) { case(number: $n) { \
    detections(orderBy: $order, first: $first, after: $after, last: $last, before: $before, \
    filter: $filter) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } \
    nodes { id observedAt ingestedAt riskScore ruleName severity } } } }";

async fn page(app: &TestApp, variables: Value) -> Value {
    let (status, body) = app.graphql(&app.admin_token, PAGE, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["case"]["detections"].clone()
}

/// The sort key of a node in an order, comparable as text (times are RFC 3339 in UTC,
/// risk scores zero-padded), and its id's UUID as the tie-breaker.
fn key(node: &Value, field: &str) -> (String, uuid::Uuid) {
    let key = match field {
        "OBSERVED_AT" => node["observedAt"].as_str().expect("time").to_owned(),
        "INGESTED_AT" => node["ingestedAt"].as_str().expect("time").to_owned(),
        "RISK_SCORE" => format!("{:05}", node["riskScore"].as_i64().expect("score")),
        _ => node["ruleName"].as_str().expect("rule").to_lowercase(),
    };
    let (_, id) = ids::decode(node["id"].as_str().expect("id")).expect("a global id");
    (key, id)
}

fn ids_of(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_cases_detections_sort_in_every_order_both_ways_and_page_both_ways_with_ties() {
    let app = TestApp::new().await;
    let (number, others) = tied_case(&app, 23).await;
    for field in FIELDS {
        for direction in ["ASC", "DESC"] {
            let order = json!({ "field": field, "direction": direction });
            let all = page(&app, json!({ "n": number, "order": order, "first": 100 })).await;
            assert_eq!(all["totalCount"], 23);
            let nodes = all["nodes"].as_array().expect("nodes").clone();
            assert_eq!(nodes.len(), 23, "{field} {direction}");
            let keys: Vec<_> = nodes.iter().map(|n| key(n, field)).collect();
            let mut expected = keys.clone();
            expected.sort();
            if direction == "DESC" {
                expected.reverse();
            }
            assert_eq!(keys, expected, "{field} {direction}: sorted by key, then id");
            let full = ids_of(&all);
            assert!(full.iter().all(|id| !others.contains(id)), "only the case's own");

            // Forward, four at a time.
            let mut forward = Vec::new();
            let mut after = Value::Null;
            loop {
                let p =
                    page(&app, json!({ "n": number, "order": order, "first": 4, "after": after }))
                        .await;
                forward.extend(ids_of(&p));
                if !p["pageInfo"]["hasNextPage"].as_bool().expect("flag") {
                    break;
                }
                after = p["pageInfo"]["endCursor"].clone();
            }
            assert_eq!(forward, full, "{field} {direction} forward");

            // Backward from the end, four at a time.
            let mut backward: Vec<Vec<String>> = Vec::new();
            let mut before = Value::Null;
            loop {
                let p =
                    page(&app, json!({ "n": number, "order": order, "last": 4, "before": before }))
                        .await;
                backward.push(ids_of(&p));
                if !p["pageInfo"]["hasPreviousPage"].as_bool().expect("flag") {
                    break;
                }
                before = p["pageInfo"]["startCursor"].clone();
            }
            backward.reverse();
            assert_eq!(backward.concat(), full, "{field} {direction} backward");

            // Filtered: the same order, only the matching ones, counted as such.
            let filter = json!({ "minSeverity": "MEDIUM" });
            let filtered =
                page(&app, json!({ "n": number, "order": order, "first": 100, "filter": filter }))
                    .await;
            let expected: Vec<String> = nodes
                .iter()
                .filter(|n| n["riskScore"].as_i64().expect("score") >= 4)
                .map(|n| n["id"].as_str().expect("id").to_owned())
                .collect();
            assert!(!expected.is_empty() && expected.len() < 23);
            assert_eq!(ids_of(&filtered), expected, "{field} {direction} filtered");
            assert_eq!(filtered["totalCount"], json!(expected.len()));
        }
    }
}

#[tokio::test]
async fn an_unfiltered_case_page_counts_from_the_case_row_as_detections_come_and_go() {
    let app = TestApp::new().await;
    let (number, _) = tied_case(&app, 6).await;
    let order = json!({ "field": "OBSERVED_AT", "direction": "DESC" });
    let before = page(&app, json!({ "n": number, "order": order, "first": 2 })).await;
    assert_eq!(before["totalCount"], 6);
    let case = &app
        .graphql(
            &app.admin_token,
            "query($n: Int) { case(number: $n) { id } }",
            json!({ "n": number }),
        )
        .await
        .1["data"]["case"]["id"];
    let removed = ids_of(&page(&app, json!({ "n": number, "first": 2 })).await);
    let body = app
        .mutate(
            &app.admin_token,
            "removeDetectionsFromCase",
            json!({ "caseId": case, "detectionIds": removed }),
            "case { detectionCount }",
        )
        .await;
    assert_eq!(body["data"]["removeDetectionsFromCase"]["case"]["detectionCount"], 4, "{body}");
    let after = page(&app, json!({ "n": number, "order": order, "first": 2 })).await;
    assert_eq!(after["totalCount"], 4);
}

/// The lines of the plans of a case page of `limit` in `order`: the custom plan of its
/// values, and the generic plan.
async fn case_page_plans(
    app: &TestApp,
    case: CaseId,
    order: DetectionOrder,
    limit: i64,
) -> [Vec<String>; 2] {
    let request = PageRequest { limit, cursor: None, backward: false };
    let sql = list::pages_sql(
        app.tenant_id,
        &Parents::Cases(vec![case]),
        &DetectionFilter::default(),
        order,
        &request,
    );
    let mut conn = app.conn().await;
    let generic = generic_plan(&mut conn, &sql).await;
    [explain_analyze(&mut conn, sql).await.expect("explain"), generic]
}

/// A line of a plan.
#[derive(diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

/// A bound value as an SQL literal (a test's own values only).
fn literal(value: &Bind) -> String {
    match value {
        Bind::Uuid(id) => format!("'{id}'::uuid"),
        Bind::Uuids(ids) => {
            let ids: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
            format!("ARRAY[{}]::uuid[]", ids.join(", "))
        }
        Bind::Int(n) => n.to_string(),
        other => panic!("no literal for {other:?} in these tests"),
    }
}

/// How PostgreSQL runs `sql` with the generic plan a cached statement may switch to
/// after five runs (`plan_cache_mode = force_generic_plan`), with `EXPLAIN ANALYZE`.
async fn generic_plan(conn: &mut AsyncPgConnection, sql: &Sql) -> Vec<String> {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    let values: Vec<String> = sql.binds().iter().map(literal).collect();
    conn.batch_execute(&format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE generic AS {}",
        sql.text()
    ))
    .await
    .expect("prepare");
    let lines: Vec<PlanLine> = diesel::sql_query(format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE generic({})",
        values.join(", ")
    ))
    .load(conn)
    .await
    .expect("explain");
    conn.batch_execute("DEALLOCATE generic; RESET plan_cache_mode").await.expect("reset");
    lines.into_iter().map(|l| l.line).collect()
}

/// The `rows=` figure of a plan line (its actual rows).
fn actual_rows(line: &str) -> u64 {
    let at = line.find("rows=").expect("actual rows");
    line[at + 5..].split(|c: char| !c.is_ascii_digit()).next().expect("n").parse().expect("n")
}

#[tokio::test]
async fn a_case_page_is_an_index_range_scan_that_stops_after_the_page_in_every_order() {
    use diesel_async::RunQueryDsl;

    let app = TestApp::new().await;
    let mut held = Vec::new();
    for call in 0..2 {
        held.extend(
            app.ingest(&app.admin_token, tied_detections("big", call * 1000..call * 1000 + 1000))
                .await,
        );
    }
    let (id, _) = new_case(&app, json!({ "name": "Big", "detectionIds": held })).await;
    let case = CaseId(ids::decode(&id).expect("id").1);
    let mut conn = app.conn().await;
    diesel::sql_query("ANALYZE case_detections").execute(&mut conn).await.expect("analyze");
    diesel::sql_query("ANALYZE detections").execute(&mut conn).await.expect("analyze");
    drop(conn);

    let fields = [
        (DetectionOrderField::ObservedAt, "case_detections_case_observed_idx"),
        (DetectionOrderField::IngestedAt, "case_detections_case_ingested_idx"),
        (DetectionOrderField::RiskScore, "case_detections_case_risk_idx"),
        (DetectionOrderField::RuleName, "case_detections_case_rule_idx"),
    ];
    for (field, index) in fields {
        for direction in [Direction::Asc, Direction::Desc] {
            let order = DetectionOrder { field, direction };
            for plan in case_page_plans(&app, case, order, 10).await {
                let text = plan.join("\n");
                let scan = plan
                    .iter()
                    .find(|line| line.contains(index))
                    .unwrap_or_else(|| panic!("{field:?} {direction:?} reads {index}:\n{text}"));
                assert!(
                    scan.contains("Index Scan") || scan.contains("Index Only Scan"),
                    "{field:?} {direction:?}:\n{text}"
                );
                assert!(actual_rows(scan) <= 11, "stops after the page:\n{text}");
                for line in plan.iter().filter(|l| l.contains("Sort") && l.contains("rows=")) {
                    assert!(actual_rows(line) <= 11, "no sort of all the links:\n{text}");
                }
                assert!(!text.contains("Seq Scan on case_detections"), "{text}");
            }
        }
    }
}

#[tokio::test]
async fn the_open_case_list_and_its_count_read_the_open_cases_index_when_most_are_closed() {
    use diesel_async::RunQueryDsl;

    let app = TestApp::new().await;
    let mut conn = app.conn().await;
    diesel::sql_query(format!(
        "INSERT INTO cases (id, tenant_id, number, kind, name, name_key, status, archive_at, \
         updated_at) SELECT gen_random_uuid(), '{}', g, 'SELF_MANAGED', 'c' || g, 'c' || g, \
         CASE WHEN g % 20 = 0 THEN 'NEW' ELSE 'RESOLVED' END, now(), \
         now() - g * interval '1 minute' FROM generate_series(1, 20000) g",
        app.tenant_id.0
    ))
    .execute(&mut conn)
    .await
    .expect("seed cases");
    diesel::sql_query("ANALYZE cases").execute(&mut conn).await.expect("analyze");

    let filter = CaseFilter { statuses: CaseStatus::OPEN.to_vec(), ..CaseFilter::default() };
    let request = PageRequest { limit: 50, cursor: None, backward: false };
    let sql = casefile::models::cases::list::page_and_count_sql(
        app.tenant_id,
        &filter,
        CaseOrder::default(),
        &request,
    );
    let generic = generic_plan(&mut conn, &sql).await;
    let custom = explain_analyze(&mut conn, sql).await.expect("explain");
    for plan in [custom, generic] {
        let text = plan.join("\n");
        assert!(
            text.contains("cases_open_updated_idx"),
            "the page reads the open cases' index:\n{text}"
        );
        assert!(!text.contains("Seq Scan"), "{text}");
        // The count may read the open cases through the status rank's index as well.
        let scans: Vec<&String> = plan.iter().filter(|l| l.contains("Index Scan")).collect();
        assert!(
            scans
                .iter()
                .all(|l| l.contains("cases_open_") || l.contains("cases_tenant_status_idx")),
            "{text}"
        );
        for line in plan.iter().filter(|l| l.contains("Index") && l.contains("rows=")) {
            assert!(actual_rows(line) <= 1000, "only open cases are read:\n{text}");
        }
    }
}

/// Q1 of the benchmark: the first page of open cases by last update, with assignee,
/// subject, detection count and the total.
pub(crate) const Q1: &str = "query($n: Int) { cases(first: $n) { totalCount nodes { number name status \
    updatedAt detectionCount assignee { displayName } subject { username } } } }";

/// Q2 of the benchmark: a case's first detections in the default order with the fields a
/// case page shows, and their total.
pub(crate) const Q2: &str = "query($c: Int, $n: Int) { case(number: $c) { detections(first: $n) { \
    totalCount nodes { ruleName observedAt riskScore severity riskIndicators { name weight } \
    device { hostname } file { name sha256 } } } } }";

/// Statements of one request with a token this server has not seen (authentication
/// included), then with the same token again.
async fn statements_cold_and_warm(app: &TestApp, query: &str, variables: Value) -> (u64, u64) {
    let (_, token) = app.admin_token_expiring(chrono::Utc::now() + chrono::Duration::days(1)).await;
    let (body, cold) = app.graphql_counting(&token, query, variables.clone()).await;
    assert!(body.get("errors").is_none(), "{body}");
    let (again, warm) = app.graphql_counting(&token, query, variables).await;
    assert_eq!(again, body);
    (cold, warm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_list_and_the_case_page_run_at_most_four_statements_at_any_page_size() {
    let app = TestApp::new().await;
    let assignees = [analyst_named(&app, "One").await, analyst_named(&app, "Two").await];
    let subjects = [subject(&app, "s1@example.test").await, subject(&app, "s2@example.test").await];
    let mut held = app.ingest(&app.admin_token, tied_detections("page", 0..120)).await;
    let (_, big) =
        new_case(&app, json!({ "name": "Big", "detectionIds": held.split_off(0) })).await;
    for i in 0..104 {
        let input = json!({ "name": format!("Case {i}"), "assigneeId": assignees[i % 2],
                            "subjectId": subjects[i % 2] });
        new_case(&app, input).await;
    }
    for n in [5, 100] {
        let (cold, warm) = statements_cold_and_warm(&app, Q1, json!({ "n": n })).await;
        println!("Q1 case list, {n} cases: {cold} SQL statements (new token), {warm} (seen)");
        assert!(cold <= 4, "Q1 with {n}: {cold} statements");
        assert!(warm < cold, "a token seen within the second is not looked up again");
        let (cold, warm) = statements_cold_and_warm(&app, Q2, json!({ "c": big, "n": n })).await;
        println!("Q2 case page, {n} detections: {cold} SQL statements (new token), {warm} (seen)");
        assert!(cold <= 4, "Q2 with {n}: {cold} statements");
        assert!(warm < cold);
    }
}
