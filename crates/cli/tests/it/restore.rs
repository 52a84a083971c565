//! `d1-backup restore`: the quickstart's local databases backed up, then restored into SQLite
//! files; plans, refusals, exit codes and the JSON document; a D1 target's refusal.

use std::path::{Path, PathBuf};

use d1_export::testing::D1Simulator;
use serde_json::Value;

use crate::{d1_backup, text};

const ACCOUNT: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const TOKEN: &str = "restore-secret-token";

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/databases")
        .join(name)
}

/// The quickstart's two SQLite databases copied into a directory with a config like
/// `examples/quickstart.toml`, plus `extra` TOML.
fn quickstart(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("databases")).unwrap();
    for name in ["shop.sqlite", "blog.sqlite"] {
        std::fs::copy(example(name), dir.path().join("databases").join(name)).unwrap();
    }
    let config = format!(
        "[sink]\nkind = \"fs\"\npath = \"backups\"\n\n[[accounts]]\nname = \"local\"\nprefix = \"local\"\ndatabases = [\n  {{ name = \"shop\", sqlite = \"databases/shop.sqlite\" }},\n  {{ name = \"blog\", sqlite = \"databases/blog.sqlite\", compression = \"zstd\" }},\n]\n{extra}"
    );
    std::fs::write(dir.path().join("d1-backup.toml"), config).unwrap();
    dir
}

/// [`quickstart`] plus a D1 account `ucca` on `sim` backing up `ops-db`.
fn with_d1(sim: &D1Simulator) -> tempfile::TempDir {
    quickstart(&format!(
        "\n[cloudflare]\napi_base_url = \"{}\"\n\n[run]\npoll_interval_ms = 0\n\n[[accounts]]\nname = \"ucca\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\nprefix = \"d1\"\ndatabases = [\"ops-db\"]\n",
        sim.base_url()
    ))
}

async fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    d1_backup(args, &[("CF_API_TOKEN", TOKEN)], dir).await
}

