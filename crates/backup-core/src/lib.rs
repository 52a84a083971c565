//! Orchestration for Cloudflare D1 backups.
//!
//! `d1-backup-core` joins the D1 API client ([`d1_export`]) to a storage sink ([`r2_sink`]):
//! it loads and validates the [`Config`], plans which databases a run covers, exports each one
//! and streams its dump into the sink at `<prefix>/<YYYY-MM-DD>/<db-name>.sql`, and reports
//! what happened in a [`RunReport`]. Each D1 database is read as its [`ExportMode`] says:
//! through D1's export endpoint (`d1`, the default), or online through the query API in
//! keyset pages with exact values and no export at all (`online`; `auto` chooses by size).
//!
//! The caller owns the process: it supplies the secrets ([`Secrets::with`] in code, or
//! [`Secrets::resolve`] with a lookup function; the library never reads the environment), the
//! HTTP client if it wants to share its own ([`EngineBuilder::http_client`]), the cancellation
//! token, the run date and a [`Progress`] reporter (`&()` for none), and may supply the
//! [`Clock`] that leases and schedules are decided by ([`EngineBuilder::clock`]). The library
//! never prints or exits.
//!
//! # Configuration in code
//!
//! A service that keeps its settings elsewhere builds the [`Config`] in code:
//! [`Config::builder`] takes the sink, and every part has constructors and setters
//! ([`SinkConfig::r2`], [`AccountConfig::new`], [`DatabaseEntry::named`],
//! [`RetentionConfig`], [`RunConfig`], ...). [`ConfigBuilder::build`] validates it by the same
//! rules as a file, reporting every problem at once with its field (`accounts[0].prefix`)
//! in [`Error::problems`]. Paths are taken as given (absolute, or relative to the process's
//! working directory). A failed database carries its typed [`Error`] in
//! [`DatabaseReport::cause`], to match on its [`ErrorKind`] and decide whether to retry.
//!
//! ```no_run
//! use d1_backup_core::tokio_util::sync::CancellationToken;
//! use d1_backup_core::{
//!     AccountConfig, Config, DatabaseEntry, Engine, ErrorKind, RetentionConfig, RunOptions,
//!     Secrets, SinkConfig, Status,
//! };
//!
//! # async fn demo(token: String, key_id: String, secret_key: String)
//! # -> Result<(), d1_backup_core::Error> {
//! let config = Config::builder(
//!     SinkConfig::r2("e5a9830215a8d88961dc6c80a8c7442a", "backups")
//!         .credentials("R2_KEY_ID", "R2_SECRET"),
//! )
//! .retention(RetentionConfig::default().keep_days(14))
//! .account(
//!     AccountConfig::new("main", "d1")
//!         .account_id("e5a9830215a8d88961dc6c80a8c7442a")
//!         .token_env("CF_API_TOKEN")
//!         .database(DatabaseEntry::named("ops-db")),
//! )
//! .build()?;
//! // The values come from the service's own secret store, never from the environment.
//! let secrets = Secrets::new()
//!     .with("CF_API_TOKEN", token)
//!     .with("R2_KEY_ID", key_id)
//!     .with("R2_SECRET", secret_key);
//! let engine = Engine::builder(config, secrets)
//!     .http_client(d1_backup_core::reqwest::Client::new())
//!     .build()?;
//!
//! let today = chrono::Utc::now().date_naive();
//! let report = engine
//!     .run(&RunOptions::new(today), &(), &CancellationToken::new())
//!     .await?;
//! for db in &report.databases {
//!     match (db.status, db.cause.as_ref()) {
//!         (Status::Failed, Some(error)) if error.kind() == ErrorKind::Unauthorized => {
//!             eprintln!("{}: the token was refused; rotate it", db.name);
//!         }
//!         (Status::Failed, Some(error)) if error.is_retryable() => {
//!             eprintln!("{}: {error}; will retry later", db.name);
//!         }
//!         (status, _) => println!("{} {} {}", db.name, status.as_str(), db.key),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! A configuration that breaks a rule names every field at fault:
//!
//! ```
//! use d1_backup_core::{AccountConfig, Config, DatabaseEntry, ErrorKind, RetentionConfig, SinkConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let built = Config::builder(SinkConfig::fs("/var/backups/d1"))
//!     .retention(RetentionConfig::default().keep_days(0))
//!     .account(AccountConfig::new("main", "/d1").database(DatabaseEntry::named("ops-db")))
//!     .build();
//! let Err(error) = built else {
//!     return Err("an invalid configuration was accepted".into());
//! };
//! assert_eq!(error.kind(), ErrorKind::Config);
//! let fields: Vec<&str> = error.problems().iter().map(|p| p.field.as_str()).collect();
//! assert_eq!(
//!     fields,
//!     ["retention.keep_days", "accounts[0].account_id", "accounts[0].token_env", "accounts[0].prefix"]
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # Encryption
//!
//! With [`EncryptionConfig`] (`[encryption]`, or [`ConfigBuilder::encryption`]) every dump is
//! encrypted with [age](https://age-encryption.org/v1) to X25519 public keys as it streams,
//! after compression, and stored as `<db>.sql.age`; the age CLI decrypts it without this
//! crate. Backing up needs only the public keys ([`Recipients`]). Reading a backup back
//! (verify, restore) needs an [`AgeIdentity`]: [`EngineBuilder::identity`], or
//! `identity_file`; without one that is among the backup's recipients those calls fail with
//! [`ErrorKind::Config`] before anything is read or written.
//!
//! # Configuration from a file
//!
//! The `d1-backup` command reads the same model from TOML; its relative paths are relative to
//! the file.
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
//! # Errors
//!
//! Every fallible call returns the crate's one [`Error`]: its [`ErrorKind`] groups failures
//! by what the caller can do (fix the configuration, rotate a token, wait and retry, back up
//! again), [`Error::is_retryable`] says whether the same call may succeed later unchanged,
//! and its [`source`](std::error::Error::source) chain keeps the cause (a
//! [`d1_export::Error`], an [`r2_sink::Error`], a [`ConfigError`], an I/O error). Messages say
//! what is wrong in library terms; they never name a command-line flag, and never hold a
//! secret. A database that fails in a run does not fail the run: its [`DatabaseReport`]
//! carries the [`Error`] in `cause`.
//!
//! # Crate features
//!
//! - `compression`: zstd and gzip dumps (`[run] compression`, per-database overrides).
//! - `sqlite`: the local source — SQLite files and wrangler state directories dumped in D1's
//!   export format (`sqlite::dump_sqlite`) — and everything that restores a dump: the restore
//!   into SQLite (`restore_dump`), `Engine::verify` (with the comparison against the live
//!   database), `run --verify`, and restores into SQLite or D1 (`Engine::restore_plan`).
//!   Splitting a dump into statements ([`DumpStatements`]) and finding the tables D1 exported
//!   lossily ([`DefectScanner`]) need no feature.
//! - `metrics-server`: `MetricsServer`, [`Metrics`] and a health check served over HTTP
//!   (`d1-backup daemon`'s `[daemon] metrics_listen`).
//! - `testing`: `testing::SqliteD1`, a real SQLite database behind the D1 simulator of
//!   `d1_export::testing`, for tests of code that embeds this crate.
//!
//! They are off by default so that an embedding service compiles only what it uses; the
//! `d1-backup` command enables `compression`, `sqlite` and `metrics-server`.

