//! The operator commands: prune, list, databases, config check, daemon, completions.

use std::time::Duration;

use d1_export::testing::{D1Simulator, Fault};
use futures::TryStreamExt;
use r2_sink::BackupSink;
use r2_sink::testing::S3TestServer;
use serde_json::Value;
use tokio::process::Command;

use crate::{d1_backup, text};

pub(crate) const ACCOUNT: &str = "e5a9830215a8d88961dc6c80a8c7442a";
pub(crate) const TOKEN: &str = "cli-secret-token";

fn dump(name: &str) -> Vec<u8> {
    format!("PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (x TEXT);\nINSERT INTO \"t\" (\"x\") VALUES('{name}');\n").into_bytes()
}

/// The D1 simulator, the in-process S3 server as the sink, and a config file for both.
pub(crate) struct World {
    pub(crate) sim: D1Simulator,
    pub(crate) s3: S3TestServer,
    pub(crate) dir: tempfile::TempDir,
}

impl World {
    pub(crate) async fn new(extra: &str) -> Self {
        let sim = D1Simulator::start().await;
        sim.add_account(ACCOUNT, TOKEN);
        sim.add_database(ACCOUNT, "ops-db", dump("ops-db"));
        sim.add_database(ACCOUNT, "engine-db", dump("engine-db"));
        sim.add_database(ACCOUNT, "forgotten-db", dump("forgotten-db"));
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3TestServer::start().await.unwrap();
        let config = format!(
            "[cloudflare]\napi_base_url = \"{}\"\nrequests_per_five_minutes = 100000\n\n[sink]\nkind = \"s3\"\nbucket = \"{}\"\nendpoint = \"{}\"\naccess_key_id_env = \"S3_KEY\"\nsecret_access_key_env = \"S3_SECRET\"\n\n[retention]\nkeep_days = 2\nmin_keep = 1\n\n[run]\npoll_interval_ms = 0\n\n[[accounts]]\nname = \"ucca\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\nprefix = \"d1\"\ndatabases = [\"ops-db\", \"engine-db\"]\n{extra}",
            sim.base_url(),
            s3.bucket(),
            s3.endpoint()
        );
        std::fs::write(dir.path().join("d1-backup.toml"), config).unwrap();
        Self { sim, s3, dir }
    }

