//! Streaming put: equal-size parts, bounded parts in flight, SHA-256 as bytes pass, and abort
//! on every path that does not complete.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    Attributes, MultipartId, MultipartUpload, ObjectStore, PutMultipartOptions, PutPayload,
    PutResult, UploadPart,
};
use sha2::{Digest, Sha256};
use tokio::task::{JoinError, JoinSet};

use crate::error::{Error, ErrorKind, Result};
use crate::options::MAX_PARTS;
use crate::sink::{ByteStream, PutReceipt, UploadObserver, UploadStarted};

/// One streaming put.
pub(crate) struct StreamingPut<'a> {
    pub(crate) store: &'a Arc<dyn ObjectStore>,
    pub(crate) key: &'a str,
    pub(crate) path: Path,
    pub(crate) attributes: Attributes,
    /// Bytes per part; every part but the last has exactly this many.
    pub(crate) part_size: usize,
    /// Parts in memory at once, counting the one being filled (at least 1).
    pub(crate) max_in_flight: usize,
    /// The store's upload-id API, where it has one: multipart uploads then go through it.
    pub(crate) ids: Option<&'a Arc<dyn MultipartStore>>,
    /// Told of the upload id before the first part is sent.
    pub(crate) observer: Option<UploadObserver>,
}

impl StreamingPut<'_> {
    /// Runs the put: a single PUT if the body fits in one part, else a multipart upload.
    pub(crate) async fn run(self, body: ByteStream) -> Result<PutReceipt> {
        let mut source = Chunker::new(body);
        let first = source
            .next_part(self.part_size)
            .await
            .map_err(|e| self.source_error(e))?;
        let at_end = source.at_end().await.map_err(|e| self.source_error(e))?;
        if at_end {
            return self.single(first, source).await;
        }
        self.multipart(first, source).await
    }

    fn context(&self) -> String {
        format!("put {:?}", self.key)
    }

    fn source_error(&self, error: std::io::Error) -> Error {
        Error::source_failed(self.context(), error)
    }

    async fn single(self, payload: Bytes, source: Chunker) -> Result<PutReceipt> {
        let options = object_store::PutOptions {
            attributes: self.attributes.clone(),
            ..Default::default()
        };
        let result = self
            .store
            .put_opts(&self.path, payload.into(), options)
            .await
            .map_err(|e| Error::from_store(self.context(), e))?;
        Ok(source.receipt(self.key, result.e_tag))
    }

    async fn multipart(self, first: Bytes, mut source: Chunker) -> Result<PutReceipt> {
        let options = PutMultipartOptions {
            attributes: self.attributes.clone(),
            ..Default::default()
        };
        let upload = self.start(options).await?;
        let mut guard = AbortGuard::new(upload);
        match self.upload_parts(&mut guard, first, &mut source).await {
            Ok(etag) => {
                guard.disarm();
                Ok(source.receipt(self.key, etag))
            }
            Err(error) => {
                guard.abort(self.key).await;
                Err(error)
            }
        }
    }

    /// Starts the multipart upload: through the upload-id API where the store has one, and
    /// then the observer is told the id (and awaited) before any part is sent.
    async fn start(&self, options: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        let error = |e| Error::from_store(self.context(), e);
        let Some(ids) = self.ids else {
            return self
                .store
                .put_multipart_opts(&self.path, options)
                .await
                .map_err(error);
        };
        let id = ids
            .create_multipart_opts(&self.path, options)
            .await
            .map_err(error)?;
        let upload = IdUpload {
            store: Arc::clone(ids),
            path: self.path.clone(),
            id: id.clone(),
            parts: Arc::default(),
            next: 0,
        };
        if let Some(observer) = &self.observer {
            observer.started(UploadStarted::new(self.key, id)).await;
        }
        Ok(Box::new(upload))
    }

    /// Sends every part, then completes the upload. Any error leaves the abort to the caller.
    async fn upload_parts(
        &self,
        guard: &mut AbortGuard,
        first: Bytes,
        source: &mut Chunker,
    ) -> Result<Option<String>> {
        let mut next = Some(first);
        let mut parts = 0u64;
        loop {
            let payload = if let Some(payload) = next.take() {
                payload
            } else {
                // Parts already uploaded give their buffers back first, so a store that keeps
                // up needs only a buffer or two, whatever the limit.
                while let Some(done) = guard.tasks.try_join_next() {
                    self.finished(done, source)?;
                }
                // The part about to be filled counts against the limit.
                while guard.tasks.len() + 1 > self.max_in_flight {
                    self.join_one(guard, source).await?;
                }
                source
                    .next_part(self.part_size)
                    .await
                    .map_err(|e| self.source_error(e))?
            };
            if payload.is_empty() {
                break;
            }
            parts += 1;
            if parts > MAX_PARTS {
                // Fail here rather than at the server, after uploading 10,000 parts for nothing.
                let message = format!(
                    "{}: more than {MAX_PARTS} parts of {} bytes; pass a size hint",
                    self.context(),
                    self.part_size
                );
                return Err(Error::new(ErrorKind::InvalidInput, message));
            }
            // The task keeps a handle on the part's buffer, to hand it back for reuse.
            let part = guard.upload_mut()?.put_part(sliced(&payload));
            guard.tasks.spawn(async move { (part.await, payload) });
        }
        while !guard.tasks.is_empty() {
            self.join_one(guard, source).await?;
        }
        let result = guard
            .upload_mut()?
            .complete()
            .await
            .map_err(|e| Error::from_store(self.context(), e))?;
        Ok(result.e_tag)
    }

    /// Waits for one part upload to finish and surfaces its error.
    async fn join_one(&self, guard: &mut AbortGuard, source: &mut Chunker) -> Result<()> {
        match guard.tasks.join_next().await {
            None => Ok(()),
            Some(done) => self.finished(done, source),
        }
    }

    /// Surfaces a finished part upload's error; its buffer goes back to `source` for reuse.
    fn finished(
        &self,
        done: std::result::Result<PartDone, JoinError>,
        source: &mut Chunker,
    ) -> Result<()> {
        match done {
            Ok((Ok(()), buffer)) => {
                source.recycle(buffer);
                Ok(())
            }
            Ok((Err(e), _)) => Err(Error::from_store(self.context(), e)),
            Err(join) => Err(Error::new(ErrorKind::Permanent, self.context()).with_source(join)),
        }
    }
}

