//! Restoring into D1 at D1's limits, against the simulator with real SQLite databases behind
//! it, which refuses what D1 refuses on import (statements over 100 KB, `_cf_` names in any
//! case, transaction statements) and keeps Time Travel history: rows up to 2 MB restore
//! exactly, names D1 refuses are refused before any upload (and left out on request), a
//! batch that fails is resumed, a new database is created for a drill, and Time Travel goes
//! back to a backup's bookmark and forward again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use d1_backup_core::testing::SqliteD1;
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    Confirm, Engine, ErrorKind, Existing, ImportRefusal, NewDatabase, PlannedTarget, RestoreReport,
    RestoreRequest, RestoreTarget, Status, TimeTravelRequest,
};
use d1_export::DumpOptions;
use d1_export::testing::{D1Simulator, SimulatedDatabase, SimulatedRows};
use r2_sink::{BackupSink, ObjectStoreSink};
use rusqlite::types::Value;
use serde_json::Value as Json;

use crate::support::*;

const UNUSED_SINK: &str = "kind = \"fs\"\npath = \"/nonexistent-unused\"";

/// Every row of every table (D1's and SQLite's own left out), with each value's storage class
/// and exact content, and every index, trigger and view as stored.
fn content(path: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut names = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' AND lower(substr(name, 1, 4)) <> '_cf_' ORDER BY name")
        .unwrap();
    let objects: Vec<(String, String, Option<String>)> = names
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut all = BTreeMap::new();
    for (kind, name, sql) in objects {
        all.insert(
            format!("{kind} {name}"),
            vec![sql.clone().unwrap_or_default()],
        );
        if kind != "table" || sql.is_some_and(|s| s.starts_with("CREATE VIRTUAL")) {
            continue;
        }
        let quoted = name.replace('"', "\"\"");
        let mut select = conn
            .prepare(&format!("SELECT * FROM \"{quoted}\""))
            .unwrap();
        let width = select.column_count();
        let mut rows: Vec<String> = select
            .query_map([], |r| {
                (0..width)
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .map(|row| format!("{:?}", row.unwrap()))
            .collect();
        rows.sort();
        all.insert(format!("rows {name}"), rows);
    }
    let sequence: Vec<String> = conn
        .prepare("SELECT name || '=' || seq FROM sqlite_sequence ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()
        })
        .unwrap_or_default();
    all.insert("sqlite_sequence".to_owned(), sequence);
    all
}

/// A source database backed up into a memory sink, and an engine to restore it.
struct Drill {
    sim: D1Simulator,
    dir: tempfile::TempDir,
    scratch: tempfile::TempDir,
    engine: Engine,
    /// The source databases, by name: their SQLite side and uuid.
    sources: BTreeMap<String, (Arc<SqliteD1>, String)>,
    /// Where the backups are.
    sink: Arc<dyn BackupSink>,
}

impl Drill {
    /// The UCCA account holding `sources` (name, SQLite file, optional export override),
    /// each backed up once.
    async fn new(sources: &[(&str, PathBuf, Option<Bytes>)], extra: &str) -> Self {
        let sim = simulator().await;
        let dir = tempfile::tempdir().unwrap();
        let factory_dir = dir.path().to_path_buf();
        let counter = Arc::new(AtomicU32::new(0));
        sim.set_database_factory(Arc::new(move |name: &str| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let db =
                SqliteD1::open(factory_dir.join(format!("created-{n}-{name}.sqlite"))).unwrap();
            Arc::new(db) as Arc<dyn SimulatedDatabase>
        }));
        let mut names = Vec::new();
        let mut backed = BTreeMap::new();
        for (name, path, export) in sources {
            let mut db = SqliteD1::open(path).unwrap();
            if let Some(export) = export {
                db = db.with_export_override(export.clone());
            }
            let db = Arc::new(db);
            let uuid = sim.add_backed_database(UCCA, name, db.clone());
            backed.insert((*name).to_owned(), (db, uuid));
            names.push(format!("\"{name}\""));
        }
        sim.add_database(RTO, "rto-ops-db", "PRAGMA defer_foreign_keys=TRUE;\n");
        let text = format!(
            "{}{extra}",
            config_text(&sim, UNUSED_SINK, &names.join(", "), r#""rto-ops-db""#)
        );
        let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
        let engine = engine(&text, Some(sink.clone()));
        let report = run(&engine, d1_backup_core::RunOptions::new(date())).await;
        assert!(
            report.databases.iter().all(|d| d.status == Status::Ok),
            "{report:#?}"
        );
        Self {
            sim,
            dir,
            scratch: tempfile::tempdir().unwrap(),
            engine,
            sources: backed,
            sink,
        }
    }

    /// A source database `name` built from `sql` in this drill's directory.
    fn source(dir: &Path, name: &str, sql: &str) -> PathBuf {
        let path = dir.join(format!("{name}.sqlite"));
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        path
    }

    /// An empty target database `name`, backed by a SQLite file.
    fn target(&self, name: &str) -> (Arc<SqliteD1>, String) {
        let db = Arc::new(SqliteD1::open(self.dir.path().join(format!("{name}.sqlite"))).unwrap());
        let uuid = self.sim.add_backed_database(UCCA, name, db.clone());
        (db, uuid)
    }

    fn request(&self, database: &str, target: &str) -> RestoreRequest {
        let mut request = RestoreRequest::new(
            database.parse().unwrap(),
            RestoreTarget::d1(target, None),
            self.scratch.path(),
        );
        request.confirm = Confirm::Yes;
        request
    }

    async fn restore(
        &self,
        request: &RestoreRequest,
    ) -> Result<RestoreReport, d1_backup_core::Error> {
        let plan = self.engine.restore_plan(request).await?;
        assert!(plan.allowed(), "{:?}", plan.refusals);
        self.engine
            .restore_to_d1(&plan, &CancellationToken::new())
            .await
    }

    /// Only the progress of an unfinished import may stay in the scratch directory.
    fn scratch_files(&self) -> Vec<String> {
        std::fs::read_dir(self.scratch.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrangler")
}

/// Every fixture's real wrangler export (D1's format, its defects included) goes back into
/// D1 exactly as it restores into SQLite: D1's limits and rules hold on every statement.
#[tokio::test]
async fn every_fixture_restores_into_d1_as_its_dump_says() {
    let work = tempfile::tempdir().unwrap();
    let mut sources = Vec::new();
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let case_dir = entry.unwrap().path();
        let Ok(export) = std::fs::read(case_dir.join("export.sql")) else {
            continue; // A case D1 cannot export (FTS5): no dump to restore.
        };
        let case = case_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('_', "-");
        let copy = work.path().join(format!("{case}.sqlite"));
        std::fs::copy(case_dir.join("local.sqlite"), &copy).unwrap();
        // What the dump holds: the dump restored into SQLite; `None` when SQLite refuses it
        // (a lossy export: a rounded integer in a STRICT INTEGER column).
        let expected = work.path().join(format!("{case}-expected.sqlite"));
        let expected =
            d1_backup_core::restore_to_path(export.as_slice(), &expected).map(|_| expected);
        sources.push((case.clone(), copy, Some(Bytes::from(export))));
        cases.push((case, expected.ok()));
    }
    assert!(cases.len() >= 8, "{cases:?}");
    let borrowed: Vec<(&str, PathBuf, Option<Bytes>)> = sources
        .iter()
        .map(|(n, p, e)| (n.as_str(), p.clone(), e.clone()))
        .collect();
    let drill = Drill::new(&borrowed, "").await;
    let mut restored = 0;
    for (case, expected) in &cases {
        let (target, uuid) = drill.target(&format!("{case}-restored"));
        let empty = content(target.path());
        let outcome = drill
            .restore(&drill.request(case, &format!("{case}-restored")))
            .await;
        let Some(expected) = expected else {
            // D1 refuses what SQLite refuses, and the failed batch leaves the target as it was.
            let error = outcome
                .err()
                .unwrap_or_else(|| panic!("{case}: D1 took a dump SQLite refuses"));
            assert_eq!(error.kind(), ErrorKind::ImportFailed, "{case}: {error}");
            assert_eq!(content(target.path()), empty, "{case}");
            continue;
        };
        let report = outcome.unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(content(target.path()), content(expected), "{case}");
        // One batch each (none for the empty database: nothing to import).
        let batches = report.batches.unwrap();
        assert!(batches <= 1, "{case}: {report:?}");
        assert_eq!(u64::from(drill.sim.imports_done(&uuid)), batches, "{case}");
        restored += 1;
    }
    assert!(restored >= 7, "{restored} of {}", cases.len());
    assert!(
        drill.scratch_files().is_empty(),
        "{:?}",
        drill.scratch_files()
    );
}

/// Rows of 0.2, 1 and 2 MB (text and blob, several long columns in one row, every kind of
/// key) restore exactly, through batches small enough that the split rows sit at their edges.
#[tokio::test]
async fn rows_up_to_two_megabytes_restore_exactly_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = Drill::source(
        dir.path(),
        "big",
        "CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT, data BLOB);\n\
         CREATE TABLE notes (slug TEXT PRIMARY KEY, body TEXT) WITHOUT ROWID;\n\
         CREATE TABLE plain (a TEXT, b BLOB, c INTEGER);\n\
         CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);\n\
         CREATE INDEX docs_by_title ON docs(title);",
    );
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let text = |n: usize, seed: u32| -> String {
            let alphabet = [
                "a",
                "'",
                "\n",
                "é",
                "😀",
                "BEGIN TRANSACTION;",
                "COMMIT;",
                "\r",
                "\\",
                "x",
            ];
            let mut out = String::new();
            let mut i = seed;
            while out.len() < n {
                i = i.wrapping_mul(1_103_515_245).wrapping_add(12345);
                out.push_str(alphabet[(i >> 16) as usize % alphabet.len()]);
            }
            out
        };
        let blob = |n: usize, seed: u8| -> Vec<u8> {
            (0..n)
                .map(|i| {
                    u8::try_from(i % 256)
                        .unwrap()
                        .wrapping_mul(31)
                        .wrapping_add(seed)
                })
                .collect()
        };
        for (id, size) in [(1, 200_000), (2, 1_000_000), (3, 2_000_000)] {
            conn.execute(
                "INSERT INTO docs VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    id,
                    format!("doc {id}"),
                    text(size, id),
                    blob(size, u8::try_from(id).unwrap())
                ],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO docs VALUES (4, ?1, ?2, NULL)",
            rusqlite::params![text(150_000, 9), text(120_000, 10)],
        )
        .unwrap();
        conn.execute("INSERT INTO docs VALUES (5, 'small', 'x', x'00')", [])
            .unwrap();
        conn.execute(
            "INSERT INTO notes VALUES ('a''b', ?1), ('c', 'short')",
            [text(1_000_000, 3)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO plain VALUES (?1, ?2, 9223372036854775807)",
            rusqlite::params![text(300_000, 4), blob(300_000, 5)],
        )
        .unwrap();
        conn.execute("INSERT INTO seq (v) VALUES (?1), ('b')", [text(250_000, 6)])
            .unwrap();
    }
    let drill = Drill::new(&[("big", path.clone(), None)], "").await;
    let (target, uuid) = drill.target("big-restored");
    let mut request = drill.request("big", "big-restored");
    request.d1.batch_bytes = 3 * 1024 * 1024;
    let report = drill.restore(&request).await.unwrap();
    assert_eq!(content(target.path()), content(&path));
    assert_eq!(report.split_rows, 7, "{report:?}");
    let batches = report.batches.unwrap();
    assert!(batches > 3, "{report:?}");
    assert_eq!(
        drill.sim.imports_done(&uuid),
        u32::try_from(batches).unwrap()
    );
    assert_eq!(report.tables.get("docs"), Some(&5));
    assert!(
        drill.scratch_files().is_empty(),
        "{:?}",
        drill.scratch_files()
    );
}

/// A dump with names D1 refuses is refused before any upload, naming every one; left out
/// by name, the rest restores, and the report lists what was left out.
#[tokio::test]
async fn reserved_names_are_refused_before_upload_and_left_out_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = Drill::source(
        dir.path(),
        "legacy",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);\n\
         CREATE TABLE \"_CF_upper\" (k INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);\n\
         CREATE TABLE _Cf_x (a);\n\
         CREATE INDEX upper_by_v ON \"_CF_upper\"(v);\n\
         INSERT INTO users VALUES (1, 'ada'), (2, 'grace');\n\
         INSERT INTO \"_CF_upper\" (v) VALUES ('one'), ('two');\n\
         INSERT INTO _Cf_x VALUES (1);",
    );
    let drill = Drill::new(&[("legacy", path.clone(), None)], "").await;
    let (target, uuid) = drill.target("legacy-restored");
    let request = drill.request("legacy", "legacy-restored");
    let before = drill.sim.requests();
    let error = drill.restore(&request).await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Refused, "{error}");
    let refusal = std::error::Error::source(&error)
        .and_then(|s| s.downcast_ref::<ImportRefusal>())
        .unwrap_or_else(|| panic!("{error:?}"));
    assert_eq!(refusal.exclude, ["_CF_upper", "_Cf_x"], "{refusal}");
    let message = error.to_string();
    assert!(
        message.contains("table _CF_upper")
            && message.contains("table _Cf_x")
            && message.contains("index upper_by_v on _CF_upper"),
        "{message}"
    );
    // The plan's two requests (list, info) and nothing else: nothing was uploaded.
    assert_eq!(drill.sim.requests(), before + 2);
    assert_eq!(drill.sim.imports_done(&uuid), 0);

    let mut excluding = request.clone();
    excluding.d1.exclude_tables = vec!["_cf_upper".to_owned(), "_Cf_x".to_owned()];
    let report = drill.restore(&excluding).await.unwrap();
    let excluded: Vec<(&str, &str, Option<u64>)> = report
        .excluded
        .iter()
        .map(|e| (e.kind.as_str(), e.name.as_str(), e.rows))
        .collect();
    assert!(
        excluded.contains(&("table", "_CF_upper", Some(2))),
        "{excluded:?}"
    );
    assert!(
        excluded.contains(&("table", "_Cf_x", Some(1))),
        "{excluded:?}"
    );
    assert!(
        excluded.contains(&("index", "upper_by_v", None)),
        "{excluded:?}"
    );
    let restored = content(target.path());
    assert_eq!(restored["rows users"], content(&path)["rows users"]);
    assert!(
        !restored.keys().any(|k| k.to_lowercase().contains("_cf_")),
        "{restored:?}"
    );
    assert_eq!(
        restored["sqlite_sequence"],
        Vec::<String>::new(),
        "its sequence row went with it"
    );

    // A name the dump does not have is refused, naming the tables it has.
    let (_, other_uuid) = drill.target("legacy-other");
    let mut unknown = drill.request("legacy", "legacy-other");
    unknown.d1.exclude_tables = vec!["nope".to_owned()];
    let error = drill.restore(&unknown).await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::Refused);
    assert!(
        error.to_string().contains("nope") && error.to_string().contains("users"),
        "{error}"
    );
    assert_eq!(drill.sim.imports_done(&other_uuid), 0);
}

