//! `export = "online"`: live databases read through the query API of the D1 simulator (a real
//! SQLite database behind it, answering with D1's rounding), end to end through the engine.
//!
//! The oracles: the local SQLite source's dump of the same file (`dump_sqlite`), which the
//! online dump must equal byte for byte; wrangler's own `export.sql` where the fixture's notes
//! say it is lossless; and a restore compared cell for cell, storage class included, with the
//! source database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use d1_backup_core::sqlite::{SqliteDumpOptions, dump_sqlite};
use d1_backup_core::testing::SqliteD1;
use d1_backup_core::tokio_util::sync::CancellationToken;
use d1_backup_core::{
    DumpConsistency, Engine, ExportMode, Force, Manifest, RunOptions, RunReport, Status,
    restore_dump,
};
use d1_export::DumpOptions;
use d1_export::testing::{D1Simulator, Fault, SimulatedDatabase, SimulatedRows};
use r2_sink::{BackupSink, ObjectStoreSink};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::support::{self, UCCA, UCCA_TOKEN, date};

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wrangler")
        .join(case)
        .join(file)
}

/// Every fixture case with a `local.sqlite`, and whether wrangler's export of it is lossless.
const CASES: [(&str, bool); 10] = [
    ("basic", true),
    ("blobs", true),
    ("empty", true),
    ("fts5", false),
    ("numbers", false),
    ("quoting", true),
    ("schema", true),
    ("schema-comments", true),
    ("trigger-on-view", true),
    ("wide", true),
];

