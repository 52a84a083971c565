//! What the simulator needs from a real database behind a simulated one, and D1's own
//! statement rules, which the simulator applies before the database sees any SQL.

use std::fmt;

use bytes::Bytes;
use serde_json::Value;

use crate::DumpOptions;

/// A real database behind a simulated D1 database (see
/// [`D1Simulator::add_backed_database`](super::D1Simulator::add_backed_database)).
///
/// The simulator owns the wire format (envelopes, `meta`, polling, uploads, md5 checks); an
/// implementation only runs SQL and writes dumps. Its contract:
///
/// - Every method is called from the simulator's server thread and must not block for long
///   (no network). It may be called concurrently from several requests.
/// - SQL reaches it only after [`check_d1_sql`] accepted it: no statement over 100,000 bytes
///   and no transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT`, …).
/// - Errors are the text D1 would send, e.g. `no such table: t: SQLITE_ERROR`; the simulator
///   wraps them in D1's failure answer.
/// - [`bookmark`](Self::bookmark) changes whenever data or schema changes, and only then.
/// - Time Travel ([`restore_bookmark`](Self::restore_bookmark),
///   [`bookmark_at`](Self::bookmark_at)) and [`num_tables`](Self::num_tables) are optional:
///   their defaults say the database does not support them, and the simulator answers as
///   it did without them.
pub trait SimulatedDatabase: Send + Sync + fmt::Debug {
    /// Runs `sql` (one statement, or several separated by `;` as D1's `/query` accepts),
    /// binding `params` to the `?` placeholders of each statement that has some. Returns one
    /// result per statement, in order. All or nothing: when a statement fails, the call
    /// changes nothing.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<SimulatedRows>, String>;

    /// Runs a `{"batch": [...]}` request: each `(sql, params)` as [`query`](Self::query)
    /// would, results concatenated. D1 runs a batch as one transaction; the default
    /// implementation does not (it calls `query` once per entry), so override it where that
    /// matters.
    fn batch(&self, statements: &[(String, Vec<Value>)]) -> Result<Vec<SimulatedRows>, String> {
        let mut all = Vec::new();
        for (sql, params) in statements {
            all.extend(self.query(sql, params)?);
        }
        Ok(all)
    }

    /// The dump D1 would export with these options, in D1's format. `Err` is the export's
    /// error message, e.g. `D1 Export error: cannot export databases with Virtual Tables
    /// (fts5)`, which the simulator reports as the export's `status: "error"`.
    fn export(&self, options: &DumpOptions) -> Result<Bytes, String>;

    /// Runs an imported SQL file as D1's import does: in one transaction, all or nothing.
    /// Returns how many statements ran (`num_queries`).
    fn import(&self, sql: &[u8]) -> Result<u64, String>;

    /// The database's current bookmark, in D1's form
    /// (`00000001-00000000-00004f6d-<32 hex digits>`).
    fn bookmark(&self) -> String;

    /// Restores the database in place to the state `bookmark` named (any state it has had:
    /// an earlier restore's previous state included) and returns the new current bookmark.
    /// A restore is itself a change: the new bookmark differs from both `bookmark` and the
    /// one before, and the state before stays restorable (that is how a restore is undone).
    /// `Err` says why, e.g. that the bookmark names no state of this database. The
    /// simulator checks D1's limits (30 days, 10 restores per 10 minutes) before calling it.
    fn restore_bookmark(&self, bookmark: &str) -> Result<String, String> {
        let _ = bookmark;
        Err("Time Travel is not supported by this simulated database".to_owned())
    }

    /// The bookmark that was current at `unix_seconds` (the system clock's time, in seconds
    /// since 1970), if the database knows. `None` (the default): the simulator answers the
    /// current bookmark, or one it saw current at that time.
    fn bookmark_at(&self, unix_seconds: i64) -> Option<String> {
        let _ = unix_seconds;
        None
    }

