//! Retention against a real sink: sixty nightly runs, failures, strays, dry runs.

use std::sync::Arc;

use d1_backup_core::chrono::{Duration, NaiveDate};
use d1_backup_core::{Action, PruneMode, PruneOptions, RunOptions, Status};
use d1_export::testing::Fault;
use futures::StreamExt;
use r2_sink::{BackupSink, ObjectStoreSink, PutOptions};

use crate::support::*;

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

async fn put(sink: &dyn BackupSink, key: &str) {
    let body = futures::stream::iter([Ok(bytes::Bytes::from_static(b"x"))]).boxed();
    sink.put_stream(key, body, PutOptions::default())
        .await
        .unwrap();
}

fn dates_of(keys: &[String], suffix: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| k.starts_with("d1/") && k.ends_with(suffix))
        .map(|k| k.split('/').nth(1).unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sixty_nightly_runs_leave_exactly_the_last_thirty_dates() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    sim.set_polls_before_complete(&ops, 0);
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    // Strays: another folder, a file that is not a backup, a database no longer configured.
    put(sink.as_ref(), "d1/notes/readme.txt").await;
    put(sink.as_ref(), "d1/2025-01-01/ops-db.txt").await;
    put(sink.as_ref(), "d1/2025-01-01/retired-db.sql").await;
    put(sink.as_ref(), "other/2025-01-01/ops-db.sql").await;
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#);
    let engine = engine(&text, Some(sink.clone()));
    for day in 0..60 {
        let date = start() + Duration::days(day);
        let report = run(
            &engine,
            RunOptions::new(date).only(["ops-db".parse().unwrap()]),
        )
        .await;
        assert_eq!(report.databases[0].status, Status::Ok, "{date}");
        let prune = report.prune.unwrap();
        assert!(prune.errors.is_empty(), "{:?}", prune.errors);
    }
    let all = keys(sink.as_ref(), "").await;
    let dumps = dates_of(&all, "ops-db.sql");
    let manifests = dates_of(&all, "ops-db.manifest.json");
    let expected: Vec<String> = (30..60)
        .map(|d| (start() + Duration::days(d)).to_string())
        .collect();
    assert_eq!(dumps, expected);
    assert_eq!(manifests, expected);
    for stray in [
        "d1/notes/readme.txt",
        "d1/2025-01-01/ops-db.txt",
        "d1/2025-01-01/retired-db.sql",
        "other/2025-01-01/ops-db.sql",
    ] {
        assert!(
            all.contains(&stray.to_owned()),
            "{stray} must never be touched"
        );
    }
    assert_eq!(all.len(), 60 + 4);
}

#[tokio::test]
async fn a_failed_database_keeps_all_its_old_backups() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let engine_db = sim.add_database(UCCA, "engine-db", dump("engine-db", 5));
    for uuid in [&ops, &engine_db] {
        sim.set_polls_before_complete(uuid, 0);
    }
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db", "engine-db""#, r#""rto-x""#)
        .replace("keep_days = 30", "keep_days = 2\nmin_keep = 1");
    let engine = engine(&text, Some(sink.clone()));
    let only = |date| {
        RunOptions::new(date).only([
            "ucca/ops-db".parse().unwrap(),
            "ucca/engine-db".parse().unwrap(),
        ])
    };
    for day in 0..5 {
        run(&engine, only(start() + Duration::days(day))).await;
    }
    sim.inject(&engine_db, Fault::ExportError("boom".into()));
    let report = run(&engine, only(start() + Duration::days(30))).await;
    assert_eq!(report.databases[1].status, Status::Failed);
    let all = keys(sink.as_ref(), "").await;
    // Days 3 and 4 survived the earlier runs' pruning; the failed run deletes none of them.
    assert_eq!(
        dates_of(&all, "engine-db.sql"),
        ["2026-01-04", "2026-01-05"],
        "nothing of the failed database is pruned"
    );
    assert_eq!(
        dates_of(&all, "ops-db.sql"),
        ["2026-01-31"],
        "the other one is"
    );
}

#[tokio::test]
async fn standalone_prune_dry_run_explains_and_deletes_nothing() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    sim.set_polls_before_complete(&ops, 0);
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#)
        .replace("keep_days = 30", "keep_days = 3\nprune_after_run = false");
    let engine = engine(&text, Some(sink.clone()));
    for day in 0..6 {
        let report = run(
            &engine,
            RunOptions::new(start() + Duration::days(day)).only(["ops-db".parse().unwrap()]),
        )
        .await;
        assert!(report.prune.is_none());
    }
    // An interrupted run's leftover: a dump without its manifest, two days old.
    put(sink.as_ref(), "d1/2026-01-04/ops-db.sql.zst").await;
    let today = start() + Duration::days(5);
    let dry = engine
        .prune(&PruneOptions::new(today).mode(PruneMode::DryRun))
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.deleted, 0);
    let before = keys(sink.as_ref(), "").await;
    assert_eq!(before.len(), 13);
    let deletes: Vec<(String, &str)> = dry
        .decisions
        .iter()
        .filter(|d| d.action == Action::Delete)
        .map(|d| (d.date.to_string(), d.reason.as_str()))
        .collect();
    assert_eq!(deletes.len(), 4, "{deletes:?}");
    assert!(
        deletes
            .iter()
            .any(|(d, r)| d == "2026-01-04" && r.contains("stale dump")),
        "{deletes:?}"
    );
    assert!(dry.decisions.iter().all(|d| !d.reason.is_empty()));

    let real = engine.prune(&PruneOptions::new(today)).await.unwrap();
    assert_eq!(real.deleted, 3 * 2 + 1);
    let after = keys(sink.as_ref(), "").await;
    assert_eq!(
        dates_of(&after, "ops-db.sql"),
        ["2026-01-04", "2026-01-05", "2026-01-06"]
    );
    assert!(!after.contains(&"d1/2026-01-04/ops-db.sql.zst".to_owned()));
}
