//! R2 bucket locks as a new user meets them (issue 16, point 3): `config check` reads the lock
//! rules through the (simulated) Cloudflare API and warns, without failing, when retention
//! could never prune under them; a refused token fails the check naming its variable, never
//! its value.

use d1_export::testing::D1Simulator;
use r2_sink::testing::S3TestServer;
use serde_json::{Value, json};

use crate::{d1_backup, text};

const ACCOUNT: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const TOKEN: &str = "d1-token-SECRET-4410";
const ADMIN_TOKEN: &str = "r2-admin-SECRET-77c1";

fn config(sim: &D1Simulator, s3: &S3TestServer) -> String {
    format!(
        "[cloudflare]\napi_base_url = \"{}\"\n\n\
         [sink]\nkind = \"r2\"\naccount_id = \"{ACCOUNT}\"\nbucket = \"{}\"\nendpoint = \"{}\"\n\
         access_key_id_env = \"R2_KEY\"\nsecret_access_key_env = \"R2_SECRET\"\n\
         lock_token_env = \"R2_ADMIN_TOKEN\"\n\n\
         [retention]\nkeep_days = 30\n\n\
         [[accounts]]\nname = \"ucca\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\n\
         prefix = \"d1\"\ndatabases = [\"ops-db\"]\n\n\
         [[accounts]]\nname = \"rto\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\n\
         prefix = \"rtopacks\"\ndatabases = [\"packs\"]\n",
        sim.base_url(),
        s3.bucket(),
        s3.endpoint()
    )
}

/// `config check --json` with `admin` as the lock token: exit code, report, all output.
async fn check(dir: &std::path::Path, admin: &str) -> (Option<i32>, Value, String) {
    let env = [
        ("CF_API_TOKEN", TOKEN),
        ("R2_KEY", S3TestServer::ACCESS_KEY_ID),
        ("R2_SECRET", S3TestServer::SECRET_ACCESS_KEY),
        ("R2_ADMIN_TOKEN", admin),
    ];
    let output = d1_backup(&["config", "check", "--json"], &env, dir).await;
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&output.stdout), text(&output.stderr)));
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    (output.status.code(), report, all)
}

fn lock_checks(report: &Value) -> Vec<&Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["what"].as_str().unwrap().contains("lock"))
        .collect()
}

#[tokio::test]
async fn config_check_warns_where_a_lock_forbids_what_retention_deletes() {
    let sim = D1Simulator::start().await;
    sim.add_account(ACCOUNT, TOKEN);
    sim.add_database(
        ACCOUNT,
        "ops-db",
        b"PRAGMA defer_foreign_keys=TRUE;\n".to_vec(),
    );
    sim.add_database(
        ACCOUNT,
        "packs",
        b"PRAGMA defer_foreign_keys=TRUE;\n".to_vec(),
    );
    let s3 = S3TestServer::start().await.unwrap();
    sim.set_bucket_lock(
        ACCOUNT,
        s3.bucket(),
        ADMIN_TOKEN,
        json!([
            // 90 days under d1/: retention (30 days) would try to delete what it locks.
            {"id": "d1-90-days", "enabled": true, "prefix": "d1/", "condition": {"type": "Age", "maxAgeSeconds": 7_776_000}},
            // 29 days under rtopacks/: protected, and retention still prunes.
            {"id": "packs-29-days", "enabled": true, "prefix": "rtopacks/", "condition": {"type": "Age", "maxAgeSeconds": 2_505_600}},
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d1-backup.toml"), config(&sim, &s3)).unwrap();

    let (code, report, all) = check(dir.path(), ADMIN_TOKEN).await;
    assert_eq!(code, Some(0), "a warning does not fail the check: {all}");
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["warnings"], 1, "{report:#}");
    let locks = lock_checks(&report);
    assert_eq!(
        locks.len(),
        2,
        "one lock check per account prefix: {report:#}"
    );
    let d1 = locks
        .iter()
        .find(|c| c["what"].as_str().unwrap().contains("d1"))
        .unwrap();
    let packs = locks
        .iter()
        .find(|c| c["what"].as_str().unwrap().contains("rtopacks"))
        .unwrap();
    assert_eq!(d1["warning"], true, "{d1:#}");
    assert!(
        d1["detail"].as_str().unwrap().contains("d1-90-days"),
        "{d1:#}"
    );
    assert_eq!(packs["warning"], false, "{packs:#}");
    assert!(
        packs["detail"].as_str().unwrap().contains("packs-29-days"),
        "{packs:#}"
    );

    // A refused token fails the check, naming the variable and not its value.
    let (code, report, all) = check(dir.path(), "not-the-admin-SECRET-0000").await;
    assert_ne!(code, Some(0), "{all}");
    assert_eq!(report["ok"], false, "{report:#}");
    assert!(all.contains("R2_ADMIN_TOKEN"), "{all}");
    for secret in [
        ADMIN_TOKEN,
        "not-the-admin-SECRET-0000",
        TOKEN,
        S3TestServer::SECRET_ACCESS_KEY,
    ] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
}
