//! Evidence file contents in an object store (the `object_store` crate): a local folder
//! under the data dir by default, S3-compatible storage with
//! `CASEFILE_OBJECT_STORE_URL=s3://bucket[/prefix]` (credentials, region and endpoint
//! from object_store's own `AWS_*` variables).
//!
//! Contents are addressed by their SHA-256 within a tenant: one object per tenant and
//! hash at `tenants/<tenant uuid>/sha256/<hex>`, however many detections share it. Every
//! call takes the tenant, so one tenant's ids never reach another's objects. Which
//! contents exist, their sizes and which detections carry them is kept in the database
//! (`models::evidence`); this module only moves bytes.
//!
//! Reading (for downloads and the export): [`Storage::open`] streams a whole content or
//! a byte range in chunks, never the whole content in memory.

use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::models::ids::TenantId;

/// Bytes of one part of a multipart upload (S3 needs at least 5 MiB but the last).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once: bounds an upload's memory to a few parts.
const PARTS_IN_FLIGHT: usize = 2;
/// Bytes read from a local content at a time. object_store's own local stream reads 8 KiB
/// per blocking task, which costs more than the reading; one read of this size is a few
/// dozen microseconds from the page cache.
const READ_BYTES: usize = 256 * 1024;

/// A stored content's SHA-256: 64 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(String);

impl ContentHash {
    /// Accepts 64 hexadecimal digits in either case (kept lowercase).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| ContentHash(value.to_ascii_lowercase()))
    }

    /// The hash of a finished digest.
    pub fn from_digest(digest: Sha256) -> Self {
        let bytes = digest.finalize();
        let mut hex = String::with_capacity(64);
        for b in bytes {
            hex.push_str(&format!("{b:02x}"));
        }
        ContentHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream of a content's bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes, object_store::Error>>;

/// The object store holding every tenant's evidence contents; cheap to clone.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Where the contents are, for logs (`file:///…` or `s3://bucket/prefix`).
    location: String,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").field("location", &self.location).finish()
    }
}

/// An upload written to a staging object, hashed while it streamed; not yet a content.
#[derive(Debug)]
pub struct StagedUpload {
    path: Path,
    pub sha256: ContentHash,
    pub size: u64,
}

/// Why an upload stopped before it was staged.
#[derive(Debug, thiserror::Error)]
pub enum UploadError<E> {
    /// The body grew past the limit (nothing is kept).
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    /// The client's body failed (disconnect, idle timeout).
    #[error("reading the upload: {0}")]
    Body(E),
    /// The object store failed.
    #[error(transparent)]
    Store(#[from] object_store::Error),
}

impl Storage {
    /// The storage `url` names (`s3://bucket[/prefix]`), or a local folder `evidence`
    /// under `data_dir` when `url` is `None`.
    pub fn from_config(url: Option<&str>, data_dir: &FsPath) -> anyhow::Result<Self> {
        match url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Self::local(&data_dir.join("evidence")),
            Some(url) => Self::s3(url),
        }
    }

