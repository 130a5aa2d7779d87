//! `caseStats` (issue 12): the dashboard's counts agree with counts computed here from
//! the same cases and detections, created through the API and then placed in time with
//! SQL (the way the seed writes dates), on UTC day boundaries, in every window and the
//! window before it; first assignments; the top lists and their ties; tenants and roles;
//! a fixed number of statements.

use chrono::{DateTime, Days, Duration, NaiveDate, TimeZone, Utc};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::fixtures::error_code;
use casefile::graphql::ids::{self, Kind};
use casefile::models::ids::UserId;
use casefile::models::users::Role;

const STATS: &str = "window openByStatus { status count } openBySeverity { severity count } \
    openByKind { kind count } resolvedByResolution { resolution count } \
    createdPerDay { day count } resolvedPerDay { day count } \
    created previousCreated resolved previousResolved \
    meanTimeToAssignSeconds meanTimeToResolveSeconds \
    meanTimeToResolveBySeverity { severity seconds } \
    topRules { name count } topDevices { name count }";

const WINDOWS: [(&str, u64); 4] = [("P7D", 7), ("P30D", 30), ("P90D", 90), ("P365D", 365)];
const OPEN: [&str; 4] = ["NEW", "INVESTIGATING", "ON_HOLD", "ACTION_REQUIRED"];
const SEVERITIES: [Option<&str>; 6] =
    [None, Some("INFORMATIONAL"), Some("LOW"), Some("MEDIUM"), Some("HIGH"), Some("CRITICAL")];
const KINDS: [&str; 3] = ["SELF_MANAGED", "MDR_SERVICE_REQUEST", "MANAGED_RISK_SERVICE_REQUEST"];
const RESOLUTIONS: [&str; 6] = [
    "CONFIRMED_INCIDENT",
    "THREAT_MITIGATED",
    "AUTHORIZED_ACTIVITY",
    "FALSE_POSITIVE",
    "NOT_VULNERABLE",
    "INCONCLUSIVE",
];

