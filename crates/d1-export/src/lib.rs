//! A client for the Cloudflare D1 HTTP API, built for backups.
//!
//! [`D1Client`] lists databases, reads their details, runs an export to a
//! finished dump ([`D1Client::export`]), downloads it as a resumable byte
//! stream ([`D1Client::download`]), runs read queries for verification,
//! imports a dump for restore, creates databases ([`D1Client::create_database`]),
//! reads Time Travel bookmarks ([`D1Client::current_bookmark`]) and restores a database
//! in place to one ([`D1Client::time_travel_restore`]), and reads an R2 bucket's lock rules
//! ([`D1Client::bucket_lock_rules`], the same Cloudflare API).
//!
//! - Every call made through one client (and its clones) shares one request
//!   budget ([`RateLimit`]), so many concurrent exports cannot trip the
//!   account-wide 429 lockout. 429s wait for `retry-after`; transient
//!   failures back off with jitter ([`RetryPolicy`]); 400/401/403/404 are
//!   never retried. Calls that change something and must not happen twice
//!   (creating a database, a Time Travel restore) are sent again only when
//!   the first attempt provably did nothing; otherwise they fail with
//!   [`ErrorKind::OutcomeUnknown`].
//! - The API token ([`ApiToken`]) and signed URLs ([`SignedUrl`]) redact
//!   themselves; no error or log event shows the token or a URL's query.
//! - Errors are one type, [`Error`], grouped by [`ErrorKind`] with
//!   [`Error::is_retryable`].
//!
//! # Example
//!
//! ```no_run
//! use d1_export::{ApiToken, D1Client, ExportEvent, ExportOptions};
//! use futures::StreamExt;
//!
//! # async fn run() -> d1_export::Result<()> {
//! let client = D1Client::builder(ApiToken::from("token")).build()?;
//! let exported = client
//!     .export("account-id", "database-id", &ExportOptions::default(), &|event: &ExportEvent| {
//!         if let ExportEvent::Message(text) = event {
//!             eprintln!("{text}");
//!         }
//!     })
//!     .await?;
//! let download = client.download(&exported.signed_url).await?;
//! let mut bytes = download.into_stream();
//! let mut total = 0;
//! while let Some(chunk) = bytes.next().await {
//!     total += chunk?.len();
//! }
//! println!("{} bytes from {}", total, exported.signed_url); // the URL prints redacted
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! - `testing`: `testing::D1Simulator`, a stateful simulator of the D1 API
//!   on loopback with fault injection, for dependants' tests; a simulated
//!   database can have a real one behind it (`testing::SimulatedDatabase`).
//!   Never enable it in production builds.
//! - `fuzzing`: a hidden entry point for the fuzz targets in `fuzz/`; not an API.
//!
//! TLS is rustls through `reqwest`.

#![deny(missing_docs)]

mod bucket_lock;
mod client;
mod databases;
mod download;
mod error;
mod export;
mod export_run;
#[cfg(feature = "fuzzing")]
mod fuzzing;
mod import;
mod import_source;
mod policy;
mod query;
mod secret;
mod time_travel;
mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use bucket_lock::{LockCondition, LockRule};
pub use client::{D1Client, D1ClientBuilder, RequestCounts};
pub use databases::{DatabaseInfo, DatabaseSummary};
pub use download::Download;
pub use error::{Error, ErrorKind, Result};
pub use export::{
    CompletedExport, DumpOptions, ExportEvent, ExportOptions, ExportState, ExportStatus,
};
pub use import::{CompletedImport, ImportEvent};
pub use import_source::{ImportOptions, ImportSource};
pub use policy::{RateLimit, RetryPolicy};
pub use query::{QueryResult, RawResult};
pub use secret::{ApiToken, SignedUrl};
pub use time_travel::{TimeTravelPoint, TimeTravelRestore};

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use fuzzing::fuzz_decode;
