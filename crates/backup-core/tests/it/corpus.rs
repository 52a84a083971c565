//! The restore corpus: dumps restored with `restore_dump` into fresh SQLite files and compared
//! cell by cell, storage class (`typeof()`) included.
//!
//! - wrangler's own exports of every fixture case (`tests/fixtures/wrangler/<case>/`, 4.164 and
//!   4.86, full and `--table`) come back exactly, except where the case's `notes.md` says they
//!   are lossy: there each known difference is named, so any other difference fails.
//! - `dump_sqlite` of every fixture's `local.sqlite`, stored in and read back from a real S3
//!   sink, comes back exactly in every case (numbers and FTS5 included).
//! - Our own cases (`tests/corpus/<case>/source.sql`): a database built from the SQL, dumped,
//!   stored, read back, restored and compared with the source, table by table.
//!
//! The comparison here reads `expected.json` and SQLite itself; it shares no code with the
//! dumper or the restore.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use d1_backup_core::sqlite::{SqliteDumpOptions, SqliteDumpStats, dump_sqlite};
use d1_backup_core::{RestoreError, RestoreStats, check_database, restore_dump};
use futures::StreamExt;
use r2_sink::testing::S3TestServer;
use r2_sink::{BackupSink, PutOptions};
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde_json::Value;

// ---- cells ----

/// A stored value: its storage class and exact content (a REAL by its bits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Cell {
    Null,
    Int(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Cell {
    fn read(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Int(i),
            ValueRef::Real(r) => Self::Real(r.to_bits()),
            ValueRef::Text(b) => Self::Text(b.to_vec()),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
        }
    }

    /// A cell of `expected.json`: `{"t":"int","v":"<decimal>"}`, `{"t":"real","v":"<Python
    /// repr>"}`, `{"t":"text","v":…}` (or `"utf8_valid":false` with `"hex"`), `{"t":"blob",
    /// "v":"<hex>"}`, `{"t":"null"}`.
    fn expected(v: &Value) -> Self {
        let field = |name: &str| {
            v[name]
                .as_str()
                .unwrap_or_else(|| panic!("cell {v} has no {name}"))
        };
        match field("t") {
            "null" => Self::Null,
            "int" => Self::Int(field("v").parse().unwrap()),
            "real" => Self::Real(python_float(field("v")).to_bits()),
            "text" if v["utf8_valid"] == false => Self::Text(hex::decode(field("hex")).unwrap()),
            "text" => Self::Text(field("v").as_bytes().to_vec()),
            "blob" => Self::Blob(hex::decode(field("v")).unwrap()),
            other => panic!("unknown cell type {other} in {v}"),
        }
    }

    /// The cell as part of a row key: `9`, `'app'`.
    fn key(&self) -> String {
        match self {
            Self::Int(i) => i.to_string(),
            Self::Text(b) => format!("'{}'", String::from_utf8_lossy(b)),
            other => other.to_string(),
        }
    }
}

/// Python's `repr(float)`: `inf`, `-inf`, `-0.0`, `1e+300`, `5e-324`.
fn python_float(s: &str) -> f64 {
    match s {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|e| panic!("real {s}: {e}")),
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn cut(s: &str) -> String {
            let n = s.chars().count();
            if n > 60 {
                format!("{}…({n} chars)", s.chars().take(60).collect::<String>())
            } else {
                s.to_owned()
            }
        }
        match self {
            Self::Null => write!(f, "null"),
            Self::Int(i) => write!(f, "int {i}"),
            Self::Real(bits) => write!(f, "real {:?}", f64::from_bits(*bits)),
            Self::Text(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "text {:?}", cut(s)),
                Err(_) => write!(f, "text (not UTF-8) x'{}'", cut(&hex::encode(b))),
            },
            Self::Blob(b) => write!(f, "blob x'{}'", cut(&hex::encode(b))),
        }
    }
}

// ---- rows and their comparison ----

/// A table's rows, each with a key naming it in reports: `id=9` (INTEGER PRIMARY KEY),
/// `scope='app',key='theme'` (WITHOUT ROWID), or `#3` (position in rowid order, for tables
/// whose rowids a dump does not carry).
#[derive(Debug)]
struct Table {
    name: String,
    columns: Vec<String>,
    keyed: bool,
    rows: Vec<(String, Vec<Cell>)>,
}

