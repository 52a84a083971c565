//! The catalog of a live D1 database, read through `/raw`: the tables and objects in D1's
//! dump order (for `crate::dump::plan`) and, per table, what its pages need (columns,
//! affinities, the paging key).

use std::convert::Infallible;

use serde_json::Value;

use super::{Reader, protocol};
use crate::dump::Affinity;
use crate::dump::plan::{Object, Role, Table, TableOptions};
use crate::dump::{VirtualTable, quote_ident};
use crate::error::Error;

/// Every object of `sqlite_schema` that has SQL, in creation (rowid) order.
pub(super) const SCHEMA_SQL: &str =
    "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql NOT NULL ORDER BY rowid";

/// The tables (creation order, `sqlite_sequence` last) and the indexes, triggers and views
/// (by type, then creation order), as D1's export orders them.
pub(super) fn catalog(rows: Vec<Vec<Value>>) -> Result<(Vec<Table>, Vec<Object>), Error> {
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        match row.as_slice() {
            [
                Value::String(kind),
                Value::String(name),
                Value::String(tbl_name),
                Value::String(sql),
            ] => entries.push((kind.clone(), name.clone(), tbl_name.clone(), sql.clone())),
            _ => return Err(protocol("a row of sqlite_schema has an unexpected shape")),
        }
    }
    let virtual_tables: Vec<(String, VirtualTable)> = entries
        .iter()
        .filter(|(kind, ..)| kind == "table")
        .filter_map(|(_, name, _, sql)| Some((name.clone(), VirtualTable::parse(sql)?)))
        .collect();
    let is_shadow = |table: &str| virtual_tables.iter().any(|(v, vt)| vt.is_shadow(v, table));
    let mut tables = Vec::new();
    let mut sequence = None;
    let mut objects: Vec<(String, Object)> = Vec::new();
    for (kind, name, tbl_name, sql) in entries {
        if kind == "table" {
            let Ok(role) = Role::of(&name, &sql, || Ok::<_, Infallible>(is_shadow(&name)));
            let table = Table { name, sql, role };
            // wrangler's `ORDER BY tbl_name = 'sqlite_sequence', rowid`.
            if tbl_name == "sqlite_sequence" {
                sequence = Some(table);
            } else {
                tables.push(table);
            }
        } else if matches!(kind.as_str(), "index" | "trigger" | "view") {
            let object = Object {
                name,
                tbl_name,
                sql,
            };
            objects.push((kind.to_ascii_lowercase(), object));
        }
    }
    tables.extend(sequence);
    // wrangler's `ORDER BY type COLLATE NOCASE, rowid`; the sort is stable.
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((tables, objects.into_iter().map(|(_, o)| o).collect()))
}

/// What reading one table's pages needs.
#[derive(Debug, Clone)]
pub(super) struct Shape {
    pub(super) name: String,
    /// The columns INSERTs name (`PRAGMA table_info`: generated and hidden ones left out),
    /// with their affinities.
    pub(super) columns: Vec<(String, Affinity)>,
    /// How pages follow each other.
    pub(super) key: Key,
    /// Whether `rowid` is written first (FTS tables with their own content).
    pub(super) with_rowid: bool,
}

/// The keyset a table is paged by, in its own b-tree's order (D1's dump order).
#[derive(Debug, Clone)]
pub(super) enum Key {
    /// A rowid table (or a virtual table): by this name for the rowid, which no column
    /// shadows.
    Rowid(&'static str),
    /// A `WITHOUT ROWID` table: by its primary key's columns, in key order.
    PrimaryKey(Vec<KeyColumn>),
}

/// One column of a `WITHOUT ROWID` table's primary key.
#[derive(Debug, Clone)]
pub(super) struct KeyColumn {
    /// Its position among [`Shape::columns`].
    pub(super) index: usize,
    pub(super) descending: bool,
    pub(super) collation: String,
}

impl Reader {
    /// Reads what paging `table` (stored as `sql`) needs: two queries for a `WITHOUT ROWID`
    /// table, one for any other.
    pub(super) async fn shape(
        &mut self,
        table: &str,
        sql: &str,
        virtual_table: bool,
        with_rowid: bool,
    ) -> Result<Shape, Error> {
        let TableOptions {
            without_rowid,
            strict,
        } = TableOptions::of(sql);
        let info = self
            .rows(
                "SELECT name, type FROM pragma_table_info(?1) ORDER BY cid",
                &[Value::from(table)],
            )
            .await?;
        let mut columns = Vec::with_capacity(info.len());
        for row in info {
            let (Some(Value::String(name)), declared) = (row.first(), row.get(1)) else {
                return Err(protocol("pragma_table_info answered a row without a name"));
            };
            let declared = declared.and_then(Value::as_str).unwrap_or("");
            let affinity = if virtual_table {
                // A virtual table's module keeps values as given.
                Affinity::Blob
            } else {
                Affinity::of(declared, strict)
            };
            columns.push((name.clone(), affinity));
        }
        let key = if without_rowid && !virtual_table {
            Key::PrimaryKey(self.primary_key(table, &columns).await?)
        } else {
            Key::Rowid(rowid_name(&columns))
        };
        Ok(Shape {
            name: table.to_owned(),
            columns,
            key,
            with_rowid,
        })
    }

