//! Detections: idempotent all-or-nothing ingestion, severity from the risk score, what
//! round-trips, automatic cases, the `detection`/`detections` queries with every filter
//! and order, and the links between detections, cases and subjects.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code, error_field};
use casefile::models::users::Role;

const INGESTED: &str = "accepted duplicates detections { id externalId source } \
     autoCases { id name status autoCreated detectionCount createdBy { id } }";

const DETECTION_FIELDS: &str = "id externalId source ruleName description observedAt ingestedAt \
     riskScore severity riskIndicators { name weight } device { id hostname type ip } actor \
     mitre { tacticId tacticName techniqueId techniqueName } \
     file { name path size sha256 md5 mimeType availability contentStored } raw";

/// `base` with the top-level fields of `changes` replaced.
fn with(mut base: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().expect("an object of changes") {
        base[key] = value.clone();
    }
    base
}

/// Ingests as the admin and returns the payload with [`INGESTED`] (fails the test on errors).
async fn ingest(app: &TestApp, detections: Vec<Value>) -> Value {
    let input = json!({ "detections": detections });
    let body = app.mutate(&app.admin_token, "ingestDetections", input, INGESTED).await;
    assert!(body.get("errors").is_none(), "ingest failed: {body}");
    body["data"]["ingestDetections"].clone()
}

/// The total count and the external ids (sorted) of `detections(filter:)`.
async fn filtered(app: &TestApp, filter: &Value) -> (i64, Vec<String>) {
    let (_, body) = app
        .graphql(
            &app.admin_token,
            "query($f: DetectionFilter) { detections(first: 100, filter: $f) { totalCount nodes { externalId } } }",
            json!({ "f": filter }),
        )
        .await;
    let connection = &body["data"]["detections"];
    let nodes = connection["nodes"].as_array().unwrap_or_else(|| panic!("{filter}: {body}"));
    let mut ids: Vec<String> =
        nodes.iter().map(|n| n["externalId"].as_str().expect("externalId").to_owned()).collect();
    ids.sort();
    (connection["totalCount"].as_i64().expect("totalCount"), ids)
}

async fn detection_total(app: &TestApp) -> i64 {
    filtered(app, &json!({})).await.0
}

async fn read_detection(app: &TestApp, id: &str, selection: &str) -> Value {
    let query = format!("query($id: ID!) {{ detection(id: $id) {{ {selection} }} }}");
    let (_, body) = app.graphql(&app.admin_token, &query, json!({ "id": id })).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["detection"].clone()
}

async fn read_case(app: &TestApp, id: &str, selection: &str) -> Value {
    let query = format!("query($id: ID!) {{ case(id: $id) {{ {selection} }} }}");
    let (_, body) = app.graphql(&app.admin_token, &query, json!({ "id": id })).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["case"].clone()
}

async fn set_auto_cases(app: &TestApp, enabled: bool, min: &str) -> Value {
    let input = json!({ "autoCaseEnabled": enabled, "autoCaseMinSeverity": min });
    let selection = "tenant { autoCasePolicy { enabled minSeverity } }";
    let body = app.mutate(&app.admin_token, "updateTenantPolicies", input, selection).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["updateTenantPolicies"]["tenant"]["autoCasePolicy"].clone()
}

fn ids_of(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|n| n["id"].as_str().expect("id").to_owned())
        .collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a DateTime")).expect("RFC 3339").to_utc()
}

#[tokio::test]
async fn ingestion_stores_new_detections_once_and_counts_repeats_as_duplicates() {
    let app = TestApp::new().await;
    let first = ingest(&app, vec![detection("a", 2), detection("b", 2)]).await;
    assert_eq!((first["accepted"].as_i64(), first["duplicates"].as_i64()), (Some(2), Some(0)));
    let a = first["detections"][0]["id"].clone();

    let file_a = with(detection("a", 2), json!({ "source": "FILE_ACTIVITY" }));
    let second =
        ingest(&app, vec![detection("a", 2), file_a, detection("c", 2), detection("c", 2)]).await;
    assert_eq!(second["accepted"], 2, "a from FILE_ACTIVITY and c are new: {second}");
    assert_eq!(second["duplicates"], 2, "a from XDR again and c twice: {second}");
    let listed = &second["detections"];
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "one per distinct key: {second}");
    assert_eq!(listed[0]["id"], a, "the duplicate answers with the stored detection");
    assert_eq!(
        (listed[1]["externalId"].as_str(), listed[1]["source"].as_str()),
        (Some("a"), Some("FILE_ACTIVITY"))
    );
    assert_ne!(listed[1]["id"], a);
    assert_eq!(detection_total(&app).await, 4);
}