/// A multipart upload through the store's upload-id API ([`MultipartStore`]), so that its id
/// is known: the same steps as the store's own [`MultipartUpload`].
struct IdUpload {
    store: Arc<dyn MultipartStore>,
    path: Path,
    id: MultipartId,
    /// Each part's id by index, filled in as part uploads finish (in any order).
    parts: Arc<Mutex<Vec<Option<PartId>>>>,
    /// The index of the next part.
    next: usize,
}

impl std::fmt::Debug for IdUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdUpload")
            .field("path", &self.path)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MultipartUpload for IdUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let index = self.next;
        self.next += 1;
        let (store, path, id) = (Arc::clone(&self.store), self.path.clone(), self.id.clone());
        let parts = Arc::clone(&self.parts);
        Box::pin(async move {
            let part = store.put_part(&path, &id, index, data).await?;
            let mut parts = parts.lock().unwrap_or_else(PoisonError::into_inner);
            if parts.len() <= index {
                parts.resize(index + 1, None);
            }
            parts[index] = Some(part);
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts: Option<Vec<PartId>> = self
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let parts =
            parts
                .filter(|p| p.len() == self.next)
                .ok_or_else(|| object_store::Error::Generic {
                    store: "r2-sink",
                    source: "a part of the upload did not finish".into(),
                })?;
        self.store
            .complete_multipart(&self.path, &self.id, parts)
            .await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.store.abort_multipart(&self.path, &self.id).await
    }
}

