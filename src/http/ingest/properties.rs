//! Property tests of the line parser: any bytes are a draft or a rejection with a code and
//! a 1-based line number, never a panic.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::parse_line;
use crate::error::Code;

fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) }
}

/// Random JSON a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map("[a-zA-Z]{0,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn good_line() -> Value {
    json!({
        "externalId": "p-1", "source": "XDR", "ruleName": "Rule",
        "observedAt": "2026-11-20T10:00:00Z", "riskScore": 5,
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_are_a_draft_or_a_coded_rejection(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        line_no in 1..u64::MAX,
    ) {
        if let Err(rejected) = parse_line(line_no, &bytes) {
            prop_assert_eq!(rejected.line, line_no);
            prop_assert_eq!(rejected.code, Code::ValidationFailed.as_str());
            prop_assert!(!rejected.message.is_empty());
        }
    }

    #[test]
    fn a_line_with_any_field_set_to_any_value_is_a_draft_or_a_coded_rejection(
        field in prop::sample::select(vec![
            "externalId", "source", "ruleName", "description", "observedAt", "riskScore",
            "riskIndicators", "device", "actor", "mitre", "file", "raw", "unknown",
        ]),
        value in json_value(),
    ) {
        let mut line = good_line();
        line[field] = value;
        let bytes = line.to_string().into_bytes();
        match parse_line(3, &bytes) {
            Ok(draft) => {
                // The fields left alone are read as sent.
                if field != "externalId" {
                    prop_assert_eq!(draft.external_id, "p-1");
                }
                if field != "ruleName" {
                    prop_assert_eq!(draft.rule_name, "Rule");
                }
                if field != "riskScore" {
                    prop_assert_eq!(draft.risk_score, 5);
                }
            }
            Err(rejected) => {
                prop_assert_eq!(rejected.line, 3);
                prop_assert_eq!(rejected.code, Code::ValidationFailed.as_str());
                // The field named is the one sent, or none for a line that is not JSON.
                if let Some(named) = &rejected.field {
                    prop_assert!(named.starts_with(field), "{} for {}", named, field);
                }
            }
        }
    }
}
