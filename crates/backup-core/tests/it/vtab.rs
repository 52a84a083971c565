//! D1 databases with virtual tables (FTS5), which D1's export refuses: exported table by
//! table, the virtual tables and the rest appended through the query API, restored whole.
//! Real SQLite behind the simulated D1 (`testing::SqliteD1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use d1_backup_core::testing::SqliteD1;
use d1_backup_core::{
    DumpConsistency, Manifest, RunOptions, RunReport, Status, manifest_key, restore_dump,
};
use d1_export::testing::{D1Simulator, Fault, SimulatedDatabase, check_d1_sql};
use d1_export::{D1Client, DumpOptions, ImportOptions};
use r2_sink::{BackupSink, ObjectStoreSink};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::support::*;

const NAME: &str = "search-db";

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wrangler")
        .join(case)
        .join("local.sqlite")
}

/// A SQLite file in `dir`: a copy of a fixture, or built from `sql`.
fn database(dir: &Path, file: &str, source: Source<'_>) -> Arc<SqliteD1> {
    let path = dir.join(file);
    match source {
        Source::Fixture(case) => {
            std::fs::copy(fixture(case), &path).unwrap();
        }
        Source::Sql(sql) => Connection::open(&path).unwrap().execute_batch(sql).unwrap(),
    }
    Arc::new(SqliteD1::open(&path).unwrap())
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Fixture(&'a str),
    Sql(&'a str),
}

/// One backup of `db` (configured by id, so no list call) into a memory sink.
struct Backup {
    sim: D1Simulator,
    uuid: String,
    sink: Arc<dyn BackupSink>,
    report: RunReport,
    /// Present when the backup succeeded.
    manifest: Option<Manifest>,
    manifest_json: serde_json::Value,
    dump: Vec<u8>,
}

async fn back_up(db: Option<Arc<SqliteD1>>, fixed_dump: Option<(&[u8], Fault)>) -> Backup {
    let sim = D1Simulator::start().await;
    sim.add_account(UCCA, UCCA_TOKEN);
    let uuid = match (db, fixed_dump) {
        (Some(db), _) => sim.add_backed_database(UCCA, NAME, db),
        (None, Some((dump, fault))) => {
            let uuid = sim.add_database(UCCA, NAME, dump.to_vec());
            sim.inject(&uuid, fault);
            uuid
        }
        (None, None) => unreachable!("a database is needed"),
    };
    let text = format!(
        r#"
[cloudflare]
api_base_url = "{base}"
requests_per_five_minutes = 1000000

[sink]
kind = "fs"
path = "/nonexistent-unused"

[retention]
keep_days = 30

[run]
poll_interval_ms = 0

[[accounts]]
name = "ucca"
account_id = "{UCCA}"
token_env = "CF_API_TOKEN"
prefix = "d1"
databases = [{{ name = "{NAME}", id = "{uuid}" }}]
"#,
        base = sim.base_url()
    );
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let report = run(&engine(&text, Some(sink.clone())), RunOptions::new(date())).await;
    let (manifest_json, dump) = if report.databases[0].status == Status::Ok {
        let json = read(sink.as_ref(), &manifest_key("d1", date(), NAME)).await;
        let dump = read(sink.as_ref(), &report.databases[0].key).await;
        (serde_json::from_slice(&json).unwrap(), dump)
    } else {
        (serde_json::Value::Null, Vec::new())
    };
    let manifest = (!manifest_json.is_null())
        .then(|| Manifest::from_json(manifest_json.to_string().as_bytes()).unwrap());
    Backup {
        sim,
        uuid,
        sink,
        report,
        manifest,
        manifest_json,
        dump,
    }
}

/// The dump restored with `restore_dump` into a fresh SQLite file.
fn restored(dir: &Path, dump: &[u8]) -> Connection {
    let conn = Connection::open(dir.join("restored.sqlite")).unwrap();
    restore_dump(dump, &conn).unwrap();
    conn
}

fn rows(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut statement = conn.prepare(sql).unwrap();
    let width = statement.column_count();
    statement
        .query_map([], |row| {
            (0..width).map(|i| row.get::<_, Value>(i)).collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn search(conn: &Connection, table: &str, query: &str) -> Vec<i64> {
    let mut statement = conn
        .prepare(&format!(
            "SELECT rowid FROM \"{table}\" WHERE \"{table}\" MATCH ?1 ORDER BY rowid"
        ))
        .unwrap();
    statement
        .query_map([query], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn source(db: &SqliteD1) -> Connection {
    Connection::open(db.path()).unwrap()
}

#[tokio::test]
async fn an_fts5_database_is_exported_per_table_and_restores_with_search_and_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "fts5.sqlite", Source::Fixture("fts5"));
    let backup = back_up(Some(db.clone()), None).await;
    let entry = &backup.report.databases[0];
    assert_eq!(entry.status, Status::Ok, "{:#?}", backup.report);
    assert_eq!(entry.exports, 1);
    assert!(entry.bookmark.is_some());
    assert!(
        entry.notes.iter().any(|n| n.contains(
            "the database has virtual tables (articles_fts, notes_fts), which D1 cannot export"
        )),
        "{:?}",
        entry.notes
    );

    // The manifest says the dump is per table and names what was appended; it vouches for
    // the whole object, tail included.
    let dump_manifest = &backup.manifest.as_ref().unwrap().dump;
    assert_eq!(dump_manifest.consistency, DumpConsistency::PerTable);
    assert_eq!(dump_manifest.virtual_tables, ["articles_fts", "notes_fts"]);
    assert_eq!(backup.manifest_json["dump"]["consistency"], "per-table");
    assert_eq!(dump_manifest.bytes, backup.dump.len() as u64);
    assert_eq!(dump_manifest.sha256, sha256_hex(&backup.dump));
    assert_eq!(entry.sha256.as_deref(), Some(dump_manifest.sha256.as_str()));

    // D1's format: one statement per line here, joined by single newlines, none at the end.
    let sql = String::from_utf8(backup.dump.clone()).unwrap();
    assert!(sql.starts_with("PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE articles"));
    assert!(!sql.ends_with('\n') && !sql.contains("\n\n"), "{sql}");
    assert!(!sql.contains("_cf_METADATA") && !sql.contains("notes_fts_content"));
    let tail = &sql[sql.find("CREATE VIRTUAL TABLE").unwrap()..];
    assert!(tail.starts_with("CREATE VIRTUAL TABLE articles_fts USING fts5("));
    assert!(tail.contains(
        "\nINSERT INTO \"articles_fts\" (\"articles_fts\") VALUES('rebuild');\nCREATE VIRTUAL TABLE notes_fts"
    ));
    assert!(tail.contains(
        "\nINSERT INTO \"notes_fts\" (rowid,\"note\",\"tag\") VALUES(3,'l''export échoue avec les tables virtuelles','fr');"
    ));
    assert!(tail.ends_with(
        "INSERT INTO articles_fts(rowid, title, body) VALUES (NEW.id, NEW.title, NEW.body);\nEND;"
    ));
    // D1's import rules (no transaction control, no statement over 100 KB) hold.
    check_d1_sql(&backup.dump).unwrap();

    // The schema query, the export (start, two active polls, the complete poll), the
    // download, one config read per FTS5 table, and notes_fts's columns and one page.
    assert_eq!(backup.sim.exports_started(&backup.uuid), 1);
    assert_eq!(backup.sim.queries(&backup.uuid), 5);
    assert_eq!(backup.sim.requests(), 10);

    let restored = restored(dir.path(), &backup.dump);
    let original = source(&db);
    for table in ["articles", "comments"] {
        let all = format!("SELECT * FROM {table} ORDER BY rowid");
        assert_eq!(rows(&restored, &all), rows(&original, &all), "{table}");
    }
    let all_notes = "SELECT rowid, note, tag FROM notes_fts ORDER BY rowid";
    assert_eq!(rows(&restored, all_notes), rows(&original, all_notes));
    for (table, query) in [
        ("articles_fts", "restore*"),
        ("articles_fts", "sauvegarde"),
        ("articles_fts", "cafe OR resume"),
        ("articles_fts", "checkpoints"),
        ("articles_fts", "title:sqlite"),
        ("notes_fts", "token OR backups"),
        ("notes_fts", "virtuelles"),
    ] {
        let expected = search(&original, table, query);
        assert!(
            !expected.is_empty(),
            "{query} finds something in the source"
        );
        assert_eq!(
            search(&restored, table, query),
            expected,
            "{table} MATCH {query}"
        );
    }
    restored
        .execute_batch(
            "INSERT INTO articles_fts(articles_fts) VALUES('integrity-check');
             INSERT INTO notes_fts(notes_fts) VALUES('integrity-check');",
        )
        .unwrap();
    // The triggers came back and keep the external-content index in sync.
    restored
        .execute_batch(
            "INSERT INTO articles (id, title, body) VALUES (8, 'Snapshots', 'Per-table dumps and bookmarks.');
             UPDATE articles SET body = 'Pages and B-trees.' WHERE id = 2;",
        )
        .unwrap();
    assert_eq!(search(&restored, "articles_fts", "bookmarks"), [8]);
    assert_eq!(
        search(&restored, "articles_fts", "checkpoints"),
        Vec::<i64>::new()
    );
}

#[tokio::test]
async fn the_per_table_dump_imports_into_d1() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "fts5.sqlite", Source::Fixture("fts5"));
    let backup = back_up(Some(db.clone()), None).await;
    assert_eq!(backup.report.databases[0].status, Status::Ok);
    let target = database(dir.path(), "target.sqlite", Source::Sql(""));
    let target_uuid = backup
        .sim
        .add_backed_database(UCCA, "target-db", target.clone());
    let client = D1Client::builder(UCCA_TOKEN.into())
        .base_url(backup.sim.base_url())
        .build()
        .unwrap();
    let mut options = ImportOptions::default();
    options.poll_interval = std::time::Duration::ZERO;
    client
        .import(
            UCCA,
            &target_uuid,
            &backup.dump.clone().into(),
            &options,
            &|_| {},
        )
        .await
        .unwrap();
    let (imported, original) = (source(&target), source(&db));
    for sql in [
        "SELECT * FROM articles ORDER BY id",
        "SELECT * FROM comments ORDER BY id",
        "SELECT rowid, note, tag FROM notes_fts ORDER BY rowid",
    ] {
        assert_eq!(rows(&imported, sql), rows(&original, sql), "{sql}");
    }
    assert_eq!(search(&imported, "articles_fts", "sauvegarde"), [3]);
}

#[tokio::test]
async fn a_database_without_virtual_tables_is_exported_whole_after_one_query() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "basic.sqlite", Source::Fixture("basic"));
    let backup = back_up(Some(db.clone()), None).await;
    let entry = &backup.report.databases[0];
    assert_eq!(entry.status, Status::Ok, "{:#?}", backup.report);
    assert!(entry.notes.is_empty(), "{:?}", entry.notes);
    assert_eq!(
        backup.manifest.as_ref().unwrap().dump.consistency,
        DumpConsistency::Snapshot
    );
    assert!(
        backup
            .manifest
            .as_ref()
            .unwrap()
            .dump
            .virtual_tables
            .is_empty()
    );
    // Both fields are left out, so the manifest reads as before.
    let dump_json = backup.manifest_json["dump"].as_object().unwrap();
    assert!(!dump_json.contains_key("consistency") && !dump_json.contains_key("virtual_tables"));
    // Exactly D1's whole export.
    let whole = db.export(&DumpOptions::default()).unwrap();
    assert_eq!(backup.dump, whole);
    // One schema query, then the export (start, two active polls, complete) and download.
    assert_eq!(backup.sim.queries(&backup.uuid), 1);
    assert_eq!(backup.sim.exports_started(&backup.uuid), 1);
    assert_eq!(backup.sim.requests(), 6);
}

/// Own-content FTS5 rows whose values only `quote()` carries exactly (quotes, newlines, CR,
/// big and negative rowids, blobs, reals), FTS5 settings, paging over several pages,
/// `sqlite_sequence`, a contentless table, an R*Tree, and a trigger on a view (after the view).
const TRICKY: &str = r#"
CREATE TABLE docs (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL);
INSERT INTO docs (title) VALUES ('one'), ('two'), ('three');
DELETE FROM docs WHERE id = 3;
CREATE VIRTUAL TABLE notes USING fts5(body, tag UNINDEXED, meta UNINDEXED, tokenize = 'porter');
INSERT INTO notes(notes, rank) VALUES('pgsz', 8000);
INSERT INTO notes(notes, rank) VALUES('rank', 'bm25(10.0, 5.0, 1.0)');
INSERT INTO notes (rowid, body, tag, meta) VALUES
  (9223372036854775807, 'it''s "quoted" -- not a comment; really', 'a
b\nc', 1.5),
  (-9007199254740993, 'carriage' || char(13) || char(10) || 'return', NULL, X'00ff'),
  (9007199254740993, 'emoji 😀 and	tab', 42, 9007199254740993),
  (1, 'running runners run', 'x', 0.1);
CREATE VIRTUAL TABLE bulk USING fts5(body);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
  INSERT INTO bulk (rowid, body) SELECT i * 3, 'row ' || i || ' word' || (i % 7) FROM n;
CREATE VIRTUAL TABLE blind USING fts5(x, content='');
INSERT INTO blind (rowid, x) VALUES (1, 'gone after restore');
CREATE VIRTUAL TABLE geo USING rtree(id, min_x, max_x);
INSERT INTO geo VALUES (7, -1.5, 2.25), (9, 0.1, 1e10);
CREATE VIEW titles AS SELECT id, title FROM docs;
CREATE TRIGGER titles_insert INSTEAD OF INSERT ON titles BEGIN
  INSERT INTO docs (title) VALUES (NEW.title);
END;
CREATE INDEX docs_title ON docs (title);
"#;

#[tokio::test]
async fn own_content_values_come_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(dir.path(), "tricky.sqlite", Source::Sql(TRICKY));
    let backup = back_up(Some(db.clone()), None).await;
    let entry = &backup.report.databases[0];
    assert_eq!(entry.status, Status::Ok, "{:#?}", backup.report);
    assert_eq!(
        backup.manifest.as_ref().unwrap().dump.virtual_tables,
        ["notes", "bulk", "blind", "geo"]
    );
    let sql = String::from_utf8(backup.dump.clone()).unwrap();
    assert!(sql.contains(
        "\nDELETE FROM sqlite_sequence;\nINSERT INTO \"sqlite_sequence\" (\"name\",\"seq\") VALUES('docs',3);"
    ));
    assert!(sql.contains("\nINSERT INTO \"notes\" (\"notes\",rank) VALUES('pgsz',8000);"));
    // Line breaks in values are written as char(10)/char(13): every row is one line, and a
    // reader that splits lines (and drops a CR before LF) cannot change them.
    assert!(sql.contains(
        "\nINSERT INTO \"notes\" (rowid,\"body\",\"tag\",\"meta\") VALUES(-9007199254740993,'carriage'||char(13)||''||char(10)||'return',NULL,X'00FF');\n"
    ));
    assert!(sql.contains(",'a'||char(10)||'b\\nc',1.5);"));
    assert!(sql.lines().all(|line| !line.contains('\r')));
    // The view comes before the trigger on it, the index first.
    let (index, view, trigger) = (
        sql.find("CREATE INDEX docs_title").unwrap(),
        sql.find("CREATE VIEW titles").unwrap(),
        sql.find("CREATE TRIGGER titles_insert").unwrap(),
    );
    assert!(index < view && view < trigger);
    // Other modules: their declared columns, no rowid.
    assert!(
        sql.contains("\nINSERT INTO \"geo\" (\"id\",\"min_x\",\"max_x\") VALUES(7,-1.5,2.25);")
    );
    // The schema, sqlite_sequence, then per FTS5 table its config, columns and pages: `notes`
    // one page, `bulk`'s 600 rows two (256, then up to 512), contentless `blind` none; `geo`
    // its columns and one page.
    assert_eq!(backup.sim.queries(&backup.uuid), 1 + 1 + 3 + 4 + 1 + 2);

    let restored = restored(dir.path(), &backup.dump);
    let original = source(&db);
    for sql in [
        "SELECT rowid, quote(body), quote(tag), quote(meta), typeof(meta) FROM notes ORDER BY rowid",
        "SELECT rowid, body FROM bulk ORDER BY rowid",
        "SELECT k, v FROM notes_config ORDER BY k",
        "SELECT * FROM sqlite_sequence",
        "SELECT * FROM docs ORDER BY id",
        "SELECT * FROM geo ORDER BY id",
    ] {
        assert_eq!(rows(&restored, sql), rows(&original, sql), "{sql}");
    }
    assert_eq!(
        rows(&restored, "SELECT count(*) FROM bulk")[0][0],
        Value::Integer(600)
    );
    for (table, query) in [
        ("notes", "run"),
        ("notes", "quoted"),
        ("notes", "return"),
        ("bulk", "word3"),
    ] {
        let expected = search(&original, table, query);
        assert!(!expected.is_empty(), "{query}");
        assert_eq!(
            search(&restored, table, query),
            expected,
            "{table} MATCH {query}"
        );
    }
    // A contentless table keeps nothing readable: it comes back, empty.
    assert!(search(&restored, "blind", "gone").is_empty());
    // The trigger on the view works, and AUTOINCREMENT continues after the old maximum.
    restored
        .execute("INSERT INTO titles (title) VALUES ('four')", [])
        .unwrap();
    assert_eq!(
        rows(&restored, "SELECT max(id) FROM docs")[0][0],
        Value::Integer(4)
    );
}

#[tokio::test]
async fn a_database_of_virtual_tables_only_needs_no_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(
        dir.path(),
        "only.sqlite",
        Source::Sql(
            "CREATE VIRTUAL TABLE t USING fts5(a); INSERT INTO t (a) VALUES ('hello world');",
        ),
    );
    let backup = back_up(Some(db), None).await;
    let entry = &backup.report.databases[0];
    assert_eq!(entry.status, Status::Ok, "{:#?}", backup.report);
    assert_eq!(entry.exports, 0);
    assert_eq!(entry.bookmark, None);
    assert_eq!(backup.sim.exports_started(&backup.uuid), 0);
    assert_eq!(
        String::from_utf8(backup.dump.clone()).unwrap(),
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE VIRTUAL TABLE t USING fts5(a);\nINSERT INTO \"t\" (rowid,\"a\") VALUES(1,'hello world');"
    );
    let restored = restored(dir.path(), &backup.dump);
    assert_eq!(search(&restored, "t", "hello"), [1]);
}

