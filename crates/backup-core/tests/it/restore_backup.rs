//! Restoring a backup: into a SQLite file (atomically, checked against the manifest) and into
//! D1 through the import API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use d1_backup_core::chrono::NaiveDate;
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    Config, Engine, ErrorKind, Force, PlannedTarget, RestoreReport, RestoreRequest, RestoreTarget,
    RunOptions, Secrets, Status,
};
use futures::StreamExt;
use r2_sink::{BackupSink, ObjectStoreSink, PutOptions};
use rusqlite::types::Value;

use crate::support::*;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/databases")
        .join(name)
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

/// Every row of every table of the SQLite file at `path`, in a comparable order.
fn rows(path: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let names: Vec<String> = names
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut all = BTreeMap::new();
    for name in names {
        let mut select = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
        let width = select.column_count();
        let mut table: Vec<String> = select
            .query_map([], |r| {
                (0..width)
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .map(|row| format!("{:?}", row.unwrap()))
            .collect();
        table.sort();
        all.insert(name, table);
    }
    all
}

/// Local databases (copies of the examples in `dir`) backed up into a memory sink.
struct Local {
    dir: tempfile::TempDir,
    engine: Engine,
    sink: Arc<dyn BackupSink>,
}

impl Local {
    fn new(accounts: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in ["shop.sqlite", "blog.sqlite"] {
            std::fs::copy(example(name), dir.path().join(name)).unwrap();
        }
        let text = format!("[sink]\nkind = \"fs\"\npath = \"unused\"\n\n{accounts}");
        let config = Config::from_toml(&text, &dir.path().join("d1-backup.toml")).unwrap();
        let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
        let secrets = Secrets::resolve(&config, Path::new("x"), |_| None).unwrap();
        let engine = Engine::builder(config, secrets)
            .sink(sink.clone())
            .build()
            .unwrap();
        Self { dir, engine, sink }
    }

    fn shop() -> Self {
        Self::new(
            "[[accounts]]\nname = \"local\"\nprefix = \"local\"\ndatabases = [{ name = \"shop\", sqlite = \"shop.sqlite\" }, { name = \"blog\", sqlite = \"blog.sqlite\", compression = \"zstd\" }]\n",
        )
    }

    async fn backup(&self, date: NaiveDate) {
        let report = run(&self.engine, RunOptions::new(date)).await;
        assert!(
            report.databases.iter().all(|d| d.status == Status::Ok),
            "{report:#?}"
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn request(&self, database: &str, target: &Path) -> RestoreRequest {
        RestoreRequest::new(
            database.parse().unwrap(),
            RestoreTarget::sqlite(target),
            self.dir.path(),
        )
    }

    async fn restore(
        &self,
        request: &RestoreRequest,
    ) -> Result<RestoreReport, d1_backup_core::Error> {
        let plan = self.engine.restore_plan(request).await?;
        self.engine
            .restore_to_sqlite(&plan, &CancellationToken::new())
            .await
    }

    /// Files in the directory whose name holds `.partial-`: none may ever be left behind.
    fn partials(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".partial-"))
            .collect()
    }
}

#[tokio::test]
async fn the_newest_backup_restores_into_sqlite_with_every_row() {
    let local = Local::shop();
    local.backup(day(29)).await;
    // The database changes after the first backup: the newest backup has the new row.
    let conn = rusqlite::Connection::open(local.path("shop.sqlite")).unwrap();
    conn.execute_batch(
        "INSERT INTO products (sku, title, price_cents) VALUES ('late', 'Late', 1);",
    )
    .unwrap();
    drop(conn);
    local.backup(day(30)).await;
    let source = rows(&local.path("shop.sqlite"));

    let target = local.path("restored.sqlite");
    let request = local.request("shop", &target);
    let plan = local.engine.restore_plan(&request).await.unwrap();
    assert_eq!(plan.backup.date, day(30), "the newest complete backup");
    assert_eq!(plan.backup.key, "local/2026-11-30/shop.sql");
    assert!(plan.allowed(), "{:?}", plan.refusals);
    assert!(matches!(
        &plan.target,
        PlannedTarget::Sqlite {
            existing_bytes: None,
            ..
        }
    ));
    assert!(!target.exists(), "planning changes nothing");

    let report = local
        .engine
        .restore_to_sqlite(&plan, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(rows(&target), source);
    assert!(!report.replaced);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.statements > 3);
    let restored_rows: u64 = report.tables.values().sum();
    let source_rows: usize = source.values().map(Vec::len).sum();
    assert_eq!(restored_rows, source_rows as u64);
    assert!(local.partials().is_empty());

    // An older date restores that day's content; compressed dumps are decoded.
    let older = local.path("older.sqlite");
    let mut request = local.request("local/shop", &older);
    request.date = Some(day(29));
    local.restore(&request).await.unwrap();
    assert_ne!(rows(&older), source, "the 29th predates the change");
    let blog = local.path("blog-restored.sqlite");
    let report = local.restore(&local.request("blog", &blog)).await.unwrap();
    assert_eq!(rows(&blog), rows(&local.path("blog.sqlite")));
    assert!(report.tables.contains_key("posts"));
}

#[tokio::test]
async fn a_non_empty_file_is_replaced_only_with_force() {
    let local = Local::shop();
    local.backup(day(30)).await;
    let target = local.path("existing.sqlite");
    std::fs::write(&target, b"precious").unwrap();

    let request = local.request("shop", &target);
    let plan = local.engine.restore_plan(&request).await.unwrap();
    assert!(!plan.allowed());
    assert!(
        plan.refusals[0].contains("not empty") && plan.refusals[0].contains("force the restore"),
        "{:?}",
        plan.refusals
    );
    let refused = local.restore(&request).await.err().unwrap();
    assert!(refused.kind() == ErrorKind::Refused, "{refused}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");

    // An empty file is not worth protecting.
    let empty = local.path("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    local.restore(&local.request("shop", &empty)).await.unwrap();

    let mut forced = request.clone();
    forced.force = Force::Yes;
    let plan = local.engine.restore_plan(&forced).await.unwrap();
    assert!(plan.allowed(), "{:?}", plan.refusals);
    assert!(
        plan.notes[0].contains("will be replaced"),
        "{:?}",
        plan.notes
    );
    let report = local.restore(&forced).await.unwrap();
    assert!(report.replaced);
    assert_eq!(rows(&target), rows(&local.path("shop.sqlite")));
    assert!(local.partials().is_empty());

    // A journal beside the file means a program may have it open: refused even with force.
    std::fs::write(local.path("existing.sqlite-wal"), b"x").unwrap();
    let plan = local.engine.restore_plan(&forced).await.unwrap();
    assert!(
        plan.refusals.iter().any(|r| r.contains("-wal")),
        "{:?}",
        plan.refusals
    );
}

#[tokio::test]
async fn an_altered_dump_fails_and_leaves_no_file() {
    let local = Local::shop();
    local.backup(day(30)).await;
    let key = "local/2026-11-30/shop.sql";
    let mut altered = read(local.sink.as_ref(), key).await;
    let at = altered.len() - 5;
    altered[at] ^= 0x01;
    let body = futures::stream::iter([Ok(bytes::Bytes::from(altered))]).boxed();
    local
        .sink
        .put_stream(key, body, PutOptions::default())
        .await
        .unwrap();

    let target = local.path("restored.sqlite");
    let error = local
        .restore(&local.request("shop", &target))
        .await
        .err()
        .unwrap();
    assert!(error.kind() == ErrorKind::InvalidDump, "{error}");
    assert!(error.to_string().contains("sha256 mismatch"), "{error}");
    assert!(!target.exists(), "no restored file after a failed check");
    assert!(local.partials().is_empty());

    // With --force over an existing file, that file is kept as it was.
    std::fs::write(&target, b"keep me").unwrap();
    let mut forced = local.request("shop", &target);
    forced.force = Force::Yes;
    assert!(local.restore(&forced).await.is_err());
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    assert!(local.partials().is_empty());
}

#[tokio::test]
async fn a_cancelled_restore_leaves_nothing() {
    let local = Local::shop();
    local.backup(day(30)).await;
    let target = local.path("restored.sqlite");
    let plan = local
        .engine
        .restore_plan(&local.request("shop", &target))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let error = local
        .engine
        .restore_to_sqlite(&plan, &cancel)
        .await
        .err()
        .unwrap();
    assert!(error.kind() == ErrorKind::Cancelled, "{error}");
    assert!(!target.exists());
    assert!(local.partials().is_empty());
}

#[tokio::test]
async fn missing_backups_and_unclear_databases_are_clear_errors() {
    let local = Local::new(
        "[[accounts]]\nname = \"a\"\nprefix = \"a\"\ndatabases = [{ name = \"shop\", sqlite = \"shop.sqlite\" }]\n\n[[accounts]]\nname = \"b\"\nprefix = \"b\"\ndatabases = [{ name = \"shop\", sqlite = \"blog.sqlite\" }]\n",
    );
    let target = local.path("restored.sqlite");
    let none = local
        .engine
        .restore_plan(&local.request("a/shop", &target))
        .await
        .err()
        .unwrap();
    assert!(none.kind() == ErrorKind::NotFound, "{none}");
    assert!(
        none.to_string().contains("a/shop has no complete backup"),
        "{none}"
    );
    local.backup(day(30)).await;
    let mut dated = local.request("a/shop", &target);
    dated.date = Some(day(12));
    let error = local.engine.restore_plan(&dated).await.err().unwrap();
    assert!(error.to_string().contains("dated 2026-11-12"), "{error}");

    let ambiguous = local
        .engine
        .restore_plan(&local.request("shop", &target))
        .await
        .err()
        .unwrap();
    assert_eq!(ambiguous.kind(), ErrorKind::NotConfigured);
    assert!(
        ambiguous.to_string().contains("a/shop, b/shop")
            && ambiguous.to_string().contains("ACCOUNT/NAME"),
        "{ambiguous}"
    );
    let unknown = local
        .engine
        .restore_plan(&local.request("nope", &target))
        .await
        .err()
        .unwrap();
    assert!(
        unknown.kind() == ErrorKind::NotConfigured
            && unknown
                .to_string()
                .contains("matches no configured database")
    );

    // The right one is taken when the account is named.
    let b = local
        .restore(&local.request("b/shop", &target))
        .await
        .unwrap();
    assert!(b.tables.contains_key("posts"), "b/shop is the blog file");
}

/// Restores into D1: the simulator with real SQLite databases behind it.
#[cfg(feature = "testing")]
mod d1 {
    use d1_backup_core::testing::SqliteD1;
    use d1_backup_core::{Confirm, D1_MAX_STATEMENT_BYTES};
    use d1_export::testing::D1Simulator;

    use super::*;

    const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

    /// A backed database named `name` in the UCCA account, its SQLite file in `dir`.
    fn backed(sim: &D1Simulator, dir: &Path, name: &str, sql: &str) -> (Arc<SqliteD1>, String) {
        let db = Arc::new(SqliteD1::open(dir.join(format!("{name}.sqlite"))).unwrap());
        db.with_connection(|c| c.execute_batch(sql)).unwrap();
        let uuid = sim.add_backed_database(UCCA, name, db.clone());
        (db, uuid)
    }

    /// An engine backing up `databases` of the UCCA account into a memory sink.
    async fn backed_up(sim: &D1Simulator, databases: &str) -> Engine {
        let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
        sim.add_database(RTO, "rto-ops-db", "PRAGMA defer_foreign_keys=TRUE;\n");
        let text = config_text(sim, UNUSED_SINK, databases, r#""rto-ops-db""#);
        let engine = engine(&text, Some(sink));
        let report = run(&engine, RunOptions::new(date())).await;
        assert!(
            report.databases.iter().all(|d| d.status == Status::Ok),
            "{report:#?}"
        );
        engine
    }

    fn request(database: &str, target: &str, scratch: &Path) -> RestoreRequest {
        RestoreRequest::new(
            database.parse().unwrap(),
            RestoreTarget::d1(target, None),
            scratch,
        )
    }

    #[tokio::test]
    async fn a_backup_imports_into_d1_only_when_confirmed() {
        let sim = simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let (source, _) = backed(
            &sim,
            dir.path(),
            "ops-db",
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n\
             CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), body TEXT);\n\
             CREATE INDEX notes_by_user ON notes(user_id);\n\
             INSERT INTO users VALUES (1, 'Zoë O''Brien'), (2, 'line1\nline2');\n\
             INSERT INTO notes VALUES (1, 1, 'a;b'), (2, 2, NULL), (3, 1, x'00ff');",
        );
        let (target, target_uuid) = backed(&sim, dir.path(), "ops-db-restored", "");
        let engine = backed_up(&sim, r#""ops-db""#).await;
        let scratch = tempfile::tempdir().unwrap();

        // Without confirmation: planned, refused, nothing imported.
        let unconfirmed = request("ops-db", "ops-db-restored", scratch.path());
        let plan = engine.restore_plan(&unconfirmed).await.unwrap();
        let PlannedTarget::D1 {
            uuid, num_tables, ..
        } = &plan.target
        else {
            panic!("{plan:?}");
        };
        assert_eq!(uuid, &target_uuid, "found by name");
        assert_eq!(*num_tables, Some(0), "the target is empty");
        assert!(
            plan.refusals[0].contains("serves no queries during the import")
                && plan.refusals[0].contains("confirm the import"),
            "{:?}",
            plan.refusals
        );
        let refused = engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert!(refused.kind() == ErrorKind::Refused, "{refused}");
        assert_eq!(sim.imports_done(&target_uuid), 0);

        // Confirmed: the target's SQLite holds the same rows.
        let mut confirmed = unconfirmed.clone();
        confirmed.confirm = Confirm::Yes;
        let plan = engine.restore_plan(&confirmed).await.unwrap();
        assert!(plan.allowed(), "{:?}", plan.refusals);
        let report = engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(sim.imports_done(&target_uuid), 1);
        assert_eq!(rows(target.path()), rows(source.path()));
        assert!(report.num_queries.is_some_and(|n| n > 0), "{report:?}");
        assert!(report.final_bookmark.is_some(), "{report:?}");
        assert_eq!(report.tables.get("notes"), Some(&3));
        assert_eq!(report.stripped, 0);
        assert_eq!(
            std::fs::read_dir(scratch.path()).unwrap().count(),
            0,
            "the staged dump is removed"
        );

        // A second import into the now non-empty database is refused unless asked for; asked
        // for, D1 refuses the CREATE TABLE of an existing name and leaves the database as it was.
        let plan = engine.restore_plan(&confirmed).await.unwrap();
        assert!(
            plan.refusals
                .iter()
                .any(|r| r.contains("already has 2 table(s)")),
            "{:?}",
            plan.refusals
        );
        let refused = engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert!(refused.kind() == ErrorKind::Refused, "{refused}");
        let mut into = confirmed.clone();
        into.d1.existing = d1_backup_core::Existing::ImportInto;
        let plan = engine.restore_plan(&into).await.unwrap();
        assert!(plan.allowed(), "{:?}", plan.refusals);
        let failed = engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
            .err()
            .unwrap();
        assert!(failed.kind() == ErrorKind::ImportFailed, "{failed}");
        assert_eq!(rows(target.path()), rows(source.path()));
    }

    /// A child table created before its parent: the dump keeps that order, D1's import
    /// enforces foreign keys, so the tables must all exist before the first row goes in.
    #[tokio::test]
    async fn a_child_table_created_before_its_parent_imports() {
        let sim = simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let (source, _) = backed(
            &sim,
            dir.path(),
            "blog",
            "CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES posts(id), body TEXT);\n\
             CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);\n\
             INSERT INTO posts VALUES (1, 'hello'), (2, 'again');\n\
             INSERT INTO comments VALUES (1, 1, 'first'), (2, 2, 'second');",
        );
        let (target, target_uuid) = backed(&sim, dir.path(), "blog-restored", "");
        let engine = backed_up(&sim, r#""blog""#).await;
        let scratch = tempfile::tempdir().unwrap();
        let mut confirmed = request("blog", "blog-restored", scratch.path());
        confirmed.confirm = Confirm::Yes;
        let plan = engine.restore_plan(&confirmed).await.unwrap();
        let report = engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(sim.imports_done(&target_uuid), 1);
        assert_eq!(rows(target.path()), rows(source.path()));
        assert_eq!(report.tables.get("comments"), Some(&2));
    }

    #[tokio::test]
    async fn transaction_statements_are_stripped_and_long_rows_split() {
        let sim = simulator().await;
        let dir = tempfile::tempdir().unwrap();
        sim.add_database(
            UCCA,
            "tx-db",
            "PRAGMA defer_foreign_keys=TRUE;\nBEGIN TRANSACTION;\nCREATE TABLE t (a);\nINSERT INTO \"t\" VALUES(1);\nINSERT INTO \"t\" VALUES(2);\nCOMMIT;\n",
        );
        let long = "x".repeat(D1_MAX_STATEMENT_BYTES);
        sim.add_database(
            UCCA,
            "big-db",
            format!("PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE \"big\" (v TEXT);\nINSERT INTO \"big\" VALUES('{long}');\n"),
        );
        let (target, target_uuid) = backed(&sim, dir.path(), "target", "");
        let (big_target, _) = backed(&sim, dir.path(), "big-target", "");
        let engine = backed_up(
            &sim,
            r#"{ name = "tx-db", compression = "zstd" }, "big-db""#,
        )
        .await;
        let scratch = tempfile::tempdir().unwrap();
        let mut tx = request("tx-db", "target", scratch.path());
        tx.confirm = Confirm::Yes;
        let plan = engine.restore_plan(&tx).await.unwrap();
        let report = engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
            .unwrap();
        // CREATE TABLE and two rows, plus the batch's own PRAGMA.
        assert_eq!((report.stripped, report.statements), (2, 4));
        assert_eq!(report.tables.get("t"), Some(&2));
        let count: i64 = target
            .with_connection(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(count, 2);

        // A row longer than D1's statement limit is rewritten into statements that fit.
        let mut big = request("big-db", "big-target", scratch.path());
        big.confirm = Confirm::Yes;
        let plan = engine.restore_plan(&big).await.unwrap();
        let report = engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(report.split_rows, 1, "{report:?}");
        let value: String = big_target
            .with_connection(|c| c.query_row("SELECT v FROM big", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(value, long);
        // The same backup restores into SQLite, with a warning for D1.
        let file = RestoreRequest::new(
            "big-db".parse().unwrap(),
            RestoreTarget::sqlite(dir.path().join("big.sqlite")),
            scratch.path(),
        );
        let plan = engine.restore_plan(&file).await.unwrap();
        let report = engine
            .restore_to_sqlite(&plan, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(report.tables.get("big"), Some(&1));
        assert!(
            report.warnings[0].contains("D1's 100000-byte limit"),
            "{:?}",
            report.warnings
        );
        assert_eq!(
            sim.imports_done(&target_uuid),
            1,
            "one import into each target"
        );
        assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    }
}
