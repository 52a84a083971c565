//! `[[replicas]]` through the binary: `run` writes every replica, `list`, `verify` and
//! `restore --replica` read one, a replica that cannot be written fails the database (exit 1).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{d1_backup, text};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/databases")
        .join(name)
}

/// The quickstart's `shop` database backed up to `backups`, with one replica at `offsite`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("databases")).unwrap();
    std::fs::copy(
        example("shop.sqlite"),
        dir.path().join("databases/shop.sqlite"),
    )
    .unwrap();
    let config = "[sink]\nkind = \"fs\"\npath = \"backups\"\n\n[[replicas]]\nname = \"offsite\"\nkind = \"fs\"\npath = \"offsite\"\nkeep_days = 90\n\n[[accounts]]\nname = \"local\"\nprefix = \"local\"\ndatabases = [{ name = \"shop\", sqlite = \"databases/shop.sqlite\" }]\n";
    std::fs::write(dir.path().join("d1-backup.toml"), config).unwrap();
    dir
}

async fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    d1_backup(args, &[], dir).await
}

#[tokio::test]
async fn list_verify_and_restore_read_a_replica() {
    let dir = setup();
    let out = run(dir.path(), &["run", "--date", "2026-11-30", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let replicas = &report["databases"][0]["replicas"];
    assert_eq!(replicas[0]["target"], "offsite", "{report}");
    assert_eq!(replicas[0]["status"], "ok", "{report}");
    assert_eq!(replicas[0]["key"], "local/2026-11-30/shop.sql", "{report}");
    for key in ["shop.sql", "shop.manifest.json"] {
        let main = std::fs::read(dir.path().join("backups/local/2026-11-30").join(key)).unwrap();
        let copy = std::fs::read(dir.path().join("offsite/local/2026-11-30").join(key)).unwrap();
        assert_eq!(main, copy, "{key}");
    }
    // Without the main sink's copy, only the replica can answer.
    std::fs::remove_dir_all(dir.path().join("backups/local")).unwrap();
    let out = run(dir.path(), &["list", "--json"]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed["backups"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    for which in ["offsite", "0"] {
        let out = run(dir.path(), &["list", "--replica", which, "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(listed["backups"][0]["database"], "shop", "{listed}");
        assert_eq!(listed["backups"][0]["complete"], true, "{listed}");
    }
    let out = run(dir.path(), &["verify", "--replica", "offsite"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let restore = [
        "restore",
        "--database",
        "shop",
        "--to-sqlite",
        "shop.sqlite",
    ];
    let out = run(dir.path(), &restore).await;
    assert_ne!(
        out.status.code(),
        Some(0),
        "the main sink has no backup left"
    );
    let mut from_replica = restore.to_vec();
    from_replica.extend(["--replica", "offsite"]);
    let out = run(dir.path(), &from_replica).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.path().join("shop.sqlite").exists());
    // An unknown replica is a usage error naming the configured ones.
    let out = run(dir.path(), &["list", "--replica", "nearby"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("0 (offsite)"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_replica_that_cannot_be_written_fails_the_database_with_exit_1() {
    let dir = setup();
    // The replica's folder for the account is a file: nothing can be stored under it.
    std::fs::create_dir(dir.path().join("offsite")).unwrap();
    std::fs::write(dir.path().join("offsite/local"), b"not a directory").unwrap();
    let out = run(dir.path(), &["run", "--date", "2026-11-30", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let db = &report["databases"][0];
    assert_eq!(db["status"], "failed", "{report}");
    assert_eq!(db["replicas"][0]["status"], "failed", "{report}");
    assert!(db["replicas"][0]["error"].is_string(), "{report}");
    // The main sink's backup stays complete.
    let out = run(dir.path(), &["list", "--json"]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["backups"][0]["complete"], true, "{listed}");
    // Once the replica can be written again, the rerun completes it rather than skipping.
    std::fs::remove_file(dir.path().join("offsite/local")).unwrap();
    let out = run(dir.path(), &["run", "--date", "2026-11-30", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["databases"][0]["status"], "ok", "{report}");
    assert_eq!(
        report["databases"][0]["replicas"][0]["status"], "ok",
        "{report}"
    );
    let out = run(dir.path(), &["run", "--date", "2026-11-30", "--json"]).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["databases"][0]["status"], "skipped", "{report}");
}
