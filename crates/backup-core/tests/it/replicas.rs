//! `[[replicas]]`: each backup streamed once into the main sink and every replica, each with
//! its own manifest, its own retention and its own line in the report.

use std::path::Path;
use std::sync::Arc;

use d1_backup_core::chrono::{Duration, NaiveDate};
use d1_backup_core::{Config, Engine, RunOptions, Secrets, Status};
use d1_export::testing::D1Simulator;
use r2_sink::BackupSink;
use r2_sink::testing::S3TestServer;

use crate::support::{UCCA, UCCA_TOKEN, config_head, date, dump, keys, read, run, simulator};

fn config(sim: &D1Simulator, sink: &str, extra: &str) -> Config {
    let text = format!(
        r#"
{head}
[retention]
keep_days = 3
min_keep = 1

[run]
poll_interval_ms = 0
compression = "zstd"

[[accounts]]
name = "ucca"
account_id = "{UCCA}"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = ["ops-db"]

{extra}
"#,
        head = config_head(sim, sink),
    );
    Config::from_toml(&text, Path::new("test.toml")).unwrap()
}

fn fs_sink(dir: &Path) -> String {
    format!("kind = \"fs\"\npath = \"{}\"", dir.display())
}

fn s3_sink(server: &S3TestServer) -> String {
    format!(
        "kind = \"s3\"\nbucket = \"{}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id_env = \"S3_KEY\"\nsecret_access_key_env = \"S3_SECRET\"",
        server.bucket(),
        server.endpoint()
    )
}

fn secrets(server: Option<&S3TestServer>) -> Secrets {
    let mut pairs = vec![("CF_API_TOKEN".to_owned(), UCCA_TOKEN.to_owned())];
    if let Some(server) = server {
        pairs.push(("S3_KEY".to_owned(), server.access_key_id().to_owned()));
        pairs.push((
            "S3_SECRET".to_owned(),
            server.secret_access_key().to_owned(),
        ));
    }
    Secrets::from_pairs(pairs)
}

fn replica_sink(engine: &Engine, which: &str) -> Arc<dyn BackupSink> {
    Arc::clone(engine.on_replica(which).unwrap().sink())
}

#[tokio::test]
async fn a_backup_lands_byte_identical_on_the_main_sink_and_a_filesystem_replica() {
    let sim = simulator().await;
    let sql = dump("ops-db", 20_000);
    sim.add_database(UCCA, "ops-db", sql);
    let server = S3TestServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let replica = format!("[[replicas]]\nname = \"offsite\"\n{}", fs_sink(dir.path()));
    let config = config(&sim, &s3_sink(&server), &replica);
    let engine = Engine::builder(config, secrets(Some(&server)))
        .build()
        .unwrap();
    let report = run(&engine, RunOptions::new(date())).await;
    let db = &report.databases[0];
    assert_eq!(db.status, Status::Ok, "{report:#?}");
    assert_eq!(db.replicas.len(), 1, "{db:#?}");
    let line = &db.replicas[0];
    assert_eq!(
        (line.target.as_str(), line.status, line.key.as_str()),
        ("offsite", Status::Ok, db.key.as_str())
    );
    assert!(line.error.is_none());
    let main = engine.sink().as_ref();
    let copy = replica_sink(&engine, "offsite");
    // The same objects (dump and manifest), byte for byte.
    let main_keys = keys(main, "d1/").await;
    assert_eq!(keys(copy.as_ref(), "d1/").await, main_keys);
    assert_eq!(main_keys.len(), 2, "{main_keys:?}");
    for key in &main_keys {
        assert_eq!(
            read(main, key).await,
            read(copy.as_ref(), key).await,
            "{key}"
        );
    }
    // Replicas are read by index or name; the JSON names the target, never a path.
    let by_index = engine.on_replica("0").unwrap();
    let listed = by_index.list_backups(&[]).await.unwrap();
    assert!(listed[0].complete, "{listed:?}");
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        json.contains(r#""replicas":[{"target":"offsite","status":"ok""#),
        "{json}"
    );
    assert!(!json.contains(&dir.path().display().to_string()), "{json}");
    let unknown = engine.on_replica("nearby").unwrap_err();
    assert!(unknown.to_string().contains("0 (offsite)"), "{unknown}");
    assert!(engine.on_replica("1").is_err());
}

