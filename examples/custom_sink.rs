//! A custom `BackupSink`: a wrapper that counts bytes and refuses keys outside an allowed
//! prefix, in front of any other sink. Implementations get the `Arc`/`Box` forwarding impls and
//! can be checked with `r2_sink::testing::conformance::run_all` (feature `testing`).
//!
//! ```sh
//! cargo run --example custom_sink
//! ```

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use d1_backup::core::chrono::NaiveDate;
use d1_backup::core::tokio_util::sync::CancellationToken;
use d1_backup::core::{Config, Engine, RunOptions, Secrets};
use d1_backup::r2_sink::{
    BackupSink, ByteStream, Capabilities, Error, ErrorKind, ObjectInfo, ObjectStoreSink,
    OpenUpload, PutOptions, PutReceipt, Result,
};
use futures::stream::BoxStream;

/// Forwards to `inner`, counting bytes written and keeping writes under `allowed`.
#[derive(Debug)]
struct Guarded<S> {
    inner: S,
    allowed: String,
    written: AtomicU64,
}

impl<S: BackupSink> Guarded<S> {
    fn check(&self, key: &str) -> Result<()> {
        if key.starts_with(&self.allowed) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{key} is outside {}", self.allowed),
            ))
        }
    }
}

#[async_trait::async_trait]
impl<S: BackupSink> BackupSink for Guarded<S> {
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        options: PutOptions,
    ) -> Result<PutReceipt> {
        self.check(key)?;
        let receipt = self.inner.put_stream(key, body, options).await?;
        self.written.fetch_add(receipt.size, Ordering::Relaxed);
        Ok(receipt)
    }

    async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream> {
        self.inner.get(key, range).await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.inner.head(key).await
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectInfo>> {
        self.inner.list(prefix)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        keys.iter().try_for_each(|k| self.check(k))?;
        self.inner.delete_many(keys).await
    }

    async fn put_if_absent(
        &self,
        key: &str,
        body: bytes::Bytes,
        options: PutOptions,
    ) -> Result<bool> {
        self.check(key)?;
        self.inner.put_if_absent(key, body, options).await
    }

    fn describe(&self) -> String {
        format!("guarded({}) under {}", self.inner.describe(), self.allowed)
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<bool> {
        self.check(key)?;
        self.inner.abort_upload(key, upload_id).await
    }

    async fn list_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>> {
        let mut uploads = self.inner.list_uploads(prefix).await?;
        uploads.retain(|upload| upload.key.starts_with(&self.allowed));
        Ok(uploads)
    }
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.toml");
    let config = Config::load(&path)?;
    let secrets = Secrets::resolve(&config, &path, |_| None)?;
    let sink = Arc::new(Guarded {
        inner: ObjectStoreSink::memory(),
        allowed: "local/".to_owned(),
        written: AtomicU64::new(0),
    });
    let engine = Engine::builder(config, secrets)
        .sink(sink.clone())
        .build()?;
    let date = NaiveDate::from_ymd_opt(2026, 11, 30).ok_or("bad date")?;
    let report = engine
        .run(&RunOptions::new(date), &(), &CancellationToken::new())
        .await?;
    println!(
        "{} databases into {}: {} bytes written",
        report.databases.len(),
        sink.describe(),
        sink.written.load(Ordering::Relaxed)
    );
    Ok(())
}
