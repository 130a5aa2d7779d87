//! First start: tenant `Default`, admin `admin@localhost`, a token shown once and saved 0600.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn first_start_creates_the_default_tenant_and_admin() {
    let app = TestApp::new().await;
    let data = app.query_ok("{ viewer { email role displayName } tenant { name licenses } }").await;
    assert_eq!(data["viewer"]["email"], "admin@localhost");
    assert_eq!(data["viewer"]["role"], "ADMIN");
    assert_eq!(data["tenant"], json!({ "name": "Default", "licenses": ["XDR"] }));
}

#[tokio::test]
async fn bootstrap_runs_once_only() {
    let app = TestApp::new().await;
    let mut conn = app.conn().await;
    assert_eq!(casefile::bootstrap::run(&mut conn).await.expect("bootstrap"), None);
    assert_eq!(casefile::models::tenants::count(&mut conn).await.expect("count"), 1);
}

#[tokio::test]
async fn the_admin_token_file_is_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().join("nested");
    let path = casefile::bootstrap::write_token(&data_dir, "cf_secret").expect("write");
    assert_eq!(path, data_dir.join("admin-token"));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "cf_secret\n");
    assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);

    // A file left with wider permissions is narrowed on rewrite.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    casefile::bootstrap::write_token(&data_dir, "cf_other").expect("rewrite");
    assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "cf_other\n");
}
