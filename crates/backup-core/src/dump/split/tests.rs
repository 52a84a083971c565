//! The splitter against real SQLite: the original INSERT goes into database A, its split into
//! database B, and the two must hold the same rows, storage class and bytes of every column.

use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use rusqlite::Connection;

use super::super::value::{Affinity, push_value};
use super::super::{Cell, D1_STATEMENT_LIMIT, DumpStatements, Kind};
use super::{SplitError, Splitter, Value};

const LIMIT: usize = D1_STATEMENT_LIMIT;

/// Deterministic bytes (xorshift64*), NUL included.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes()[0]
        })
        .collect()
}

/// Text of about `len` bytes of one kind.
fn text(kind: &str, len: usize) -> Vec<u8> {
    let unit: &[u8] = match kind {
        "ascii" => b"It's plain ASCII, with 'quotes' and \\n but no line break. ",
        // 1-, 2-, 3- and 4-byte characters, so that pieces end next to every one of them.
        "utf8" => "a é 中 😀 🇺🇳 ä😀😀x".as_bytes(),
        "lines" => b"line with a quote ' \r\n another line\n\n\r",
        "raw" => b"NUL \0 and invalid UTF-8 \xff\xfe \xf0\x9f\x98 (cut emoji) \xc3",
        _ => unreachable!("{kind}"),
    };
    let mut text: Vec<u8> = unit.iter().copied().cycle().take(len).collect();
    if kind != "raw" {
        // Not a character cut at the end: the dump writes valid UTF-8 as a quoted literal.
        let valid = std::str::from_utf8(&text).map_or_else(|e| e.valid_up_to(), str::len);
        text.truncate(valid);
    }
    text
}

/// The dump writer's literal for `cell` (its lossless forms, as in every dump this crate
/// writes; wrangler's `replace(…)` form for text with line breaks).
fn literal(cell: Cell<'_>) -> String {
    let mut out = Vec::new();
    push_value(&mut out, cell, Affinity::Blob);
    String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"))
}

