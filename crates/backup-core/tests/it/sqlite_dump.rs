//! `sqlite::dump_sqlite` against the wrangler fixtures in `tests/fixtures/wrangler/<case>/`:
//! byte-identical to wrangler 4.164's `export*.sql` where those restore exactly, and restoring
//! every case to exactly the values in `expected.json`.

use std::path::{Path, PathBuf};

use d1_backup_core::sqlite::{SqliteDumpError, SqliteDumpOptions, SqliteDumpStats, dump_sqlite};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrangler")
}

fn cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("local.sqlite").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "fixtures missing: {cases:?}");
    cases
}

/// A private copy of a case's database, so that opening it never touches the fixture.
struct Copy {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn copy_db(case: &str) -> Copy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.sqlite");
    std::fs::copy(fixtures().join(case).join("local.sqlite"), &path).unwrap();
    Copy { _dir: dir, path }
}

fn dump(path: &Path, options: &SqliteDumpOptions) -> (Vec<u8>, SqliteDumpStats) {
    let mut out = Vec::new();
    let stats = dump_sqlite(path, options, &mut out)
        .unwrap_or_else(|e| panic!("dump of {} failed: {e}", path.display()));
    assert_eq!(stats.bytes, out.len() as u64);
    (out, stats)
}

fn options(f: impl FnOnce(&mut SqliteDumpOptions)) -> SqliteDumpOptions {
    let mut o = SqliteDumpOptions::default();
    f(&mut o);
    o
}