impl Table {
    /// `key` holds the indexes of the columns that identify a row; none means by position.
    fn new(table: &str, columns: Vec<String>, key: &[usize], rows: Vec<Vec<Cell>>) -> Self {
        let rows = rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let name = if key.is_empty() {
                    format!("#{}", i + 1)
                } else {
                    key.iter()
                        .map(|&k| format!("{}={}", columns[k], row[k].key()))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                (name, row)
            })
            .collect();
        Self {
            name: table.to_owned(),
            columns,
            keyed: !key.is_empty(),
            rows,
        }
    }
}

/// One difference between what a table should hold and what it holds.
#[derive(Debug)]
struct Diff {
    table: String,
    row: String,
    /// `(column, expected, got)`; `None` for a whole row missing or extra.
    cell: Option<(String, Cell, Cell)>,
    missing: bool,
}

impl Diff {
    /// The form the known differences are written in: `ints id=9 v: int 9007199254740992`,
    /// `strict_any id=6: missing`.
    fn short(&self) -> String {
        match &self.cell {
            Some((column, _, got)) => format!("{} {} {column}: {got}", self.table, self.row),
            None if self.missing => format!("{} {}: missing", self.table, self.row),
            None => format!("{} {}: extra", self.table, self.row),
        }
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cell {
            Some((column, want, got)) => write!(
                f,
                "table {:?} row {} column {column:?}: expected {want}, got {got}",
                self.table, self.row
            ),
            None => write!(
                f,
                "table {:?} row {}: {}",
                self.table,
                self.row,
                if self.missing { "missing" } else { "extra" }
            ),
        }
    }
}

/// Every difference between `want` and `got`: rows matched by key (or by position), then
/// compared column by column, value and storage class.
fn compare(want: &Table, got: &Table) -> Vec<Diff> {
    assert_eq!(want.columns, got.columns, "table {:?}: columns", want.name);
    let diff = |row: &str, cell, missing| Diff {
        table: want.name.clone(),
        row: row.to_owned(),
        cell,
        missing,
    };
    let mut diffs = Vec::new();
    let mut got_rows: BTreeMap<String, &Vec<Cell>> = BTreeMap::new();
    for (i, (key, row)) in got.rows.iter().enumerate() {
        let key = if want.keyed {
            key.clone()
        } else {
            format!("#{}", i + 1)
        };
        assert!(
            got_rows.insert(key, row).is_none(),
            "{}: duplicate key",
            want.name
        );
    }
    for (key, want_row) in &want.rows {
        let Some(got_row) = got_rows.remove(key) else {
            diffs.push(diff(key, None, true));
            continue;
        };
        for (column, (w, g)) in want.columns.iter().zip(want_row.iter().zip(got_row)) {
            if w != g {
                diffs.push(diff(
                    key,
                    Some((column.clone(), w.clone(), g.clone())),
                    false,
                ));
            }
        }
    }
    diffs.extend(got_rows.keys().map(|key| diff(key, None, false)));
    diffs
}

fn report(diffs: &[Diff]) -> String {
    diffs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn query_cells(conn: &Connection, sql: &str) -> (Vec<String>, Vec<Vec<Cell>>) {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        out.push(
            (0..columns.len())
                .map(|i| Cell::read(row.get_ref(i).unwrap()))
                .collect(),
        );
    }
    (columns, out)
}

fn strings(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

// ---- expected.json ----

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrangler")
}

fn fixture_cases() -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("expected.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 10, "fixture cases: {cases:?}");
    cases
}

fn expected_json(case: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join(case).join("expected.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["format"], "d1-fixture-expected/v1");
    json
}

fn tables_of(json: &Value) -> &[Value] {
    json["tables"].as_array().unwrap()
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

fn expected_columns(table: &Value) -> Vec<String> {
    table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(c, "name").to_owned())
        .collect()
}

/// The columns identifying a row of an `expected.json` table: its INTEGER PRIMARY KEY, or
/// the primary key of a WITHOUT ROWID table; none for other tables.
fn expected_key(table: &Value) -> Vec<usize> {
    let columns = table["columns"].as_array().unwrap();
    if let Some(alias) = table["rowid_alias"].as_str() {
        return vec![columns.iter().position(|c| c["name"] == alias).unwrap()];
    }
    if table["without_rowid"] == true {
        let mut pk: Vec<(u64, usize)> = columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c["pk"].as_u64().filter(|&p| p > 0).map(|p| (p, i)))
            .collect();
        pk.sort_unstable();
        return pk.into_iter().map(|(_, i)| i).collect();
    }
    Vec::new()
}