fn insert(head: &str, cells: &[Cell<'_>]) -> String {
    let values: Vec<String> = cells.iter().map(|&c| literal(c)).collect();
    format!("{head} VALUES({});", values.join(","))
}

/// Every row of every table, each column with its storage class and bytes.
fn contents(conn: &Connection) -> Vec<(String, Vec<Vec<Value>>)> {
    let tables: Vec<(String, bool)> = conn
        .prepare("SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for (name, without_rowid) in tables {
        let rowid = if without_rowid { "" } else { "rowid, " };
        let mut sql = format!("SELECT {rowid}* FROM \"{name}\" ORDER BY 1");
        if name == "sqlite_schema" {
            // Where a table's pages start depends on how its rows were written.
            sql = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name".to_owned();
        }
        let mut statement = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = statement.column_count();
        let rows = statement
            .query_map([], |row| {
                (0..n).map(|i| row.get_ref(i).map(Value::from)).collect()
            })
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push((name, rows));
    }
    out
}

/// Runs `create` and `sql` in database A, the split of `sql` in database B, checks that each
/// statement fits and that A and B hold the same; returns the statements.
fn check(create: &str, sql: &str) -> Vec<String> {
    let (a, b) = (open(), open());
    let mut splitter = Splitter::new(LIMIT).unwrap_or_else(|e| panic!("{e}"));
    for create in create.split_inclusive(';') {
        a.execute(create, [])
            .unwrap_or_else(|e| panic!("{create}: {e}"));
        b.execute(create, [])
            .unwrap_or_else(|e| panic!("{create}: {e}"));
        splitter
            .add_table(1, create)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    a.execute(sql, [])
        .unwrap_or_else(|e| panic!("original: {e}"));
    let started = Instant::now();
    let statements = splitter.split(2, sql).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "{} bytes: {} statements in {:?}",
        sql.len(),
        statements.len(),
        started.elapsed()
    );
    assert!(statements.len() > 1, "{} bytes not split", sql.len());
    for statement in &statements {
        assert!(statement.len() <= LIMIT, "{} bytes", statement.len());
        assert!(
            !statement.contains(['\n', '\r']),
            "a statement on several lines"
        );
        b.execute(statement, []).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(contents(&a) == contents(&b), "{create}: the rows differ");
    // The splitter's own database is empty again.
    let left = contents(&splitter.conn);
    assert!(
        left.iter()
            .all(|(t, rows)| rows.is_empty() || t == "sqlite_schema")
    );
    statements
}

fn open() -> Connection {
    Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"))
}

/// Short values of every type, beyond what a double holds included.
fn short_cells() -> Vec<Cell<'static>> {
    vec![
        Cell::Integer(9_007_199_254_740_993),
        Cell::Integer(i64::MIN),
        Cell::Real(-0.0),
        Cell::Real(1e-300),
        Cell::Real(f64::INFINITY),
        Cell::Real(0.1 + 0.2),
        Cell::Null,
        Cell::Text(b"short 'text'\n"),
        Cell::Blob(&[0, 1, 0xff]),
    ]
}

const SHORT: &str = "i1, i2, r1, r2, r3, r4, n, t, b";
const SHORT_NAMES: &str = "\"i1\",\"i2\",\"r1\",\"r2\",\"r3\",\"r4\",\"n\",\"t\",\"b\"";

#[test]
fn every_kind_of_long_text_and_blobs_at_every_size() {
    let create = format!("CREATE TABLE \"plain\" (body TEXT, data BLOB, {SHORT});");
    for size in [200_000, 1_000_000, 2_000_000] {
        for kind in ["ascii", "utf8", "lines", "raw", "blob"] {
            let value = match kind {
                "blob" => random_bytes(size, 0x5eed),
                _ => text(kind, size),
            };
            let long = if kind == "blob" {
                Cell::Blob(&value)
            } else {
                Cell::Text(&value)
            };
            let mut cells = vec![long, Cell::Blob(b"")];
            cells.extend(short_cells());
            let head = format!("INSERT INTO \"plain\" (\"body\",\"data\",{SHORT_NAMES})");
            let sql = insert(&head, &cells);
            let started = Instant::now();
            let statements = check(&create, &sql);
            eprintln!(
                "{kind} of {size} bytes: {} statements, {:?} (checked)",
                statements.len(),
                started.elapsed()
            );
            let last = &statements[statements.len() - 1];
            assert!(
                last.ends_with("WHERE rowid = last_insert_rowid();"),
                "{last:.200}"
            );
        }
    }
}

/// One row with several long columns: a text, a blob and a text with line breaks.
fn several(head: &str, key: &[Cell<'_>]) -> String {
    let (a, b, c) = (
        text("utf8", 300_000),
        random_bytes(250_000, 7),
        text("lines", 150_000),
    );
    let mut cells = key.to_vec();
    cells.extend([Cell::Text(&a), Cell::Blob(&b), Cell::Text(&c)]);
    cells.extend(short_cells());
    insert(head, &cells)
}

#[test]
fn every_kind_of_table_and_key() {
    let cases: &[(&str, &str, &[Cell<'_>], &str)] = &[
        (
            "CREATE TABLE ipk (id INTEGER PRIMARY KEY, x TEXT, y BLOB, z, ",
            "INSERT INTO \"ipk\" (\"id\",",
            &[Cell::Integer(42)],
            "WHERE \"id\" = 42;",
        ),
        (
            "CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, x, y, z, ",
            "INSERT INTO \"auto\" (\"id\",",
            &[Cell::Integer(7)],
            "WHERE \"id\" = 7;",
        ),
        (
            "CREATE TABLE tpk (k TEXT PRIMARY KEY, x, y, z, ",
            "INSERT INTO \"tpk\" (\"k\",",
            &[Cell::Text(b"key")],
            "WHERE rowid = last_insert_rowid();",
        ),
        (
            "CREATE TABLE wr (ka TEXT, kb INT, x TEXT, y BLOB, z TEXT, ",
            "INSERT INTO \"wr\" (\"ka\",\"kb\",",
            &[Cell::Text(b"it's"), Cell::Integer(-3)],
            "WHERE \"kb\" = -3 AND \"ka\" = 'it''s';",
        ),
        (
            "CREATE TABLE st (id INTEGER PRIMARY KEY, x TEXT, y BLOB, z ANY, ",
            "INSERT INTO \"st\" (\"id\",",
            &[Cell::Integer(1)],
            "WHERE \"id\" = 1;",
        ),
    ];
    for &(create, head, key, condition) in cases {
        let (short, tail) = match create {
            c if c.contains(" wr ") => (SHORT.to_owned(), ", PRIMARY KEY (kb, ka)) WITHOUT ROWID;"),
            c if c.contains(" st ") => (
                "i1 INT, i2 INTEGER, r1 ANY, r2 REAL, r3 REAL, r4 REAL, n ANY, t TEXT, b BLOB"
                    .to_owned(),
                ") STRICT;",
            ),
            _ => (SHORT.to_owned(), ");"),
        };
        let create = format!("{create}{short}{tail}");
        let head = format!("{head}\"x\",\"y\",\"z\",{SHORT_NAMES})");
        let statements = check(&create, &several(&head, key));
        assert!(
            statements.iter().skip(1).all(|s| s.ends_with(condition)),
            "{create}"
        );
    }
}

#[test]
fn legacy_inserts_without_a_column_list_and_generated_columns() {
    let create = "CREATE TABLE gen (id INTEGER PRIMARY KEY, body TEXT, \
                  len INT GENERATED ALWAYS AS (length(body)) STORED, data BLOB, \
                  head TEXT GENERATED ALWAYS AS (substr(body, 1, 3)) VIRTUAL);";
    let (body, data) = (text("ascii", 500_000), random_bytes(120_000, 3));
    let cells = [Cell::Integer(5), Cell::Text(&body), Cell::Blob(&data)];
    check(create, &insert("INSERT INTO \"gen\"", &cells));
    check(create, &insert("INSERT INTO gen", &cells));
    check(create, &insert("INSERT INTO gen (id, body, data)", &cells));
    // A NULL rowid alias: SQLite chooses the rowid, so the key is the last rowid.
    let cells = [Cell::Null, Cell::Text(&body), Cell::Blob(&data)];
    let statements = check(create, &insert("INSERT INTO gen", &cells));
    assert!(statements[1].ends_with("WHERE rowid = last_insert_rowid();"));
}

fn refused(create: &str, sql: &str) -> String {
    let mut splitter = Splitter::new(LIMIT).unwrap_or_else(|e| panic!("{e}"));
    if !create.is_empty() {
        splitter
            .add_table(1, create)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let error = splitter.split(9, sql).map(|s| s.len()).err();
    let error = error.unwrap_or_else(|| panic!("not refused: {create}"));
    assert!(
        matches!(error, SplitError::Refused { line: 9, .. }),
        "{error}"
    );
    let error = crate::Error::from(error);
    assert_eq!(error.kind(), crate::ErrorKind::Unsupported);
    let message = error.to_string();
    assert!(message.starts_with("line 9: "), "{message}");
    message
}

#[test]
fn what_cannot_be_split_is_refused_with_the_line_and_what_to_do() {
    let long = "x".repeat(150_000);
    let value = format!("'{long}'");
    let message = refused("", &format!("CREATE TABLE t (a DEFAULT {value});"));
    assert!(
        message.contains("a CREATE TABLE statement") && message.contains("into SQLite instead")
    );
    let check = "CREATE TABLE c (v TEXT CHECK (length(v) > 140000));";
    let message = refused(check, &format!("INSERT INTO c VALUES({value});"));
    assert!(message.contains("CHECK constraint failed") && message.contains("leave table c out"));
    let wr = "CREATE TABLE k (k TEXT PRIMARY KEY, v) WITHOUT ROWID;";
    let message = refused(wr, &format!("INSERT INTO k VALUES({value}, 1);"));
    assert!(
        message.contains("key and other values are too long"),
        "{message}"
    );
    let half = format!("'{}'", "k".repeat(99_500));
    let message = refused(wr, &format!("INSERT INTO k VALUES({half}, {value});"));
    assert!(message.contains("its key is too long"), "{message}");
    let fts = "CREATE VIRTUAL TABLE docs USING fts5(body);";
    let message = refused(fts, &format!("INSERT INTO \"docs\" VALUES({value});"));
    assert!(message.contains("virtual table") && message.contains("leave table docs out"));
    let message = refused("", &format!("INSERT INTO nowhere VALUES({value});"));
    assert!(message.contains("does not create that table"), "{message}");
    let message = refused(
        "CREATE TABLE s (v);",
        &format!("INSERT INTO s SELECT {value};"),
    );
    assert!(message.contains("INSERT … SELECT"), "{message}");
}

/// wrangler's own export with a 131,193-byte INSERT (a 64 KiB random blob): split, it
/// restores the same database as the original.
#[test]
fn a_real_wrangler_export_restores_the_same_split() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wrangler/blobs/export.sql");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (a, b) = (open(), open());
    let mut splitter = Splitter::new(LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let mut statements = DumpStatements::new(BufReader::new(file));
    let mut split = 0;
    while let Some(statement) = statements.next_statement() {
        let statement = statement.unwrap_or_else(|e| panic!("{e}"));
        a.execute_batch(&statement.sql)
            .unwrap_or_else(|e| panic!("{e}"));
        if statement.kind == Kind::Other && statement.sql.starts_with("CREATE TABLE") {
            splitter
                .add_table(statement.line, &statement.sql)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let parts = splitter
            .split(statement.line, &statement.sql)
            .unwrap_or_else(|e| panic!("{e}"));
        split += usize::from(parts.len() > 1);
        for part in parts {
            assert!(part.len() <= LIMIT);
            b.execute_batch(&part).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert_eq!(split, 1);
    let (a, b) = (contents(&a), contents(&b));
    for (a, b) in a.iter().zip(&b) {
        assert!(a == b, "{} differs", a.0);
    }
}
