//! Leases: two runs against one bucket never back up the same database at once.

use std::sync::Arc;

use d1_backup_core::chrono::{DateTime, Utc};
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{Clock, Engine, LEASE_VERSION, RunOptions, Status, TokioClock};
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

/// Issue 15: a live lease held elsewhere for the whole wait (none here) makes the database
/// `leased`, not `skipped`: the run must not look successful.
#[tokio::test]
async fn a_live_lease_held_elsewhere_reports_the_database_leased() {
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
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#).replace(
        "poll_interval_ms = 0",
        "poll_interval_ms = 0\nwait_for_lease_minutes = 0",
    );
    let report = run(
        &machine(&text, &sink, "machine-a"),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    assert_eq!(report.databases[0].status, Status::Leased);
    assert!(
        report.databases[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("machine-b")
    );
    assert_eq!(sim.exports_started(&ops), 0);
}

/// A crashed run's lease (written before lease records had a `version`) blocks the database
/// until it lapses; then the next run takes over. The engine's clock follows tokio's, so the
/// lapse is a jump of paused tokio time, not a real wait.
#[tokio::test]
async fn a_dead_holders_lease_lapses_after_lease_seconds_and_the_next_run_takes_over() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let stale = br#"{"owner":"crashed-host","expires_at":"2026-11-30T03:00:30Z"}"#;
    let body = futures::stream::iter([Ok(bytes::Bytes::from_static(stale))]).boxed();
    sink.put_stream(
        "d1/_leases/ops-db/00000000000000000003.json",
        body,
        PutOptions::default(),
    )
    .await
    .unwrap();
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#).replace(
        "poll_interval_ms = 0",
        "poll_interval_ms = 0\nlease_seconds = 30\nwait_for_lease_minutes = 0",
    );
    let clock = Arc::new(TokioClock::starting_at(
        "2026-11-30T03:00:00Z".parse().unwrap(),
    ));
    let engine = Engine::builder(parse(&text), secrets())
        .sink(sink.clone())
        .owner("machine-a")
        .clock(clock.clone())
        .build()
        .unwrap();
    let options = || RunOptions::new(date()).only(["ops-db".parse().unwrap()]);

    let early = run(&engine, options()).await;
    assert_eq!(early.databases[0].status, Status::Leased, "{early:#?}");
    let reason = early.databases[0].reason.as_deref().unwrap();
    assert!(reason.contains("crashed-host"), "{reason}");
    assert_eq!(sim.exports_started(&ops), 0);

    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    tokio::time::resume();
    assert!(clock.now() >= "2026-11-30T03:00:31Z".parse::<DateTime<Utc>>().unwrap());
    let later = run(&engine, options()).await;
    assert_eq!(later.databases[0].status, Status::Ok, "{later:#?}");
    assert_eq!(sim.exports_started(&ops), 1);
    assert!(
        keys(sink.as_ref(), "d1/_leases/").await.is_empty(),
        "released"
    );
}

/// While a run holds a lease, its record says who holds it, until when (by the engine's
/// clock), and in which format version.
#[tokio::test]
async fn a_held_lease_records_its_owner_expiry_and_version() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    sim.set_polls_before_complete(&ops, 1_000_000);
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#).replace(
        "poll_interval_ms = 0",
        "poll_interval_ms = 5\nlease_seconds = 60",
    );
    let clock = Arc::new(TokioClock::starting_at(
        "2026-11-30T03:00:00Z".parse().unwrap(),
    ));
    let engine = Engine::builder(parse(&text), secrets())
        .sink(sink.clone())
        .owner("machine-a")
        .clock(clock)
        .build()
        .unwrap();
    let cancel = CancellationToken::new();
    let options = RunOptions::new(date()).only(["ops-db".parse().unwrap()]);
    let look = async {
        while sim.exports_started(&ops) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let leases = keys(sink.as_ref(), "d1/_leases/ops-db/").await;
        let record: serde_json::Value =
            serde_json::from_slice(&read(sink.as_ref(), &leases[0]).await).unwrap();
        cancel.cancel();
        record
    };
    let (report, record) = tokio::join!(engine.run(&options, &(), &cancel), look);
    assert!(report.unwrap().interrupted);
    assert_eq!(record["version"], LEASE_VERSION);
    assert_eq!(record["owner"], "machine-a");
    let expires: DateTime<Utc> = record["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires - "2026-11-30T03:00:00Z".parse::<DateTime<Utc>>().unwrap();
    assert!(
        (59..=61).contains(&lifetime.num_seconds()),
        "expires lease_seconds after the clock's now: {expires}"
    );
}
