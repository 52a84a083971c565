//! Reading a D1 dump back into SQLite (feature `sqlite`): statement by statement, with
//! memory bounded by the longest statement, so a 10 GB dump restores like a 10 KB one.
//!
//! Any dump D1 or wrangler writes is accepted, and a sqlite3 `.dump` file too:
//!
//! - every INSERT form (`INSERT INTO "t" VALUES(…)`, `INSERT INTO t VALUES(…)`,
//!   `INSERT INTO "t" ("a","b") VALUES(…)`): the dump is SQL, run by SQLite itself;
//! - statements split where SQLite's `sqlite3_complete` would split them
//!   ([`DumpStatements`], the dump module's reader): a trigger body holds `;` before its `END;`;
//! - LF or CRLF line endings, a UTF-8 BOM, a last statement without a newline;
//! - `BEGIN TRANSACTION;`/`COMMIT;` framing (sqlite3 `.dump`) is skipped, as the whole restore
//!   is already one transaction;
//! - schema statements that name an object the dump creates later: wrangler writes every
//!   trigger before every view, so an `INSTEAD OF` trigger on a view comes before its view. A
//!   `CREATE INDEX`/`VIEW`/`TRIGGER` that fails with "no such table/view" is set aside and
//!   retried after the last statement, until no more succeed.
//!
//! Foreign keys are not enforced while the dump runs (wrangler's dump can create a child
//! table, with its rows, before its parent); [`check_database`] checks them afterwards.
//! Compressed dumps are decoded by the caller.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use rusqlite::Connection;

use crate::dump::{D1_STATEMENT_LIMIT, Kind, Statement, TableClass, quote_ident, snippet};
pub use crate::dump::{DumpStatements, RestoreError};

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreStats {
    /// Statements executed (deferred ones included, once).
    pub statements: u64,
    /// Lines read.
    pub lines: u64,
    /// Schema statements that named an object not created yet, and succeeded when retried
    /// after the last statement (wrangler's trigger-before-view order).
    pub deferred: u64,
    /// `BEGIN`/`COMMIT` statements left out (sqlite3 `.dump` framing).
    pub skipped: u64,
    /// Statements longer than 100,000 bytes: SQLite restores them, D1's import rejects them
    /// (`SQLITE_TOOBIG`).
    pub oversized_statements: u64,
    /// Statements SQLite refused, in [`restore_dump_keep_going`] (always 0 otherwise).
    pub failed: u64,
    /// What the first refused statements were ([`KEEP_GOING_LISTED`] at most), each as
    /// [`RestoreError::Statement`] or [`RestoreError::BareInfinity`] would say it.
    pub failures: Vec<String>,
}

/// How many refused statements [`restore_dump_keep_going`] describes; more are counted.
pub const KEEP_GOING_LISTED: usize = 20;

fn sqlite_error(e: &rusqlite::Error) -> RestoreError {
    RestoreError::Sqlite(e.to_string())
}

/// Executes the dump read from `reader` against `conn`, in one transaction: on error nothing
/// of it stays. `conn` must not be inside a transaction. Foreign keys are not enforced during
/// the restore (the connection's setting is put back afterwards).
pub fn restore_dump(reader: impl BufRead, conn: &Connection) -> Result<RestoreStats, RestoreError> {
    with_foreign_keys_off(conn, |conn| in_transaction(reader, conn, false))
}

fn with_foreign_keys_off(
    conn: &Connection,
    restore: impl FnOnce(&Connection) -> Result<RestoreStats, RestoreError>,
) -> Result<RestoreStats, RestoreError> {
    let foreign_keys: bool = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .map_err(|e| sqlite_error(&e))?;
    if foreign_keys {
        conn.execute_batch("PRAGMA foreign_keys=OFF")
            .map_err(|e| sqlite_error(&e))?;
    }
    let result = restore(conn);
    if foreign_keys {
        let back_on = conn.execute_batch("PRAGMA foreign_keys=ON");
        if result.is_ok() {
            back_on.map_err(|e| sqlite_error(&e))?;
        }
    }
    result
}