fn expected_rows(table: &Value) -> Table {
    let rows: Vec<Vec<Cell>> = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(Cell::expected).collect())
        .collect();
    assert_eq!(rows.len() as u64, table["row_count"].as_u64().unwrap());
    Table::new(
        str_of(table, "name"),
        expected_columns(table),
        &expected_key(table),
        rows,
    )
}

/// A restored table read like `expected.json` was: its columns (generated ones included) in
/// the case's `order_by` order.
fn restored_rows(conn: &Connection, table: &Value) -> Table {
    let columns = expected_columns(table);
    let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        list.join(","),
        quote_ident(str_of(table, "name")),
        str_of(table, "order_by")
    );
    let (_, rows) = query_cells(conn, &sql);
    Table::new(str_of(table, "name"), columns, &expected_key(table), rows)
}

/// The FTS5 shadow tables whose layout (segments, structure records) depends on how the index
/// was built, not on what it holds; their content is checked through `MATCH` instead.
fn layout_dependent(table: &Value) -> bool {
    let name = str_of(table, "name");
    table["kind"] == "fts5_shadow" && (name.ends_with("_data") || name.ends_with("_idx"))
}

/// Every difference between the restored tables `names` and `expected.json`.
fn expected_diffs(conn: &Connection, json: &Value, names: &[&str]) -> Vec<Diff> {
    tables_of(json)
        .iter()
        .filter(|t| names.contains(&str_of(t, "name")))
        .flat_map(|t| compare(&expected_rows(t), &restored_rows(conn, t)))
        .collect()
}

/// Tables, indexes, triggers and views come back with their stored SQL unchanged.
fn assert_schema_text(conn: &Connection, json: &Value, names: &[&str], label: &str) {
    let objects = json["objects"].as_array().unwrap();
    for object in tables_of(json).iter().chain(objects) {
        let name = str_of(object, "name");
        if !names.contains(&name) || object["kind"] == "sqlite_internal" {
            continue;
        }
        let sql: Vec<String> = strings(
            conn,
            &format!(
                "SELECT sql FROM sqlite_schema WHERE name = '{}'",
                name.replace('\'', "''")
            ),
        );
        assert_eq!(sql, [str_of(object, "sql")], "{label}: {name}");
    }
}

/// User tables (not `sqlite_*`) of a database.
fn user_tables(conn: &Connection) -> Vec<String> {
    strings(
        conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
}

/// Tables without an INTEGER PRIMARY KEY come back with rowids 1..n: the dump (wrangler's and
/// ours) does not carry them, so gaps close (`schema`'s `tags`: 1,3,4,5 -> 1,2,3,4).
fn assert_rowids_renumbered(conn: &Connection, json: &Value, names: &[&str], label: &str) {
    for table in tables_of(json) {
        let name = str_of(table, "name");
        if table.get("rowids").is_none() || !names.contains(&name) {
            continue;
        }
        let rowids = strings(
            conn,
            &format!(
                "SELECT CAST(rowid AS TEXT) FROM {} ORDER BY rowid",
                quote_ident(name)
            ),
        );
        let renumbered: Vec<String> = (1..=rowids.len()).map(|i| i.to_string()).collect();
        assert_eq!(rowids, renumbered, "{label}: {name}");
    }
}

// ---- restoring ----

/// A scratch directory holding fresh database files.
struct Scratch {
    dir: tempfile::TempDir,
    n: u32,
}

impl Scratch {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            n: 0,
        }
    }

    /// A new, empty database file.
    fn fresh(&mut self) -> Connection {
        self.n += 1;
        let path = self.dir.path().join(format!("restored-{}.sqlite", self.n));
        Connection::open(path).unwrap()
    }

    fn copy(&mut self, from: &Path) -> PathBuf {
        self.n += 1;
        let path = self.dir.path().join(format!("source-{}.sqlite", self.n));
        std::fs::copy(from, &path).unwrap();
        path
    }
}

