//! Manifests, idempotent reruns and compression.

use std::sync::Arc;

use d1_backup_core::{Compression, Force, Manifest, RunOptions, Status};
use futures::StreamExt;
use r2_sink::{BackupSink, ObjectStoreSink, PutOptions};

use crate::support::*;

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

fn memory() -> Arc<dyn BackupSink> {
    Arc::new(ObjectStoreSink::memory())
}

#[tokio::test]
async fn a_manifest_is_written_beside_each_dump() {
    let sim = simulator().await;
    let body = dump("ops-db", 20);
    let uuid = sim.add_database(UCCA, "ops-db", body.clone());
    let sink = memory();
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#);
    let options = RunOptions::new(date()).only(["ops-db".parse().unwrap()]);
    let report = run(&engine(&text, Some(sink.clone())), options).await;
    assert_eq!(report.databases[0].status, Status::Ok);

    let manifest =
        Manifest::from_json(&read(sink.as_ref(), "d1/2026-11-30/ops-db.manifest.json").await)
            .unwrap();
    assert_eq!(manifest.version, 1);
    assert_eq!(manifest.account, "ucca");
    assert_eq!(manifest.account_id.as_deref(), Some(UCCA));
    assert_eq!(manifest.database.name, "ops-db");
    assert_eq!(manifest.database.uuid, Some(uuid));
    assert_eq!(manifest.database.bookmark, report.databases[0].bookmark);
    assert_eq!(manifest.dump.key, "d1/2026-11-30/ops-db.sql");
    assert_eq!(manifest.dump.bytes, body.len() as u64);
    assert_eq!(manifest.dump.sha256, sha256_hex(&body));
    assert_eq!(manifest.dump.sql_sha256, sha256_hex(&body));
    assert_eq!(manifest.dump.compression, Compression::None);
    assert!(manifest.started_at <= manifest.finished_at);
    assert!(manifest.tool.starts_with("d1-backup "));
}

#[tokio::test]
async fn a_second_run_on_the_same_date_starts_no_export_unless_forced() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 20));
    let engine_db = sim.add_database(UCCA, "engine-db", dump("engine-db", 20));
    let sink = memory();
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db", "engine-db""#, r#""rto-x""#);
    let engine = engine(&text, Some(sink.clone()));
    let only = || {
        RunOptions::new(date()).only(["ucca/ops-db".parse().unwrap(), "engine-db".parse().unwrap()])
    };
    let first = run(&engine, only()).await;
    assert!(first.succeeded());

    // A dump without its manifest is not a backup: engine-db must be exported again.
    sink.delete_many(&["d1/2026-11-30/engine-db.manifest.json".to_owned()])
        .await
        .unwrap();
    let second = run(&engine, only()).await;
    assert_eq!(second.databases[0].status, Status::Skipped);
    assert!(
        second.databases[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("already backed up")
    );
    assert_eq!(second.databases[0].sha256, first.databases[0].sha256);
    assert_eq!(second.databases[0].bytes, first.databases[0].bytes);
    assert_eq!(second.databases[1].status, Status::Ok);
    assert_eq!(
        sim.exports_started(&ops),
        1,
        "no export for a complete backup"
    );
    assert_eq!(sim.exports_started(&engine_db), 2);

    let forced = run(&engine, only().force(Force::Yes)).await;
    assert!(forced.databases.iter().all(|d| d.status == Status::Ok));
    assert_eq!(sim.exports_started(&ops), 2);
}

#[tokio::test]
async fn a_dump_whose_size_disagrees_with_its_manifest_is_redone() {
    let sim = simulator().await;
    let body = dump("ops-db", 20);
    let ops = sim.add_database(UCCA, "ops-db", body.clone());
    let sink = memory();
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#);
    let engine = engine(&text, Some(sink.clone()));
    let options = || RunOptions::new(date()).only(["ops-db".parse().unwrap()]);
    run(&engine, options()).await;
    let truncated = futures::stream::iter([Ok(bytes::Bytes::from_static(b"PRAGMA"))]).boxed();
    sink.put_stream("d1/2026-11-30/ops-db.sql", truncated, PutOptions::default())
        .await
        .unwrap();
    let again = run(&engine, options()).await;
    assert_eq!(again.databases[0].status, Status::Ok);
    assert_eq!(sim.exports_started(&ops), 2);
    assert_eq!(read(sink.as_ref(), "d1/2026-11-30/ops-db.sql").await, body);
}

#[tokio::test]
async fn compressed_dumps_use_their_extension_and_decompress_to_the_sql() {
    use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
    use tokio::io::AsyncReadExt;

    let sim = simulator().await;
    let ops = dump("ops-db", 3000);
    let engine_db = dump("engine-db", 3000);
    sim.add_database(UCCA, "ops-db", ops.clone());
    sim.add_database(UCCA, "engine-db", engine_db.clone());
    let sink = memory();
    let dbs = r#""ops-db", { name = "engine-db", compression = "gzip" }"#;
    let text = config_text(&sim, UNUSED_SINK, dbs, r#""rto-x""#)
        .replace("[run]\n", "[run]\ncompression = \"zstd\"\n");
    let options =
        RunOptions::new(date()).only(["ops-db".parse().unwrap(), "engine-db".parse().unwrap()]);
    let report = run(&engine(&text, Some(sink.clone())), options).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(report.databases[0].key, "d1/2026-11-30/ops-db.sql.zst");
    assert_eq!(report.databases[1].key, "d1/2026-11-30/engine-db.sql.gz");

    let stored = read(sink.as_ref(), "d1/2026-11-30/ops-db.sql.zst").await;
    assert!(
        stored.len() < ops.len() / 3,
        "zstd should shrink SQL: {} vs {}",
        stored.len(),
        ops.len()
    );
    let mut plain = Vec::new();
    ZstdDecoder::new(&stored[..])
        .read_to_end(&mut plain)
        .await
        .unwrap();
    assert_eq!(plain, ops);
    let gz = read(sink.as_ref(), "d1/2026-11-30/engine-db.sql.gz").await;
    let mut plain = Vec::new();
    GzipDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .await
        .unwrap();
    assert_eq!(plain, engine_db);

    let manifest =
        Manifest::from_json(&read(sink.as_ref(), "d1/2026-11-30/ops-db.manifest.json").await)
            .unwrap();
    assert_eq!(manifest.dump.compression, Compression::Zstd);
    assert_eq!(manifest.dump.bytes, stored.len() as u64);
    assert_eq!(manifest.dump.sha256, sha256_hex(&stored));
    assert_eq!(manifest.dump.sql_bytes, ops.len() as u64);
    assert_eq!(manifest.dump.sql_sha256, sha256_hex(&ops));
}
