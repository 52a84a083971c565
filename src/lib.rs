//! Back up Cloudflare D1 databases into R2 or any S3-compatible store.
//!
//! This facade re-exports the three library crates for users who want everything:
//!
//! - [`d1_export`]: the Cloudflare D1 HTTP API client (list, export, download, query, import).
//! - [`r2_sink`]: the [`BackupSink`](r2_sink::BackupSink) trait and its R2, S3, filesystem and
//!   memory implementations.
//! - [`core`] (`d1-backup-core`): configuration, planning, runs and reports.
//!
//! The `d1-backup` command line tool is the `d1-backup-cli` package.
//!
//! ```no_run
//! use d1_backup::core::{Config, Engine, RunOptions, Secrets};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let path = std::path::Path::new("d1-backup.toml");
//! let config = Config::load(path)?;
//! let secrets = Secrets::resolve(&config, path, |name| std::env::var(name).ok())?;
//! let engine = Engine::builder(config, secrets).build()?;
//! let date = d1_backup::core::chrono::Utc::now().date_naive();
//! let cancel = d1_backup::core::tokio_util::sync::CancellationToken::new();
//! let report = engine.run(&RunOptions::new(date), &(), &cancel).await?;
//! assert!(report.succeeded());
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub use d1_backup_core as core;
pub use d1_export;
pub use r2_sink;
