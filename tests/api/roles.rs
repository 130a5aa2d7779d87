//! Who may do what: every query and every mutation tried by every role, as the "Roles"
//! table of the issue 3 decisions says. A refused operation answers `FORBIDDEN` and
//! changes nothing; an allowed one does what its payload says.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::TestApp;
use crate::common::fixtures::{CASE_FIELDS, detection, error_code};
use casefile::graphql::ids::{self, Kind};
use casefile::models::tenants::License;
use casefile::models::users::Role;

use Role::{Admin, Analyst, Ingest, ProviderAnalyst, ReadOnly, SuperAdmin};

/// Every role but the integrations' may read.
const READERS: &[Role] = &[Admin, Analyst, SuperAdmin, ReadOnly, ProviderAnalyst];
/// Create and edit self-managed cases, detections on cases, subjects.
const EDITORS: &[Role] = &[Admin, Analyst, SuperAdmin];
/// Resolve, archive and delete self-managed cases.
const CLOSERS: &[Role] = &[Admin, Analyst];
/// Set the status of (and resolve) service requests.
const PROVIDERS: &[Role] = &[Admin, ProviderAnalyst];
const INGESTERS: &[Role] = &[Admin, Analyst, Ingest];
const ADMINS: &[Role] = &[Admin];
const EVERYONE: &[Role] = Role::ALL;

const ALL_STATUSES: &str = "[NEW INVESTIGATING ON_HOLD ACTION_REQUIRED RESOLVED ARCHIVED]";
const FLAGS: &str =
    "viewerCanEdit viewerCanResolve viewerCanArchive viewerCanDelete viewerCanPostMessage";

/// A user of the tenant with one role, and its token.
struct Actor {
    role: Role,
    /// The user's global id.
    id: String,
    token: String,
}

async fn actors(app: &TestApp, tenant: casefile::models::ids::TenantId) -> Vec<Actor> {
    let mut actors = Vec::new();
    for &role in Role::ALL {
        let (user, token) = app.create_user(tenant, role).await;
        actors.push(Actor { role, id: ids::encode(Kind::User, user.0).0, token });
    }
    actors
}

/// A short random suffix, so every attempt gets targets of its own.
fn unique(prefix: &str) -> String {
    format!("{prefix} {}", &Uuid::new_v4().simple().to_string()[..12])
}

/// The case with this id read back with `token` (null when it is gone).
async fn read_case_as(app: &TestApp, token: &str, id: &Value) -> Value {
    let query = format!("query($id: ID!) {{ case(id: $id) {{ {CASE_FIELDS} }} }}");
    let (status, body) = app.graphql(token, &query, json!({ "id": id })).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["case"].clone()
}

// ---------------------------------------------------------------------------------------
// Queries

/// What the admin put in the tenant before the roles read it.
struct Seed {
    case_id: String,
    detection_id: String,
    subject_id: String,
    subject_username: String,
}

/// One query, the roles that may run it, and the value an allowed role must get.
struct QueryRule {
    name: &'static str,
    allowed: &'static [Role],
    query: &'static str,
    vars: fn(&Seed) -> Value,
    /// JSON pointer into `data`.
    answer: &'static str,
    expected: fn(&Seed, Role) -> Value,
}

