//! Nothing of one tenant is visible to another: an id from another tenant answers
//! exactly as an id that does not exist, and no mutation of another tenant reaches it.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;
use crate::common::fixtures::{CASE_FIELDS, detection, error_code, error_field};
use casefile::graphql::ids;
use casefile::models::tenants::License;
use casefile::models::users::Role;

const ALL_STATUSES: &str = "[NEW INVESTIGATING ON_HOLD ACTION_REQUIRED RESOLVED ARCHIVED]";
const A_SUBJECT: &str = "alice@example.test";
const A_CASE_NAME: &str = "Exfiltration by Alice";

/// The global ids one probe aims at: tenant A's, or freshly made ones of the same types.
struct Targets {
    case: String,
    detection: String,
    subject: String,
    user: String,
    token: String,
}

/// Tenant A (the bootstrap tenant) with a case holding two detections, a subject and an
/// assignee, and a token of that user; tenant B (MDR and Managed Risk) with an admin.
struct TwoTenants {
    app: TestApp,
    /// A's case as it was created (with `CASE_FIELDS`).
    a_case: Value,
    a: Targets,
    a_tenant: String,
    a_token_secret: String,
    b_admin: String,
    b_token: String,
}

impl TwoTenants {
    async fn new() -> Self {
        let app = TestApp::new().await;
        let admin = app.admin_token.clone();
        let (user, _) = app.create_user(app.tenant_id, Role::Analyst).await;
        let user = ids::encode(ids::Kind::User, user.0).0;
        let detections =
            app.ingest(&admin, vec![detection("shared-ext-1", 2), detection("a-ext-2", 3)]).await;
        let subject = app
            .mutate(&admin, "upsertSubject", json!({ "username": A_SUBJECT }), "subject { id }")
            .await;
        let subject = subject["data"]["upsertSubject"]["subject"]["id"].as_str().expect("subject");
        let a_case = app
            .create_case(
                &admin,
                json!({
                    "name": A_CASE_NAME,
                    "detectionIds": detections,
                    "subjectId": subject,
                    "assigneeId": user,
                }),
            )
            .await;
        let token = app
            .mutate(
                &admin,
                "createApiToken",
                json!({ "userId": user, "name": "A's token" }),
                "tokenId token",
            )
            .await;
        let token = &token["data"]["createApiToken"];
        let a_tenant = app.query_ok("{ tenant { id } }").await["tenant"]["id"].clone();

        let b = app.create_tenant("B", &[License::Mdr, License::ManagedRisk]).await;
        let (b_admin, b_token) = app.create_user(b, Role::Admin).await;
        TwoTenants {
            a: Targets {
                case: a_case["id"].as_str().expect("case id").to_owned(),
                detection: detections[0].clone(),
                subject: subject.to_owned(),
                user,
                token: token["tokenId"].as_str().expect("token id").to_owned(),
            },
            a_case,
            a_tenant: a_tenant.as_str().expect("tenant id").to_owned(),
            a_token_secret: token["token"].as_str().expect("token").to_owned(),
            b_admin: ids::encode(ids::Kind::User, b_admin.0).0,
            b_token,
            app,
        }
    }

