//! `testing::SqliteD1` behind the D1 simulator, driven through the `d1-export` client as a
//! backup or restore would: queries with every value type (rounded as D1 rounds them),
//! exports (refused for FTS5 unless real tables are named, as on D1), imports, bookmarks,
//! Time Travel restores and D1's refusal of `_cf_*` tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use d1_backup_core::testing::SqliteD1;
use d1_export::testing::{D1Simulator, SimulatedDatabase};
use d1_export::{
    D1Client, ErrorKind, ExportEvent, ExportOptions, ImportEvent, ImportOptions, ImportSource,
    RateLimit, TimeTravelPoint,
};
use futures::TryStreamExt;
use serde_json::{Value, json};

const ACC: &str = "e5a9830215a8d88961dc6c80a8c7442a";
const TOKEN: &str = "simulated-d1-token";

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wrangler")
        .join(case)
        .join(file)
}

/// A simulator, a client for it, and a temporary directory for database files.
struct World {
    sim: D1Simulator,
    client: D1Client,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let sim = D1Simulator::start().await;
        sim.add_account(ACC, TOKEN);
        let client = D1Client::builder(TOKEN.into())
            .base_url(sim.base_url())
            .rate_limit(RateLimit::new(1000, Duration::from_secs(1)))
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        Self { sim, client, dir }
    }

    /// A fresh database file, or a copy of a fixture case's `local.sqlite`.
    fn database(&self, name: &str, case: Option<&str>) -> SqliteD1 {
        let path = self.dir.path().join(format!("{name}.sqlite"));
        if let Some(case) = case {
            std::fs::copy(fixture(case, "local.sqlite"), &path).unwrap();
        }
        SqliteD1::open(&path).unwrap()
    }

    fn serve(&self, name: &str, db: SqliteD1) -> (String, Arc<SqliteD1>) {
        let db = Arc::new(db);
        let uuid = self.sim.add_backed_database(ACC, name, db.clone());
        (uuid, db)
    }

    async fn export(&self, uuid: &str, tables: &[&str]) -> d1_export::Result<Vec<u8>> {
        let mut options = ExportOptions::default();
        options.poll_interval = Duration::from_millis(1);
        options.dump.tables = tables.iter().map(|t| (*t).to_owned()).collect();
        let done = self
            .client
            .export(ACC, uuid, &options, &|_: &ExportEvent| {})
            .await?;
        let chunks: Vec<Bytes> = self
            .client
            .download(&done.signed_url)
            .await?
            .into_stream()
            .try_collect()
            .await?;
        Ok(chunks.concat())
    }

    async fn import(
        &self,
        uuid: &str,
        sql: &[u8],
    ) -> d1_export::Result<d1_export::CompletedImport> {
        let mut options = ImportOptions::default();
        options.poll_interval = Duration::from_millis(1);
        self.client
            .import(
                ACC,
                uuid,
                &ImportSource::from(sql.to_vec()),
                &options,
                &|_: &ImportEvent| {},
            )
            .await
    }
}

fn count(db: &SqliteD1, table: &str) -> i64 {
    db.with_connection(|c| {
        c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    })
}