fn expected(case: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(case).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The `lossy in wrangler 4.164.0: yes/no` line of the case's notes.
fn lossy_in_wrangler(case: &str) -> bool {
    let notes = std::fs::read_to_string(fixtures().join(case).join("notes.md")).unwrap();
    let line = notes
        .lines()
        .find(|l| l.starts_with("lossy in wrangler 4.164.0:"))
        .unwrap_or_else(|| panic!("{case}: no lossy line"));
    line.contains(": yes")
}

/// `<name>` of `export-table-<name>.sql` → the real name (wrangler's file name mapping).
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn names(expected: &Value) -> Vec<String> {
    let tables = expected["tables"].as_array().unwrap().iter();
    let objects = expected["objects"].as_array().unwrap().iter();
    tables
        .chain(objects)
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every reference export of a case (4.164.0 only) with the options that reproduce it.
fn reference_exports(case: &str) -> Vec<(String, SqliteDumpOptions)> {
    let mut exports = vec![
        ("export.sql".to_owned(), SqliteDumpOptions::default()),
        (
            "export-no-data.sql".to_owned(),
            options(|o| o.no_data = true),
        ),
        (
            "export-no-schema.sql".to_owned(),
            options(|o| o.no_schema = true),
        ),
    ];
    let names = names(&expected(case));
    for entry in std::fs::read_dir(fixtures().join(case)).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(safe) = file
            .strip_prefix("export-table-")
            .and_then(|f| f.strip_suffix(".sql"))
        else {
            continue;
        };
        if safe.ends_with("-wrangler-4.86") {
            continue;
        }
        let name = names
            .iter()
            .find(|n| safe_name(n) == safe)
            .cloned()
            // An unknown name (the `empty` case names a dropped table).
            .unwrap_or_else(|| safe.to_owned());
        exports.push((file, options(|o| o.tables = vec![name])));
    }
    exports
        .into_iter()
        .filter(|(file, _)| fixtures().join(case).join(file).is_file())
        .collect()
}

#[test]
fn sqlite_dump_is_byte_identical_where_wrangler_is_lossless() {
    let mut compared = Vec::new();
    for case in cases() {
        let db = copy_db(&case);
        let lossy = lossy_in_wrangler(&case);
        for (file, opts) in reference_exports(&case) {
            let want = std::fs::read(fixtures().join(&case).join(&file)).unwrap();
            let (got, stats) = dump(&db.path, &opts);
            if !lossy {
                assert_eq!(stats.lossless_rewrites, 0, "{case}/{file}");
            }
            // In a lossy case, an export in which no value needed a lossless form is one that
            // wrangler wrote losslessly (its `--no-data` file, a `--table` file of a clean table).
            if !lossy || stats.lossless_rewrites == 0 {
                assert!(
                    got == want,
                    "{case}/{file} differs from wrangler's:\n--- ours\n{}\n--- wrangler\n{}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
                compared.push(format!("{case}/{file}"));
            } else {
                assert_only_values_differ(&case, &file, &got, &want);
            }
        }
    }
    for must in [
        "basic/export.sql",
        "quoting/export-table-odd__name__here.sql",
        "schema/export-table-invoice_totals.sql",
        "trigger-on-view/export.sql",
        "wide/export.sql",
        "blobs/export.sql",
        "empty/export-table-scratch.sql",
        "numbers/export-no-data.sql",
        "fts5/export-table-articles.sql",
        "fts5/export-table-notes_fts_content.sql",
    ] {
        assert!(compared.iter().any(|c| c == must), "{must} not compared");
    }
}

/// A lossy case's dump has wrangler's statements, only with some INSERT values written
/// differently.
fn assert_only_values_differ(case: &str, file: &str, got: &[u8], want: &[u8]) {
    let got = String::from_utf8_lossy(got);
    let want = String::from_utf8_lossy(want);
    let (got, want): (Vec<&str>, Vec<&str>) =
        (got.split('\n').collect(), want.split('\n').collect());
    assert_eq!(got.len(), want.len(), "{case}/{file}: statement count");
    let mut differing = 0;
    for (g, w) in got.iter().zip(&want) {
        if g != w {
            let prefix = |s: &str| s.split(" VALUES(").next().unwrap_or("").to_owned();
            assert!(g.starts_with("INSERT INTO "), "{case}/{file}: {g}");
            assert_eq!(prefix(g), prefix(w), "{case}/{file}");
            differing += 1;
        }
    }
    assert!(differing > 0, "{case}/{file}: lossy but identical");
}

#[test]
fn sqlite_dump_restores_every_case_exactly() {
    for case in cases() {
        let db = copy_db(&case);
        let (sql, stats) = dump(&db.path, &SqliteDumpOptions::default());
        let sql = String::from_utf8(sql).unwrap();
        let restored = Connection::open_in_memory().unwrap();
        // As the sqlite3 CLI does (rusqlite's bundled SQLite enables them by default): the
        // `schema` case, like wrangler's export, creates a child table before its parent.
        restored.execute_batch("PRAGMA foreign_keys=OFF;").unwrap();
        let result = restored.execute_batch(&sql);
        if case == "trigger-on-view" {
            // Kept byte-identical to wrangler, whose dump puts the INSTEAD OF trigger before
            // its view: the restore stops there, after every row is in.
            let err = result.unwrap_err().to_string();
            assert!(err.contains("people_with_team"), "{err}");
        } else {
            result.unwrap_or_else(|e| panic!("{case}: restore failed: {e}"));
            check_objects(&case, &restored);
        }
        check_tables(&case, &restored);
        if lossy_in_wrangler(&case) {
            assert!(stats.lossless_rewrites > 0 || case == "fts5", "{case}");
        }
        // The 64 KiB blob's INSERT (131,193 bytes) is the only statement D1 cannot import.
        let oversized = u64::from(case == "blobs");
        assert_eq!(stats.oversized_statements, oversized, "{case}");
    }
}

#[test]
fn sqlite_dump_has_no_transaction_and_starts_with_the_pragma() {
    for case in cases() {
        let db = copy_db(&case);
        for opts in [
            SqliteDumpOptions::default(),
            options(|o| o.no_data = true),
            options(|o| o.no_schema = true),
        ] {
            let (sql, _) = dump(&db.path, &opts);
            let sql = String::from_utf8(sql).unwrap();
            assert!(sql.starts_with("PRAGMA defer_foreign_keys=TRUE;"), "{case}");
            assert!(!sql.ends_with('\n'), "{case}");
            for statement in sql.split(";\n") {
                let upper = statement.trim_start().to_ascii_uppercase();
                for word in ["BEGIN", "COMMIT", "END TRANSACTION", "ROLLBACK"] {
                    assert!(!upper.starts_with(word), "{case}: {statement}");
                }
            }
        }
    }
}

#[test]
fn sqlite_dump_leaves_the_database_file_unchanged() {
    for case in ["basic", "fts5", "schema"] {
        let db = copy_db(case);
        let before = sha256(&db.path);
        dump(&db.path, &SqliteDumpOptions::default());
        assert_eq!(sha256(&db.path), before, "{case}");
        assert_eq!(
            sha256(&db.path),
            sha256(&fixtures().join(case).join("local.sqlite"))
        );
    }
}

#[test]
fn sqlite_dump_reads_committed_data_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.sqlite");
    let writer = Connection::open(&path).unwrap();
    writer
        .execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t (id INTEGER PRIMARY KEY, v);
             INSERT INTO t (v) VALUES ('a'), (2.0), (9007199254740993);",
        )
        .unwrap();
    // The writer stays open, so every committed page is still only in the -wal file.
    let wal = path.with_extension("sqlite-wal");
    let (db_before, wal_before) = (sha256(&path), sha256(&wal));
    let (sql, stats) = dump(&path, &SqliteDumpOptions::default());
    assert_eq!(
        String::from_utf8(sql).unwrap(),
        "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (id INTEGER PRIMARY KEY, v);\n\
         INSERT INTO \"t\" (\"id\",\"v\") VALUES(1,'a');\n\
         INSERT INTO \"t\" (\"id\",\"v\") VALUES(2,2.0);\n\
         INSERT INTO \"t\" (\"id\",\"v\") VALUES(3,9007199254740993);"
    );
    assert_eq!(
        (stats.tables, stats.rows, stats.lossless_rewrites),
        (1, 3, 2)
    );
    assert_eq!((sha256(&path), sha256(&wal)), (db_before, wal_before));
    drop(writer);
}

