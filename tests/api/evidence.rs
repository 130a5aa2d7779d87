//! Evidence file contents: `PUT` and `GET /detections/{id}/file` — round trip, stored
//! once per tenant, the SHA-256 check, the size limit, ranges, headers, roles, tenants.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::TestApp;
use crate::common::fixtures::{detection, error_code, error_field};
use casefile::config::FileLimits;
use casefile::models::users::Role;

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A file event with this external id, file name and (when given) known SHA-256.
pub fn file_event(external_id: &str, name: &str, sha256: Option<&str>) -> Value {
    let mut d = detection(external_id, 2);
    d["source"] = json!("FILE_ACTIVITY");
    d["file"] = json!({ "name": name, "path": "C:/Users/alice/Documents", "availability": "EXACT_FILE_AVAILABLE" });
    if let Some(sha) = sha256 {
        d["file"]["sha256"] = json!(sha);
    }
    d
}

impl TestApp {
    pub async fn upload(&self, token: &str, id: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let response = self
            .http
            .put(self.url(&format!("/detections/{id}/file")))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn download(&self, token: &str, id: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/detections/{id}/file")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// The files of the local evidence store under `tenants/<tenant>/sha256/`.
    pub fn stored_objects(&self, tenant: casefile::models::ids::TenantId) -> Vec<String> {
        let dir = self.data_dir.path().join(format!("evidence/tenants/{}/sha256", tenant.0));
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    async fn file_info(&self, id: &str) -> Value {
        let (_, body) = self
            .graphql(
                &self.admin_token,
                "query($id: ID!) { detection(id: $id) { file { name sha256 contentStored downloadPath } } }",
                json!({ "id": id }),
            )
            .await;
        body["data"]["detection"]["file"].clone()
    }
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[tokio::test]
async fn an_upload_comes_back_byte_for_byte_with_its_headers() {
    let app = TestApp::new().await;
    let bytes = content(3 * 1024 * 1024 + 17, 1);
    let sha = sha256_hex(&bytes);
    let ids = app
        .ingest(&app.admin_token, vec![file_event("f1", "Résumé 2026 \"final\".pdf", Some(&sha))])
        .await;
    let before = app.file_info(&ids[0]).await;
    assert_eq!(before["contentStored"], false);
    assert_eq!(before["downloadPath"], Value::Null);

    let (status, body) = app.upload(&app.admin_token, &ids[0], bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body, json!({ "sha256": sha, "size": bytes.len() }));

    let after = app.file_info(&ids[0]).await;
    assert_eq!(after["contentStored"], true);
    assert_eq!(after["downloadPath"], json!(format!("/detections/{}/file", ids[0])));

    let response = app.download(&app.admin_token, &ids[0]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(headers["etag"], format!("\"{sha}\"").as_str());
    assert!(headers.get("content-encoding").is_none(), "never compressed");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"R_sum_ 2026 _final_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%202026%20%22final%22.pdf"
    );
    let got = response.bytes().await.expect("body");
    assert!(got == bytes, "the downloaded bytes equal the uploaded ones");

    // A bare UUID names the detection too.
    let (_, uuid) = casefile::graphql::ids::decode(&ids[0]).expect("a global id");
    let response = app.download(&app.admin_token, &uuid.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_download_asked_with_gzip_is_still_sent_as_stored() {
    let app = TestApp::new().await;
    let bytes = vec![b'a'; 100_000];
    let ids = app.ingest(&app.admin_token, vec![file_event("f1", "a.txt", None)]).await;
    assert_eq!(app.upload(&app.admin_token, &ids[0], bytes.clone()).await.0, StatusCode::CREATED);
    let response = app
        .http
        .get(app.url(&format!("/detections/{}/file", ids[0])))
        .bearer_auth(&app.admin_token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert!(response.headers().get("content-encoding").is_none());
    assert_eq!(response.headers()["content-length"], "100000");
    assert_eq!(response.bytes().await.expect("body").len(), 100_000);
}

#[tokio::test]
async fn identical_contents_are_stored_once_and_a_second_upload_answers_200() {
    let app = TestApp::new().await;
    let bytes = content(10_000, 7);
    let ids = app
        .ingest(
            &app.admin_token,
            vec![file_event("a", "a.bin", None), file_event("b", "copy of a.bin", None)],
        )
        .await;
    assert_eq!(app.upload(&app.admin_token, &ids[0], bytes.clone()).await.0, StatusCode::CREATED);
    let (status, body) = app.upload(&app.admin_token, &ids[0], bytes.clone()).await;
    assert_eq!(status, StatusCode::OK, "the same content again: {body}");
    assert_eq!(body["sha256"], json!(sha256_hex(&bytes)));
    let (status, _) = app.upload(&app.admin_token, &ids[1], bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "the other detection's first upload");

    assert_eq!(app.stored_objects(app.tenant_id), vec![sha256_hex(&bytes)], "stored once");
    let incoming =
        app.data_dir.path().join(format!("evidence/tenants/{}/incoming", app.tenant_id.0));
    let staged = std::fs::read_dir(incoming).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staged, 0, "no staged upload is left behind");
    for id in &ids {
        let got = app.download(&app.admin_token, id).await.bytes().await.expect("body");
        assert!(got == bytes);
    }
}

#[tokio::test]
async fn evidence_is_never_replaced_by_different_contents() {
    let app = TestApp::new().await;
    let ids = app.ingest(&app.admin_token, vec![file_event("a", "a.bin", None)]).await;
    assert_eq!(
        app.upload(&app.admin_token, &ids[0], b"first".to_vec()).await.0,
        StatusCode::CREATED
    );
    let (status, body) = app.upload(&app.admin_token, &ids[0], b"second".to_vec()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), Some("EVIDENCE_EXISTS"));
    assert_eq!(
        app.download(&app.admin_token, &ids[0]).await.bytes().await.expect("body").as_ref(),
        b"first"
    );
    assert_eq!(app.stored_objects(app.tenant_id), vec![sha256_hex(b"first")]);
}

#[tokio::test]
async fn contents_that_differ_from_the_known_sha256_are_refused_and_nothing_is_kept() {
    let app = TestApp::new().await;
    let ids = app
        .ingest(&app.admin_token, vec![file_event("a", "a.bin", Some(&sha256_hex(b"expected")))])
        .await;
    let (status, body) = app.upload(&app.admin_token, &ids[0], b"tampered".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"));
    assert_eq!(error_field(&body), Some("sha256"));
    assert!(body["errors"][0]["message"].is_string());
    assert!(app.stored_objects(app.tenant_id).is_empty(), "nothing kept");
    assert_eq!(app.file_info(&ids[0]).await["contentStored"], false);

    let upper = sha256_hex(b"expected").to_uppercase();
    let ids = app.ingest(&app.admin_token, vec![file_event("b", "b.bin", Some(&upper))]).await;
    let (status, _) = app.upload(&app.admin_token, &ids[0], b"expected".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "the hash compares ignoring hex case");
}

#[tokio::test]
async fn a_detection_without_file_metadata_takes_no_contents() {
    let app = TestApp::new().await;
    let ids = app.ingest(&app.admin_token, vec![detection("xdr", 2)]).await;
    let (status, body) = app.upload(&app.admin_token, &ids[0], b"x".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"));
    assert_eq!(error_field(&body), Some("file"));
    let response = app.download(&app.admin_token, &ids[0]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "nothing stored to download");
}

#[tokio::test]
async fn uploads_over_the_limit_answer_413_and_keep_nothing() {
    let app =
        TestApp::with_file_limits(FileLimits { max_upload_bytes: 1000, ..FileLimits::default() })
            .await;
    let ids = app.ingest(&app.admin_token, vec![file_event("a", "a.bin", None)]).await;
    let (status, body) = app.upload(&app.admin_token, &ids[0], vec![0; 1001]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), Some("LIMIT_EXCEEDED"));

    // Without a Content-Length the stream is counted as it comes.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..5).map(|_| Ok(vec![1u8; 300])).collect();
    let response = app
        .http
        .put(app.url(&format!("/detections/{}/file", ids[0])))
        .bearer_auth(&app.admin_token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(app.stored_objects(app.tenant_id).is_empty());
    let incoming =
        app.data_dir.path().join(format!("evidence/tenants/{}/incoming", app.tenant_id.0));
    assert_eq!(std::fs::read_dir(incoming).map(|d| d.count()).unwrap_or(0), 0);

    let (status, _) = app.upload(&app.admin_token, &ids[0], vec![0; 1000]).await;
    assert_eq!(status, StatusCode::CREATED, "exactly the limit passes");
}

#[tokio::test]
async fn uploads_larger_than_the_graphql_body_limit_pass() {
    let app = TestApp::new().await;
    let bytes = content(5 * 1024 * 1024, 3);
    let ids = app.ingest(&app.admin_token, vec![file_event("a", "big.bin", None)]).await;
    let (status, body) = app.upload(&app.admin_token, &ids[0], bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["size"], json!(bytes.len()));
}

#[tokio::test]
async fn single_ranges_are_served_and_unsatisfiable_ones_answer_416() {
    let app = TestApp::new().await;
    let bytes = content(1000, 9);
    let ids = app.ingest(&app.admin_token, vec![file_event("a", "a.bin", None)]).await;
    app.upload(&app.admin_token, &ids[0], bytes.clone()).await;
    let ranged = |range: &'static str| {
        app.http
            .get(app.url(&format!("/detections/{}/file", ids[0])))
            .bearer_auth(&app.admin_token)
            .header("range", range)
            .send()
    };
    let response = ranged("bytes=100-199").await.expect("request");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()["content-range"], "bytes 100-199/1000");
    assert_eq!(response.headers()["content-length"], "100");
    assert_eq!(response.bytes().await.expect("body").as_ref(), &bytes[100..200]);

    let response = ranged("bytes=-10").await.expect("request");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.bytes().await.expect("body").as_ref(), &bytes[990..]);

    let response = ranged("bytes=1000-").await.expect("request");
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()["content-range"], "bytes */1000");
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), Some("VALIDATION_FAILED"));
}

#[tokio::test]
async fn another_tenants_detection_answers_404_for_upload_and_download() {
    let app = TestApp::new().await;
    let ids = app.ingest(&app.admin_token, vec![file_event("a", "a.bin", None)]).await;
    app.upload(&app.admin_token, &ids[0], b"secret".to_vec()).await;
    let other = app.create_tenant("Other", &[]).await;
    let (_, other_admin) = app.create_user(other, Role::Admin).await;

    let response = app.download(&other_admin, &ids[0]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), Some("NOT_FOUND"));
    let (status, body) = app.upload(&other_admin, &ids[0], b"secret".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(app.stored_objects(other).is_empty());

    // Even a detection of its own with the same hash reads only its own tenant's objects.
    let theirs = app.ingest(&other_admin, vec![file_event("a", "a.bin", None)]).await;
    assert_eq!(app.download(&other_admin, &theirs[0]).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_role_uploads_and_downloads_as_the_design_says() {
    let app = TestApp::new().await;
    let ids = app
        .ingest(
            &app.admin_token,
            vec![file_event("a", "a.bin", None), file_event("b", "b.bin", None)],
        )
        .await;
    app.upload(&app.admin_token, &ids[0], b"stored".to_vec()).await;
    for (role, may_upload, may_download) in [
        (Role::Admin, true, true),
        (Role::Analyst, true, true),
        (Role::Ingest, true, false),
        (Role::SuperAdmin, false, true),
        (Role::ReadOnly, false, true),
        (Role::ProviderAnalyst, false, true),
    ] {
        let (_, token) = app.create_user(app.tenant_id, role).await;
        let (status, body) = app.upload(&token, &ids[1], b"other".to_vec()).await;
        if may_upload {
            assert!(status.is_success(), "{role:?} uploads: {status} {body}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{role:?} may not upload: {body}");
            assert_eq!(error_code(&body), Some("FORBIDDEN"));
        }
        let status = app.download(&token, &ids[0]).await.status();
        let expected = if may_download { StatusCode::OK } else { StatusCode::FORBIDDEN };
        assert_eq!(status, expected, "{role:?} downloads");
    }
    let response = app
        .http
        .get(app.url(&format!("/detections/{}/file", ids[0])))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
}
