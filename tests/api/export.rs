//! `GET /cases/{number}/export`: each part alone and together, the PDF's text, the CSV's
//! rows, the ZIP's entry names and manifest, the size limit, access and errors.

use std::io::Read as _;

use casefile::config::FileLimits;
use casefile::models::users::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::TestApp;
use crate::common::fixtures::{error_code, error_field};

const CASE_NAME: &str = "Утечка данных Ωmega";
const SUBJECT: &str = "alice.smith@example.test";
const SUBJECT_NAME: &str = "Алиса Σμιθ";
const FINDINGS: &str = "<h2>Timeline</h2><p>The subject copied <strong>payroll spreadsheets</strong> \
    to a <em>personal</em> drive.</p><ul><li>First copy on Monday</li><li>Second copy on \
    Tuesday</li></ul><ol><li>Interview the manager</li></ol><p>See <a href=\"https://intranet.example.test/hr\">the HR policy</a>.</p>";

/// A file event observed at `at` with this file name.
fn file_event(external_id: &str, at: &str, name: &str, rule: &str) -> Value {
    json!({
        "externalId": external_id,
        "source": "FILE_ACTIVITY",
        "ruleName": rule,
        "observedAt": at,
        "riskScore": 5,
        "riskIndicators": [{ "name": "Personal cloud", "weight": 3 }, { "name": "Off hours", "weight": 2 }],
        "device": { "hostname": "laptop-7" },
        "actor": SUBJECT,
        "mitre": [{ "tacticId": "TA0010", "tacticName": "Exfiltration", "techniqueId": "T1567", "techniqueName": "Exfiltration Over Web Service" }],
        "file": { "name": name, "path": "C:/Users/alice/", "size": 3, "availability": "EXACT_FILE_AVAILABLE" },
    })
}

/// The files of the seeded case: (external id, observedAt, name, contents).
const FILES: [(&str, &str, &str, &[u8]); 6] = [
    ("f1", "2026-11-20T10:00:00.250Z", "report final.pdf", b"first report"),
    ("f2", "2026-11-20T10:00:00.750Z", "report final.pdf", b"second report"),
    ("f3", "2026-11-20T11:30:05Z", "Отчёт за год.docx", b"cyrillic"),
    ("f4", "2026-11-20T12:00:00Z", "../../etc/passwd", b"root:x:0:0"),
    ("f5", "2026-11-20T13:00:00Z", "CON", b"device name"),
    ("f6", "2026-11-20T14:00:00Z", "same.bin", b"second report"),
];

/// A case with a subject, findings, six stored file events (one of them with a formula
/// for a rule name) and one file event whose content is not stored. Returns its number.
async fn seed(app: &TestApp) -> i64 {
    let token = app.admin_token.clone();
    let subject = app
        .mutate(
            &token,
            "upsertSubject",
            json!({ "username": SUBJECT, "displayName": SUBJECT_NAME, "department": "Finance" }),
            "subject { id }",
        )
        .await;
    let subject_id =
        subject["data"]["upsertSubject"]["subject"]["id"].as_str().expect("subject").to_owned();
    let mut events: Vec<Value> =
        FILES.iter().map(|(id, at, name, _)| file_event(id, at, name, "Copy to USB")).collect();
    events[0]["ruleName"] = json!("=HYPERLINK(\"http://evil.test\")");
    events.push(file_event("f7", "2026-11-20T15:00:00Z", "not-stored.txt", "Copy to USB"));
    let ids = app.ingest(&token, events).await;
    for ((_, _, _, bytes), id) in FILES.iter().zip(&ids) {
        app.store_content(id, bytes).await;
    }
    let case = app
        .create_case(
            &token,
            json!({ "name": CASE_NAME, "description": "Payroll data left the company.", "severity": "HIGH", "subjectId": subject_id, "detectionIds": ids }),
        )
        .await;
    let body = app
        .mutate(
            &token,
            "updateCase",
            json!({ "id": case["id"], "findings": FINDINGS }),
            "case { id }",
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    case["number"].as_i64().expect("number")
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.http.get(app.url(path)).bearer_auth(token).send().await.expect("request")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn pdf_text(bytes: &[u8]) -> String {
    pdf_extract::extract_text_from_mem(bytes).expect("the PDF's text")
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).expect("entry");
            let mut data = Vec::new();
            file.read_to_end(&mut data).expect("read entry");
            (file.name().expect("a UTF-8 name").to_string(), data)
        })
        .collect()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_summary_alone_is_a_pdf_with_the_case_subject_findings_and_non_ascii_names_as_text() {
    let app = TestApp::new().await;
    let number = seed(&app).await;
    let response =
        get(&app, &app.admin_token, &format!("/cases/{number}/export?parts=summary")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/pdf");
    assert_eq!(
        header(&response, "content-disposition"),
        format!("attachment; filename=\"case-{number}-summary.pdf\"")
    );
    assert!(header(&response, "content-encoding").is_empty());
    let bytes = response.bytes().await.expect("body");
    assert!(bytes.starts_with(b"%PDF-"));
    let text = pdf_text(&bytes);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        CASE_NAME,
        SUBJECT,
        SUBJECT_NAME,
        "payroll spreadsheets",
        "Timeline",
        "Exfiltration Over Web Service",
        "Risk summary",
    ] {
        assert!(flat.contains(expected), "`{expected}` is not in the PDF's text:\n{flat}");
    }
    assert!(bytes.windows(8).any(|w| w == b"DejaVuSa"), "the font is embedded");
}