/// Like [`restore_dump`], but a statement SQLite refuses (an `Infinity` word, a value a
/// `STRICT` column rejects, a syntax error) is counted in [`RestoreStats::failed`] and the
/// restore goes on, so a verification can report every defect of a dump at once and still
/// compare what did restore. Everything else (unreadable or truncated input, SQLite itself
/// failing) still stops it. The restored database then lacks the refused statements' effects.
pub fn restore_dump_keep_going(
    reader: impl BufRead,
    conn: &Connection,
) -> Result<RestoreStats, RestoreError> {
    with_foreign_keys_off(conn, |conn| in_transaction(reader, conn, true))
}

/// Restores the dump read from `reader` into a new SQLite database file at `path`, which must
/// not exist yet. On error the file is removed, so a file at `path` is always a whole restore.
pub fn restore_to_path(reader: impl BufRead, path: &Path) -> Result<RestoreStats, RestoreError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| RestoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    let restored = Connection::open(path)
        .map_err(|e| sqlite_error(&e))
        .and_then(|conn| {
            let stats = restore_dump(reader, &conn)?;
            conn.close().map_err(|(_, e)| sqlite_error(&e))?;
            Ok(stats)
        });
    if restored.is_err() {
        let _ = std::fs::remove_file(path);
    }
    restored
}

fn in_transaction(
    reader: impl BufRead,
    conn: &Connection,
    keep_going: bool,
) -> Result<RestoreStats, RestoreError> {
    conn.execute_batch("BEGIN").map_err(|e| sqlite_error(&e))?;
    let mut restore = Restore::new(conn);
    restore.keep_going = keep_going;
    let result = restore.run(reader).and_then(|stats| {
        conn.execute_batch("COMMIT")
            .map(|()| stats)
            .map_err(|e| sqlite_error(&e))
    });
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// One restore in progress.
struct Restore<'c> {
    conn: &'c Connection,
    stats: RestoreStats,
    /// Schema statements that named an object not created yet, in dump order. Bounded: only
    /// `CREATE INDEX/VIEW/TRIGGER` are set aside, never rows.
    deferred: Vec<Statement>,
    /// Count refused statements and go on ([`restore_dump_keep_going`]).
    keep_going: bool,
}

impl<'c> Restore<'c> {
    fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            stats: RestoreStats::default(),
            deferred: Vec::new(),
            keep_going: false,
        }
    }

    fn run(mut self, reader: impl BufRead) -> Result<RestoreStats, RestoreError> {
        let mut statements = DumpStatements::new(reader).without_transaction();
        while let Some(statement) = statements.next_statement() {
            self.statement(statement?)?;
        }
        self.stats.lines = statements.lines();
        self.stats.skipped = statements.skipped();
        self.retry_deferred()?;
        Ok(self.stats)
    }

    fn statement(&mut self, statement: Statement) -> Result<(), RestoreError> {
        if statement.sql.len() > D1_STATEMENT_LIMIT {
            self.stats.oversized_statements += 1;
        }
        if statement.kind == Kind::Object {
            match execute_object(self.conn, &statement.sql) {
                Err(e) if names_missing_object(&e) => self.deferred.push(statement),
                Err(e) if self.keep_going => self.refused(&statement_error(&statement, &e)),
                Err(e) => return Err(statement_error(&statement, &e)),
                Ok(()) => self.stats.statements += 1,
            }
            return Ok(());
        }
        match execute(self.conn, &statement.sql) {
            Ok(()) => self.stats.statements += 1,
            // SQLite undoes a failed statement alone and keeps the transaction, unless the
            // error was severe enough to roll it all back (then nothing can go on).
            Err(e) if self.keep_going && !self.conn.is_autocommit() => {
                self.refused(&statement_error(&statement, &e));
            }
            Err(e) => return Err(statement_error(&statement, &e)),
        }
        Ok(())
    }

    fn refused(&mut self, error: &RestoreError) {
        self.stats.failed += 1;
        if self.stats.failures.len() < KEEP_GOING_LISTED {
            self.stats.failures.push(error.to_string());
        }
    }

    /// Retries the set-aside statements in dump order until a round creates nothing more;
    /// then the first one still failing is the error.
    fn retry_deferred(&mut self) -> Result<(), RestoreError> {
        while !self.deferred.is_empty() {
            let tried = self.deferred.len();
            let mut failed = Vec::new();
            let mut first_error = None;
            for statement in std::mem::take(&mut self.deferred) {
                match execute_object(self.conn, &statement.sql) {
                    Ok(()) => {
                        self.stats.statements += 1;
                        self.stats.deferred += 1;
                    }
                    Err(e) => {
                        first_error.get_or_insert_with(|| statement_error(&statement, &e));
                        failed.push(statement);
                    }
                }
            }
            if let Some(error) = first_error.filter(|_| failed.len() == tried) {
                if self.keep_going {
                    for statement in &failed {
                        let e = execute_object(self.conn, &statement.sql).err();
                        let error = e.map_or_else(
                            || RestoreError::Sqlite("a deferred statement failed".to_owned()),
                            |e| statement_error(statement, &e),
                        );
                        self.refused(&error);
                    }
                    return Ok(());
                }
                return Err(error);
            }
            self.deferred = failed;
        }
        Ok(())
    }
}

