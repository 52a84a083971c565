//! Splitting an `INSERT` that is too long for D1 into statements that fit and give exactly the
//! same row: [`Splitter`].
//!
//! D1 refuses any statement longer than [`D1_STATEMENT_LIMIT`](super::D1_STATEMENT_LIMIT)
//! bytes, but a row may hold 2 MB, and a dump writes each row as one `INSERT`. The
//! [`Splitter`] keeps an in-memory SQLite database with the dump's tables (empty, no triggers,
//! foreign keys off), so that SQLite itself reads the statement: the values as written, the
//! columns, the primary key, `WITHOUT ROWID`, the rowid alias, generated columns. It writes:
//!
//! 1. the same `INSERT` (same columns, every other value exact) with each long text or blob
//!    value cut to its first piece;
//! 2. `UPDATE "t" SET "c" = "c" || <piece> WHERE <key>;` for the rest of each long text,
//!    `UPDATE "t" SET "c" = CAST("c" || X'…' AS BLOB) WHERE <key>;` for a blob, one column
//!    after the other (the piece encodings are in [`pieces`]);
//! 3. where `<key>` is the primary key's values in a `WITHOUT ROWID` table, the `INTEGER
//!    PRIMARY KEY` column's value in a rowid table that has one, and otherwise
//!    `rowid = last_insert_rowid()`.
//!
//! **The statements of one split must run consecutively, on one connection, as they are
//! returned**: in the last case the key is the rowid of the connection's last `INSERT`. A
//! caller keeps them together, in order, in one import file or batch.
//!
//! Before it returns them, the splitter runs the statements in its own database and compares
//! the row they leave (every column, its storage class and bytes) with the row the original
//! `INSERT` leaves; any difference (a `CHECK` that refuses a prefix, an affinity that converts
//! one) is a [`SplitError`] instead. What it cannot see: another row in the target that
//! collides with a prefix under a `UNIQUE` constraint of the table (a prefix of one value
//! equal to another row's whole value), and triggers in the target (a dump creates them after
//! its rows).

mod parse;
mod pieces;
mod rewrite;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use rusqlite::{Connection, types::ValueRef};

use super::error::snippet;
use super::value::{Affinity, push_value};
use super::{Cell, quote_ident};
use crate::error::{Error, ErrorKind};
use table::Table;

/// Whether `sql` is at most `limit` bytes long.
pub(crate) fn fits(sql: &str, limit: usize) -> bool {
    sql.len() <= limit
}

/// Why a statement cannot be split.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SplitError {
    /// The statement at `line` cannot be written as statements that fit; the message says what
    /// it is, why, and what to do.
    #[error("line {line}: {message}")]
    Refused {
        /// The line the statement starts on (from 1).
        line: u64,
        /// The table it writes, if it is an INSERT into a table.
        table: Option<String>,
        /// What and why, and what to do instead.
        message: String,
    },
    /// The in-memory database could not be opened.
    #[error("cannot open the in-memory SQLite database that splits long statements: {0}")]
    Open(#[from] rusqlite::Error),
}

impl SplitError {
    /// What is wrong and what to do, without the line.
    pub(crate) fn reason(&self) -> String {
        match self {
            Self::Refused { message, .. } => message.clone(),
            Self::Open(_) => self.to_string(),
        }
    }
}

impl From<SplitError> for Error {
    fn from(error: SplitError) -> Self {
        let kind = match error {
            SplitError::Refused { .. } => ErrorKind::Unsupported,
            SplitError::Open(_) => ErrorKind::LocalIo,
        };
        Error::new(kind, error.to_string()).with_source(error)
    }
}

