//! R2 bucket lock rules (issue 16, point 3): prune over the S3 test server keeps what a lock
//! rule (read from the simulated Cloudflare API) still holds, with the rule in the reason,
//! deletes the rest, and deletes nothing when the rules cannot be read; `config check`
//! reports each folder's lock and warns where retention cannot prune.

use std::sync::Arc;

use d1_backup_core::chrono::{Days, NaiveDate};
use d1_backup_core::{Action, Engine, PruneOptions, RunOptions, Secrets};
use d1_export::testing::D1Simulator;
use r2_sink::BackupSink;
use r2_sink::testing::S3TestServer;
use serde_json::json;

use crate::support::*;

const ADMIN_TOKEN: &str = "r2-admin-SECRET-93ab";

fn lock_config(sim: &D1Simulator, server: &S3TestServer, keep_days: u32) -> String {
    format!(
        r#"
[cloudflare]
api_base_url = "{api}"
requests_per_five_minutes = 1000000

[sink]
kind = "r2"
account_id = "{UCCA}"
bucket = "{bucket}"
endpoint = "{endpoint}"
access_key_id_env = "R2_KEY"
secret_access_key_env = "R2_SECRET"
lock_token_env = "R2_ADMIN_TOKEN"

[retention]
keep_days = {keep_days}
min_keep = 1
prune_after_run = false

[run]
poll_interval_ms = 0

[[accounts]]
name = "ucca"
account_id = "{UCCA}"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = ["ops-db"]
"#,
        api = sim.base_url(),
        bucket = server.bucket(),
        endpoint = server.endpoint(),
    )
}

fn lock_engine(text: &str, sink: Arc<dyn BackupSink>, admin: Option<&str>) -> Engine {
    let mut secrets = Secrets::new().with("CF_API_TOKEN", UCCA_TOKEN);
    if let Some(token) = admin {
        secrets = secrets.with("R2_ADMIN_TOKEN", token);
    }
    Engine::builder(parse(text), secrets)
        .sink(sink)
        .build()
        .unwrap()
}

fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + Days::new(n)
}

/// Backs up ops-db on 2026-10-01..05 and 2026-10-10..12 into the S3 test server.
async fn seeded() -> (D1Simulator, S3TestServer, Arc<dyn BackupSink>) {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 20));
    let server = S3TestServer::start().await.unwrap();
    let sink: Arc<dyn BackupSink> = Arc::new(server.sink().unwrap());
    let engine = lock_engine(
        &lock_config(&sim, &server, 30),
        sink.clone(),
        Some(ADMIN_TOKEN),
    );
    for n in [0, 1, 2, 3, 4, 9, 10, 11] {
        let report = run(&engine, RunOptions::new(day(n))).await;
        assert!(report.succeeded(), "{report:#?}");
    }
    (sim, server, sink)
}

#[tokio::test]
async fn prune_keeps_locked_backups_with_the_rule_and_deletes_the_rest() {
    let (sim, server, sink) = seeded().await;
    sim.set_bucket_lock(
        UCCA,
        server.bucket(),
        ADMIN_TOKEN,
        json!([
            // Every object under the first five days was written seconds ago: locked.
            {"id": "first-days", "enabled": true, "prefix": "d1/2026-10-0", "condition": {"type": "Age", "maxAgeSeconds": 86400}},
            // Disabled: locks nothing.
            {"id": "off", "enabled": false, "prefix": "", "condition": {"type": "Indefinite"}},
            // Another folder.
            {"id": "elsewhere", "enabled": true, "prefix": "rtopacks/", "condition": {"type": "Indefinite"}},
        ]),
    );
    let engine = lock_engine(
        &lock_config(&sim, &server, 30),
        sink.clone(),
        Some(ADMIN_TOKEN),
    );
    let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let report = engine.prune(&PruneOptions::new(today)).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        sim.bucket_lock_reads(UCCA, server.bucket()).0,
        1,
        "read once"
    );
    for d in &report.decisions {
        let date = d.date.to_string();
        if date.as_str() <= "2026-10-05" {
            assert_eq!(d.action, Action::Keep, "{d:?}");
            assert!(
                d.reason
                    .starts_with("locked by bucket lock rule first-days until 20"),
                "{d:?}"
            );
        } else if date == "2026-10-12" {
            assert_eq!(d.action, Action::Keep, "{d:?}");
            assert!(d.reason.contains("min_keep"), "{d:?}");
        } else {
            assert_eq!(d.action, Action::Delete, "{d:?}");
        }
    }
    assert_eq!(report.decisions.len(), 8);
    let left = keys(sink.as_ref(), "d1/").await;
    for n in [0, 1, 2, 3, 4, 11] {
        assert!(
            left.iter().any(|k| k.contains(&day(n).to_string())),
            "{left:?}"
        );
    }
    for n in [9, 10] {
        assert!(
            !left.iter().any(|k| k.contains(&day(n).to_string())),
            "{left:?}"
        );
    }
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(ADMIN_TOKEN));
}