/// Runs one statement, stepping through any rows it returns.
fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    match conn.prepare(sql) {
        Ok(mut statement) => {
            let mut rows = statement.raw_query();
            while rows.next()?.is_some() {}
            Ok(())
        }
        // Not split the way SQLite reads it: let SQLite run the parts in order.
        Err(rusqlite::Error::MultipleStatement) => conn.execute_batch(sql),
        Err(e) => Err(e),
    }
}

/// Runs a schema statement inside a savepoint, so that its failure leaves the transaction as
/// it was before it.
fn execute_object(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.execute_batch("SAVEPOINT restore_object")?;
    match execute(conn, sql) {
        Ok(()) => conn.execute_batch("RELEASE restore_object"),
        Err(e) => {
            conn.execute_batch("ROLLBACK TO restore_object; RELEASE restore_object")?;
            Err(e)
        }
    }
}

fn names_missing_object(e: &rusqlite::Error) -> bool {
    let message = e.to_string();
    message.contains("no such table") || message.contains("no such view")
}

fn statement_error(statement: &Statement, e: &rusqlite::Error) -> RestoreError {
    let message = e.to_string();
    if statement.kind == Kind::Insert && message.contains("no such column: Infinity") {
        return RestoreError::BareInfinity {
            line: statement.line,
            snippet: around(&statement.sql, "Infinity"),
        };
    }
    RestoreError::Statement {
        line: statement.line,
        message,
        snippet: snippet(&statement.sql),
    }
}

/// Up to 50 characters either side of the first bare `word` in `sql` (its first 120
/// characters if there is none), on one line.
fn around(sql: &str, word: &str) -> String {
    let Some(at) = bare_word(sql, word) else {
        return snippet(sql);
    };
    let before: Vec<char> = sql[..at].chars().rev().take(51).collect();
    let after: Vec<char> = sql[at..].chars().take(51 + word.len()).collect();
    let mut out = String::new();
    if before.len() > 50 {
        out.push('…');
    }
    out.extend(before.iter().take(50).rev());
    out.extend(after.iter().take(50 + word.len()));
    if after.len() > 50 + word.len() {
        out.push('…');
    }
    out.replace(['\n', '\r'], " ")
}

/// The byte offset of the first `word` in `sql` outside quotes and not part of a longer word.
fn bare_word(sql: &str, word: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            // A doubled quote closes and reopens: the same state either way.
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None => {
                let end = i + word.len();
                if bytes[i..].starts_with(word.as_bytes())
                    && (i == 0 || !is_word(bytes[i - 1]))
                    && bytes.get(end).is_none_or(|&b| !is_word(b))
                {
                    return Some(i);
                }
            }
        }
    }
    None
}

