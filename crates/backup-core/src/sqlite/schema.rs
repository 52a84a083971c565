//! Reading the catalog: which tables the dump covers, in which order, and how each is written.

use rusqlite::{Connection, OptionalExtension};

use crate::dump::{Affinity, TableClass, VirtualTable};

/// What a `type='table'` row of `sqlite_schema` is, for the dump.
#[derive(Debug)]
pub(crate) enum Role {
    /// A table the dump writes with its `CREATE` and rows.
    Ordinary,
    /// `sqlite_sequence`: `DELETE FROM sqlite_sequence;` then its rows.
    Sequence,
    /// `sqlite_stat1` (or another `sqlite_stat*`): `ANALYZE sqlite_schema;` then its rows.
    Stat,
    /// A virtual table, recreated from its `CREATE VIRTUAL TABLE` and its content.
    Virtual(VirtualTable),
    /// A shadow table of a virtual table: recreated by the virtual table, not written (unless
    /// named in the table filter, as wrangler does).
    Shadow,
    /// `_cf_*` and other `sqlite_*` tables, never written.
    Internal,
}

/// One table of `sqlite_schema`, in dump order.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) sql: String,
    pub(crate) role: Role,
}

/// An index, trigger or view, written after all tables.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) name: String,
    pub(crate) tbl_name: String,
    pub(crate) sql: String,
}

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

fn role(conn: &Connection, name: &str, sql: &str) -> rusqlite::Result<Role> {
    Ok(match TableClass::of(name) {
        TableClass::Sequence => Role::Sequence,
        TableClass::Stat => Role::Stat,
        TableClass::D1 | TableClass::Sqlite => Role::Internal,
        TableClass::User => user_role(conn, name, sql)?,
    })
}

/// A user table: virtual, a virtual table's shadow, or ordinary.
fn user_role(conn: &Connection, name: &str, sql: &str) -> rusqlite::Result<Role> {
    Ok(if let Some(vtab) = VirtualTable::parse(sql) {
        Role::Virtual(vtab)
    } else if table_kind(conn, name)?.as_deref() == Some("shadow") {
        Role::Shadow
    } else {
        Role::Ordinary
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