    pub(crate) fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("CF_API_TOKEN", TOKEN),
            ("S3_KEY", self.s3.access_key_id()),
            ("S3_SECRET", self.s3.secret_access_key()),
        ]
    }

    pub(crate) async fn run(&self, args: &[&str]) -> std::process::Output {
        d1_backup(args, &self.env(), self.dir.path()).await
    }

    /// Starts `d1-backup daemon` in the background.
    pub(crate) fn daemon(&self) -> tokio::process::Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_d1-backup"));
        command
            .args(["daemon", "--grace", "1"])
            .current_dir(self.dir.path())
            .env_remove("D1_BACKUP_CONFIG")
            .stderr(std::process::Stdio::piped());
        for (key, value) in self.env() {
            command.env(key, value);
        }
        command.spawn().unwrap()
    }

    /// Waits (at most 10 s) until D1 has started `count` exports of the database `uuid`.
    pub(crate) async fn wait_for_exports(&self, uuid: &str, count: u32) {
        for _ in 0..100 {
            if self.sim.exports_started(uuid) >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn keys(&self) -> Vec<String> {
        let sink = self.s3.sink().unwrap();
        let infos: Vec<r2_sink::ObjectInfo> = sink.list("").try_collect().await.unwrap();
        infos.into_iter().map(|i| i.key).collect()
    }
}

#[tokio::test]
async fn force_prune_and_list_work_together() {
    let world = World::new("").await;
    for date in ["2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"] {
        let out = world.run(&["run", "--date", date]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let again = world.run(&["run", "--date", "2026-11-30", "--json"]).await;
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["databases"][0]["status"], "skipped");
    let forced = world
        .run(&["run", "--date", "2026-11-30", "--force", "--json"])
        .await;
    let report: Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert_eq!(report["databases"][0]["status"], "ok");

    let list = world.run(&["list", "--json"]).await;
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    let dates: Vec<&str> = listed["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["database"] == "ops-db")
        .map(|b| b["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2026-11-29", "2026-11-30"],
        "keep_days = 2 pruned after each run"
    );
    assert!(
        listed["backups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["complete"] == true)
    );

    let dry = world
        .run(&["prune", "--date", "2026-12-05", "--dry-run"])
        .await;
    assert_eq!(dry.status.code(), Some(0));
    let stderr = text(&dry.stderr);
    assert!(
        stderr.contains("would delete") && stderr.contains("expired"),
        "{stderr}"
    );
    assert!(
        stderr.contains("keep ") && stderr.contains("min_keep"),
        "{stderr}"
    );
    let real = world
        .run(&["prune", "--date", "2026-12-05", "--json"])
        .await;
    let pruned: Value = serde_json::from_slice(&real.stdout).unwrap();
    assert_eq!(
        pruned["deleted"], 4,
        "ops-db and engine-db each lose 2026-11-29 (dump + manifest)"
    );
    let verified = world.run(&["verify", "--json"]).await;
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        text(&verified.stderr)
    );
    let value: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(value["databases"][0]["tables"]["t"], 1);
    let human = world.run(&["list"]).await;
    let table = text(&human.stdout);
    assert!(
        table.contains("ucca/ops-db") && table.contains("2 backup(s), 2 complete"),
        "{table}"
    );
}

#[tokio::test]
async fn databases_marks_what_nobody_backs_up() {
    let world = World::new("").await;
    let out = world.run(&["databases"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(
        table.contains("forgotten-db") && table.contains("NOT BACKED UP"),
        "{table}"
    );
    let json = world.run(&["databases", "--json"]).await;
    let value: Value = serde_json::from_slice(&json.stdout).unwrap();
    let dbs = value["accounts"][0]["databases"].as_array().unwrap();
    assert_eq!(dbs.len(), 3);
    assert!(
        dbs.iter()
            .any(|d| d["name"] == "forgotten-db" && d["configured"] == false)
    );
    assert!(!text(&json.stdout).contains(TOKEN) && !text(&json.stderr).contains(TOKEN));
}

#[tokio::test]
async fn config_check_exports_nothing_and_reports_each_problem() {
    let world = World::new("").await;
    let out = world.run(&["config", "check"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report = text(&out.stdout);
    assert!(
        report.contains("token lists databases") && report.contains("is writable"),
        "{report}"
    );
    // A setting the sink kind does not use is a warning, not an error.
    let path = world.dir.path().join("d1-backup.toml");
    let with_extra = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[sink]\n", "[sink]\npath = \"./unused\"\n");
    std::fs::write(&path, with_extra).unwrap();
    let warned = world.run(&["config", "check"]).await;
    assert_eq!(warned.status.code(), Some(0));
    let stderr = text(&warned.stderr);
    assert!(
        stderr.contains("sink.path is not used when sink.kind = \"s3\""),
        "{stderr}"
    );
    // A configured database that does not exist, and a token that is refused.
    let broken = World::new("").await;
    let path = broken.dir.path().join("d1-backup.toml");
    let text_config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"engine-db\"]", "\"engine-db\", \"typo-db\"]");
    std::fs::write(&path, text_config).unwrap();
    let out = broken.run(&["config", "check", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&str> = value["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["database ucca/typo-db"]);
    let mut env = world.env();
    env[0] = ("CF_API_TOKEN", "wrong");
    let refused = d1_backup(&["config", "check"], &env, world.dir.path()).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stdout).contains("FAILED   account ucca: token lists databases"));
    for sim in [&world.sim, &broken.sim] {
        assert_eq!(
            sim.exports_started("00000000-0000-4000-8000-000000000001"),
            0,
            "no export"
        );
    }
}

/// Sends SIGTERM to a daemon and waits (at most 30 s) for it to exit.
pub(crate) async fn terminate(child: tokio::process::Child) -> std::process::Output {
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn daemon_fires_a_schedule_and_stops_cleanly_on_sigterm() {
    let world = World::new("\n[[schedules]]\nname = \"every-second\"\ncron = \"* * * * * *\"\ndatabases = [\"ops-db\"]\n").await;
    let ops = "00000000-0000-4000-8000-000000000001";
    world.sim.set_polls_before_complete(ops, 100_000); // the export never completes
    let child = world.daemon();
    // Wait until the scheduled run has started its export.
    world.wait_for_exports(ops, 1).await;
    assert_eq!(world.sim.exports_started(ops), 1, "the schedule fired");
    let output = terminate(child).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("next run of schedule every-second") && stderr.contains("stopping"),
        "{stderr}"
    );
    let keys = world.keys().await;
    assert!(
        keys.iter().all(|k| !k.contains("ops-db.sql")),
        "no partial dump: {keys:?}"
    );
    assert!(world.s3.list_multipart_uploads().await.is_empty());
}

#[tokio::test]
async fn the_daemon_survives_failed_runs() {
    let world = World::new("\n[[schedules]]\nname = \"every-second\"\ncron = \"* * * * * *\"\ndatabases = [\"engine-db\"]\n").await;
    let engine = "00000000-0000-4000-8000-000000000002";
    world.sim.inject(engine, Fault::ExportError("boom".into()));
    // `[run] metrics_file` is written after each scheduled run, its counters across runs.
    let file = world.dir.path().join("d1-backup.toml");
    let config = std::fs::read_to_string(&file).unwrap().replace(
        "poll_interval_ms = 0",
        "poll_interval_ms = 0\nmetrics_file = \"daemon.prom\"",
    );
    std::fs::write(&file, config).unwrap();
    let child = world.daemon();
    // Each failed run starts two exports (one fresh export after the failure); wait for two runs.
    world.wait_for_exports(engine, 4).await;
    assert!(
        world.sim.exports_started(engine) >= 4,
        "a second run followed the failed one"
    );
    let output = terminate(child).await;
    let stderr = text(&output.stderr);
    assert!(matches!(output.status.code(), Some(0 | 130)), "{stderr}");
    assert!(
        stderr.matches("finished (1 failed)").count() >= 2,
        "{stderr}"
    );
    assert!(stderr.contains("daemon stopped"), "{stderr}");
    let metrics = std::fs::read_to_string(world.dir.path().join("daemon.prom")).unwrap();
    let failures = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("d1_backup_failures_total{account=\"ucca\",database=\"engine-db\"} ")
        })
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or_default();
    assert!(failures >= 2, "the counter counts across runs:\n{metrics}");
}

#[tokio::test]
async fn completions_and_help_work_without_a_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = d1_backup(&["completions", "bash"], &[], dir.path()).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("d1-backup"));
    for command in [
        "run",
        "prune",
        "list",
        "verify",
        "databases",
        "status",
        "daemon",
        "completions",
    ] {
        let help = d1_backup(&[command, "--help"], &[], dir.path()).await;
        assert_eq!(help.status.code(), Some(0), "{command}");
        assert!(
            text(&help.stdout).contains("Example"),
            "{command} --help shows an example"
        );
    }
}

#[tokio::test]
async fn run_verify_and_verify_against_live_prove_backups() {
    let world = World::new("").await;
    let out = world.run(&["run", "--verify", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for db in report["databases"].as_array().unwrap() {
        assert_eq!(db["verified"], true, "{db}");
    }
    assert!(
        text(&out.stderr).contains("verified"),
        "{}",
        text(&out.stderr)
    );
    let keys = world.keys().await;
    let record = format!("d1/{}/ops-db.verification.json", today());
    assert!(keys.contains(&record), "{keys:?}");

    // Against the live databases (fixed dumps: no query API behind them) the comparison
    // cannot run, and verify says so instead of passing.
    let out = world
        .run(&["verify", "--only", "ops-db", "--against-live", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = result["databases"][0]["problems"].to_string();
    assert!(
        problems.contains("cannot compare with the live database"),
        "{problems}"
    );
    assert!(!text(&out.stderr).contains(TOKEN) && !text(&out.stdout).contains(TOKEN));

    // `list` shows which backups were verified.
    let out = world.run(&["list", "--json"]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let backups = listed["backups"].as_array().unwrap();
    assert!(
        backups
            .iter()
            .all(|b| b["verified"] == false || b["verified"] == true),
        "{listed}"
    );
    let ops = backups.iter().find(|b| b["database"] == "ops-db").unwrap();
    assert_eq!(
        ops["verified"], false,
        "the failed live comparison is recorded"
    );
    let engine = backups
        .iter()
        .find(|b| b["database"] == "engine-db")
        .unwrap();
    assert_eq!(engine["verified"], true);
}

#[tokio::test]
async fn encrypted_backups_need_the_identity_only_to_read_them() {
    let identity = age::x25519::Identity::generate();
    let secret = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
    let public = identity.to_public().to_string();
    let world = World::new(&format!("\n[encryption]\nrecipients = [\"{public}\"]\n")).await;
    std::fs::write(
        world.dir.path().join("key.txt"),
        format!("# test\n{secret}\n"),
    )
    .unwrap();
    let out = world.run(&["run", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = report["databases"][0]["key"].as_str().unwrap();
    assert!(key.ends_with("/ops-db.sql.age"), "{key}");
    // list and prune need no identity.
    let list = world.run(&["list", "--json"]).await;
    assert_eq!(list.status.code(), Some(0), "{}", text(&list.stderr));
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        listed["backups"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["encrypted"] == true && b["complete"] == true),
        "{listed}"
    );
    let prune = world.run(&["prune", "--dry-run"]).await;
    assert_eq!(prune.status.code(), Some(0), "{}", text(&prune.stderr));
    // config check names the recipients; no identity is needed to back up.
    let check = world.run(&["config", "check", "--json"]).await;
    let checks: Value = serde_json::from_slice(&check.stdout).unwrap();
    let encryption = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == "encryption")
        .unwrap();
    assert_eq!(encryption["ok"], true, "{encryption}");
    assert!(
        encryption["detail"].as_str().unwrap().contains(&public),
        "{encryption}"
    );
    // verify and restore refuse without it (exit 2, the flag named), before writing anything.
    let verify = world.run(&["verify"]).await;
    assert_eq!(verify.status.code(), Some(2), "{}", text(&verify.stderr));
    assert!(
        text(&verify.stderr).contains("--identity"),
        "{}",
        text(&verify.stderr)
    );
    let restored = world.dir.path().join("restored.sqlite");
    let target = restored.to_str().unwrap();
    let restore = world
        .run(&["restore", "--database", "ops-db", "--to-sqlite", target])
        .await;
    assert_eq!(restore.status.code(), Some(2), "{}", text(&restore.stderr));
    assert!(!restored.exists());
    assert!(
        world
            .keys()
            .await
            .iter()
            .all(|k| !k.ends_with(".verification.json")),
        "no verification record without the identity"
    );
    // A file that is not an identity is named by its line.
    std::fs::write(world.dir.path().join("bad.txt"), "not a key\n").unwrap();
    let bad = world.run(&["verify", "--identity", "bad.txt"]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("line 1"),
        "{}",
        text(&bad.stderr)
    );
    // With it, both work.
    let verify = world
        .run(&["verify", "--identity", "key.txt", "--json"])
        .await;
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stderr));
    let restore = world
        .run(&[
            "restore",
            "--database",
            "ops-db",
            "--to-sqlite",
            target,
            "--identity",
            "key.txt",
            "--json",
        ])
        .await;
    assert_eq!(restore.status.code(), Some(0), "{}", text(&restore.stderr));
    let plan: Value = serde_json::from_slice(&restore.stdout).unwrap();
    assert_eq!(plan["plan"]["backup"]["encrypted"], true, "{plan}");
    assert!(restored.exists());
    for out in [&verify, &restore, &bad] {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        // The format's name may be shown ("AGE-SECRET-KEY-1…"); the key's own bits never.
        assert!(!all.contains(&secret[16..]), "{all}");
    }
}

fn today() -> String {
    d1_backup_core::chrono::Utc::now().date_naive().to_string()
}
