//! A `BackupSink` that adds a round trip to every read and every listed page of another, as a
//! model of a remote store (R2 over the internet) for benchmarks of how many requests a
//! command makes.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use r2_sink::{
    BackupSink, ByteStream, Capabilities, ObjectInfo, OpenUpload, PutOptions, PutReceipt, Result,
};

/// Keys per listed page, as S3's ListObjectsV2 answers them.
const PAGE: u64 = 1000;

/// `inner`, with `latency` before every read and every page of a listing.
#[derive(Debug)]
pub struct Delayed<S> {
    pub inner: S,
    pub latency: Duration,
}

impl<S> Delayed<S> {
    async fn round_trip(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

#[async_trait]
impl<S: BackupSink> BackupSink for Delayed<S> {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<PutReceipt> {
        self.round_trip().await;
        self.inner.put_stream(key, body, options).await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        self.round_trip().await;
        self.inner.get(key, range).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.round_trip().await;
        self.inner.head(key).await
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectInfo>> {
        let latency = self.latency;
        let seen = Arc::new(AtomicU64::new(0));
        self.inner
            .list(prefix)
            .then(move |item| {
                let seen = Arc::clone(&seen);
                async move {
                    // A page's round trip is paid before its first key.
                    if seen.fetch_add(1, Ordering::Relaxed) % PAGE == 0 && !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    item
                }
            })
            .boxed()
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        self.round_trip().await;
        self.inner.delete_many(keys).await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes, options: PutOptions) -> Result<bool> {
        self.round_trip().await;
        self.inner.put_if_absent(key, body, options).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<bool> {
        self.round_trip().await;
        self.inner.abort_upload(key, upload_id).await
    }

    async fn list_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>> {
        self.round_trip().await;
        self.inner.list_uploads(prefix).await
    }
}