#[tokio::test]
async fn queries_return_values_as_d1_sends_them() {
    let w = World::new().await;
    let (uuid, _) = w.serve("values", w.database("values", None));
    let setup = "CREATE TABLE v (id INTEGER PRIMARY KEY, i, r REAL, t TEXT, b BLOB, n);\n\
                 INSERT INTO v VALUES (1, 9007199254740993, 3.0, 'é\nx', X'00ff', NULL);\n\
                 INSERT INTO v VALUES (2, 9223372036854775807, 0.1, '', X'', NULL);";
    let results = w.client.query(ACC, &uuid, setup, &[]).await.unwrap();
    assert_eq!(results.len(), 3, "one result per statement");
    assert_eq!(results[1].meta["changes"], 1);
    assert_eq!(results[2].meta["last_row_id"], 2);

    let rows = w
        .client
        .query(ACC, &uuid, "SELECT * FROM v WHERE id = ?", &[json!(1)])
        .await
        .unwrap();
    let row = &rows[0].results[0];
    assert_eq!(
        row["i"].as_i64(),
        Some(9_007_199_254_740_992),
        "rounded like D1"
    );
    assert_eq!(
        row["r"],
        json!(3),
        "an integral real reads as an integer, like D1's"
    );
    assert_eq!(row["t"], "é\nx");
    assert_eq!(row["b"], json!([0, 255]));
    assert!(row["n"].is_null());

    let raw = w
        .client
        .raw(
            ACC,
            &uuid,
            "SELECT i, CAST(i AS TEXT), r, b FROM v WHERE id = ?",
            &[json!(2)],
        )
        .await
        .unwrap();
    assert_eq!(raw[0].columns, ["i", "CAST(i AS TEXT)", "r", "b"]);
    assert_eq!(
        raw[0].rows[0],
        [
            json!(9_223_372_036_854_776_000_u64),
            json!("9223372036854775807"),
            json!(0.1),
            json!([])
        ]
    );

    // Parameters of every type bind as D1 binds them.
    w.client
        .query(
            ACC,
            &uuid,
            "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)",
            &[
                json!(3),
                json!(-7),
                json!(2.5),
                json!("p"),
                json!([1, 2]),
                Value::Null,
            ],
        )
        .await
        .unwrap();
    let rows = w
        .client
        .raw(
            ACC,
            &uuid,
            "SELECT typeof(i), typeof(r), typeof(b), typeof(n) FROM v WHERE id = 3",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].rows[0], ["integer", "real", "blob", "null"]);
}

#[tokio::test]
async fn sql_errors_answer_like_d1_and_change_nothing() {
    let w = World::new().await;
    let (uuid, db) = w.serve("errors", w.database("errors", None));
    w.client
        .query(ACC, &uuid, "CREATE TABLE t (id INTEGER PRIMARY KEY)", &[])
        .await
        .unwrap();
    let err = w
        .client
        .query(ACC, &uuid, "SELECT * FROM missing", &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(
        err.server_message(),
        Some("no such table: missing: SQLITE_ERROR")
    );
    // A request is all or nothing: the first INSERT is undone with the failing second.
    let err = w
        .client
        .query(
            ACC,
            &uuid,
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES (1);",
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.ends_with("SQLITE_CONSTRAINT")),
        "{err}"
    );
    assert_eq!(count(&db, "t"), 0);
}

#[tokio::test]
async fn bookmarks_move_with_writes_only() {
    let w = World::new().await;
    let (uuid, db) = w.serve("bookmarks", w.database("bookmarks", None));
    let first = w.client.current_bookmark(ACC, &uuid).await.unwrap();
    assert_eq!(first, db.bookmark());
    assert!(first.starts_with("00000001-00000000-00004f6d-"), "{first}");
    assert_eq!(first.len(), 8 + 1 + 8 + 1 + 8 + 1 + 32);
    w.client
        .query(ACC, &uuid, "CREATE TABLE t (a)", &[])
        .await
        .unwrap();
    let created = w.client.current_bookmark(ACC, &uuid).await.unwrap();
    assert_ne!(created, first, "DDL moves the bookmark");
    w.client
        .query(ACC, &uuid, "SELECT * FROM t", &[])
        .await
        .unwrap();
    w.client
        .query(ACC, &uuid, "UPDATE t SET a = 1 WHERE a = 2", &[])
        .await
        .unwrap();
    assert_eq!(
        w.client.current_bookmark(ACC, &uuid).await.unwrap(),
        created,
        "reads and writes that change nothing leave it"
    );
    w.client
        .query(ACC, &uuid, "INSERT INTO t VALUES (?)", &[json!("x")])
        .await
        .unwrap();
    assert_ne!(
        w.client.current_bookmark(ACC, &uuid).await.unwrap(),
        created
    );
}