struct World {
    sim: D1Simulator,
    sink: Arc<dyn BackupSink>,
    dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        Self {
            sim: support::simulator().await,
            sink: Arc::new(ObjectStoreSink::memory()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A copy of a fixture's `local.sqlite` (or a new file), its export served as wrangler
    /// wrote it when there is one.
    fn database(&self, name: &str, case: Option<&str>) -> SqliteD1 {
        let path = self.dir.path().join(format!("{name}.sqlite"));
        let mut db = match case {
            Some(case) => {
                std::fs::copy(fixture(case, "local.sqlite"), &path).unwrap();
                SqliteD1::open(&path).unwrap()
            }
            None => SqliteD1::open(&path).unwrap(),
        };
        if let Some(export) = case.and_then(|c| std::fs::read(fixture(c, "export.sql")).ok()) {
            db = db.with_export_override(export);
        }
        db
    }

    fn serve(&self, name: &str, db: Arc<dyn SimulatedDatabase>) -> String {
        self.sim.add_backed_database(UCCA, name, db)
    }

    /// An engine over `databases` of the first account, `[run]` extended with `run`.
    fn engine(&self, databases: &str, run: &str) -> Engine {
        let text =
            support::config_text(&self.sim, "kind = \"fs\"\npath = \"unused\"", databases, "")
                .replace("[run]\n", &format!("[run]\n{run}\n"));
        // The first account only.
        let text = text
            .split("\n[[accounts]]\nname = \"rtopacks\"")
            .next()
            .unwrap_or_default();
        support::engine(text, Some(self.sink.clone()))
    }

    async fn dump(&self, report: &RunReport, name: &str) -> Vec<u8> {
        let db = report.databases.iter().find(|d| d.name == name).unwrap();
        assert_eq!(db.status, Status::Ok, "{name}: {report:#?}");
        support::read(self.sink.as_ref(), &db.key).await
    }

    async fn manifest(&self, report: &RunReport, name: &str) -> Manifest {
        let db = report.databases.iter().find(|d| d.name == name).unwrap();
        let key = d1_backup_core::manifest_key("d1", date_of(&db.key), name);
        Manifest::from_json(&support::read(self.sink.as_ref(), &key).await).unwrap()
    }
}

/// The date folder of a dump key `d1/<date>/<name>.sql`.
fn date_of(key: &str) -> d1_backup_core::chrono::NaiveDate {
    key.split('/').nth(1).and_then(|d| d.parse().ok()).unwrap()
}

/// The local SQLite source's dump of `path`: what the online dump must equal.
fn local_dump(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    dump_sqlite(path, &SqliteDumpOptions::default(), &mut out).unwrap();
    out
}

/// Asserts two dumps are byte-identical, naming the first statement that differs.
fn assert_same_dump(case: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let (got, want) = (String::from_utf8_lossy(got), String::from_utf8_lossy(want));
    let first = got
        .split('\n')
        .zip(want.split('\n'))
        .enumerate()
        .find(|(_, (g, w))| g != w);
    let cut = |s: &str| s.chars().take(300).collect::<String>();
    match first {
        Some((line, (g, w))) => panic!(
            "{case}: dumps differ at line {}:\n got: {}\nwant: {}",
            line + 1,
            cut(g),
            cut(w)
        ),
        None => panic!(
            "{case}: dumps differ in length: {} and {} bytes",
            got.len(),
            want.len()
        ),
    }
}

/// A row as `(storage class, exact bytes)` per cell.
type Row = Vec<(String, Vec<u8>)>;

/// Every row of every table a restore must give back (user tables, virtual tables and
/// `sqlite_sequence`; not shadow tables or D1's and SQLite's own), as sorted rows of
/// `(storage class, exact value)`.
fn contents(conn: &Connection) -> Vec<(String, Vec<Row>)> {
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let virtual_tables: Vec<&str> = tables
        .iter()
        .filter(|(_, sql)| sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL"))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut out = Vec::new();
    for (name, _) in &tables {
        let internal =
            name.starts_with("_cf_") || (name.starts_with("sqlite_") && name != "sqlite_sequence");
        let shadow = virtual_tables
            .iter()
            .any(|v| name.starts_with(&format!("{v}_")));
        if internal || shadow {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))
            .unwrap();
        let width = stmt.column_count();
        let mut rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok((0..width)
                    .map(|i| match r.get_ref(i).unwrap() {
                        ValueRef::Null => ("null".to_owned(), Vec::new()),
                        ValueRef::Integer(v) => ("integer".to_owned(), v.to_le_bytes().to_vec()),
                        ValueRef::Real(v) => {
                            ("real".to_owned(), v.to_bits().to_le_bytes().to_vec())
                        }
                        ValueRef::Text(t) => ("text".to_owned(), t.to_vec()),
                        ValueRef::Blob(b) => ("blob".to_owned(), b.to_vec()),
                    })
                    .collect())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        out.push((name.clone(), rows));
    }
    out
}

/// Restores `dump` into a fresh database and checks it holds what `source` holds.
fn assert_restores_exactly(case: &str, dump: &[u8], source: &Path) {
    let restored = Connection::open_in_memory().unwrap();
    restore_dump(dump, &restored).unwrap_or_else(|e| panic!("{case}: {e}"));
    let source = Connection::open(source).unwrap();
    let (want, got) = (contents(&source), contents(&restored));
    assert_eq!(want.len(), got.len(), "{case}: tables");
    for ((name, want), (got_name, got)) in want.iter().zip(&got) {
        assert_eq!(name, got_name, "{case}");
        assert!(want == got, "{case}: table {name} differs after restore");
    }
}

fn no_token_in(case: &str, text: &str) {
    assert!(!text.contains(UCCA_TOKEN), "{case}: the token leaked");
}

#[tokio::test]
async fn every_fixture_backs_up_online_exactly_and_starts_no_export() {
    let w = World::new().await;
    let mut uuids = Vec::new();
    for (case, _) in CASES {
        let db = w.database(case, Some(case));
        uuids.push(w.serve(case, Arc::new(db)));
    }
    let names: Vec<String> = CASES.iter().map(|(c, _)| format!("\"{c}\"")).collect();
    let engine = w.engine(&names.join(", "), "export = \"online\"");
    let report = support::run(&engine, RunOptions::new(date())).await;
    no_token_in("report", &format!("{report:?}"));
    for ((case, lossless), uuid) in CASES.iter().zip(&uuids) {
        assert_eq!(
            w.sim.exports_started(uuid),
            0,
            "{case}: an export was started"
        );
        let dump = w.dump(&report, case).await;
        let source = w.dir.path().join(format!("{case}.sqlite"));
        assert_same_dump(case, &dump, &local_dump(&source));
        if *lossless {
            let export = std::fs::read(fixture(case, "export.sql")).unwrap();
            assert_same_dump(case, &dump, &export);
        }
        assert_restores_exactly(case, &dump, &source);
        let manifest = w.manifest(&report, case).await;
        assert_eq!(manifest.dump.export.as_deref(), Some("online"), "{case}");
        assert_eq!(
            manifest.dump.consistency,
            DumpConsistency::Snapshot,
            "{case}"
        );
        assert!(manifest.database.bookmark.is_some(), "{case}");
        assert_eq!(manifest.database.bookmark_after, None, "{case}");
        no_token_in(case, &String::from_utf8_lossy(&dump));
        no_token_in(case, &String::from_utf8_lossy(&manifest.to_json()));
    }
    // `numbers` is where wrangler's export loses data, and where the online read does not.
    let numbers = w.dump(&report, "numbers").await;
    let text = String::from_utf8_lossy(&numbers);
    assert!(text.contains("9223372036854775807"), "int64 max is exact");
}

/// A database built from SQL: 100,000 narrow rows, a `WITHOUT ROWID` table whose key has a
/// descending column and a collation, hostile values.
fn big_database(w: &World, name: &str) -> SqliteD1 {
    let db = w.database(name, None);
    db.with_connection(|c| {
        c.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
             INSERT INTO items SELECT i, CASE i % 5 WHEN 0 THEN 9007199254740993 + i
               WHEN 1 THEN 'row ' || i WHEN 2 THEN i * 1.0 WHEN 3 THEN X'00ff' || i ELSE NULL END
             FROM n;
             CREATE TABLE kv (scope TEXT COLLATE NOCASE, n INTEGER, v, PRIMARY KEY (n DESC, scope))
               WITHOUT ROWID;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 700)
             INSERT INTO kv SELECT CASE i % 3 WHEN 0 THEN 'App' WHEN 1 THEN 'b''q' ELSE 'a'
               || char(10) || '\\n' END, i % 50, -0.0 FROM n WHERE true
             ON CONFLICT DO NOTHING;
             CREATE TABLE hostile (id INTEGER PRIMARY KEY, t TEXT, u);
             INSERT INTO hostile (t, u) VALUES
               (CAST(X'6100620063' AS TEXT), CAST(X'00' AS TEXT)),
               (CAST(X'fffe41' AS TEXT), CAST(X'c328' AS TEXT)),
               ('é ☃ 😀', char(127) || char(9) || char(1)),
               ('line' || char(13) || char(10) || '\\r\\n', 'BEGIN TRANSACTION; COMMIT;'),
               ('', -9223372036854775808), (NULL, 1e308 * 10), (NULL, -1e308 * 10),
               ('x', 4.0), ('y', 0.30000000000000004), ('z', 5e-324);",
        )
        .unwrap();
    });
    db
}

