//! `d1-backup run`: exit codes, the JSON report, the summary, errors, and no leaked secrets.

use d1_export::testing::{D1Simulator, Fault};
use r2_sink::testing::S3TestServer;
use serde_json::Value;

use crate::{d1_backup, text};

const UCCA: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const RTO: &str = "f95d45376ebeeeaf011a4f0ec0fb7b38";
const UCCA_TOKEN: &str = "ucca-secret-token-0001";
const RTO_TOKEN: &str = "rto-secret-token-0002";

fn dump(name: &str) -> Vec<u8> {
    format!("PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (x TEXT);\nINSERT INTO \"t\" (\"x\") VALUES('{name}');\n").into_bytes()
}

struct World {
    sim: D1Simulator,
    s3: S3TestServer,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let sim = D1Simulator::start().await;
        sim.add_account(UCCA, UCCA_TOKEN);
        sim.add_account(RTO, RTO_TOKEN);
        for name in ["ops-db", "engine-db", "mcp-db"] {
            sim.add_database(UCCA, name, dump(name));
        }
        for name in ["rto-ops-db", "rto-abs-db"] {
            sim.add_database(RTO, name, dump(name));
        }
        let s3 = S3TestServer::start().await.unwrap();
        let world = Self {
            sim,
            s3,
            dir: tempfile::tempdir().unwrap(),
        };
        world.write_config(r#""ops-db", "engine-db", "mcp-db""#);
        world
    }

    fn write_config(&self, ucca_dbs: &str) {
        let text = format!(
            r#"[cloudflare]
api_base_url = "{base}"
requests_per_five_minutes = 100000

[sink]
kind = "s3"
bucket = "{bucket}"
endpoint = "{endpoint}"
region = "auto"
access_key_id_env = "S3_KEY"
secret_access_key_env = "S3_SECRET"

[run]
poll_interval_ms = 0

[[accounts]]
name = "ucca"
account_id = "{UCCA}"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = [{ucca_dbs}]

[[accounts]]
name = "rtopacks"
account_id = "{RTO}"
token_env = "RTO_API_TOKEN"
prefix = "rtopacks"
databases = ["rto-ops-db", "rto-abs-db"]
"#,
            base = self.sim.base_url(),
            bucket = self.s3.bucket(),
            endpoint = self.s3.endpoint(),
        );
        std::fs::write(self.dir.path().join("d1-backup.toml"), text).unwrap();
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("CF_API_TOKEN", UCCA_TOKEN),
            ("RTO_API_TOKEN", RTO_TOKEN),
            ("S3_KEY", self.s3.access_key_id()),
            ("S3_SECRET", self.s3.secret_access_key()),
        ]
    }

    async fn run(&self, args: &[&str]) -> std::process::Output {
        d1_backup(args, &self.env(), self.dir.path()).await
    }

    fn assert_no_secrets(&self, output: &std::process::Output) {
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        for secret in [
            UCCA_TOKEN,
            RTO_TOKEN,
            self.s3.secret_access_key(),
            "X-Amz-Signature",
        ] {
            assert!(
                !all.contains(secret),
                "{secret:?} leaked into the output:\n{all}"
            );
        }
    }
}

#[tokio::test]
async fn run_json_backs_up_both_accounts_and_exits_zero() {
    let world = World::new().await;
    let output = world.run(&["run", "--json", "--date", "2026-11-30"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["date"], "2026-11-30");
    let keys: Vec<&str> = report["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "d1/2026-11-30/ops-db.sql",
            "d1/2026-11-30/engine-db.sql",
            "d1/2026-11-30/mcp-db.sql",
            "rtopacks/2026-11-30/rto-ops-db.sql",
            "rtopacks/2026-11-30/rto-abs-db.sql",
        ]
    );
    for db in report["databases"].as_array().unwrap() {
        assert_eq!(db["status"], "ok");
        assert!(db["error"].is_null());
        assert_eq!(
            db["bytes"].as_u64(),
            Some(dump(db["name"].as_str().unwrap()).len() as u64)
        );
    }
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("5 database(s) for 2026-11-30: 5 ok, 0 skipped, 0 failed"),
        "{stderr}"
    );
    world.assert_no_secrets(&output);

    let sink = world.s3.sink().unwrap();
    let stored = read(&sink, "d1/2026-11-30/mcp-db.sql").await;
    assert_eq!(stored, dump("mcp-db"));
}