/// A finished part upload: its outcome, and the part's buffer.
type PartDone = (object_store::Result<()>, Bytes);

/// The size of the slices a part is handed to the store in. The filesystem store writes each
/// slice with its own write(2), and Linux copies a large write out of a cold buffer two to
/// three times slower than a series of 64 KiB writes (measured for issue 8: 1 GiB from a
/// reused 16 MiB buffer in 1 MiB writes, 0.63–1.24 s; in 64 KiB writes, 0.34–0.37 s).
const SLICE: usize = 64 * 1024;

/// `part` as a payload of `SLICE`-sized slices of its buffer (no copy).
fn sliced(part: &Bytes) -> PutPayload {
    (0..part.len())
        .step_by(SLICE)
        .map(|at| part.slice(at..part.len().min(at + SLICE)))
        .collect()
}

/// Owns an unfinished multipart upload and its part tasks; aborts the upload unless disarmed.
///
/// Dropping it (for example because the put future was dropped) cancels the part tasks and
/// aborts the upload in a background task, so no multipart upload is left behind.
struct AbortGuard {
    /// The upload; `None` once completed or aborted.
    upload: Option<Box<dyn MultipartUpload>>,
    /// Part uploads in flight, each holding one part's bytes (returned when it finishes).
    tasks: JoinSet<PartDone>,
}

impl AbortGuard {
    fn new(upload: Box<dyn MultipartUpload>) -> Self {
        Self {
            upload: Some(upload),
            tasks: JoinSet::new(),
        }
    }

    fn upload_mut(&mut self) -> Result<&mut Box<dyn MultipartUpload>> {
        self.upload
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Permanent, "multipart upload already finished"))
    }

    fn disarm(&mut self) {
        self.upload = None;
    }

    /// Cancels the parts in flight, then aborts the upload, waiting for both.
    /// The upload stays in the guard until the abort finishes, so a put dropped while
    /// aborting still gets its abort from `Drop`.
    async fn abort(&mut self, key: &str) {
        self.tasks.shutdown().await;
        if let Some(upload) = self.upload.as_mut()
            && let Err(error) = upload.abort().await
        {
            tracing::warn!(key, %error, "could not abort multipart upload");
        }
        self.upload = None;
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        let mut tasks = std::mem::take(&mut self.tasks);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tasks.shutdown().await;
                if let Err(error) = upload.abort().await {
                    tracing::warn!(%error, "could not abort multipart upload of a dropped put");
                }
            });
        }
    }
}

/// Cuts a byte stream into parts of exactly `part_size` bytes (the last may be shorter),
/// hashing and counting every byte as it arrives.
///
/// Chunks are copied into part buffers, and a buffer whose upload finished is reused for a
/// later part. Keeping the source's chunks instead (zero-copy) would keep alive whatever
/// they are slices of: a network body's chunks are cut from larger read buffers, so parts
/// made of them held up to half again their size (issue 8: 105 MiB peak RSS against a bound
/// of 96 MiB at the defaults). With copies, parts hold exactly their bytes, the source's
/// buffers are freed as soon as they are copied, and after the first `max_in_flight` parts
/// no new part memory is allocated (or page-faulted in). The copy costs less than the
/// page faults it saves.
struct Chunker {
    body: ByteStream,
    /// Bytes read from `body` but not yet copied into a part (already hashed).
    leftover: Bytes,
    /// Whether `body` has ended.
    ended: bool,
    hasher: Sha256,
    size: u64,
    /// Buffers of finished parts, ready for reuse.
    spare: Vec<BytesMut>,
}

impl Chunker {
    fn new(body: ByteStream) -> Self {
        Self {
            body,
            leftover: Bytes::new(),
            ended: false,
            hasher: Sha256::new(),
            size: 0,
            spare: Vec::new(),
        }
    }

