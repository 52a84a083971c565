//! A service that keeps its settings elsewhere: the whole configuration built in code (no
//! config file, no TOML string), its own HTTP client, and the outcome matched per database.
//!
//! Backs up the two example databases (`examples/databases/*.sqlite`, local SQLite files: no
//! Cloudflare account and no network) into the directory given as the first argument:
//!
//! ```sh
//! cargo run -p d1-backup --example programmatic -- ./out
//! ```
//!
//! A D1 database would be one more account, with `.account_id(...)`, `.token_env("CF_TOKEN")`
//! and `Secrets::new().with("CF_TOKEN", token_from_the_service_vault)`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use d1_backup::core::chrono::Utc;
use d1_backup::core::reqwest;
use d1_backup::core::tokio_util::sync::CancellationToken;
use d1_backup::core::{
    AccountConfig, Compression, Config, DatabaseEntry, Engine, RetentionConfig, RunConfig,
    RunOptions, Secrets, SinkConfig, Status,
};

#[tokio::main]
async fn main() -> ExitCode {
    // Errors are shown with their message (Display), not as a debug dump.
    match back_up().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn back_up() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: programmatic <output directory>")?;
    // Paths given in code are taken as given: this one relative to the working directory,
    // the databases absolute (found beside this example, wherever it is run from).
    let databases = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/databases");
    let config = Config::builder(SinkConfig::fs(&out))
        .retention(RetentionConfig::default().keep_days(30).min_keep(3))
        .run(RunConfig::default().concurrency(2))
        .account(
            AccountConfig::new("local", "local")
                .database(DatabaseEntry::named("shop").sqlite(databases.join("shop.sqlite")))
                .database(
                    DatabaseEntry::named("blog")
                        .sqlite(databases.join("blog.sqlite"))
                        .compression(Compression::None),
                ),
        )
        // Validated by the same rules as a file: every wrong field is named at once.
        .build()?;

    // The service's own client (its pool, proxy, headers); every HTTP call of the engine
    // would go through it. Local databases need no secret, so none is given.
    let http = reqwest::Client::builder()
        .user_agent("programmatic-example/1")
        .build()?;
    let engine = Engine::builder(config, Secrets::new())
        .http_client(http)
        .owner("programmatic-example")
        .build()?;

    let today = Utc::now().date_naive();
    let report = engine
        .run(&RunOptions::new(today), &(), &CancellationToken::new())
        .await?;
    for db in &report.databases {
        let label = format!("{}/{}", db.account, db.name);
        match db.status {
            Status::Ok => println!(
                "{label}: {} bytes at {}",
                db.bytes.unwrap_or_default(),
                out.join(&db.key).display()
            ),
            Status::Skipped => println!(
                "{label}: skipped ({}), backup at {}",
                db.reason.as_deref().unwrap_or("already backed up"),
                out.join(&db.key).display()
            ),
            _ => println!(
                "{label}: FAILED ({}, {}): {}",
                db.error_kind.map_or("unknown", |kind| kind.as_str()),
                if db.retryable == Some(true) {
                    "retryable"
                } else {
                    "not retryable"
                },
                db.error.as_deref().unwrap_or_default()
            ),
        }
    }
    if report.succeeded() {
        Ok(())
    } else {
        Err(format!("{} database(s) failed", report.count(Status::Failed)).into())
    }
}
