//! [`ObjectStoreSink`]: a [`BackupSink`] over `object_store` (R2, S3, filesystem, memory).

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{Attribute, Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore, PutMode};

use crate::builders;
use crate::error::{Error, ErrorKind, Result};
use crate::options::{LocalOptions, MultipartOptions, R2Options, S3Options};
use crate::sink::{BackupSink, ByteStream, Capabilities, ObjectInfo, PutOptions, PutReceipt};
use crate::upload::StreamingPut;
use crate::uploads::{ListerTarget, OpenUpload, UploadLister};

/// S3's DeleteObjects takes at most this many keys.
const DELETE_BATCH: usize = 1000;

/// A [`BackupSink`] backed by an `object_store` store: Cloudflare R2, any S3-compatible
/// endpoint, a local directory, or memory.
///
/// Cheap to clone; clones share one connection pool. `Debug` shows no credentials.
#[derive(Clone)]
pub struct ObjectStoreSink {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    label: String,
    multipart: MultipartOptions,
    /// The same store through its upload-id API, where it has one (S3 and R2): multipart
    /// uploads go through it, so their ids can be recorded and aborted later.
    ids: Option<Arc<dyn MultipartStore>>,
    /// Lists the store's open multipart uploads (S3 and R2).
    lister: Option<UploadLister>,
}

impl std::fmt::Debug for Inner {
    // Not derived: the store's own `Debug` shows the access key id.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStoreSink")
            .field("target", &self.label)
            .field("backend", &self.backend)
            .field("multipart", &self.multipart)
            .finish_non_exhaustive()
    }
}

/// Which kind of store is behind the sink; decides metadata and listing order handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// S3 or R2: stores metadata, lists in key order.
    S3,
    /// A local directory: no metadata, unordered listing.
    Local,
    /// In memory: stores metadata.
    Memory,
}

impl std::fmt::Debug for ObjectStoreSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl ObjectStoreSink {
    /// A sink for a Cloudflare R2 bucket, through R2's S3 API (region `auto`).
    pub fn r2(options: R2Options) -> Result<Self> {
        let (store, ids, label) = builders::r2(&options)?;
        let endpoint = options.endpoint_url();
        let lister = UploadLister::new(&ListerTarget {
            endpoint: &endpoint,
            bucket: &options.bucket,
            region: "auto",
            credentials: &options.credentials,
            allow_http: builders::r2_allow_http(&options),
            timeout: options.http.request_timeout(),
        })?;
        Ok(Self::new(store, Backend::S3, label, options.http.multipart).with_ids(ids, lister))
    }

    /// A sink for a bucket on any S3-compatible endpoint (path-style requests).
    pub fn s3(options: S3Options) -> Result<Self> {
        let (store, ids, label) = builders::s3(&options)?;
        let lister = UploadLister::new(&ListerTarget {
            endpoint: &options.endpoint,
            bucket: &options.bucket,
            region: &options.region,
            credentials: &options.credentials,
            allow_http: options.allow_http,
            timeout: options.http.request_timeout(),
        })?;
        Ok(Self::new(store, Backend::S3, label, options.http.multipart).with_ids(ids, lister))
    }

    /// A sink writing files under `root`, which is created if missing.
    ///
    /// A put writes a temporary file beside the target and renames it into place, so it is
    /// atomic; content type and user metadata are not stored.
    pub fn local(root: impl AsRef<std::path::Path>, options: LocalOptions) -> Result<Self> {
        let (store, label) = builders::local(root.as_ref(), &options)?;
        Ok(Self::new(store, Backend::Local, label, options.multipart))
    }

    /// A sink keeping objects in memory, for tests.
    pub fn memory() -> Self {
        let store = Arc::new(object_store::memory::InMemory::new());
        let multipart = MultipartOptions::default();
        Self::new(store, Backend::Memory, "memory".to_owned(), multipart)
    }