    /// How many tables D1 would count in `num_tables`: not `sqlite_*` nor `_cf_*` ones.
    /// `None` (the default): the simulator reports a plausible fixed number.
    fn num_tables(&self) -> Option<u64> {
        None
    }
}

/// The outcome of one statement run by a [`SimulatedDatabase`].
///
/// Values are in D1's JSON form: integers and reals as JSON numbers (D1 sends every number
/// through a double, so integers beyond ±2^53 arrive rounded and an integral real such as
/// `3.0` arrives as `3`), non-finite reals as `null`, text as strings, blobs as arrays of byte
/// numbers, NULL as `null`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatedRows {
    /// Column names in order (duplicates allowed, as SQLite allows them).
    pub columns: Vec<String>,
    /// One array per row, in column order.
    pub rows: Vec<Vec<Value>>,
    /// Rows the statement inserted, updated or deleted (`meta.changes`).
    pub changes: u64,
    /// The rowid of the last inserted row (`meta.last_row_id`).
    pub last_row_id: i64,
    /// Whether the statement changed the database (`meta.changed_db`).
    pub changed_db: bool,
    /// Rows the statement read (`meta.rows_read`).
    pub rows_read: u64,
    /// Rows the statement wrote (`meta.rows_written`).
    pub rows_written: u64,
}

impl SimulatedRows {
    /// A statement's result with these columns and rows, and nothing written.
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Self {
        let rows_read = rows.len() as u64;
        Self {
            columns,
            rows,
            rows_read,
            ..Self::default()
        }
    }
}

/// D1 rejects statements longer than this (`statement too long: SQLITE_TOOBIG`).
pub const D1_STATEMENT_LIMIT: usize = 100_000;

/// D1's answer to SQL that controls transactions itself.
const TRANSACTION_REFUSED: &str = "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.: SQLITE_AUTH";

/// Applies D1's statement rules to SQL sent to `/query`, `/raw` or `/import`: no statement
/// longer than [`D1_STATEMENT_LIMIT`] bytes, and no transaction control (`BEGIN`, `COMMIT`,
/// `END`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`), because D1 runs every request (and a whole
/// import) in a transaction of its own. `Err` is D1's message.
///
/// The simulator applies it before a [`SimulatedDatabase`] sees the SQL; implementations
/// that are also used on their own can call it too.
pub fn check_d1_sql(sql: &[u8]) -> Result<(), String> {
    for statement in split_statements(sql) {
        if statement.text.len() > D1_STATEMENT_LIMIT {
            return Err("statement too long: SQLITE_TOOBIG".to_owned());
        }
        if matches!(
            statement.first_word.as_str(),
            "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "SAVEPOINT" | "RELEASE"
        ) {
            return Err(TRANSACTION_REFUSED.to_owned());
        }
    }
    Ok(())
}

/// One statement of a SQL text.
struct Statement<'a> {
    /// From its first word to its `;` (or the end of the text).
    text: &'a [u8],
    /// Its first keyword, upper-cased.
    first_word: String,
}

/// Splits SQL at the `;` that end statements, as `sqlite3_complete` sees them: not inside
/// quotes or comments, and in a `CREATE TRIGGER` only the `;` after `END`.
fn split_statements(sql: &[u8]) -> Vec<Statement<'_>> {
    let mut out = Vec::new();
    let mut words = Words::default();
    let mut start = None;
    let mut i = 0;
    while i < sql.len() {
        let c = sql[i];
        let next = sql.get(i + 1).copied();
        if is_word_byte(c) {
            let end = sql[i..]
                .iter()
                .position(|b| !is_word_byte(*b))
                .map_or(sql.len(), |n| i + n);
            start.get_or_insert(i);
            words.push(&sql[i..end]);
            i = end;
            continue;
        }
        if c == b';' && words.ends_statement() {
            if let Some(from) = start.take() {
                out.push(Statement {
                    text: &sql[from..=i],
                    first_word: words.first(),
                });
            }
            words = Words::default();
            i += 1;
            continue;
        }
        let last = sql.len() - 1;
        let skip_to = match (c, next) {
            (b'-', Some(b'-')) => find(sql, i + 2, b"\n").unwrap_or(last),
            (b'/', Some(b'*')) => find(sql, i + 2, b"*/").map_or(last, |end| end + 1),
            (b'\'' | b'"' | b'`', _) => closing_quote(sql, i + 1, c).unwrap_or(last),
            (b'[', _) => find(sql, i + 1, b"]").unwrap_or(last),
            _ => i,
        };
        let comment = matches!(c, b'-' | b'/') && skip_to > i;
        if !c.is_ascii_whitespace() && !comment {
            start.get_or_insert(i);
        }
        i = skip_to + 1;
    }
    if let Some(from) = start {
        out.push(Statement {
            text: &sql[from..],
            first_word: words.first(),
        });
    }
    out
}

