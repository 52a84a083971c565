//! Runs against the D1 simulator, with every fault a single database can meet.

use std::sync::{Arc, Mutex};

use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{EventKind, Progress, ProgressEvent, RunOptions, Selector, Status};
use d1_export::testing::Fault;
use r2_sink::{BackupSink, ObjectStoreSink};

use crate::support::*;

const MEMORY_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

fn memory() -> Arc<dyn BackupSink> {
    Arc::new(ObjectStoreSink::memory())
}

#[tokio::test]
async fn two_accounts_with_their_own_tokens_land_at_the_exact_keys() {
    let sim = simulator().await;
    let ops = dump("ops-db", 200);
    let mcp = dump("mcp-db", 3);
    let abs = dump("rto-abs-db", 5000);
    sim.add_database(UCCA, "ops-db", ops.clone());
    sim.add_database(UCCA, "mcp-db", mcp.clone());
    sim.add_database(RTO, "rto-abs-db", abs.clone());
    let sink = memory();
    let text = config_text(
        &sim,
        MEMORY_SINK,
        r#""ops-db", "mcp-db""#,
        r#""rto-abs-db""#,
    );
    let report = run(&engine(&text, Some(sink.clone())), RunOptions::new(date())).await;

    assert!(report.succeeded(), "{report:#?}");
    assert!(!report.interrupted);
    let got: Vec<(&str, &str, Status, &str)> = report
        .databases
        .iter()
        .map(|d| {
            (
                d.account.as_str(),
                d.name.as_str(),
                d.status,
                d.key.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ucca", "ops-db", Status::Ok, "d1/2026-11-30/ops-db.sql"),
            ("ucca", "mcp-db", Status::Ok, "d1/2026-11-30/mcp-db.sql"),
            (
                "rtopacks",
                "rto-abs-db",
                Status::Ok,
                "rtopacks/2026-11-30/rto-abs-db.sql"
            ),
        ]
    );
    for (db, expected) in report.databases.iter().zip([&ops, &mcp, &abs]) {
        assert_eq!(&read(sink.as_ref(), &db.key).await, expected, "{}", db.key);
        assert_eq!(db.bytes, Some(expected.len() as u64));
        assert_eq!(db.sha256.as_deref(), Some(sha256_hex(expected).as_str()));
        assert!(db.bookmark.is_some() && db.database_id.is_some() && db.error.is_none());
        assert_eq!(db.exports, 1);
    }
    assert_eq!(
        keys(sink.as_ref(), "").await.len(),
        6,
        "nothing but the three dumps and their manifests"
    );
}

#[tokio::test]
async fn the_json_report_keeps_the_contract_fields() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    let text = config_text(&sim, MEMORY_SINK, r#""ops-db", "gone-db""#, r#""rto-x""#);
    let report = run(&engine(&text, Some(memory())), RunOptions::new(date())).await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["date"], "2026-11-30");
    let dbs = json["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 3);
    let ok = &dbs[0];
    for field in [
        "account", "name", "status", "key", "bytes", "sha256", "error",
    ] {
        assert!(ok.get(field).is_some(), "missing {field}");
    }
    assert_eq!(ok["status"], "ok");
    assert!(ok["error"].is_null());
    assert_eq!(dbs[1]["status"], "failed");
    assert!(dbs[1]["sha256"].is_null());
    assert!(dbs[1]["error"].as_str().unwrap().contains("does not exist"));
}

#[tokio::test]
async fn one_failed_export_does_not_stop_the_others() {
    let sim = simulator().await;
    let bad = sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    sim.inject(
        &bad,
        Fault::ExportError(
            "D1 Export error: cannot export databases with Virtual Tables (fts5)".into(),
        ),
    );
    sim.add_database(UCCA, "engine-db", dump("engine-db", 10));
    sim.add_database(RTO, "rto-ops-db", dump("rto-ops-db", 10));
    let sink = memory();
    let text = config_text(
        &sim,
        MEMORY_SINK,
        r#""ops-db", "engine-db""#,
        r#""rto-ops-db""#,
    );
    let report = run(&engine(&text, Some(sink.clone())), RunOptions::new(date())).await;

    let statuses: Vec<Status> = report.databases.iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Status::Failed, Status::Ok, Status::Ok]);
    let error = report.databases[0].error.as_deref().unwrap();
    assert!(error.contains("Virtual Tables"), "{error}");
    assert_eq!(
        sink.head("d1/2026-11-30/ops-db.sql")
            .await
            .unwrap()
            .map(|i| i.key),
        None
    );
}