/// Restores `dump` into a fresh file. A lossy case's statements that SQLite rejects are
/// blanked out one by one (line numbers stay), as the sqlite3 CLI skips them; they are
/// returned as `(line, message)`.
fn restore_wrangler(
    scratch: &mut Scratch,
    dump: &str,
    lossy: bool,
    label: &str,
) -> (Connection, RestoreStats, Vec<(u64, String)>) {
    let mut lines: Vec<&str> = dump.split('\n').collect();
    let mut rejected = Vec::new();
    loop {
        let conn = scratch.fresh();
        let text = lines.join("\n");
        match restore_dump(text.as_bytes(), &conn) {
            Ok(stats) => return (conn, stats, rejected),
            Err(RestoreError::Statement { line, message, .. }) if lossy => {
                lines[usize::try_from(line).unwrap() - 1] = "";
                rejected.push((line, message));
            }
            Err(e) => panic!("{label}: {e}"),
        }
    }
}

/// Statements over D1's 100,000-byte limit, counted independently: wrangler writes each row
/// on one line.
fn long_lines(dump: &str) -> u64 {
    dump.split('\n').filter(|l| l.len() > 100_000).count() as u64
}

/// Stores `dump` in the sink (streamed in 64 KiB chunks) and reads it back.
async fn through_sink(sink: &dyn BackupSink, key: &str, dump: &[u8]) -> Vec<u8> {
    let chunks: Vec<std::io::Result<Bytes>> = dump
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let receipt = sink
        .put_stream(
            key,
            futures::stream::iter(chunks).boxed(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(receipt.size, dump.len() as u64, "{key}");
    let back = crate::support::read(sink, key).await;
    assert!(back == dump, "{key}: the sink gave back other bytes");
    back
}

fn dump_file(path: &Path) -> (Vec<u8>, SqliteDumpStats) {
    let mut out = Vec::new();
    let stats = dump_sqlite(path, &SqliteDumpOptions::default(), &mut out)
        .unwrap_or_else(|e| panic!("dump of {}: {e}", path.display()));
    (out, stats)
}

// ---- FTS5 ----

/// The FTS5 tables of a database.
fn fts5_tables(conn: &Connection) -> Vec<String> {
    strings(
        conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%' ORDER BY name",
    )
}

/// Every term of the index with its document and instance counts (`fts5vocab`).
fn vocabulary(conn: &Connection, table: &str) -> Vec<(String, i64, Option<i64>)> {
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE temp.corpus_vocab USING fts5vocab(main, '{}', 'row');",
        table.replace('\'', "''")
    ))
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT term, doc, cnt FROM temp.corpus_vocab ORDER BY term")
        .unwrap();
    let terms = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    drop(stmt);
    conn.execute_batch("DROP TABLE temp.corpus_vocab;").unwrap();
    terms
}

/// `SELECT rowid, rank … MATCH` answers, rank by its bits; or the error (FTS5 refuses some
/// queries on some tables, e.g. phrases with `detail=column`), which must be the same too.
fn answers(conn: &Connection, table: &str, query: &str) -> Result<Vec<(i64, u64)>, String> {
    let t = quote_ident(table);
    let sql = format!("SELECT rowid, rank FROM {t} WHERE {t} MATCH ?1 ORDER BY rank, rowid");
    let mut stmt = conn.prepare(&sql).unwrap();
    stmt.query_map([query], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?.to_bits()))
    })
    .and_then(Iterator::collect)
    .map_err(|e| e.to_string())
}

/// Every FTS5 table of `source` answers the same as in `restored`: the same vocabulary, and
/// the same rows in the same rank order for every term, prefix, phrase, boolean and NEAR
/// query built from it. Returns how many queries found rows.
fn assert_fts_answers_match(source: &Connection, restored: &Connection, label: &str) -> usize {
    let tables = fts5_tables(source);
    assert_eq!(tables, fts5_tables(restored), "{label}");
    let mut queries = 0;
    for table in &tables {
        let terms = vocabulary(source, table);
        assert_eq!(terms, vocabulary(restored, table), "{label}: {table}");
        assert!(!terms.is_empty(), "{label}: {table} is empty");
        let quoted: Vec<String> = terms
            .iter()
            .map(|(term, _, _)| format!("\"{}\"", term.replace('"', "\"\"")))
            .collect();
        let mut texts: Vec<String> = quoted.clone();
        texts.extend(quoted.iter().map(|q| format!("{q}*")));
        for pair in quoted.windows(2).take(20) {
            let (a, b) = (&pair[0], &pair[1]);
            texts.extend([
                format!("{a} OR {b}"),
                format!("{a} NOT {b}"),
                format!("NEAR({a} {b}, 10)"),
                format!("{a} + {b}"),
            ]);
        }
        for text in &texts {
            let want = answers(source, table, text);
            assert_eq!(
                want,
                answers(restored, table, text),
                "{label}: {table} MATCH {text}"
            );
            queries += usize::from(want.is_ok_and(|rows| !rows.is_empty()));
        }
    }
    queries
}

