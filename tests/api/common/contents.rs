//! Stored file contents for tests that need them in place (as an upload leaves them).

use bytes::Bytes;
use casefile::models::evidence;
use casefile::models::ids::DetectionId;

use super::TestApp;

impl TestApp {
    /// Stores `bytes` as the content of the detection with this global id, as an upload
    /// does (the object in the tenant's storage, the content row, the detection's link).
    /// Returns the content's SHA-256.
    pub async fn store_content(&self, detection: &str, bytes: &[u8]) -> String {
        let (_, uuid) = casefile::graphql::ids::decode(detection).expect("a detection id");
        let storage = &self.storage;
        let body =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(bytes))]);
        let staged = storage.stage(self.tenant_id, body, u64::MAX).await.expect("stage");
        storage.commit(self.tenant_id, &staged).await.expect("commit");
        assert!(self.data_dir.path().join("evidence").is_dir(), "contents live in the data dir");
        let sha256 = staged.sha256.as_str().to_owned();
        let mut conn = self.conn().await;
        evidence::keep_content(&mut conn, self.tenant_id, &sha256, bytes.len() as i64)
            .await
            .expect("content row");
        evidence::set_detection_content(&mut conn, DetectionId(uuid), &sha256)
            .await
            .expect("link the content");
        sha256
    }
}
