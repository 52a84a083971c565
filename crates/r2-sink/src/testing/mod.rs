//! Helpers for tests of this crate, of crates using it, and of custom [`BackupSink`]s
//! (feature `testing`).
//!
//! * [`S3TestServer`]: a real S3-protocol server (s3s-fs) started in-process, with optional
//!   R2 part-size rules and fault injection.
//! * [`conformance`]: one async function per guarantee of the [`BackupSink`] contract, and
//!   [`conformance::run_all`].
//!
//! ```
//! use r2_sink::testing::{S3TestServer, conformance};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = S3TestServer::start().await?;
//! let sink = server.sink()?;
//! conformance::head_present_and_absent(&sink).await;
//! # Ok(())
//! # }
//! ```
//!
//! [`BackupSink`]: crate::BackupSink

pub mod conformance;
mod data;
mod server;
mod wrapper;

pub use data::{digest, failing_body, pattern_body, pattern_bytes, pattern_sha256};
pub use server::{CompletedUpload, R2Rules, S3TestServer};