// ---- the tests ----

fn lossy_in_wrangler(case: &str) -> bool {
    let notes = std::fs::read_to_string(fixtures().join(case).join("notes.md")).unwrap();
    let line = notes
        .lines()
        .find(|l| l.starts_with("lossy in wrangler 4.164.0:"))
        .unwrap_or_else(|| panic!("{case}: notes.md has no lossy line"));
    line.contains(": yes")
}

/// What `numbers/notes.md` lists: the cells wrangler's number formatting changes, and the two
/// rows STRICT `strict_any.i` rejects (written as the restore gives them back).
const NUMBERS_KNOWN: &[&str] = &[
    "ints id=9 v: int 9007199254740992",
    "ints id=12 v: int -9007199254740992",
    "ints id=13 v: int 4611686018427388000",
    "ints id=14 v: int 1234567890123456800",
    "ints id=19 v: int 10000000000000000",
    "ints id=15 v: real 9.223372036854776e18",
    "ints id=16 v: real -9.223372036854776e18",
    "ints id=17 v: real 9.223372036854776e18",
    "dynamic id=9 a: int 9007199254740992",
    "dynamic id=9 n: int 9007199254740992",
    "dynamic id=9 u: int 9007199254740992",
    "dynamic id=12 a: real 9.223372036854776e18",
    "dynamic id=12 n: real 9.223372036854776e18",
    "dynamic id=3 u: int 3",
    "dynamic id=10 u: int 0",
    "strict_any id=1 v: int 1",
    "strict_any id=6: missing",
    "strict_any id=7: missing",
];

/// What a wrangler export holds: everything, one table, one other object, or nothing.
enum Scope {
    Full,
    Table(String),
    Object(String),
    Nothing,
}

/// wrangler's file name for `--table <name>`: every character outside `[A-Za-z0-9_.-]` is `_`.
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

/// Every wrangler export of a case (4.164 and 4.86) with what it holds.
fn wrangler_exports(case: &str, json: &Value) -> Vec<(String, Scope)> {
    let mut files: Vec<String> = std::fs::read_dir(fixtures().join(case))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| {
            f == "export.sql"
                || f == "export-wrangler-4.86.sql"
                || (f.starts_with("export-table-") && !f.ends_with("-error.txt"))
        })
        .collect();
    files.sort();
    let objects = json["objects"].as_array().unwrap();
    files
        .into_iter()
        .map(|file| {
            let Some(safe) = file.strip_prefix("export-table-") else {
                return (file, Scope::Full);
            };
            let safe = safe
                .trim_end_matches(".sql")
                .trim_end_matches("-wrangler-4.86");
            let named = |list: &[Value]| {
                list.iter()
                    .map(|t| str_of(t, "name").to_owned())
                    .find(|n| safe_name(n) == safe)
            };
            let scope = if let Some(table) = named(tables_of(json)) {
                Scope::Table(table)
            } else if let Some(object) = named(objects) {
                Scope::Object(object)
            } else {
                Scope::Nothing
            };
            (file, scope)
        })
        .collect()
}

