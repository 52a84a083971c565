//! Integration tests of `d1-backup-core` with real parts: the D1 simulator (wiremock,
//! stateful), the memory, filesystem and S3 sinks (an s3s server started in-process).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::format_push_string,
    clippy::too_many_lines,
    missing_docs
)]

mod config;
mod heartbeat;
mod lease;
#[cfg(feature = "sqlite")]
mod local;
mod rerun;
mod retention;
mod run;
#[cfg(feature = "sqlite")]
mod sqlite_dump;
mod support;
#[cfg(feature = "sqlite")]
mod verify;