/// A database that fails its `n`th import (as a dropped ingest would), then works again.
#[derive(Debug)]
struct FailingOnce {
    inner: SqliteD1,
    imports: AtomicU32,
    fail_at: u32,
}

impl SimulatedDatabase for FailingOnce {
    fn query(&self, sql: &str, params: &[Json]) -> Result<Vec<SimulatedRows>, String> {
        self.inner.query(sql, params)
    }

    fn export(&self, options: &DumpOptions) -> Result<Bytes, String> {
        self.inner.export(options)
    }

    fn import(&self, sql: &[u8]) -> Result<u64, String> {
        if self.imports.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err("D1_ERROR: Network connection lost.".to_owned());
        }
        self.inner.import(sql)
    }

    fn bookmark(&self) -> String {
        self.inner.bookmark()
    }

    fn num_tables(&self) -> Option<u64> {
        self.inner.num_tables()
    }
}

/// A batch that fails names itself; the restore resumes from it and ends with every row; a
/// target changed in between is not resumed; and a non-empty target needs asking.
#[tokio::test]
async fn a_failed_batch_is_resumed_and_a_non_empty_target_needs_asking() {
    let dir = tempfile::tempdir().unwrap();
    let path = Drill::source(
        dir.path(),
        "shop",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES orders(id), name TEXT);\n\
         CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT);\n\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)\n\
         INSERT INTO orders SELECT i, printf('order %d %s', i, hex(randomblob(40))) FROM n;\n\
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)\n\
         INSERT INTO items SELECT i, i, printf('item %d %s', i, hex(randomblob(40))) FROM n;",
    );
    let drill = Drill::new(&[("shop", path.clone(), None)], "").await;
    let target_path = drill.dir.path().join("shop-restored.sqlite");
    let target = Arc::new(FailingOnce {
        inner: SqliteD1::open(&target_path).unwrap(),
        imports: AtomicU32::new(0),
        fail_at: 3,
    });
    let uuid = drill
        .sim
        .add_backed_database(UCCA, "shop-restored", target.clone());
    let mut request = drill.request("shop", "shop-restored");
    request.d1.batch_bytes = 16 * 1024;
    let error = drill.restore(&request).await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::ImportFailed, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("batch 3 of")
            && message.contains("batches 1 to 2 are imported")
            && message.contains("resume"),
        "{message}"
    );
    assert_eq!(drill.sim.imports_done(&uuid), 2);
    // Items reference orders: the orders' rows came first, so each batch stood on its own.
    let partial = content(&target_path);
    assert!(!partial["rows orders"].is_empty());

    // Without resuming, the target (now holding tables) is refused.
    let plan = drill.engine.restore_plan(&request).await.unwrap();
    assert!(
        plan.refusals.iter().any(|r| r.contains("already has")),
        "{:?}",
        plan.refusals
    );
    // Resumed: the rest goes in, and the target ends equal to the source.
    let mut resume = request.clone();
    resume.d1.existing = Existing::Resume;
    let plan = drill.engine.restore_plan(&resume).await.unwrap();
    let PlannedTarget::D1 { resume_after, .. } = &plan.target else {
        panic!("{plan:?}")
    };
    assert_eq!(*resume_after, Some(2));
    let report = drill
        .engine
        .restore_to_d1(&plan, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.first_batch, Some(3));
    assert_eq!(content(&target_path), content(&path));
    assert!(
        drill.scratch_files().is_empty(),
        "{:?}",
        drill.scratch_files()
    );

    // A second failure, then a write to the target: resuming is refused, nothing imported.
    let other = Arc::new(FailingOnce {
        inner: SqliteD1::open(drill.dir.path().join("shop-third.sqlite")).unwrap(),
        imports: AtomicU32::new(0),
        fail_at: 2,
    });
    let uuid = drill
        .sim
        .add_backed_database(UCCA, "shop-third", other.clone());
    let mut third = drill.request("shop", "shop-third");
    third.d1.batch_bytes = 16 * 1024;
    assert!(drill.restore(&third).await.is_err());
    other
        .query(
            "INSERT INTO orders (id, note) VALUES (100000, 'meanwhile')",
            &[],
        )
        .unwrap();
    third.d1.existing = Existing::Resume;
    let plan = drill.engine.restore_plan(&third).await.unwrap();
    let error = drill
        .engine
        .restore_to_d1(&plan, &CancellationToken::new())
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::Refused, "{error}");
    assert!(
        error.to_string().contains("changed since batch 1"),
        "{error}"
    );
    assert_eq!(drill.sim.imports_done(&uuid), 1);

    // Into the existing content, when asked: D1 refuses the CREATE TABLE of a name it has,
    // and the batch leaves the database as it was.
    let mut into = drill.request("shop", "shop-restored");
    into.d1.existing = Existing::ImportInto;
    let before = content(&target_path);
    let error = drill.restore(&into).await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::ImportFailed, "{error}");
    assert_eq!(content(&target_path), before);
}