#[tokio::test]
async fn more_than_1000_detections_in_one_call_are_refused_and_none_stored() {
    let app = TestApp::new().await;
    let batch: Vec<Value> = (0..1001).map(|i| detection(&format!("many-{i}"), 1)).collect();
    let input = json!({ "detections": batch });
    let body = app.mutate(&app.admin_token, "ingestDetections", input, "accepted").await;
    assert_eq!(
        (error_code(&body), error_field(&body)),
        (Some("VALIDATION_FAILED"), Some("detections"))
    );
    assert_eq!(detection_total(&app).await, 0);
}

#[tokio::test]
async fn one_bad_item_refuses_the_whole_batch_and_the_error_names_the_item() {
    let app = TestApp::new().await;
    let file = |key: &str, value: &str| json!({ "file": { "name": "x.exe", key: value } });
    let bad = [
        (1, json!({ "riskScore": -1 }), "riskScore"),
        (2, file("sha256", "abc"), "sha256"),
        (0, file("sha256", &"g".repeat(64)), "sha256"),
        (0, file("md5", "0123"), "md5"),
        (1, json!({ "device": { "hostname": "h", "ip": "999.1.1.1" } }), "ip"),
        (0, json!({ "externalId": "" }), "externalId"),
        (2, json!({ "ruleName": "r".repeat(201) }), "ruleName"),
        (1, json!({ "raw": { "blob": "x".repeat(65 * 1024) } }), "raw"),
    ];
    for (index, change, name) in bad {
        let mut batch: Vec<Value> = (0..3).map(|i| detection(&format!("ok-{i}"), 2)).collect();
        batch[index] = with(batch[index].clone(), change.clone());
        let input = json!({ "detections": batch });
        let body = app.mutate(&app.admin_token, "ingestDetections", input, "accepted").await;
        assert_eq!(error_code(&body), Some("VALIDATION_FAILED"), "{change}: {body}");
        let field = error_field(&body).unwrap_or_default();
        assert!(
            field.starts_with(&format!("detections.{index}.")) && field.ends_with(name),
            "{change}: field {field:?}"
        );
        assert_eq!(detection_total(&app).await, 0, "{change}: the good items were stored");
    }
    let body = app
        .mutate(
            &app.admin_token,
            "ingestDetections",
            json!({ "detections": [with(detection("n", 1), json!({ "riskScore": -1 }))] }),
            "accepted",
        )
        .await;
    assert_eq!(error_field(&body), Some("detections.0.riskScore"), "{body}");
}

#[tokio::test]
async fn severity_follows_the_risk_score_at_every_boundary() {
    let app = TestApp::new().await;
    let expected = [
        (0, "INFORMATIONAL"),
        (1, "LOW"),
        (3, "LOW"),
        (4, "MEDIUM"),
        (6, "MEDIUM"),
        (7, "HIGH"),
        (8, "HIGH"),
        (9, "CRITICAL"),
        (15, "CRITICAL"),
    ];
    let batch = expected.iter().map(|(s, _)| detection(&format!("score-{s}"), *s)).collect();
    let ids = app.ingest(&app.admin_token, batch).await;
    for ((score, severity), id) in expected.iter().zip(&ids) {
        let d = read_detection(&app, id, "riskScore severity").await;
        assert_eq!(d, json!({ "riskScore": score, "severity": severity }));
    }
}

#[tokio::test]
async fn every_ingested_field_reads_back_including_raw_json_and_file_info() {
    let app = TestApp::new().await;
    let raw = json!({
        "vendor": { "id": 42, "tags": ["a", "b"], "nested": { "ok": true, "none": null } },
        "score": 7.5,
        "text": "ünïcode ✓",
    });
    let input = json!({
        "externalId": "full-1",
        "source": "FILE_ACTIVITY",
        "ruleName": "Mass download",
        "description": "Copied 40 files to USB",
        "observedAt": "2026-11-20T10:15:30Z",
        "riskScore": 12,
        "riskIndicators": [{ "name": "USB", "weight": 5 }, { "name": "Off hours", "weight": 7 }],
        "device": { "id": "dev-9", "hostname": "laptop-9", "type": "laptop", "ip": "10.1.2.3" },
        "actor": "dora@example.test",
        "mitre": [{ "tacticId": "TA0010", "tacticName": "Exfiltration", "techniqueId": "T1052", "techniqueName": "Exfiltration Over Physical Medium" }],
        "file": {
            "name": "plans.pdf", "path": "/home/dora/", "size": 1234567.0,
            "sha256": "ab".repeat(32), "md5": "cd".repeat(16),
            "mimeType": "application/pdf", "availability": "EXACT_FILE_AVAILABLE",
        },
        "raw": raw,
    });
    let id = app.ingest(&app.admin_token, vec![input.clone()]).await.remove(0);
    let d = read_detection(&app, &id, DETECTION_FIELDS).await;
    for key in [
        "externalId",
        "source",
        "ruleName",
        "description",
        "riskScore",
        "riskIndicators",
        "device",
        "actor",
        "mitre",
        "raw",
    ] {
        assert_eq!(d[key], input[key], "{key}");
    }
    assert_eq!((d["id"].as_str(), d["severity"].as_str()), (Some(id.as_str()), Some("CRITICAL")));
    assert_eq!(time(&d["observedAt"]), time(&input["observedAt"]));
    assert!((time(&d["ingestedAt"]) - Utc::now()).num_seconds().abs() < 60, "{d}");
    let file = &d["file"];
    for key in ["name", "path", "sha256", "md5", "mimeType", "availability"] {
        assert_eq!(file[key], input["file"][key], "file.{key}");
    }
    assert_eq!(file["size"].as_f64(), Some(1234567.0));
    assert_eq!(file["contentStored"], false);
}