#[tokio::test]
async fn a_hundred_thousand_rows_and_a_without_rowid_table_in_few_pages() {
    let w = World::new().await;
    let uuid = w.serve("big", Arc::new(big_database(&w, "big")));
    let engine = w.engine("\"big\"", "");
    let options = RunOptions::new(date()).export(ExportMode::Online);
    let report = support::run(&engine, options).await;
    let dump = w.dump(&report, "big").await;
    let source = w.dir.path().join("big.sqlite");
    assert_same_dump("big", &dump, &local_dump(&source));
    assert_restores_exactly("big", &dump, &source);
    assert_eq!(w.sim.exports_started(&uuid), 0);
    // Pages grow to about 1 MiB of answer: far fewer requests than rows.
    let queries = w.sim.queries(&uuid);
    assert!(queries < 40, "{queries} queries");
}

#[tokio::test]
async fn pages_refused_for_their_size_are_split() {
    let w = World::new().await;
    let db = w.database("wide-rows", None);
    db.with_connection(|c| {
        c.execute_batch(
            "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
             INSERT INTO docs SELECT i, printf('%.*c', 6000 + i * 100, 'x') FROM n;
             INSERT INTO docs VALUES (41, printf('%.*c', 100000, 'y') || char(10) || '\\n');
             INSERT INTO docs VALUES (42, 'narrow again');
             CREATE TABLE blobs (k TEXT PRIMARY KEY, b BLOB, n) WITHOUT ROWID;
             INSERT INTO blobs VALUES ('a', randomblob(90000), 1), ('b', X'00', 9007199254740993),
               ('c', zeroblob(70000), -0.0);",
        )
        .unwrap();
    });
    let uuid = w.serve("wide-rows", Arc::new(db));
    // Any answer over 32 KiB is refused: one row's hex is about 12–20 KB, and rows 41, 'a'
    // and 'c' are too wide for any page (read in pieces).
    w.sim.inject(&uuid, Fault::AnswerLimit(32 * 1024));
    let engine = w.engine("{ name = \"wide-rows\", export = \"online\" }", "");
    let report = support::run(&engine, RunOptions::new(date())).await;
    let dump = w.dump(&report, "wide-rows").await;
    let source = w.dir.path().join("wide-rows.sqlite");
    assert_same_dump("wide-rows", &dump, &local_dump(&source));
    assert_restores_exactly("wide-rows", &dump, &source);
    let notes = report.databases[0].notes.join("\n");
    assert!(notes.contains("split for their size"), "{notes}");
}

