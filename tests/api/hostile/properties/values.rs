//! Strategies for hostile values: text with NULs, bidi marks, injection and huge lengths;
//! times and dates beyond any calendar the database keeps; numbers at every edge; random
//! JSON; and input objects of the schema with each field valid-looking or hostile.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::hostile::injection::PAYLOADS;

/// Text a client should not send but may: any string, NULs, marks, injection, long runs.
pub fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        2 => "\\PC{0,40}",
        1 => Just(String::new()),
        1 => Just(" \t\n\r ".to_owned()),
        2 => ("[a-z]{0,5}", "[a-z]{0,5}").prop_map(|(a, b)| format!("{a}\u{0}{b}")),
        1 => (0..4000usize).prop_map(|n| "x".repeat(n)),
        1 => Just("\u{202E}\u{FEFF}\u{200B}\u{2028}".to_owned()),
        2 => prop::sample::select(PAYLOADS.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["\\", "%", "_", "'", "\"", "*", "&", "!", "(", ":*"]).prop_map(str::to_owned),
    ]
}

/// An RFC 3339-looking time, often with a year the database cannot hold.
pub fn time_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (-300_000i32..300_000, 1..13u32, 1..32u32, 0..24u32)
            .prop_map(|(y, m, d, h)| format!("{y:+07}-{m:02}-{d:02}T{h:02}:00:00Z")),
        (0..10_000u32, 0..14u32, 0..33u32, 0..25u32, 0..61u32).prop_map(|(y, m, d, h, s)| format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:59:{s:02}.123456789Z"
        )),
        prop::sample::select(vec![
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:60Z",
            "-4713-11-24T00:00:00Z",
            "+262142-12-31T23:59:59Z",
            "-262143-01-01T00:00:00Z",
            "2026-11-20T10:00:00+23:59",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A date (`YYYY-MM-DD`), often out of range.
fn date_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (-300_000i32..300_000, 1..13u32, 1..32u32)
            .prop_map(|(y, m, d)| format!("{y:+07}-{m:02}-{d:02}")),
        (0..10_000u32, 0..14u32, 0..33u32).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
    ]
}

/// Integers at the edges of every width.
fn edge_int() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(1),
            json!(100),
            json!(101),
            json!(10_000),
            json!(2_147_483_647),
            json!(2_147_483_648_i64),
            json!(-2_147_483_649_i64),
            json!(9_007_199_254_740_993_i64),
            json!(u64::MAX),
            json!(1e300),
            json!(-0.0),
            json!(0.5),
            json!(9e15),
        ]),
    ]
}

/// A word of the schema's enums, or one like them.
fn enum_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "NEW",
            "RESOLVED",
            "ARCHIVED",
            "HIGH",
            "CRITICAL",
            "XDR",
            "FILE_ACTIVITY",
            "SELF_MANAGED",
            "MDR_SERVICE_REQUEST",
            "FALSE_POSITIVE",
            "EXACT_FILE_AVAILABLE",
            "USER",
            "SYSTEM",
            "P7D",
        ])
        .prop_map(str::to_owned),
        "[A-Z_]{1,12}",
    ]
}

/// A leaf value of any JSON type, hostile where it can be.
pub fn plausible() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => nasty_text().prop_map(Value::from),
        2 => time_text().prop_map(Value::from),
        1 => date_text().prop_map(Value::from),
        2 => edge_int(),
        2 => enum_word().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ]
}

/// Random JSON: hostile leaves in lists and objects (with hostile keys) a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    plausible().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((nasty_text(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A field: a valid-looking value most of the time, else any hostile leaf.
fn field(valid: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![4 => valid, 1 => plausible()].boxed()
}

fn text() -> BoxedStrategy<Value> {
    field(nasty_text().prop_map(Value::from))
}

fn one_of(words: &[&'static str]) -> BoxedStrategy<Value> {
    field(prop::sample::select(words.to_vec()).prop_map(Value::from))
}

fn many_of(words: &[&'static str]) -> BoxedStrategy<Value> {
    field(prop::collection::vec(prop::sample::select(words.to_vec()), 0..4).prop_map(|w| json!(w)))
}

fn range() -> BoxedStrategy<Value> {
    field(
        (prop::option::of(time_text()), prop::option::of(time_text()))
            .prop_map(|(from, to)| json!({ "from": from, "to": to })),
    )
}

/// An object of these fields, each present four times in five.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let (names, values): (Vec<&'static str>, Vec<BoxedStrategy<Value>>) =
        fields.into_iter().unzip();
    let present: Vec<_> = values.into_iter().map(|v| prop::option::weighted(0.8, v)).collect();
    present
        .prop_map(move |values| {
            let mut object = Map::new();
            for (name, value) in names.iter().zip(values) {
                if let Some(value) = value {
                    object.insert((*name).to_owned(), value);
                }
            }
            Value::Object(object)
        })
        .boxed()
}

const SEVERITIES: [&str; 5] = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];
const STATUSES: [&str; 6] =
    ["NEW", "INVESTIGATING", "ON_HOLD", "ACTION_REQUIRED", "RESOLVED", "ARCHIVED"];
