//! The local source: SQLite files and wrangler state directories, no account needed.

use std::path::{Path, PathBuf};

use d1_backup_core::{Manifest, RunOptions, Status};
use r2_sink::BackupSink;

use crate::support::*;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/databases")
        .join(name)
}

fn restore(sql: &[u8]) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(std::str::from_utf8(sql).unwrap())
        .unwrap();
    conn
}

#[tokio::test]
async fn a_sqlite_file_is_dumped_in_d1_format_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example("shop.sqlite"), dir.path().join("shop.sqlite")).unwrap();
    let (engine, sink) = local_engine(
        dir.path(),
        r#"{ name = "shop", sqlite = "shop.sqlite" }"#,
        "",
    );
    let report = run(&engine, RunOptions::new(date())).await;
    assert_eq!(report.databases[0].status, Status::Ok, "{report:#?}");
    assert_eq!(report.databases[0].account_id, None);
    assert_eq!(report.databases[0].database_id, None);
    let sql = read(sink.as_ref(), "local/2026-11-30/shop.sql").await;
    assert!(sql.starts_with(b"PRAGMA defer_foreign_keys=TRUE;\n"));
    let conn = restore(&sql);
    let orders: i64 = conn
        .query_row("SELECT count(*) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert_eq!(orders, 4);
    let name: String = conn
        .query_row("SELECT name FROM customers WHERE id = 3", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, "Zoë O'Brien");
    let manifest =
        Manifest::from_json(&read(sink.as_ref(), "local/2026-11-30/shop.manifest.json").await)
            .unwrap();
    assert_eq!(manifest.database.uuid, None);
    // As the config wrote it, not the resolved path (issue 18: a machine path in a stored
    // manifest says nothing elsewhere and discloses the host's layout).
    assert_eq!(manifest.database.sqlite.as_deref(), Some("shop.sqlite"));
    assert_eq!(manifest.dump.sha256, sha256_hex(&sql));
}

#[tokio::test]
async fn integers_beyond_2_pow_53_survive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example("blog.sqlite"), dir.path().join("blog.sqlite")).unwrap();
    let (engine, sink) = local_engine(
        dir.path(),
        r#"{ name = "blog", sqlite = "blog.sqlite" }"#,
        "",
    );
    run(&engine, RunOptions::new(date())).await;
    let conn = restore(&read(sink.as_ref(), "local/2026-11-30/blog.sql").await);
    let views: i64 = conn
        .query_row("SELECT views FROM posts WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(views, 9_007_199_254_740_993);
}

#[tokio::test]
async fn every_database_of_a_wrangler_state_directory_is_backed_up() {
    let dir = tempfile::tempdir().unwrap();
    let d1 = dir
        .path()
        .join(".wrangler/state/v3/d1/miniflare-D1DatabaseObject");
    std::fs::create_dir_all(&d1).unwrap();
    let hash = "9ba2b04bf514d9facfd57ed57d849e77241a7adc99d1c1545d06688b43d84248";
    std::fs::copy(example("blog.sqlite"), d1.join(format!("{hash}.sqlite"))).unwrap();
    std::fs::copy(example("shop.sqlite"), d1.join("metadata.sqlite")).unwrap();
    std::fs::write(d1.join("notes.txt"), "not a database").unwrap();
    let (engine, sink) = local_engine(
        dir.path(),
        "",
        "wrangler_state = \".wrangler/state/v3/d1\"\n",
    );
    let report = run(&engine, RunOptions::new(date())).await;
    let names: Vec<&str> = report.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [hash],
        "metadata.sqlite and other files are not databases"
    );
    assert_eq!(report.databases[0].status, Status::Ok);
    assert!(
        sink.head(&format!("local/2026-11-30/{hash}.sql"))
            .await
            .unwrap()
            .is_some()
    );
    let manifest = Manifest::from_json(
        &read(
            sink.as_ref(),
            &format!("local/2026-11-30/{hash}.manifest.json"),
        )
        .await,
    )
    .unwrap();
    let recorded = manifest.database.sqlite.unwrap();
    assert_eq!(
        recorded,
        format!(".wrangler/state/v3/d1/miniflare-D1DatabaseObject/{hash}.sqlite")
    );
    let host = dir.path().to_string_lossy().into_owned();
    assert!(!recorded.contains(&host), "{recorded}");
}

#[tokio::test]
async fn a_missing_or_broken_file_fails_clearly_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.sqlite"), vec![7u8; 4096]).unwrap();
    let (engine, sink) = local_engine(
        dir.path(),
        r#"{ name = "gone", sqlite = "gone.sqlite" }, { name = "broken", sqlite = "broken.sqlite" }"#,
        "",
    );
    let report = run(&engine, RunOptions::new(date())).await;
    for db in &report.databases {
        assert_eq!(db.status, Status::Failed, "{db:#?}");
        let error = db.error.as_deref().unwrap();
        assert!(
            error.contains(&format!("{}.sqlite", db.name)),
            "the error names the file: {error}"
        );
    }
    assert!(
        keys(sink.as_ref(), "local/").await.is_empty(),
        "nothing partial is left"
    );
}

#[tokio::test]
async fn wrangler_config_names_the_local_databases() {
    let dir = tempfile::tempdir().unwrap();
    let d1 = dir
        .path()
        .join(".wrangler/state/v3/d1/miniflare-D1DatabaseObject");
    std::fs::create_dir_all(&d1).unwrap();
    // The file wrangler writes for database id 000…0 (see the wrangler fixtures).
    let hash = "9ba2b04bf514d9facfd57ed57d849e77241a7adc99d1c1545d06688b43d84248";
    std::fs::copy(example("blog.sqlite"), d1.join(format!("{hash}.sqlite"))).unwrap();
    std::fs::write(
        dir.path().join("wrangler.toml"),
        "name = \"site\"\n[[d1_databases]]\nbinding = \"DB\"\ndatabase_name = \"blog-db\"\ndatabase_id = \"00000000-0000-0000-0000-000000000000\"\n",
    )
    .unwrap();
    let (engine, sink) = local_engine(
        dir.path(),
        "",
        "wrangler_state = \".wrangler/state/v3/d1\"\n",
    );
    let report = run(&engine, RunOptions::new(date())).await;
    assert_eq!(report.databases[0].name, "blog-db", "{report:#?}");
    assert!(
        sink.head("local/2026-11-30/blog-db.sql")
            .await
            .unwrap()
            .is_some()
    );
}