    /// Contents in the folder `dir` (created when missing).
    pub fn local(dir: &FsPath) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating the evidence folder {}: {e}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)?;
        Ok(Self { store: Arc::new(store), location: format!("file://{}", dir.display()) })
    }

    /// Contents in an S3-compatible bucket: `s3://bucket[/prefix]`.
    pub fn s3(url: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("CASEFILE_OBJECT_STORE_URL {url:?}: {e}"))?;
        if parsed.scheme() != "s3" || parsed.host_str().is_none_or(str::is_empty) {
            anyhow::bail!("CASEFILE_OBJECT_STORE_URL must look like s3://bucket[/prefix]");
        }
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        let s3 =
            object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket).build()?;
        let prefix = parsed.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, Path::parse(prefix)?))
        };
        Ok(Self { store, location: format!("s3://{bucket}/{prefix}") })
    }

    /// Where the contents are kept, for logs.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn content_path(tenant: TenantId, sha256: &ContentHash) -> Path {
        Path::from(format!("tenants/{}/sha256/{}", tenant.0, sha256.as_str()))
    }

    /// Streams `body` into a staging object of the tenant, hashing every byte, in parts
    /// of a few MiB (never the whole body in memory). Fails with `TooLarge` as soon as
    /// the body passes `limit`; on any failure nothing is kept.
    pub async fn stage<E>(
        &self,
        tenant: TenantId,
        mut body: impl futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        limit: u64,
    ) -> Result<StagedUpload, UploadError<E>> {
        let path = Path::from(format!("tenants/{}/incoming/{}", tenant.0, uuid::Uuid::new_v4()));
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut digest = Sha256::new();
        let mut size: u64 = 0;
        let failure = loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Err(e)) => break Some(UploadError::Body(e)),
                Some(Ok(chunk)) => chunk,
            };
            size += chunk.len() as u64;
            if size > limit {
                break Some(UploadError::TooLarge(limit));
            }
            digest.update(&chunk);
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                break Some(UploadError::Store(e));
            }
            writer.put(chunk);
        };
        if let Some(failure) = failure {
            if let Err(error) = writer.abort().await {
                tracing::warn!(%error, "aborting a failed upload");
            }
            return Err(failure);
        }
        writer.finish().await?;
        Ok(StagedUpload { path, sha256: ContentHash::from_digest(digest), size })
    }

    /// Makes a staged upload the tenant's content of its hash (replacing an equal one).
    pub async fn commit(
        &self,
        tenant: TenantId,
        staged: &StagedUpload,
    ) -> object_store::Result<()> {
        self.store.rename(&staged.path, &Self::content_path(tenant, &staged.sha256)).await
    }

    /// Removes a staged upload that is not needed (a mismatch, a duplicate, a refusal).
    pub async fn discard(&self, staged: StagedUpload) {
        if let Err(error) = self.store.delete(&staged.path).await
            && !matches!(error, object_store::Error::NotFound { .. })
        {
            tracing::warn!(%error, "removing a staged upload");
        }
    }

    /// Streams the tenant's content `sha256`, whole or the byte `range`. `None` when the
    /// store holds no such object. A local file is read in chunks of [`READ_BYTES`].
    pub async fn open(
        &self,
        tenant: TenantId,
        sha256: &ContentHash,
        range: Option<Range<u64>>,
    ) -> object_store::Result<Option<ByteStream>> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        match self.store.get_opts(&Self::content_path(tenant, sha256), options).await {
            Ok(result) => Ok(Some(match result.payload {
                GetResultPayload::File(file, path) => read_file(file, path, result.range),
                GetResultPayload::Stream(stream) => stream,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The size of the tenant's stored object `sha256`, `None` when there is none.
    pub async fn size(
        &self,
        tenant: TenantId,
        sha256: &ContentHash,
    ) -> object_store::Result<Option<u64>> {
        match self.store.head(&Self::content_path(tenant, sha256)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the tenant's content `sha256`; removing what is not there succeeds.
    pub async fn remove(&self, tenant: TenantId, sha256: &ContentHash) -> object_store::Result<()> {
        match self.store.delete(&Self::content_path(tenant, sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The bytes `range` of a local file, one blocking read of up to [`READ_BYTES`] per chunk
/// (no thread is held between chunks, so a reader that waits holds only the file).
fn read_file(file: std::fs::File, path: std::path::PathBuf, range: Range<u64>) -> ByteStream {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let failed = move |path: &std::path::Path, e: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("reading {}: {e}", path.display()).into(),
    };
    let start = range.start;
    let state = (Some(file), path, range.start, range.end);
    futures_util::stream::try_unfold(state, move |(file, path, at, end)| async move {
        let Some(mut file) = file.filter(|_| at < end) else { return Ok(None) };
        let task = tokio::task::spawn_blocking(move || {
            if at == start {
                file.seek(SeekFrom::Start(at))?;
            }
            let want = usize::try_from(end - at).unwrap_or(usize::MAX).min(READ_BYTES);
            let mut buffer = bytes::BytesMut::zeroed(want);
            let mut filled = 0;
            while filled < want {
                match file.read(&mut buffer[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled < want {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file is shorter than its range",
                ));
            }
            buffer.truncate(filled);
            Ok((buffer.freeze(), file))
        });
        match task.await {
            Ok(Ok((chunk, file))) => {
                let next = at + chunk.len() as u64;
                Ok(Some((chunk, (Some(file), path, next, end))))
            }
            Ok(Err(e)) => Err(failed(&path, e)),
            Err(e) => Err(failed(&path, std::io::Error::other(e))),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::ContentHash;

    #[test]
    fn content_hashes_are_64_hex_digits_kept_lowercase() {
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(ContentHash::parse(upper).map(|h| h.0), Some(upper.to_ascii_lowercase()));
        assert!(ContentHash::parse("abc").is_none());
        assert!(ContentHash::parse(&"g".repeat(64)).is_none());
        assert!(ContentHash::parse("../../../etc/passwd").is_none());
    }
}
