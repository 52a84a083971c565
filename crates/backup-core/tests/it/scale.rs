//! Thousands of databases: 3,000 per-tenant databases across three accounts and tokens, backed
//! up by one run and by three shards at once: every database exactly once, about three API
//! calls each, and `--only ACCOUNT/*` selecting a whole account.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use d1_backup_core::{Engine, RunOptions, Selector, Shard, Status};
use d1_export::testing::D1Simulator;
use r2_sink::{BackupSink, ObjectStoreSink};

use crate::support::*;

const THIRD: &str = "0c1ab5b1a6b5a8f2f3c4d5e6f7a8b9c0";
const THIRD_TOKEN: &str = "third-token-9d8e";
const PER_ACCOUNT: usize = 1000;

/// Three accounts of 1,000 tiny databases each; the config text and every database's uuid.
async fn tenants() -> (D1Simulator, String, BTreeMap<String, String>) {
    let sim = simulator().await;
    sim.add_account(THIRD, THIRD_TOKEN);
    let mut uuids = BTreeMap::new();
    let mut accounts = String::new();
    for (account, id, token_env) in [
        ("ucca", UCCA, "CF_API_TOKEN"),
        ("rtopacks", RTO, "RTO_API_TOKEN"),
        ("third", THIRD, "THIRD_API_TOKEN"),
    ] {
        let mut names = Vec::with_capacity(PER_ACCOUNT);
        for n in 0..PER_ACCOUNT {
            let name = format!("tenant-{n:04}");
            let dump = format!(
                "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (a);\nINSERT INTO \"t\" (\"a\") VALUES({n});"
            );
            let uuid = sim.add_database(id, &name, dump);
            // A small database's export completes at its first poll.
            sim.set_polls_before_complete(&uuid, 0);
            uuids.insert(format!("{account}/{name}"), uuid);
            names.push(format!("\"{name}\""));
        }
        accounts.push_str(&format!(
            "\n[[accounts]]\nname = \"{account}\"\naccount_id = \"{id}\"\ntoken_env = \"{token_env}\"\nprefix = \"{account}\"\ndatabases = [{}]\n",
            names.join(", ")
        ));
    }
    let text = format!(
        "[cloudflare]\napi_base_url = \"{}\"\nrequests_per_five_minutes = 1000000\n\n[sink]\nkind = \"fs\"\npath = \"/unused\"\n\n[retention]\nkeep_days = 30\n\n[run]\npoll_interval_ms = 0\nconcurrency = 64\nper_account_concurrency = 32\n{accounts}",
        sim.base_url()
    );
    (sim, text, uuids)
}

fn engine_for(text: &str, sink: Arc<dyn BackupSink>, shard: Option<Shard>) -> Engine {
    let secrets = d1_backup_core::Secrets::from_pairs([
        ("CF_API_TOKEN", UCCA_TOKEN),
        ("RTO_API_TOKEN", RTO_TOKEN),
        ("THIRD_API_TOKEN", THIRD_TOKEN),
    ]);
    let mut builder = Engine::builder(parse(text), secrets).sink(sink);
    if let Some(shard) = shard {
        builder = builder.shard(shard);
    }
    builder.build().unwrap()
}

/// The dumps in `sink`, as `account/name`.
async fn backed_up(sink: &dyn BackupSink) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for account in ["ucca", "rtopacks", "third"] {
        for key in keys(sink, &format!("{account}/")).await {
            if let Some(name) = key.strip_suffix(".sql").and_then(|k| k.rsplit('/').next()) {
                out.insert(format!("{account}/{name}"));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_databases_back_up_once_in_one_run_or_three_shards() {
    let (sim, text, uuids) = tenants().await;
    let all: BTreeSet<String> = uuids.keys().cloned().collect();

    // One run.
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let engine = engine_for(&text, sink.clone(), None);
    let before = sim.requests();
    let report = run(&engine, RunOptions::new(date())).await;
    assert_eq!(report.databases.len(), 3 * PER_ACCOUNT);
    assert!(report.databases.iter().all(|d| d.status == Status::Ok));
    assert_eq!(backed_up(sink.as_ref()).await, all);
    // Per database: the schema query (virtual tables?), the export's start and its one poll
    // (three API calls against the token's budget), and the signed-URL download from R2; plus
    // one list page per 100 databases per account.
    let calls = sim.requests() - before;
    #[allow(clippy::cast_precision_loss)] // Thousands.
    let per_database = calls as f64 / (3 * PER_ACCOUNT) as f64;
    eprintln!("one run: {calls} requests, {per_database:.2} per database");
    assert_eq!(
        calls,
        3 * PER_ACCOUNT as u64 * 4 + 30,
        "{per_database:.2} per database"
    );

    // Three shards at once, into a fresh sink, on the next day: each database exactly once.
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let shards: Vec<Engine> = (1..=3)
        .map(|i| engine_for(&text, sink.clone(), Shard::new(i, 3)))
        .collect();
    let next_day = date().succ_opt().unwrap();
    let reports = futures::future::join_all(
        shards
            .iter()
            .map(|engine| run(engine, RunOptions::new(next_day))),
    )
    .await;
    let mut seen = BTreeSet::new();
    for (i, report) in reports.iter().enumerate() {
        assert!(report.databases.iter().all(|d| d.status == Status::Ok));
        let share = report.databases.len();
        assert!((900..=1100).contains(&share), "shard {}: {share}", i + 1);
        for d in &report.databases {
            assert!(
                seen.insert(format!("{}/{}", d.account, d.name)),
                "{} in two shards",
                d.name
            );
        }
    }
    assert_eq!(seen, all);
    for uuid in uuids.values() {
        assert_eq!(sim.exports_started(uuid), 2, "once per run");
    }
}

#[tokio::test]
async fn a_whole_account_is_selected_and_unknown_names_are_listed_briefly() {
    let (_sim, text, _) = tenants().await;
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let engine = engine_for(&text, sink.clone(), None);
    let only: Selector = "third/*".parse().unwrap();
    let report = run(&engine, RunOptions::new(date()).only([only])).await;
    assert_eq!(report.databases.len(), PER_ACCOUNT);
    assert!(report.databases.iter().all(|d| d.account == "third"));

    let unknown: Selector = "nope".parse().unwrap();
    let error = engine
        .run(
            &RunOptions::new(date()).only([unknown]),
            &(),
            &d1_backup_core::tokio_util::sync::CancellationToken::new(),
        )
        .await
        .err()
        .unwrap();
    let message = error.to_string();
    assert!(message.contains("… and 2,990 more"), "{message}");
    assert!(message.contains("third/*"), "{message}");
    assert!(message.len() < 1000, "{} bytes: {message}", message.len());
}