/// One value, owned, exactly as SQLite holds it (text as bytes: it need not be UTF-8).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Null,
    Integer(i64),
    /// The bits of a REAL, so that `-0.0` and `0.0` differ.
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Value {
    fn cell(&self) -> Cell<'_> {
        match self {
            Self::Null => Cell::Null,
            Self::Integer(i) => Cell::Integer(*i),
            Self::Real(bits) => Cell::Real(f64::from_bits(*bits)),
            Self::Text(t) => Cell::Text(t),
            Self::Blob(b) => Cell::Blob(b),
        }
    }

    /// The exact literal of this value as written, whatever the column: a REAL keeps a `.0`
    /// (and `-0.0` its sign), so the column's affinity sees the same value it saw.
    pub(super) fn literal(&self) -> String {
        let mut out = Vec::new();
        push_value(&mut out, self.cell(), Affinity::Blob);
        // The literal forms are ASCII, or text that was valid UTF-8.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// For messages: `integer 7`, `text of 150000 bytes`.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Null => "NULL".to_owned(),
            Self::Integer(i) => format!("integer {i}"),
            Self::Real(bits) => format!("real {:e}", f64::from_bits(*bits)),
            Self::Text(t) => format!("text of {} bytes", t.len()),
            Self::Blob(b) => format!("blob of {} bytes", b.len()),
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(value: ValueRef<'_>) -> Self {
        match value {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Integer(i),
            ValueRef::Real(r) => Self::Real(r.to_bits()),
            ValueRef::Text(t) => Self::Text(t.to_vec()),
            ValueRef::Blob(b) => Self::Blob(b.to_vec()),
        }
    }
}

/// How the `UPDATE`s of a split find their row.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Key {
    /// `rowid = last_insert_rowid()`, with the first of `rowid`, `_rowid_`, `oid` that no
    /// column hides.
    LastRowid(&'static str),
    /// These columns (unquoted) hold these values: the primary key of a `WITHOUT ROWID` table,
    /// or a rowid alias.
    Columns(Vec<(String, Value)>),
}

impl Key {
    /// The `WHERE` condition.
    pub(super) fn sql(&self) -> String {
        match self {
            Self::LastRowid(rowid) => format!("{rowid} = last_insert_rowid()"),
            Self::Columns(columns) => columns
                .iter()
                .map(|(name, value)| format!("{} = {}", quote_ident(name), value.literal()))
                .collect::<Vec<_>>()
                .join(" AND "),
        }
    }
}

/// Rewrites statements too long for a limit into statements that fit: see the
/// [module](self). Holds no rows between calls: its tables are empty after each one.
pub(crate) struct Splitter {
    /// The in-memory database holding the dump's ordinary tables, empty.
    conn: Connection,
    limit: usize,
    /// Tables whose long INSERTs are refused, by ASCII lower-case name, with why: virtual
    /// tables, and tables whose CREATE TABLE the in-memory database refused.
    refused: HashMap<String, String>,
}

impl Splitter {
    /// A splitter into statements of at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Result<Self, SplitError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch("PRAGMA foreign_keys = OFF;")?;
        Ok(Self {
            conn,
            limit,
            refused: HashMap::new(),
        })
    }

    /// Learns a table from the dump's `CREATE TABLE` (or `CREATE VIRTUAL TABLE`) at `line`;
    /// call it for every table, in dump order, before the INSERTs into it are split.
    ///
    /// A table SQLite cannot create here (a `sqlite_` name, an unknown collation) or a virtual
    /// table is remembered: a long INSERT into it is refused, saying why. The only error is a
    /// statement that is not a `CREATE TABLE` at all.
    pub(crate) fn add_table(&mut self, line: u64, create_sql: &str) -> Result<(), SplitError> {
        let Some((name, is_virtual)) = parse::created_table(create_sql) else {
            return Err(SplitError::Refused {
                line,
                table: None,
                message: format!(
                    "{} is not a CREATE TABLE: {}",
                    parse::describe(create_sql),
                    snippet(create_sql)
                ),
            });
        };
        let refusal = if is_virtual {
            Some("it is a virtual table, whose rows its module writes".to_owned())
        } else {
            self.conn
                .execute(create_sql, [])
                .err()
                .map(|e| format!("its CREATE TABLE on line {line} does not run in SQLite ({e})"))
        };
        if let Some(refusal) = refusal {
            self.refused.insert(name.to_ascii_lowercase(), refusal);
        }
        Ok(())
    }

    /// The statements that give the same row as the `INSERT` `sql` at `line`, each at most the
    /// limit long: `sql` itself if it fits. Anything else that is too long is refused with a
    /// [`SplitError::Refused`] that names the line, says what the statement is and why it
    /// cannot be split, and what to do instead.
    pub(crate) fn split(&mut self, line: u64, sql: &str) -> Result<Vec<String>, SplitError> {
        if fits(sql, self.limit) {
            return Ok(vec![sql.to_owned()]);
        }
        let head = parse::insert(sql).map_err(|what| self.refuse_statement(line, sql, &what))?;
        let limit = self.limit;
        let refuse = |why: String| refuse_insert(limit, line, sql, &head.table, &why);
        if let Some(why) = self.refused.get(&head.table.to_ascii_lowercase()) {
            return Err(refuse(why.clone()));
        }
        let table = Table::load(&self.conn, &head.table)
            .map_err(|e| refuse(format!("SQLite cannot read the table ({e})")))?
            .ok_or_else(|| {
                refuse("the dump does not create that table before this line".to_owned())
            })?;
        let statements = self.rewrite(&table, &head, sql).map_err(refuse)?;
        Ok(statements)
    }

    /// Reads the row, writes it in pieces, and proves the pieces give the same row.
    fn rewrite(
        &mut self,
        table: &Table,
        head: &parse::InsertHead,
        sql: &str,
    ) -> Result<Vec<String>, String> {
        let columns = table.insert_columns(head);
        let values = query_values(&self.conn, &sql[head.values.clone()])?;
        if values.len() != columns.len() {
            return Err(format!(
                "it has {} values for {} columns",
                values.len(),
                columns.len()
            ));
        }
        let stored = run_and_read(&mut self.conn, table, &[sql.to_owned()])
            .map_err(|e| format!("SQLite refuses the INSERT itself ({e})"))?;
        let (key, whole) = table.key(&columns, &values, &stored)?;
        let row = rewrite::Row {
            table: &table.name,
            columns: &columns,
            values: &values,
            whole: &whole,
            key: &key,
        };
        let statements = rewrite::rewrite(&row, self.limit)?;
        if let Some(long) = statements.iter().find(|s| !fits(s, self.limit)) {
            return Err(format!("a piece came out {} bytes long", long.len()));
        }
        let replayed = run_and_read(&mut self.conn, table, &statements)?;
        table.compare(&stored, &replayed)?;
        Ok(statements)
    }

    fn refuse_statement(&self, line: u64, sql: &str, what: &str) -> SplitError {
        SplitError::Refused {
            line,
            table: None,
            message: format!(
                "{what} of {} bytes is longer than the {}-byte statement limit (D1 refuses \
                 longer statements) and cannot be split into shorter ones; restore this dump \
                 into SQLite instead: {}",
                sql.len(),
                self.limit,
                snippet(sql)
            ),
        }
    }
}

