//! An `s3s::S3` implementation in front of s3s-fs that adds what tests need: R2's equal
//! part rule, fault injection, a record of uploads, atomic conditional writes, and 404 (not
//! 500) for keys that are directories on disk.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use futures::StreamExt;
use s3s::dto::{
    AbortMultipartUploadInput, AbortMultipartUploadOutput, CompleteMultipartUploadInput,
    CompleteMultipartUploadOutput, CopyObjectInput, CopyObjectOutput, CreateBucketInput,
    CreateBucketOutput, CreateMultipartUploadInput, CreateMultipartUploadOutput, DeleteBucketInput,
    DeleteBucketOutput, DeleteObjectInput, DeleteObjectOutput, DeleteObjectsInput,
    DeleteObjectsOutput, GetBucketLocationInput, GetBucketLocationOutput, GetObjectInput,
    GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput,
    ListBucketsInput, ListBucketsOutput, ListMultipartUploadsInput, ListMultipartUploadsOutput,
    ListObjectsInput, ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output, ListPartsInput,
    ListPartsOutput, MultipartUpload, PutObjectInput, PutObjectOutput, UploadPartInput,
    UploadPartOutput,
};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use s3s_fs::FileSystem;

use super::{CompletedUpload, R2Rules};

/// R2's answer to unequal parts, word for word.
const UNEQUAL_PARTS: &str = "All non-trailing parts must have the same length";

/// State shared between the server handle and its request handler.
#[derive(Debug, Default)]
pub(super) struct State {
    /// UploadPart requests seen so far.
    pub(super) upload_part_calls: AtomicU64,
    /// DeleteObjects (batch delete) requests seen so far.
    pub(super) delete_objects_calls: AtomicU64,
    /// UploadPart requests being handled right now.
    pub(super) parts_in_progress: AtomicU64,
    /// The most UploadPart requests ever handled at once.
    pub(super) max_parts_in_progress: AtomicU64,
    /// Mutable bookkeeping, behind a short-lived lock.
    pub(super) book: Mutex<Book>,
    /// Serializes conditional writes so `If-None-Match: *` is atomic, as on R2.
    pub(super) conditional: tokio::sync::Mutex<()>,
}

/// Bookkeeping of uploads and injected faults.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Open multipart uploads by upload id.
    pub(super) open: BTreeMap<String, OpenUpload>,
    /// Sizes of the parts received so far, per upload id and part number.
    pub(super) parts: HashMap<String, BTreeMap<i32, u64>>,
    /// Uploads completed successfully, in order.
    pub(super) completed: Vec<CompletedUpload>,
    /// UploadPart call numbers (1-based, over the server's life) that answer 500.
    pub(super) failing_parts: std::ops::Range<u64>,
    /// How many more CompleteMultipartUpload requests answer 500.
    pub(super) failing_completes: u64,
}

/// A multipart upload started and neither completed nor aborted.
#[derive(Debug, Clone)]
pub(super) struct OpenUpload {
    pub(super) key: String,
    /// When it started, as ListMultipartUploads reports it (tests may move it back).
    pub(super) initiated: SystemTime,
}

impl State {
    pub(super) fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The S3 implementation the test server serves.
#[derive(Debug)]
pub(super) struct TestS3 {
    pub(super) inner: FileSystem,
    pub(super) root: PathBuf,
    pub(super) rules: R2Rules,
    pub(super) state: std::sync::Arc<State>,
}

impl TestS3 {
    fn is_directory(&self, bucket: &str, key: &str) -> bool {
        self.root.join(bucket).join(key).is_dir()
    }

    fn part_path(&self, upload_id: &str, part_number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{part_number}"))
    }

    /// Checks R2's rule: every part but the last the same size, the last no larger.
    fn check_part_sizes(&self, upload_id: &str, numbers: &[i32]) -> S3Result<Vec<u64>> {
        let book = self.state.book();
        let known = book.parts.get(upload_id);
        let sizes: Vec<u64> = numbers
            .iter()
            .map(|n| known.and_then(|parts| parts.get(n)).copied().unwrap_or(0))
            .collect();
        if self.rules == R2Rules::Enforce
            && let Some((first, rest)) = sizes.split_first()
        {
            let (last, middle) = rest.split_last().map_or((first, &[][..]), |(l, m)| (l, m));
            if middle.iter().any(|size| size != first) || last > first {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidPart,
                    UNEQUAL_PARTS,
                ));
            }
        }
        Ok(sizes)
    }
}

fn no_such_upload() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchUpload,
        "The specified multipart upload does not exist.",
    )
}

/// Counts an UploadPart request as in progress for as long as it lives (even if dropped).
struct InProgress<'a>(&'a State);