/// A restore drill into a database the restore creates; refused when the name exists.
#[tokio::test]
async fn a_new_database_is_created_for_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    let path = Drill::source(
        dir.path(),
        "ops-db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let drill = Drill::new(&[("ops-db", path.clone(), None)], "").await;
    let mut request = drill.request("ops-db", "ops-db-drill");
    request.d1.create = Some(NewDatabase::new(Some("weur".to_owned())));
    let plan = drill.engine.restore_plan(&request).await.unwrap();
    assert!(plan.allowed(), "{:?}", plan.refusals);
    let report = drill
        .engine
        .restore_to_d1(&plan, &CancellationToken::new())
        .await
        .unwrap();
    let uuid = report.created_uuid.clone().unwrap();
    assert_eq!(drill.sim.location(&uuid).as_deref(), Some("weur"));
    assert_eq!(drill.sim.imports_done(&uuid), 1);
    let created = drill.dir.path().join("created-0-ops-db-drill.sqlite");
    assert_eq!(content(&created), content(&path));

    // The name exists now: refused before anything changes.
    let plan = drill.engine.restore_plan(&request).await.unwrap();
    assert!(
        plan.refusals.iter().any(|r| r.contains("already exists")),
        "{:?}",
        plan.refusals
    );
    let mut bad = drill.request("ops-db", "Bad Name");
    bad.d1.create = Some(NewDatabase::default());
    let plan = drill.engine.restore_plan(&bad).await.unwrap();
    assert!(
        plan.refusals.iter().any(|r| r.contains("lower-case")),
        "{:?}",
        plan.refusals
    );
}

