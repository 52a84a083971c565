//! Integration tests of `d1-backup-core` with real parts: the D1 simulator (wiremock,
//! stateful), the memory, filesystem and S3 sinks (an s3s server started in-process).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::format_push_string,
    clippy::too_many_lines,
    missing_docs
)]

mod bucket_lock;
mod config;
#[cfg(feature = "sqlite")]
mod corpus;
mod defects;
#[cfg(feature = "sqlite")]
mod encryption;
mod faults;
mod heartbeat;
mod lease;
#[cfg(feature = "sqlite")]
mod local;
mod monitoring;
#[cfg(feature = "testing")]
mod online;
mod programmatic;
mod prune_listing;
mod replicas;
mod rerun;
#[cfg(feature = "sqlite")]
mod restore_backup;
#[cfg(feature = "testing")]
mod restore_d1;
mod retention;
mod run;
mod scale;
mod schedule;
#[cfg(feature = "testing")]
mod simulated_d1;
#[cfg(feature = "sqlite")]
mod sqlite_dump;
mod support;
#[cfg(feature = "sqlite")]
mod verify;
#[cfg(feature = "testing")]
mod vtab;