#[tokio::test]
async fn unreadable_lock_rules_delete_nothing_and_say_why() {
    let (sim, server, sink) = seeded().await;
    sim.set_bucket_lock(UCCA, server.bucket(), ADMIN_TOKEN, json!([]));
    let before = keys(sink.as_ref(), "d1/").await;
    let today = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    for admin in [Some("a-refused-token-SECRET"), None] {
        let engine = lock_engine(&lock_config(&sim, &server, 30), sink.clone(), admin);
        let report = engine.prune(&PruneOptions::new(today)).await.unwrap();
        assert_eq!(report.deleted, 0);
        assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
        let error = &report.errors[0];
        assert!(error.contains("R2_ADMIN_TOKEN"), "{error}");
        assert!(error.contains("nothing was deleted"), "{error}");
        assert!(
            report.decisions.iter().all(|d| d.action == Action::Keep),
            "{:?}",
            report.decisions
        );
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains("SECRET"), "{json}");
    }
    assert_eq!(keys(sink.as_ref(), "d1/").await, before);
}

#[tokio::test]
async fn config_check_reports_each_folders_lock_and_warns_when_retention_cannot_prune() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 5));
    let server = S3TestServer::start().await.unwrap();
    let sink: Arc<dyn BackupSink> = Arc::new(server.sink().unwrap());
    sim.set_bucket_lock(
        UCCA,
        server.bucket(),
        ADMIN_TOKEN,
        json!([{"id": "ninety", "enabled": true, "prefix": "d1/", "condition": {"type": "Age", "maxAgeSeconds": 90 * 86400}}]),
    );
    let lock_check = |checks: &[d1_backup_core::Check]| {
        let found = checks
            .iter()
            .find(|c| c.what.contains("bucket lock"))
            .cloned();
        found.unwrap_or_else(|| panic!("no lock check in {checks:#?}"))
    };
    // keep_days = 30 under a 90-day lock: a warning, not a failure.
    let engine = lock_engine(
        &lock_config(&sim, &server, 30),
        sink.clone(),
        Some(ADMIN_TOKEN),
    );
    let check = lock_check(&engine.check().await);
    assert!(check.ok && check.warning, "{check:?}");
    assert!(check.detail.contains("rule ninety"), "{check:?}");
    assert!(check.detail.contains("keep_days = 30"), "{check:?}");
    // keep_days = 90: protected, no warning.
    let engine = lock_engine(
        &lock_config(&sim, &server, 90),
        sink.clone(),
        Some(ADMIN_TOKEN),
    );
    let check = lock_check(&engine.check().await);
    assert!(check.ok && !check.warning, "{check:?}");
    // A refused or missing token fails the check, naming the variable.
    for admin in [Some("wrong-SECRET"), None] {
        let engine = lock_engine(&lock_config(&sim, &server, 90), sink.clone(), admin);
        let checks = engine.check().await;
        let failed = checks
            .iter()
            .find(|c| c.what.contains("lock rules"))
            .unwrap_or_else(|| panic!("{checks:#?}"));
        assert!(!failed.ok, "{failed:?}");
        assert!(failed.detail.contains("R2_ADMIN_TOKEN"), "{failed:?}");
        assert!(!failed.detail.contains("SECRET"), "{failed:?}");
    }
}
