//! Reading the catalog: which tables the dump covers, in which order, and how each is written.

use rusqlite::{Connection, OptionalExtension};

use super::value::Affinity;
use super::vtab::VirtualTable;

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
    Ok(if name == "sqlite_sequence" {
        Role::Sequence
    } else if name.starts_with("sqlite_stat") {
        Role::Stat
    } else if name.starts_with("_cf_") || name.starts_with("sqlite_") {
        Role::Internal
    } else if let Some(vtab) = VirtualTable::parse(sql) {
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

/// `"name"` with `"` doubled.
pub(crate) fn push_ident(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    for part in name.split_inclusive('"') {
        out.extend_from_slice(part.as_bytes());
        if part.ends_with('"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// The stored `CREATE TABLE` as wrangler writes it: `IF NOT EXISTS` is added when the stored
/// text matches JavaScript's `/CREATE TABLE ['"].*/` (anywhere, as the regex is unanchored).
pub(crate) fn create_table_sql(sql: &str) -> String {
    let quoted = sql.contains("CREATE TABLE '") || sql.contains("CREATE TABLE \"");
    match sql.get(13..) {
        Some(rest) if quoted => format!("CREATE TABLE IF NOT EXISTS {rest};"),
        _ => format!("{sql};"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_not_exists_only_for_quoted_names() {
        assert_eq!(
            create_table_sql("CREATE TABLE \"order\" (id)"),
            "CREATE TABLE IF NOT EXISTS \"order\" (id);"
        );
        assert_eq!(
            create_table_sql("CREATE TABLE 'a''b'(v)"),
            "CREATE TABLE IF NOT EXISTS 'a''b'(v);"
        );
        assert_eq!(
            create_table_sql("CREATE TABLE [b n] (x)"),
            "CREATE TABLE [b n] (x);"
        );
        assert_eq!(
            create_table_sql("CREATE TABLE t (x)"),
            "CREATE TABLE t (x);"
        );
    }

    #[test]
    fn identifiers_double_their_quotes() {
        let mut out = Vec::new();
        push_ident(&mut out, "odd \"name\" here");
        assert_eq!(out, b"\"odd \"\"name\"\" here\"");
    }
}