/// An output that commits a write through another connection the first time the dump
/// flushes, i.e. while the dump is still reading.
struct WriteDuringDump<'a> {
    out: Vec<u8>,
    writer: &'a Connection,
    written: bool,
}

impl std::io::Write for WriteDuringDump<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.written {
            self.written = true;
            self.writer
                .execute_batch(
                    "INSERT INTO t (id, v) VALUES (100000, 'late');
                     INSERT INTO u (id) VALUES (100000);",
                )
                .unwrap();
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn sqlite_dump_is_one_snapshot_while_another_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.sqlite");
    let writer = Connection::open(&path).unwrap();
    writer
        .execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO t SELECT i, printf('%0100d', i) FROM n;
             CREATE TABLE u (id INTEGER PRIMARY KEY);
             INSERT INTO u VALUES (1);",
        )
        .unwrap();
    let mut out = WriteDuringDump {
        out: Vec::new(),
        writer: &writer,
        written: false,
    };
    let stats = dump_sqlite(&path, &SqliteDumpOptions::default(), &mut out).unwrap();
    assert!(out.written);
    let sql = String::from_utf8(out.out).unwrap();
    assert_eq!(stats.rows, 3001);
    assert!(!sql.contains("100000"), "the dump saw a later write");
    let count: i64 = writer
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3001);
}