#![deny(missing_docs)]

mod catalog;
mod clock;
mod commands;
mod compression;
mod config;
mod daemon;
mod dump;
mod encryption;
mod engine;
mod error;
mod existing;
mod formats;
mod heartbeat;
mod inspect;
mod job;
mod layout;
mod lease;
#[cfg(feature = "sqlite")]
mod live;
mod local;
mod locks;
mod metrics;
#[cfg(feature = "metrics-server")]
mod metrics_server;
mod notify;
mod online;
mod options;
mod plan;
mod processes;
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
mod selector;
mod shard;
mod sinks;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod status;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod transfer;
#[cfg(feature = "sqlite")]
mod verify;
mod vtab_export;
mod wrangler;

// The manifest keeps its old path inside the crate; it lives with the other formats.
use formats::manifest;

pub use clock::{Clock, SystemClock, TokioClock};
pub use compression::Compression;
pub use config::{
    AccountConfig, CloudflareConfig, Config, ConfigBuilder, DaemonConfig, DatabaseEntry,
    EncryptionConfig, ExportMode, HeartbeatConfig, KvHeartbeat, NotifyConfig, NotifyFormat,
    NotifyOn, ReplicaConfig, RetentionConfig, RunConfig, ScheduleConfig, SinkConfig, SinkKind,
    VerifyMode,
};
pub use daemon::DaemonEvent;
pub use dump::{
    DefectKind, DefectScanner, Defects, DumpStatements, RestoreError, SharedScanner, TableDefects,
};
pub use encryption::{AGE_EXTENSION, AGE_FORMAT, AgeIdentity, Recipients, read_recipients_file};
pub use engine::{Engine, EngineBuilder};
pub use error::{ConfigError, Error, ErrorKind, Problem, Result};
pub use formats::{
    DumpConsistency, HEARTBEAT_KIND, HEARTBEAT_VERSION, Heartbeat, HeartbeatDatabase,
    LEASE_VERSION, LeaseRecord, LeaseUpload, MANIFEST_KIND, MANIFEST_VERSION, Manifest,
    ManifestDatabase, ManifestDump, ManifestEncryption, PLAIN_MANIFEST_VERSION, Totals,
    VERIFICATION_KIND, VERIFICATION_VERSION, VerificationRecord,
};
pub use inspect::{AccountDatabases, BackupListing, Check, ListDetail, RemoteDatabase};
pub use job::ALREADY_BACKED_UP_HINT;
pub use layout::{
    LayoutKey, date_prefix, dump_key, dump_key_for, encrypted_dump_key_for, manifest_key,
    parse_key, verification_key,
};
#[cfg(feature = "sqlite")]
pub use live::{Finding, FindingKind, LiveComparison, TableComparison};
pub use metrics::{METRICS_CONTENT_TYPE, Metrics};
#[cfg(feature = "metrics-server")]
pub use metrics_server::MetricsServer;
#[cfg(feature = "sqlite")]
pub use options::VerifyOptions;
pub use options::{Force, RunOptions};
pub use processes::{Processes, UnknownProcesses};
pub use progress::{EventKind, Progress, ProgressEvent};
pub use prune::{PruneMode, PruneOptions};
pub use report::{
    DatabaseReport, HeartbeatOutcome, NotifyOutcome, PruneDecision, PruneReport, ReplicaPrune,
    ReplicaReport, RunReport, StaleUpload, Status,
};
#[cfg(feature = "sqlite")]
pub use restore::{
    KEEP_GOING_LISTED, RestoreStats, check_database, count_rows, restore_dump,
    restore_dump_keep_going, restore_to_path,
};
#[cfg(feature = "sqlite")]
pub use restore_backup::time_travel::DEFAULT_TIME_TRAVEL_DAYS;
#[cfg(feature = "sqlite")]
pub use restore_backup::{
    Confirm, D1_MAX_STATEMENT_BYTES, D1Import, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_STATEMENTS,
    ExcludedObject, Existing, ImportRefusal, NewDatabase, PlannedTarget, RefusedStatement,
    RestorePlan, RestoreReport, RestoreRequest, RestoreSource, RestoreTarget, TimeTravelPlan,
    TimeTravelReport, TimeTravelRequest,
};
pub use retention::{Action, RetentionPolicy};
pub use schedule::Schedule;
pub use secrets::Secrets;
pub use selector::Selector;
pub use shard::Shard;
pub use status::{DEFAULT_MAX_AGE, DatabaseStatus, SCHEDULE_GRACE, StatusOptions, StatusReport};
#[cfg(feature = "sqlite")]
pub use verify::Verification;

/// Re-exported so embedding services name the same versions (e.g. the `reqwest::Client`
/// given to [`EngineBuilder::http_client`]).
pub use {chrono, d1_export, r2_sink, reqwest, tokio_util};
