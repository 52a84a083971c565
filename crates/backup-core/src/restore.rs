//! Reading a D1 dump back into SQLite (feature `sqlite`): statement by statement, with
//! memory bounded by the longest statement, so a 10 GB dump restores like a 10 KB one.
//!
//! Any of the forms D1 and wrangler write is accepted (`INSERT INTO "t" VALUES(…)`,
//! `INSERT INTO t VALUES(…)`, `INSERT INTO "t" ("a","b") VALUES(…)`): the dump is SQL, and
//! SQLite itself decides where a statement ends (a trigger body holds `;` before its `END;`).

use std::collections::BTreeMap;
use std::io::BufRead;

use rusqlite::Connection;

/// Why a restore stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// Reading the dump failed.
    #[error("cannot read the dump: {0}")]
    Read(#[from] std::io::Error),
    /// SQLite refused a statement; the dump is not a faithful backup.
    #[error("line {line}: {message}: {snippet}")]
    Statement {
        /// The line the statement starts on (from 1).
        line: u64,
        /// SQLite's message.
        message: String,
        /// The statement's first 120 characters.
        snippet: String,
    },
    /// The dump ended inside a statement (a truncated file).
    #[error("the dump ends inside a statement that starts on line {line}: {snippet}")]
    Truncated {
        /// Where the unfinished statement starts.
        line: u64,
        /// Its first 120 characters.
        snippet: String,
    },
    /// SQLite failed outside any statement of the dump (opening, committing).
    #[error("SQLite failed: {0}")]
    Sqlite(String),
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreStats {
    /// Statements executed.
    pub statements: u64,
    /// Lines read.
    pub lines: u64,
}

fn snippet(sql: &str) -> String {
    let line: String = sql.trim().chars().take(120).collect();
    line.replace('\n', " ")
}

/// Executes the dump read from `reader` against `conn`, in one transaction.
pub fn restore_dump(reader: impl BufRead, conn: &Connection) -> Result<RestoreStats, RestoreError> {
    let sqlite = |e: rusqlite::Error| RestoreError::Sqlite(e.to_string());
    conn.execute_batch("BEGIN").map_err(sqlite)?;
    let mut stats = RestoreStats::default();
    let mut pending = String::new();
    let mut start_line = 1;
    for line in reader.lines() {
        let line = line?;
        stats.lines += 1;
        if pending.is_empty() {
            start_line = stats.lines;
        }
        pending.push_str(&line);
        pending.push('\n');
        if !is_complete(&pending) {
            continue;
        }
        execute(conn, &pending, start_line)?;
        stats.statements += 1;
        pending.clear();
    }
    if !pending.trim().is_empty() {
        return Err(RestoreError::Truncated {
            line: start_line,
            snippet: snippet(&pending),
        });
    }
    conn.execute_batch("COMMIT").map_err(sqlite)?;
    Ok(stats)
}

fn execute(conn: &Connection, sql: &str, line: u64) -> Result<(), RestoreError> {
    let failed = |e: rusqlite::Error| RestoreError::Statement {
        line,
        message: e.to_string(),
        snippet: snippet(sql),
    };
    match conn.prepare(sql) {
        Ok(mut statement) => statement.raw_execute().map(|_| ()).map_err(failed),
        // Two statements on one line: let SQLite run them in order.
        Err(rusqlite::Error::MultipleStatement) => conn.execute_batch(sql).map_err(failed),
        Err(e) => Err(failed(e)),
    }
}

/// Whether `sql` ends with a complete statement: a `;` outside quotes and comments, and for
/// `CREATE TRIGGER` only the `;` after its `END` (its body holds `;` of its own). The same
/// question SQLite's `sqlite3_complete` answers, without its C.
fn is_complete(sql: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Quoted(char),
        LineComment,
        BlockComment,
    }
    let mut state = State::Code;
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut complete = false;
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            State::Quoted(close) => {
                if c == close {
                    // A doubled quote is an escaped quote, not the end.
                    if next == Some(close) && close != ']' {
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '*' && next == Some('/') {
                    state = State::Code;
                    i += 1;
                }
            }
            State::Code => {
                if c.is_alphanumeric() || c == '_' {
                    word.push(c.to_ascii_uppercase());
                    i += 1;
                    continue;
                }
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                match (c, next) {
                    ('\'', _) => state = State::Quoted('\''),
                    ('"', _) => state = State::Quoted('"'),
                    ('`', _) => state = State::Quoted('`'),
                    ('[', _) => state = State::Quoted(']'),
                    ('-', Some('-')) => state = State::LineComment,
                    ('/', Some('*')) => state = State::BlockComment,
                    (';', _) => {
                        let trigger = matches!(
                            words
                                .iter()
                                .map(String::as_str)
                                .take(3)
                                .collect::<Vec<_>>()
                                .as_slice(),
                            ["CREATE", "TRIGGER", ..] | ["CREATE", "TEMP" | "TEMPORARY", "TRIGGER"]
                        );
                        if !trigger || words.last().map(String::as_str) == Some("END") {
                            complete = true;
                            words.clear();
                        }
                    }
                    _ => {}
                }
                if !c.is_whitespace() && c != ';' {
                    complete = false;
                }
            }
        }
        if state != State::Code {
            complete = false;
        }
        i += 1;
    }
    complete
}

/// Rows per table of a restored database (tables of `sqlite_schema`, `sqlite_*` excluded).
pub fn count_rows(conn: &Connection) -> Result<BTreeMap<String, u64>, RestoreError> {
    let sqlite = |e: rusqlite::Error| RestoreError::Sqlite(e.to_string());
    let mut names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
        .map_err(sqlite)?;
    let names: Vec<String> = names
        .query_map([], |row| row.get(0))
        .map_err(sqlite)?
        .collect::<Result<_, _>>()
        .map_err(sqlite)?;
    let mut counts = BTreeMap::new();
    for name in names {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
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

    #[test]
    fn every_insert_form_and_triggers_restore() {
        let sql = "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (a, b);\nINSERT INTO t VALUES(1,'x;\ny');\nINSERT INTO \"t\" VALUES(2,NULL);\nINSERT INTO \"t\" (\"a\",\"b\") VALUES(3,replace('p\\nq','\\n',char(10)));\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  UPDATE t SET b = 'z' WHERE a = NEW.a;\nEND;\nCREATE VIEW v AS SELECT a FROM t;";
        let (conn, result) = restore(sql);
        let stats = result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.statements, 7);
        let counts = count_rows(&conn).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(counts.get("t"), Some(&3));
        let b: String = conn
            .query_row("SELECT b FROM t WHERE a = 1", [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b, "x;\ny");
        assert!(
            check_database(&conn)
                .unwrap_or_else(|e| panic!("{e}"))
                .is_empty()
        );
    }

    #[test]
    fn a_bad_statement_names_its_line() {
        let (_, result) = restore(
            "PRAGMA defer_foreign_keys=TRUE;\nCREATE TABLE t (a);\nINSERT INTO t VALUES(Infinity);\n",
        );
        let error = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            error.starts_with("line 3: ") && error.contains("Infinity"),
            "{error}"
        );
    }

    #[test]
    fn a_truncated_dump_is_caught() {
        let (_, result) = restore("CREATE TABLE t (a);\nINSERT INTO t VALUES('unfinished");
        assert!(
            matches!(result, Err(RestoreError::Truncated { line: 2, .. })),
            "{result:?}"
        );
    }
}