    /// Takes back a finished part's buffer, if nothing else still holds it.
    fn recycle(&mut self, part: Bytes) {
        if let Ok(mut buffer) = part.try_into_mut() {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// Reads the next non-empty chunk into `leftover`, unless it already holds bytes.
    async fn fill(&mut self) -> std::io::Result<()> {
        while self.leftover.is_empty() && !self.ended {
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.hasher.update(&chunk);
                    self.size += chunk.len() as u64;
                    self.leftover = chunk;
                }
                Some(Err(error)) => return Err(error),
                None => self.ended = true,
            }
        }
        Ok(())
    }

    /// Whether the body has no more bytes.
    async fn at_end(&mut self) -> std::io::Result<bool> {
        self.fill().await?;
        Ok(self.leftover.is_empty())
    }

    /// The next `part_size` bytes, fewer only at the end of the body (empty when it ended).
    async fn next_part(&mut self, part_size: usize) -> std::io::Result<Bytes> {
        // A fresh buffer's untouched capacity costs address space, not memory: a small body
        // makes only the pages it fills resident.
        let mut part = self
            .spare
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(part_size));
        part.reserve(part_size);
        while part.len() < part_size {
            self.fill().await?;
            if self.leftover.is_empty() {
                break;
            }
            let take = (part_size - part.len()).min(self.leftover.len());
            part.extend_from_slice(&self.leftover.split_to(take));
        }
        Ok(part.freeze())
    }

    fn receipt(self, key: &str, etag: Option<String>) -> PutReceipt {
        PutReceipt::new(key, self.size, self.hasher.finalize().into(), etag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        let chunks: Vec<_> = chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        stream::iter(chunks).boxed()
    }

    async fn parts(chunks: &[&'static [u8]], part_size: usize) -> Vec<usize> {
        let mut chunker = Chunker::new(body(chunks));
        let mut sizes = Vec::new();
        loop {
            let part = chunker.next_part(part_size).await.unwrap_or_default();
            if part.is_empty() {
                return sizes;
            }
            sizes.push(part.len());
        }
    }

    #[tokio::test]
    async fn cuts_equal_parts_across_chunk_boundaries() {
        type Case = (&'static [&'static [u8]], usize, &'static [usize]);
        let cases: &[Case] = &[
            (&[b"abcdefg"], 3, &[3, 3, 1]),
            (&[b"ab", b"", b"cd", b"ef"], 3, &[3, 3]),
            (&[b"a", b"b", b"c", b"d"], 2, &[2, 2]),
            (&[], 4, &[]),
            (&[b"abcdefghij"], 4, &[4, 4, 2]),
        ];
        for (chunks, part_size, expected) in cases {
            assert_eq!(&parts(chunks, *part_size).await, expected, "{chunks:?}");
        }
    }

    #[tokio::test]
    async fn reuses_the_buffers_of_finished_parts() {
        let mut chunker = Chunker::new(body(&[b"abcd", b"efgh", b"ij"]));
        let first = chunker.next_part(4).await.unwrap_or_default();
        let address = first.as_ptr();
        chunker.recycle(first);
        let second = chunker.next_part(4).await.unwrap_or_default();
        assert_eq!((&second[..], second.as_ptr()), (&b"efgh"[..], address));
        // A part still held elsewhere (an upload not yet dropped) is not reused.
        let held = second.clone();
        chunker.recycle(second);
        let third = chunker.next_part(4).await.unwrap_or_default();
        assert_eq!(&third[..], b"ij");
        assert_ne!(third.as_ptr(), held.as_ptr());
    }

    #[tokio::test]
    async fn hashes_and_counts_every_byte() {
        let mut chunker = Chunker::new(body(&[b"hello ", b"world"]));
        while chunker.next_part(4).await.map_or(0, |p| p.len()) > 0 {}
        let receipt = chunker.receipt("k", None);
        assert_eq!(receipt.size, 11);
        assert_eq!(
            receipt.sha256_hex(),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