/// Rows per table of a restored database (tables of `sqlite_schema`, SQLite's own `sqlite_*`
/// excluded).
pub fn count_rows(conn: &Connection) -> Result<BTreeMap<String, u64>, RestoreError> {
    let sqlite = |e: rusqlite::Error| RestoreError::Sqlite(e.to_string());
    let mut names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .map_err(sqlite)?;
    let names: Vec<String> = names
        .query_map([], |row| row.get(0))
        .map_err(sqlite)?
        .collect::<Result<_, _>>()
        .map_err(sqlite)?;
    let mut counts = BTreeMap::new();
    for name in names {
        if TableClass::of(&name).is_sqlite_own() {
            continue;
        }
        let quoted = quote_ident(&name);
        // Virtual tables whose module is missing cannot be counted; skip rather than fail.
        if let Ok(n) = conn.query_row(&format!("SELECT count(*) FROM {quoted}"), [], |r| {
            r.get::<_, i64>(0)
        }) {
            counts.insert(name, u64::try_from(n).unwrap_or_default());
        }
    }
    Ok(counts)
}

/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check`: the problems found, if any.
pub fn check_database(conn: &Connection) -> Result<Vec<String>, RestoreError> {
    let sqlite = |e: rusqlite::Error| RestoreError::Sqlite(e.to_string());
    let mut problems = Vec::new();
    let mut integrity = conn.prepare("PRAGMA integrity_check").map_err(sqlite)?;
    for row in integrity
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sqlite)?
    {
        let row = row.map_err(sqlite)?;
        if row != "ok" {
            problems.push(format!("integrity_check: {row}"));
        }
    }
    let mut fk = conn.prepare("PRAGMA foreign_key_check").map_err(sqlite)?;
    let rows = fk
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sqlite)?;
    for row in rows {
        let (table, rowid, parent) = row.map_err(sqlite)?;
        problems.push(format!(
            "foreign_key_check: {table} row {} refers to a missing row of {parent}",
            rowid.map_or("?".to_owned(), |r| r.to_string())
        ));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore(sql: &str) -> (Connection, Result<RestoreStats, RestoreError>) {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let result = restore_dump(sql.as_bytes(), &conn);
        (conn, result)
    }

    fn restored(sql: &str) -> (Connection, RestoreStats) {
        let (conn, result) = restore(sql);
        let stats = result.unwrap_or_else(|e| panic!("{e}\n{sql}"));
        (conn, stats)
    }

    fn query<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
        stmt.query_map([], |r| r.get(0))
            .and_then(Iterator::collect)
            .unwrap_or_else(|e| panic!("{e}: {sql}"))
    }

    fn error(sql: &str) -> String {
        restore(sql)
            .1
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn every_insert_form_and_triggers_restore() {
        let sql = "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (a, b);\nINSERT INTO t VALUES(1,'x;\ny');\nINSERT INTO \"t\" VALUES(2,NULL);\nINSERT INTO \"t\" (\"a\",\"b\") VALUES(3,replace('p\\nq','\\n',char(10)));\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET b = CASE WHEN NEW.a > 9 THEN 'z;' ELSE b END;\nEND;\nCREATE VIEW v AS SELECT a FROM t;";
        let (conn, stats) = restored(sql);
        assert_eq!((stats.statements, stats.lines), (7, 10));
        let counts = count_rows(&conn).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counts.get("t"), Some(&3));
        assert_eq!(
            query::<String>(&conn, "SELECT b FROM t WHERE a = 1"),
            ["x;\ny"]
        );
        assert_eq!(
            query::<String>(&conn, "SELECT b FROM t WHERE a = 3"),
            ["p\nq"]
        );
        assert!(
            check_database(&conn)
                .unwrap_or_else(|e| panic!("{e}"))
                .is_empty()
        );
    }

    /// wrangler writes every trigger before every view (`trigger-on-view` fixture): the
    /// trigger is set aside and created after its view.
    #[test]
    fn a_trigger_before_its_view_is_created_after_it() {
        let sql = "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT);\n\
                   CREATE TRIGGER v_insert INSTEAD OF INSERT ON v\nBEGIN\n  INSERT INTO p (name) VALUES (NEW.name);\nEND;\n\
                   CREATE INDEX i ON w_base(x);\n\
                   CREATE VIEW w AS SELECT * FROM v;\n\
                   CREATE VIEW v AS SELECT id, name FROM p;\n\
                   CREATE TABLE w_base (x);";
        let (conn, stats) = restored(sql);
        assert_eq!((stats.statements, stats.deferred), (6, 2));
        // SQLite checks a view's tables only when it is used, so `w` needs no retry.
        let order: Vec<String> = query(&conn, "SELECT name FROM sqlite_schema ORDER BY rowid");
        assert_eq!(order, ["p", "w", "v", "w_base", "v_insert", "i"]);
        conn.execute_batch("INSERT INTO v (name) VALUES ('ada')")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query::<String>(&conn, "SELECT name FROM w"), ["ada"]);
    }

    #[test]
    fn an_object_that_never_resolves_names_its_line() {
        let sql = "CREATE TABLE t (a);\nINSERT INTO t VALUES(1);\nCREATE TRIGGER tr INSTEAD OF INSERT ON nowhere\nBEGIN SELECT 1; END;\nCREATE VIEW ok AS SELECT a FROM t;";
        let (conn, result) = restore(sql);
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.starts_with("line 3: no such table: main.nowhere: CREATE TRIGGER tr"),
            "{err}"
        );
        // The whole restore was rolled back, and the connection is usable.
        assert!(conn.is_autocommit());
        assert!(query::<String>(&conn, "SELECT name FROM sqlite_schema").is_empty());
    }

    #[test]
    fn other_failures_stop_at_once() {
        let err =
            error("CREATE TABLE t (a);\nCREATE INDEX i ON t(nope);\nCREATE VIEW v AS SELECT 1;");
        assert!(err.starts_with("line 2: no such column: nope"), "{err}");
        let err =
            error("CREATE TABLE t (a INTEGER) STRICT;\nINSERT INTO \"t\" (\"a\") VALUES('x');");
        assert!(
            err.starts_with("line 2: cannot store TEXT value in INTEGER column t.a"),
            "{err}"
        );
    }

    #[test]
    fn a_bare_infinity_is_named_as_the_export_defect() {
        let err = error(
            "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (a, b);\nINSERT INTO \"t\" VALUES('Infinity',-Infinity);\n",
        );
        assert!(
            err.starts_with(
                "line 3: the export wrote Infinity as a bare word (a known D1 export defect)"
            ) && err.contains("9e999")
                && err.ends_with("INSERT INTO \"t\" VALUES('Infinity',-Infinity);"),
            "{err}"
        );
        let long = format!(
            "INSERT INTO t VALUES('Infinity',{} Infinity)",
            "1,".repeat(40)
        );
        let around = around(&long, "Infinity");
        assert!(
            around.starts_with('…') && around.ends_with(" Infinity)"),
            "{around}"
        );
        assert_eq!(around.chars().count(), 60);
    }

    #[test]
    fn a_sqlite3_dump_file_restores() {
        let sql = "\u{feff}PRAGMA foreign_keys=OFF;\r\nBEGIN TRANSACTION;\r\nCREATE TABLE t(a);\r\nINSERT INTO t VALUES(1);\r\nINSERT INTO t VALUES('it''s');\r\nCOMMIT;\r\n";
        let (conn, stats) = restored(sql);
        assert_eq!((stats.statements, stats.skipped, stats.lines), (4, 2, 6));
        assert_eq!(
            count_rows(&conn).ok().and_then(|c| c.get("t").copied()),
            Some(2)
        );
        let err = error("BEGIN TRANSACTION;\nCREATE TABLE t(a);\nROLLBACK; -- due to errors\n");
        assert!(
            err.starts_with("line 3: the dump ends in ROLLBACK"),
            "{err}"
        );
    }

    /// wrangler's dump creates a child table, with its rows, before its parent.
    #[test]
    fn foreign_keys_wait_for_the_check_and_come_back_on() {
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let sql = "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id));\nINSERT INTO \"c\" (\"id\",\"p\") VALUES(1,1);\nINSERT INTO \"c\" (\"id\",\"p\") VALUES(2,7);\nCREATE TABLE p (id INTEGER PRIMARY KEY);\nINSERT INTO \"p\" (\"id\") VALUES(1);";
        restore_dump(sql.as_bytes(), &conn).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query::<bool>(&conn, "PRAGMA foreign_keys"), [true]);
        let problems = check_database(&conn).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            problems,
            ["foreign_key_check: c row 2 refers to a missing row of p"]
        );
    }

    #[test]
    fn a_truncated_dump_is_caught() {
        let (conn, result) = restore("CREATE TABLE t (a);\nINSERT INTO t VALUES('unfinished");
        assert!(
            matches!(result, Err(RestoreError::Truncated { line: 2, .. })),
            "{result:?}"
        );
        assert!(query::<String>(&conn, "SELECT name FROM sqlite_schema").is_empty());
    }

    #[test]
    fn oversized_statements_are_counted() {
        let big = format!(
            "CREATE TABLE t (b);\nINSERT INTO t VALUES(X'{}');\nINSERT INTO t VALUES(X'00');",
            "ab".repeat(60_000)
        );
        let (_, stats) = restored(&big);
        assert_eq!(stats.oversized_statements, 1);
    }

    #[test]
    fn restore_to_path_makes_a_new_file_or_none() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("restored.sqlite");
        let stats = restore_to_path(
            "CREATE TABLE t (a);\nINSERT INTO t VALUES(1);".as_bytes(),
            &path,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.statements, 2);
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query::<i64>(&conn, "SELECT a FROM t"), [1]);
        let err = restore_to_path("SELECT 1;".as_bytes(), &path).err();
        assert!(matches!(err, Some(RestoreError::Create { .. })), "{err:?}");

        let failed = dir.path().join("failed.sqlite");
        let err = restore_to_path(
            "CREATE TABLE t (a);\nINSERT INTO t VALUES(".as_bytes(),
            &failed,
        )
        .err();
        assert!(
            matches!(err, Some(RestoreError::Truncated { line: 2, .. })),
            "{err:?}"
        );
        assert!(!failed.exists());
    }

    #[test]
    fn keep_going_counts_refused_statements_and_restores_the_rest() {
        let dump = "CREATE TABLE t (id INTEGER PRIMARY KEY, v ANY) STRICT;\n\
                    INSERT INTO t VALUES(1,Infinity);\n\
                    INSERT INTO t VALUES(2,'ok');\n\
                    CREATE TABLE s (i INTEGER) STRICT;\n\
                    INSERT INTO s VALUES(9223372036854776000);\n\
                    CREATE TRIGGER w AFTER INSERT ON nowhere BEGIN SELECT 1; END;\n\
                    INSERT INTO t VALUES(3,'ok');";
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let err = restore_dump(dump.as_bytes(), &conn).err();
        assert!(
            matches!(err, Some(RestoreError::BareInfinity { line: 2, .. })),
            "{err:?}"
        );
        let conn = Connection::open_in_memory().unwrap_or_else(|e| panic!("{e}"));
        let stats =
            restore_dump_keep_going(dump.as_bytes(), &conn).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.failed, 3, "{stats:?}");
        assert!(
            stats.failures[0].starts_with("line 2: the export wrote Infinity"),
            "{stats:?}"
        );
        assert!(stats.failures[1].contains("line 5") && stats.failures[1].contains("s.i"));
        assert!(stats.failures[2].contains("line 6") && stats.failures[2].contains("nowhere"));
        assert_eq!(query::<i64>(&conn, "SELECT id FROM t ORDER BY id"), [2, 3]);
    }
}
