//! A `BackupSink` that forwards to another and counts the calls, so the bench can say how
//! many lists, reads, writes and deletes a run or a prune costs.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use r2_sink::{
    BackupSink, ByteStream, Capabilities, ObjectInfo, OpenUpload, PutOptions, PutReceipt, Result,
};

/// Calls made through a [`Counting`] sink.
#[derive(Debug, Default)]
pub struct Calls {
    pub puts: AtomicU64,
    pub creates: AtomicU64,
    pub gets: AtomicU64,
    pub heads: AtomicU64,
    pub lists: AtomicU64,
    pub listed: AtomicU64,
    pub delete_calls: AtomicU64,
    pub deleted_keys: AtomicU64,
}

/// A snapshot of [`Calls`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub puts: u64,
    pub creates: u64,
    pub gets: u64,
    pub heads: u64,
    pub lists: u64,
    pub listed: u64,
    pub delete_calls: u64,
    pub deleted_keys: u64,
}

impl Calls {
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            puts: get(&self.puts),
            creates: get(&self.creates),
            gets: get(&self.gets),
            heads: get(&self.heads),
            lists: get(&self.lists),
            listed: get(&self.listed),
            delete_calls: get(&self.delete_calls),
            deleted_keys: get(&self.deleted_keys),
        }
    }
}

impl std::ops::Sub for Snapshot {
    type Output = Snapshot;
    fn sub(self, o: Snapshot) -> Snapshot {
        Snapshot {
            puts: self.puts - o.puts,
            creates: self.creates - o.creates,
            gets: self.gets - o.gets,
            heads: self.heads - o.heads,
            lists: self.lists - o.lists,
            listed: self.listed - o.listed,
            delete_calls: self.delete_calls - o.delete_calls,
            deleted_keys: self.deleted_keys - o.deleted_keys,
        }
    }
}

#[derive(Debug)]
pub struct Counting<S> {
    pub inner: S,
    pub calls: Arc<Calls>,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

#[async_trait]
impl<S: BackupSink> BackupSink for Counting<S> {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<PutReceipt> {
        bump(&self.calls.puts, 1);
        self.inner.put_stream(key, body, options).await
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        bump(&self.calls.gets, 1);
        self.inner.get(key, range).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        bump(&self.calls.heads, 1);
        self.inner.head(key).await
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectInfo>> {
        bump(&self.calls.lists, 1);
        let calls = Arc::clone(&self.calls);
        self.inner
            .list(prefix)
            .inspect(move |_| bump(&calls.listed, 1))
            .boxed()
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        bump(&self.calls.delete_calls, 1);
        bump(&self.calls.deleted_keys, keys.len() as u64);
        self.inner.delete_many(keys).await
    }

    async fn put_if_absent(&self, key: &str, body: Bytes, options: PutOptions) -> Result<bool> {
        bump(&self.calls.creates, 1);
        self.inner.put_if_absent(key, body, options).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<bool> {
        self.inner.abort_upload(key, upload_id).await
    }

    async fn list_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>> {
        self.inner.list_uploads(prefix).await
    }
}