#[rustfmt::skip]
const QUERY_RULES: &[QueryRule] = &[
    QueryRule { name: "case", allowed: READERS, query: "query($id: ID!) { case(id: $id) { id } }",
        vars: |s| json!({ "id": s.case_id }), answer: "/case/id", expected: |s, _| json!(s.case_id) },
    QueryRule { name: "cases", allowed: READERS, query: "{ cases { nodes { id } } }",
        vars: |_| json!({}), answer: "/cases/nodes/0/id", expected: |s, _| json!(s.case_id) },
    QueryRule { name: "detection", allowed: READERS, query: "query($id: ID!) { detection(id: $id) { id } }",
        vars: |s| json!({ "id": s.detection_id }), answer: "/detection/id", expected: |s, _| json!(s.detection_id) },
    QueryRule { name: "detections", allowed: READERS, query: "{ detections { nodes { id } } }",
        vars: |_| json!({}), answer: "/detections/nodes/0/id", expected: |s, _| json!(s.detection_id) },
    QueryRule { name: "subject", allowed: READERS, query: "query($id: ID!) { subject(id: $id) { username } }",
        vars: |s| json!({ "id": s.subject_id }), answer: "/subject/username", expected: |s, _| json!(s.subject_username) },
    QueryRule { name: "subjects", allowed: READERS, query: "{ subjects { nodes { id } } }",
        vars: |_| json!({}), answer: "/subjects/nodes/0/id", expected: |s, _| json!(s.subject_id) },
    // The bootstrap admin and one user per role.
    QueryRule { name: "users", allowed: READERS, query: "{ users { totalCount } }",
        vars: |_| json!({}), answer: "/users/totalCount", expected: |_, _| json!(1 + Role::ALL.len()) },
    QueryRule { name: "node", allowed: READERS, query: "query($id: ID!) { node(id: $id) { id } }",
        vars: |s| json!({ "id": s.case_id }), answer: "/node/id", expected: |s, _| json!(s.case_id) },
    QueryRule { name: "nodes", allowed: READERS, query: "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        vars: |s| json!({ "ids": [s.case_id, s.subject_id] }), answer: "/nodes",
        expected: |s, _| json!([{ "id": s.case_id }, { "id": s.subject_id }]) },
    QueryRule { name: "tenant", allowed: READERS, query: "{ tenant { name } }",
        vars: |_| json!({}), answer: "/tenant/name", expected: |_, _| json!("Default") },
    QueryRule { name: "viewer", allowed: EVERYONE, query: "{ viewer { role } }",
        vars: |_| json!({}), answer: "/viewer/role", expected: |_, role| json!(role.as_str()) },
    // Every user reads its own tokens (the test harness names each user's token "test").
    QueryRule { name: "viewer.apiTokens", allowed: EVERYONE, query: "{ viewer { apiTokens { name } } }",
        vars: |_| json!({}), answer: "/viewer/apiTokens", expected: |_, _| json!([{ "name": "test" }]) },
];