async fn stats_as(app: &TestApp, token: &str, window: &str) -> Value {
    let (status, body) = app
        .graphql(
            token,
            &format!("query($w: StatsWindow!) {{ caseStats(window: $w) {{ {STATS} }} }}"),
            json!({ "w": window }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["caseStats"].clone()
}

async fn stats(app: &TestApp, window: &str) -> Value {
    stats_as(app, &app.admin_token, window).await
}

async fn exec(app: &TestApp, sql: &str) {
    let mut conn = app.conn().await;
    diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// `seconds` after the start of the UTC day `days` before today.
fn at(today: NaiveDate, days: u64, seconds: i64) -> DateTime<Utc> {
    let day = today - Days::new(days);
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight")) + Duration::seconds(seconds)
}

fn sql_time(t: DateTime<Utc>) -> String {
    format!("'{}'", t.to_rfc3339())
}

/// One case of the fixture, as this test will place it.
struct Spec {
    kind: &'static str,
    severity: Option<&'static str>,
    /// Its status when it stays open.
    status: &'static str,
    created: DateTime<Utc>,
    assigned: Option<DateTime<Utc>>,
    resolved: Option<(DateTime<Utc>, &'static str)>,
}

const END: i64 = 86_400 - 1;

fn specs(t: NaiveDate) -> Vec<Spec> {
    let spec = |severity, created, assigned, resolved| Spec {
        kind: "SELF_MANAGED",
        severity,
        status: "NEW",
        created,
        assigned,
        resolved,
    };
    vec![
        Spec {
            status: "INVESTIGATING",
            ..spec(Some("HIGH"), at(t, 0, 1), Some(at(t, 0, 3_601)), None)
        },
        // The first second of the 7-day window.
        spec(None, at(t, 6, 0), None, None),
        // The last second before it: the previous 7-day window.
        spec(
            Some("LOW"),
            at(t, 7, END),
            Some(at(t, 6, 59)),
            Some((at(t, 1, 43_200), "FALSE_POSITIVE")),
        ),
        spec(Some("CRITICAL"), at(t, 13, 0), None, Some((at(t, 7, END), "CONFIRMED_INCIDENT"))),
        spec(
            Some("MEDIUM"),
            at(t, 14, END),
            Some(at(t, 12, END)),
            Some((at(t, 6, 0), "THREAT_MITIGATED")),
        ),
        spec(
            Some("HIGH"),
            at(t, 40, 36_000),
            Some(at(t, 40, 36_100)),
            Some((at(t, 20, 5), "FALSE_POSITIVE")),
        ),
        spec(None, at(t, 200, 7), Some(at(t, 199, 7)), Some((at(t, 100, 9), "INCONCLUSIVE"))),
        spec(Some("LOW"), at(t, 400, 0), None, Some((at(t, 370, 0), "AUTHORIZED_ACTIVITY"))),
        Spec { status: "ACTION_REQUIRED", ..spec(Some("CRITICAL"), at(t, 800, 0), None, None) },
        Spec { status: "ON_HOLD", ..spec(Some("INFORMATIONAL"), at(t, 3, 100), None, None) },
        Spec { kind: "MDR_SERVICE_REQUEST", ..spec(None, at(t, 2, 0), None, None) },
    ]
}

/// Creates the cases through the API (assignments and resolutions too), then places them
/// in time. Returns their global ids.
async fn create(app: &TestApp, specs: &[Spec]) -> Vec<String> {
    exec(app, "UPDATE tenants SET licenses = array_append(licenses, 'MDR')").await;
    let admin = ids::encode(Kind::User, app.admin_id.0).to_string();
    let token = app.admin_token.clone();
    let mut out = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let mut input = json!({ "name": format!("Stats case {i}"), "kind": spec.kind });
        if let Some(severity) = spec.severity {
            input["severity"] = json!(severity);
        }
        let case = app.create_case(&token, input).await;
        let id = case["id"].as_str().expect("id").to_owned();
        let mut update = json!({ "id": id });
        if spec.assigned.is_some() {
            update["assigneeId"] = json!(admin);
        }
        if spec.resolved.is_none() && spec.status != "NEW" {
            update["status"] = json!(spec.status);
        }
        if update.as_object().map(|o| o.len()) > Some(1) {
            let body = app.mutate(&token, "updateCase", update, "case { id }").await;
            assert!(body.get("errors").is_none(), "{body}");
        }
        if let Some((_, resolution)) = spec.resolved {
            let input = json!({ "id": id, "resolution": resolution });
            let body = app.mutate(&token, "resolveCase", input, "case { id }").await;
            assert!(body.get("errors").is_none(), "{body}");
        }
        let number = case["number"].as_i64().expect("number");
        let assigned = spec.assigned.map_or("NULL".to_owned(), sql_time);
        let resolved = spec.resolved.map_or("NULL".to_owned(), |(t, _)| sql_time(t));
        exec(
            app,
            &format!(
                "UPDATE cases SET created_at = {}, first_assigned_at = {assigned}, \
                 resolved_at = {resolved} WHERE tenant_id = '{}' AND number = {number}",
                sql_time(spec.created),
                app.tenant_id.0
            ),
        )
        .await;
        out.push(id);
    }
    out
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

fn mean(values: &[f64]) -> Value {
    if values.is_empty() {
        Value::Null
    } else {
        json!(values.iter().sum::<f64>() / values.len() as f64)
    }
}

/// What `caseStats` must answer for these cases, computed from the specs alone.
fn expected(specs: &[Spec], window: &str, n: u64, t: NaiveDate) -> Value {
    let first = t - Days::new(n - 1);
    let previous = first - Days::new(n);
    let within = |at: DateTime<Utc>| (first..=t).contains(&at.date_naive());
    let before = |at: DateTime<Utc>| (previous..first).contains(&at.date_naive());
    let open: Vec<&Spec> = specs.iter().filter(|s| s.resolved.is_none()).collect();
    let resolved: Vec<(&Spec, DateTime<Utc>, &str)> =
        specs.iter().filter_map(|s| s.resolved.map(|(at, r)| (s, at, r))).collect();
    let per_day = |times: Vec<DateTime<Utc>>| -> Value {
        first
            .iter_days()
            .take_while(|d| *d <= t)
            .map(|d| {
                let count = times.iter().filter(|at| at.date_naive() == d).count();
                json!({ "day": d.format("%Y-%m-%d").to_string(), "count": count })
            })
            .collect()
    };
    let resolved_within: Vec<_> = resolved.iter().filter(|(_, at, _)| within(*at)).collect();
    json!({
        "window": window,
        "openByStatus": OPEN.map(|status| json!({
            "status": status,
            "count": open.iter().filter(|s| s.status == status).count(),
        })),
        "openBySeverity": SEVERITIES.map(|severity| json!({
            "severity": severity,
            "count": open.iter().filter(|s| s.severity == severity).count(),
        })),
        "openByKind": KINDS.map(|kind| json!({
            "kind": kind,
            "count": open.iter().filter(|s| s.kind == kind).count(),
        })),
        "resolvedByResolution": RESOLUTIONS.map(|resolution| json!({
            "resolution": resolution,
            "count": resolved_within.iter().filter(|(_, _, r)| *r == resolution).count(),
        })),
        "createdPerDay": per_day(specs.iter().map(|s| s.created).collect()),
        "resolvedPerDay": per_day(resolved.iter().map(|r| r.1).collect()),
        "created": specs.iter().filter(|s| within(s.created)).count(),
        "previousCreated": specs.iter().filter(|s| before(s.created)).count(),
        "resolved": resolved_within.len(),
        "previousResolved": resolved.iter().filter(|(_, at, _)| before(*at)).count(),
        "meanTimeToAssignSeconds": mean(&specs.iter()
            .filter(|s| within(s.created))
            .filter_map(|s| s.assigned.map(|a| seconds(s.created, a)))
            .collect::<Vec<_>>()),
        "meanTimeToResolveSeconds": mean(&resolved_within.iter()
            .map(|(s, at, _)| seconds(s.created, *at))
            .collect::<Vec<_>>()),
        "meanTimeToResolveBySeverity": SEVERITIES.map(|severity| json!({
            "severity": severity,
            "seconds": mean(&resolved_within.iter()
                .filter(|(s, _, _)| s.severity == severity)
                .map(|(s, at, _)| seconds(s.created, *at))
                .collect::<Vec<_>>()),
        })),
        "topRules": [],
        "topDevices": [],
    })
}

/// Runs `check` with today's date, again if the UTC day turned meanwhile.
async fn on_one_day<F: AsyncFn(NaiveDate) -> bool>(check: F) {
    for _ in 0..2 {
        let t = today();
        if check(t).await && today() == t {
            return;
        }
    }
    panic!("the statistics did not match (see above)");
}

#[tokio::test]
async fn case_stats_agree_with_counts_computed_from_the_same_cases_in_every_window() {
    let app = TestApp::new().await;
    let t = today();
    let specs = specs(t);
    let ids = create(&app, &specs).await;
    on_one_day(async |t| {
        let specs = self::specs(t);
        for (window, days) in WINDOWS {
            let got = stats(&app, window).await;
            let want = expected(&specs, window, days, t);
            if today() != t {
                return false;
            }
            assert_eq!(got, want, "{window}");
            let days_listed = got["createdPerDay"].as_array().expect("days").len();
            assert_eq!(days_listed as u64, days, "{window}: every day of the window");
        }
        true
    })
    .await;

    // Archiving and deleting change nothing: they count where they happened.
    let before: Vec<Value> = futures_all(&app).await;
    let body =
        app.mutate(&app.admin_token, "archiveCase", json!({ "id": ids[6] }), "case { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
    let body = app
        .mutate(&app.admin_token, "deleteCases", json!({ "ids": [ids[5], ids[7]] }), "deletedIds")
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(futures_all(&app).await, before, "archive and delete keep the counts");
}

async fn futures_all(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for (window, _) in WINDOWS {
        out.push(stats(app, window).await);
    }
    out
}

/// The case's `first_assigned_at`, read straight from the database.
async fn first_assigned(app: &TestApp, id: &str) -> Option<DateTime<Utc>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
        at: Option<DateTime<Utc>>,
    }
    let (_, uuid) = ids::decode(id).expect("a case id");
    let mut conn = app.conn().await;
    diesel::sql_query(format!("SELECT first_assigned_at AS at FROM cases WHERE id = '{uuid}'"))
        .get_result::<Row>(&mut conn)
        .await
        .expect("case")
        .at
}

async fn assign(app: &TestApp, id: &str, user: Option<UserId>) {
    let assignee = user.map(|u| ids::encode(Kind::User, u.0).to_string());
    let input = json!({ "id": id, "assigneeId": assignee });
    let body = app.mutate(&app.admin_token, "updateCase", input, "case { id }").await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn the_first_assignment_is_kept_through_reassignment_and_unassignment() {
    let app = TestApp::new().await;
    let (analyst, _) = app.create_user(app.tenant_id, Role::Analyst).await;
    let case = app.case_named("Assigned later").await;
    let id = case["id"].as_str().expect("id");
    assert_eq!(first_assigned(&app, id).await, None, "never assigned yet");

    let before = Utc::now();
    assign(&app, id, Some(app.admin_id)).await;
    let first = first_assigned(&app, id).await.expect("set on the first assignment");
    assert!(first >= before && first <= Utc::now(), "{first} is the assignment's time");
    let updated = app.read_case(id).await["updatedAt"].as_str().expect("updatedAt").to_owned();
    assert_eq!(DateTime::parse_from_rfc3339(&updated).expect("time"), first, "the update's time");

    assign(&app, id, Some(analyst)).await;
    assert_eq!(first_assigned(&app, id).await, Some(first), "a reassignment keeps it");
    assign(&app, id, None).await;
    assert_eq!(first_assigned(&app, id).await, Some(first), "unassigning keeps it");

    let admin = ids::encode(Kind::User, app.admin_id.0).to_string();
    let created = app
        .create_case(&app.admin_token, json!({ "name": "Assigned at once", "assigneeId": admin }))
        .await;
    let at_once = first_assigned(&app, created["id"].as_str().expect("id")).await;
    let created_at = created["createdAt"].as_str().expect("createdAt");
    assert_eq!(at_once, Some(DateTime::parse_from_rfc3339(created_at).expect("time").into()));

    // Both count for the mean: one after (first - its creation), one at zero.
    let created_first = DateTime::parse_from_rfc3339(case["createdAt"].as_str().expect("t"))
        .expect("time")
        .with_timezone(&Utc);
    let got = stats(&app, "P7D").await["meanTimeToAssignSeconds"].as_f64().expect("a mean");
    let want = seconds(created_first, first) / 2.0;
    assert!((got - want).abs() < 0.002, "{got} vs {want}");
}

/// An XDR detection of `rule` on `host`, low risk (no automatic case).
fn detection(external_id: &str, rule: &str, host: Option<&str>) -> Value {
    let mut d = json!({
        "externalId": external_id,
        "source": "XDR",
        "ruleName": rule,
        "observedAt": "2026-11-20T10:00:00Z",
        "riskScore": 1,
    });
    if let Some(host) = host {
        d["device"] = json!({ "hostname": host });
    }
    d
}

fn names(list: &Value) -> Vec<(String, i64)> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|n| (n["name"].as_str().expect("name").to_owned(), n["count"].as_i64().expect("n")))
        .collect()
}

#[tokio::test]
async fn top_rules_and_devices_count_detections_ingested_in_the_window_ties_by_name() {
    let app = TestApp::new().await;
    // Rules: "Rule B" and "Rule A" 3 each (a tie: A first), "Rule C" 2, then nine rules
    // with one each: twelve rules, ten listed. Hosts: h-2 4 times, h-1 4 (tie), h-3 once,
    // and detections without a device.
    let mut batch = Vec::new();
    let mut n = 0;
    let mut next = |rule: &str, host: Option<&str>| {
        n += 1;
        detection(&format!("top-{n}"), rule, host)
    };
    for _ in 0..3 {
        batch.push(next("Rule B", Some("h-2")));
        batch.push(next("Rule A", Some("h-1")));
    }
    batch.push(next("Rule C", Some("h-2")));
    batch.push(next("Rule C", Some("h-1")));
    for k in 0..9 {
        batch.push(next(
            &format!("Rule {}", (b'D' + k) as char),
            if k == 0 { Some("h-3") } else { None },
        ));
    }
    app.ingest(&app.admin_token, batch).await;
    // Five older detections of one rule and host: in the 30-day window, not the 7-day one.
    let old: Vec<Value> = (0..5).map(|_| next("Rule Z", Some("h-9"))).collect();
    app.ingest(&app.admin_token, old).await;
    exec(
        &app,
        "UPDATE detections SET ingested_at = ingested_at - interval '8 days' \
         WHERE rule_name = 'Rule Z'",
    )
    .await;

    let mut rules =
        vec![("Rule A".to_owned(), 3), ("Rule B".to_owned(), 3), ("Rule C".to_owned(), 2)];
    rules.extend((0..7).map(|k| (format!("Rule {}", (b'D' + k) as char), 1)));
    let devices = vec![("h-1".to_owned(), 4), ("h-2".to_owned(), 4), ("h-3".to_owned(), 1)];
    let week = stats(&app, "P7D").await;
    assert_eq!(names(&week["topRules"]), rules, "most first, ties by name, at most ten");
    assert_eq!(names(&week["topDevices"]), devices);

    let month = stats(&app, "P30D").await;
    let mut rules = vec![("Rule Z".to_owned(), 5)];
    rules.extend(names(&week["topRules"]).into_iter().take(9));
    assert_eq!(names(&month["topRules"]), rules);
    let mut devices_month = vec![("h-9".to_owned(), 5)];
    devices_month.extend(devices);
    assert_eq!(names(&month["topDevices"]), devices_month);
}

#[tokio::test]
async fn another_tenants_cases_and_detections_never_count() {
    let app = TestApp::new().await;
    let other = app.create_tenant("Other Stats Tenant", &[]).await;
    let (_, other_admin) = app.create_user(other, Role::Admin).await;
    app.create_case(&other_admin, json!({ "name": "Theirs", "severity": "HIGH" })).await;
    app.ingest(&other_admin, vec![detection("theirs-1", "Their rule", Some("their-host"))]).await;
    app.case_named("Ours").await;

    let ours = stats(&app, "P30D").await;
    assert_eq!(ours["created"], 1);
    assert_eq!(ours["openBySeverity"][4], json!({ "severity": "HIGH", "count": 0 }));
    assert_eq!(ours["topRules"], json!([]));
    let theirs = stats_as(&app, &other_admin, "P30D").await;
    assert_eq!(theirs["created"], 1);
    assert_eq!(theirs["openBySeverity"][4], json!({ "severity": "HIGH", "count": 1 }));
    assert_eq!(theirs["topRules"], json!([{ "name": "Their rule", "count": 1 }]));
    assert_eq!(theirs["topDevices"], json!([{ "name": "their-host", "count": 1 }]));
}

#[tokio::test]
async fn every_reader_sees_the_stats_and_ingest_tokens_do_not() {
    let app = TestApp::new().await;
    app.case_named("Counted").await;
    for role in
        [Role::Admin, Role::Analyst, Role::SuperAdmin, Role::ReadOnly, Role::ProviderAnalyst]
    {
        let (_, token) = app.create_user(app.tenant_id, role).await;
        assert_eq!(stats_as(&app, &token, "P7D").await["created"], 1, "{role:?}");
    }
    let query = "{ caseStats(window: P7D) { created } }";
    let (_, ingest) = app.create_user(app.tenant_id, Role::Ingest).await;
    let (_, body) = app.graphql(&ingest, query, json!({})).await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let (_, body) = app.graphql("not-a-token", query, json!({})).await;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{body}");
    let (_, body) =
        app.graphql(&app.admin_token, "{ caseStats(window: P1D) { created } }", json!({})).await;
    assert!(body["errors"].is_array(), "an unknown window is refused: {body}");
}

#[tokio::test]
async fn case_stats_run_a_fixed_small_number_of_statements() {
    let app = TestApp::new().await;
    let query = format!("{{ caseStats(window: P365D) {{ {STATS} }} }}");
    let token = app.admin_token.clone();
    // The fewest of three runs: a run may also look the token up again (it is trusted for
    // a second) or record its use.
    let fewest = async || {
        let mut counts = Vec::new();
        for _ in 0..3 {
            let (body, n) = app.graphql_counting(&token, &query, json!({})).await;
            assert!(body.get("errors").is_none(), "{body}");
            counts.push(n);
        }
        counts.into_iter().min().unwrap_or_default()
    };
    let empty = fewest().await;

    let t = today();
    create(&app, &specs(t)).await;
    let batch: Vec<Value> = (0..30)
        .map(|i| detection(&format!("s-{i}"), &format!("Rule {i}"), Some(&format!("h-{i}"))))
        .collect();
    app.ingest(&token, batch).await;
    let full = fewest().await;
    println!("caseStats statements: {empty} on an empty tenant, {full} with data");
    assert_eq!(full, empty, "the same statements whatever the data");
    // BEGIN, the open cases, the created days, the resolved days, the top names, COMMIT.
    assert!(full <= 6, "{full} statements");
}

#[tokio::test]
async fn the_open_case_counts_follow_status_and_severity_changes() {
    let app = TestApp::new().await;
    let case =
        app.create_case(&app.admin_token, json!({ "name": "Moving", "severity": "LOW" })).await;
    let id = case["id"].as_str().expect("id");
    let open = |s: &Value, status: usize, severity: usize| {
        (
            s["openByStatus"][status]["count"].as_i64(),
            s["openBySeverity"][severity]["count"].as_i64(),
        )
    };
    assert_eq!(open(&stats(&app, "P7D").await, 0, 2), (Some(1), Some(1)));
    let input = json!({ "id": id, "status": "ON_HOLD", "severity": "CRITICAL" });
    app.mutate(&app.admin_token, "updateCase", input, "case { id }").await;
    let s = stats(&app, "P7D").await;
    assert_eq!(open(&s, 0, 2), (Some(0), Some(0)));
    assert_eq!(open(&s, 2, 5), (Some(1), Some(1)));
    let input = json!({ "id": id, "resolution": "NOT_VULNERABLE" });
    app.mutate(&app.admin_token, "resolveCase", input, "case { id }").await;
    let s = stats(&app, "P7D").await;
    assert_eq!(open(&s, 2, 5), (Some(0), Some(0)), "a resolved case is not open");
    assert_eq!(s["resolved"], 1);
    assert_eq!(s["resolvedByResolution"][4], json!({ "resolution": "NOT_VULNERABLE", "count": 1 }));
    let by_severity = &s["meanTimeToResolveBySeverity"][5];
    assert_eq!(by_severity["severity"], "CRITICAL", "the severity at resolution");
    assert!(by_severity["seconds"].as_f64().is_some(), "{s}");
}