/// Time Travel takes the live database back to the backup's bookmark, exactly, and the
/// previous bookmark it answers takes it forward again; refusals change nothing.
#[tokio::test]
async fn time_travel_goes_back_to_the_backup_and_forward_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = Drill::source(
        dir.path(),
        "live",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 9007199254740993), (2, 'keep'), (3, 'lost');",
    );
    let drill = Drill::new(&[("live", path.clone(), None)], "").await;
    let at_backup = content(&path);
    let (source, uuid) = drill.sources["live"].clone();
    source.query("DELETE FROM t WHERE id >= 2", &[]).unwrap();
    let after_loss = content(&path);
    assert_ne!(at_backup, after_loss);

    let mut request = TimeTravelRequest::new("live".parse().unwrap());
    let plan = drill.engine.time_travel_plan(&request).await.unwrap();
    assert!(
        plan.refusals.iter().any(|r| r.contains("confirm")),
        "{:?}",
        plan.refusals
    );
    let refused = drill.engine.time_travel(&plan).await.err().unwrap();
    assert_eq!(refused.kind(), ErrorKind::Refused);
    assert_eq!(content(&path), after_loss, "a refusal changes nothing");

    request.confirm = Confirm::Yes;
    let plan = drill.engine.time_travel_plan(&request).await.unwrap();
    assert!(plan.allowed(), "{:?}", plan.refusals);
    assert_eq!(plan.uuid, uuid);
    let done = drill.engine.time_travel(&plan).await.unwrap();
    assert_eq!(
        content(&path),
        at_backup,
        "back to the backup's moment, big integer exact"
    );

    let mut undo = TimeTravelRequest::new("live".parse().unwrap());
    undo.bookmark = Some(done.previous_bookmark.clone());
    undo.confirm = Confirm::Yes;
    let plan = drill.engine.time_travel_plan(&undo).await.unwrap();
    drill.engine.time_travel(&plan).await.unwrap();
    assert_eq!(content(&path), after_loss, "and forward again");
}