#[tokio::test]
async fn a_case_counts_its_detections_by_severity_as_they_are_added_and_removed() {
    let app = TestApp::new().await;
    set_auto_cases(&app, false, "HIGH").await;
    let batch = [0, 2, 5, 7, 9, 12].iter().map(|s| detection(&format!("rs-{s}"), *s)).collect();
    let d = app.ingest(&app.admin_token, batch).await;
    let case = app
        .create_case(&app.admin_token, json!({ "name": "Counted", "detectionIds": d[..3] }))
        .await;
    let id = case["id"].as_str().expect("id").to_owned();
    let summary = |c, h, m, l, i, highest: &str| {
        json!({ "critical": c, "high": h, "medium": m, "low": l, "informational": i,
                "highest": if highest.is_empty() { Value::Null } else { json!(highest) } })
    };
    assert_eq!(case["detectionCount"], 3);
    assert_eq!(case["riskSummary"], summary(0, 0, 1, 1, 1, "MEDIUM"));

    let steps = [
        ("addDetectionsToCase", &d[3..], 6, summary(2, 1, 1, 1, 1, "CRITICAL")),
        ("removeDetectionsFromCase", &d[4..], 4, summary(0, 1, 1, 1, 1, "HIGH")),
        ("removeDetectionsFromCase", &d[..4], 0, summary(0, 0, 0, 0, 0, "")),
    ];
    let selection =
        "case { detectionCount riskSummary { critical high medium low informational highest } }";
    for (mutation, ids, count, risk) in steps {
        let input = json!({ "caseId": id, "detectionIds": ids });
        let body = app.mutate(&app.admin_token, mutation, input, selection).await;
        let expected = json!({ "detectionCount": count, "riskSummary": risk });
        assert_eq!(body["data"][mutation]["case"], expected, "{mutation}: {body}");
        assert_eq!(
            read_case(
                &app,
                &id,
                "detectionCount riskSummary { critical high medium low informational highest }"
            )
            .await,
            expected
        );
    }
}