/// wrangler's real exports restore exactly where the case's notes say wrangler is lossless,
/// and with exactly the documented differences where they say it is lossy (`numbers`, and
/// `fts5`, which has no full export at all).
#[test]
fn corpus_wrangler_exports_restore_as_their_notes_say() {
    let mut scratch = Scratch::new();
    let mut restored = 0;
    for case in fixture_cases() {
        let json = expected_json(&case);
        let lossy = lossy_in_wrangler(&case);
        if case == "fts5" {
            for error in ["export-error.txt", "export-wrangler-4.86-error.txt"] {
                let text = std::fs::read_to_string(fixtures().join(&case).join(error)).unwrap();
                assert!(
                    text.contains("cannot export databases with Virtual Tables (fts5)"),
                    "{text}"
                );
            }
        }
        for (file, scope) in wrangler_exports(&case, &json) {
            let label = format!("{case}/{file}");
            let dump = std::fs::read_to_string(fixtures().join(&case).join(&file)).unwrap();
            let (conn, stats, rejected) = restore_wrangler(&mut scratch, &dump, lossy, &label);
            assert_eq!(stats.oversized_statements, long_lines(&dump), "{label}");
            let names: Vec<String> = match &scope {
                Scope::Full => tables_of(&json)
                    .iter()
                    .filter(|t| t["exported_by_wrangler"] == true)
                    .map(|t| str_of(t, "name").to_owned())
                    .collect(),
                Scope::Table(name) => vec![name.clone()],
                Scope::Object(_) | Scope::Nothing => Vec::new(),
            };
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut user: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !n.starts_with("sqlite_"))
                .collect();
            user.sort_unstable();
            assert_eq!(user_tables(&conn), user, "{label}: tables");

            let diffs = expected_diffs(&conn, &json, &names);
            let mut got: Vec<String> = diffs.iter().map(Diff::short).collect();
            let mut known: Vec<String> = NUMBERS_KNOWN
                .iter()
                .filter(|d| {
                    case == "numbers" && names.iter().any(|n| d.starts_with(&format!("{n} ")))
                })
                .map(|d| (*d).to_owned())
                .collect();
            got.sort();
            known.sort();
            assert_eq!(got, known, "{label}:\n{}", report(&diffs));
            let rejected_lines: Vec<u64> = rejected.iter().map(|(l, _)| *l).collect();
            if case == "numbers" && matches!(scope, Scope::Full) {
                assert_eq!(rejected_lines, [82, 83], "{label}");
                for (_, message) in &rejected {
                    assert!(
                        message.contains("cannot store REAL value in INTEGER column strict_any.i"),
                        "{label}: {message}"
                    );
                }
            } else {
                assert!(rejected.is_empty(), "{label}: {rejected:?}");
            }

            match &scope {
                Scope::Full => {
                    let objects: Vec<&str> = json["objects"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|o| str_of(o, "name"))
                        .collect();
                    let all: Vec<&str> = names.iter().chain(&objects).copied().collect();
                    assert_schema_text(&conn, &json, &all, &label);
                    assert_rowids_renumbered(&conn, &json, &names, &label);
                    let problems = check_database(&conn).unwrap();
                    assert!(problems.is_empty(), "{label}: {problems:?}");
                    // wrangler dumps the INSTEAD OF trigger before its view; it is kept.
                    let deferred = u64::from(case == "trigger-on-view");
                    assert_eq!(stats.deferred, deferred, "{label}");
                }
                Scope::Table(_) => assert_schema_text(&conn, &json, &names, &label),
                Scope::Object(name) => assert_schema_text(&conn, &json, &[name.as_str()], &label),
                Scope::Nothing => {}
            }
            restored += 1;
        }
    }
    // 9 full exports (not fts5) and 13 `--table` exports, each by both wrangler versions.
    assert_eq!(restored, 44);
}

/// `dump_sqlite` of every fixture database, through a real S3 sink, restores to exactly
/// `expected.json`: numbers included (our dump is lossless where wrangler's is not), the
/// trigger-on-view trigger kept, and FTS5 tables answering every query as the source does.
#[tokio::test]
async fn corpus_our_dumps_of_the_fixtures_restore_exactly_through_a_sink() {
    let server = S3TestServer::start().await.unwrap();
    let sink = server.sink().unwrap();
    let mut scratch = Scratch::new();
    for case in fixture_cases() {
        let json = expected_json(&case);
        let source = scratch.copy(&fixtures().join(&case).join("local.sqlite"));
        let (dump, dump_stats) = dump_file(&source);
        let dump = through_sink(&sink, &format!("corpus/fixtures/{case}.sql"), &dump).await;
        let conn = scratch.fresh();
        let stats = restore_dump(dump.as_slice(), &conn).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            stats.oversized_statements, dump_stats.oversized_statements,
            "{case}"
        );
        assert_eq!(
            stats.oversized_statements,
            u64::from(case == "blobs"),
            "{case}"
        );
        assert_eq!(
            stats.deferred,
            u64::from(case == "trigger-on-view"),
            "{case}"
        );

        let names: Vec<&str> = tables_of(&json)
            .iter()
            .filter(|t| !layout_dependent(t))
            .map(|t| str_of(t, "name"))
            .collect();
        let diffs = expected_diffs(&conn, &json, &names);
        assert!(diffs.is_empty(), "{case}:\n{}", report(&diffs));
        let objects: Vec<&str> = json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| str_of(o, "name"))
            .collect();
        let all: Vec<&str> = names.iter().chain(&objects).copied().collect();
        assert_schema_text(&conn, &json, &all, &case);
        assert_rowids_renumbered(&conn, &json, &names, &case);
        let problems = check_database(&conn).unwrap();
        assert!(problems.is_empty(), "{case}: {problems:?}");
        if case == "fts5" {
            let source = Connection::open(&source).unwrap();
            assert!(assert_fts_answers_match(&source, &conn, &case) > 100);
        }
    }
}