async fn read(sink: &dyn r2_sink::BackupSink, key: &str) -> Vec<u8> {
    use futures::TryStreamExt;
    let chunks: Vec<bytes::Bytes> = sink
        .get(key, None)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

#[tokio::test]
async fn a_failed_database_exits_one_and_only_and_filters() {
    let world = World::new().await;
    world.write_config(r#""ops-db", "missing-db""#);
    let output = world
        .run(&["run", "--only", "ucca/missing-db", "--only", "ops-db"])
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("FAILED   ucca/missing-db"), "{stderr}");
    assert!(stderr.contains("2 database(s)"), "{stderr}");
    assert!(
        stderr.lines().last().unwrap_or("").starts_with("hint: "),
        "errors end with a hint: {stderr}"
    );
    assert!(output.stdout.is_empty(), "no --json, nothing on stdout");
    world.assert_no_secrets(&output);
}

#[tokio::test]
async fn export_errors_are_reported_without_leaking() {
    let world = World::new().await;
    let uuid = world.sim.add_database(UCCA, "bad-db", dump("bad-db"));
    world.sim.inject(&uuid, Fault::RefuseSignedUrl(u32::MAX));
    world.write_config(r#""bad-db""#);
    let output = world
        .run(&["run", "--json", "--only", "bad-db", "-vv"])
        .await;
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["databases"][0]["status"], "failed");
    world.assert_no_secrets(&output);
}

#[tokio::test]
async fn config_and_usage_errors_exit_two_before_any_request() {
    let world = World::new().await;
    let dir = world.dir.path();
    // A missing token variable.
    let output = d1_backup(&["run"], &[("S3_KEY", "k"), ("S3_SECRET", "s")], dir).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("`CF_API_TOKEN`")
            && stderr.contains("`RTO_API_TOKEN`")
            && stderr.contains("hint:"),
        "{stderr}"
    );
    // A bad field.
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[sink]\nkind = \"fs\"\npath = \"x\"\n[retention]\nkeep_days = 0\n",
    )
    .unwrap();
    let output = world
        .run(&["run", "--config", path.to_str().unwrap()])
        .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("retention.keep_days"),
        "{stderr}"
    );
    // A missing file, and a malformed flag.
    let output = world.run(&["run", "--config", "nope.toml"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("nope.toml"));
    let output = world.run(&["run", "--date", "30/11/2026"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("YYYY-MM-DD"));
    let output = world.run(&["run", "--only", "nope"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        world.sim.requests(),
        0,
        "no request before the config is known good"
    );
}

#[tokio::test]
async fn config_comes_from_d1_backup_config_too() {
    let world = World::new().await;
    let path = world.dir.path().join("d1-backup.toml");
    let other = tempfile::tempdir().unwrap();
    let mut env = world.env();
    let path_text = path.to_str().unwrap().to_owned();
    env.push(("D1_BACKUP_CONFIG", &path_text));
    let output = d1_backup(&["run", "--only", "mcp-db"], &env, other.path()).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

/// `run --export online`: a live database read through the query API, no export started, the
/// exact values stored, and no secret in the output (logged at debug level).
#[tokio::test]
async fn run_export_online_reads_through_the_query_api_and_exports_nothing() {
    use d1_export::testing::SimulatedDatabase;
    let world = World::new().await;
    let db = d1_backup_core::testing::SqliteD1::open(world.dir.path().join("live.sqlite")).unwrap();
    db.query(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v); \
         INSERT INTO t (v) VALUES (9007199254740993), (CAST(X'ff00' AS TEXT)), (1.0)",
        &[],
    )
    .unwrap();
    let uuid = world
        .sim
        .add_backed_database(UCCA, "live-db", std::sync::Arc::new(db));
    world.write_config(r#""ops-db", "live-db""#);
    let output = world
        .run(&[
            "run",
            "--json",
            "--date",
            "2026-11-30",
            "--export",
            "online",
            "--only",
            "live-db",
        ])
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(world.sim.exports_started(&uuid), 0);
    let sink = world.s3.sink().unwrap();
    let stored = String::from_utf8(read(&sink, "d1/2026-11-30/live-db.sql").await).unwrap();
    assert!(
        stored.ends_with(
            "INSERT INTO \"t\" (\"id\",\"v\") VALUES(1,9007199254740993);\n\
             INSERT INTO \"t\" (\"id\",\"v\") VALUES(2,CAST(X'ff00' AS TEXT));\n\
             INSERT INTO \"t\" (\"id\",\"v\") VALUES(3,1.0);"
        ),
        "{stored}"
    );
    let manifest =
        String::from_utf8(read(&sink, "d1/2026-11-30/live-db.manifest.json").await).unwrap();
    assert!(manifest.contains("\"export\": \"online\""), "{manifest}");
    world.assert_no_secrets(&output);
    let refused = world.run(&["run", "--export", "fast"]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("use d1, online or auto"));
}

/// `--shard I/N`: three shards back up every database once between them, `-v` logs each
/// shard's plan, and a shard that is not one is a usage error before any request.
#[tokio::test]
async fn three_shards_back_up_every_database_once_and_log_their_plan() {
    let world = World::new().await;
    let mut seen: Vec<String> = Vec::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let output = world
            .run(&[
                "run",
                "--shard",
                shard,
                "--only",
                "rtopacks/*",
                "--only",
                "ucca/*",
                "--json",
            ])
            .await;
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("plan (shard {shard}): ")),
            "{stderr}"
        );
        assert!(stderr.contains("API calls"), "{stderr}");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        for db in report["databases"].as_array().unwrap() {
            seen.push(format!(
                "{}/{}",
                db["account"].as_str().unwrap(),
                db["name"].as_str().unwrap()
            ));
        }
        world.assert_no_secrets(&output);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "rtopacks/rto-abs-db",
            "rtopacks/rto-ops-db",
            "ucca/engine-db",
            "ucca/mcp-db",
            "ucca/ops-db"
        ]
    );
    let requests = world.sim.requests();
    let output = world.run(&["run", "--shard", "4/3"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("1 <= I <= N"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(world.sim.requests(), requests);
}
