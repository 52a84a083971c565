//! Shared fixtures: a two-account world like the seed deployment, and helpers to read back.

use std::path::Path;
use std::sync::Arc;

use d1_backup_core::chrono::NaiveDate;
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{Config, Engine, RunOptions, RunReport, Secrets};
use d1_export::testing::D1Simulator;
use futures::TryStreamExt;
use r2_sink::{BackupSink, ObjectStoreSink};
use sha2::{Digest, Sha256};

pub const UCCA: &str = "e5a9830215a8d88961dc6c80a8c7442a";
pub const RTO: &str = "f95d45376ebeeeaf011a4f0ec0fb7b38";
pub const UCCA_TOKEN: &str = "ucca-token-4f1c9e";
pub const RTO_TOKEN: &str = "rto-token-77ab02";

pub fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
}

/// A dump in D1's format, about `rows` lines long, unique per `name`.
pub fn dump(name: &str, rows: usize) -> Vec<u8> {
    let mut sql = String::from(
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT);\n",
    );
    for i in 0..rows {
        sql.push_str(&format!(
            "INSERT INTO \"items\" (\"id\",\"body\") VALUES({i},'{name} row {i}');\n"
        ));
    }
    sql.into_bytes()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The simulator with both seed accounts and their own tokens.
pub async fn simulator() -> D1Simulator {
    let sim = D1Simulator::start().await;
    sim.add_account(UCCA, UCCA_TOKEN);
    sim.add_account(RTO, RTO_TOKEN);
    sim
}

/// The start of a config file for `sim`: `[cloudflare]` pointing at it with an unlimited
/// budget, then `[sink]` with `sink` as its body.
pub fn config_head(sim: &D1Simulator, sink: &str) -> String {
    format!(
        "[cloudflare]\napi_base_url = \"{}\"\nrequests_per_five_minutes = 1000000\n\n[sink]\n{sink}\n",
        sim.base_url()
    )
}

/// A config file text for `sim`, with `sink` as the `[sink]` body and the two seed accounts.
pub fn config_text(sim: &D1Simulator, sink: &str, ucca_dbs: &str, rto_dbs: &str) -> String {
    format!(
        r#"
{head}
[retention]
keep_days = 30

[run]
poll_interval_ms = 0

[[accounts]]
name = "ucca"
account_id = "{UCCA}"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = [{ucca_dbs}]

[[accounts]]
name = "rtopacks"
account_id = "{RTO}"
token_env = "RTO_API_TOKEN"
prefix = "rtopacks"
databases = [{rto_dbs}]
"#,
        head = config_head(sim, sink)
    )
}

pub fn secrets() -> Secrets {
    Secrets::from_pairs([("CF_API_TOKEN", UCCA_TOKEN), ("RTO_API_TOKEN", RTO_TOKEN)])
}

pub fn parse(text: &str) -> Config {
    Config::from_toml(text, Path::new("test.toml")).unwrap()
}

/// An engine over `text`, writing to `sink` when given (else to the configured sink).
pub fn engine(text: &str, sink: Option<Arc<dyn BackupSink>>) -> Engine {
    let mut builder = Engine::builder(parse(text), secrets());
    if let Some(sink) = sink {
        builder = builder.sink(sink);
    }
    builder.build().unwrap()
}

pub async fn run(engine: &Engine, options: RunOptions) -> RunReport {
    engine
        .run(&options, &(), &CancellationToken::new())
        .await
        .unwrap()
}

pub async fn read(sink: &dyn BackupSink, key: &str) -> Vec<u8> {
    let chunks: Vec<bytes::Bytes> = sink
        .get(key, None)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

pub async fn keys(sink: &dyn BackupSink, prefix: &str) -> Vec<String> {
    let infos: Vec<r2_sink::ObjectInfo> = sink.list(prefix).try_collect().await.unwrap();
    infos.into_iter().map(|i| i.key).collect()
}

/// An engine over local databases only (no account, no token), writing to a memory sink.
/// Paths in `databases` are relative to `dir`.
pub fn local_engine(dir: &Path, databases: &str, extra: &str) -> (Engine, Arc<dyn BackupSink>) {
    let text = format!(
        "[sink]\nkind = \"fs\"\npath = \"unused\"\n\n[[accounts]]\nname = \"local\"\nprefix = \"local\"\ndatabases = [{databases}]\n{extra}"
    );
    let config = Config::from_toml(&text, &dir.join("d1-backup.toml")).unwrap();
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    // No account id, no token, no secrets: local databases need none.
    let secrets = Secrets::resolve(&config, Path::new("x"), |_| None).unwrap();
    let engine = Engine::builder(config, secrets)
        .sink(sink.clone())
        .build()
        .unwrap();
    (engine, sink)
}
