//! End-to-end tests of the `d1-backup` binary: the real executable against the D1 simulator
//! (wiremock) and an S3 server started in-process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::format_push_string,
    clippy::too_many_lines,
    missing_docs
)]

mod commands;
mod faults;
mod locks;
mod logging;
mod monitoring;
mod replicas;
mod restore;
mod run;
mod snapshots;

use std::path::Path;
use std::process::Output;

/// Runs the binary (through `assert_cmd`) with `args`, the given environment (and nothing
/// inherited that could change its behaviour), and debug logging so that leaks would show.
/// It runs on a blocking thread: the simulators it talks to live on this test's runtime.
pub(crate) async fn d1_backup(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Output {
    let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_d1-backup"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("D1_BACKUP_CONFIG")
        .env_remove("CF_API_TOKEN")
        .env_remove("RTO_API_TOKEN")
        .env("RUST_LOG", "debug")
        .env("NO_COLOR", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
