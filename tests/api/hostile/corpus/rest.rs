//! Malformed requests to the REST routes: NDJSON lines that are not detections (or that
//! hold what the database cannot), uploads with broken headers or to ids that name nothing
//! of the viewer's, and exports of paths and parts that are not there.

use serde_json::{Value, json};

use super::graphql::nested;
use super::{Entry, Fixture, Sent, raw_request};

/// A detection line with `edit` applied.
fn line(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut d = json!({
        "externalId": "nd-hostile", "source": "XDR", "ruleName": "R",
        "observedAt": "2026-11-20T10:00:00Z", "riskScore": 1,
    });
    edit(&mut d);
    format!("{d}\n").into_bytes()
}

/// A good line's text with `from` replaced by `to` (for what `serde_json` cannot build).
fn line_text(from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(line(|_| {})).expect("UTF-8").replace(from, to).into_bytes()
}

fn ndjson(fixture: &Fixture) -> Vec<Entry> {
    let nd = |name: &str, body: Vec<u8>| Entry::new(name, Sent::Ndjson(body));
    let token = &fixture.token;
    vec![
        nd("a line that is not JSON", b"not json\n".to_vec()),
        nd("a line of invalid UTF-8", b"{\"externalId\": \"\xff\xfe\"}\n".to_vec()),
        nd("a line that is a list", b"[1, 2]\n".to_vec()),
        nd("a line that is null", b"null\n".to_vec()),
        nd("a line that is a number", b"1e400\n".to_vec()),
        nd("a line with a field of the wrong type", line(|d| d["riskScore"] = json!("high"))),
        nd("a line with an unknown field", line(|d| d["bogus"] = json!(1))),
        nd("a risk score of 2^31", line(|d| d["riskScore"] = json!(2_147_483_648_i64))),
        nd("a risk score of 1e400", line_text("\"riskScore\":1", "\"riskScore\":1e400")),
        nd("a risk score of -0.0", line_text("\"riskScore\":1", "\"riskScore\":-0.0")),
        nd("a risk score of NaN", line_text("\"riskScore\":1", "\"riskScore\":NaN")),
        nd("a file size of 1e300", line(|d| d["file"] = json!({ "name": "f", "size": 1e300 }))),
        nd(
            "an observedAt before year -4713",
            line(|d| d["observedAt"] = json!("-10000-01-01T00:00:00Z")),
        ),
        nd(
            "an observedAt in year 262143",
            line(|d| d["observedAt"] = json!("+262143-01-01T00:00:00Z")),
        ),
        nd(
            "an observedAt of February 30",
            line(|d| d["observedAt"] = json!("2026-02-30T00:00:00Z")),
        ),
        nd("a NUL in the rule name", line(|d| d["ruleName"] = json!("a\u{0}b"))),
        nd("a NUL in the external id", line(|d| d["externalId"] = json!("\u{0}"))),
        nd("a NUL in the host name", line(|d| d["device"] = json!({ "hostname": "h\u{0}" }))),
        nd("a NUL in a file name", line(|d| d["file"] = json!({ "name": "a\u{0}.exe" }))),
        nd("a NUL in raw", line(|d| d["raw"] = json!({ "k": "\u{0}" }))),
        nd("a lone surrogate in raw", line_text("\"source\"", "\"raw\":\"\\udc00\",\"source\"")),
        nd(
            "raw nested 10,000 deep",
            line_text(
                "\"source\"",
                &format!("\"raw\":{},\"source\"", nested("[", "1", "]", 10_000)),
            ),
        ),
        nd("a line over 1 MiB", line(|d| d["description"] = json!("x".repeat(1 << 20)))),
        nd("a 1 MB rule name", line(|d| d["ruleName"] = json!("x".repeat(1_000_000)))),
        nd("an unknown source", line(|d| d["source"] = json!("'; drop table detections; --"))),
        Entry::new(
            "NDJSON sent as JSON",
            Sent::Raw(raw_request(
                "POST",
                "/ingest/detections",
                token,
                &["content-type: application/json", "content-length: 2"],
                b"{}",
            )),
        ),
        Entry::new(
            "NDJSON without a token",
            Sent::Raw(raw_request(
                "POST",
                "/ingest/detections",
                "",
                &["content-type: application/x-ndjson", "content-length: 0"],
                b"",
            )),
        ),
        Entry::new(
            "an NDJSON body shorter than its Content-Length",
            Sent::Cut(raw_request(
                "POST",
                "/ingest/detections",
                token,
                &["content-type: application/x-ndjson", "content-length: 100000"],
                &line(|_| {}),
            )),
        ),
    ]
}