#[tokio::test]
async fn fts5_refuses_a_full_export_but_not_named_real_tables() {
    let w = World::new().await;
    let (uuid, _) = w.serve("fts", w.database("fts", Some("fts5")));
    for tables in [
        &[][..],
        &["articles_fts"][..],
        &["comments", "notes_fts"][..],
    ] {
        let err = w.export(&uuid, tables).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::VirtualTablesUnsupported,
            "{tables:?}: {err}"
        );
        assert_eq!(
            err.server_message(),
            Some("D1 Export error: cannot export databases with Virtual Tables (fts5)")
        );
    }
    let dump = w.export(&uuid, &["articles"]).await.unwrap();
    let wrangler = std::fs::read(fixture("fts5", "export-table-articles.sql")).unwrap();
    assert!(dump == wrangler, "{}", String::from_utf8_lossy(&dump));
    // Queries still reach the FTS5 table.
    let hits = w
        .client
        .raw(
            ACC,
            &uuid,
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH ?",
            &[json!("backups")],
        )
        .await
        .unwrap();
    assert!(hits[0].rows[0][0].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn an_export_override_serves_wranglers_lossy_dump() {
    let w = World::new().await;
    let wrangler = std::fs::read(fixture("numbers", "export.sql")).unwrap();
    let db = w
        .database("numbers", Some("numbers"))
        .with_export_override(wrangler.clone());
    let (uuid, _) = w.serve("numbers", db);
    assert!(w.export(&uuid, &[]).await.unwrap() == wrangler);
    // The data itself stays exact for queries that ask for text.
    let rows = w
        .client
        .raw(ACC, &uuid, "SELECT count(*) FROM sqlite_schema", &[])
        .await
        .unwrap();
    assert!(rows[0].rows[0][0].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn exports_follow_the_data() {
    let w = World::new().await;
    let (uuid, _) = w.serve("live", w.database("live", Some("basic")));
    let before = w.export(&uuid, &[]).await.unwrap();
    assert!(before == std::fs::read(fixture("basic", "export.sql")).unwrap());
    w.client
        .query(
            ACC,
            &uuid,
            "CREATE TABLE extra (a TEXT); INSERT INTO extra VALUES (?)",
            &[json!("new row")],
        )
        .await
        .unwrap();
    let after = w.export(&uuid, &[]).await.unwrap();
    let after = String::from_utf8(after).unwrap();
    assert!(
        after.ends_with(
            "CREATE TABLE extra (a TEXT);\nINSERT INTO \"extra\" (\"a\") VALUES('new row');"
        ),
        "{after}"
    );
}

#[tokio::test]
async fn imports_restore_all_or_nothing() {
    let w = World::new().await;
    let (source, _) = w.serve("source", w.database("source", Some("basic")));
    let dump = w.export(&source, &[]).await.unwrap();
    let (target, db) = w.serve("target", w.database("target", None));
    let before = w.client.current_bookmark(ACC, &target).await.unwrap();

    let done = w.import(&target, &dump).await.unwrap();
    // Statements end with `;` and are joined with `\n`; none in `basic` holds `;\n` itself.
    let statements = dump.windows(2).filter(|w| w == b";\n").count() as u64 + 1;
    assert_eq!(done.num_queries, Some(statements));
    let after = w.client.current_bookmark(ACC, &target).await.unwrap();
    assert_ne!(after, before);
    assert_eq!(done.final_bookmark.as_deref(), Some(after.as_str()));
    assert_eq!(w.sim.imports_done(&target), 1);
    assert!(
        w.export(&target, &[]).await.unwrap() == dump,
        "the copy exports the same dump"
    );

    // A failing statement rolls the whole file back; transaction statements are refused.
    let (empty, fresh) = w.serve("fresh", w.database("fresh", None));
    for bad in [
        &b"CREATE TABLE a (x);\nINSERT INTO a VALUES(1);\nINSERT INTO nowhere VALUES(1);"[..],
        &b"BEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;"[..],
    ] {
        let err = w.import(&empty, bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ImportFailed, "{err}");
    }
    let tables: i64 = fresh.with_connection(|c| {
        c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap()
    });
    assert_eq!(tables, 0, "nothing of the failed imports remains");
    assert_eq!(w.sim.imports_done(&empty), 0);
    drop(db);
}

#[tokio::test]
async fn imports_enforce_foreign_keys_as_d1_does() {
    let w = World::new().await;
    // wrangler's dump of `schema` creates a child table, and its rows, before the parent.
    let dump = std::fs::read(fixture("schema", "export.sql")).unwrap();
    let (uuid, _) = w.serve("schema", w.database("schema", None));
    let err = w.import(&uuid, &dump).await.unwrap_err();
    assert!(
        err.server_message()
            .is_some_and(|m| m.contains("no such table: main.invoices")),
        "{err}"
    );
}

fn rows_of(db: &SqliteD1) -> Vec<i64> {
    db.with_connection(|c| {
        let mut statement = c.prepare("SELECT id FROM t ORDER BY id").unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    })
}

#[tokio::test]
async fn time_travel_restores_there_and_back_exactly() {
    let w = World::new().await;
    let db = w.database("tt", None);
    db.with_connection(|c| c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        .unwrap();
    let (uuid, db) = w.serve("tt", db);
    let insert = |id: i64| format!("INSERT INTO t VALUES({id}, 'row {id}')");
    w.client.query(ACC, &uuid, &insert(1), &[]).await.unwrap();
    let after_one = w.client.current_bookmark(ACC, &uuid).await.unwrap();
    for id in 2..=4 {
        w.client.query(ACC, &uuid, &insert(id), &[]).await.unwrap();
    }
    w.client
        .query(ACC, &uuid, "CREATE TABLE later (x)", &[])
        .await
        .unwrap();
    let before = w.client.current_bookmark(ACC, &uuid).await.unwrap();
    let dump_before = w.export(&uuid, &[]).await.unwrap();

    let back = w
        .client
        .time_travel_restore(ACC, &uuid, TimeTravelPoint::Bookmark(after_one.clone()))
        .await
        .unwrap();
    assert_eq!(rows_of(&db), [1]);
    assert_eq!(back.previous_bookmark, before);
    assert_ne!(back.bookmark, after_one);
    let info = w.client.database_info(ACC, &uuid).await.unwrap();
    assert_eq!(info.num_tables, Some(1), "`later` is gone");

    let undo = w
        .client
        .time_travel_restore(
            ACC,
            &uuid,
            TimeTravelPoint::Bookmark(back.previous_bookmark),
        )
        .await
        .unwrap();
    assert_eq!(rows_of(&db), [1, 2, 3, 4]);
    assert!(
        w.export(&uuid, &[]).await.unwrap() == dump_before,
        "exactly as before"
    );
    // The bookmark at a time is the state current then; now, the undo's.
    let now = w
        .client
        .bookmark_at(ACC, &uuid, Some(std::time::SystemTime::now()))
        .await
        .unwrap();
    assert_eq!(now, undo.bookmark);

    let unknown = "00000063-00000000-00004f6d-00000000000000000000000000000000";
    let err = w
        .client
        .time_travel_restore(ACC, &uuid, TimeTravelPoint::Bookmark(unknown.to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains(unknown), "{err}");
}

#[tokio::test]
async fn reserved_table_names_are_refused_as_d1_refuses_them() {
    let w = World::new().await;
    // A wrangler file holds `_cf_METADATA`: it still exports, without it.
    let (source, db) = w.serve("source", w.database("source", Some("basic")));
    let reserved: i64 = db.with_connection(|c| {
        c.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE '\\_cf\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    });
    assert!(reserved > 0, "the fixture has a `_cf_` table");
    let dump = w.export(&source, &[]).await.unwrap();
    assert!(!String::from_utf8_lossy(&dump).contains("_cf_"));
    let err = w
        .client
        .query(ACC, &source, "SELECT * FROM _cf_METADATA", &[])
        .await
        .unwrap_err();
    assert_eq!(err.server_message(), Some("not authorized: SQLITE_AUTH"));

    let (uuid, _db) = w.serve("target", w.database("target", None));
    for name in ["_CF_upper", "_cf_x", "_Cf_y"] {
        let create = format!("CREATE TABLE {name} (a)");
        let err = w.client.query(ACC, &uuid, &create, &[]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}");
        assert_eq!(
            err.server_message(),
            Some("not authorized: SQLITE_AUTH"),
            "{name}"
        );
        let err = w
            .import(&uuid, format!("{create};").as_bytes())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ImportFailed, "{name}");
        assert!(
            err.to_string().contains("not authorized: SQLITE_AUTH"),
            "{err}"
        );
    }
    // Ordinary names, `cf_` and `_cfx` included, work.
    w.import(
        &uuid,
        b"CREATE TABLE cf_ok (a);\nCREATE TABLE _cfx (a);\nINSERT INTO cf_ok VALUES(1);",
    )
    .await
    .unwrap();
    let read = w
        .client
        .query(ACC, &uuid, "SELECT a FROM cf_ok", &[])
        .await
        .unwrap();
    assert_eq!(read[0].results[0]["a"], 1);
    assert_eq!(
        w.client.database_info(ACC, &uuid).await.unwrap().num_tables,
        Some(2)
    );
}