#[tokio::test]
async fn a_missing_database_or_a_refused_token_fails_only_its_own_databases() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    sim.add_database(RTO, "rto-ops-db", dump("rto-ops-db", 10));
    sim.add_account(RTO, "rotated-token"); // the configured RTO token no longer works
    let text = config_text(
        &sim,
        MEMORY_SINK,
        r#""ops-db", "no-such-db""#,
        r#""rto-ops-db""#,
    );
    let report = run(&engine(&text, Some(memory())), RunOptions::new(date())).await;

    assert_eq!(report.databases[0].status, Status::Ok);
    let missing = report.databases[1].error.as_deref().unwrap();
    assert!(
        missing.contains("\"no-such-db\" does not exist in account ucca"),
        "{missing}"
    );
    let refused = report.databases[2].error.as_deref().unwrap();
    assert!(
        refused.contains("cannot list the databases of account rtopacks"),
        "{refused}"
    );
    assert!(
        !refused.contains(RTO_TOKEN),
        "the token must never appear: {refused}"
    );
    assert!(!format!("{report:?}").contains(RTO_TOKEN));
}

#[tokio::test]
async fn a_configured_id_needs_no_list_call_and_only_filters() {
    let sim = simulator().await;
    let ops = sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    sim.add_database(UCCA, "engine-db", dump("engine-db", 10));
    let entry = format!(r#"{{ name = "ops-db", id = "{ops}" }}, "engine-db""#);
    let text = config_text(&sim, MEMORY_SINK, &entry, r#""rto-ops-db""#);
    let engine = engine(&text, Some(memory()));
    let only: Selector = "ucca/ops-db".parse().unwrap();
    let report = run(&engine, RunOptions::new(date()).only([only])).await;
    assert_eq!(report.databases.len(), 1);
    assert_eq!(report.databases[0].status, Status::Ok);
    assert_eq!(
        report.databases[0].database_id.as_deref(),
        Some(ops.as_str())
    );
    // The schema query (virtual tables?), start, two active polls, the complete poll, the
    // download: no list call.
    assert_eq!(sim.requests(), 6);

    let unknown: Selector = "nope".parse().unwrap();
    let error = engine
        .run(
            &RunOptions::new(date()).only([unknown]),
            &(),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the selector nope matches no configured database")
    );
}

#[tokio::test]
async fn a_refused_signed_url_starts_one_fresh_export_and_no_more() {
    let sim = simulator().await;
    let once = sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    sim.inject(&once, Fault::RefuseSignedUrl(1));
    let always = sim.add_database(UCCA, "engine-db", dump("engine-db", 10));
    sim.inject(&always, Fault::RefuseSignedUrl(u32::MAX));
    let sink = memory();
    let text = config_text(
        &sim,
        MEMORY_SINK,
        r#""ops-db", "engine-db""#,
        r#""rto-ops-db""#,
    );
    let report = run(
        &engine(&text, Some(sink.clone())),
        RunOptions::new(date())
            .only(["ucca/ops-db".parse().unwrap(), "engine-db".parse().unwrap()]),
    )
    .await;

    assert_eq!(report.databases[0].status, Status::Ok);
    assert_eq!(report.databases[0].exports, 2);
    assert_eq!(sim.exports_started(&once), 2);
    let note = &report.databases[0].notes[0];
    assert!(
        note.contains("export 1") && note.contains("fresh export"),
        "{note}"
    );
    let failed = &report.databases[1];
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.exports, 2);
    assert_eq!(sim.exports_started(&always), 2);
    let error = failed.error.as_deref().unwrap();
    assert!(
        !error.contains("X-Amz-Signature"),
        "signed URL query leaked: {error}"
    );
    assert!(sink.head(&failed.key).await.unwrap().is_none());
}

#[tokio::test]
async fn export_already_running_is_reported_as_such() {
    let sim = simulator().await;
    let busy = sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    sim.inject(&busy, Fault::ExportInProgress);
    let text = config_text(&sim, MEMORY_SINK, r#""ops-db""#, r#""rto-ops-db""#)
        .replace("[run]\n", "[run]\nwait_if_busy_minutes = 0\n");
    let report = run(
        &engine(&text, Some(memory())),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    let error = report.databases[0].error.as_deref().unwrap();
    assert!(error.to_lowercase().contains("export"), "{error}");
    assert_eq!(report.databases[0].status, Status::Failed);
}

#[tokio::test]
async fn a_busy_database_is_waited_for_then_backed_up() {
    let sim = simulator().await;
    let body = dump("ops-db", 10);
    let busy = sim.add_database(UCCA, "ops-db", body.clone());
    // Another export holds the database for the first three attempts.
    sim.inject(&busy, Fault::BusyFor(3));
    let sink = memory();
    let text = config_text(&sim, MEMORY_SINK, r#""ops-db""#, r#""rto-ops-db""#);
    let report = run(
        &engine(&text, Some(sink.clone())),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
    assert_eq!(read(sink.as_ref(), "d1/2026-11-30/ops-db.sql").await, body);
    assert_eq!(sim.exports_started(&busy), 1);
}

#[tokio::test]
async fn cancelling_leaves_nothing_and_says_interrupted() {
    let sim = simulator().await;
    let slow = sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    sim.set_polls_before_complete(&slow, 1_000_000);
    let sink = memory();
    let text = config_text(&sim, MEMORY_SINK, r#""ops-db""#, r#""rto-ops-db""#);
    let engine = engine(&text, Some(sink.clone()));
    let cancel = CancellationToken::new();
    let canceller = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        canceller.cancel();
    });
    let options = RunOptions::new(date()).only(["ops-db".parse().unwrap()]);
    let report = engine.run(&options, &(), &cancel).await.unwrap();
    assert!(report.interrupted);
    assert_eq!(report.databases[0].status, Status::Failed);
    assert!(
        report.databases[0]
            .error
            .as_deref()
            .unwrap()
            .contains("cancelled")
    );
    assert!(keys(sink.as_ref(), "").await.is_empty());
}

/// Records event kinds, to check what an embedding service's progress display receives.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn event(&self, event: &ProgressEvent<'_>) {
        let kind = match event.kind {
            EventKind::ExportStarted { .. } => "export-started",
            EventKind::Export(_) => "export",
            EventKind::DownloadStarted { .. } => "download-started",
            EventKind::Transferred { .. } => "transferred",
            EventKind::Done { .. } => "done",
            EventKind::Failed { .. } => "failed",
            _ => "other",
        };
        self.0
            .lock()
            .unwrap()
            .push(format!("{}/{}:{kind}", event.account, event.database));
    }
}

#[tokio::test]
async fn progress_reports_each_step() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 10));
    let text = config_text(&sim, MEMORY_SINK, r#""ops-db""#, r#""rto-ops-db""#);
    let recorder = Recorder::default();
    let options = RunOptions::new(date()).only(["ops-db".parse().unwrap()]);
    engine(&text, Some(memory()))
        .run(&options, &recorder, &CancellationToken::new())
        .await
        .unwrap();
    let events = recorder.0.into_inner().unwrap();
    let first = |kind: &str| events.iter().position(|e| e.ends_with(kind));
    assert_eq!(first(":export-started"), Some(0), "{events:?}");
    assert!(first(":export") < first(":download-started"), "{events:?}");
    assert_eq!(
        events.last().map(String::as_str),
        Some("ucca/ops-db:done"),
        "{events:?}"
    );
}