fn uploads(fixture: &Fixture) -> Vec<Entry> {
    let token = &fixture.token;
    let put = |name: &str, id: &str, headers: &[&str], body: &[u8]| {
        let path = format!("/detections/{id}/file");
        let request = raw_request("PUT", &path, token, headers, body);
        // A body cut short: the client stops writing, as one that went away.
        Entry::new(
            name,
            if name.contains("shorter") { Sent::Cut(request) } else { Sent::Raw(request) },
        )
    };
    let id = fixture.detection_id.as_str();
    vec![
        put("an upload to a detection without a file", id, &["content-length: 3"], b"abc"),
        put(
            "an upload to another tenant's detection",
            &fixture.foreign_detection_id,
            &["content-length: 3"],
            b"abc",
        ),
        put("an upload to a case id", &fixture.case_id, &["content-length: 3"], b"abc"),
        put(
            "an upload to a traversal path",
            "..%2F..%2Fetc%2Fpasswd",
            &["content-length: 3"],
            b"abc",
        ),
        put("an upload to a NUL id", "%00", &["content-length: 3"], b"abc"),
        put(
            "an upload to a 10,000-character id",
            &"A".repeat(10_000),
            &["content-length: 3"],
            b"abc",
        ),
        put(
            "an upload with a Content-Length that is not a number",
            id,
            &["content-length: three"],
            b"abc",
        ),
        put("an upload with a negative Content-Length", id, &["content-length: -3"], b"abc"),
        put(
            "an upload with a Content-Length of 2^64",
            id,
            &["content-length: 18446744073709551616"],
            b"abc",
        ),
        put(
            "an upload with two Content-Lengths",
            id,
            &["content-length: 3", "content-length: 4"],
            b"abc",
        ),
        put("an upload shorter than its Content-Length", id, &["content-length: 100"], b"abc"),
        put(
            "an upload with a traversal file name",
            id,
            &[
                "content-length: 3",
                "content-disposition: attachment; filename=\"../../etc/passwd\"",
                "x-file-name: ../../etc/passwd",
            ],
            b"abc",
        ),
        put(
            "an upload with a broken Content-Range",
            id,
            &["content-length: 3", "content-range: bytes 9-1/0"],
            b"abc",
        ),
        put(
            "an upload with a Content-Type of HTML",
            id,
            &["content-length: 3", "content-type: text/html; charset=<script>"],
            b"abc",
        ),
    ]
}

fn exports(fixture: &Fixture) -> Vec<Entry> {
    let number = fixture.case_number;
    let get = |name: &str, path: String| Entry::new(name, Sent::Get(path));
    vec![
        get("an export of a case number that is text", "/cases/abc/export".into()),
        get("an export of a case number of 2^64", "/cases/18446744073709551616/export".into()),
        get("an export of case -1", "/cases/-1/export".into()),
        get("an export of a traversal path", "/cases/..%2F..%2Fetc%2Fpasswd/export".into()),
        get("an export of an encoded NUL", "/cases/1%00/export".into()),
        get(
            "an export of a traversal part",
            format!("/cases/{number}/export?parts=../../etc/passwd"),
        ),
        get("an export of an empty part", format!("/cases/{number}/export?parts=")),
        get("an export of an unknown part", format!("/cases/{number}/export?parts=summary,bogus")),
        get("an export of a NUL part", format!("/cases/{number}/export?parts=%00")),
        get(
            "an export of SQL for its part",
            format!("/cases/{number}/export?parts=%27%3B%20drop%20table%20cases%3B%20--"),
        ),
        get("a download of a traversal path", "/detections/..%2F..%2Fetc%2Fpasswd/file".into()),
        get(
            "a download of another tenant's detection",
            format!("/detections/{}/file", fixture.foreign_detection_id),
        ),
        get(
            "a download of a detection without a file",
            format!("/detections/{}/file", fixture.detection_id),
        ),
        get("an audit export of an unknown parameter", "/audit/export?after=-1".into()),
        get("an audit export from a time that is not one", "/audit/export?from=yesterday".into()),
        get("an audit export of an unknown format", "/audit/export?format=xlsx".into()),
        get(
            "an audit export ending before it starts",
            "/audit/export?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z".into(),
        ),
    ]
}

pub fn entries(fixture: &Fixture) -> Vec<Entry> {
    let mut entries = ndjson(fixture);
    entries.extend(uploads(fixture));
    entries.extend(exports(fixture));
    entries
}
