//! [`S3TestServer`]: s3s-fs served in-process on `127.0.0.1:0` over a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::wrapper::{State, TestS3};
use crate::{AllowHttp, Credentials, ObjectStoreSink, R2Options, RetryOptions, S3Options};

const ACCESS_KEY_ID: &str = "r2sink-test-key";
const SECRET_ACCESS_KEY: &str = "r2sink-test-secret";
const BUCKET: &str = "backups";

/// Whether the test server enforces R2's multipart part-size rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum R2Rules {
    /// Accept any part sizes, like s3s-fs itself.
    #[default]
    Ignore,
    /// Refuse CompleteMultipartUpload unless every part but the last has the same size and
    /// the last is no larger, answering `InvalidPart: All non-trailing parts must have the
    /// same length` as R2 does (the upload stays open, as on R2).
    Enforce,
}

/// A multipart upload the server completed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedUpload {
    /// The object's key.
    pub key: String,
    /// The size of each part, in order.
    pub part_sizes: Vec<u64>,
}

/// An S3 server (s3s-fs) running in this process on `127.0.0.1`, for tests.
///
/// It checks SigV4 signatures with fixed test credentials, pre-creates the bucket
/// [`bucket`](Self::bucket), makes `If-None-Match: *` atomic (s3s-fs alone is not), answers
/// 404 for keys that are directories on disk (s3s-fs answers 500), and can enforce R2's part
/// rule ([`R2Rules`]) and inject faults. It stops, and its data directory is deleted, on drop.
#[derive(Debug)]
pub struct S3TestServer {
    endpoint: String,
    dir: tempfile::TempDir,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl S3TestServer {
    /// The access key id every test server accepts.
    pub const ACCESS_KEY_ID: &'static str = ACCESS_KEY_ID;
    /// The secret access key every test server accepts.
    pub const SECRET_ACCESS_KEY: &'static str = SECRET_ACCESS_KEY;
    /// The bucket every test server creates at start.
    pub const BUCKET: &'static str = BUCKET;

    /// Starts a server that accepts any part sizes.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(R2Rules::Ignore).await
    }

    /// Starts a server, enforcing R2's part rule or not.
    pub async fn start_with(rules: R2Rules) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join(BUCKET))?;
        let root = dir.path().canonicalize()?;
        let inner = s3s_fs::FileSystem::new(&root)
            .map_err(|e| std::io::Error::other(format!("s3s-fs: {e:?}")))?;
        let state = Arc::new(State::default());
        let s3 = TestS3 {
            inner,
            root,
            rules,
            state: Arc::clone(&state),
        };
        let mut builder = S3ServiceBuilder::new(s3);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = builder.build();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let accept = tokio::spawn(serve(listener, service));
        Ok(Self {
            endpoint,
            dir,
            state,
            accept,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The access key id the server accepts.
    pub fn access_key_id(&self) -> &str {
        ACCESS_KEY_ID
    }

    /// The secret access key the server accepts.
    pub fn secret_access_key(&self) -> &str {
        SECRET_ACCESS_KEY
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The server's data directory; objects live under `data_dir()/bucket()/key`.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Credentials the server accepts.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    }

    /// Quick retries (3, 10–100 ms apart), so failure tests finish fast.
    pub fn test_retry() -> RetryOptions {
        RetryOptions::default()
            .max_retries(3)
            .backoff(Duration::from_millis(10), Duration::from_millis(100))
    }

    /// Options for an S3 sink on this server's bucket (HTTP allowed, quick retries).
    pub fn s3_options(&self) -> S3Options {
        S3Options::new(self.endpoint(), BUCKET, self.credentials())
            .allow_http(AllowHttp::Yes)
            .retry(Self::test_retry())
    }

    /// Options for an R2 sink pointed at this server (account `0123456789abcdef`).
    pub fn r2_options(&self) -> R2Options {
        R2Options::new("0123456789abcdef", BUCKET, self.credentials())
            .endpoint(self.endpoint())
            .retry(Self::test_retry())
    }

    /// An S3 sink on this server with default part sizes.
    pub fn sink(&self) -> crate::Result<ObjectStoreSink> {
        ObjectStoreSink::s3(self.s3_options())
    }

    /// Ids of multipart uploads started and neither completed nor aborted, as found in the
    /// data directory (upload records and stray part files).
    pub async fn list_multipart_uploads(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let Ok(mut entries) = tokio::fs::read_dir(self.dir.path()).await else {
            return ids;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let id = if let Some(rest) = name.strip_prefix(".upload-") {
                rest.strip_suffix(".json")
                    .or_else(|| rest.split('.').next())
            } else if let Some(rest) = name.strip_prefix(".upload_id-") {
                rest.split(".part-").next()
            } else {
                None
            };
            if let Some(id) = id {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Starts a multipart upload of `key` and leaves it open (no part, never completed), as a
    /// process killed before recording it would; returns its upload id.
    pub async fn start_upload(&self, key: &str) -> crate::Result<String> {
        use object_store::multipart::MultipartStore;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .with_allow_http(true)
            .build()
            .map_err(|e| crate::Error::from_store("test S3 client", e))?;
        store
            .create_multipart(&object_store::path::Path::from(key))
            .await
            .map_err(|e| crate::Error::from_store(format!("start an upload of {key:?}"), e))
    }

    /// Moves the start of every open multipart upload back by `by`, as if it had been
    /// left open that long; ListMultipartUploads reports the earlier time.
    pub fn age_open_uploads(&self, by: std::time::Duration) {
        for upload in self.state.book().open.values_mut() {
            upload.initiated = upload
                .initiated
                .checked_sub(by)
                .unwrap_or(std::time::UNIX_EPOCH);
        }
    }

    /// Multipart uploads completed so far, with their part sizes.
    pub fn completed_uploads(&self) -> Vec<CompletedUpload> {
        self.state.book().completed.clone()
    }

    /// Makes UploadPart requests fail with 500 InternalError: `times` requests in a row,
    /// starting with the `nth` (1-based) counted from this call. Retries count as requests.
    pub fn fail_upload_parts(&self, nth: u64, times: u64) {
        let seen = self.state.upload_part_calls.load(Ordering::SeqCst);
        let start = seen + nth.max(1);
        self.state.book().failing_parts = start..start.saturating_add(times);
    }

    /// Makes the next `times` CompleteMultipartUpload requests fail with 500 InternalError.
    pub fn fail_complete_multipart_uploads(&self, times: u64) {
        self.state.book().failing_completes = times;
    }

    /// The most UploadPart requests the server has handled at the same time.
    pub fn max_concurrent_part_uploads(&self) -> u64 {
        self.state.max_parts_in_progress.load(Ordering::SeqCst)
    }

    /// DeleteObjects (batch delete) requests received so far.
    pub fn delete_objects_requests(&self) -> u64 {
        self.state.delete_objects_calls.load(Ordering::SeqCst)
    }

    /// UploadPart requests received so far (including failed ones).
    pub fn upload_part_requests(&self) -> u64 {
        self.state.upload_part_calls.load(Ordering::SeqCst)
    }

    /// Paths of every regular file stored under the bucket (sidecar files excluded).
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut dirs = vec![self.dir.path().join(BUCKET)];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        // Aborting the accept task drops its JoinSet, which cancels every connection.
        self.accept.abort();
    }
}

async fn serve(listener: TcpListener, service: S3Service) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let service = service.clone();
        connections.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "test S3 connection ended with an error");
            }
        });
    }
}
