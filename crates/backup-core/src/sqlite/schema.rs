//! Reading the catalog through rusqlite: the tables and objects in dump order, their roles
//! (`crate::dump::plan` decides what each role writes) and their columns.

use rusqlite::{Connection, OptionalExtension};

use crate::dump::Affinity;
use crate::dump::plan::{Object, Role, Table};

/// A column that INSERTs name (generated and hidden columns are left out, as wrangler does).
#[derive(Debug)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) affinity: Affinity,
}

/// The tables in wrangler's order: creation (rowid) order with `sqlite_sequence` last.
pub(crate) fn tables(conn: &Connection) -> rusqlite::Result<Vec<Table>> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND sql NOT NULL \
         ORDER BY tbl_name = 'sqlite_sequence', rowid",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut tables = Vec::new();
    for row in rows {
        let (name, sql) = row?;
        let role = role(conn, &name, &sql)?;
        tables.push(Table { name, sql, role });
    }
    Ok(tables)
}

/// The table's role; SQLite itself says which tables are shadow tables.
fn role(conn: &Connection, name: &str, sql: &str) -> rusqlite::Result<Role> {
    Role::of(name, sql, || {
        Ok(table_kind(conn, name)?.as_deref() == Some("shadow"))
    })
}

/// `PRAGMA table_list`'s `type` (`table`, `shadow`, `virtual`, `view`) and `strict` for a
/// table. `None` when SQLite cannot tell, e.g. when a virtual table's module is missing.
fn table_list(conn: &Connection, name: &str) -> rusqlite::Result<Option<(String, bool)>> {
    let entry = conn
        .query_row(
            "SELECT type, strict FROM pragma_table_list(?1) WHERE schema = 'main'",
            [name],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)),
        )
        .optional();
    match entry {
        Ok(entry) => Ok(entry),
        // Reading the list can fail on a database whose virtual table module is missing; the
        // table is then treated as ordinary and non-STRICT, and reading the virtual table
        // itself reports the error.
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::Unknown => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn table_kind(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    Ok(table_list(conn, name)?.map(|(kind, _)| kind))
}

/// Whether a table is STRICT (so `ANY` columns keep values as they are).
fn is_strict(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    Ok(table_list(conn, name)?.is_some_and(|(_, strict)| strict))
}

/// The columns wrangler names in INSERTs: `PRAGMA table_info`, in declaration order, which
/// leaves out generated and hidden columns.
pub(crate) fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Column>> {
    let strict = is_strict(conn, table)?;
    let mut stmt = conn.prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")?;
    let rows = stmt.query_map([table], |row| {
        let name: String = row.get(0)?;
        let declared: String = row.get(1)?;
        Ok(Column {
            name,
            affinity: Affinity::of(&declared, strict),
        })
    })?;
    rows.collect()
}

/// Indexes, then triggers, then views (wrangler's `ORDER BY type COLLATE NOCASE`), each in
/// creation order.
pub(crate) fn objects(conn: &Connection) -> rusqlite::Result<Vec<Object>> {
    let mut stmt = conn.prepare(
        "SELECT name, tbl_name, sql FROM main.sqlite_schema \
         WHERE sql NOT NULL AND type IN ('index', 'trigger', 'view') \
         ORDER BY type COLLATE NOCASE, rowid",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(Object {
            name: row.get(0)?,
            tbl_name: row.get(1)?,
            sql: row.get(2)?,
        })
    })?;
    rows.collect()
}