#[tokio::test]
async fn a_replica_with_longer_retention_keeps_what_the_main_sink_prunes() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 50));
    let main_dir = tempfile::tempdir().unwrap();
    let long_dir = tempfile::tempdir().unwrap();
    let same_dir = tempfile::tempdir().unwrap();
    // Two replicas: one keeps 10 days, one (unnamed) the main retention's 3.
    let replicas = format!(
        "[[replicas]]\nname = \"long\"\nkeep_days = 10\n{}\n\n[[replicas]]\n{}",
        fs_sink(long_dir.path()),
        fs_sink(same_dir.path())
    );
    let config = config(&sim, &fs_sink(main_dir.path()), &replicas);
    let engine = Engine::builder(config, secrets(None)).build().unwrap();
    let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    for day in 0..8 {
        let report = run(&engine, RunOptions::new(start + Duration::days(day))).await;
        assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
        let targets: Vec<&str> = report.databases[0]
            .replicas
            .iter()
            .map(|r| r.target.as_str())
            .collect();
        assert_eq!(targets, ["long", "replicas[1]"]);
        let prune = report.prune.unwrap();
        assert!(prune.errors.is_empty(), "{:?}", prune.errors);
        assert_eq!(prune.replicas.len(), 2);
    }
    let dates = |sink: Arc<dyn BackupSink>| async move {
        let mut dates: Vec<String> = keys(sink.as_ref(), "d1/")
            .await
            .into_iter()
            .filter(|k| k.ends_with(".manifest.json"))
            .map(|k| k.split('/').nth(1).unwrap().to_owned())
            .collect();
        dates.dedup();
        dates
    };
    let days = |range: std::ops::Range<i64>| -> Vec<String> {
        range
            .map(|d| (start + Duration::days(d)).to_string())
            .collect()
    };
    assert_eq!(dates(Arc::clone(engine.sink())).await, days(5..8));
    assert_eq!(dates(replica_sink(&engine, "long")).await, days(0..8));
    assert_eq!(dates(replica_sink(&engine, "1")).await, days(5..8));
    // A standalone prune of a later day applies each target's own keep_days.
    let today = start + Duration::days(12);
    let pruned = engine
        .prune(&d1_backup_core::PruneOptions::new(today))
        .await
        .unwrap();
    assert!(pruned.errors.is_empty(), "{:?}", pruned.errors);
    // Main and replicas[1]: min_keep 1 keeps the newest; long: 10 days from day 12 keep 3..8.
    assert_eq!(dates(Arc::clone(engine.sink())).await, days(7..8));
    assert_eq!(dates(replica_sink(&engine, "long")).await, days(3..8));
    assert_eq!(
        dates(replica_sink(&engine, "replicas[1]")).await,
        days(7..8)
    );
}

#[tokio::test]
async fn a_failing_replica_fails_the_database_and_leaves_the_other_copies() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 2_000));
    let server = S3TestServer::start().await.unwrap();
    let broken = tempfile::tempdir().unwrap();
    let good = tempfile::tempdir().unwrap();
    let broken_root = broken.path().join("bucket");
    let replicas = format!(
        "[[replicas]]\nname = \"broken\"\n{}\n\n[[replicas]]\nname = \"good\"\n{}",
        fs_sink(&broken_root),
        fs_sink(good.path())
    );
    let config = config(&sim, &s3_sink(&server), &replicas);
    let engine = Engine::builder(config, secrets(Some(&server)))
        .build()
        .unwrap();
    // The broken replica's directory becomes a file: nothing can be written under it.
    std::fs::remove_dir_all(&broken_root).unwrap();
    std::fs::write(&broken_root, b"not a directory").unwrap();
    let report = run(&engine, RunOptions::new(date())).await;
    assert!(!report.succeeded());
    let db = &report.databases[0];
    assert_eq!(db.status, Status::Failed, "{db:#?}");
    let error = db.error.as_deref().unwrap();
    assert!(error.contains("broken"), "{error}");
    let lines: Vec<(&str, Status)> = db
        .replicas
        .iter()
        .map(|r| (r.target.as_str(), r.status))
        .collect();
    assert_eq!(lines, [("broken", Status::Failed), ("good", Status::Ok)]);
    assert!(db.replicas[0].error.is_some());
    // The main sink and the good replica keep a complete backup.
    let listed = engine.list_backups(&[]).await.unwrap();
    assert!(listed[0].complete, "{listed:?}");
    let on_good = engine.on_replica("good").unwrap();
    let listed = on_good.list_backups(&[]).await.unwrap();
    assert!(listed[0].complete, "{listed:?}");
    // A failed database prunes nothing anywhere.
    let prune = report.prune.unwrap();
    assert!(prune.decisions.is_empty(), "{prune:#?}");
}