    /// Runs an operation as B's admin; fails the test on a non-200 answer.
    async fn as_b(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.app.graphql(&self.b_token, query, variables).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Ids of the same types as A's, that exist nowhere.
    fn fresh(&self) -> Targets {
        Targets {
            case: fresh_id_like(&self.a.case),
            detection: fresh_id_like(&self.a.detection),
            subject: fresh_id_like(&self.a.subject),
            user: fresh_id_like(&self.a.user),
            token: fresh_id_like(&self.a.token),
        }
    }

    /// A case of B's own, created by B's admin.
    async fn b_case(&self, name: &str) -> Value {
        self.app.create_case(&self.b_token, json!({ "name": name })).await
    }
}

/// A new global id of the same type as `id`.
fn fresh_id_like(id: &str) -> String {
    let (kind, _) = ids::decode(id).unwrap_or_else(|| panic!("{id} is not a global id"));
    ids::encode(kind, Uuid::now_v7()).0
}

fn ids_of(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("not a connection: {connection}"))
        .iter()
        .map(|node| node["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn another_tenants_case_is_not_found_by_id_or_number_and_numbers_are_per_tenant() {
    let t = TwoTenants::new().await;
    assert_eq!(t.a_case["number"], 1, "A's first case");
    let by_id = "query($id: ID!) { case(id: $id) { id } }";
    let by_number = "query($n: Int!) { case(number: $n) { id name } }";

    let body = t.as_b(by_id, json!({ "id": t.a.case })).await;
    assert_eq!(body, json!({ "data": { "case": null } }));
    let body = t.as_b(by_number, json!({ "n": 1 })).await;
    assert_eq!(body, json!({ "data": { "case": null } }), "B has no case number 1 yet");

    let own = t.b_case("B's first case").await;
    assert_eq!(own["number"], 1, "B's cases are numbered on their own");
    let body = t.as_b(by_number, json!({ "n": 1 })).await;
    assert_eq!(body["data"]["case"], json!({ "id": own["id"], "name": "B's first case" }));
    let (_, body) = t.app.graphql(&t.app.admin_token, by_number, json!({ "n": 1 })).await;
    assert_eq!(body["data"]["case"], json!({ "id": t.a.case, "name": A_CASE_NAME }));
}

#[tokio::test]
async fn every_id_of_another_tenant_reads_as_null() {
    let t = TwoTenants::new().await;
    let query = "query($c: ID!, $d: ID!, $s: ID!, $u: ID!, $t: ID!, $name: String!) {
        c: node(id: $c) { id } d: node(id: $d) { id } s: node(id: $s) { id }
        u: node(id: $u) { id } t: node(id: $t) { id }
        all: nodes(ids: [$c, $d, $s, $u, $t]) { id }
        detection(id: $d) { id } subject(id: $s) { id } byName: subject(username: $name) { id }
    }";
    let vars = json!({
        "c": t.a.case, "d": t.a.detection, "s": t.a.subject, "u": t.a.user, "t": t.a_tenant,
        "name": A_SUBJECT,
    });

    // A sees all of them, so the ids are real.
    let (_, body) = t.app.graphql(&t.app.admin_token, query, vars.clone()).await;
    assert!(body.get("errors").is_none(), "{body}");
    let seen = &body["data"];
    assert_eq!(
        [&seen["c"]["id"], &seen["d"]["id"], &seen["s"]["id"], &seen["u"]["id"], &seen["t"]["id"]],
        [
            &json!(t.a.case),
            &json!(t.a.detection),
            &json!(t.a.subject),
            &json!(t.a.user),
            &json!(t.a_tenant)
        ]
    );
    assert_eq!(seen["byName"]["id"], json!(t.a.subject));

    let body = t.as_b(query, vars).await;
    assert_eq!(
        body,
        json!({ "data": {
            "c": null, "d": null, "s": null, "u": null, "t": null,
            "all": [null, null, null, null, null],
            "detection": null, "subject": null, "byName": null,
        } })
    );
}

#[tokio::test]
async fn lists_show_only_the_viewers_own_tenant() {
    let t = TwoTenants::new().await;
    let own_case = t.b_case("B's case").await;
    let own_detection = t.app.ingest(&t.b_token, vec![detection("b-ext-1", 2)]).await.remove(0);
    let subject = json!({ "username": "bob@example.test" });
    let body = t.app.mutate(&t.b_token, "upsertSubject", subject, "subject { id }").await;
    let own_subject = body["data"]["upsertSubject"]["subject"]["id"].clone();

    let query = format!(
        "{{ cases(filter: {{ status: {ALL_STATUSES} }}) {{ totalCount nodes {{ id }} }}
            detections {{ totalCount nodes {{ id }} }}
            subjects {{ totalCount nodes {{ id }} }}
            users {{ totalCount nodes {{ id }} }} }}"
    );
    let body = t.as_b(&query, json!({})).await;
    let data = &body["data"];
    assert_eq!(ids_of(&data["cases"]), [own_case["id"].as_str().expect("id")], "{body}");
    assert_eq!(ids_of(&data["detections"]), [own_detection], "{body}");
    assert_eq!(ids_of(&data["subjects"]), [own_subject.as_str().expect("id")], "{body}");
    assert_eq!(ids_of(&data["users"]), [t.b_admin.as_str()], "{body}");
    let counts: Vec<&Value> = ["cases", "detections", "subjects", "users"]
        .iter()
        .map(|l| &data[l]["totalCount"])
        .collect();
    assert_eq!(counts, [&json!(1); 4]);
}

