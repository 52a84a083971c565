//! Heartbeats after runs: KV, an object in the sink, a ping URL; failures reported, not fatal.

use std::sync::Arc;

use d1_backup_core::{RunOptions, Status};
use d1_export::testing::Fault;
use r2_sink::{BackupSink, ObjectStoreSink};
use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";
const NS: &str = "86582e393ca2475e9e0f85c262221be3";

async fn ping_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn with_heartbeat(text: &str, ping: &MockServer) -> String {
    format!(
        "{text}\n[heartbeat]\nkv = {{ account = \"ucca\", namespace_id = \"{NS}\", key = \"ucca-backup\" }}\nobject = \"_heartbeat/ucca-backup.json\"\nurl = \"{}/ping/abc123\"\n",
        ping.uri()
    )
}

#[tokio::test]
async fn a_run_records_its_heartbeat_everywhere() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let ping = ping_server().await;
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let text = with_heartbeat(
        &config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#),
        &ping,
    );
    let report = run(
        &engine(&text, Some(sink.clone())),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    assert_eq!(report.databases[0].status, Status::Ok);
    let targets: Vec<(&str, bool)> = report
        .heartbeat
        .iter()
        .map(|h| (h.target, h.error.is_none()))
        .collect();
    assert_eq!(
        targets,
        [("kv", true), ("object", true), ("url", true)],
        "{:?}",
        report.heartbeat
    );

    let kv: Value =
        serde_json::from_slice(&sim.kv_value(UCCA, NS, "ucca-backup").unwrap()).unwrap();
    assert_eq!(kv["kind"], d1_backup_core::HEARTBEAT_KIND);
    assert_eq!(kv["version"], d1_backup_core::HEARTBEAT_VERSION);
    assert_eq!(kv["kind"], "d1-backup-heartbeat");
    assert_eq!(kv["status"], "ok");
    assert_eq!(kv["date"], "2026-11-30");
    assert_eq!(kv["totals"]["ok"], 1);
    assert_eq!(kv["databases"][0]["name"], "ops-db");
    let object: Value =
        serde_json::from_slice(&read(sink.as_ref(), "_heartbeat/ucca-backup.json").await).unwrap();
    assert_eq!(object, kv);
    let pings = ping.received_requests().await.unwrap();
    assert_eq!(pings.len(), 1);
    assert_eq!(pings[0].url.path(), "/ping/abc123");
    let shown = &report.heartbeat[2].destination;
    assert!(
        !shown.contains("abc123"),
        "the check id is a secret: {shown}"
    );
}

#[tokio::test]
async fn a_failed_run_pings_the_fail_url_and_a_failed_heartbeat_fails_nothing() {
    let sim = simulator().await;
    let bad = sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    sim.inject(&bad, Fault::ExportError("boom".into()));
    sim.add_database(UCCA, "engine-db", dump("engine-db", 5));
    let ping = ping_server().await;
    let text = with_heartbeat(
        &config_text(&sim, UNUSED_SINK, r#""ops-db", "engine-db""#, r#""rto-x""#),
        &ping,
    )
    .replace("account = \"ucca\"", "account = \"rtopacks\"");
    sim.add_account(RTO, "rotated-token"); // so the KV write is refused
    let report = run(
        &engine(&text, Some(Arc::new(ObjectStoreSink::memory()))),
        RunOptions::new(date())
            .only(["ucca/ops-db".parse().unwrap(), "engine-db".parse().unwrap()]),
    )
    .await;
    assert_eq!(
        report.databases[1].status,
        Status::Ok,
        "a heartbeat never fails the backups"
    );
    let kv = &report.heartbeat[0];
    assert_eq!(kv.target, "kv");
    assert!(kv.error.as_deref().unwrap().contains("401"), "{kv:?}");
    assert!(!kv.error.as_deref().unwrap().contains(RTO_TOKEN));
    let pings = ping.received_requests().await.unwrap();
    assert_eq!(pings[0].url.path(), "/ping/abc123/fail");
    let body: Value = serde_json::from_slice(&pings[0].body).unwrap();
    assert_eq!(body["status"], "failed");
    assert_eq!(body["totals"]["failed"], 1);
}

#[tokio::test]
async fn an_unreachable_ping_is_reported_not_fatal() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let text = format!(
        "{}\n[heartbeat]\nurl = \"http://127.0.0.1:9/ping?token=secret-check-id\"\n",
        config_text(&sim, UNUSED_SINK, r#""ops-db""#, r#""rto-x""#)
    );
    let report = run(
        &engine(&text, Some(Arc::new(ObjectStoreSink::memory()))),
        RunOptions::new(date()).only(["ops-db".parse().unwrap()]),
    )
    .await;
    assert!(report.succeeded());
    let outcome = &report.heartbeat[0];
    assert_eq!(outcome.target, "url");
    let error = outcome.error.as_deref().unwrap();
    assert!(
        !error.contains("secret-check-id") && !outcome.destination.contains("secret-check-id"),
        "{error}"
    );
}