#[test]
fn replica_entries_are_checked_like_the_sink() {
    let base = "[sink]\nkind = \"fs\"\npath = \"b\"\n\n[[accounts]]\nname = \"l\"\nprefix = \"l\"\ndatabases = [{ name = \"x\", sqlite = \"x.sqlite\" }]\n";
    let check = |replicas: &str, field: &str| {
        let text = format!("{base}\n{replicas}");
        let error = Config::from_toml(&text, Path::new("t.toml")).unwrap_err();
        assert!(error.chain().contains(field), "{field}: {}", error.chain());
    };
    check("[[replicas]]\nkind = \"fs\"\n", "replicas[0].path");
    check(
        "[[replicas]]\nkind = \"s3\"\nbucket = \"b\"\n",
        "replicas[0].endpoint",
    );
    check(
        "[[replicas]]\nkind = \"fs\"\npath = \"r\"\ncolour = 1\n",
        "colour",
    );
    check(
        "[[replicas]]\nkind = \"fs\"\npath = \"r\"\nkeep_days = 0\n",
        "replicas[0].keep_days",
    );
    check(
        "[[replicas]]\nname = \"a\"\nkind = \"fs\"\npath = \"r\"\n[[replicas]]\nname = \"a\"\nkind = \"fs\"\npath = \"s\"\n",
        "replicas[1].name",
    );
    check(
        "[[replicas]]\nname = \"7\"\nkind = \"fs\"\npath = \"r\"\n",
        "replicas[0].name",
    );
    // A replica's secrets are named with their field, for the caller to read.
    let text = format!(
        "{base}\n[[replicas]]\nkind = \"r2\"\naccount_id = \"{UCCA}\"\nbucket = \"b\"\naccess_key_id_env = \"OFF_KEY\"\nsecret_access_key_env = \"OFF_SECRET\"\n"
    );
    let config = Config::from_toml(&text, Path::new("t.toml")).unwrap();
    let vars = config.secret_env_vars();
    assert!(
        vars.contains(&("replicas[0].access_key_id_env".to_owned(), "OFF_KEY")),
        "{vars:?}"
    );
    // Relative paths are relative to the config file, as `[sink] path` is.
    let text = format!("{base}\n[[replicas]]\nkind = \"fs\"\npath = \"r\"\n");
    let config = Config::from_toml(&text, Path::new("/etc/d1/t.toml")).unwrap();
    assert_eq!(
        config.replicas[0].sink.path.as_deref(),
        Some(Path::new("/etc/d1/r"))
    );
}

#[tokio::test]
async fn an_encrypted_backup_reaches_every_replica_as_the_same_ciphertext() {
    let sim = simulator().await;
    sim.add_database(UCCA, "ops-db", dump("ops-db", 3_000));
    let public = age::x25519::Identity::generate().to_public().to_string();
    let main_dir = tempfile::tempdir().unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[encryption]\nrecipients = [\"{public}\"]\n\n[[replicas]]\n{}",
        fs_sink(copy_dir.path())
    );
    let config = config(&sim, &fs_sink(main_dir.path()), &extra);
    let engine = Engine::builder(config, secrets(None)).build().unwrap();
    let report = run(&engine, RunOptions::new(date())).await;
    let db = &report.databases[0];
    assert_eq!(db.status, Status::Ok, "{report:#?}");
    assert!(db.key.ends_with(".sql.zst.age"), "{}", db.key);
    assert_eq!(db.replicas[0].key, db.key);
    let main = read(engine.sink().as_ref(), &db.key).await;
    let copy = read(replica_sink(&engine, "0").as_ref(), &db.key).await;
    assert!(main.starts_with(b"age-encryption.org/v1\n"));
    // Encrypted once, as the stream was read once: the very same ciphertext.
    assert_eq!(main, copy);
}
