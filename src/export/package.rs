//! The ZIP package of several parts or of `files`: entries streamed one after the other
//! into any writer (stored, not compressed: evidence is mostly compressed already, and
//! the stream must keep up with the network), ZIP64 records where sizes need them, and
//! `manifest.json` last with each entry's SHA-256 and size as written.

use std::io;

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTime, ZipEntryBuilder};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{AsyncWriteExt as _, StreamExt as _};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;

/// A content's bytes in chunks, opened when its entry is written (so one file is open at
/// a time).
pub type Chunks = BoxStream<'static, io::Result<Bytes>>;
/// Opens a content for reading.
pub type Opener = Box<dyn FnOnce() -> BoxFuture<'static, io::Result<Chunks>> + Send>;

/// What an entry holds.
pub enum Contents {
    /// Bytes made for the export (the summary, the CSV).
    Bytes(Vec<u8>),
    /// A stored file: opened when written, checked against its SHA-256 while streamed.
    Stored { open: Opener, sha256: String },
}

/// One file of the package.
pub struct Entry {
    pub path: String,
    pub modified: DateTime<Utc>,
    pub contents: Contents,
}

/// One line of the manifest's `entries`.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// The case a manifest describes.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestCase {
    pub number: i32,
    pub name: String,
}

/// A detection whose file contents are not in the package (not stored).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    /// The detection's global id.
    pub detection_id: String,
    pub external_id: String,
    pub file_name: Option<String>,
    pub sha256: Option<String>,
}

/// `manifest.json`: what the recipient checks the package against.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub case: ManifestCase,
    pub exported_at: DateTime<Utc>,
    pub entries: Vec<ManifestEntry>,
    pub missing: Vec<Missing>,
    /// The case's change-record events.
    pub events: serde_json::Value,
    /// A signed checkpoint of the change record.
    pub checkpoint: serde_json::Value,
}

/// The path of the manifest in the package.
pub const MANIFEST: &str = "manifest.json";

/// Writes `entries` and then the manifest (completed with the entries' hashes and sizes)
/// as a ZIP into `out`, one entry at a time in constant memory. Fails when a stored
/// content does not hash to its address (the package would not be what it claims).
pub async fn write<W: AsyncWrite + Unpin>(
    out: W,
    entries: Vec<Entry>,
    mut manifest: Manifest,
) -> io::Result<W> {
    let mut zip = ZipFileWriter::with_tokio(out);
    for entry in entries {
        let builder = ZipEntryBuilder::new(entry.path.clone().into(), Compression::Stored)
            .last_modification_date(ZipDateTime::from(&entry.modified))
            .unix_permissions(0o644);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut expected = None;
        match entry.contents {
            Contents::Bytes(bytes) => {
                hasher.update(&bytes);
                size = bytes.len() as u64;
                zip.write_entry_whole(builder, &bytes).await.map_err(zip_error)?;
            }
            Contents::Stored { open, sha256 } => {
                let mut chunks = open().await?;
                let mut writer = zip.write_entry_stream(builder).await.map_err(zip_error)?;
                while let Some(chunk) = chunks.next().await {
                    let chunk = chunk?;
                    hasher.update(&chunk);
                    writer.write_all(&chunk).await?;
                    size += chunk.len() as u64;
                }
                writer.close().await.map_err(zip_error)?;
                expected = Some(sha256);
            }
        }
        let sha256 = hex(&hasher.finalize());
        if let Some(expected) = expected.filter(|e| !e.eq_ignore_ascii_case(&sha256)) {
            return Err(io::Error::other(format!(
                "stored content {expected} reads as {sha256}: the package is abandoned"
            )));
        }
        manifest.entries.push(ManifestEntry { path: entry.path, sha256, size });
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    let builder = ZipEntryBuilder::new(MANIFEST.to_owned().into(), Compression::Stored)
        .last_modification_date(ZipDateTime::from(&manifest.exported_at))
        .unix_permissions(0o644);
    zip.write_entry_whole(builder, &json).await.map_err(zip_error)?;
    let out = zip.close().await.map_err(zip_error)?;
    Ok(out.into_inner())
}

fn zip_error(error: async_zip::error::ZipError) -> io::Error {
    match error {
        async_zip::error::ZipError::UpstreamReadError(e) => e,
        other => io::Error::other(other),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