#[tokio::test]
async fn filesystem_sink_writes_the_layout_under_its_path() {
    let sim = simulator().await;
    let ops = dump("ops-db", 100);
    sim.add_database(UCCA, "ops-db", ops.clone());
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("kind = \"fs\"\npath = \"{}\"", dir.path().display());
    let text = config_text(&sim, &sink, r#""ops-db""#, r#""rto-ops-db""#);
    let report = run(
        &engine(&text, None),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    assert!(report.succeeded(), "{report:#?}");
    let on_disk = std::fs::read(dir.path().join("d1/2026-11-30/ops-db.sql")).unwrap();
    assert_eq!(on_disk, ops);
}

#[tokio::test]
async fn s3_sink_receives_byte_identical_multipart_dumps() {
    let server = r2_sink::testing::S3TestServer::start().await.unwrap();
    let sim = simulator().await;
    // Larger than one 16 MiB part, and not a multiple of it.
    let big = dump("rto-abs-db", 420_000);
    assert!(big.len() > 17 * 1024 * 1024, "{}", big.len());
    sim.add_database(RTO, "rto-abs-db", big.clone());
    let small = dump("ops-db", 50);
    sim.add_database(UCCA, "ops-db", small.clone());
    let sink = format!(
        "kind = \"s3\"\nbucket = \"{}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id_env = \"S3_KEY\"\nsecret_access_key_env = \"S3_SECRET\"",
        server.bucket(),
        server.endpoint()
    );
    let text = config_text(&sim, &sink, r#""ops-db""#, r#""rto-abs-db""#);
    let mut secrets: Vec<(&str, &str)> =
        vec![("CF_API_TOKEN", UCCA_TOKEN), ("RTO_API_TOKEN", RTO_TOKEN)];
    secrets.push(("S3_KEY", server.access_key_id()));
    secrets.push(("S3_SECRET", server.secret_access_key()));
    let engine =
        d1_backup_core::Engine::builder(parse(&text), d1_backup_core::Secrets::from_pairs(secrets))
            .build()
            .unwrap();
    let report = run(&engine, RunOptions::new(date())).await;
    assert!(report.succeeded(), "{report:#?}");
    let sink = engine.sink();
    assert_eq!(
        read(sink.as_ref(), "rtopacks/2026-11-30/rto-abs-db.sql").await,
        big
    );
    assert_eq!(read(sink.as_ref(), "d1/2026-11-30/ops-db.sql").await, small);
    assert_eq!(
        report.databases[1].sha256.as_deref(),
        Some(sha256_hex(&big).as_str())
    );
}
