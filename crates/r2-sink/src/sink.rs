//! The [`BackupSink`] trait, its contract, and the plain data types it speaks.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::Result;
use crate::uploads::OpenUpload;

/// A stream of bytes: the body of a put, or the result of a get.
///
/// A source that fails yields an [`std::io::Error`]; wrap other errors with
/// [`std::io::Error::other`].
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Where backups are stored: an object store seen through the few operations a backup needs.
///
/// # Contract
///
/// Every implementation guarantees the following; `r2_sink::testing::conformance` checks each point
/// (enable the `testing` feature).
///
/// * **Keys** are `/`-separated, non-empty, with no empty segment, no leading or trailing `/`,
///   and no `.` or `..` segment. A key that breaks these rules is refused with
///   [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
/// * **A put is atomic.** No reader ever sees a partial object: until
///   [`put_stream`](Self::put_stream) returns `Ok`, readers see the previous object at the key
///   or none. A put that fails, whose body stream errors, or whose future is dropped before it
///   completes leaves nothing new at the key and no unfinished multipart upload behind (on
///   S3-like stores the upload is aborted; after a dropped future the abort runs in the
///   background, so it completes shortly after the drop). A later successful put replaces
///   the object whole.
/// * **Puts stream.** The body is read once, front to back, and memory stays bounded whatever
///   the object's size. The receipt's SHA-256 and size are computed from the bytes as they
///   passed, so they describe exactly what was stored.
/// * **Listing** yields every object whose key starts with the prefix (a plain string
///   prefix, not a directory: `"d1/2026-1"` matches `"d1/2026-11-30/x"`), each once, in
///   ascending byte order of keys, however many there are. Listed objects carry size,
///   modification time and ETag, but no metadata; [`head`](Self::head) returns that.
/// * **Metadata**: if [`capabilities`](Self::capabilities) says metadata is stored, the content
///   type and user metadata given at put time come back unchanged from `head` (user metadata
///   keys are lower-case ASCII; others may be case-folded by S3 servers). Otherwise they are
///   dropped silently and `head` returns none.
/// * **Conditional create** ([`put_if_absent`](Self::put_if_absent)) is atomic where the store
///   is: of two racing creators at most one sees `true` (on R2, S3 and memory exactly one).
/// * **Deletes** of missing keys succeed.
#[async_trait]
pub trait BackupSink: Send + Sync + std::fmt::Debug {
    /// Streams `body` into a new object at `key`, atomically replacing any object there.
    ///
    /// On error, nothing new is left at `key`; an error from `body` is reported with
    /// [`ErrorKind::SourceFailed`](crate::ErrorKind::SourceFailed).
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<PutReceipt>;

    /// Reads the object at `key`, whole or the bytes in `range`.
    ///
    /// A range reaching past the end of the object is cut at the end; an empty range, or one
    /// starting at or after the end, is refused with
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput). A missing key is an error
    /// of kind [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream>;

    /// Describes the object at `key`, or returns `None` when there is none.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>>;

    /// Lists every object whose key starts with `prefix`, in ascending byte order of keys.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectInfo>>;

    /// Deletes the objects at `keys`, in batches (1,000 keys a request on S3). Keys that do
    /// not exist are not an error.
    async fn delete_many(&self, keys: &[String]) -> Result<()>;

    /// Creates the object at `key` with `body` unless an object is already there.
    ///
    /// Returns `true` if this call created it, `false` if the key was taken.
    async fn put_if_absent(&self, key: &str, body: Bytes, options: PutOptions) -> Result<bool>;

    /// A human label for logs, without secrets, e.g. `s3://bucket at http://127.0.0.1:9000`.
    fn describe(&self) -> String;

    /// What this sink can do beyond the required contract.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Aborts the unfinished multipart upload `upload_id` of `key`, as an
    /// [`UploadObserver`] was told of it (typically by a run that died before finishing it).
    ///
    /// Returns `true` when the store was asked to abort it (an upload that no longer exists
    /// counts as aborted), `false` when this sink cannot abort uploads by id
    /// ([`Capabilities::upload_ids`] is false; the default).
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<bool> {
        let _ = (key, upload_id);
        Ok(false)
    }

    /// Lists the multipart uploads the store holds open (started, neither completed nor
    /// aborted) for keys starting with `prefix`, in key order.
    ///
    /// Sinks that cannot list them ([`Capabilities::lists_uploads`] is false; the default)
    /// return an empty list.
    async fn list_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>> {
        let _ = prefix;
        Ok(Vec::new())
    }
}

/// Optional abilities of a [`BackupSink`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Content type and user metadata are stored and returned by `head`.
    pub stores_metadata: bool,
    /// Multipart uploads have ids: [`PutOptions::upload_observer`] is told each one before
    /// its first part is sent, and [`BackupSink::abort_upload`] aborts one by id.
    pub upload_ids: bool,
    /// [`BackupSink::list_uploads`] lists the store's open multipart uploads.
    pub lists_uploads: bool,
}

impl Capabilities {
    /// Sets [`Capabilities::stores_metadata`].
    #[must_use]
    pub fn with_stores_metadata(mut self, stores_metadata: bool) -> Self {
        self.stores_metadata = stores_metadata;
        self
    }