#[test]
fn sqlite_dump_writes_lossless_text_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, u);
         INSERT INTO t VALUES (1, 'C:\\new' || char(10) || 'line', -0.0);
         INSERT INTO t VALUES (2, 'a' || char(0) || 'b', 1e300);
         INSERT INTO t VALUES (3, CAST(X'ff00c3' AS TEXT), 4.0);
         INSERT INTO t VALUES (4, 'x\\r' || char(13), -9223372036854775808);
         INSERT INTO t VALUES (5, 'plain', 9e999);",
    )
    .unwrap();
    drop(conn);
    let (sql, stats) = dump(&path, &SqliteDumpOptions::default());
    let sql = String::from_utf8(sql).unwrap();
    assert!(
        sql.contains(r"VALUES(1,'C:\new'||char(10)||'line',-0.0);"),
        "{sql}"
    );
    assert!(
        sql.contains("VALUES(2,CAST(X'610062' AS TEXT),1e+300);"),
        "{sql}"
    );
    assert!(
        sql.contains("VALUES(3,CAST(X'ff00c3' AS TEXT),4.0);"),
        "{sql}"
    );
    assert!(
        sql.contains(r"VALUES(4,'x\r'||char(13),-9223372036854775808);"),
        "{sql}"
    );
    assert!(sql.contains("VALUES(5,'plain',9e999);"), "{sql}");
    assert_eq!(stats.lossless_rewrites, 7);
    // Restored, every value has its bytes and storage class back.
    let restored = Connection::open_in_memory().unwrap();
    restored.execute_batch(&sql).unwrap();
    let original = Connection::open(&path).unwrap();
    let read = |c: &Connection| -> Vec<(String, Vec<u8>, String, String)> {
        let mut stmt = c
            .prepare("SELECT typeof(v), CAST(v AS BLOB), typeof(u), quote(u) FROM t ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(read(&restored), read(&original));
    let neg_zero: f64 = restored
        .query_row("SELECT u FROM t WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert!(neg_zero == 0.0 && neg_zero.is_sign_negative());
}

#[test]
fn sqlite_dump_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sqlite");
    let err = dump_sqlite(&missing, &SqliteDumpOptions::default(), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, SqliteDumpError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&*missing.to_string_lossy()),
        "{err}"
    );
    assert!(!err.is_retryable());

    let text = dir.path().join("export.sql");
    std::fs::write(&text, "PRAGMA defer_foreign_keys=TRUE;\n".repeat(200)).unwrap();
    let err = dump_sqlite(&text, &SqliteDumpOptions::default(), &mut Vec::new()).unwrap_err();
    assert!(
        matches!(err, SqliteDumpError::NotADatabase { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&*text.to_string_lossy()), "{err}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");

    let err = dump_sqlite(dir.path(), &SqliteDumpOptions::default(), &mut Vec::new()).unwrap_err();
    assert!(matches!(err, SqliteDumpError::Open { .. }), "{err:?}");
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

// ---- comparing a restore with expected.json ----

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The FTS5 shadow tables a rebuilt index lays out differently (segments, structure); every
/// other table, virtual tables read through their module included, must match exactly.
fn layout_dependent(table: &Value) -> bool {
    let name = table["name"].as_str().unwrap();
    table["kind"] == "fts5_shadow" && (name.ends_with("_data") || name.ends_with("_idx"))
}

/// Every table of `expected.json` (virtual tables read through their module, generated
/// columns included) has the same rows, values and storage classes after the restore, in the
/// case's `order_by` order. `rowids` (tables without an INTEGER PRIMARY KEY) are not compared:
/// like wrangler's, the dump does not carry them, so gaps close.
fn check_tables(case: &str, db: &Connection) {
    let expected = expected(case);
    for table in expected["tables"].as_array().unwrap() {
        let name = table["name"].as_str().unwrap();
        if layout_dependent(table) {
            continue;
        }
        let columns: Vec<String> = table["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| quote_ident(c["name"].as_str().unwrap()))
            .collect();
        let order_by = table["order_by"].as_str().unwrap();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {order_by}",
            columns.join(","),
            quote_ident(name)
        );
        let mut stmt = db
            .prepare(&sql)
            .unwrap_or_else(|e| panic!("{case}/{name}: {e} in {sql}"));
        let mut rows = stmt.query([]).unwrap();
        let mut got = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<Value> = (0..columns.len())
                .map(|i| cell(row.get_ref(i).unwrap()))
                .collect();
            got.push(cells);
        }
        let want = table["rows"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{case}/{name}: row count");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let w = w.as_array().unwrap();
            for (j, (gc, wc)) in g.iter().zip(w).enumerate() {
                assert!(
                    same_cell(gc, wc),
                    "{case}/{name} row {i} column {j}: got {gc}, expected {wc}"
                );
            }
        }
    }
}

fn cell(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => serde_json::json!({"t": "null"}),
        ValueRef::Integer(i) => serde_json::json!({"t": "int", "v": i.to_string()}),
        ValueRef::Real(r) => serde_json::json!({"t": "real", "bits": r.to_bits()}),
        ValueRef::Text(b) => serde_json::json!({"t": "text", "hex": hex::encode(b)}),
        ValueRef::Blob(b) => serde_json::json!({"t": "blob", "v": hex::encode(b)}),
    }
}

