//! Malformed GraphQL requests: bodies that are not JSON or not UTF-8, requests of the
//! wrong shape, documents that do not parse or nest without end, huge documents.

use serde_json::json;

use super::{Entry, Expect, Fixture, Sent, raw_request};

const VIEWER: &str = "{ viewer { id } }";

/// `depth` copies of `open`, then `middle`, then `depth` copies of `close`.
pub fn nested(open: &str, middle: &str, close: &str, depth: usize) -> String {
    format!("{}{middle}{}", open.repeat(depth), close.repeat(depth))
}

pub fn entries(fixture: &Fixture) -> Vec<Entry> {
    let mut entries = vec![
        // Not JSON, or not the JSON of a request.
        Entry::body("an empty body", ""),
        Entry::body("a body that is not JSON", "query { viewer { id } }"),
        Entry::body("JSON cut short", r#"{"query": "{ viewer { id } }""#),
        Entry::body("a trailing comma", r#"{"query": "{ viewer { id } }",}"#),
        Entry::body("two JSON values", r#"{"query": "{ viewer { id } }"} {}"#),
        Entry::body("JSON null", "null"),
        Entry::body("a JSON string", r#""{ viewer { id } }""#),
        Entry::body("an empty batch", "[]"),
        Entry::body("a batch of numbers", "[1, 2, 3]"),
        Entry::body("a query that is a number", r#"{"query": 42}"#),
        Entry::body("a query that is an object", r#"{"query": {"viewer": true}}"#),
        Entry::body("no query", r#"{"variables": {}}"#),
        Entry::body("variables that are a list", r#"{"query": "{ viewer { id } }", "variables": [1]}"#),
        Entry::body("variables that are a string", r#"{"query": "{ viewer { id } }", "variables": "{}"}"#),
        Entry::body("an operation name that is a number", r#"{"query": "{ viewer { id } }", "operationName": 7}"#),
        Entry::body("extensions that are a string", r#"{"query": "{ viewer { id } }", "extensions": "x"}"#),
        Entry::body(
            "a persisted query hash that is not hex",
            r#"{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "'; drop table cases; --"}}}"#,
        ),
        Entry::body("a lone surrogate escape", r#"{"query": "{ viewer { id } } \ud800"}"#),
        Entry::body("a number too large for JSON's doubles", r#"{"query": "{ viewer { id } }", "variables": {"n": 1e400}}"#),
        // Not UTF-8.
        Entry::body("invalid UTF-8 in the query", b"{\"query\": \"{ viewer { id } } \xff\xfe\"}".to_vec()),
        Entry::body("invalid UTF-8 in a variable", b"{\"query\": \"query($n: String) { cases(after: $n) { totalCount } }\", \"variables\": {\"n\": \"\xc3\x28\"}}".to_vec()),
        Entry::body("an overlong UTF-8 encoding", b"{\"query\": \"{ viewer { id } }\xc0\xaf\"}".to_vec()),
        Entry::body("a UTF-16 body", "{\"query\": \"{ viewer { id } }\"}".encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()),
        // Documents that do not parse or validate.
        Entry::op("an empty document", "", json!({})),
        Entry::op("a document of spaces", "   \n\t  ", json!({})),
        Entry::op("an unclosed selection", "{ viewer { id }", json!({})),
        Entry::op("an unknown field", "{ viewr { id } }", json!({})),
        Entry::op("a NUL character in the document", "{ viewer { id } }\u{0}", json!({})),
        Entry::op("a NUL character in a string literal", "{ cases(after: \"\\u0000\") { totalCount } }", json!({})),
        Entry::op("an unknown operation name", VIEWER, json!({})).operation_name("Nope"),
        Entry::op("two anonymous operations", "{ viewer { id } } { tenant { id } }", json!({})),
        Entry::op("a subscription over POST", "subscription { caseEvents { __typename } }", json!({})),
        Entry::op("a fragment that spreads itself", "query { viewer { ...A } } fragment A on User { ...A }", json!({})),
        Entry::op("an undefined variable", "query { cases(first: $n) { totalCount } }", json!({})),
        Entry::op("a variable of an unknown type", "query($n: Bogus) { viewer { id } }", json!({ "n": 1 })),
        Entry::op("an unknown directive", "{ viewer @bogus { id } }", json!({})),
        Entry::op("a mutation of an unknown field", "mutation { dropTable }", json!({})),
        Entry::op("SQL as a document", "'; drop table cases; --", json!({})),
        Entry::op("HTML as a document", "<script>alert(1)</script>", json!({})),
        // Nesting without end, in the document and in the variables.
        Entry::op("10,000 nested selections", &nested("{ viewer ", "{ id }", " }", 10_000), json!({})),
        Entry::op(
            "10,000 nested list literals",
            &format!("{{ cases(filter: {{ status: {} }}) {{ totalCount }} }}", nested("[", "OPEN", "]", 10_000)),
            json!({}),
        ),
        Entry::op(
            "10,000 nested object literals",
            &format!("{{ cases(filter: {}) {{ totalCount }} }}", nested("{ search: ", "\"x\"", " }", 10_000)),
            json!({}),
        ),
        Entry::op(
            "10,000 nested fragments",
            &(0..10_000).fold(String::from("query { viewer { ...F0 } }"), |mut doc, i| {
                let next = if i + 1 < 10_000 { format!("...F{}", i + 1) } else { "id".to_owned() };
                doc.push_str(&format!(" fragment F{i} on User {{ {next} }}"));
                doc
            }),
            json!({}),
        ),
        Entry::body(
            "10,000 nested lists in the variables",
            format!(
                r#"{{"query": "query($s: [CaseStatus!]) {{ cases(filter: {{status: $s}}) {{ totalCount }} }}", "variables": {{"s": {}}}}}"#,
                nested("[", "\"OPEN\"", "]", 10_000)
            ),
        ),
        Entry::body(
            "10,000 nested objects in the variables",
            format!(
                r#"{{"query": "query($f: CaseFilter) {{ cases(filter: $f) {{ totalCount }} }}", "variables": {{"f": {}}}}}"#,
                nested(r#"{"search": "#, "\"x\"", "}", 10_000)
            ),
        ),
        // Huge documents.
        Entry::op("a 1 MB document of one field", &format!("{{ viewer {{ {} }} }}", "id ".repeat(350_000)), json!({})),
        Entry::op("a 1 MB field name", &format!("{{ {} }}", "a".repeat(1 << 20)), json!({})),
        // Within the rules until aliases are capped (issue 11, item 1): harmless either way.
        Entry {
            expect: Expect::Harmless,
            ..Entry::op("10,000 aliases", &format!("{{ {} }}", (0..10_000).map(|i| format!("a{i}: viewer {{ id }}")).collect::<Vec<_>>().join(" ")), json!({}))
        },
        Entry::op(
            "a 1 MB string literal",
            &format!("{{ cases(filter: {{ search: \"{}\" }}) {{ totalCount }} }}", "x".repeat(1 << 20)),
            json!({}),
        ),
    ];
    // Requests broken at the HTTP level.
    let token = &fixture.token;
    let raws: [(&str, Vec<u8>); 6] = [
        (
            "a body shorter than its Content-Length",
            raw_request(
                "POST",
                "/graphql",
                token,
                &["content-type: application/json", "content-length: 1000"],
                br#"{"query": "{ viewer { id } }"}"#,
            ),
        ),
        (
            "a Content-Length that is not a number",
            raw_request(
                "POST",
                "/graphql",
                token,
                &["content-type: application/json", "content-length: ten"],
                b"{}",
            ),
        ),
        (
            "a Content-Length of 2^64",
            raw_request(
                "POST",
                "/graphql",
                token,
                &["content-type: application/json", "content-length: 18446744073709551616"],
                b"{}",
            ),
        ),
        (
            "a chunked body that breaks off",
            raw_request(
                "POST",
                "/graphql",
                token,
                &["content-type: application/json", "transfer-encoding: chunked"],
                b"ffff\r\n{\"query\"",
            ),
        ),
        (
            "a Content-Type of a charset that is not UTF-8",
            raw_request(
                "POST",
                "/graphql",
                token,
                &["content-type: application/json; charset=latin1", "content-length: 2"],
                b"{}",
            ),
        ),
        ("an Authorization header that is not UTF-8", {
            let mut bytes = b"POST /graphql HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer \xff\xfe\r\ncontent-type: application/json\r\ncontent-length: 29\r\n\r\n".to_vec();
            bytes.extend_from_slice(br#"{"query":"{ viewer { id } }"}"#);
            bytes
        }),
    ];
    for (name, bytes) in raws {
        // A body cut short: the client stops writing, as one that went away.
        let cut = name.contains("shorter") || name.contains("breaks off");
        entries.push(Entry::new(name, if cut { Sent::Cut(bytes) } else { Sent::Raw(bytes) }));
    }
    entries
}

impl Entry {
    /// The same operation with this `operationName`.
    fn operation_name(self, name: &str) -> Self {
        match self.sent {
            Sent::Operation(query, variables) => Entry::body(
                self.name,
                json!({ "query": query, "variables": variables, "operationName": name })
                    .to_string(),
            ),
            _ => self,
        }
    }
}