#[tokio::test]
async fn case_filters_with_another_tenants_ids_find_nothing() {
    let t = TwoTenants::new().await;
    t.b_case("B's case").await;
    let query = "query($f: CaseFilter!) { cases(filter: $f) { totalCount nodes { id } } }";
    let fresh = t.fresh();
    let filters = [
        ("assigneeIds", json!([t.a.user]), json!([fresh.user])),
        ("hasDetection", json!(t.a.detection), json!(fresh.detection)),
        ("subjectUsername", json!(A_SUBJECT), json!("nobody@example.test")),
    ];
    for (field, a_value, fresh_value) in filters {
        let filter = |value: &Value| {
            // A's case is NEW: the default (open) statuses hold it.
            json!({ "f": { field: value } })
        };
        let (_, body) = t.app.graphql(&t.app.admin_token, query, filter(&a_value)).await;
        assert_eq!(body["data"]["cases"]["totalCount"], 1, "A finds its case by {field}: {body}");

        let with_a = t.as_b(query, filter(&a_value)).await;
        let with_fresh = t.as_b(query, filter(&fresh_value)).await;
        assert_eq!(
            with_a["data"]["cases"],
            json!({ "totalCount": 0, "nodes": [] }),
            "{field}: {with_a}"
        );
        assert_eq!(with_a, with_fresh, "{field}: A's value answers like one that exists nowhere");
    }
}

/// Every mutation B's admin could aim at A: (what, mutation, input, the code the spec names).
fn probes(
    t: &Targets,
    own_case: &str,
) -> Vec<(&'static str, &'static str, Value, Option<&'static str>)> {
    vec![
        (
            "updateCase",
            "updateCase",
            json!({ "id": t.case, "name": "Renamed by B" }),
            Some("NOT_FOUND"),
        ),
        (
            "resolveCase",
            "resolveCase",
            json!({ "id": t.case, "resolution": "FALSE_POSITIVE" }),
            Some("NOT_FOUND"),
        ),
        ("archiveCase", "archiveCase", json!({ "id": t.case }), Some("NOT_FOUND")),
        ("deleteCases", "deleteCases", json!({ "ids": [t.case] }), Some("NOT_FOUND")),
        (
            "deleteCases with B's case too",
            "deleteCases",
            json!({ "ids": [own_case, t.case] }),
            Some("NOT_FOUND"),
        ),
        (
            "addDetectionsToCase on A's case",
            "addDetectionsToCase",
            json!({ "caseId": t.case, "detectionIds": [t.detection] }),
            Some("NOT_FOUND"),
        ),
        (
            "addDetectionsToCase of A's detection to B's case",
            "addDetectionsToCase",
            json!({ "caseId": own_case, "detectionIds": [t.detection] }),
            Some("NOT_FOUND"),
        ),
        (
            "removeDetectionsFromCase",
            "removeDetectionsFromCase",
            json!({ "caseId": t.case, "detectionIds": [t.detection] }),
            Some("NOT_FOUND"),
        ),
        (
            "setCaseSubject on A's case",
            "setCaseSubject",
            json!({ "caseId": t.case, "subjectId": null }),
            Some("NOT_FOUND"),
        ),
        (
            "setCaseSubject of A's subject on B's case",
            "setCaseSubject",
            json!({ "caseId": own_case, "subjectId": t.subject }),
            Some("NOT_FOUND"),
        ),
        (
            "createCase assigned to A's user",
            "createCase",
            json!({ "name": "Probe assignee", "assigneeId": t.user }),
            Some("VALIDATION_FAILED"),
        ),
        (
            "createCase about A's subject",
            "createCase",
            json!({ "name": "Probe subject", "subjectId": t.subject }),
            Some("NOT_FOUND"),
        ),
        (
            "createCase with A's detection",
            "createCase",
            json!({ "name": "Probe detection", "detectionIds": [t.detection] }),
            Some("NOT_FOUND"),
        ),
        ("revokeApiToken", "revokeApiToken", json!({ "tokenId": t.token }), None),
        ("createApiToken", "createApiToken", json!({ "userId": t.user, "name": "stolen" }), None),
    ]
}

fn selection(mutation: &str) -> &'static str {
    match mutation {
        "deleteCases" => "deletedIds",
        "revokeApiToken" => "tokenId",
        "createApiToken" => "tokenId token",
        _ => "case { id version detectionCount }",
    }
}

async fn a_tokens(app: &TestApp) -> i64 {
    use casefile::db::schema::api_tokens;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    api_tokens::table
        .filter(api_tokens::tenant_id.eq(app.tenant_id.0))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count tokens")
}