/// A token that may export but not query: the whole export is tried, and D1's refusal is
/// explained with what would fix it.
#[tokio::test]
async fn a_refused_schema_query_falls_back_to_the_export_and_explains_a_refusal() {
    let refusal = "D1 Export error: cannot export databases with Virtual Tables (fts5)";
    let backup = back_up(
        None,
        Some((
            b"PRAGMA defer_foreign_keys=TRUE;",
            Fault::ExportError(refusal.to_owned()),
        )),
    )
    .await;
    let entry = &backup.report.databases[0];
    assert_eq!(entry.status, Status::Failed);
    let error = entry.error.as_deref().unwrap_or_default();
    assert!(error.contains("Virtual Tables (fts5)"), "{error}");
    assert!(
        error.contains("the schema could not be read through the query API"),
        "{error}"
    );
    assert_eq!(backup.sim.exports_started(&backup.uuid), 1);
}

/// The local dumper writes virtual tables itself, inside one read transaction: the manifest
/// names them and stays a snapshot.
#[tokio::test]
async fn a_local_database_with_virtual_tables_names_them_in_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("fts5"), dir.path().join("fts5.sqlite")).unwrap();
    std::fs::copy(fixture("basic"), dir.path().join("basic.sqlite")).unwrap();
    let text = "[sink]\nkind = \"fs\"\npath = \"unused\"\n\n[[accounts]]\nname = \"local\"\nprefix = \"local\"\n\
                databases = [{ name = \"fts5\", sqlite = \"fts5.sqlite\" }, { name = \"basic\", sqlite = \"basic.sqlite\" }]\n";
    let config =
        d1_backup_core::Config::from_toml(text, &dir.path().join("d1-backup.toml")).unwrap();
    let secrets = d1_backup_core::Secrets::resolve(&config, Path::new("x"), |_| None).unwrap();
    let sink: Arc<dyn BackupSink> = Arc::new(ObjectStoreSink::memory());
    let engine = d1_backup_core::Engine::builder(config, secrets)
        .sink(sink.clone())
        .build()
        .unwrap();
    let report = run(&engine, RunOptions::new(date())).await;
    assert!(report.succeeded(), "{report:#?}");
    let manifest = |name: &str| {
        let sink = sink.clone();
        let key = manifest_key("local", date(), name);
        async move { Manifest::from_json(&read(sink.as_ref(), &key).await).unwrap() }
    };
    let fts5 = manifest("fts5").await;
    assert_eq!(fts5.dump.consistency, DumpConsistency::Snapshot);
    assert_eq!(fts5.dump.virtual_tables, ["articles_fts", "notes_fts"]);
    let basic = manifest("basic").await;
    assert!(basic.dump.virtual_tables.is_empty());
    assert!(report.databases.iter().all(|d| d.notes.is_empty()));
}

/// A virtual table that cannot be read (its module is missing) fails the backup after the
/// export: the upload is aborted, nothing is left at the key, and the error says why.
#[tokio::test]
async fn a_virtual_table_that_cannot_be_read_fails_the_backup_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = database(
        dir.path(),
        "broken.sqlite",
        Source::Sql(
            "CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);
             PRAGMA writable_schema = ON;
             INSERT INTO sqlite_schema (type, name, tbl_name, rootpage, sql)
               VALUES ('table', 'x', 'x', 0, 'CREATE VIRTUAL TABLE x USING nosuchmodule(a)');
             PRAGMA writable_schema = OFF;",
        ),
    );
    let backup = back_up(Some(db), None).await;
    let entry = &backup.report.databases[0];
    assert_eq!(entry.status, Status::Failed);
    let error = entry.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("reading the virtual tables through the query API failed")
            && error.contains("nosuchmodule"),
        "{error}"
    );
    // SQL errors are not worth a second export.
    assert_eq!(entry.exports, 1);
    assert!(backup.manifest.is_none());
    assert_eq!(
        keys(backup.sink.as_ref(), "d1/").await,
        Vec::<String>::new()
    );
}
