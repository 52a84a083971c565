//! Leases: two runs against one bucket never back up the same database at once.

use std::sync::Arc;

use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{Engine, RunOptions, Status};
use futures::StreamExt;
use r2_sink::{BackupSink, ObjectStoreSink, PutOptions};

use crate::support::*;

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

fn machine(text: &str, sink: &Arc<dyn BackupSink>, name: &str) -> Engine {
    d1_backup_core::Engine::builder(parse(text), secrets())
        .sink(sink.clone())
        .owner(name)
        .build()
        .unwrap()
}

#[tokio::test]
async fn two_machines_export_a_database_once() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 50));
    sim.set_polls_before_complete(&ops, 30);
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#)
        .replace("poll_interval_ms = 0", "poll_interval_ms = 10");
    let (a, b) = (
        machine(&text, &sink, "machine-a"),
        machine(&text, &sink, "machine-b"),
    );
    let options = RunOptions::new(date()).only(["ops-db".parse().unwrap()]);
    let cancel = CancellationToken::new();
    let (ra, rb) = tokio::join!(a.run(&options, &(), &cancel), b.run(&options, &(), &cancel));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut statuses = [ra.databases[0].status, rb.databases[0].status];
    statuses.sort_by_key(|s| *s == Status::Ok);
    assert_eq!(statuses, [Status::Skipped, Status::Ok], "{ra:#?}\n{rb:#?}");
    assert_eq!(sim.exports_started(&ops), 1, "exactly one export");
    let skipped = if ra.databases[0].status == Status::Skipped {
        &ra
    } else {
        &rb
    };
    let reason = skipped.databases[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("lease") || reason.contains("already backed up"),
        "{reason}"
    );
    let leftovers = keys(sink.as_ref(), "d1/_leases/").await;
    assert!(leftovers.is_empty(), "leases are released: {leftovers:?}");
}

#[tokio::test]
async fn a_crashed_runs_expired_lease_does_not_block_the_next_night() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let stale = br#"{"owner":"crashed-host","expires_at":"2026-11-29T03:10:00Z"}"#;
    let body = futures::stream::iter([Ok(bytes::Bytes::from_static(stale))]).boxed();
    sink.put_stream(
        "d1/_leases/ops-db/00000000000000000007.json",
        body,
        PutOptions::default(),
    )
    .await
    .unwrap();
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#);
    let report = run(
        &machine(&text, &sink, "machine-a"),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
    assert!(keys(sink.as_ref(), "d1/_leases/").await.is_empty());
}

#[tokio::test]
async fn a_live_lease_held_elsewhere_skips_the_database() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let live = format!(
        r#"{{"owner":"machine-b","expires_at":"{}"}}"#,
        d1_backup_core::chrono::Utc::now() + d1_backup_core::chrono::Duration::minutes(5)
    );
    let body = futures::stream::iter([Ok(bytes::Bytes::from(live))]).boxed();
    sink.put_stream(
        "d1/_leases/ops-db/00000000000000000003.json",
        body,
        PutOptions::default(),
    )
    .await
    .unwrap();
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#);
    let report = run(
        &machine(&text, &sink, "machine-a"),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    assert_eq!(report.databases[0].status, Status::Skipped);
    assert!(
        report.databases[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("machine-b")
    );
    assert_eq!(sim.exports_started(&ops), 0);
}