    fn new(
        store: Arc<dyn ObjectStore>,
        backend: Backend,
        label: String,
        multipart: MultipartOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                backend,
                label,
                multipart,
                ids: None,
                lister: None,
            }),
        }
    }

    /// Adds the upload-id API and the upload lister of an S3 or R2 store.
    fn with_ids(mut self, ids: Arc<dyn MultipartStore>, lister: UploadLister) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.ids = Some(ids);
            inner.lister = Some(lister);
        }
        self
    }

    /// The part size and parallelism this sink uses.
    pub fn multipart_options(&self) -> &MultipartOptions {
        &self.inner.multipart
    }

    /// The underlying `object_store` store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    fn store(&self) -> &dyn ObjectStore {
        self.inner.store.as_ref()
    }

    fn attributes(&self, options: &PutOptions) -> Attributes {
        let mut attributes = Attributes::new();
        if self.inner.backend == Backend::Local {
            return attributes;
        }
        if let Some(content_type) = &options.content_type {
            attributes.insert(Attribute::ContentType, content_type.clone().into());
        }
        for (key, value) in &options.metadata {
            attributes.insert(
                Attribute::Metadata(key.clone().into()),
                value.clone().into(),
            );
        }
        attributes
    }
}

#[async_trait]
impl BackupSink for ObjectStoreSink {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<PutReceipt> {
        let path = object_path(key)?;
        let multipart = match options.part_size {
            Some(bytes) => self.inner.multipart.clone().part_size(bytes),
            None => self.inner.multipart.clone(),
        };
        let part_size = multipart.effective_part_size(options.size_hint);
        let put = StreamingPut {
            store: &self.inner.store,
            key,
            path,
            attributes: self.attributes(&options),
            part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
            max_in_flight: multipart.in_flight(),
            ids: self.inner.ids.as_ref(),
            observer: options.upload_observer.clone(),
        };
        put.run(body).await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        let path = object_path(key)?;
        let context = || format!("get {key:?}");
        if let Some(range) = &range
            && range.start >= range.end
        {
            return Err(Error::new(ErrorKind::InvalidInput, context()));
        }
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..Default::default()
        };
        let result = match self.store().get_opts(&path, options).await {
            Ok(result) => result,
            Err(error) => {
                let error = Error::from_store(context(), error);
                return Err(self.range_error(key, range, error).await);
            }
        };
        Ok(result.into_stream().map_err(std::io::Error::from).boxed())
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let path = object_path(key)?;
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        match self.store().get_opts(&path, options).await {
            Ok(result) => Ok(Some(object_info(result.meta, &result.attributes))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(Error::from_store(format!("head {key:?}"), error)),
        }
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectInfo>> {
        let dir = match list_dir(prefix) {
            Ok(dir) => dir,
            Err(error) => return stream::once(async { Err(error) }).boxed(),
        };
        let context = move || format!("list {prefix:?}");
        let listed = self
            .store()
            .list(dir.as_ref())
            .map_err(move |e| Error::from_store(context(), e))
            .try_filter(move |meta| {
                futures::future::ready(meta.location.as_ref().starts_with(prefix))
            })
            .map_ok(|meta| object_info(meta, &Attributes::new()));
        if self.inner.backend == Backend::S3 {
            // S3 and R2 list in ascending UTF-8 byte order already: stream page by page.
            return listed.boxed();
        }
        // Other stores list in no particular order: collect and sort.
        stream::once(async move {
            let mut all: Vec<ObjectInfo> = listed.try_collect().await?;
            all.sort_by(|a, b| a.key.cmp(&b.key));
            Ok::<_, Error>(stream::iter(all.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let paths = keys
            .iter()
            .map(|k| object_path(k))
            .collect::<Result<Vec<_>>>()?;
        for batch in paths.chunks(DELETE_BATCH) {
            let batch: Vec<_> = batch.iter().cloned().map(Ok).collect();
            let mut results = self.store().delete_stream(stream::iter(batch).boxed());
            while let Some(result) = results.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => return Err(Error::from_store("delete objects", error)),
                }
            }
        }
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, body: Bytes, options: PutOptions) -> Result<bool> {
        let path = object_path(key)?;
        let options = object_store::PutOptions {
            mode: PutMode::Create,
            attributes: self.attributes(&options),
            ..Default::default()
        };
        match self.store().put_opts(&path, body.into(), options).await {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(error) => Err(Error::from_store(format!("create {key:?}"), error)),
        }
    }

    fn describe(&self) -> String {
        self.inner.label.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_stores_metadata(self.inner.backend != Backend::Local)
            .with_upload_ids(self.inner.ids.is_some())
            .with_lists_uploads(self.inner.lister.is_some())
    }

    async fn list_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>> {
        match &self.inner.lister {
            Some(lister) => lister.list(prefix).await,
            None => Ok(Vec::new()),
        }
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<bool> {
        let Some(ids) = &self.inner.ids else {
            return Ok(false);
        };
        let path = object_path(key)?;
        match ids.abort_multipart(&path, &upload_id.to_owned()).await {
            // S3 answers NoSuchUpload (404) for an upload already completed or aborted.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(error) => Err(Error::from_store(
                format!("abort an upload of {key:?}"),
                error,
            )),
        }
    }
}

impl ObjectStoreSink {
    /// Stores disagree on a range starting past the end; report it uniformly as invalid input.
    async fn range_error(&self, key: &str, range: Option<Range<u64>>, error: Error) -> Error {
        let Some(range) = range else { return error };
        if error.kind() == ErrorKind::NotFound {
            return error;
        }
        match self.head(key).await {
            Ok(Some(info)) if range.start >= info.size => Error::new(
                ErrorKind::InvalidInput,
                format!("get {key:?} range {range:?}"),
            )
            .with_source(error),
            _ => error,
        }
    }
}

/// Checks `key` against the contract's key rules and converts it.
pub(crate) fn object_path(key: &str) -> Result<Path> {
    let invalid = || Error::new(ErrorKind::InvalidInput, format!("invalid key {key:?}"));
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') || key.contains("//") {
        return Err(invalid());
    }
    let path = Path::parse(key).map_err(|e| invalid().with_source(e))?;
    if path.as_ref() != key {
        return Err(invalid());
    }
    Ok(path)
}

/// The directory to list for a plain string `prefix`: everything up to its last `/`.
fn list_dir(prefix: &str) -> Result<Option<Path>> {
    let Some((dir, _)) = prefix.rsplit_once('/') else {
        return Ok(None);
    };
    if dir.is_empty() {
        return Ok(None);
    }
    object_path(dir).map(Some)
}

fn object_info(meta: ObjectMeta, attributes: &Attributes) -> ObjectInfo {
    let mut info = ObjectInfo::new(meta.location.as_ref(), meta.size);
    info.last_modified = Some(meta.last_modified.into());
    info.etag = meta.e_tag;
    for (attribute, value) in attributes {
        match attribute {
            Attribute::ContentType => info.content_type = Some(value.to_string()),
            Attribute::Metadata(name) => {
                info.metadata.insert(name.to_string(), value.to_string());
            }
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        for good in ["a", "a/b", "d1/2026-11-30/db.sql.gz", "a b/c#1", "ü/x"] {
            assert!(object_path(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "./a", "a/../b", "a/.", "a\nb"] {
            let error = object_path(bad).err().map(|e| e.kind());
            assert_eq!(error, Some(ErrorKind::InvalidInput), "{bad:?}");
        }
    }

    #[test]
    fn list_dirs() {
        let dir = |p| list_dir(p).ok().flatten().map(|p| p.to_string());
        assert_eq!(dir(""), None);
        assert_eq!(dir("d1"), None);
        assert_eq!(dir("d1/"), Some("d1".to_owned()));
        assert_eq!(dir("d1/2026-1"), Some("d1".to_owned()));
        assert_eq!(dir("d1/2026-11-30/"), Some("d1/2026-11-30".to_owned()));
    }
}
