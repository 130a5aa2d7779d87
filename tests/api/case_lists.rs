//! The case list: every filter, every order (ties broken by case number in the same
//! direction), keyset paging in both directions, and a number of SQL statements that does
//! not grow with the page size.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code, error_field};
use casefile::graphql::ids::{self, Kind};
use casefile::models::tenants::License;
use casefile::models::users::Role;

const ALL_STATUSES: [&str; 6] =
    ["NEW", "INVESTIGATING", "ON_HOLD", "ACTION_REQUIRED", "RESOLVED", "ARCHIVED"];
const SEVERITIES: [&str; 5] = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

/// The numbers of the cases `token` sees through `filter`, by number (asserts `totalCount`).
async fn numbers_as(app: &TestApp, token: &str, filter: Value) -> Vec<i64> {
    let (status, body) = app
        .graphql(
            token,
            "query($filter: CaseFilter) { cases(first: 100, filter: $filter, \
             orderBy: { field: NUMBER, direction: ASC }) { totalCount nodes { number } } }",
            json!({ "filter": filter }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "filter {filter}: {body}");
    let numbers = numbers_of(&body["data"]["cases"]);
    assert_eq!(body["data"]["cases"]["totalCount"], json!(numbers.len()), "filter {filter}");
    numbers
}

async fn numbers(app: &TestApp, filter: Value) -> Vec<i64> {
    numbers_as(app, &app.admin_token, filter).await
}

fn numbers_of(connection: &Value) -> Vec<i64> {
    let nodes = connection["nodes"].as_array().expect("nodes");
    nodes.iter().map(|n| n["number"].as_i64().expect("number")).collect()
}

/// Runs a mutation as the admin and fails the test on any error.
async fn ok(app: &TestApp, mutation: &str, input: Value) {
    let body = app.mutate(&app.admin_token, mutation, input, "clientMutationId").await;
    assert!(body.get("errors").is_none(), "{mutation}: {body}");
}

/// Creates a self-managed case as the admin; returns (global id, number).
pub(crate) async fn new_case(app: &TestApp, input: Value) -> (String, i64) {
    let case = app.create_case(&app.admin_token, input).await;
    (case["id"].as_str().expect("id").to_owned(), case["number"].as_i64().expect("number"))
}

/// Creates a case, then brings it to `end`: a status, or a resolution (resolved), or ARCHIVED.
async fn case_ending(app: &TestApp, input: Value, end: &str) -> i64 {
    let created_in = input["status"].as_str().unwrap_or("NEW").to_owned();
    let (id, number) = new_case(app, input).await;
    match end {
        _ if end == created_in => {}
        "ARCHIVED" => ok(app, "archiveCase", json!({ "id": id })).await,
        "INVESTIGATING" | "ON_HOLD" | "ACTION_REQUIRED" => {
            ok(app, "updateCase", json!({ "id": id, "status": end })).await;
        }
        resolution => ok(app, "resolveCase", json!({ "id": id, "resolution": resolution })).await,
    }
    number
}

/// Sets a timestamp of case `number` in the database: clients never choose these.
async fn set_time(app: &TestApp, number: i64, column: &str, at: &str) {
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    let rows = diesel::sql_query(format!(
        "UPDATE cases SET {column} = '{at}'::timestamptz WHERE number = {number}"
    ))
    .execute(&mut conn)
    .await
    .expect("set a case timestamp");
    assert_eq!(rows, 1, "case {number}");
}

/// An assignable user with this display name; returns its global id.
pub(crate) async fn analyst_named(app: &TestApp, display_name: &str) -> String {
    use diesel_async::RunQueryDsl;
    let (id, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let mut conn = app.conn().await;
    diesel::sql_query(format!(
        "UPDATE users SET display_name = '{display_name}' WHERE id = '{}'",
        id.0
    ))
    .execute(&mut conn)
    .await
    .expect("rename user");
    ids::encode(Kind::User, id.0).to_string()
}

pub(crate) async fn subject(app: &TestApp, username: &str) -> String {
    let body = app
        .mutate(
            &app.admin_token,
            "upsertSubject",
            json!({ "username": username }),
            "subject { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["upsertSubject"]["subject"]["id"].as_str().expect("id").to_owned()
}

/// Low-risk detections (no automatic cases), with these external ids.
async fn low_detections(app: &TestApp, prefix: &str, count: usize) -> Vec<String> {
    let inputs = (0..count).map(|i| detection(&format!("{prefix}-{i}"), 2)).collect();
    app.ingest(&app.admin_token, inputs).await
}

#[tokio::test]
async fn status_filter_defaults_to_the_open_statuses_and_combines_with_severity_and_resolution() {
    let app = TestApp::new().await;
    let new = case_ending(&app, json!({ "name": "Alpha", "severity": "LOW" }), "NEW").await;
    let investigating = json!({ "name": "Bravo", "status": "INVESTIGATING", "severity": "HIGH" });
    let investigating = case_ending(&app, investigating, "INVESTIGATING").await;
    let on_hold =
        case_ending(&app, json!({ "name": "Charlie", "severity": "HIGH" }), "ON_HOLD").await;
    let action = case_ending(&app, json!({ "name": "Delta" }), "ACTION_REQUIRED").await;
    let false_positive =
        case_ending(&app, json!({ "name": "Echo", "severity": "CRITICAL" }), "FALSE_POSITIVE")
            .await;
    let confirmed =
        case_ending(&app, json!({ "name": "Foxtrot", "severity": "LOW" }), "CONFIRMED_INCIDENT")
            .await;
    let archived =
        case_ending(&app, json!({ "name": "Golf", "severity": "MEDIUM" }), "ARCHIVED").await;

    let open = vec![new, investigating, on_hold, action];
    assert_eq!(numbers(&app, Value::Null).await, open, "no filter: the open statuses");
    assert_eq!(numbers(&app, json!({})).await, open, "no status: the open statuses");
    let table = [
        (json!({ "status": ["RESOLVED"] }), vec![false_positive, confirmed]),
        (json!({ "status": ["ARCHIVED"] }), vec![archived]),
        (json!({ "status": ["NEW", "ARCHIVED"] }), vec![new, archived]),
        (json!({ "status": ["ON_HOLD", "ACTION_REQUIRED"] }), vec![on_hold, action]),
        (
            json!({ "status": ALL_STATUSES }),
            vec![new, investigating, on_hold, action, false_positive, confirmed, archived],
        ),
        (json!({ "severity": ["HIGH"] }), vec![investigating, on_hold]),
        (json!({ "severity": ["LOW"] }), vec![new]),
        (
            json!({ "status": ALL_STATUSES, "severity": ["LOW", "CRITICAL"] }),
            vec![new, false_positive, confirmed],
        ),
        (json!({ "status": ALL_STATUSES, "resolution": ["FALSE_POSITIVE"] }), vec![false_positive]),
        (
            json!({ "status": ALL_STATUSES, "resolution": ["CONFIRMED_INCIDENT", "INCONCLUSIVE"] }),
            vec![confirmed],
        ),
    ];
    for (filter, expected) in table {
        assert_eq!(numbers(&app, filter.clone()).await, expected, "filter {filter}");
    }
}

#[tokio::test]
async fn kind_filter_separates_self_managed_cases_from_service_requests() {
    let app = TestApp::new().await;
    let tenant = app.create_tenant("Managed", &[License::Mdr]).await;
    let (_, token) = app.create_user(tenant, Role::Admin).await;
    let mut numbers_by_kind = Vec::new();
    for (name, kind) in [("Own work", "SELF_MANAGED"), ("Help us", "MDR_SERVICE_REQUEST")] {
        let case = app.create_case(&token, json!({ "name": name, "kind": kind })).await;
        numbers_by_kind.push(case["number"].as_i64().expect("number"));
    }
    let (own, request) = (numbers_by_kind[0], numbers_by_kind[1]);
    let table = [
        (json!({ "kind": ["SELF_MANAGED"] }), vec![own]),
        (json!({ "kind": ["MDR_SERVICE_REQUEST"] }), vec![request]),
        (json!({ "kind": ["MANAGED_RISK_SERVICE_REQUEST"] }), vec![]),
        (json!({ "kind": ["SELF_MANAGED", "MDR_SERVICE_REQUEST"] }), vec![own, request]),
    ];
    for (filter, expected) in table {
        assert_eq!(numbers_as(&app, &token, filter.clone()).await, expected, "filter {filter}");
    }
    assert_eq!(numbers(&app, json!({})).await, Vec::<i64>::new(), "other tenants see none");
}

#[tokio::test]
async fn assignee_unassigned_and_subject_filters_match_the_people_on_the_case() {
    let app = TestApp::new().await;
    let (ann, ben) = (analyst_named(&app, "Ann").await, analyst_named(&app, "Ben").await);
    let (alice, bob) =
        (subject(&app, "alice@example.test").await, subject(&app, "bob@example.test").await);
    let (_, a) =
        new_case(&app, json!({ "name": "A", "assigneeId": ann, "subjectId": alice })).await;
    let (_, b) = new_case(&app, json!({ "name": "B", "assigneeId": ben, "subjectId": bob })).await;
    let (_, c) = new_case(&app, json!({ "name": "C", "assigneeId": ann })).await;
    let (_, d) = new_case(&app, json!({ "name": "D", "subjectId": alice })).await;
    let (_, e) = new_case(&app, json!({ "name": "E" })).await;

    let table = [
        (json!({ "assigneeIds": [ann] }), vec![a, c]),
        (json!({ "assigneeIds": [ann, ben] }), vec![a, b, c]),
        (json!({ "unassigned": true }), vec![d, e]),
        (json!({ "subjectUsername": "alice@example.test" }), vec![a, d]),
        (json!({ "subjectUsername": "Alice@Example.TEST" }), vec![a, d]),
        (json!({ "subjectUsername": "carol@example.test" }), vec![]),
        (json!({ "assigneeIds": [ann], "subjectUsername": "alice@example.test" }), vec![a]),
        (json!({ "unassigned": true, "subjectUsername": "bob@example.test" }), vec![]),
    ];
    for (filter, expected) in table {
        assert_eq!(numbers(&app, filter.clone()).await, expected, "filter {filter}");
    }
}

#[tokio::test]
async fn name_contains_ignores_case_and_takes_percent_and_underscore_literally() {
    let app = TestApp::new().await;
    let mut by_name = std::collections::HashMap::new();
    for name in ["Phishing wave", "PHISHING follow-up", "Ransom 1000 hosts", "a_b test", "axb test"]
    {
        by_name.insert(name, new_case(&app, json!({ "name": name })).await.1);
    }
    let n = |name: &str| by_name[name];
    let table = [
        ("phish", vec![n("Phishing wave"), n("PHISHING follow-up")]),
        ("FOLLOW-UP", vec![n("PHISHING follow-up")]),
        ("a_b", vec![n("a_b test")]),
        ("_", vec![n("a_b test")]),
        ("%", vec![]),
        ("10%0", vec![]),
        ("\\", vec![]),
        ("ransom 1000", vec![n("Ransom 1000 hosts")]),
    ];
    for (needle, expected) in table {
        let found = numbers(&app, json!({ "nameContains": needle })).await;
        assert_eq!(found, expected, "nameContains {needle:?}");
    }
}

#[tokio::test]
async fn search_finds_words_in_name_description_or_findings() {
    let app = TestApp::new().await;
    let (_, in_name) = new_case(&app, json!({ "name": "Phishing wave" })).await;
    let (_, in_description) = new_case(
        &app,
        json!({ "name": "Mailbox rules", "description": "Credential harvesting via a fake login" }),
    )
    .await;
    let (findings_id, in_findings) = new_case(&app, json!({ "name": "Odd traffic" })).await;
    let findings = "<p>The <b>attacker</b> registered a lookalike domain</p>";
    ok(&app, "updateCase", json!({ "id": findings_id, "findings": findings })).await;
    let table = [
        ("phishing", vec![in_name]),
        ("harvesting", vec![in_description]),
        ("CREDENTIAL", vec![in_description]),
        ("lookalike", vec![in_findings]),
        ("lookalike domain", vec![in_findings]),
        ("ransomware", vec![]),
    ];
    for (words, expected) in table {
        assert_eq!(numbers(&app, json!({ "search": words })).await, expected, "search {words:?}");
    }
}

#[tokio::test]
async fn date_ranges_include_from_and_exclude_to_on_each_timestamp() {
    let app = TestApp::new().await;
    let mut cases = Vec::new();
    for name in ["A", "B", "C", "D"] {
        cases.push(new_case(&app, json!({ "name": name })).await.1);
    }
    let (a, b, c, d) = (cases[0], cases[1], cases[2], cases[3]);
    let at = |year: u32, month: u32| format!("{year}-{month:02}-01T00:00:00Z");
    // Each timestamp gets its own permutation of months, so a filter on the wrong column fails.
    let columns = [
        ("created_at", "createdAt", 2025, [1, 2, 3, 4]),
        ("updated_at", "updatedAt", 2025, [4, 3, 2, 1]),
        ("archive_at", "archiveAt", 2031, [2, 4, 1, 3]),
    ];
    for (column, _, year, months) in columns {
        for (number, month) in cases.iter().zip(months) {
            set_time(&app, *number, column, &at(year, month)).await;
        }
    }
    // (from, to) as months → the cases found on createdAt, updatedAt, archiveAt.
    let table = [
        ((Some(2), Some(4)), [vec![b, c], vec![b, c], vec![a, d]]),
        ((Some(2), None), [vec![b, c, d], vec![a, b, c], vec![a, b, d]]),
        ((None, Some(2)), [vec![a], vec![d], vec![c]]),
        ((Some(3), Some(3)), [vec![], vec![], vec![]]),
    ];
    for ((from, to), found) in table {
        for ((_, field, year, _), want) in columns.iter().zip(found) {
            let mut range = json!({});
            if let Some(month) = from {
                range["from"] = json!(at(*year, month));
            }
            if let Some(month) = to {
                range["to"] = json!(at(*year, month));
            }
            let mut filter = json!({});
            filter[*field] = range;
            assert_eq!(numbers(&app, filter.clone()).await, want, "filter {filter}");
        }
    }
}

#[tokio::test]
async fn has_detection_lists_the_cases_holding_that_detection() {
    let app = TestApp::new().await;
    let detections = low_detections(&app, "hd", 3).await;
    let (_, one) = new_case(&app, json!({ "name": "One", "detectionIds": [detections[0]] })).await;
    let (_, both) =
        new_case(&app, json!({ "name": "Both", "detectionIds": [detections[0], detections[1]] }))
            .await;
    new_case(&app, json!({ "name": "None" })).await;
    assert_eq!(numbers(&app, json!({ "hasDetection": detections[0] })).await, vec![one, both]);
    assert_eq!(numbers(&app, json!({ "hasDetection": detections[1] })).await, vec![both]);
    assert_eq!(numbers(&app, json!({ "hasDetection": detections[2] })).await, Vec::<i64>::new());
}

#[rustfmt::skip]
const ORDER_FIELDS: [&str; 10] = ["NUMBER", "NAME", "STATUS", "SEVERITY", "ASSIGNEE", "SUBJECT",
    "CREATED_AT", "UPDATED_AT", "ARCHIVE_AT", "DETECTION_COUNT"];

/// The documented sort key of a case as the list shows it: (rank, time or count; lowercase text).
fn key(case: &Value, field: &str) -> (i64, String) {
    let rank = |list: &[&str], value: &Value| {
        value.as_str().map_or(0, |v| list.iter().position(|s| *s == v).expect("known") as i64 + 1)
    };
    let text = |value: &Value| value.as_str().unwrap_or("").to_lowercase();
    let time = |value: &Value| {
        let at: DateTime<Utc> = value.as_str().expect("time").parse().expect("RFC 3339");
        at.timestamp_micros()
    };
    let int = |value: &Value| value.as_i64().expect("integer");
    match field {
        "NUMBER" => (int(&case["number"]), String::new()),
        "NAME" => (0, text(&case["name"])),
        "STATUS" => (rank(&ALL_STATUSES, &case["status"]), String::new()),
        "SEVERITY" => (rank(&SEVERITIES, &case["severity"]), String::new()),
        "ASSIGNEE" => (0, text(&case["assignee"]["displayName"])),
        "SUBJECT" => (0, text(&case["subject"]["username"])),
        "CREATED_AT" => (time(&case["createdAt"]), String::new()),
        "UPDATED_AT" => (time(&case["updatedAt"]), String::new()),
        "ARCHIVE_AT" => (time(&case["archiveAt"]), String::new()),
        "DETECTION_COUNT" => (int(&case["detectionCount"]), String::new()),
        other => panic!("unknown order field {other}"),
    }
}

/// The numbers sorted by `field`, ties broken by number, both in `direction`.
fn sorted(cases: &[Value], field: &str, direction: &str) -> Vec<i64> {
    let mut keyed: Vec<_> = cases.iter().map(|c| (key(c, field), key(c, "NUMBER"))).collect();
    keyed.sort();
    if direction == "DESC" {
        keyed.reverse();
    }
    keyed.into_iter().map(|(_, (number, _))| number).collect()
}

/// Twelve cases in every status with deliberate ties in severity, assignee (two users share
/// a display name but for case), subject, detection count and each timestamp.
async fn cases_with_ties(app: &TestApp) -> Vec<Value> {
    let users = [
        analyst_named(app, "Bea").await,
        analyst_named(app, "carl").await,
        analyst_named(app, "bea").await,
    ];
    let subjects = [
        subject(app, "dave@example.test").await,
        subject(app, "Erin@example.test").await,
        subject(app, "adam@example.test").await,
    ];
    let detections = low_detections(app, "tie", 13).await;
    let mut next_detection = detections.iter();
    // (name, severity, assignee, subject, detections, final status, created, updated, archive)
    #[rustfmt::skip]
    let specs = [
        ("kilo",    Some("HIGH"),          Some(0), Some(0), 2, "NEW",             3, 2, 1),
        ("Alpha",   Some("HIGH"),          Some(1), None,    0, "INVESTIGATING",   1, 2, 2),
        ("bravo",   None,                  None,    Some(1), 1, "ON_HOLD",         3, 1, 1),
        ("Juliet",  Some("LOW"),           Some(2), Some(0), 2, "FALSE_POSITIVE",  2, 3, 3),
        ("charlie", Some("HIGH"),          Some(0), None,    0, "NEW",             1, 3, 2),
        ("Hotel",   Some("CRITICAL"),      Some(1), Some(2), 3, "ACTION_REQUIRED", 3, 1, 1),
        ("delta",   None,                  None,    Some(1), 1, "INVESTIGATING",   2, 2, 3),
        ("India",   Some("LOW"),           Some(0), None,    0, "THREAT_MITIGATED", 2, 1, 2),
        ("echo",    Some("HIGH"),          Some(2), Some(0), 2, "NEW",             1, 3, 1),
        ("Golf",    Some("MEDIUM"),        None,    Some(2), 1, "ARCHIVED",        3, 2, 3),
        ("foxtrot", Some("INFORMATIONAL"), Some(1), None,    0, "ON_HOLD",         1, 1, 2),
        ("Lima",    Some("HIGH"),          Some(0), Some(0), 1, "NEW",             2, 3, 3),
    ];
    let mut numbers = Vec::new();
    for (name, severity, assignee, subject, count, end, ..) in specs {
        let linked: Vec<&String> = next_detection.by_ref().take(count).collect();
        let input = json!({ "name": name, "severity": severity, "assigneeId": assignee.map(|i| &users[i]),
                            "subjectId": subject.map(|i| &subjects[i]), "detectionIds": linked });
        let number = case_ending(app, input, end).await;
        numbers.push(number);
    }
    for (number, (.., created, updated, archive)) in numbers.iter().zip(specs) {
        set_time(app, *number, "created_at", &format!("2025-06-0{created}T12:00:00Z")).await;
        set_time(app, *number, "updated_at", &format!("2025-07-0{updated}T12:00:00Z")).await;
        set_time(app, *number, "archive_at", &format!("2031-01-0{archive}T12:00:00Z")).await;
    }

    let data = app
        .query_ok(&format!(
            "{{ cases(first: 100, filter: {{ status: [{}] }}, orderBy: {{ field: NUMBER, direction: ASC }}) \
             {{ nodes {{ number name status severity assignee {{ displayName }} subject {{ username }} \
             createdAt updatedAt archiveAt detectionCount }} }} }}",
            ALL_STATUSES.join(" ")
        ))
        .await;
    let rows = data["cases"]["nodes"].as_array().expect("nodes").clone();
    assert_eq!(numbers_of(&data["cases"]), numbers);
    let counts: Vec<i64> = rows.iter().map(|r| key(r, "DETECTION_COUNT").0).collect();
    assert_eq!(counts, [2, 0, 1, 2, 0, 3, 1, 0, 2, 0, 0, 1], "the archived case holds none");
    rows
}

fn all_statuses() -> Value {
    json!({ "status": ALL_STATUSES })
}

#[tokio::test]
async fn every_order_field_sorts_both_ways_with_ties_broken_by_number() {
    let app = TestApp::new().await;
    let rows = cases_with_ties(&app).await;
    for field in ORDER_FIELDS {
        for direction in ["ASC", "DESC"] {
            let (status, body) = app
                .graphql(
                    &app.admin_token,
                    "query($f: CaseFilter, $o: CaseOrder) { cases(first: 100, filter: $f, orderBy: $o) \
                     { nodes { number } } }",
                    json!({ "f": all_statuses(), "o": { "field": field, "direction": direction } }),
                )
                .await;
            assert_eq!(status, 200);
            assert!(body.get("errors").is_none(), "{field} {direction}: {body}");
            let expected = sorted(&rows, field, direction);
            assert_eq!(numbers_of(&body["data"]["cases"]), expected, "{field} {direction}");
        }
    }
    // Without orderBy: UPDATED_AT DESC.
    let data = app.query_ok("{ cases(first: 100) { nodes { number } } }").await;
    let open: Vec<Value> = rows
        .into_iter()
        .filter(|r| !["RESOLVED", "ARCHIVED"].contains(&r["status"].as_str().expect("status")))
        .collect();
    assert_eq!(numbers_of(&data["cases"]), sorted(&open, "UPDATED_AT", "DESC"));
}

const PAGE: &str = "query($f: CaseFilter, $o: CaseOrder, $first: Int, $after: String, $last: Int, \
     $before: String) { cases(first: $first, after: $after, last: $last, before: $before, \
     filter: $f, orderBy: $o) { totalCount edges { cursor node { number } } \
     pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

/// One page: its numbers, pageInfo, and totalCount.
async fn page(app: &TestApp, order: &Value, cursor: Value) -> (Vec<i64>, Value, Value) {
    let mut vars = json!({ "f": all_statuses(), "o": order });
    for (name, value) in cursor.as_object().expect("page arguments") {
        vars[name.as_str()] = value.clone();
    }
    let (status, body) = app.graphql(&app.admin_token, PAGE, vars).await;
    assert_eq!(status, 200);
    assert!(body.get("errors").is_none(), "{order} {cursor}: {body}");
    let connection = &body["data"]["cases"];
    let edges = connection["edges"].as_array().expect("edges");
    let numbers = edges.iter().map(|e| e["node"]["number"].as_i64().expect("number")).collect();
    if let (Some(first), Some(last)) = (edges.first(), edges.last()) {
        assert_eq!(connection["pageInfo"]["startCursor"], first["cursor"]);
        assert_eq!(connection["pageInfo"]["endCursor"], last["cursor"]);
    }
    (numbers, connection["pageInfo"].clone(), connection["totalCount"].clone())
}

#[tokio::test]
async fn pages_forward_and_backward_join_to_exactly_the_sorted_list() {
    let app = TestApp::new().await;
    let rows = cases_with_ties(&app).await;
    for (field, direction) in
        [("NAME", "ASC"), ("SEVERITY", "DESC"), ("ASSIGNEE", "ASC"), ("CREATED_AT", "DESC")]
    {
        let order = json!({ "field": field, "direction": direction });
        let expected = sorted(&rows, field, direction);

        // Twelve cases in pages of 5, 5 and 2; forward from the start, backward from the end.
        #[rustfmt::skip]
        let ways = [("first", "after", "endCursor", "hasNextPage", "hasPreviousPage"),
                    ("last", "before", "startCursor", "hasPreviousPage", "hasNextPage")];
        for (size, cursor_argument, next_cursor, more, behind) in ways {
            let (mut joined, mut cursor) = (Vec::new(), Value::Null);
            for page_index in 0..3 {
                let mut arguments = json!({ size: 5 });
                arguments[cursor_argument] = cursor;
                let (numbers, info, total) = page(&app, &order, arguments).await;
                let at = format!("{order} {size} page {page_index}");
                assert_eq!(total, json!(12), "{at}: totalCount");
                if size == "first" {
                    joined.extend(numbers);
                } else {
                    joined.splice(0..0, numbers);
                }
                if page_index == 0 {
                    assert_eq!(info[behind], false, "{at}: nothing behind the first page");
                }
                assert_eq!(info[more], json!(joined.len() < 12), "{at}: {more}");
                cursor = info[next_cursor].clone();
            }
            assert_eq!(joined, expected, "{order} paged with {size}");
        }
    }
}

#[tokio::test]
async fn page_sizes_outside_one_to_a_hundred_and_garbage_cursors_are_refused() {
    let app = TestApp::new().await;
    for argument in ["first", "last"] {
        for size in [0, 101, -1] {
            let query = format!("query($n: Int) {{ cases({argument}: $n) {{ totalCount }} }}");
            let (_, body) = app.graphql(&app.admin_token, &query, json!({ "n": size })).await;
            assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{argument}: {size} {body}");
            assert_eq!(error_field(&body), Some(argument), "{argument}: {size}");
        }
    }
    for (arguments, field) in [
        ("first: 5, after: \"garbage\"", "after"),
        ("last: 5, before: \"garbage\"", "before"),
        ("first: 5, after: \"Y3Vyc29yOjE\"", "after"),
    ] {
        let (_, body) = app
            .graphql(
                &app.admin_token,
                &format!("{{ cases({arguments}) {{ totalCount }} }}"),
                json!({}),
            )
            .await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{arguments}: {body}");
        assert_eq!(error_field(&body), Some(field), "{arguments}");
    }
    let (_, body) = app
        .graphql(&app.admin_token, "{ cases(first: 5, last: 5) { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "first and last: {body}");
}

#[tokio::test]
async fn a_page_holds_fifty_cases_by_default() {
    let app = TestApp::new().await;
    for i in 1..=51 {
        new_case(&app, json!({ "name": format!("Case {i}") })).await;
    }
    let data = app
        .query_ok("{ cases { totalCount nodes { number } pageInfo { hasNextPage endCursor } } }")
        .await;
    assert_eq!(data["cases"]["nodes"].as_array().expect("nodes").len(), 50);
    assert_eq!(data["cases"]["totalCount"], 51);
    assert_eq!(data["cases"]["pageInfo"]["hasNextPage"], true);
    let (status, body) = app
        .graphql(
            &app.admin_token,
            "query($after: String) { cases(after: $after) { nodes { number } pageInfo { hasNextPage } } }",
            json!({ "after": data["cases"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["cases"]["nodes"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["data"]["cases"]["pageInfo"]["hasNextPage"], false);
}

/// Runs `query` once (so the token's last-used write is behind us), then counts a second
/// run; over the WebSocket too, which must run exactly the same statements.
pub(crate) async fn statements_for(app: &TestApp, query: &str, variables: Value) -> u64 {
    let (body, _) = app.graphql_counting(&app.admin_token, query, variables.clone()).await;
    assert!(body.get("errors").is_none(), "{body}");
    // A token is looked up again once its cache entry is a second old (one statement more
    // on whichever transport meets that): a slow machine gets a few tries at a pair of
    // runs within the same second.
    let mut counts = Vec::new();
    for _ in 0..3 {
        let (body, statements) =
            app.graphql_counting(&app.admin_token, query, variables.clone()).await;
        assert!(body.get("errors").is_none(), "{body}");
        let (response, over_ws) =
            app.ws_graphql_counting(&app.admin_token, query, variables.clone()).await;
        assert!(response.get("errors").is_none(), "{response}");
        assert_eq!(response["data"], body["data"], "the same answer over the WebSocket");
        if over_ws == statements {
            return statements;
        }
        counts.push((statements, over_ws));
    }
    panic!("the same statements over the WebSocket as over HTTP: {counts:?}");
}

pub(crate) const LIST_QUERY: &str = "query($n: Int) { cases(first: $n) { totalCount nodes { number \
     assignee { email } subject { username } createdBy { email } detectionCount \
     riskSummary { high highest } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_runs_the_same_few_statements_for_five_cases_or_a_hundred() {
    let app = TestApp::new().await;
    let assignees = [
        analyst_named(&app, "One").await,
        analyst_named(&app, "Two").await,
        analyst_named(&app, "Three").await,
    ];
    let usernames = ["s1@example.test", "s2@example.test", "s3@example.test"];
    let mut subjects = Vec::new();
    for username in usernames {
        subjects.push(subject(&app, username).await);
    }
    let inputs = (0..105)
        .map(|i| {
            let mut d = detection(&format!("count-{i}"), if i % 2 == 0 { 2 } else { 5 });
            d["actor"] = json!(usernames[i % 3]);
            d
        })
        .collect();
    let detections = app.ingest(&app.admin_token, inputs).await;
    for i in 0..105 {
        new_case(
            &app,
            json!({ "name": format!("Counted {i}"), "assigneeId": assignees[i % 3],
                    "subjectId": subjects[(i + 1) % 3], "detectionIds": [detections[i]] }),
        )
        .await;
    }
    let hundred = statements_for(&app, LIST_QUERY, json!({ "n": 100 })).await;
    let five = statements_for(&app, LIST_QUERY, json!({ "n": 5 })).await;
    println!("cases list: {hundred} SQL statements for 100 cases, {five} for 5");
    assert_eq!(hundred, five, "statements must not grow with the page size");
    assert!(hundred <= 6, "{hundred} statements for one list page");

    // Connections and aggregates nested under every case and subject of a page too.
    let hundred = statements_for(&app, NESTED_QUERY, json!({ "n": 100 })).await;
    let five = statements_for(&app, NESTED_QUERY, json!({ "n": 5 })).await;
    println!(
        "cases and subjects with nested lists: {hundred} SQL statements for 100, {five} for 5"
    );
    assert_eq!(hundred, five, "nested lists must not grow with the page size");
}

pub(crate) const NESTED_QUERY: &str = "query($n: Int) { cases(first: $n) { nodes { number \
     detections(first: 5) { totalCount nodes { ruleName subject { username } cases { totalCount } } } \
     mitreSummary { tacticId } impactedEntities { name } } } \
     subjects(first: $n) { nodes { username cases { totalCount nodes { number } } \
     recentActivity { totalCount nodes { externalId } } riskSummary { low medium } } } }";

pub(crate) const DETAIL_QUERY: &str = "query($n: Int) { case(number: $n) { name assignee { email } \
     subject { username } detections(first: 50) { totalCount nodes { ruleName subject { username } } } \
     mitreSummary { tacticId techniques { techniqueId count } } \
     impactedEntities { type name detectionCount } riskSummary { critical } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_page_runs_the_same_statements_for_two_detections_or_forty() {
    let app = TestApp::new().await;
    let assignee = analyst_named(&app, "Dee").await;
    let usernames = ["u1@example.test", "u2@example.test", "u3@example.test"];
    for username in usernames {
        subject(&app, username).await;
    }
    let case_subject = subject(&app, "case@example.test").await;
    let techniques = [
        ("TA0002", "Execution", "T1059", "Command and Scripting Interpreter"),
        ("TA0003", "Persistence", "T1053", "Scheduled Task/Job"),
    ];
    let inputs = (0..42)
        .map(|i| {
            let mut d = detection(&format!("detail-{i}"), (i % 7) as i32);
            let (tactic_id, tactic_name, technique_id, technique_name) = techniques[i % 2];
            d["actor"] = json!(usernames[i % 3]);
            d["device"] =
                json!({ "hostname": format!("host-{}", i % 4), "ip": format!("10.0.0.{}", i % 5) });
            d["mitre"] = json!([{ "tacticId": tactic_id, "tacticName": tactic_name,
                                   "techniqueId": technique_id, "techniqueName": technique_name }]);
            d
        })
        .collect();
    let detections = app.ingest(&app.admin_token, inputs).await;
    let mut numbers = Vec::new();
    for (name, linked) in
        [("Two detections", &detections[..2]), ("Forty detections", &detections[2..])]
    {
        let input = json!({ "name": name, "assigneeId": assignee, "subjectId": case_subject,
                            "detectionIds": linked });
        numbers.push(new_case(&app, input).await.1);
    }
    let small = statements_for(&app, DETAIL_QUERY, json!({ "n": numbers[0] })).await;
    let large = statements_for(&app, DETAIL_QUERY, json!({ "n": numbers[1] })).await;
    println!("case page: {small} SQL statements with 2 detections, {large} with 40");
    assert_eq!(small, large, "statements must not grow with the detections on a case");
}

/// Every plain field of a list's case, its assignee and its subject, with `__typename`
/// and aliases: what a case list item answers through `graphql::plain`.
const PLAIN_CASE: &str = "__typename id number kind name description findings severity status \
     resolution autoCreated createdAt updatedAt resolvedAt archiveAt archivedAt deleteAt version \
     detectionCount n: number \
     assignee { __typename id email displayName role assignable active who: displayName } \
     subject { __typename id username displayName department title location managerUsername \
       departureDate watchlists notes createdAt updatedAt }";

#[tokio::test]
async fn list_items_read_the_same_through_the_plain_path_and_the_usual_one() {
    let app = TestApp::new().await;
    let ann = analyst_named(&app, "Ann \"the\" analyst").await;
    let profile = json!({
        "username": "alice@example.test", "displayName": "Alice Ä", "department": "Finance",
        "title": "Controller", "location": "Berlin", "managerUsername": "boss@example.test",
        "departureDate": "2026-12-31", "watchlists": ["leavers", "finance"], "notes": "line\nbreak",
    });
    let body = app.mutate(&app.admin_token, "upsertSubject", profile, "subject { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
    let alice = body["data"]["upsertSubject"]["subject"]["id"].as_str().expect("id").to_owned();
    let bare = subject(&app, "bob@example.test").await;
    let d = low_detections(&app, "plain", 1).await;
    new_case(&app, json!({ "name": "Full", "description": "why", "assigneeId": ann, "subjectId": alice, "detectionIds": d })).await;
    new_case(&app, json!({ "name": "Bare subject", "subjectId": bare })).await;
    let resolved =
        case_ending(&app, json!({ "name": "Resolved", "assigneeId": ann }), "FALSE_POSITIVE").await;
    new_case(&app, json!({ "name": "Nobody" })).await;

    // The same selection twice: plain, and behind a fragment spread, which sends each item
    // through async-graphql's own resolvers.
    let read = |items: &str| {
        format!(
            "query($s: ID!, $d: ID!) {{ cases(first: 10, filter: {{ status: [NEW, INVESTIGATING, RESOLVED] }}) {{ nodes {{ {items} }} edges {{ node {{ {items} }} }} }} \
               subject(id: $s) {{ cases(filter: {{ status: [NEW, INVESTIGATING] }}) {{ nodes {{ {items} }} }} }} \
               detection(id: $d) {{ cases {{ nodes {{ {items} }} }} }} }}"
        )
    };
    let usual = format!("{} fragment C on Case {{ {PLAIN_CASE} }}", read("...C"));
    let mut answers = Vec::new();
    for query in [read(PLAIN_CASE), usual] {
        let (_, body) =
            app.graphql(&app.admin_token, &query, json!({ "s": alice, "d": d[0] })).await;
        assert!(body.get("errors").is_none(), "{body}");
        answers.push(body["data"].clone());
    }
    assert_eq!(answers[0], answers[1]);
    let nodes = answers[0]["cases"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 4, "{}", answers[0]);
    // And the values are the cases' own, not just equal between the two paths.
    let full = nodes.iter().find(|n| n["name"] == "Full").expect("Full");
    assert_eq!(full["assignee"]["who"], "Ann \"the\" analyst");
    assert_eq!(full["subject"]["watchlists"], json!(["leavers", "finance"]));
    assert_eq!(full["subject"]["departureDate"], "2026-12-31");
    assert_eq!(full["n"], full["number"]);
    let done = nodes.iter().find(|n| n["number"] == resolved).expect("resolved");
    assert_eq!(
        (done["status"].as_str(), done["resolution"].as_str()),
        (Some("RESOLVED"), Some("FALSE_POSITIVE"))
    );
    assert!(done["resolvedAt"].is_string(), "{done}");
    let nobody = nodes.iter().find(|n| n["name"] == "Nobody").expect("Nobody");
    assert_eq!((&nobody["assignee"], &nobody["subject"]), (&Value::Null, &Value::Null));
    assert_eq!(answers[0]["subject"]["cases"]["nodes"].as_array().map(Vec::len), Some(1));
    assert_eq!(answers[0]["detection"]["cases"]["nodes"][0]["name"], "Full");
}