#[tokio::test]
async fn mutations_on_another_tenants_ids_answer_like_missing_ids_and_change_nothing() {
    let t = TwoTenants::new().await;
    let own_case = t.b_case("B's case").await;
    let own_id = own_case["id"].as_str().expect("id");
    let tokens_before = a_tokens(&t.app).await;
    let fresh = t.fresh();

    let mut failures = Vec::new();
    for ((what, mutation, input, spec_code), (_, _, fresh_input, _)) in
        probes(&t.a, own_id).into_iter().zip(probes(&fresh, own_id))
    {
        let with_a = t.app.mutate(&t.b_token, mutation, input, selection(mutation)).await;
        let with_fresh = t.app.mutate(&t.b_token, mutation, fresh_input, selection(mutation)).await;
        let answer = |body: &Value| {
            (error_code(body).map(str::to_owned), error_field(body).map(str::to_owned))
        };
        if error_code(&with_a).is_none() {
            failures.push(format!("{what}: succeeded with A's ids: {with_a}"));
        } else if answer(&with_a) != answer(&with_fresh) {
            failures
                .push(format!("{what}: A's ids answer {with_a}, missing ids answer {with_fresh}"));
        } else if spec_code.is_some_and(|code| error_code(&with_a) != Some(code)) {
            failures.push(format!("{what}: expected {spec_code:?}, got {with_a}"));
        }
    }
    assert!(failures.is_empty(), "cross-tenant probes:\n{}", failures.join("\n"));

    // A's case, detections and token are as they were; B's case too, and B made no case.
    assert_eq!(t.app.read_case(&t.a.case).await, t.a_case, "A's case changed");
    let (_, body) = t
        .app
        .graphql(
            &t.app.admin_token,
            "query($id: ID!) { detection(id: $id) { id } }",
            json!({ "id": t.a.detection }),
        )
        .await;
    assert_eq!(body["data"]["detection"]["id"], json!(t.a.detection));
    let (status, _) = t.app.graphql(&t.a_token_secret, "{ viewer { id } }", json!({})).await;
    assert_eq!(status, 200, "A's token still works");
    assert_eq!(a_tokens(&t.app).await, tokens_before, "no token was made in A");
    let query = format!("query($id: ID!) {{ case(id: $id) {{ {CASE_FIELDS} }} }}");
    let body = t.as_b(&query, json!({ "id": own_id })).await;
    assert_eq!(body["data"]["case"], own_case, "B's own case changed");
    let query = format!("{{ cases(filter: {{ status: {ALL_STATUSES} }}) {{ totalCount }} }}");
    let body = t.as_b(&query, json!({})).await;
    assert_eq!(body["data"]["cases"]["totalCount"], 1, "B created no case: {body}");
}

/// Ingests the detection whose external id A already has, with this risk score.
async fn ingest_shared(app: &TestApp, token: &str, score: i32) -> Value {
    app.mutate(
        token,
        "ingestDetections",
        json!({ "detections": [detection("shared-ext-1", score)] }),
        "accepted duplicates detections { id riskScore subject { id } }",
    )
    .await
}

#[tokio::test]
async fn the_same_external_id_and_source_in_another_tenant_is_a_new_detection() {
    let t = TwoTenants::new().await;
    let body = ingest_shared(&t.app, &t.b_token, 5).await;
    let payload = &body["data"]["ingestDetections"];
    assert_eq!((&payload["accepted"], &payload["duplicates"]), (&json!(1), &json!(0)), "{body}");
    let b_detection = &payload["detections"][0];
    assert_ne!(b_detection["id"], json!(t.a.detection));
    assert_eq!(b_detection["riskScore"], 5);
    assert_eq!(b_detection["subject"], Value::Null, "A's subject with that username is not B's");

    // In A the same key is a duplicate, and A's detection kept its score and subject.
    let body = ingest_shared(&t.app, &t.app.admin_token, 9).await;
    let payload = &body["data"]["ingestDetections"];
    assert_eq!((&payload["accepted"], &payload["duplicates"]), (&json!(0), &json!(1)), "{body}");
    assert_eq!(payload["detections"][0]["id"], json!(t.a.detection));
    assert_eq!(payload["detections"][0]["riskScore"], 2);
    assert_eq!(payload["detections"][0]["subject"]["id"], json!(t.a.subject));
}

#[tokio::test]
async fn another_tenant_may_name_a_case_like_one_of_ours() {
    let t = TwoTenants::new().await;
    let body = t
        .app
        .mutate(&t.b_token, "createCase", json!({ "name": A_CASE_NAME }), "case { id name number }")
        .await;
    let case = &body["data"]["createCase"]["case"];
    assert_eq!((&case["name"], &case["number"]), (&json!(A_CASE_NAME), &json!(1)), "{body}");
    assert_ne!(case["id"], json!(t.a.case));
    assert_eq!(t.app.read_case(&t.a.case).await, t.a_case);
}
