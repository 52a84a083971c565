//! Verification: a backup is proven by restoring it.

use std::sync::Arc;

use d1_backup_core::{RunOptions, VerifyOptions};
use futures::StreamExt;
use r2_sink::{BackupSink, ObjectStoreSink, PutOptions};

use crate::support::*;

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

#[tokio::test]
async fn good_backups_verify_and_altered_ones_do_not() {
    let sim = simulator().await;
    let ops = dump("ops-db", 500);
    sim.add_database(UCCA, "ops-db", ops.clone());
    sim.add_database(UCCA, "engine-db", dump("engine-db", 300));
    let mut bad = b"PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE n (v REAL);\n".to_vec();
    bad.extend_from_slice(b"INSERT INTO \"n\" (\"v\") VALUES(Infinity);\n");
    sim.add_database(RTO, "rto-ops-db", bad);
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let dbs = r#""ops-db", { name = "engine-db", compression = "zstd" }"#;
    let text = config_text(&sim, UNUSED_SINK, dbs, r#""rto-ops-db""#);
    let engine = engine(&text, Some(sink.clone()));
    run(&engine, RunOptions::new(date())).await;
    let scratch = tempfile::tempdir().unwrap();

    let results = engine
        .verify(&VerifyOptions::new(scratch.path()))
        .await
        .unwrap();
    let ok: Vec<(&str, bool)> = results
        .iter()
        .map(|v| (v.database.as_str(), v.ok))
        .collect();
    assert_eq!(
        ok,
        [("ops-db", true), ("engine-db", true), ("rto-ops-db", false)],
        "{results:#?}"
    );
    assert_eq!(results[0].tables.get("items"), Some(&500));
    assert_eq!(
        results[1].tables.get("items"),
        Some(&300),
        "compressed dumps are decoded"
    );
    let problem = &results[2].problems[0];
    assert!(
        problem.contains("line 3") && problem.contains("Infinity"),
        "{problem}"
    );

    // One flipped byte in a stored dump.
    let mut altered = ops.clone();
    let last = altered.len() - 3;
    altered[last] ^= 0x01;
    let body = futures::stream::iter([Ok(bytes::Bytes::from(altered))]).boxed();
    sink.put_stream("d1/2026-11-30/ops-db.sql", body, PutOptions::default())
        .await
        .unwrap();
    let results = engine
        .verify(&VerifyOptions::new(scratch.path()))
        .await
        .unwrap();
    assert!(!results[0].ok);
    assert!(
        results[0]
            .problems
            .iter()
            .any(|p| p.contains("sha256 mismatch")),
        "{:?}",
        results[0].problems
    );
    assert_eq!(
        std::fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "scratch files are removed"
    );
}
