// TEMPORARY STUB: replaced by the embedded cluster module being written.
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("stub")]
    Stub,
}
pub struct EmbeddedPostgres {
    dir: PathBuf,
}
impl EmbeddedPostgres {
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        Ok(Self { dir: data_dir.to_owned() })
    }
    pub fn database_url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:5432/{database}?x={}", self.dir.display())
    }
    pub async fn ensure_database(&self, _name: &str) -> Result<(), EmbeddedError> {
        Ok(())
    }
    pub async fn stop(self) -> Result<(), EmbeddedError> {
        Ok(())
    }
}
