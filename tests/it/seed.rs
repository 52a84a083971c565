//! The seed deployment, end to end: 12 databases in two accounts with their own tokens, one of
//! them large enough for multipart, into an S3 server that rejects R2-invalid part sizes.

use std::path::Path;

use d1_backup::core::chrono::NaiveDate;
use d1_backup::core::tokio_util::sync::CancellationToken;
use d1_backup::core::{Config, Engine, RunOptions, Secrets, Status};
use d1_backup::d1_export::testing::D1Simulator;
use d1_backup::r2_sink::testing::{R2Rules, S3TestServer};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};

const UCCA: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const RTO: &str = "f95d45376ebeeeaf011a4f0ec0fb7b38";

fn dump(name: &str, rows: usize) -> Vec<u8> {
    let mut sql = String::from(
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n",
    );
    for i in 0..rows {
        sql.push_str(&format!(
            "INSERT INTO \"t\" (\"id\",\"v\") VALUES({i},'{name}:{i}');\n"
        ));
    }
    sql.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_deployment_lands_byte_identical_at_the_exact_keys() {
    let sim = D1Simulator::start().await;
    sim.add_account(UCCA, "ucca-token");
    sim.add_account(RTO, "rto-token");
    sim.set_page_size(3); // the name lookup must read every page
    let ucca = ["ops-db", "engine-db", "mcp-db"];
    let rto = [
        "rto-ops-db",
        "rto-workspace-db",
        "rto-calendar-db",
        "rto-landscape-db",
        "rto-licensing-db",
        "rto-micro-db",
        "rto-radar-db",
        "rto-abs-db",
        "rto-nrt-db",
    ];
    let mut expected = Vec::new();
    for name in ucca {
        let body = dump(name, 300);
        sim.add_database(UCCA, name, body.clone());
        expected.push((format!("d1/2026-11-30/{name}.sql"), body));
    }
    for name in rto {
        // rto-nrt-db stands in for the 2.4 GB database: big enough for several parts.
        let rows = if name == "rto-nrt-db" { 900_000 } else { 300 };
        let body = dump(name, rows);
        let uuid = sim.add_database(RTO, name, body.clone());
        if name == "rto-nrt-db" {
            sim.set_polls_before_complete(&uuid, 20);
        }
        expected.push((format!("rtopacks/2026-11-30/{name}.sql"), body));
    }
    sim.add_database(RTO, "not-configured-db", dump("x", 1));

    let s3 = S3TestServer::start_with(R2Rules::Enforce).await.unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed-deployment.toml"),
    )
    .unwrap()
    .replace(
        "kind = \"r2\"",
        &format!("kind = \"r2\"\nendpoint = \"{}\"", s3.endpoint()),
    )
    .replace(
        "bucket = \"ucca-backups\"",
        &format!("bucket = \"{}\"", s3.bucket()),
    )
    .replace(
        "[sink]",
        &format!(
            "[cloudflare]\napi_base_url = \"{}\"\n\n[sink]",
            sim.base_url()
        ),
    )
    .replace(
        "per_account_concurrency = 3",
        "per_account_concurrency = 3\npoll_interval_ms = 0",
    );
    let config = Config::from_toml(&text, Path::new("seed.toml")).unwrap();
    let secrets = Secrets::from_pairs([
        ("CF_API_TOKEN", "ucca-token"),
        ("RTO_API_TOKEN", "rto-token"),
        ("R2_ACCESS_KEY_ID", s3.access_key_id()),
        ("R2_SECRET_ACCESS_KEY", s3.secret_access_key()),
    ]);
    let engine = Engine::builder(config, secrets).build().unwrap();
    let date = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let report = engine
        .run(&RunOptions::new(date), &(), &CancellationToken::new())
        .await
        .unwrap();

    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(report.databases.len(), 12);
    for (db, (key, body)) in report.databases.iter().zip(&expected) {
        assert_eq!(db.status, Status::Ok);
        assert_eq!(&db.key, key);
        assert_eq!(db.bytes, Some(body.len() as u64));
        assert_eq!(
            db.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(body)).as_str())
        );
        let chunks: Vec<bytes::Bytes> = engine
            .sink()
            .get(key, None)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert!(
            chunks.concat() == *body,
            "{key} differs from what the signed URL served"
        );
    }
    let big = expected.last().unwrap().1.len();
    assert!(
        big > 32 * 1024 * 1024,
        "the large dump must span several parts: {big}"
    );
    assert!(
        s3.list_multipart_uploads().await.is_empty(),
        "no multipart upload left behind"
    );
    let stored: Vec<_> = engine.sink().list("").try_collect().await.unwrap();
    assert_eq!(
        stored.len(),
        25,
        "the twelve dumps, their manifests and the heartbeat object: {stored:?}"
    );
    // The seed's heartbeat: the BACKUP_HEARTBEAT KV namespace and an object in the bucket.
    assert!(
        report.heartbeat.iter().all(|h| h.error.is_none()),
        "{:?}",
        report.heartbeat
    );
    let kv = sim
        .kv_value(UCCA, "86582e393ca2475e9e0f85c262221be3", "ucca-backup")
        .unwrap();
    let kv: serde_json::Value = serde_json::from_slice(&kv).unwrap();
    assert_eq!(kv["totals"]["ok"], 12);
}
