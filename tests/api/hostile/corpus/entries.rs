//! Malformed arguments: a wrong type for every kind of argument, huge strings and numbers,
//! deeply nested values, forged cursors and global ids (another tenant's, of the wrong
//! type, truncated, overlong, made up).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::graphql::nested;
use super::{Entry, Fixture, forge_cursor};

/// An operation with one variable `$v` of a kind of argument, and values of other types.
struct Kind {
    name: &'static str,
    query: &'static str,
    wrong: Vec<Value>,
}

const MB: usize = 1 << 20;

fn kinds() -> Vec<Kind> {
    let object = json!({ "a": 1 });
    vec![
        Kind {
            name: "ID",
            query: "query($v: ID!) { case(id: $v) { id } }",
            wrong: vec![Value::Null, json!(true), json!(1.5), json!([]), object.clone()],
        },
        Kind {
            name: "Int",
            query: "query($v: Int) { cases(first: $v) { totalCount } }",
            wrong: vec![
                json!("10"),
                json!(true),
                json!(1.5),
                json!(2_147_483_648_i64),
                json!(-2_147_483_649_i64),
                json!(u64::MAX),
                json!(1e300),
                json!(0),
                json!(-1),
                json!(101),
                json!("NaN"),
                json!("Infinity"),
                json!([10]),
                object.clone(),
            ],
        },
        Kind {
            name: "String",
            query: "query($v: String) { cases(after: $v) { totalCount } }",
            wrong: vec![json!(42), json!(true), json!([]), object.clone(), json!(["a"])],
        },
        Kind {
            name: "String!",
            query: "mutation($v: String!) { createCase(input: { name: $v }) { case { id } } }",
            wrong: vec![Value::Null, json!(42), json!(false), json!([]), object.clone()],
        },
        Kind {
            name: "Boolean",
            query: "query($v: Boolean) { users(assignable: $v) { totalCount } }",
            wrong: vec![json!("true"), json!(1), json!(0), json!([true]), object.clone()],
        },
        Kind {
            name: "enum",
            query: "query($v: StatsWindow!) { caseStats(window: $v) { __typename } }",
            wrong: vec![
                json!("P1D"),
                json!("p7d"),
                json!(7),
                json!(""),
                json!("P7D; drop table cases"),
                Value::Null,
                json!(["P7D"]),
            ],
        },
        Kind {
            name: "DateTime",
            query: "query($v: DateTime) { cases(filter: { createdAt: { from: $v } }) { totalCount } }",
            wrong: vec![
                json!("yesterday"),
                json!("2026-13-01T00:00:00Z"),
                json!("2026-02-30T00:00:00Z"),
                json!("2026-11-20T25:00:00Z"),
                json!("2026-11-20"),
                json!(1_700_000_000),
                json!(""),
                json!("-10000-01-01T00:00:00Z"),
                json!("+262143-12-31T23:59:59Z"),
                json!("+300000-01-01T00:00:00Z"),
                object.clone(),
            ],
        },
        Kind {
            name: "Date",
            query: "mutation($v: Date) { upsertSubject(input: { username: \"date-subject\", departureDate: $v }) { subject { id } } }",
            wrong: vec![
                json!("2026-02-30"),
                json!("2026-11-20T00:00:00Z"),
                json!("tomorrow"),
                json!(20261120),
                json!("-10000-01-01"),
                json!("+262143-12-31"),
            ],
        },
        Kind {
            name: "Float",
            query: "mutation($v: Float) { ingestDetections(input: { detections: [{ externalId: \"float-1\", source: XDR, ruleName: \"R\", observedAt: \"2026-11-20T10:00:00Z\", riskScore: 1, file: { name: \"f\", size: $v } }] }) { accepted } }",
            wrong: vec![
                json!("1.5"),
                json!(-1),
                json!(1.5),
                json!(1e300),
                json!(-0.5),
                json!(true),
            ],
        },
        Kind {
            name: "list",
            query: "query($v: [CaseStatus!]) { cases(filter: { status: $v }) { totalCount } }",
            wrong: vec![json!([null]), json!(["OPEN", 1]), json!([["NEW"]]), json!({ "0": "NEW" })],
        },
        Kind {
            name: "input object",
            query: "query($v: CaseFilter) { cases(filter: $v) { totalCount } }",
            wrong: vec![json!("search"), json!([]), json!({ "bogus": 1 }), json!({ "search": 1 })],
        },
    ]
}