#[tokio::test]
async fn a_high_detection_opens_an_automatic_case_that_later_ones_of_its_rule_and_device_join() {
    let app = TestApp::new().await;
    let first = ingest(&app, vec![detection("auto-1", 7)]).await;
    let auto = &first["autoCases"][0];
    assert_eq!(first["autoCases"].as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(
        [&auto["autoCreated"], &auto["status"], &auto["detectionCount"], &auto["createdBy"]],
        [&json!(true), &json!("NEW"), &json!(1), &Value::Null]
    );
    let name = auto["name"].as_str().expect("name");
    assert!(name.chars().count() <= 50 && name.contains("laptop-1"), "named from the host: {name}");
    assert!(name.to_lowercase().contains("suspicious powershell"), "named from the rule: {name}");

    let second = ingest(&app, vec![detection("auto-2", 9)]).await;
    assert_eq!(ids_of(&second["autoCases"]), vec![auto["id"].as_str().expect("id")]);
    assert_eq!(second["autoCases"][0]["detectionCount"], 2);

    let mdr = with(detection("auto-mdr", 9), json!({ "source": "MDR" }));
    for quiet in [detection("auto-3", 6), mdr] {
        let body = ingest(&app, vec![quiet.clone()]).await;
        assert_eq!(body["autoCases"], json!([]), "{quiet}");
    }
    assert_eq!(
        read_case(&app, auto["id"].as_str().expect("id"), "detectionCount").await["detectionCount"],
        2
    );

    let elsewhere = with(detection("auto-4", 8), json!({ "device": { "hostname": "laptop-2" } }));
    let other = ingest(&app, vec![elsewhere]).await;
    assert_eq!(other["autoCases"].as_array().map(Vec::len), Some(1), "{other}");
    assert_ne!(other["autoCases"][0]["id"], auto["id"], "another device gets its own case");
}

#[tokio::test]
async fn automatic_cases_follow_the_tenant_policy() {
    let app = TestApp::new().await;
    let policy = set_auto_cases(&app, false, "HIGH").await;
    assert_eq!(policy, json!({ "enabled": false, "minSeverity": "HIGH" }));
    let body = ingest(&app, vec![detection("off-1", 9)]).await;
    assert_eq!(body["autoCases"], json!([]));
    let d = read_detection(
        &app,
        body["detections"][0]["id"].as_str().expect("id"),
        "cases { totalCount }",
    )
    .await;
    assert_eq!(d["cases"]["totalCount"], 0);

    set_auto_cases(&app, true, "MEDIUM").await;
    let body = ingest(&app, vec![detection("on-1", 4)]).await;
    assert_eq!(body["autoCases"].as_array().map(Vec::len), Some(1), "MEDIUM is now enough: {body}");
}

#[tokio::test]
async fn detection_by_id_finds_the_tenants_own_and_not_another_tenants() {
    let app = TestApp::new().await;
    let ours = app.ingest(&app.admin_token, vec![detection("mine", 2)]).await.remove(0);
    let tenant = app.create_tenant("Other", &[]).await;
    let (_, other) = app.create_user(tenant, Role::Analyst).await;
    let theirs = app.ingest(&other, vec![detection("mine", 2)]).await.remove(0);
    assert_ne!(ours, theirs, "the same external id in another tenant is another detection");
    assert_eq!(
        read_detection(&app, &ours, "id externalId").await,
        json!({ "id": ours, "externalId": "mine" })
    );
    assert_eq!(read_detection(&app, &theirs, "id").await, Value::Null);
    let (_, body) = app
        .graphql(
            &app.admin_token,
            "query($id: ID!) { node(id: $id) { __typename id } }",
            json!({ "id": ours }),
        )
        .await;
    assert_eq!(body["data"]["node"], json!({ "__typename": "Detection", "id": ours }));
}

#[tokio::test]
async fn detections_filter_by_every_field_of_detection_filter() {
    let app = TestApp::new().await;
    set_auto_cases(&app, false, "HIGH").await;
    let at = |day: u32| format!("2026-11-0{day}T00:00:00Z");
    let (s1, s2) = ("1a".repeat(32), "2b".repeat(32));
    let row =
        |ext: &str, source: &str, score: i32, day: u32, actor: Value, host: &str, rule: &str| {
            with(
                detection(ext, score),
                json!({ "source": source, "observedAt": at(day), "actor": actor,
            "device": { "hostname": host }, "ruleName": rule }),
            )
        };
    let mut rows = vec![
        row("f1", "XDR", 2, 1, json!("alice@example.test"), "host-a", "Rule A"),
        row("f2", "FILE_ACTIVITY", 7, 2, json!("bob@example.test"), "host-b", "Mass download"),
        row("f3", "FILE_ACTIVITY", 9, 3, json!("bob@example.test"), "host-a", "Mass download"),
        row("f4", "MDR", 5, 4, json!("carol@example.test"), "host-c", "Rule A"),
        row("f5", "XDR", 0, 3, json!("alice@example.test"), "host-b", "Rule B"),
        row("f6", "MANAGED_RISK", 12, 5, Value::Null, "host-c", "Rule B"),
    ];
    rows[1]["file"] = json!({ "name": "a.zip", "sha256": s1 });
    rows[2]["file"] = json!({ "name": "b.zip", "sha256": s2 });
    let ids = app.ingest(&app.admin_token, rows).await;
    app.create_case(
        &app.admin_token,
        json!({ "name": "Holds two", "detectionIds": [ids[0], ids[4]] }),
    )
    .await;

    let cases = [
        (json!({}), vec!["f1", "f2", "f3", "f4", "f5", "f6"]),
        (json!({ "source": ["FILE_ACTIVITY"] }), vec!["f2", "f3"]),
        (json!({ "source": ["XDR", "MDR"] }), vec!["f1", "f4", "f5"]),
        (json!({ "minSeverity": "HIGH" }), vec!["f2", "f3", "f6"]),
        (json!({ "minSeverity": "MEDIUM" }), vec!["f2", "f3", "f4", "f6"]),
        (json!({ "minSeverity": "INFORMATIONAL" }), vec!["f1", "f2", "f3", "f4", "f5", "f6"]),
        (json!({ "observedAt": { "from": at(2), "to": at(4) } }), vec!["f2", "f3", "f5"]),
        (json!({ "observedAt": { "from": at(3) } }), vec!["f3", "f4", "f5", "f6"]),
        (json!({ "observedAt": { "to": at(3) } }), vec!["f1", "f2"]),
        (json!({ "actor": "bob@example.test" }), vec!["f2", "f3"]),
        (json!({ "deviceHostname": "host-b" }), vec!["f2", "f5"]),
        (json!({ "ruleName": "Mass download" }), vec!["f2", "f3"]),
        (json!({ "sha256": s1 }), vec!["f2"]),
        (json!({ "inCase": true }), vec!["f1", "f5"]),
        (json!({ "inCase": false }), vec!["f2", "f3", "f4", "f6"]),
        (json!({ "source": ["FILE_ACTIVITY"], "deviceHostname": "host-a" }), vec!["f3"]),
    ];
    for (filter, expected) in cases {
        let (total, found) = filtered(&app, &filter).await;
        assert_eq!(found, expected, "filter {filter}");
        assert_eq!(total, expected.len() as i64, "totalCount for {filter}");
    }
}

/// A key that sorts as the order field does (times in a fixed-width UTC form).
fn sort_key(node: &Value, field: &str) -> String {
    match field {
        "OBSERVED_AT" | "INGESTED_AT" => {
            let key = if field == "OBSERVED_AT" { "observedAt" } else { "ingestedAt" };
            time(&node[key]).to_rfc3339_opts(SecondsFormat::Nanos, true)
        }
        "RISK_SCORE" => format!("{:010}", node["riskScore"].as_i64().expect("riskScore")),
        _ => node["ruleName"].as_str().expect("ruleName").to_lowercase(),
    }
}

/// Every page of `detections` in this order, three at a time.
async fn all_pages(app: &TestApp, order: &Value) -> Vec<Value> {
    let query = "query($o: DetectionOrder, $after: String) { detections(first: 3, after: $after, orderBy: $o) { \
         nodes { id observedAt ingestedAt riskScore ruleName } pageInfo { hasNextPage endCursor } } }";
    let (mut nodes, mut after) = (Vec::new(), Value::Null);
    for _ in 0..10 {
        let (_, body) =
            app.graphql(&app.admin_token, query, json!({ "o": order, "after": after })).await;
        let page = &body["data"]["detections"];
        nodes.extend(page["nodes"].as_array().unwrap_or_else(|| panic!("{order}: {body}")).clone());
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    panic!("{order}: paging did not end");
}

#[tokio::test]
async fn detections_sort_by_every_order_field_both_ways_and_pages_cover_each_item_once() {
    let app = TestApp::new().await;
    let row = |ext: &str, day: u32, score: i32, rule: &str| {
        with(
            detection(ext, score),
            json!({ "observedAt": format!("2026-11-0{day}T08:00:00Z"), "ruleName": rule }),
        )
    };
    let batches = [
        vec![row("o1", 2, 3, "beta"), row("o2", 2, 3, "Alpha")],
        vec![row("o3", 1, 9, "alpha"), row("o4", 3, 0, "Gamma")],
        vec![row("o5", 3, 12, "delta"), row("o6", 1, 3, "BETA"), row("o7", 4, 1, "epsilon")],
    ];
    for batch in batches {
        app.ingest(&app.admin_token, batch).await;
    }
    let mut orders = vec![(json!(null), "OBSERVED_AT", "DESC")];
    for field in ["OBSERVED_AT", "INGESTED_AT", "RISK_SCORE", "RULE_NAME"] {
        for direction in ["ASC", "DESC"] {
            orders.push((json!({ "field": field, "direction": direction }), field, direction));
        }
    }
    for (order, field, direction) in orders {
        let nodes = all_pages(&app, &order).await;
        let ids: Vec<String> = ids_of(&Value::Array(nodes.clone()));
        assert_eq!(ids.len(), 7, "{order}: {ids:?}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 7, "{order}: an item came twice");
        let keys: Vec<String> = nodes.iter().map(|n| sort_key(n, field)).collect();
        let monotonic =
            keys.windows(2).all(|w| if direction == "ASC" { w[0] <= w[1] } else { w[0] >= w[1] });
        assert!(monotonic, "{order}: keys out of order {keys:?}");
    }
}

#[tokio::test]
async fn cases_list_their_detections_and_detections_list_their_cases() {
    let app = TestApp::new().await;
    let d = app
        .ingest(
            &app.admin_token,
            vec![detection("l-1", 2), detection("l-2", 5), detection("l-3", 2)],
        )
        .await;
    let a = app
        .create_case(&app.admin_token, json!({ "name": "A", "detectionIds": [d[0], d[1]] }))
        .await["id"]
        .clone();
    let b = app.create_case(&app.admin_token, json!({ "name": "B", "detectionIds": [d[1]] })).await
        ["id"]
        .clone();
    let a_id = a.as_str().expect("id");

    let c = read_case(&app, a_id, "detections(first: 10) { totalCount nodes { id } } medium: detections(filter: { minSeverity: MEDIUM }) { nodes { id } }").await;
    assert_eq!(c["detections"]["totalCount"], 2);
    let mut linked = ids_of(&c["detections"]["nodes"]);
    linked.sort();
    let mut expected = vec![d[0].clone(), d[1].clone()];
    expected.sort();
    assert_eq!(linked, expected);
    assert_eq!(ids_of(&c["medium"]["nodes"]), vec![d[1].clone()]);

    let shared = read_detection(&app, &d[1], "cases { totalCount nodes { id } }").await;
    assert_eq!(shared["cases"]["totalCount"], 2);
    let found: HashSet<String> = ids_of(&shared["cases"]["nodes"]).into_iter().collect();
    let wanted: HashSet<String> =
        [a.clone(), b].iter().map(|v| v.as_str().expect("id").to_owned()).collect();
    assert_eq!(found, wanted);
    let lonely = read_detection(&app, &d[2], "cases { totalCount nodes { id } }").await;
    assert_eq!(lonely["cases"], json!({ "totalCount": 0, "nodes": [] }));
}

#[tokio::test]
async fn a_detections_subject_is_the_subject_whose_username_is_its_actor() {
    let app = TestApp::new().await;
    let batch = vec![
        with(detection("s-1", 2), json!({ "actor": "ALICE@Example.test" })),
        with(detection("s-2", 2), json!({ "actor": "nobody@example.test" })),
        with(detection("s-3", 2), json!({ "actor": null })),
    ];
    let d = app.ingest(&app.admin_token, batch).await;
    let input = json!({ "username": "alice@example.test", "displayName": "Alice" });
    let body = app.mutate(&app.admin_token, "upsertSubject", input, "subject { id }").await;
    let subject = body["data"]["upsertSubject"]["subject"]["id"].clone();
    assert!(subject.is_string(), "{body}");

    let alice = read_detection(&app, &d[0], "actor subject { id username displayName }").await;
    assert_eq!(
        alice,
        json!({ "actor": "ALICE@Example.test", "subject": { "id": subject, "username": "alice@example.test", "displayName": "Alice" } })
    );
    for id in &d[1..] {
        assert_eq!(read_detection(&app, id, "subject { id }").await["subject"], Value::Null);
    }
}

#[tokio::test]
async fn a_detection_ingested_again_is_not_filed_into_an_automatic_case_again() {
    let app = TestApp::new().await;
    let first = ingest(&app, vec![detection("again-1", 8)]).await;
    let auto_id = first["autoCases"][0]["id"].as_str().expect("an automatic case").to_owned();
    let again = ingest(&app, vec![detection("again-1", 8)]).await;
    assert_eq!((&again["accepted"], &again["duplicates"]), (&json!(0), &json!(1)));
    assert_eq!(again["autoCases"], json!([]), "{again}");
    let case = read_case(&app, &auto_id, "detectionCount version").await;
    assert_eq!(case, json!({ "detectionCount": 1, "version": 1 }));
}

#[tokio::test]
async fn an_automatic_case_of_another_day_or_a_resolved_one_is_not_joined() {
    let app = TestApp::new().await;
    let first = ingest(&app, vec![detection("day-1", 8)]).await;
    let yesterdays = first["autoCases"][0]["id"].as_str().expect("an automatic case").to_owned();
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.conn().await;
        diesel::sql_query("UPDATE cases SET created_at = created_at - interval '1 day'")
            .execute(&mut conn)
            .await
            .expect("move the case to yesterday");
    }
    let today = ingest(&app, vec![detection("day-2", 8)]).await;
    let todays = today["autoCases"][0]["id"].as_str().expect("a new automatic case").to_owned();
    assert_ne!(todays, yesterdays, "a case created yesterday (UTC) is not joined");
    assert_eq!(read_case(&app, &yesterdays, "detectionCount").await["detectionCount"], 1);

    let resolved = app
        .mutate(
            &app.admin_token,
            "resolveCase",
            json!({ "id": todays, "resolution": "FALSE_POSITIVE" }),
            "case { status }",
        )
        .await;
    assert_eq!(resolved["data"]["resolveCase"]["case"]["status"], "RESOLVED", "{resolved}");
    let later = ingest(&app, vec![detection("day-3", 8)]).await;
    let latest = later["autoCases"][0]["id"].as_str().expect("another automatic case");
    assert_ne!(latest, todays, "a resolved automatic case takes no more detections");
    assert_eq!(read_case(&app, &todays, "detectionCount").await["detectionCount"], 1);
}

#[tokio::test]
async fn an_automatic_case_whose_name_is_taken_gets_its_number_added() {
    let app = TestApp::new().await;
    let taken = app.case_named("Suspicious PowerShell on laptop-1").await;
    let body = ingest(&app, vec![detection("named-1", 8)]).await;
    let auto =
        read_case(&app, body["autoCases"][0]["id"].as_str().expect("id"), "name number").await;
    let number = auto["number"].as_i64().expect("number");
    assert_ne!(Some(number), taken["number"].as_i64());
    assert_eq!(auto["name"], json!(format!("Suspicious PowerShell on laptop-1 ({number})")));
}

/// Every plain field of a detection, at every level with `__typename` and an alias: what a
/// list item answers through `graphql::plain` (no fragment, directive or argument).
const PLAIN_FIELDS: &str = "__typename id externalId source ruleName description observedAt \
     ingestedAt riskScore severity actor \
     riskIndicators { __typename name weight w: weight } \
     device { __typename id hostname type ip } \
     mitre { __typename tacticId tacticName techniqueId techniqueName } \
     file { __typename name path size sha256 md5 mimeType availability contentStored downloadPath } \
     rule: ruleName";

#[tokio::test]
async fn list_items_read_the_same_through_the_plain_path_and_the_usual_one() {
    let app = TestApp::new().await;
    set_auto_cases(&app, false, "HIGH").await;
    let full = json!({
        "externalId": "plain-1",
        "source": "FILE_ACTIVITY",
        "ruleName": "Mass \"download\" ✓",
        "description": "Copied 40 files\nto USB",
        "observedAt": "2026-11-20T10:15:30.123Z",
        "riskScore": 12,
        "riskIndicators": [{ "name": "USB \\ \"drive\"", "weight": 5 }, { "name": "Off hours", "weight": 0 }],
        "device": { "id": "dev-9", "hostname": "laptop-9", "type": "laptop", "ip": "10.1.2.3" },
        "actor": "dora@example.test",
        "mitre": [
            { "tacticId": "TA0010", "tacticName": "Exfiltration", "techniqueId": "T1052", "techniqueName": "Exfiltration Over Physical Medium" },
            { "tacticId": "TA0009", "tacticName": "Collection", "techniqueId": "T1005", "techniqueName": "Data from Local System" },
        ],
        "file": {
            "name": "plans.pdf", "path": "/home/dora/", "size": 1234567.0,
            "sha256": "ab".repeat(32), "md5": "cd".repeat(16),
            "mimeType": "application/pdf", "availability": "EXACT_FILE_AVAILABLE",
        },
        "raw": { "vendor": 1 },
    });
    let bare = json!({
        "externalId": "plain-2", "source": "XDR", "ruleName": "Bare",
        "observedAt": "2026-11-21T00:00:00Z", "riskScore": 0,
    });
    let ids = app.ingest(&app.admin_token, vec![full, bare, detection("plain-3", 4)]).await;
    app.store_content(&ids[0], b"the stored file").await;
    let case =
        app.create_case(&app.admin_token, json!({ "name": "Plain", "detectionIds": ids })).await;
    let case_id = case["id"].as_str().expect("case id");

    // The same selection twice: plain, and behind a fragment spread, which sends each item
    // through async-graphql's own resolvers.
    let read = |items: &str| {
        format!(
            "query($id: ID!) {{ case(id: $id) {{ detections(first: 10) {{ nodes {{ {items} }} edges {{ node {{ {items} }} }} }} }} \
               list: detections(first: 10) {{ nodes {{ {items} }} }} }}"
        )
    };
    let usual = format!("{} fragment D on Detection {{ {PLAIN_FIELDS} }}", read("...D"));
    let mut answers = Vec::new();
    for query in [read(PLAIN_FIELDS), usual] {
        let (_, body) = app.graphql(&app.admin_token, &query, json!({ "id": case_id })).await;
        assert!(body.get("errors").is_none(), "{body}");
        answers.push(body["data"].clone());
    }
    let (data, usual) = (&answers[0], &answers[1]);
    assert_eq!(data["case"], usual["case"], "a case's page");
    assert_eq!(data["list"], usual["list"], "the detection list");
    let nodes = data["case"]["detections"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{data}");
    // And the values are the detections' own, not just equal between the two paths.
    let first = nodes.iter().find(|n| n["externalId"] == "plain-1").expect("plain-1");
    assert_eq!(first["rule"], "Mass \"download\" ✓");
    assert_eq!(
        first["riskIndicators"][0],
        json!({ "__typename": "RiskIndicator", "name": "USB \\ \"drive\"", "weight": 5, "w": 5 })
    );
    assert_eq!(first["mitre"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["file"]["contentStored"], true);
    assert_eq!(first["file"]["downloadPath"], format!("/detections/{}/file", ids[0]));
    assert_eq!(first["file"]["size"].as_f64(), Some(1234567.0));
    let bare = nodes.iter().find(|n| n["externalId"] == "plain-2").expect("plain-2");
    assert_eq!(
        (&bare["device"], &bare["file"], &bare["riskIndicators"]),
        (&Value::Null, &Value::Null, &json!([]))
    );
}

/// Every field a detection answers, outside the plain path's reach too (`raw`, `subject`).
const ALL_FIELDS: &str = "id externalId source ruleName description observedAt ingestedAt \
     riskScore severity actor raw subject { username } \
     riskIndicators { name weight } device { id hostname type ip } \
     mitre { tacticId tacticName techniqueId techniqueName } \
     file { name path size sha256 md5 mimeType availability contentStored downloadPath }";

#[tokio::test]
async fn every_list_reads_a_detection_by_position_as_detection_by_id_reads_it() {
    let app = TestApp::new().await;
    set_auto_cases(&app, false, "HIGH").await;
    let observed = (Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let full = json!({
        "externalId": "pos-1", "source": "FILE_ACTIVITY", "ruleName": "B rule",
        "description": "every column set", "observedAt": observed, "riskScore": 77,
        "riskIndicators": [{ "name": "USB", "weight": 5 }],
        "device": { "id": "dev-1", "hostname": "Laptop-1", "type": "laptop", "ip": "10.0.0.1" },
        "actor": "Erin@Example.test",
        "mitre": [{ "tacticId": "TA0010", "tacticName": "Exfiltration", "techniqueId": "T1052", "techniqueName": "Over USB" }],
        "file": {
            "name": "a.pdf", "path": "/tmp/", "size": 42.0, "sha256": "ef".repeat(32),
            "md5": "01".repeat(16), "mimeType": "application/pdf", "availability": "EXACT_FILE_AVAILABLE",
        },
        "raw": { "vendor": { "id": 7 } },
    });
    let others = ["A rule", "C rule"].map(|rule| {
        json!({ "externalId": rule, "source": "XDR", "ruleName": rule, "observedAt": observed,
                "riskScore": 3, "actor": "erin@example.test" })
    });
    let mut batch = vec![full];
    batch.extend(others);
    let ids = app.ingest(&app.admin_token, batch).await;
    app.store_content(&ids[0], b"content").await;
    let case =
        app.create_case(&app.admin_token, json!({ "name": "Pos", "detectionIds": ids })).await;
    let input = json!({ "username": "erin@example.test" });
    let body = app.mutate(&app.admin_token, "upsertSubject", input, "subject { id }").await;
    let subject = body["data"]["upsertSubject"]["subject"]["id"].clone();

    let by_id = read_detection(&app, &ids[0], ALL_FIELDS).await;
    assert_eq!(by_id["file"]["contentStored"], true, "{by_id}");
    assert_eq!(by_id["subject"]["username"], "erin@example.test", "{by_id}");
    // A page of one at a time in rule-name order: the cursors carry the sort key read
    // after the detection's columns, so the pages follow only if it was read right.
    let order = "orderBy: { field: RULE_NAME, direction: ASC }";
    let (case, subject) = (case["id"].as_str().expect("case id"), subject.as_str().expect("id"));
    let lists = [
        (format!("detections(first: 1, after: $after, {order})"), ["detections"].as_slice()),
        (
            format!("case(id: \"{case}\") {{ detections(first: 1, after: $after, {order})"),
            &["case", "detections"],
        ),
        (
            format!("subject(id: \"{subject}\") {{ recentActivity(first: 1, after: $after)"),
            &["subject", "recentActivity"],
        ),
    ];
    for (field, path) in lists {
        let name = path.join(".");
        let query = format!(
            "query($after: String) {{ {field} {{ nodes {{ {ALL_FIELDS} }} \
             pageInfo {{ hasNextPage endCursor }} }} {} }}",
            "}".repeat(path.len() - 1)
        );
        let (mut seen, mut after) = (Vec::new(), Value::Null);
        while seen.len() <= 3 {
            let (_, body) = app.graphql(&app.admin_token, &query, json!({ "after": after })).await;
            assert!(body.get("errors").is_none(), "{name}: {body}");
            let list = path.iter().fold(&body["data"], |value, key| &value[key]);
            seen.extend(list["nodes"].as_array().expect("nodes").iter().cloned());
            if list["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = list["pageInfo"]["endCursor"].clone();
        }
        let rules: Vec<&str> = seen.iter().map(|n| n["ruleName"].as_str().expect("rule")).collect();
        if path[0] == "subject" {
            // Newest first, then by id: all three, once.
            let distinct: HashSet<_> = rules.iter().collect();
            assert_eq!((rules.len(), distinct.len()), (3, 3), "{name}: {rules:?}");
        } else {
            assert_eq!(rules, ["A rule", "B rule", "C rule"], "{name}");
        }
        let read = seen.iter().find(|n| n["id"] == ids[0].as_str()).expect("the full detection");
        assert_eq!(read, &by_id, "{name}");
    }
}
