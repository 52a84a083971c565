//! Orchestration for Cloudflare D1 backups.
//!
//! `d1-backup-core` joins the D1 API client ([`d1_export`]) to a storage sink ([`r2_sink`]):
//! it loads and validates the [`Config`], plans which databases a run covers, exports each one
//! and streams its dump into the sink at `<prefix>/<YYYY-MM-DD>/<db-name>.sql`, and reports
//! what happened in a [`RunReport`].
//!
//! The caller owns the process: it supplies the secrets ([`Secrets::resolve`] takes a lookup
//! function; the library never reads the environment), the cancellation token, the run date
//! and a [`Progress`] reporter (`&()` for none). The library never prints or exits.
//!
//! ```no_run
//! use std::path::Path;
//! use d1_backup_core::{Config, Engine, RunOptions, Secrets};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let path = Path::new("d1-backup.toml");
//! let config = Config::load(path)?;
//! let secrets = Secrets::resolve(&config, path, |name| std::env::var(name).ok())?;
//! let engine = Engine::builder(config, secrets).build()?;
//! let today = chrono::Utc::now().date_naive();
//! let report = engine
//!     .run(&RunOptions::new(today), &(), &CancellationToken::new())
//!     .await?;
//! for db in &report.databases {
//!     println!("{} {} {:?}", db.name, db.status.as_str(), db.error);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! - `compression`: zstd and gzip dumps (`[run] compression`, per-database overrides).
//! - `sqlite`: the local source — SQLite files and wrangler state directories dumped in D1's
//!   export format (`sqlite::dump_sqlite`) — and everything that restores a dump: the restore
//!   into SQLite (`restore_dump`), `Engine::verify` (with the comparison against the live
//!   database), `run --verify`, and restores into SQLite or D1 (`Engine::restore_plan`).
//!   Splitting a dump into statements ([`DumpStatements`]) needs no feature.
//! - `testing`: `testing::SqliteD1`, a real SQLite database behind the D1 simulator of
//!   `d1_export::testing`, for tests of code that embeds this crate.
//!
//! They are off by default so that an embedding service compiles only what it uses; the
//! `d1-backup` command enables `compression` and `sqlite`.

#![deny(missing_docs)]

mod compression;
mod config;
mod dump;
mod engine;
mod error;
mod existing;
mod heartbeat;
mod inspect;
mod layout;
mod lease;
#[cfg(feature = "sqlite")]
mod live;
mod local;
mod manifest;
mod options;
mod plan;
mod progress;
mod prune;
mod report;
#[cfg(feature = "sqlite")]
mod restore;
#[cfg(feature = "sqlite")]
mod restore_backup;
mod retention;
mod run;
mod schedule;
mod secrets;
mod sinks;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod transfer;
mod validate;
#[cfg(feature = "sqlite")]
mod verify;
mod vtab_export;
mod wrangler;

pub use compression::Compression;
pub use config::{
    AccountConfig, CloudflareConfig, Config, DatabaseEntry, HeartbeatConfig, KvHeartbeat,
    RetentionConfig, RunConfig, SinkConfig, SinkKind, VerifyMode,
};
pub use dump::{DumpStatements, RestoreError};
pub use engine::{Engine, EngineBuilder};
pub use error::{ConfigError, Error, ErrorKind, Problem, Result};
pub use heartbeat::{HEARTBEAT_VERSION, Heartbeat, HeartbeatDatabase, HeartbeatOutcome, Totals};
pub use inspect::{AccountDatabases, BackupListing, Check, RemoteDatabase};
pub use layout::{
    LayoutKey, date_prefix, dump_key, dump_key_for, manifest_key, parse_key, verification_key,
};
#[cfg(feature = "sqlite")]
pub use live::{Finding, FindingKind, LiveComparison, TableComparison};
pub use manifest::{
    DumpConsistency, MANIFEST_KIND, MANIFEST_VERSION, Manifest, ManifestDatabase, ManifestDump,
};
pub use plan::Selector;
pub use progress::{EventKind, Progress, ProgressEvent};
pub use prune::{PruneDecision, PruneMode, PruneOptions, PruneReport};
pub use report::{DatabaseReport, RunReport, Status};
#[cfg(feature = "sqlite")]
pub use restore::{
    KEEP_GOING_LISTED, RestoreStats, check_database, count_rows, restore_dump,
    restore_dump_keep_going, restore_to_path,
};
#[cfg(feature = "sqlite")]
pub use restore_backup::{
    Confirm, D1_MAX_STATEMENT_BYTES, PlannedTarget, RestoreBackupError, RestorePlan, RestoreReport,
    RestoreRequest, RestoreSource, RestoreTarget,
};
pub use retention::{Action, RetentionPolicy};
pub use options::{Force, RunOptions};
pub use schedule::{DaemonEvent, Schedule};
pub use secrets::Secrets;
#[cfg(feature = "sqlite")]
pub use verify::{
    VERIFICATION_KIND, VERIFICATION_VERSION, Verification, VerificationRecord, VerifyOptions,
};

/// Re-exported so embedding services name the same versions.
pub use {chrono, d1_export, r2_sink, tokio_util};
