//! Streaming, checksummed, atomic object sinks for backups.
//!
//! [`BackupSink`] is the small trait a backup writes through: streaming put with metadata,
//! whole and ranged get, head, list by prefix, batched delete and conditional create. Its
//! doc comment is the contract every implementation keeps (atomic puts, listing order,
//! which metadata survives).
//!
//! [`ObjectStoreSink`] implements it over [`object_store`] for
//!
//! * Cloudflare R2 ([`ObjectStoreSink::r2`], from an account id, bucket and [`Credentials`]),
//! * any S3-compatible endpoint ([`ObjectStoreSink::s3`]; `http://` only with
//!   [`AllowHttp::Yes`]),
//! * a local directory ([`ObjectStoreSink::local`]; temporary file + rename, optional fsync),
//! * memory ([`ObjectStoreSink::memory`]).
//!
//! Large objects are uploaded in parts that all have the same size (R2 refuses anything
//! else), with a bounded number of parts in memory ([`MultipartOptions`]), so a put of any
//! size uses about `part_size × max_in_flight` bytes of memory. Each put returns a
//! [`PutReceipt`] with the size and SHA-256 of exactly the bytes stored. A put that fails,
//! whose source fails, or that is dropped aborts its multipart upload.
//!
//! ```
//! use bytes::Bytes;
//! use futures::{StreamExt, TryStreamExt, stream};
//! use r2_sink::{BackupSink, ByteStream, ObjectStoreSink, PutOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = ObjectStoreSink::memory();
//! let body: ByteStream = stream::iter([Ok(Bytes::from("hello ")), Ok(Bytes::from("world"))]).boxed();
//! let options = PutOptions::default().content_type("text/plain");
//! let receipt = sink.put_stream("d1/2026-11-30/hello.txt", body, options).await?;
//! assert_eq!(receipt.size, 11);
//!
//! let bytes: Vec<Bytes> = sink.get("d1/2026-11-30/hello.txt", None).await?.try_collect().await?;
//! assert_eq!(bytes.concat(), b"hello world");
//!
//! let keys: Vec<String> = sink.list("d1/").map_ok(|o| o.key).try_collect().await?;
//! assert_eq!(keys, ["d1/2026-11-30/hello.txt"]);
//! # Ok(())
//! # }
//! ```
//!
//! Connecting to R2 (not run here: it needs the network):
//!
//! ```no_run
//! use r2_sink::{Credentials, ObjectStoreSink, R2Options};
//!
//! # fn main() -> r2_sink::Result<()> {
//! let options = R2Options::new("0123abcd", "backups", Credentials::new("key-id", "secret"))
//!     .jurisdiction("eu");
//! let sink = ObjectStoreSink::r2(options)?;
//! # let _ = sink;
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! * `testing` (off by default): the `testing` module, with an in-process S3 server
//!   (`S3TestServer`, s3s-fs on `127.0.0.1`, optional R2 part-size rules and fault
//!   injection) and the conformance suite (`testing::conformance`) that any
//!   [`BackupSink`] implementation can run in its tests. Not for production builds.
#![deny(missing_docs)]

mod builders;
mod error;
mod options;
mod sink;
mod store;
mod upload;
mod uploads;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Error, ErrorKind, Result};
pub use options::{
    AllowHttp, Credentials, Durability, LocalOptions, MAX_PARTS, MIN_PART_SIZE, MultipartOptions,
    R2Options, RetryOptions, S3Options,
};
pub use sink::{
    BackupSink, ByteStream, Capabilities, ObjectInfo, PutOptions, PutReceipt, UploadObserver,
    UploadStarted,
};
pub use store::ObjectStoreSink;
pub use uploads::OpenUpload;