const KINDS: [&str; 3] = ["SELF_MANAGED", "MDR_SERVICE_REQUEST", "MANAGED_RISK_SERVICE_REQUEST"];
const SOURCES: [&str; 4] = ["XDR", "FILE_ACTIVITY", "MDR", "MANAGED_RISK"];

/// A value for the schema's input type `name`, with these ids to refer to.
pub fn input_object(name: &str, case_id: &str, detection_id: &str) -> BoxedStrategy<Value> {
    let id = {
        let ids = vec![json!(case_id), json!(detection_id)];
        move || {
            field(
                prop_oneof![2 => prop::sample::select(ids.clone()), 1 => nasty_text().prop_map(Value::from)],
            )
        }
    };
    let int = || field(edge_int());
    let float = || {
        field(prop_oneof![
            edge_int(),
            any::<f64>()
                .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number))
        ])
    };
    let time = || field(time_text().prop_map(Value::from));
    let list = |item: BoxedStrategy<Value>| {
        field(prop::collection::vec(item, 0..4).prop_map(Value::Array))
    };
    match name {
        "CreateCaseInput" | "UpdateCaseInput" => {
            let mut fields = vec![
                ("name", text()),
                ("description", text()),
                ("severity", one_of(&SEVERITIES)),
                ("status", one_of(&STATUSES)),
                ("assigneeId", id()),
            ];
            if name == "CreateCaseInput" {
                fields.extend([
                    ("kind", one_of(&KINDS)),
                    ("subjectId", id()),
                    ("detectionIds", list(id())),
                ]);
            } else {
                fields.extend([("id", id()), ("expectedVersion", int()), ("findings", text())]);
            }
            object(fields)
        }
        "CaseFilter" => object(vec![
            ("status", many_of(&STATUSES)),
            ("kind", many_of(&KINDS)),
            ("severity", many_of(&SEVERITIES)),
            ("assigneeIds", list(id())),
            ("unassigned", field(any::<bool>().prop_map(Value::from))),
            ("subjectUsername", text()),
            ("nameContains", text()),
            ("search", text()),
            ("createdAt", range()),
            ("updatedAt", range()),
            ("archiveAt", range()),
            ("hasDetection", id()),
        ]),
        "DetectionFilter" => object(vec![
            ("source", many_of(&SOURCES)),
            ("minSeverity", one_of(&SEVERITIES)),
            ("observedAt", range()),
            ("actor", text()),
            ("deviceHostname", text()),
            ("ruleName", text()),
            ("sha256", text()),
            ("inCase", field(any::<bool>().prop_map(Value::from))),
        ]),
        "DetectionInput" => object(vec![
            ("externalId", text()),
            ("source", one_of(&SOURCES)),
            ("ruleName", text()),
            ("description", text()),
            ("observedAt", time()),
            ("riskScore", int()),
            ("riskIndicators", list(object(vec![("name", text()), ("weight", int())]))),
            (
                "device",
                object(vec![
                    ("id", text()),
                    ("hostname", text()),
                    ("type", text()),
                    ("ip", text()),
                ]),
            ),
            ("actor", text()),
            (
                "mitre",
                list(object(vec![
                    ("tacticId", text()),
                    ("tacticName", text()),
                    ("techniqueId", text()),
                    ("techniqueName", text()),
                ])),
            ),
            (
                "file",
                object(vec![
                    ("name", text()),
                    ("path", text()),
                    ("size", float()),
                    ("sha256", text()),
                    ("md5", text()),
                    ("mimeType", text()),
                    ("availability", one_of(&["EXACT_FILE_AVAILABLE", "PENDING", "ERROR"])),
                ]),
            ),
            ("raw", json_value().boxed()),
        ]),
        "UpsertSubjectInput" => object(vec![
            (
                "username",
                field(
                    prop_oneof!["[a-z]{1,8}@[a-z]{1,8}\\.test", nasty_text()].prop_map(Value::from),
                ),
            ),
            ("displayName", text()),
            ("department", text()),
            ("title", text()),
            ("location", text()),
            ("managerUsername", text()),
            ("departureDate", field(date_text().prop_map(Value::from))),
            ("watchlists", list(text())),
            ("notes", text()),
        ]),
        "PostMessageInput" => object(vec![("caseId", id()), ("body", text())]),
        "SubjectFilter" => object(vec![
            ("usernameContains", text()),
            ("department", text()),
            ("watchlist", text()),
        ]),
        "AuditEventFilter" => object(vec![
            ("caseNumber", int()),
            ("actorId", id()),
            ("actorType", one_of(&["USER", "SYSTEM", "API_TOKEN"])),
            ("action", text()),
            ("at", range()),
        ]),
        other => panic!("no strategy for {other}"),
    }
}
