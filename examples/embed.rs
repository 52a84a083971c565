//! Embedding d1-backup in a tokio service: the service owns the runtime, the cancellation
//! (here: Ctrl-C, or a deadline) and the progress display (here: one log line per event).
//!
//! ```sh
//! CF_API_TOKEN=... cargo run --example embed -- examples/seed-deployment.toml
//! # or, with no account:
//! cargo run --example embed -- examples/quickstart.toml
//! ```

use std::path::PathBuf;
use std::time::Duration;

use d1_backup::core::chrono::Utc;
use d1_backup::core::tokio_util::sync::CancellationToken;
use d1_backup::core::{
    Config, Engine, EventKind, Progress, ProgressEvent, RunOptions, Secrets, Status,
};

/// The service's own progress display: here a line per interesting event.
struct Log;

impl Progress for Log {
    fn event(&self, event: &ProgressEvent<'_>) {
        let who = format!("{}/{}", event.account, event.database);
        match event.kind {
            EventKind::ExportStarted { attempt } => {
                println!("{who}: export started (attempt {attempt})");
            }
            EventKind::DownloadStarted { content_length } => {
                println!("{who}: streaming {content_length:?} bytes");
            }
            EventKind::Done { key, bytes } => println!("{who}: {bytes} bytes at {key}"),
            EventKind::Skipped { reason } => println!("{who}: skipped: {reason}"),
            EventKind::Failed { error } => println!("{who}: FAILED: {error}"),
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "examples/quickstart.toml".into()),
    );
    let config = Config::load(&path)?;
    // The service decides where secrets come from: the environment here, a vault elsewhere.
    let secrets = Secrets::resolve(&config, &path, |name| std::env::var(name).ok())?;
    let engine = Engine::builder(config, secrets)
        .owner("embed-example")
        .build()?;

    // The service decides when to stop: Ctrl-C, or a deadline of its own.
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = tokio::time::sleep(Duration::from_hours(6)) => {}
        }
        on_signal.cancel();
    });

    let report = engine
        .run(&RunOptions::new(Utc::now().date_naive()), &Log, &cancel)
        .await?;
    println!(
        "{} ok, {} skipped, {} failed{}",
        report.count(Status::Ok),
        report.count(Status::Skipped),
        report.count(Status::Failed),
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    Ok(())
}