impl<'a> InProgress<'a> {
    fn new(state: &'a State) -> Self {
        let now = state.parts_in_progress.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_parts_in_progress.fetch_max(now, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.parts_in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

fn no_such_key() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchKey, "The specified key does not exist.")
}

#[async_trait::async_trait]
impl S3 for TestS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.inner.delete_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.inner.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.inner.copy_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.state
            .delete_objects_calls
            .fetch_add(1, Ordering::SeqCst);
        self.inner.delete_objects(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.inner.list_parts(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        if self.is_directory(&req.input.bucket, &req.input.key) {
            return Err(no_such_key());
        }
        self.inner.head_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if self.is_directory(&req.input.bucket, &req.input.key) {
            return Err(no_such_key());
        }
        self.inner.get_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        if req.input.if_none_match.is_some() || req.input.if_match.is_some() {
            let _serialized = self.state.conditional.lock().await;
            return self.inner.put_object(req).await;
        }
        self.inner.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let key = req.input.key.clone();
        let response = self.inner.create_multipart_upload(req).await?;
        if let Some(id) = &response.output.upload_id {
            let mut book = self.state.book();
            let initiated = SystemTime::now();
            book.open.insert(id.clone(), OpenUpload { key, initiated });
            book.parts.insert(id.clone(), BTreeMap::new());
        }
        Ok(response)
    }

    async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let call = self.state.upload_part_calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.state.book().failing_parts.contains(&call) {
            // Read the body first so the client sees a clean 500, not a reset connection.
            if let Some(mut body) = req.input.body.take() {
                while body.next().await.is_some() {}
            }
            return Err(S3Error::with_message(
                S3ErrorCode::InternalError,
                "injected fault",
            ));
        }
        let upload_id = req.input.upload_id.clone();
        let part_number = req.input.part_number;
        if !self.state.book().open.contains_key(&upload_id) {
            return Err(no_such_upload());
        }
        let response = {
            let _counted = InProgress::new(&self.state);
            self.inner.upload_part(req).await?
        };
        let path = self.part_path(&upload_id, part_number);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        let mut book = self.state.book();
        let Some(parts) = book.parts.get_mut(&upload_id) else {
            // Aborted while this part was being written (after the abort removed the other
            // parts): drop it, as S3 does, instead of leaving a stray part file.
            drop(book);
            let _ = std::fs::remove_file(&path);
            return Err(no_such_upload());
        };
        parts.insert(part_number, size);
        Ok(response)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        {
            let mut book = self.state.book();
            if book.failing_completes > 0 {
                book.failing_completes -= 1;
                return Err(S3Error::with_message(
                    S3ErrorCode::InternalError,
                    "injected fault",
                ));
            }
        }
        let upload_id = req.input.upload_id.clone();
        let key = req.input.key.clone();
        let numbers: Vec<i32> = req
            .input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .map(|parts| parts.iter().filter_map(|p| p.part_number).collect())
            .unwrap_or_default();
        let part_sizes = self.check_part_sizes(&upload_id, &numbers)?;
        let response = if req.input.if_none_match.is_some() || req.input.if_match.is_some() {
            let _serialized = self.state.conditional.lock().await;
            self.inner.complete_multipart_upload(req).await?
        } else {
            self.inner.complete_multipart_upload(req).await?
        };
        let mut book = self.state.book();
        book.open.remove(&upload_id);
        book.parts.remove(&upload_id);
        book.completed.push(CompletedUpload { key, part_sizes });
        Ok(response)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let upload_id = req.input.upload_id.clone();
        // Close the upload before s3s-fs deletes its parts, so a part still being written
        // sees it closed and removes itself (see `upload_part`).
        {
            let mut book = self.state.book();
            book.open.remove(&upload_id);
            book.parts.remove(&upload_id);
        }
        self.inner.abort_multipart_upload(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        // As S3 lists them: in key order, then upload id, after the markers, a page at a time.
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let limit =
            usize::try_from(input.max_uploads.unwrap_or(1000).clamp(1, 1000)).unwrap_or(1000);
        let after = (
            input.key_marker.clone().unwrap_or_default(),
            input.upload_id_marker.clone().unwrap_or_default(),
        );
        let mut open: Vec<(String, String, SystemTime)> = self
            .state
            .book()
            .open
            .iter()
            .filter(|(_, upload)| upload.key.starts_with(&prefix))
            .map(|(id, upload)| (upload.key.clone(), id.clone(), upload.initiated))
            .filter(|(key, id, _)| {
                after.0.is_empty()
                    || (key.as_str(), id.as_str()) > (after.0.as_str(), after.1.as_str())
            })
            .collect();
        open.sort();
        let truncated = open.len() > limit;
        open.truncate(limit);
        let last = open.last().map(|(key, id, _)| (key.clone(), id.clone()));
        let uploads = open
            .into_iter()
            .map(|(key, id, initiated)| MultipartUpload {
                key: Some(key),
                upload_id: Some(id),
                initiated: Some(initiated.into()),
                ..Default::default()
            })
            .collect();
        let (next_key_marker, next_upload_id_marker) = match last {
            Some((key, id)) if truncated => (Some(key), Some(id)),
            _ => (None, None),
        };
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            uploads: Some(uploads),
            is_truncated: Some(truncated),
            next_key_marker,
            next_upload_id_marker,
            ..Default::default()
        }))
    }
}