#[tokio::test]
async fn the_file_activity_alone_is_a_csv_with_one_row_per_detection_and_formulas_neutralized() {
    let app = TestApp::new().await;
    let number = seed(&app).await;
    let response =
        get(&app, &app.admin_token, &format!("/cases/{number}/export?parts=fileActivity")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/csv; charset=utf-8");
    assert!(
        header(&response, "content-disposition")
            .contains(&format!("case-{number}-file-activity.csv"))
    );
    let bytes = response.bytes().await.expect("body");
    let mut reader = csv::Reader::from_reader(bytes.as_ref());
    let headers: Vec<String> =
        reader.headers().expect("header").iter().map(str::to_owned).collect();
    assert_eq!(
        headers.join(","),
        "externalId,observedAt,source,ruleName,riskScore,severity,riskIndicators,actor,deviceHostname,fileName,filePath,fileSize,sha256,md5,availability"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 7, "one row per detection");
    let first = rows.iter().find(|r| &r[0] == "f1").expect("f1");
    assert_eq!(&first[3], "'=HYPERLINK(\"http://evil.test\")");
    assert_eq!(&first[1], "2026-11-20T10:00:00.250Z");
    assert_eq!(&first[6], "Personal cloud (3); Off hours (2)");
    let third = rows.iter().find(|r| &r[0] == "f3").expect("f3");
    assert_eq!(&third[9], "Отчёт за год.docx");
    assert_eq!(&third[2], "FILE_ACTIVITY");
}

#[tokio::test]
async fn all_parts_are_a_zip_with_safe_folder_names_and_a_manifest_whose_hashes_match() {
    let app = TestApp::new().await;
    let number = seed(&app).await;
    let response = get(&app, &app.admin_token, &format!("/cases/{number}/export")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/zip");
    assert!(header(&response, "content-disposition").contains(&format!("case-{number}.zip")));
    assert!(header(&response, "content-encoding").is_empty(), "never compressed by HTTP");
    let bytes = response.bytes().await.expect("body");
    let entries = unzip(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("case-{number}-summary.pdf").as_str(),
            format!("case-{number}-file-activity.csv").as_str(),
            "files/20261120-100000 - report final.pdf/report final.pdf",
            "files/20261120-100000 - report final.pdf (2)/report final.pdf",
            "files/20261120-113005 - Отчёт за год.docx/Отчёт за год.docx",
            "files/20261120-120000 - __._etc_passwd/__._etc_passwd",
            "files/20261120-130000 - _CON/_CON",
            "files/20261120-140000 - same.bin/same.bin",
            "manifest.json",
        ]
    );
    for (i, (_, _, _, contents)) in FILES.iter().enumerate() {
        assert_eq!(entries[i + 2].1, *contents, "{}", entries[i + 2].0);
    }
    let manifest: Value =
        serde_json::from_slice(&entries.last().expect("manifest").1).expect("JSON");
    assert_eq!(manifest["case"], json!({ "number": number, "name": CASE_NAME }));
    let listed = manifest["entries"].as_array().expect("entries");
    assert_eq!(listed.len(), entries.len() - 1, "every entry but the manifest");
    for ((name, data), item) in entries.iter().zip(listed) {
        assert_eq!(item["path"], json!(name));
        assert_eq!(item["sha256"], json!(hex_sha256(data)), "{name}");
        assert_eq!(item["size"], json!(data.len()), "{name}");
    }
    let missing = manifest["missing"].as_array().expect("missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["externalId"], "f7");
    assert!(pdf_text(&entries[0].1).contains("Timeline"));

    // The case's events, oldest first, chained, and a checkpoint signed by the server at
    // or after the last of them (checked with an independent Ed25519 implementation).
    let events = manifest["events"].as_array().expect("events");
    assert_eq!(events[0]["action"], "case.created");
    assert!(events.iter().all(|e| e["caseNumber"] == json!(number)));
    assert!(events.iter().any(|e| e["action"] == "case.updated"), "the findings' update");
    let checkpoint = &manifest["checkpoint"];
    let last = events.last().expect("an event")["sequence"].as_i64().expect("sequence");
    assert!(checkpoint["sequence"].as_i64().expect("sequence") >= last);
    let decode = |v: &Value| base64_decode(v.as_str().expect("base64"));
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ED25519,
        decode(&checkpoint["publicKey"]),
    );
    let signed = checkpoint["signedText"].as_str().expect("signed text");
    assert!(signed.starts_with("casefile-audit-checkpoint:v1:"));
    assert!(signed.contains(checkpoint["hash"].as_str().expect("hash")));
    key.verify(signed.as_bytes(), &decode(&checkpoint["signature"])).expect("a valid signature");
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("standard base64")
}

#[tokio::test]
async fn files_alone_are_a_zip_and_two_parts_without_files_too() {
    let app = TestApp::new().await;
    let number = seed(&app).await;
    let bytes = get(&app, &app.admin_token, &format!("/cases/{number}/export?parts=files"))
        .await
        .bytes()
        .await
        .expect("body");
    let entries = unzip(&bytes);
    assert_eq!(entries.len(), FILES.len() + 1);
    assert!(entries.iter().take(FILES.len()).all(|(n, _)| n.starts_with("files/")));
    let response =
        get(&app, &app.admin_token, &format!("/cases/{number}/export?parts=fileActivity,summary"))
            .await;
    assert_eq!(header(&response, "content-type"), "application/zip");
    let entries = unzip(&response.bytes().await.expect("body"));
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("case-{number}-summary.pdf").as_str(),
            &format!("case-{number}-file-activity.csv"),
            "manifest.json"
        ]
    );
}