async fn backup(dir: &Path, date: &str) {
    let out = run(dir, &["run", "--date", date]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test]
async fn a_backup_restores_into_sqlite_with_the_same_content() {
    let dir = quickstart("");
    backup(dir.path(), "2026-11-30").await;
    for (database, file) in [("shop", "shop.sqlite"), ("local/blog", "blog.sqlite")] {
        let out = run(
            dir.path(),
            &["restore", "--database", database, "--to-sqlite", file],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("into {file}: ")) && stderr.contains("row(s)"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "no --json, nothing on stdout");
    }
    // Back the restored files up too: their dumps equal the originals' byte for byte.
    let extra = "\n[[accounts]]\nname = \"restored\"\nprefix = \"restored\"\ndatabases = [{ name = \"shop\", sqlite = \"shop.sqlite\" }, { name = \"blog\", sqlite = \"blog.sqlite\" }]\n";
    let config = std::fs::read_to_string(dir.path().join("d1-backup.toml")).unwrap();
    std::fs::write(dir.path().join("d1-backup.toml"), config + extra).unwrap();
    let out = run(
        dir.path(),
        &[
            "run",
            "--date",
            "2026-11-30",
            "--only",
            "restored/shop",
            "--only",
            "restored/blog",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let backups = dir.path().join("backups");
    let original = std::fs::read(backups.join("local/2026-11-30/shop.sql")).unwrap();
    let restored = std::fs::read(backups.join("restored/2026-11-30/shop.sql")).unwrap();
    assert_eq!(text(&restored), text(&original));
    // The blog's original is compressed: compare the SQL hashes the manifests record.
    let sql_sha256 = |key: &str| -> Value {
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(backups.join(key)).unwrap()).unwrap();
        manifest["dump"]["sql_sha256"].clone()
    };
    assert_eq!(
        sql_sha256("restored/2026-11-30/blog.manifest.json"),
        sql_sha256("local/2026-11-30/blog.manifest.json")
    );
}

#[tokio::test]
async fn dry_runs_refusals_and_exit_codes() {
    let dir = quickstart("");
    let path = |name: &str| dir.path().join(name);

    // Nothing backed up yet: a clear failure.
    let out = run(
        dir.path(),
        &["restore", "--database", "shop", "--to-sqlite", "x.sqlite"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("local/shop has no complete backup"),
        "{stderr}"
    );
    assert!(
        stderr.lines().last().unwrap_or("").starts_with("hint: "),
        "{stderr}"
    );

    backup(dir.path(), "2026-11-29").await;
    backup(dir.path(), "2026-11-30").await;

    // A dry run shows the plan and changes nothing.
    let out = run(
        dir.path(),
        &[
            "restore",
            "--database",
            "shop",
            "--to-sqlite",
            "shop.sqlite",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for expected in [
        "backup   local/shop 2026-11-30  local/2026-11-30/shop.sql",
        "compression none  sha256:",
        "target   SQLite file shop.sqlite (does not exist)",
        "dry run: nothing was changed",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in\n{stderr}");
    }
    assert!(!path("shop.sqlite").exists());

    // A non-empty file is refused (exit 2) and left alone, unless --force.
    std::fs::write(path("shop.sqlite"), "precious").unwrap();
    let args = [
        "restore",
        "--database",
        "shop",
        "--to-sqlite",
        "shop.sqlite",
        "--date",
        "2026-11-29",
    ];
    let out = run(dir.path(), &args).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("restore refused") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(path("shop.sqlite")).unwrap(), b"precious");
    let out = run(dir.path(), &[&args[..], &["--dry-run"]].concat()).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "a dry run exits as the restore would"
    );
    assert!(
        text(&out.stderr).contains("REFUSED  "),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir.path(), &[&args[..], &["--force"]].concat()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("replacing the previous file"));
    assert_ne!(std::fs::read(path("shop.sqlite")).unwrap(), b"precious");

    // Usage errors: exit 2 before anything is read.
    for (args, expected) in [
        (
            vec!["restore", "--database", "nope", "--to-sqlite", "y"],
            "matches no configured database",
        ),
        (vec!["restore", "--database", "shop"], "--to-sqlite"),
        (
            vec![
                "restore",
                "--database",
                "shop",
                "--to-sqlite",
                "a",
                "--to-d1",
                "b",
            ],
            "cannot be used with",
        ),
        (
            vec!["restore", "--database", "shop", "--to-sqlite", "a", "--yes"],
            "cannot be used with '--yes'",
        ),
        (
            vec![
                "restore",
                "--database",
                "shop",
                "--to-sqlite",
                "a",
                "--date",
                "30.11.2026",
            ],
            "YYYY-MM-DD",
        ),
    ] {
        let out = run(dir.path(), &args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test]
async fn restore_json() {
    let dir = quickstart("");
    backup(dir.path(), "2026-11-30").await;
    let redactions = |value: &mut Value| {
        // The dump's bytes depend on the dumper, not on this command.
        for field in ["bytes", "sha256", "sql_bytes"] {
            value["plan"]["backup"][field] = Value::String(format!("[{field}]"));
        }
    };
    let out = run(
        dir.path(),
        &[
            "restore",
            "--database",
            "shop",
            "--to-sqlite",
            "restored.sqlite",
            "--dry-run",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    redactions(&mut plan);
    insta::assert_json_snapshot!("restore_json_dry_run", plan);

    let out = run(
        dir.path(),
        &[
            "restore",
            "--database",
            "shop",
            "--to-sqlite",
            "restored.sqlite",
            "--json",
            "-q",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
    redactions(&mut report);
    insta::assert_json_snapshot!("restore_json", report);
}

#[tokio::test]
async fn a_d1_target_is_refused_without_yes() {
    let sim = D1Simulator::start().await;
    sim.add_account(ACCOUNT, TOKEN);
    let uuid = sim.add_database(
        ACCOUNT,
        "shop-restored",
        "PRAGMA defer_foreign_keys=TRUE;\n",
    );
    sim.add_database(ACCOUNT, "ops-db", "PRAGMA defer_foreign_keys=TRUE;\n");
    let dir = quickstart(&format!(
        "\n[cloudflare]\napi_base_url = \"{}\"\n\n[[accounts]]\nname = \"ucca\"\naccount_id = \"{ACCOUNT}\"\ntoken_env = \"CF_API_TOKEN\"\nprefix = \"d1\"\ndatabases = [\"ops-db\"]\n",
        sim.base_url()
    ));
    backup(dir.path(), "2026-11-30").await;

    let args = [
        "restore",
        "--database",
        "shop",
        "--to-d1",
        "shop-restored",
        "--account",
        "ucca",
    ];
    let out = run(dir.path(), &args).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("serves no queries during the import")
            && stderr.contains("nothing is deleted first")
            && stderr.contains("--yes"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");

    // The plan names the database found by name, and an id works as well.
    let out = run(dir.path(), &[&args[..], &["--dry-run", "--json"]].concat()).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["plan"]["target"]["kind"], "d1");
    assert_eq!(plan["plan"]["target"]["uuid"], uuid.as_str());
    let by_id = [
        "restore",
        "--database",
        "shop",
        "--to-d1",
        &uuid,
        "--account",
        "ucca",
        "--dry-run",
        "--yes",
    ];
    let out = run(dir.path(), &by_id).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("D1 database ucca/shop-restored"));

    // The backup's own account has no API client: a usage error naming --account.
    let out = run(
        dir.path(),
        &[
            "restore",
            "--database",
            "shop",
            "--to-d1",
            "shop-restored",
            "--yes",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--account"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        dir.path(),
        &[
            "restore",
            "--database",
            "shop",
            "--to-d1",
            "nope",
            "--account",
            "ucca",
            "--yes",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("does not exist in account ucca"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_backup_imports_into_d1_with_yes() {
    use d1_backup_core::testing::SqliteD1;

    let sim = D1Simulator::start().await;
    sim.add_account(ACCOUNT, TOKEN);
    sim.add_database(ACCOUNT, "ops-db", "PRAGMA defer_foreign_keys=TRUE;\n");
    let dir = with_d1(&sim);
    let target = std::sync::Arc::new(SqliteD1::open(dir.path().join("target.sqlite")).unwrap());
    let uuid = sim.add_backed_database(ACCOUNT, "shop-restored", target.clone());
    backup(dir.path(), "2026-11-30").await;

    let out = run(
        dir.path(),
        &[
            "restore",
            "--database",
            "local/blog",
            "--to-d1",
            "shop-restored",
            "--account",
            "ucca",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["plan"]["target"]["uuid"], uuid.as_str());
    assert!(
        report["restored"]["num_queries"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(report["restored"]["final_bookmark"].is_string(), "{report}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("into D1 database ucca/shop-restored") && stderr.contains("bookmark"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(TOKEN) && !stderr.contains("X-Amz-Signature"),
        "{stderr}"
    );
    let posts: i64 = target
        .with_connection(|c| c.query_row("SELECT count(*) FROM posts", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(Some(posts), report["restored"]["tables"]["posts"].as_i64());
    assert_eq!(sim.imports_done(&uuid), 1);
}

/// A local database holding tables D1 refuses: refused with exit 2 and the flags that leave
/// them out, nothing uploaded; with them, restored, and the report names what was left out.
#[tokio::test]
async fn reserved_names_are_refused_and_excluded_by_flag() {
    use d1_backup_core::testing::SqliteD1;

    let sim = D1Simulator::start().await;
    sim.add_account(ACCOUNT, TOKEN);
    sim.add_database(ACCOUNT, "ops-db", "PRAGMA defer_foreign_keys=TRUE;\n");
    let dir = with_d1(&sim);
    rusqlite::Connection::open(dir.path().join("databases/shop.sqlite"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE \"_CF_upper\" (k INTEGER PRIMARY KEY, v TEXT); INSERT INTO \"_CF_upper\" VALUES (1, 'x');\n\
             CREATE TABLE _Cf_x (a); INSERT INTO _Cf_x VALUES (1);",
        )
        .unwrap();
    let target = std::sync::Arc::new(SqliteD1::open(dir.path().join("target.sqlite")).unwrap());
    let uuid = sim.add_backed_database(ACCOUNT, "shop-restored", target.clone());
    backup(dir.path(), "2026-11-30").await;
    let args = [
        "restore",
        "--database",
        "local/shop",
        "--to-d1",
        "shop-restored",
        "--account",
        "ucca",
        "--yes",
    ];
    let out = run(dir.path(), &args).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("table _CF_upper")
            && stderr.contains("table _Cf_x")
            && stderr.contains("--exclude-table _CF_upper --exclude-table _Cf_x"),
        "{stderr}"
    );
    assert_eq!(sim.imports_done(&uuid), 0);

    let mut excluding = args.to_vec();
    excluding.extend([
        "--exclude-table",
        "_CF_upper",
        "--exclude-table",
        "_cf_X",
        "--json",
    ]);
    let out = run(dir.path(), &excluding).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let excluded = report["restored"]["excluded"].as_array().unwrap();
    assert!(
        excluded
            .iter()
            .any(|e| e["name"] == "_CF_upper" && e["kind"] == "table" && e["rows"] == 1),
        "{report}"
    );
    assert!(
        text(&out.stderr).contains("left out table _Cf_x"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(sim.imports_done(&uuid), 1);
}

/// `--time-travel`: the plan, a refusal without --yes, the restore, and the printed undo
/// command, which works.
#[tokio::test]
async fn time_travel_prints_the_command_that_undoes_it() {
    use d1_backup_core::testing::SqliteD1;
    use d1_export::testing::SimulatedDatabase;

    let sim = D1Simulator::start().await;
    sim.add_account(ACCOUNT, TOKEN);
    let dir = with_d1(&sim);
    let live = std::sync::Arc::new(SqliteD1::open(dir.path().join("live.sqlite")).unwrap());
    live.query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", &[])
        .unwrap();
    live.query("INSERT INTO t VALUES (1, 'a'), (2, 'b')", &[])
        .unwrap();
    sim.add_backed_database(ACCOUNT, "ops-db", live.clone());
    let out = run(
        dir.path(),
        &["run", "--date", "2026-11-30", "--only", "ucca/ops-db"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    live.query("DELETE FROM t WHERE id = 2", &[]).unwrap();
    let count = || -> i64 {
        live.with_connection(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .unwrap()
    };

    let out = run(
        dir.path(),
        &["restore", "--database", "ops-db", "--time-travel"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(count(), 1, "refused: nothing changed");

    let out = run(
        dir.path(),
        &[
            "restore",
            "--database",
            "ops-db",
            "--time-travel",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(count(), 2, "back to the backup's moment");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let previous = report["previous_bookmark"].as_str().unwrap().to_owned();
    let undo = report["undo"].as_str().unwrap();
    assert_eq!(
        undo,
        format!(
            "d1-backup restore --database ucca/ops-db --bookmark {previous} --time-travel --yes"
        )
    );
    assert!(text(&out.stderr).contains(undo), "{}", text(&out.stderr));
    let words: Vec<&str> = undo.split(' ').skip(1).collect();
    let out = run(dir.path(), &words).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(count(), 1, "and forward again");
}
