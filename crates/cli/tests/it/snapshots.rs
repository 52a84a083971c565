//! Snapshots of the public contracts: every `--help` text and every `--json` output. A change
//! here is a change users see: review it (`cargo insta review`) and keep fields additive.

use d1_export::testing::D1Simulator;
use serde_json::Value;

use crate::{d1_backup, text};

const ACCOUNT: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const TOKEN: &str = "snapshot-token";

#[tokio::test]
async fn help_texts() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["prune", "--help"],
        vec!["list", "--help"],
        vec!["verify", "--help"],
        vec!["restore", "--help"],
        vec!["databases", "--help"],
        vec!["config", "check", "--help"],
        vec!["status", "--help"],
        vec!["daemon", "--help"],
        vec!["completions", "--help"],
    ] {
        let out = d1_backup(&args, &[("COLUMNS", "100")], dir.path()).await;
        assert_eq!(out.status.code(), Some(0));
        let name = format!("help {}", args.join(" "))
            .replace("--help", "")
            .trim()
            .replace(' ', "_");
        insta::assert_snapshot!(name, text(&out.stdout));
    }
}

async fn world() -> (D1Simulator, tempfile::TempDir) {
    let sim = D1Simulator::start().await;
    sim.add_account(ACCOUNT, TOKEN);
    sim.add_database(
        ACCOUNT,
        "ops-db",
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (x);\n",
    );
    sim.add_database(ACCOUNT, "other-db", "PRAGMA defer_foreign_keys=TRUE;\n");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[cloudflare]\napi_base_url = \"{}\"\nrequests_per_five_minutes = 100000\n\n[sink]\nkind = \"fs\"\npath = \"backups\"\n\n[retention]\nkeep_days = 1\nmin_keep = 1\n\n[run]\npoll_interval_ms = 0\n\n[[accounts]]\nname = \"ucca\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\nprefix = \"d1\"\ndatabases = [\"ops-db\", \"missing-db\"]\n",
        sim.base_url()
    );
    std::fs::write(dir.path().join("d1-backup.toml"), config).unwrap();
    (sim, dir)
}

async fn json(dir: &tempfile::TempDir, args: &[&str]) -> Value {
    let out = d1_backup(args, &[("CF_API_TOKEN", TOKEN)], dir.path()).await;
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)))
}

#[tokio::test]
async fn json_outputs() {
    let (_sim, dir) = world().await;
    let time = "[time]";
    for date in ["2026-11-29", "2026-11-30"] {
        let run = json(&dir, &["run", "--json", "--date", date]).await;
        insta::assert_json_snapshot!(format!("run_json_{date}"), run, {
            ".started_at" => time, ".finished_at" => time,
            ".databases[].started_at" => time, ".databases[].finished_at" => time,
        });
    }
    let prune = json(
        &dir,
        &["prune", "--json", "--date", "2026-12-02", "--dry-run"],
    )
    .await;
    insta::assert_json_snapshot!("prune_json", prune);
    let list = json(&dir, &["list", "--json"]).await;
    insta::assert_json_snapshot!("list_json", list);
    let databases = json(&dir, &["databases", "--json"]).await;
    insta::assert_json_snapshot!("databases_json", databases);
    let check = json(&dir, &["config", "check", "--json"]).await;
    insta::assert_json_snapshot!("config_check_json", check, {
        ".config" => "[path]",
        ".checks[4].what" => "[sink at the temporary directory] is writable",
    });
}