/// A database whose backup is cancelled at its `at`-th query.
#[derive(Debug)]
struct Cancelling {
    inner: Arc<SqliteD1>,
    at: u32,
    seen: AtomicU32,
    cancel: CancellationToken,
}

impl SimulatedDatabase for Cancelling {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<SimulatedRows>, String> {
        if self.seen.fetch_add(1, Ordering::SeqCst) == self.at {
            self.cancel.cancel();
        }
        self.inner.query(sql, params)
    }
    fn export(&self, options: &DumpOptions) -> Result<Bytes, String> {
        self.inner.export(options)
    }
    fn import(&self, sql: &[u8]) -> Result<u64, String> {
        self.inner.import(sql)
    }
    fn bookmark(&self) -> String {
        self.inner.bookmark()
    }
}

#[tokio::test]
async fn cancelling_mid_table_leaves_nothing_at_the_key() {
    let w = World::new().await;
    let db = w.database("cancelled", None);
    db.with_connection(|c| {
        c.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO items SELECT i, printf('%.*c', 300, 'v') FROM n;",
        )
        .unwrap();
    });
    let cancel = CancellationToken::new();
    w.serve(
        "cancelled",
        Arc::new(Cancelling {
            inner: Arc::new(db),
            at: 5,
            seen: AtomicU32::new(0),
            cancel: cancel.clone(),
        }),
    );
    let engine = w.engine("\"cancelled\"", "export = \"online\"");
    let report = engine
        .run(&RunOptions::new(date()), &(), &cancel)
        .await
        .unwrap();
    let db = &report.databases[0];
    assert_eq!(db.status, Status::Failed, "{report:#?}");
    assert!(w.sink.head(&db.key).await.unwrap().is_none());
    assert!(support::keys(w.sink.as_ref(), "d1/").await.is_empty());
}

/// A database that changes after `after` of its queries: another client writing while the
/// backup reads.
#[derive(Debug)]
struct Writer {
    inner: Arc<SqliteD1>,
    after: u32,
    seen: AtomicU32,
}

impl SimulatedDatabase for Writer {
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<SimulatedRows>, String> {
        if self.seen.fetch_add(1, Ordering::SeqCst) == self.after {
            self.inner
                .query("INSERT INTO items (v) VALUES ('written meanwhile')", &[])?;
        }
        self.inner.query(sql, params)
    }
    fn export(&self, options: &DumpOptions) -> Result<Bytes, String> {
        self.inner.export(options)
    }
    fn import(&self, sql: &[u8]) -> Result<u64, String> {
        self.inner.import(sql)
    }
    fn bookmark(&self) -> String {
        self.inner.bookmark()
    }
}