    /// The primary key of a `WITHOUT ROWID` table, with each column's order and collation
    /// as its b-tree has them.
    async fn primary_key(
        &mut self,
        table: &str,
        columns: &[(String, Affinity)],
    ) -> Result<Vec<KeyColumn>, Error> {
        let rows = self
            .rows(
                "SELECT x.name, x.\"desc\", x.coll FROM pragma_index_list(?1) AS l, \
                 pragma_index_xinfo(l.name) AS x WHERE l.origin = 'pk' AND x.key = 1 \
                 ORDER BY x.seqno",
                &[Value::from(table)],
            )
            .await?;
        let mut key = Vec::with_capacity(rows.len());
        for row in rows {
            let name = row.first().and_then(Value::as_str);
            let index = name.and_then(|n| columns.iter().position(|(c, _)| c == n));
            let Some(index) = index else {
                return Err(protocol(
                    "a WITHOUT ROWID table's primary key names an unknown column",
                ));
            };
            key.push(KeyColumn {
                index,
                descending: row.get(1).and_then(Value::as_i64).unwrap_or(0) != 0,
                collation: row
                    .get(2)
                    .and_then(Value::as_str)
                    .unwrap_or("BINARY")
                    .to_owned(),
            });
        }
        if key.is_empty() {
            return Err(protocol("a WITHOUT ROWID table has no primary key"));
        }
        Ok(key)
    }
}

/// A name for the rowid that no column shadows.
fn rowid_name(columns: &[(String, Affinity)]) -> &'static str {
    ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|n| !columns.iter().any(|(c, _)| c.eq_ignore_ascii_case(n)))
        .unwrap_or("rowid")
}

/// `SELECT k, v FROM "<t>_config" WHERE k <> 'version' ORDER BY k`, exactly: FTS5 settings.
pub(super) fn fts5_config_sql(table: &str, zeros: super::pages::Zeros) -> String {
    format!(
        "SELECT {}, {} FROM {} WHERE k <> 'version' ORDER BY k",
        super::pages::exact("k", zeros),
        super::pages::exact("v", zeros),
        quote_ident(&format!("{table}_config"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, name: &str, sql: &str) -> Vec<Value> {
        vec![kind.into(), name.into(), name.into(), sql.into()]
    }

    #[test]
    fn catalog_in_d1s_order() -> Result<(), Error> {
        let rows = vec![
            row(
                "table",
                "sqlite_sequence",
                "CREATE TABLE sqlite_sequence(name,seq)",
            ),
            row("view", "v", "CREATE VIEW v AS SELECT 1"),
            row(
                "table",
                "t",
                "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)",
            ),
            row(
                "trigger",
                "tr",
                "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
            ),
            row("index", "i", "CREATE INDEX i ON t(id)"),
            row("table", "f", "CREATE VIRTUAL TABLE f USING fts5(a)"),
            row(
                "table",
                "f_data",
                "CREATE TABLE 'f_data'(id INTEGER PRIMARY KEY, block BLOB)",
            ),
        ];
        let (tables, objects) = catalog(rows)?;
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["t", "f", "f_data", "sqlite_sequence"]);
        assert_eq!(tables[2].role, Role::Shadow);
        let objects: Vec<&str> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(objects, ["i", "tr", "v"]);
        assert!(catalog(vec![vec![Value::Null]]).is_err());
        Ok(())
    }

    #[test]
    fn table_options_and_rowid_names() {
        let table_options = |sql: &str| {
            let o = TableOptions::of(sql);
            (o.without_rowid, o.strict)
        };
        assert_eq!(
            table_options("CREATE TABLE t (a PRIMARY KEY) WITHOUT ROWID, STRICT"),
            (true, true)
        );
        assert_eq!(table_options("CREATE TABLE t (a TEXT)"), (false, false));
        let cols = |names: &[&str]| -> Vec<(String, Affinity)> {
            names
                .iter()
                .map(|n| ((*n).to_owned(), Affinity::Blob))
                .collect()
        };
        assert_eq!(rowid_name(&cols(&["a"])), "rowid");
        assert_eq!(rowid_name(&cols(&["ROWID", "a"])), "_rowid_");
    }
}