fn same_cell(got: &Value, want: &Value) -> bool {
    if got["t"] != want["t"] {
        return false;
    }
    match want["t"].as_str().unwrap() {
        "real" => {
            let want: f64 = want["v"].as_str().unwrap().parse().unwrap();
            got["bits"] == want.to_bits()
        }
        "text" => {
            let want_hex = match want.get("hex") {
                Some(h) => h.as_str().unwrap().to_owned(),
                None => hex::encode(want["v"].as_str().unwrap()),
            };
            got["hex"] == want_hex
        }
        "null" => true,
        _ => got["v"] == want["v"],
    }
}

fn check_objects(case: &str, db: &Connection) {
    let expected = expected(case);
    for object in expected["objects"].as_array().unwrap() {
        let name = object["name"].as_str().unwrap();
        let sql: String = db
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{case}: object {name} missing: {e}"));
        assert_eq!(sql, object["sql"].as_str().unwrap(), "{case}/{name}");
    }
    for table in expected["tables"].as_array().unwrap() {
        let name = table["name"].as_str().unwrap();
        if table["kind"] == "sqlite_internal" {
            continue;
        }
        let sql: String = db
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("{case}: table {name} missing: {e}"));
        assert_eq!(sql, table["sql"].as_str().unwrap(), "{case}/{name}");
    }
}

#[test]
fn sqlite_dump_rebuilds_fts5_indexes() {
    let db = copy_db("fts5");
    let (sql, stats) = dump(&db.path, &SqliteDumpOptions::default());
    let sql = String::from_utf8(sql).unwrap();
    assert!(sql.contains("INSERT INTO \"articles_fts\" (\"articles_fts\") VALUES('rebuild');"));
    assert!(
        !sql.contains("CREATE TABLE IF NOT EXISTS 'notes_fts_content'"),
        "{sql}"
    );
    assert_eq!(stats.tables, 4);
    let restored = Connection::open_in_memory().unwrap();
    restored.execute_batch(&sql).unwrap();
    let hits = |q: &str| -> Vec<i64> {
        let mut stmt = restored.prepare(q).unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        hits("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'checkpoints'"),
        [2]
    );
    assert_eq!(
        hits("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'creme'"),
        [5]
    );
    assert_eq!(
        hits("SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'token'"),
        [1]
    );
    for t in ["articles_fts", "notes_fts"] {
        restored
            .execute_batch(&format!("INSERT INTO {t}({t}) VALUES('integrity-check');"))
            .unwrap();
    }
    // The triggers came last, so they keep the index in sync from now on.
    restored
        .execute_batch("INSERT INTO articles (id, title, body) VALUES (8, 'New', 'zebra');")
        .unwrap();
    assert_eq!(
        hits("SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'zebra'"),
        [8]
    );
}

/// A stored value: its storage class and its exact bytes (or bits).
type Stored = (String, Vec<u8>);

/// Every table's rows, in rowid order.
fn snapshot(db: &Connection) -> Vec<(String, Vec<Vec<Stored>>)> {
    let mut stmt = db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    names
        .into_iter()
        .map(|name| {
            let sql = format!("SELECT * FROM {} ORDER BY rowid", quote_ident(&name));
            let mut stmt = db.prepare(&sql).unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            let mut out = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                let cells = (0..n)
                    .map(|i| match row.get_ref(i).unwrap() {
                        ValueRef::Null => ("null".to_owned(), Vec::new()),
                        ValueRef::Integer(v) => ("int".to_owned(), v.to_le_bytes().to_vec()),
                        ValueRef::Real(v) => {
                            ("real".to_owned(), v.to_bits().to_le_bytes().to_vec())
                        }
                        ValueRef::Text(b) => ("text".to_owned(), b.to_vec()),
                        ValueRef::Blob(b) => ("blob".to_owned(), b.to_vec()),
                    })
                    .collect();
                out.push(cells);
            }
            (name, out)
        })
        .collect()
}