#[tokio::test]
async fn a_database_changing_between_pages_is_online_or_fails_under_require_snapshot() {
    let w = World::new().await;
    let db = w.database("busy", None);
    db.with_connection(|c| {
        c.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO items SELECT i, 'row ' || i FROM n;",
        )
        .unwrap();
    });
    let writer = Arc::new(Writer {
        inner: Arc::new(db),
        // The schema, the table's columns, then its first page: the write lands between
        // pages.
        after: 3,
        seen: AtomicU32::new(0),
    });
    w.serve("busy", writer.clone());
    let engine = w.engine("\"busy\"", "export = \"online\"");
    let report = support::run(&engine, RunOptions::new(date())).await;
    let manifest = w.manifest(&report, "busy").await;
    assert_eq!(manifest.dump.consistency, DumpConsistency::Online);
    let (before, after) = (
        manifest.database.bookmark.clone().unwrap(),
        manifest.database.bookmark_after.clone().unwrap(),
    );
    assert_ne!(before, after);
    let notes = report.databases[0].notes.join("\n");
    assert!(notes.contains("changed while it was read"), "{notes}");

    // The same under `require_snapshot`: the database fails and nothing is at the key; a
    // quiet database of the same run is backed up all the same.
    writer.seen.store(0, Ordering::SeqCst);
    let calm = w.database("calm", Some("basic"));
    w.serve("calm", Arc::new(calm));
    let strict = w.engine(
        "\"busy\", \"calm\"",
        "export = \"online\"\nrequire_snapshot = true",
    );
    let other_day = date().succ_opt().unwrap();
    let report = support::run(&strict, RunOptions::new(other_day).force(Force::Yes)).await;
    let db = report.databases.iter().find(|d| d.name == "busy").unwrap();
    assert_eq!(db.status, Status::Failed, "{report:#?}");
    let calm = report.databases.iter().find(|d| d.name == "calm").unwrap();
    assert_eq!(calm.status, Status::Ok, "{report:#?}");
    let error = format!("{:?}", db.error);
    assert!(error.contains("require_snapshot"), "{error}");
    assert!(
        w.sink.head(&db.key).await.unwrap().is_none(),
        "something was left at {}",
        db.key
    );
}

#[tokio::test]
async fn a_429_storm_and_a_dropped_connection_mid_table_resume_at_the_page() {
    let w = World::new().await;
    let path = w.dir.path().join("stormy.sqlite");
    let db = w.database("stormy", None);
    db.with_connection(|c| {
        c.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, v);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO items SELECT i, 'row ' || i FROM n;",
        )
        .unwrap();
    });
    let uuid = w.serve("stormy", Arc::new(db));
    let clean = {
        let engine = w.engine("\"stormy\"", "export = \"online\"");
        let report = support::run(&engine, RunOptions::new(date())).await;
        assert_eq!(report.databases[0].status, Status::Ok);
        w.sim.queries(&uuid)
    };
    for (i, fault) in [
        Fault::QueryRateLimited {
            after: clean + 3,
            count: 6,
        },
        Fault::QueryDropped {
            after: 2 * clean + 6 + 3,
            count: 2,
        },
    ]
    .into_iter()
    .enumerate()
    {
        w.sim.inject(&uuid, fault.clone());
        let before = w.sim.queries(&uuid);
        let engine = w.engine("\"stormy\"", "export = \"online\"");
        let day = date()
            .checked_add_days(d1_backup_core::chrono::Days::new(i as u64 + 1))
            .unwrap();
        let report = support::run(&engine, RunOptions::new(day)).await;
        let dump = w.dump(&report, "stormy").await;
        assert_same_dump(&format!("{fault:?}"), &dump, &local_dump(&path));
        // Each refused request was asked once more; no page, and no table, was read twice.
        let extra = match fault {
            Fault::QueryRateLimited { count, .. } | Fault::QueryDropped { count, .. } => count,
            _ => 0,
        };
        assert_eq!(w.sim.queries(&uuid) - before, clean + extra, "{fault:?}");
        assert_eq!(w.sim.exports_started(&uuid), 0);
        no_token_in("stormy", &format!("{report:?}"));
    }
}