// ---- our own cases ----

fn own_cases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("source.sql").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    cases.sort();
    cases
}

/// A database built from a case's `source.sql`.
fn build(scratch: &mut Scratch, dir: &Path) -> PathBuf {
    scratch.n += 1;
    let path = scratch
        .dir
        .path()
        .join(format!("built-{}.sqlite", scratch.n));
    let sql = std::fs::read_to_string(dir.join("source.sql")).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&sql)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    conn.close().unwrap();
    path
}

/// Every table of a database (virtual tables read through their module, shadow tables as
/// stored, `sqlite_sequence`/`sqlite_stat*` included), keyed by INTEGER PRIMARY KEY, rowid
/// (virtual tables) or primary key (WITHOUT ROWID, sorted by it); other tables by position in
/// rowid order, as their rowids are not dumped.
fn snapshot(conn: &Connection) -> BTreeMap<String, Table> {
    let mut stmt = conn
        .prepare(
            "SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' \
             AND type IN ('table', 'virtual', 'shadow') AND name <> 'sqlite_schema' ORDER BY name",
        )
        .unwrap();
    let tables: Vec<(String, String, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = BTreeMap::new();
    for (name, kind, without_rowid) in tables {
        let shadow_layout = kind == "shadow" && (name.ends_with("_data") || name.ends_with("_idx"));
        if shadow_layout {
            continue;
        }
        let t = quote_ident(&name);
        let pk: Vec<(i64, String, String)> = {
            let mut s = conn
                .prepare("SELECT pk, name, upper(type) FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
                .unwrap();
            s.query_map([&name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let rows = if kind == "virtual" {
            let (columns, rows) =
                query_cells(conn, &format!("SELECT rowid, * FROM {t} ORDER BY rowid"));
            Table::new(&name, columns, &[0], rows)
        } else if without_rowid {
            let (columns, mut rows) = query_cells(conn, &format!("SELECT * FROM {t}"));
            let key: Vec<usize> = pk
                .iter()
                .map(|(_, c, _)| columns.iter().position(|n| n == c).unwrap())
                .collect();
            rows.sort_by(|a, b| {
                let k = |r: &Vec<Cell>| key.iter().map(|&i| r[i].clone()).collect::<Vec<_>>();
                k(a).cmp(&k(b))
            });
            Table::new(&name, columns, &key, rows)
        } else {
            let (columns, rows) = query_cells(conn, &format!("SELECT * FROM {t} ORDER BY _rowid_"));
            let key: Vec<usize> = match pk.as_slice() {
                [(_, column, declared)] if declared == "INTEGER" => {
                    vec![columns.iter().position(|n| n == column).unwrap()]
                }
                _ => Vec::new(),
            };
            Table::new(&name, columns, &key, rows)
        };
        out.insert(name, rows);
    }
    out
}

/// Every schema entry, sorted: `(type, name, tbl_name, sql)`.
fn schema(conn: &Connection) -> Vec<(String, String, String, Option<String>)> {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every own case: built from `source.sql`, dumped, stored in a real S3 sink, read back,
/// restored, and compared with its source: the same schema text, every table's rows with
/// their keys, values and storage classes, FTS5 answers, and integrity.
#[tokio::test]
async fn corpus_own_cases_round_trip_exactly_through_a_sink() {
    let server = S3TestServer::start().await.unwrap();
    let sink = server.sink().unwrap();
    let mut scratch = Scratch::new();
    let cases = own_cases();
    assert!(cases.len() >= 18, "{cases:?}");
    for (case, dir) in &cases {
        let source_path = build(&mut scratch, dir);
        let (dump, dump_stats) = dump_file(&source_path);
        let dump = through_sink(&sink, &format!("corpus/own/{case}.sql"), &dump).await;
        let restored = scratch.fresh();
        let stats =
            restore_dump(dump.as_slice(), &restored).unwrap_or_else(|e| panic!("{case}: {e}"));
        let source = Connection::open(&source_path).unwrap();

        assert_eq!(schema(&restored), schema(&source), "{case}: schema");
        let (want, got) = (snapshot(&source), snapshot(&restored));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{case}: tables"
        );
        let diffs: Vec<Diff> = want
            .values()
            .zip(got.values())
            .flat_map(|(w, g)| compare(w, g))
            .collect();
        assert!(diffs.is_empty(), "{case}:\n{}", report(&diffs));
        let problems = check_database(&restored).unwrap();
        assert!(problems.is_empty(), "{case}: {problems:?}");
        if !fts5_tables(&source).is_empty() {
            assert!(
                assert_fts_answers_match(&source, &restored, case) > 20,
                "{case}"
            );
        }

        // Only the `oversized` case's two rows are over D1's statement limit.
        let oversized = if case == "oversized" { 2 } else { 0 };
        assert_eq!(dump_stats.oversized_statements, oversized, "{case}");
        assert_eq!(stats.oversized_statements, oversized, "{case}");
        // The dump writes triggers before views: each INSTEAD OF trigger waits for its view.
        let on_views = strings(
            &source,
            "SELECT t.name FROM sqlite_schema t JOIN sqlite_schema v \
             ON v.type = 'view' AND v.name = t.tbl_name WHERE t.type = 'trigger'",
        );
        assert_eq!(
            stats.deferred,
            on_views.len() as u64,
            "{case}: {on_views:?}"
        );
    }
}

/// The same table as wrangler 4.86 wrote it: `INSERT INTO "t" VALUES(…)` without a column
/// list, and ±Infinity as the bare words `Infinity`/`-Infinity` (README: "Differences from
/// 4.86.0"). Not SQL, so the restore refuses it, naming the line and the defect; with the
/// words replaced as the message says, it restores exactly.
#[test]
fn corpus_a_legacy_dump_with_bare_infinity_is_refused_with_the_defect_named() {
    let mut scratch = Scratch::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/reals");
    let source_path = build(&mut scratch, &dir);
    let (dump, _) = dump_file(&source_path);
    let dump = String::from_utf8(dump).unwrap();
    let legacy: Vec<String> = dump
        .split('\n')
        .map(|line| {
            let mut line = line.to_owned();
            if line.starts_with("INSERT INTO ") {
                let open = line.find(" (\"").unwrap();
                let close = line.find(") VALUES(").unwrap();
                line.replace_range(open..=close, "");
            }
            line.replace(",9e999", ",Infinity")
                .replace(",-9e999", ",-Infinity")
        })
        .collect();
    let first = legacy.iter().position(|l| l.contains(",Infinity")).unwrap() + 1;
    let legacy = legacy.join("\n");
    assert!(legacy.contains("INSERT INTO \"reals\" VALUES(17,'+Infinity',Infinity,"));

    let err = restore_dump(legacy.as_bytes(), &scratch.fresh()).unwrap_err();
    assert!(
        matches!(err, RestoreError::BareInfinity { line, .. } if line == first as u64),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "line {first}: the export wrote Infinity as a bare word (a known D1 export defect)"
        )) && message.contains("9e999")
            && message.contains("'+Infinity',Infinity,"),
        "{message}"
    );

    let fixed = legacy
        .replace(",Infinity", ",9e999")
        .replace(",-Infinity", ",-9e999");
    let restored = scratch.fresh();
    restore_dump(fixed.as_bytes(), &restored).unwrap();
    let source = Connection::open(&source_path).unwrap();
    let (want, got) = (snapshot(&source), snapshot(&restored));
    let diffs: Vec<Diff> = want
        .values()
        .zip(got.values())
        .flat_map(|(w, g)| compare(w, g))
        .collect();
    assert!(diffs.is_empty(), "{}", report(&diffs));
}