/// A wrong value for each kind of argument; then values that are too big.
pub fn entries(fixture: &Fixture) -> Vec<Entry> {
    let mut entries = Vec::new();
    for kind in kinds() {
        for value in kind.wrong {
            entries.push(Entry::op(
                format!("{} given {value}", kind.name),
                kind.query,
                json!({ "v": value }),
            ));
        }
    }
    entries.extend(huge());
    entries.extend(cursors(fixture));
    entries.extend(ids(fixture));
    entries
}

/// Huge strings, numbers and nesting where the types are right.
fn huge() -> Vec<Entry> {
    let big = "x".repeat(MB);
    let create = "mutation($v: CreateCaseInput!) { createCase(input: $v) { case { id } } }";
    let ingest = "mutation($v: [DetectionInput!]!) { ingestDetections(input: { detections: $v }) { accepted } }";
    let detection = |edit: &dyn Fn(&mut Value)| {
        let mut d = json!({
            "externalId": "huge-1", "source": "XDR", "ruleName": "R",
            "observedAt": "2026-11-20T10:00:00Z", "riskScore": 1,
        });
        edit(&mut d);
        json!({ "v": [d] })
    };
    vec![
        Entry::op("a 1 MB case name", create, json!({ "v": { "name": big } })),
        Entry::op(
            "a 1 MB case description",
            create,
            json!({ "v": { "name": "n", "description": big } }),
        ),
        Entry::op("a blank case name", create, json!({ "v": { "name": " \t\n " } })),
        Entry::op("a case name of NUL", create, json!({ "v": { "name": "\u{0}" } })),
        Entry::op(
            "1 MB findings",
            "mutation($v: UpdateCaseInput!) { updateCase(input: $v) { case { id } } }",
            json!({ "v": { "id": "x", "findings": big } }),
        ),
        Entry::op(
            "a 1 MB search",
            "query($v: String) { cases(filter: { search: $v }) { totalCount } }",
            json!({ "v": big }),
        ),
        Entry::op(
            "a 1 MB name filter",
            "query($v: String) { cases(filter: { nameContains: $v }) { totalCount } }",
            json!({ "v": big }),
        ),
        Entry::op(
            "a 1 MB message",
            "mutation($v: String!) { postMessage(input: { caseId: \"x\", body: $v }) { message { id } } }",
            json!({ "v": big }),
        ),
        Entry::op(
            "a 1 MB subject username",
            "mutation($v: String!) { upsertSubject(input: { username: $v }) { subject { id } } }",
            json!({ "v": big }),
        ),
        Entry::op("a 1 MB rule name", ingest, detection(&|d| d["ruleName"] = json!(big))),
        Entry::op("a 1 MB external id", ingest, detection(&|d| d["externalId"] = json!(big))),
        Entry::op(
            "a risk score of 2^31",
            ingest,
            detection(&|d| d["riskScore"] = json!(2_147_483_648_i64)),
        ),
        Entry::op("a risk score of -1", ingest, detection(&|d| d["riskScore"] = json!(-1))),
        Entry::op("a risk score of 1e300", ingest, detection(&|d| d["riskScore"] = json!(1e300))),
        Entry::op(
            "an observedAt before year 0",
            ingest,
            detection(&|d| d["observedAt"] = json!("-10000-01-01T00:00:00Z")),
        ),
        Entry::op(
            "an observedAt in year 262143",
            ingest,
            detection(&|d| d["observedAt"] = json!("+262143-01-01T00:00:00Z")),
        ),
        Entry::op(
            "a file size of 1e300",
            ingest,
            detection(&|d| d["file"] = json!({ "name": "f", "size": 1e300 })),
        ),
        Entry::op("a NUL in a rule name", ingest, detection(&|d| d["ruleName"] = json!("a\u{0}b"))),
        Entry::op("a NUL in raw", ingest, detection(&|d| d["raw"] = json!({ "k": "a\u{0}b" }))),
        Entry::op("a NUL key in raw", ingest, detection(&|d| d["raw"] = json!({ "\u{0}": 1 }))),
        Entry::op(
            "a lone surrogate escape in raw",
            ingest,
            detection(&|d| d["raw"] = json!("\u{fffd}")),
        )
        .raw_variables(|t| t.replace("\u{fffd}", "\\ud800")),
        Entry::op("raw nested 10,000 deep", ingest, detection(&|d| d["raw"] = json!(null)))
            .raw_variables(|t| {
                t.replace("\"raw\":null", &format!("\"raw\":{}", nested("[", "1", "]", 10_000)))
            }),
        Entry::op(
            "10,000 watchlists",
            "mutation($v: [String!]) { upsertSubject(input: { username: \"w\", watchlists: $v }) { subject { id } } }",
            json!({ "v": vec!["w"; 10_000] }),
        ),
        Entry::op(
            "101 ids for nodes",
            "query($v: [ID!]!) { nodes(ids: $v) { id } }",
            json!({ "v": vec!["x"; 101] }),
        ),
        Entry::op(
            "a case number of 2^31",
            "query($v: Int) { case(number: $v) { id } }",
            json!({ "v": 2_147_483_648_i64 }),
        ),
        Entry::op("both id and number", "query { case(id: \"x\", number: 1) { id } }", json!({})),
        Entry::op(
            "an audit caseNumber of -0",
            "query($v: Int) { auditEvents(filter: { caseNumber: $v }) { totalCount } }",
            json!({}),
        )
        .raw_variables(|_| r#"{"v": -0.0}"#.to_owned()),
    ]
}

/// Cursors: another list's, truncated, overlong, not base64, and forged JSON whose key
/// the database cannot hold.
fn cursors(fixture: &Fixture) -> Vec<Entry> {
    let cases = "query($v: String) { cases(after: $v) { totalCount } }";
    let before = "query($v: String) { cases(last: 5, before: $v) { totalCount } }";
    let detections = "query($v: String) { detections(after: $v) { totalCount } }";
    let case_cursor = &fixture.case_cursor;
    let half = &case_cursor[..case_cursor.len() / 2];
    let b64 = |text: &str| URL_SAFE_NO_PAD.encode(text);
    let forged = |key: Value| forge_cursor(case_cursor, |c| c["k"] = key);
    let forged_detection = |key: Value| forge_cursor(&fixture.detection_cursor, |c| c["k"] = key);
    let all = [
        ("a detections cursor for cases", cases, fixture.detection_cursor.clone()),
        ("a cases cursor for detections", detections, case_cursor.clone()),
        ("a truncated cursor", cases, half.to_owned()),
        ("an overlong cursor", cases, case_cursor.repeat(100)),
        ("a cursor that is not base64", cases, "!!not base64!!".to_owned()),
        ("a cursor of empty JSON", cases, b64("{}")),
        ("a cursor of JSON null", cases, b64("null")),
        ("a cursor of random bytes", cases, URL_SAFE_NO_PAD.encode([0xff, 0x00, 0x13, 0x37, 0xfe])),
        ("a cursor with a NUL", cases, format!("{case_cursor}\u{0}")),
        (
            "a cursor of another order",
            cases,
            forge_cursor(case_cursor, |c| c["o"] = json!("case:bogus:ASC")),
        ),
        (
            "a cursor with SQL for its order",
            cases,
            forge_cursor(case_cursor, |c| c["o"] = json!("'; drop table cases; --")),
        ),
        ("a cursor with a text key for a time order", cases, forged(json!({ "s": "x" }))),
        (
            "a cursor with a time before year -4713",
            cases,
            forged(json!({ "d": "-10000-01-01T00:00:00Z" })),
        ),
        (
            "a cursor with a time after year 262142",
            cases,
            forged(json!({ "d": "+262143-01-01T00:00:00Z" })),
        ),
        (
            "a backward cursor with a time before year -4713",
            before,
            forged(json!({ "d": "-10000-01-01T00:00:00Z" })),
        ),
        (
            "a detections cursor with a time before year -4713",
            detections,
            forged_detection(json!({ "d": "-10000-01-01T00:00:00Z" })),
        ),
        (
            "a cursor with a huge tie-breaker",
            cases,
            forge_cursor(case_cursor, |c| c["t"] = json!({ "n": u64::MAX })),
        ),
        (
            "a cursor with an id tie for a number order",
            cases,
            forge_cursor(case_cursor, |c| {
                c["t"] = json!({ "u": "00000000-0000-0000-0000-000000000000" })
            }),
        ),
    ];
    let mut entries: Vec<Entry> = all
        .into_iter()
        .map(|(name, query, cursor)| Entry::op(name, query, json!({ "v": cursor })))
        .collect();
    // Text-keyed orders: a key with a NUL, or a huge key.
    let by_name = "query($v: String) { cases(after: $v, orderBy: { field: NAME, direction: ASC }) { totalCount } }";
    let name_key = |key: Value| forge_cursor(&fixture.name_cursor, |c| c["k"] = key);
    entries.push(Entry::op(
        "a name cursor with a NUL in its key",
        by_name,
        json!({ "v": name_key(json!({ "s": "a\u{0}b" })) }),
    ));
    entries.push(Entry::op(
        "a name cursor with a 1 KB key",
        by_name,
        json!({ "v": name_key(json!({ "s": "x".repeat(1024) })) }),
    ));
    entries
}

/// Global ids: another tenant's, of the wrong type, truncated, overlong, made up.
fn ids(fixture: &Fixture) -> Vec<Entry> {
    let b64 = |text: &str| URL_SAFE_NO_PAD.encode(text);
    let case = "query($v: ID!) { case(id: $v) { id } }";
    let node = "query($v: ID!) { node(id: $v) { id } }";
    let detection = "query($v: ID!) { detection(id: $v) { id } }";
    let reads = [
        ("another tenant's case", case, "case", fixture.foreign_case_id.clone()),
        ("another tenant's case as a node", node, "node", fixture.foreign_case_id.clone()),
        (
            "another tenant's detection",
            detection,
            "detection",
            fixture.foreign_detection_id.clone(),
        ),
        ("a detection id for a case", case, "case", fixture.detection_id.clone()),
        ("a case id for a detection", detection, "detection", fixture.case_id.clone()),
        (
            "a truncated case id",
            case,
            "case",
            fixture.case_id[..fixture.case_id.len() - 4].to_owned(),
        ),
        ("an overlong case id", node, "node", fixture.case_id.repeat(1000)),
        (
            "an id of a made-up type",
            node,
            "node",
            b64("Bogus:00000000-0000-0000-0000-000000000000"),
        ),
        ("an id of a case that is not a uuid", node, "node", b64("Case:'; drop table cases; --")),
        ("an id of an empty string", node, "node", String::new()),
        ("an id of SQL", case, "case", "' OR 1=1 --".to_owned()),
    ];
    let mut entries: Vec<Entry> = reads
        .into_iter()
        .map(|(name, query, field, id)| Entry::null(name, field, query, json!({ "v": id })))
        .collect();
    // A NUL is no text the database holds: refused before any lookup.
    entries.push(Entry::op(
        "an id with a NUL",
        node,
        json!({ "v": format!("{}\u{0}", fixture.case_id) }),
    ));
    let update =
        "mutation($v: ID!) { updateCase(input: { id: $v, name: \"Taken over\" }) { case { id } } }";
    let post = "mutation($v: ID!) { postMessage(input: { caseId: $v, body: \"hello\" }) { message { id } } }";
    let add = "mutation($c: ID!, $d: ID!) { addDetectionsToCase(input: { caseId: $c, detectionIds: [$d] }) { case { id } } }";
    let create = "mutation($v: ID!) { createCase(input: { name: \"With a foreign detection\", detectionIds: [$v] }) { case { id } } }";
    let writes = [
        ("updating another tenant's case", update, json!({ "v": fixture.foreign_case_id })),
        ("updating a detection as a case", update, json!({ "v": fixture.detection_id })),
        ("updating a truncated id", update, json!({ "v": &fixture.case_id[..8] })),
        ("a message on another tenant's case", post, json!({ "v": fixture.foreign_case_id })),
        ("a message on an overlong id", post, json!({ "v": fixture.case_id.repeat(1000) })),
        (
            "adding another tenant's detection",
            add,
            json!({ "c": fixture.case_id, "d": fixture.foreign_detection_id }),
        ),
        (
            "adding to another tenant's case",
            add,
            json!({ "c": fixture.foreign_case_id, "d": fixture.detection_id }),
        ),
        (
            "a case with another tenant's detection",
            create,
            json!({ "v": fixture.foreign_detection_id }),
        ),
        ("a case with a case id as a detection", create, json!({ "v": fixture.case_id })),
        (
            "an assignee of a made-up id",
            "mutation($v: ID!) { createCase(input: { name: \"Assigned\", assigneeId: $v }) { case { id } } }",
            json!({ "v": b64("User:00000000-0000-0000-0000-000000000000") }),
        ),
    ];
    entries.extend(
        writes.into_iter().map(|(name, query, variables)| Entry::op(name, query, variables)),
    );
    entries
}

impl Entry {
    /// The same entry with its variables' JSON text rewritten (for values `serde_json`
    /// cannot hold: numbers beyond a double, lone surrogates, nesting past its limit).
    fn raw_variables(self, edit: impl FnOnce(&str) -> String) -> Self {
        match self.sent {
            super::Sent::Operation(query, variables) => {
                let variables = edit(&variables.to_string());
                let query = serde_json::to_string(&query).expect("a string");
                Entry::body(self.name, format!(r#"{{"query": {query}, "variables": {variables}}}"#))
            }
            _ => self,
        }
    }
}