/// Tricky values in columns of every affinity, plus random doubles and integers: the dump
/// restores each one with its storage class and exact bits.
#[test]
fn sqlite_dump_restores_tricky_values_in_every_affinity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tricky.sqlite");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE loose (id INTEGER PRIMARY KEY, i INTEGER, t TEXT, b BLOB, r REAL,
                             n NUMERIC, u, a ANY, d DECIMAL(10,2), f FLOAT);
         CREATE TABLE tight (id INTEGER PRIMARY KEY, i INTEGER, t TEXT, b BLOB, r REAL, a ANY)
           STRICT;",
    )
    .unwrap();
    let mut values: Vec<String> = [
        "0",
        "-0.0",
        "0.0",
        "1.0",
        "-1.0",
        "3.0",
        "2.5",
        "1e300",
        "-1e300",
        "9e999",
        "-9e999",
        "1e20",
        "1e21",
        "1e-7",
        "5e-324",
        "9007199254740992.0",
        "9007199254740993",
        "9223372036854775807",
        "-9223372036854775808",
        "4611686018427387904.0",
        "1152921504606846976.0",
        "-9223372036854775808.0",
        "0.1",
        "'0.1'",
        "' 7 '",
        "'1e3'",
        "'-0.0'",
        "'abc'",
        "''",
        "NULL",
        "X''",
        "X'00ff'",
        "char(10)",
        "char(13)",
        "'a\\n' || char(10)",
        "'\\r\\n' || char(13) || char(10)",
        "'\\' || char(10)",
        "'a' || char(0) || 'b'",
        "CAST(X'c328ff' AS TEXT)",
        "CAST(X'00' AS TEXT)",
        "'it''s' || char(13)",
        "'9223372036854775808'",
        "'0x10'",
        "'  12  '",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Random doubles and integers (xorshift, fixed seed).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = f64::from_bits(x);
        if f.is_finite() {
            values.push(format!("{f:e}"));
        }
        values.push(format!("{}", x.cast_signed()));
        let small = f64::from_bits(x) % 1e6;
        if small.is_finite() {
            values.push(format!("{:?}", small.trunc()));
        }
    }
    db.execute_batch("BEGIN;").unwrap();
    for (id, v) in values.iter().enumerate() {
        db.execute_batch(&format!(
            "INSERT INTO loose VALUES ({id}, {v}, {v}, {v}, {v}, {v}, {v}, {v}, {v}, {v});"
        ))
        .unwrap();
        for col in ["i", "t", "b", "r", "a"] {
            // STRICT columns reject what they cannot hold; the rest goes in.
            let _ = db.execute_batch(&format!(
                "INSERT OR IGNORE INTO tight (id) VALUES ({id});
                 UPDATE tight SET {col} = {v} WHERE id = {id};"
            ));
        }
    }
    db.execute_batch("COMMIT;").unwrap();
    drop(db);
    let (sql, stats) = dump(&path, &SqliteDumpOptions::default());
    assert!(stats.lossless_rewrites > 0);
    let restored = Connection::open_in_memory().unwrap();
    restored
        .execute_batch(std::str::from_utf8(&sql).unwrap())
        .unwrap();
    let original = Connection::open(&path).unwrap();
    let (want, got) = (snapshot(&original), snapshot(&restored));
    assert_eq!(want.len(), got.len());
    for ((name, w), (_, g)) in want.iter().zip(&got) {
        assert_eq!(w.len(), g.len(), "{name}");
        for (i, (wr, gr)) in w.iter().zip(g).enumerate() {
            assert_eq!(wr, gr, "{name} row {i}: value {}", values[i]);
        }
    }
}

#[test]
fn sqlite_dump_names_an_unreadable_virtual_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vtab.sqlite");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY);
         PRAGMA writable_schema = ON;
         INSERT INTO sqlite_schema VALUES
           ('table', 'ghost', 'ghost', 0, 'CREATE VIRTUAL TABLE ghost USING nosuchmodule(a)');",
    )
    .unwrap();
    drop(db);
    let err = dump_sqlite(&path, &SqliteDumpOptions::default(), &mut Vec::new()).unwrap_err();
    assert!(
        matches!(&err, SqliteDumpError::Read { table: Some(t), .. } if t == "ghost"),
        "{err:?}"
    );
    assert!(err.to_string().contains("nosuchmodule"), "{err}");
    assert!(!err.is_retryable());
}