/// Time Travel is refused for a backup older than the window, and for a local database.
#[tokio::test]
async fn time_travel_refuses_what_it_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    let path = Drill::source(
        dir.path(),
        "old",
        "CREATE TABLE t (a); INSERT INTO t VALUES (1);",
    );
    let drill = Drill::new(&[("old", path.clone(), None)], "").await;
    // The same configuration, with a clock 8 days on and the free plan's 7-day window.
    let text = drill.engine.config().clone();
    let mut config = text;
    config.cloudflare.time_travel_days = Some(7);
    let later = Engine::builder(config, secrets())
        .sink(drill.sink.clone())
        .clock(Arc::new(d1_backup_core::TokioClock::starting_at(
            d1_backup_core::chrono::Utc::now() + d1_backup_core::chrono::Duration::days(8),
        )))
        .build()
        .unwrap();
    let mut request = TimeTravelRequest::new("old".parse().unwrap());
    request.confirm = Confirm::Yes;
    let plan = later.time_travel_plan(&request).await.unwrap();
    assert!(
        plan.refusals
            .iter()
            .any(|r| r.contains("outside D1's Time Travel window of 7 days")
                && r.contains("free plans 7")),
        "{:?}",
        plan.refusals
    );
    assert!(later.time_travel(&plan).await.is_err());

    let (local, _sink) = local_engine(
        dir.path(),
        &format!("{{ name = \"file\", sqlite = \"{}\" }}", path.display()),
        "",
    );
    let mut request = TimeTravelRequest::new("file".parse().unwrap());
    request.confirm = Confirm::Yes;
    let plan = local.time_travel_plan(&request).await.unwrap();
    assert!(
        plan.refusals
            .iter()
            .any(|r| r.contains("local SQLite database")),
        "{:?}",
        plan.refusals
    );
}