/// The refusal of a long INSERT into `table`, because of `why`.
fn refuse_insert(limit: usize, line: u64, sql: &str, table: &str, why: &str) -> SplitError {
    SplitError::Refused {
        line,
        table: Some(table.to_owned()),
        message: format!(
            "an INSERT of {} bytes into table {} is longer than the {}-byte statement \
             limit (D1 refuses longer statements) and cannot be split: {why}; restore \
             this dump into SQLite instead, or leave table {table} out",
            sql.len(),
            quote_ident(table),
            limit,
        ),
    }
}

/// The one row of `VALUES(…)`, as SQLite evaluates it before any column's affinity.
fn query_values(conn: &Connection, values: &str) -> Result<Vec<Value>, String> {
    let read = || -> rusqlite::Result<Vec<Value>> {
        let mut statement = conn.prepare(values)?;
        let n = statement.column_count();
        let mut rows = statement.query([])?;
        let mut out = Vec::with_capacity(n);
        if let Some(row) = rows.next()? {
            for i in 0..n {
                out.push(Value::from(row.get_ref(i)?));
            }
        }
        Ok(out)
    };
    read().map_err(|e| format!("SQLite cannot read its VALUES ({e})"))
}

/// Runs `statements` (each must change exactly one row) in a transaction, reads the table's
/// one row, and rolls back, so the table is empty again.
fn run_and_read(
    conn: &mut Connection,
    table: &Table,
    statements: &[String],
) -> Result<Vec<Value>, String> {
    let sqlite = |e: rusqlite::Error| format!("SQLite failed ({e})");
    let tx = conn.transaction().map_err(sqlite)?;
    for (i, sql) in statements.iter().enumerate() {
        let changed = tx
            .execute(sql, [])
            .map_err(|e| format!("statement {} of its split fails in SQLite ({e})", i + 1))?;
        if changed != 1 {
            return Err(format!(
                "statement {} of its split changes {changed} rows instead of 1",
                i + 1
            ));
        }
    }
    let row = table.read(&tx).map_err(sqlite)?;
    tx.rollback().map_err(sqlite)?;
    row.ok_or_else(|| "the table does not hold exactly one row afterwards".to_owned())
}
