//! What the splitter asks SQLite about a table: its columns, its key, its one row.

use rusqlite::{Connection, OptionalExtension};

use super::super::quote_ident;
use super::{Key, Value, parse};

/// A table of the in-memory database, as SQLite describes it.
pub(super) struct Table {
    /// The name as created.
    pub(super) name: String,
    /// Every column (`PRAGMA table_xinfo`), generated ones included, in order.
    columns: Vec<Column>,
    without_rowid: bool,
    /// The `INTEGER PRIMARY KEY` column that is the rowid, by index in `columns`.
    rowid_alias: Option<usize>,
}

struct Column {
    name: String,
    /// Position in the primary key, from 1; 0 outside it.
    pk: i64,
    /// 0 for an ordinary column, 2 or 3 for a generated one.
    hidden: i64,
}

impl Table {
    /// The ordinary table `name` of the database, if there is one.
    pub(super) fn load(conn: &Connection, name: &str) -> rusqlite::Result<Option<Self>> {
        let found = conn
            .query_row(
                "SELECT name, wr FROM pragma_table_list \
                 WHERE schema = 'main' AND type = 'table' AND name = ?1 COLLATE NOCASE",
                [name],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)),
            )
            .optional()?;
        let Some((name, without_rowid)) = found else {
            return Ok(None);
        };
        let mut statement =
            conn.prepare("SELECT name, pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?;
        let columns = statement
            .query_map([&name], |row| {
                Ok(Column {
                    name: row.get(0)?,
                    pk: row.get(1)?,
                    hidden: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // A single-column primary key of a rowid table is the rowid unless SQLite made it an
        // index of its own (`INT PRIMARY KEY`, `INTEGER PRIMARY KEY DESC`).
        let pk_index: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_index_list(?1) WHERE origin = 'pk'",
            [&name],
            |row| row.get(0),
        )?;
        let mut pk = columns.iter().enumerate().filter(|(_, c)| c.pk > 0);
        let rowid_alias = match (pk.next(), pk.next()) {
            (Some((i, _)), None) if !without_rowid && !pk_index => Some(i),
            _ => None,
        };
        Ok(Some(Self {
            name,
            columns,
            without_rowid,
            rowid_alias,
        }))
    }

    /// The INSERT's columns: its list, or every column that is not generated.
    pub(super) fn insert_columns(&self, head: &parse::InsertHead) -> Vec<String> {
        match &head.columns {
            Some(columns) => columns.clone(),
            None => self
                .columns
                .iter()
                .filter(|c| c.hidden == 0)
                .map(|c| c.name.clone())
                .collect(),
        }
    }

    /// The table's one row, every column, or `None` if it holds another number of rows.
    pub(super) fn read(&self, conn: &Connection) -> rusqlite::Result<Option<Vec<Value>>> {
        let names: Vec<String> = self.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let sql = format!(
            "SELECT {} FROM {}",
            names.join(","),
            quote_ident(&self.name)
        );
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let values = (0..names.len())
            .map(|i| row.get_ref(i).map(Value::from))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.next()?.is_none().then_some(values))
    }
}

impl Table {
    /// How the UPDATEs find the row the INSERT (`columns`, with `values` as written, leaving
    /// `stored`) wrote, and which of its columns must be written whole for that.
    pub(super) fn key(
        &self,
        columns: &[String],
        values: &[Value],
        stored: &[Value],
    ) -> Result<(Key, Vec<bool>), String> {
        let mut whole = vec![false; columns.len()];
        let position = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
        if self.without_rowid {
            let mut pk: Vec<(i64, usize)> = (0..self.columns.len())
                .filter(|&i| self.columns[i].pk > 0)
                .map(|i| (self.columns[i].pk, i))
                .collect();
            pk.sort_unstable();
            let mut key = Vec::with_capacity(pk.len());
            for (_, i) in pk {
                let name = &self.columns[i].name;
                let p = position(name).ok_or_else(|| {
                    format!(
                        "its primary key column {} is not in the INSERT",
                        quote_ident(name)
                    )
                })?;
                whole[p] = true;
                key.push((name.clone(), stored[i].clone()));
            }
            return Ok((Key::Columns(key), whole));
        }
        if let Some(i) = self.rowid_alias {
            let name = &self.columns[i].name;
            // A NULL there makes SQLite choose the rowid: then only last_insert_rowid() knows it.
            if let Some(p) = position(name).filter(|&p| values[p] != Value::Null) {
                whole[p] = true;
                return Ok((Key::Columns(vec![(name.clone(), stored[i].clone())]), whole));
            }
        }
        let rowid = ["rowid", "_rowid_", "oid"]
            .into_iter()
            .find(|r| !self.columns.iter().any(|c| c.name.eq_ignore_ascii_case(r)))
            .ok_or("its columns rowid, _rowid_ and oid hide the rowid that its UPDATEs need")?;
        Ok((Key::LastRowid(rowid), whole))
    }

    /// Whether the split left the row the original INSERT left, column by column.
    pub(super) fn compare(&self, want: &[Value], got: &[Value]) -> Result<(), String> {
        let columns = self.columns.iter().zip(want.iter().zip(got));
        for (column, (want, got)) in columns {
            if want != got {
                let (want, got) = (want.describe(), got.describe());
                let differ = if want == got { " with other bytes" } else { "" };
                return Err(format!(
                    "its pieces would leave column {} as {got}{differ} instead of {want}",
                    quote_ident(&column.name)
                ));
            }
        }
        Ok(())
    }
}