/// The words of a statement that decide where it ends: its first three, and whether its
/// last one is `END`.
#[derive(Default)]
struct Words {
    first: Vec<String>,
    last_is_end: bool,
}

impl Words {
    fn push(&mut self, word: &[u8]) {
        if self.first.len() < 3 {
            self.first
                .push(String::from_utf8_lossy(word).to_ascii_uppercase());
        }
        self.last_is_end = word.eq_ignore_ascii_case(b"END");
    }

    fn first(&self) -> String {
        self.first.first().cloned().unwrap_or_default()
    }

    /// Whether a `;` here ends the statement (a trigger body holds `;` of its own).
    fn ends_statement(&self) -> bool {
        let trigger = matches!(
            self.first
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
            ["CREATE", "TRIGGER", ..] | ["CREATE", "TEMP" | "TEMPORARY", "TRIGGER"]
        );
        !trigger || self.last_is_end
    }
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The index of the quote closing a literal opened before `from` (a doubled quote escapes).
fn closing_quote(sql: &[u8], mut from: usize, quote: u8) -> Option<usize> {
    loop {
        let at = find(sql, from, &[quote])?;
        if sql.get(at + 1) == Some(&quote) {
            from = at + 2;
        } else {
            return Some(at);
        }
    }
}

/// The index where `needle` starts at or after `from`.
fn find(sql: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    sql.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|n| from + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_words(sql: &str) -> Vec<String> {
        split_statements(sql.as_bytes())
            .into_iter()
            .map(|s| s.first_word)
            .collect()
    }

    #[test]
    fn splits_like_sqlite() {
        let sql = "PRAGMA x;\n-- BEGIN;\nCREATE TABLE t (a); /* COMMIT; */ INSERT INTO t VALUES('a;''\nEND;');\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN\n UPDATE t SET a = 1;\nEND;\nSELECT [x;y] FROM \"q;\" ";
        assert_eq!(
            first_words(sql),
            ["PRAGMA", "CREATE", "INSERT", "CREATE", "SELECT"]
        );
        assert_eq!(first_words("  \n"), Vec::<String>::new());
        assert_eq!(first_words("SELECT 'unterminated;"), ["SELECT"]);
    }

    #[test]
    fn refuses_what_d1_refuses() {
        let check = |sql: &str| check_d1_sql(sql.as_bytes()).err();
        assert_eq!(check("CREATE TABLE t (a);\nINSERT INTO t VALUES(1);"), None);
        for bad in [
            "BEGIN TRANSACTION;\nCREATE TABLE t (a);\nCOMMIT;",
            "CREATE TABLE t (a);\ncommit;",
            "savepoint a;",
            "CREATE TABLE t (a); END TRANSACTION",
        ] {
            assert!(
                check(bad).is_some_and(|e| e.ends_with("SQLITE_AUTH")),
                "{bad}"
            );
        }
        let long = format!("SELECT '{}';", "x".repeat(D1_STATEMENT_LIMIT));
        assert_eq!(
            check(&long).as_deref(),
            Some("statement too long: SQLITE_TOOBIG")
        );
    }
}