    /// Sets [`Capabilities::upload_ids`].
    #[must_use]
    pub fn with_upload_ids(mut self, upload_ids: bool) -> Self {
        self.upload_ids = upload_ids;
        self
    }

    /// Sets [`Capabilities::lists_uploads`].
    #[must_use]
    pub fn with_lists_uploads(mut self, lists_uploads: bool) -> Self {
        self.lists_uploads = lists_uploads;
        self
    }
}

/// A multipart upload that has started: what it takes to abort it later.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStarted {
    /// The key the upload will complete at.
    pub key: String,
    /// The store's upload id.
    pub upload_id: String,
}

impl UploadStarted {
    /// Builds the description (for implementors of [`BackupSink`]).
    pub fn new(key: impl Into<String>, upload_id: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            upload_id: upload_id.into(),
        }
    }
}

/// Told of every multipart upload a put starts, on sinks with [`Capabilities::upload_ids`].
///
/// The put awaits the returned future before it sends the first part, so the observer can
/// record the upload id durably (for example where a later run finds it, should this process
/// die before the upload completes or is aborted).
#[derive(Clone)]
pub struct UploadObserver(Arc<dyn Fn(UploadStarted) -> BoxFuture<'static, ()> + Send + Sync>);

impl UploadObserver {
    /// An observer calling `f` for each upload started.
    pub fn new(
        f: impl Fn(UploadStarted) -> BoxFuture<'static, ()> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(f))
    }

    /// Tells the observer of `started` and waits until it has done what it does.
    pub async fn started(&self, started: UploadStarted) {
        (self.0)(started).await;
    }
}

impl std::fmt::Debug for UploadObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UploadObserver")
    }
}

/// Options for a put.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// The object's content type (`Content-Type`).
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-*` on S3). Use lower-case ASCII keys.
    pub metadata: BTreeMap<String, String>,
    /// The expected size of the body, if known. A hint only: it lets the sink pick a part
    /// size large enough for the object (R2 allows at most 10,000 parts).
    pub size_hint: Option<u64>,
    /// Part size for this put, overriding the sink's [`MultipartOptions`](crate::MultipartOptions)
    /// (still raised to fit `size_hint` and never under 5 MiB). Sinks without parts ignore it.
    pub part_size: Option<u64>,
    /// Told of the multipart upload this put starts, if it starts one (sinks with
    /// [`Capabilities::upload_ids`] only; others ignore it).
    pub upload_observer: Option<UploadObserver>,
}

impl PutOptions {
    /// Sets the content type.
    #[must_use]
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Adds one user metadata entry.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the size hint.
    #[must_use]
    pub fn size_hint(mut self, size: u64) -> Self {
        self.size_hint = Some(size);
        self
    }
}

/// What a successful put stored.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    /// The key written.
    pub key: String,
    /// The number of bytes stored.
    pub size: u64,
    /// SHA-256 of the bytes stored.
    pub sha256: [u8; 32],
    /// The store's ETag for the new object, if it returned one.
    pub etag: Option<String>,
}

impl PutReceipt {
    /// Builds a receipt (for implementors of [`BackupSink`]).
    pub fn new(key: impl Into<String>, size: u64, sha256: [u8; 32], etag: Option<String>) -> Self {
        Self {
            key: key.into(),
            size,
            sha256,
            etag,
        }
    }

    /// The SHA-256 in lower-case hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// A stored object, as listed or headed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, if the store says.
    pub last_modified: Option<SystemTime>,
    /// Its ETag, if the store has one.
    pub etag: Option<String>,
    /// Its content type; only from `head`, and only where metadata is stored.
    pub content_type: Option<String>,
    /// Its user metadata; only from `head`, and only where metadata is stored.
    pub metadata: BTreeMap<String, String>,
}

impl ObjectInfo {
    /// Builds an object description with no content type or metadata (for implementors).
    pub fn new(key: impl Into<String>, size: u64) -> Self {
        Self {
            key: key.into(),
            size,
            last_modified: None,
            etag: None,
            content_type: None,
            metadata: BTreeMap::new(),
        }
    }
}

macro_rules! forward_sink {
    ($ty:ty) => {
        #[async_trait]
        impl<T: BackupSink + ?Sized> BackupSink for $ty {
            async fn put_stream(
                &self,
                key: &str,
                body: ByteStream,
                options: PutOptions,
            ) -> Result<PutReceipt> {
                (**self).put_stream(key, body, options).await
            }

            async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
                (**self).get(key, range).await
            }

            async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
                (**self).head(key).await
            }

            fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectInfo>> {
                (**self).list(prefix)
            }

            async fn delete_many(&self, keys: &[String]) -> Result<()> {
                (**self).delete_many(keys).await
            }

            async fn put_if_absent(
                &self,
                key: &str,
                body: Bytes,
                options: PutOptions,
            ) -> Result<bool> {
                (**self).put_if_absent(key, body, options).await
            }

            fn describe(&self) -> String {
                (**self).describe()
            }

            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }

            async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<bool> {
                (**self).abort_upload(key, upload_id).await
            }

            async fn list_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>> {
                (**self).list_uploads(prefix).await
            }
        }
    };
}

forward_sink!(Arc<T>);
forward_sink!(Box<T>);