#[tokio::test]
async fn auto_reads_online_above_the_size_threshold_and_exports_below_it() {
    let w = World::new().await;
    // The simulator reports a backed database's size as 8,192 bytes.
    let uuid = w.serve("small", Arc::new(w.database("small", Some("basic"))));
    let engine = w.engine("\"small\"", "export = \"auto\"");
    let report = support::run(&engine, RunOptions::new(date())).await;
    let manifest = w.manifest(&report, "small").await;
    assert_eq!(manifest.dump.export.as_deref(), Some("d1"));
    let reason = manifest.dump.export_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("auto:"), "{reason}");
    assert_eq!(w.sim.exports_started(&uuid), 1);

    let engine = w.engine("\"small\"", "export = \"auto\"\nonline_above_mib = 0");
    let next_day = date().succ_opt().unwrap();
    let report = support::run(&engine, RunOptions::new(next_day)).await;
    let manifest = w.manifest(&report, "small").await;
    assert_eq!(manifest.dump.export.as_deref(), Some("online"));
    assert!(manifest.dump.export_reason.is_some());
    assert_eq!(w.sim.exports_started(&uuid), 1, "no second export");
    let dump = w.dump(&report, "small").await;
    assert_same_dump(
        "small",
        &dump,
        &std::fs::read(fixture("basic", "export.sql")).unwrap(),
    );
}

/// `verify --against-live` on an online backup of `numbers` (where D1's export loses 19
/// cells): restored and compared table by table with the live database, no difference.
#[tokio::test]
async fn verify_against_live_finds_an_online_backup_identical() {
    let w = World::new().await;
    w.serve("numbers", Arc::new(w.database("numbers", Some("numbers"))));
    let engine = w.engine("\"numbers\"", "export = \"online\"");
    let report = support::run(&engine, RunOptions::new(date())).await;
    assert_eq!(report.databases[0].status, Status::Ok);
    let scratch = tempfile::tempdir().unwrap();
    let mut options = d1_backup_core::VerifyOptions::new(scratch.path()).against_live(true);
    options.date = Some(date());
    let results = engine.verify(&options).await.unwrap();
    assert_eq!(results.len(), 1);
    let v = &results[0];
    assert!(v.ok, "{v:#?}");
    let live = v.live.as_ref().unwrap();
    assert!(!live.moved_on);
    assert!(live.findings.is_empty(), "{:#?}", live.findings);
}

/// `auto` below its size threshold takes D1's export and scans it as it streams: `numbers`,
/// where D1's export rounds integers and turns reals into integers, is read again online into
/// the same key (still one export), so the stored dump is exact; `basic`, which D1 exports
/// losslessly, keeps D1's dump.
#[tokio::test]
async fn auto_reads_again_online_what_d1_exported_lossily() {
    let w = World::new().await;
    let numbers = w.serve("numbers", Arc::new(w.database("numbers", Some("numbers"))));
    let basic = w.serve("basic", Arc::new(w.database("basic", Some("basic"))));
    let engine = w.engine("\"numbers\", \"basic\"", "export = \"auto\"");
    let report = support::run(&engine, RunOptions::new(date())).await;
    assert!(
        report.databases.iter().all(|d| d.status == Status::Ok),
        "{report:#?}"
    );

    assert_eq!(w.sim.exports_started(&numbers), 1, "one export, never two");
    let manifest = w.manifest(&report, "numbers").await;
    assert_eq!(manifest.dump.export.as_deref(), Some("online"));
    let reason = manifest.dump.export_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("lossy values in") && reason.contains("ints"),
        "{reason}"
    );
    let dump = w.dump(&report, "numbers").await;
    let source = w.dir.path().join("numbers.sqlite");
    assert_same_dump("numbers", &dump, &local_dump(&source));
    assert_restores_exactly("numbers", &dump, &source);

    assert_eq!(w.sim.exports_started(&basic), 1);
    let manifest = w.manifest(&report, "basic").await;
    assert_eq!(manifest.dump.export.as_deref(), Some("d1"));
    let dump = w.dump(&report, "basic").await;
    let export = std::fs::read(fixture("basic", "export.sql")).unwrap();
    assert_same_dump("basic", &dump, &export);
}