#[tokio::test]
async fn an_export_over_the_limit_is_refused_with_export_too_large_before_any_byte() {
    let app =
        TestApp::with_file_limits(FileLimits { max_export_bytes: 20, ..FileLimits::default() })
            .await;
    let number = seed(&app).await;
    let response = get(&app, &app.admin_token, &format!("/cases/{number}/export")).await;
    assert_eq!(response.status(), 413);
    assert!(header(&response, "content-type").starts_with("application/json"));
    let body: Value = response.json().await.expect("error body");
    assert_eq!(error_code(&body), Some("EXPORT_TOO_LARGE"));
    // Without the files, the same case exports.
    let response =
        get(&app, &app.admin_token, &format!("/cases/{number}/export?parts=summary,fileActivity"))
            .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn export_errors_have_codes_statuses_and_the_graphql_error_shape() {
    let app = TestApp::new().await;
    let number = seed(&app).await;
    let path = format!("/cases/{number}/export");

    let response = app.http.get(app.url(&path)).send().await.expect("request");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("body");
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));

    let response = get(&app, &app.admin_token, &format!("{path}?parts=summary,pdf")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("body");
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"));
    assert_eq!(error_field(&body), Some("parts"));

    let response = get(&app, &app.admin_token, "/cases/999999/export").await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("body");
    assert_eq!(error_code(&body), Some("NOT_FOUND"));

    let (_, ingest) = app.create_user(app.tenant_id, Role::Ingest).await;
    let response = get(&app, &ingest, &path).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("body");
    assert_eq!(error_code(&body), Some("FORBIDDEN"));

    // Every reading role exports; another tenant's reader finds no such case.
    for role in [Role::Analyst, Role::ReadOnly, Role::SuperAdmin, Role::ProviderAnalyst] {
        let (_, token) = app.create_user(app.tenant_id, role).await;
        let response = get(&app, &token, &format!("{path}?parts=fileActivity")).await;
        assert_eq!(response.status(), 200, "{role:?}");
    }
    let other = app.create_tenant("Other", &[]).await;
    let (_, stranger) = app.create_user(other, Role::Admin).await;
    let response = get(&app, &stranger, &path).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn exports_are_recorded_with_who_what_and_the_sha256_of_what_was_sent() {
    let app = TestApp::new().await;
    let number = seed(&app).await;
    let bytes = get(&app, &app.admin_token, &format!("/cases/{number}/export?parts=fileActivity"))
        .await
        .bytes()
        .await
        .expect("body");
    let zip = get(&app, &app.admin_token, &format!("/cases/{number}/export?parts=summary,files"))
        .await
        .bytes()
        .await
        .expect("body");
    // The ZIP's event is written when its last byte has gone out: wait for it briefly.
    let mut exported = Vec::new();
    for _ in 0..50 {
        exported = app
            .events(app.tenant_id)
            .await
            .into_iter()
            .filter(|e| e.action == "case.exported")
            .collect();
        if exported.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(exported.len(), 2, "one event per export");
    assert_eq!(exported[0].actor_id, Some(app.admin_id));
    assert_eq!(exported[0].changes["sha256"], json!(hex_sha256(&bytes)));
    assert_eq!(exported[0].changes["parts"], json!(["fileActivity"]));
    assert_eq!(exported[0].changes["caseNumber"], json!(number));
    assert_eq!(exported[1].changes["sha256"], json!(hex_sha256(&zip)));
    assert_eq!(exported[1].changes["size"], json!(zip.len()));
    assert_eq!(exported[1].changes["fileName"], json!(format!("case-{number}.zip")));
}