#[tokio::test]
async fn every_query_is_allowed_to_every_role_but_ingest_and_viewer_to_all() {
    let app = TestApp::new().await;
    let admin = app.admin_token.clone();
    let detection_id = app.ingest(&admin, vec![detection("roles-query-1", 2)]).await.remove(0);
    let subject = app
        .mutate(
            &admin,
            "upsertSubject",
            json!({ "username": "alice@example.test" }),
            "subject { id }",
        )
        .await;
    let case = app
        .create_case(&admin, json!({ "name": "Seen by all", "detectionIds": [detection_id] }))
        .await;
    let seed = Seed {
        case_id: case["id"].as_str().expect("case id").to_owned(),
        detection_id,
        subject_id: subject["data"]["upsertSubject"]["subject"]["id"]
            .as_str()
            .expect("subject id")
            .to_owned(),
        subject_username: "alice@example.test".to_owned(),
    };
    let actors = actors(&app, app.tenant_id).await;

    let mut failures = Vec::new();
    for rule in QUERY_RULES {
        for actor in &actors {
            let (status, body) = app.graphql(&actor.token, rule.query, (rule.vars)(&seed)).await;
            let who = format!("{} {}", actor.role.as_str(), rule.name);
            if status != 200 {
                failures.push(format!("{who}: HTTP {status} {body}"));
            } else if rule.allowed.contains(&actor.role) {
                let got = body["data"].pointer(rule.answer).cloned().unwrap_or(Value::Null);
                let expected = (rule.expected)(&seed, actor.role);
                if body.get("errors").is_some() || got != expected {
                    failures.push(format!("{who}: should answer {expected}, got {body}"));
                }
            } else if error_code(&body) != Some("FORBIDDEN") {
                failures.push(format!("{who}: should be FORBIDDEN, got {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "query rule violations:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Mutations

#[derive(Debug, Clone, Copy)]
enum Mutation {
    CreateCase,
    UpdateCase,
    ResolveCase,
    ArchiveCase,
    DeleteCases,
    AddDetectionsToCase,
    RemoveDetectionsFromCase,
    SetCaseSubject,
    UpsertSubject,
    IngestDetections,
    CreateUser,
    CreateApiToken,
    /// `revokeApiToken` of a token of the caller's own user.
    RevokeOwnApiToken,
    /// `revokeApiToken` of another user's token.
    RevokeOthersApiToken,
    UpdateTenantPolicies,
    UpdateUser,
}

/// The mutations on self-managed cases and the tenant, and who may run them.
const MUTATION_RULES: &[(Mutation, &[Role])] = &[
    (Mutation::CreateCase, EDITORS),
    (Mutation::UpdateCase, EDITORS),
    (Mutation::ResolveCase, CLOSERS),
    (Mutation::ArchiveCase, CLOSERS),
    (Mutation::DeleteCases, CLOSERS),
    (Mutation::AddDetectionsToCase, EDITORS),
    (Mutation::RemoveDetectionsFromCase, EDITORS),
    (Mutation::SetCaseSubject, EDITORS),
    (Mutation::UpsertSubject, EDITORS),
    (Mutation::IngestDetections, INGESTERS),
    (Mutation::CreateUser, ADMINS),
    (Mutation::CreateApiToken, ADMINS),
    (Mutation::RevokeOwnApiToken, EVERYONE),
    (Mutation::RevokeOthersApiToken, ADMINS),
    (Mutation::UpdateTenantPolicies, ADMINS),
    (Mutation::UpdateUser, ADMINS),
];

/// One role's try at one mutation, on a target of its own.
struct Attempt {
    body: Value,
    /// What the payload reports, and what it must report when the role may do this.
    reported: Value,
    expected: Value,
    /// Whether the target, read back as the admin afterwards, differs from before.
    changed: bool,
}

impl Attempt {
    fn new(body: Value, answer: &str, expected: Value, changed: bool) -> Self {
        let reported = body["data"].pointer(answer).cloned().unwrap_or(Value::Null);
        Attempt { body, reported, expected, changed }
    }

    /// What is wrong with this attempt, if anything.
    fn violation(&self, allowed: bool) -> Option<String> {
        if allowed {
            if self.body.get("errors").is_some() {
                Some(format!("should be allowed, got {}", self.body))
            } else if self.reported != self.expected {
                Some(format!("payload says {} instead of {}", self.reported, self.expected))
            } else if !self.changed {
                Some("succeeded but changed nothing".to_owned())
            } else {
                None
            }
        } else if error_code(&self.body) != Some("FORBIDDEN") {
            Some(format!("should be FORBIDDEN, got {}", self.body))
        } else if self.changed {
            Some("was refused but changed its target".to_owned())
        } else {
            None
        }
    }
}

async fn fresh_case(app: &TestApp, input: Value) -> Value {
    let mut input = input;
    input["name"] = json!(unique("Target"));
    app.create_case(&app.admin_token.clone(), input).await
}

async fn fresh_detection(app: &TestApp) -> String {
    let external_id = unique("roles").replace(' ', "-");
    app.ingest(&app.admin_token.clone(), vec![detection(&external_id, 2)]).await.remove(0)
}

/// Runs `query` as the admin and returns the number at `pointer` in `data`.
async fn admin_number(app: &TestApp, query: &str, pointer: &str) -> i64 {
    app.query_ok(query).await.pointer(pointer).and_then(Value::as_i64).expect(pointer)
}

async fn cases_named(app: &TestApp, name: &str) -> i64 {
    let query = format!(
        "{{ cases(filter: {{ nameContains: {name:?}, status: {ALL_STATUSES} }}) {{ totalCount }} }}"
    );
    admin_number(app, &query, "/cases/totalCount").await
}

async fn stored_tokens(app: &TestApp) -> i64 {
    use casefile::db::schema::api_tokens;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut conn = app.conn().await;
    api_tokens::table.count().get_result(&mut conn).await.expect("count tokens")
}

async fn authenticates(app: &TestApp, token: &str) -> bool {
    app.graphql(token, "{ viewer { id } }", json!({})).await.0 == 200
}

/// A new token of `user`, made by the admin: its global id and its secret.
async fn token_of(app: &TestApp, user: &str) -> (String, String) {
    let body = app
        .mutate(
            &app.admin_token,
            "createApiToken",
            json!({ "userId": user, "name": "to revoke" }),
            "tokenId token",
        )
        .await;
    let payload = &body["data"]["createApiToken"];
    let (id, secret) = (payload["tokenId"].as_str(), payload["token"].as_str());
    (id.expect("token id").to_owned(), secret.expect("token").to_owned())
}

/// `mutation` on a case as `token`, then the case read back as the admin. `answer` is
/// a pointer into the mutation's payload.
async fn on_case(
    app: &TestApp,
    token: &str,
    case: &Value,
    mutation: &str,
    input: Value,
    answer: &str,
    expected: Value,
) -> Attempt {
    let selection = match mutation {
        "deleteCases" => "deletedIds".to_owned(),
        _ => format!("case {{ {CASE_FIELDS} }}"),
    };
    let body = app.mutate(token, mutation, input, &selection).await;
    let changed = app.read_case(case["id"].as_str().expect("case id")).await != *case;
    Attempt::new(body, &format!("/{mutation}{answer}"), expected, changed)
}

async fn attempt(app: &TestApp, mutation: Mutation, actor: &Actor, subject_id: &str) -> Attempt {
    let token = actor.token.as_str();
    match mutation {
        Mutation::CreateCase => {
            let name = unique("Created");
            let body =
                app.mutate(token, "createCase", json!({ "name": name }), "case { name }").await;
            let changed = cases_named(app, &name).await != 0;
            Attempt::new(body, "/createCase/case/name", json!(name), changed)
        }
        Mutation::UpdateCase => {
            let case = fresh_case(app, json!({})).await;
            let input = json!({ "id": case["id"], "description": "edited" });
            on_case(app, token, &case, "updateCase", input, "/case/description", json!("edited"))
                .await
        }
        Mutation::ResolveCase => {
            let case = fresh_case(app, json!({})).await;
            let input = json!({ "id": case["id"], "resolution": "FALSE_POSITIVE" });
            on_case(app, token, &case, "resolveCase", input, "/case/status", json!("RESOLVED"))
                .await
        }
        Mutation::ArchiveCase => {
            let case = fresh_case(app, json!({})).await;
            let input = json!({ "id": case["id"] });
            on_case(app, token, &case, "archiveCase", input, "/case/status", json!("ARCHIVED"))
                .await
        }
        Mutation::DeleteCases => {
            let case = fresh_case(app, json!({})).await;
            let (input, deleted) = (json!({ "ids": [case["id"]] }), json!([case["id"]]));
            on_case(app, token, &case, "deleteCases", input, "/deletedIds", deleted).await
        }
        Mutation::AddDetectionsToCase => {
            let case = fresh_case(app, json!({})).await;
            let input =
                json!({ "caseId": case["id"], "detectionIds": [fresh_detection(app).await] });
            let (answer, one) = ("/case/detectionCount", json!(1));
            on_case(app, token, &case, "addDetectionsToCase", input, answer, one).await
        }
        Mutation::RemoveDetectionsFromCase => {
            let detection_id = fresh_detection(app).await;
            let case = fresh_case(app, json!({ "detectionIds": [detection_id] })).await;
            let input = json!({ "caseId": case["id"], "detectionIds": [detection_id] });
            let (answer, none) = ("/case/detectionCount", json!(0));
            on_case(app, token, &case, "removeDetectionsFromCase", input, answer, none).await
        }
        Mutation::SetCaseSubject => {
            let case = fresh_case(app, json!({})).await;
            let input = json!({ "caseId": case["id"], "subjectId": subject_id });
            let (answer, subject) = ("/case/subject/id", json!(subject_id));
            on_case(app, token, &case, "setCaseSubject", input, answer, subject).await
        }
        Mutation::UpsertSubject => {
            let username = format!("{}@example.test", unique("s").replace(' ', "-"));
            let input = json!({ "username": username, "displayName": "Someone" });
            let body = app.mutate(token, "upsertSubject", input, "subject { username }").await;
            let query = format!("{{ subject(username: {username:?}) {{ id }} }}");
            let changed = !app.query_ok(&query).await["subject"].is_null();
            Attempt::new(body, "/upsertSubject/subject/username", json!(username), changed)
        }
        Mutation::IngestDetections => {
            let count = "{ detections { totalCount } }";
            let before = admin_number(app, count, "/detections/totalCount").await;
            let external_id = unique("ingest").replace(' ', "-");
            let input = json!({ "detections": [detection(&external_id, 2)] });
            let body = app.mutate(token, "ingestDetections", input, "accepted duplicates").await;
            let changed = admin_number(app, count, "/detections/totalCount").await != before;
            Attempt::new(body, "/ingestDetections/accepted", json!(1), changed)
        }
        Mutation::CreateUser => {
            let count = "{ users { totalCount } }";
            let before = admin_number(app, count, "/users/totalCount").await;
            let email = format!("{}@example.test", unique("new").replace(' ', "-"));
            let input = json!({ "email": email, "displayName": "New user", "role": "ANALYST" });
            let body = app.mutate(token, "createUser", input, "user { email }").await;
            let changed = admin_number(app, count, "/users/totalCount").await != before;
            Attempt::new(body, "/createUser/user/email", json!(email), changed)
        }
        Mutation::CreateApiToken => {
            // Not even for oneself.
            let before = stored_tokens(app).await;
            let input = json!({ "userId": actor.id, "name": "minted" });
            let mut body = app.mutate(token, "createApiToken", input, "tokenId token").await;
            let changed = stored_tokens(app).await != before;
            // The new token must be the actor's user's.
            if let Some(secret) = body["data"]["createApiToken"]["token"].as_str() {
                let (_, who) = app.graphql(secret, "{ viewer { id } }", json!({})).await;
                body["data"]["createApiToken"]["viewer"] = who["data"]["viewer"]["id"].clone();
            }
            Attempt::new(body, "/createApiToken/viewer", json!(actor.id), changed)
        }
        Mutation::RevokeOwnApiToken => {
            let (token_id, secret) = token_of(app, &actor.id).await;
            let body = app
                .mutate(&secret, "revokeApiToken", json!({ "tokenId": token_id }), "tokenId")
                .await;
            let changed = !authenticates(app, &secret).await;
            Attempt::new(body, "/revokeApiToken/tokenId", json!(token_id), changed)
        }
        Mutation::RevokeOthersApiToken => {
            let admin_id = ids::encode(Kind::User, app.admin_id.0).0;
            let (token_id, secret) = token_of(app, &admin_id).await;
            let body = app
                .mutate(token, "revokeApiToken", json!({ "tokenId": token_id }), "tokenId")
                .await;
            let changed = !authenticates(app, &secret).await;
            Attempt::new(body, "/revokeApiToken/tokenId", json!(token_id), changed)
        }
        Mutation::UpdateTenantPolicies => {
            let days = "{ tenant { retention { archiveAfterDays } } }";
            let pointer = "/tenant/retention/archiveAfterDays";
            let before = admin_number(app, days, pointer).await;
            let input = json!({ "archiveAfterDays": before + 1 });
            let selection = "tenant { retention { archiveAfterDays } }";
            let body = app.mutate(token, "updateTenantPolicies", input, selection).await;
            let changed = admin_number(app, days, pointer).await != before;
            Attempt::new(
                body,
                "/updateTenantPolicies/tenant/retention/archiveAfterDays",
                json!(before + 1),
                changed,
            )
        }
        Mutation::UpdateUser => {
            let (user, _) = app.create_user(app.tenant_id, Role::Analyst).await;
            let id = ids::encode(Kind::User, user.0).0;
            let name = unique("Renamed");
            let input = json!({ "id": id, "displayName": name });
            let body = app.mutate(token, "updateUser", input, "user { displayName }").await;
            let query = format!("{{ node(id: {id:?}) {{ ... on User {{ displayName }} }} }}");
            let changed = app.query_ok(&query).await["node"]["displayName"] != "Test user";
            Attempt::new(body, "/updateUser/user/displayName", json!(name), changed)
        }
    }
}

#[tokio::test]
async fn every_mutation_is_allowed_exactly_to_its_roles_and_refused_ones_change_nothing() {
    let app = TestApp::new().await;
    let subject = app
        .mutate(
            &app.admin_token,
            "upsertSubject",
            json!({ "username": "bob@example.test" }),
            "subject { id }",
        )
        .await;
    let subject_id =
        subject["data"]["upsertSubject"]["subject"]["id"].as_str().expect("subject").to_owned();
    let actors = actors(&app, app.tenant_id).await;

    let mut failures = Vec::new();
    for &(mutation, allowed) in MUTATION_RULES {
        for actor in &actors {
            let tried = attempt(&app, mutation, actor, &subject_id).await;
            if let Some(problem) = tried.violation(allowed.contains(&actor.role)) {
                failures.push(format!("{} {mutation:?}: {problem}", actor.role.as_str()));
            }
        }
    }
    assert!(failures.is_empty(), "mutation rule violations:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn the_role_check_comes_before_looking_up_the_target() {
    let app = TestApp::new().await;
    let gone = app.case_named("Soon gone").await;
    let body = app
        .mutate(&app.admin_token, "deleteCases", json!({ "ids": [gone["id"]] }), "deletedIds")
        .await;
    assert_eq!(body["data"]["deleteCases"]["deletedIds"], json!([gone["id"]]), "{body}");
    let (_, read_only) = app.create_user(app.tenant_id, ReadOnly).await;
    let (_, super_admin) = app.create_user(app.tenant_id, SuperAdmin).await;
    let (_, ingest) = app.create_user(app.tenant_id, Ingest).await;
    let id = &gone["id"];
    let rename = json!({ "id": id, "name": "Whatever" });
    let body = app.mutate(&app.admin_token, "updateCase", rename, "case { id }").await;
    assert_eq!(error_code(&body), Some("NOT_FOUND"), "the admin learns it is gone: {body}");
    let tries = [
        (&read_only, "updateCase", json!({ "id": id, "name": "Whatever" }), "case { id }"),
        (&read_only, "archiveCase", json!({ "id": id }), "case { id }"),
        (&read_only, "setCaseSubject", json!({ "caseId": id, "subjectId": null }), "case { id }"),
        (
            &ingest,
            "addDetectionsToCase",
            json!({ "caseId": id, "detectionIds": [] }),
            "case { id }",
        ),
        (
            &super_admin,
            "resolveCase",
            json!({ "id": id, "resolution": "INCONCLUSIVE" }),
            "case { id }",
        ),
        (&super_admin, "deleteCases", json!({ "ids": [id] }), "deletedIds"),
    ];
    for (token, mutation, input, selection) in tries {
        let body = app.mutate(token, mutation, input, selection).await;
        assert_eq!(error_code(&body), Some("FORBIDDEN"), "{mutation} on a missing case: {body}");
    }
}

// ---------------------------------------------------------------------------------------
// Service requests and super admins

/// Status changes in a tenant with the MDR license: (kind, mutation, change, payload
/// answer, who may).
#[rustfmt::skip]
const STATUS_RULES: &[(&str, &str, &str, &str, &[Role])] = &[
    ("MDR_SERVICE_REQUEST", "updateCase", r#"{ "status": "INVESTIGATING" }"#, "INVESTIGATING", PROVIDERS),
    ("MDR_SERVICE_REQUEST", "resolveCase", r#"{ "resolution": "THREAT_MITIGATED" }"#, "RESOLVED", PROVIDERS),
    ("SELF_MANAGED", "updateCase", r#"{ "status": "INVESTIGATING" }"#, "INVESTIGATING", EDITORS),
    ("SELF_MANAGED", "resolveCase", r#"{ "resolution": "THREAT_MITIGATED" }"#, "RESOLVED", CLOSERS),
];

#[tokio::test]
async fn provider_analysts_set_the_status_of_service_requests_but_not_of_self_managed_cases() {
    let app = TestApp::new().await;
    let tenant = app.create_tenant("Managed", &[License::Mdr]).await;
    let (_, tenant_admin) = app.create_user(tenant, Admin).await;
    let case_payload = format!("case {{ {CASE_FIELDS} }}");

    let mut failures = Vec::new();
    for actor in &actors(&app, tenant).await {
        for &(kind, mutation, change, status, allowed) in STATUS_RULES {
            let input = json!({ "kind": kind, "name": unique("Request"), "description": "Look" });
            let case = app.create_case(&tenant_admin, input).await;
            let mut change: Value = serde_json::from_str(change).expect("change");
            change["id"] = case["id"].clone();
            let body = app.mutate(&actor.token, mutation, change, &case_payload).await;
            let changed = read_case_as(&app, &tenant_admin, &case["id"]).await != case;
            let tried =
                Attempt::new(body, &format!("/{mutation}/case/status"), json!(status), changed);
            if let Some(problem) = tried.violation(allowed.contains(&actor.role)) {
                let role = actor.role.as_str();
                failures.push(format!("{role} {mutation} of a {kind} case: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "status rule violations:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_super_admin_edits_a_case_but_never_resolves_or_deletes_it() {
    let app = TestApp::new().await;
    let (_, super_admin) = app.create_user(app.tenant_id, SuperAdmin).await;
    let case = app.case_named("Partner view").await;
    let id = case["id"].as_str().expect("id");

    let edit = json!({ "id": id, "severity": "HIGH" });
    let body = app.mutate(&super_admin, "updateCase", edit, "case { severity version }").await;
    assert_eq!(
        body["data"]["updateCase"]["case"],
        json!({ "severity": "HIGH", "version": 2 }),
        "{body}"
    );

    let resolve = json!({ "id": id, "resolution": "FALSE_POSITIVE" });
    let body = app.mutate(&super_admin, "resolveCase", resolve, "case { status }").await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");
    let body = app.mutate(&super_admin, "deleteCases", json!({ "ids": [id] }), "deletedIds").await;
    assert_eq!(error_code(&body), Some("FORBIDDEN"), "{body}");

    let after = app.read_case(id).await;
    assert_eq!(
        (&after["status"], &after["version"], &after["severity"]),
        (&json!("NEW"), &json!(2), &json!("HIGH"))
    );
}

// ---------------------------------------------------------------------------------------
// viewerCan* flags

/// The flags a role must see on a self-managed case in `status`. Messages: ADMIN and
/// ANALYST ("messages"), SUPER_ADMIN ("read and edit") and PROVIDER_ANALYST ("post
/// messages") may post, and only while the case is open.
fn expected_flags(role: Role, status: &str) -> Value {
    let open = status == "NEW";
    let may = |roles: &[Role]| roles.contains(&role);
    json!({
        "viewerCanEdit": open && may(EDITORS),
        "viewerCanResolve": open && may(CLOSERS),
        "viewerCanArchive": status != "ARCHIVED" && may(CLOSERS),
        "viewerCanDelete": may(CLOSERS),
        "viewerCanPostMessage": open && may(&[Admin, Analyst, SuperAdmin, ProviderAnalyst]),
    })
}

#[tokio::test]
async fn the_viewer_can_flags_of_a_case_follow_the_role_matrix_and_its_status() {
    let app = TestApp::new().await;
    let admin = app.admin_token.clone();
    let open = app.case_named("Open one").await;
    let resolved = app.case_named("Resolved one").await;
    let resolve = json!({ "id": resolved["id"], "resolution": "AUTHORIZED_ACTIVITY" });
    let body = app.mutate(&admin, "resolveCase", resolve, "case { status }").await;
    assert_eq!(body["data"]["resolveCase"]["case"]["status"], "RESOLVED", "{body}");
    let archived = app.case_named("Archived one").await;
    let body =
        app.mutate(&admin, "archiveCase", json!({ "id": archived["id"] }), "case { status }").await;
    assert_eq!(body["data"]["archiveCase"]["case"]["status"], "ARCHIVED", "{body}");

    let query = format!("query($id: ID!) {{ case(id: $id) {{ {FLAGS} }} }}");
    let mut failures = Vec::new();
    for actor in &actors(&app, app.tenant_id).await {
        for (case, status) in [(&open, "NEW"), (&resolved, "RESOLVED"), (&archived, "ARCHIVED")] {
            let (_, body) = app.graphql(&actor.token, &query, json!({ "id": case["id"] })).await;
            let who = format!("{} on a {status} case", actor.role.as_str());
            if actor.role == Ingest {
                if error_code(&body) != Some("FORBIDDEN") {
                    failures.push(format!("{who}: should be FORBIDDEN, got {body}"));
                }
            } else if body["data"]["case"] != expected_flags(actor.role, status) {
                let expected = expected_flags(actor.role, status);
                failures.push(format!("{who}: expected {expected}, got {body}"));
            }
        }
    }
    assert!(failures.is_empty(), "flag violations:\n{}", failures.join("\n"));
}
